"""IDENTITY-*: the plugin loads, and the provider says who it is consistently."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hypersdk_testing._checks._registry import implements
from hypersdk_testing._harness import describe_error
from hypersdk_testing._loader import plugin_problems

if TYPE_CHECKING:
    from hypersdk_testing._harness import Harness


@implements("IDENTITY-LOADS")
def identity_loads(h: Harness) -> None:
    problems = plugin_problems(h.suite.plugin)
    if problems:
        h.fail(
            expected="hypersdk.plugins.PluginManager to load the plugin module",
            actual="\n  - ".join(["it refused it:", *problems]),
        )


@implements("IDENTITY-NAME")
def identity_name(h: Harness) -> None:
    async def body() -> None:
        async with h.session(connect=False) as session:
            name: object = session.provider.name
            if not isinstance(name, str) or not name.strip():
                h.fail(expected="a non-empty str", actual=repr(name))

    h.run(body)


@implements("IDENTITY-TYPE")
def identity_type(h: Harness) -> None:
    async def body() -> None:
        async with h.session(connect=False) as session:
            actual = session.provider.type
            if actual != h.provider_type:
                h.fail(
                    expected=f"Provider.type == PLUGIN_INFO.provider_type == {h.provider_type!r}",
                    actual=f"Provider.type == {actual!r}",
                )

    h.run(body)


@implements("IDENTITY-CAPABILITIES")
def identity_capabilities(h: Harness) -> None:
    async def body() -> None:
        async with h.session(connect=False) as session:
            try:
                actual = session.provider.get_export_capabilities()
            except Exception as exc:
                h.fail(
                    expected="get_export_capabilities() to answer before connect()",
                    actual=f"it raised {describe_error(exc)}",
                )
            if actual != h.capabilities:
                h.fail(expected=f"{h.capabilities!r}", actual=f"{actual!r}")
            if session.exchange():
                h.fail(
                    expected="no request (capabilities are static)",
                    actual=f"{len(session.exchange())} request(s)",
                )

    h.run(body)
