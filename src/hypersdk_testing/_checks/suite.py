"""SUITE-CONFIG: the conformance class itself is well formed."""

from __future__ import annotations

import contextlib
import types
from typing import TYPE_CHECKING

import attrs

from hypersdk import ProviderConfig, VMInfo
from hypersdk_testing import _contract
from hypersdk_testing._checks._registry import implements
from hypersdk_testing._contract import check_by_id

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hypersdk_testing._harness import Harness

_CONFIG_FIELDS = ("endpoint", "host", "port", "username", "password", "region")


@implements("SUITE-CONFIG")
def suite_config(h: Harness) -> None:
    suite = h.suite
    problems: list[str] = []
    if not isinstance(getattr(suite, "plugin", None), types.ModuleType):
        problems.append("`plugin` must be the plugin module (plugin = my_plugin)")
    for method in ("configure", "mock_api"):
        # By name, not identity: the base class may come from a re-imported module.
        if getattr(type(suite), method).__qualname__ == f"ProviderConformance.{method}":
            problems.append(f"define {method}() (see docs/conformance.md, 'Running it')")
    reasons: Mapping[str, object] = suite.exclusions  # authors may write anything here
    for check_id, reason in reasons.items():
        try:
            check_by_id(check_id)
        except KeyError:
            problems.append(f"exclusions names {check_id!r}, which is not a contract check ID")
            continue
        if not isinstance(reason, str) or not reason.strip():
            problems.append(f"exclusions[{check_id!r}] needs a written reason")
    pinned = suite.contract_version
    newest = _contract.CONTRACT_VERSION
    if pinned is not None and (type(pinned) is not int or not 1 <= pinned <= newest):
        problems.append(f"contract_version = {pinned!r}: must be None or 1..{newest}")
    if type(suite.page_size) is not int or suite.page_size < 1:
        problems.append(f"page_size = {suite.page_size!r}: must be an integer >= 1")
    known = {field.name for field in attrs.fields(VMInfo)}
    compared = h.compared_fields if type(pinned) is int or pinned is None else ()
    unknown = [name for name in compared if name not in known]
    if unknown or not {"id", "name"} <= set(compared):
        problems.append(
            f"compared_fields must name VMInfo fields and include id and name; unknown: {unknown}"
        )
    for name in suite.required_config or ():
        if name not in _CONFIG_FIELDS and not name.startswith("metadata."):
            problems.append(
                f"required_config names {name!r}; use one of {', '.join(_CONFIG_FIELDS)} "
                "or 'metadata.<key>'"
            )
    if not problems:
        problems.extend(_required_config_problems(h))
    if not problems:
        problems.extend(_auth_problems(h))
    sizes = suite.world_sizes
    if sizes is not None and (
        not sizes or any(type(size) is not int or size < 0 for size in sizes)
    ):
        problems.append(f"world_sizes = {sizes!r}: must be non-empty integers >= 0")
    if problems:
        h.fail(
            expected="a well-formed conformance class",
            actual=f"{len(problems)} problem(s):\n  - " + "\n  - ".join(problems),
        )


def _required_config_problems(h: Harness) -> list[str]:
    """What is wrong with ``required_config`` against the config ``configure()`` returns."""
    from hypersdk_testing._checks.lifecycle import without
    from hypersdk_testing._fakecloud import FakeCloud

    cloud = FakeCloud(
        [],
        page_size=h.suite.page_size,
        auth_scheme=h.suite.auth_scheme,
        auth_header=h.suite.auth_header,
    )
    cloud._network = h.network  # configure() may ask for cloud.loopback_url(...)
    try:
        config: object = h.suite.configure(cloud)
    except Exception as exc:
        return [f"configure(cloud) raised {type(exc).__name__}: {exc}"]
    if not isinstance(config, ProviderConfig):
        return [f"configure(cloud) must return a ProviderConfig, not {type(config).__name__}"]
    fields = h.required_config(config, cloud.token)
    if not fields:
        return [
            "required_config is not set and configure(cloud) puts cloud.token in no "
            "password, username or metadata value: name the required settings in "
            "required_config = (...)"
        ]
    return [
        f"required_config names {field!r}, which configure(cloud) leaves unset; set it in "
        "configure() or drop it from required_config"
        for field in fields
        if without(config, field) == config
    ]


def _auth_problems(h: Harness) -> list[str]:
    """The token sent where ``auth_header``/``auth_scheme`` do not look for it."""
    from hypersdk import PluginMetadata
    from hypersdk_testing._failure import ContractViolation

    if not isinstance(getattr(h.suite.plugin, "PLUGIN_INFO", None), PluginMetadata):
        return []  # IDENTITY-LOADS reports it
    seen: list[str] = []

    async def body() -> None:
        async with h.session(connect=False) as session:
            # LIFECYCLE-CONNECT judges connect(); only the token's place matters here.
            with contextlib.suppress(Exception):
                await session.provider.connect(session.config)
            seen.extend(session.cloud.misplaced_token)

    with contextlib.suppress(ContractViolation):  # building failed: IDENTITY-LOADS says why
        h.run(body)
    if not seen:
        return []
    scheme = h.suite.auth_scheme
    return [
        f"the mocked API answered 401 because the plugin sent cloud.token in {seen[0]}, while "
        f"the class says auth_header = {h.suite.auth_header!r}, auth_scheme = {scheme!r}: "
        "set auth_header and auth_scheme to where your API expects the token"
    ]
