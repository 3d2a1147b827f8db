"""LIFECYCLE-*: connect, configuration errors, bad credentials, the not-connected guard."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Final

import anyio
import attrs

from hypersdk import (
    AuthenticationError,
    ConfigurationError,
    ExportOptions,
    NotConnectedError,
    ProviderConfig,
    UnsupportedFormatError,
)
from hypersdk_testing._checks._registry import implements
from hypersdk_testing._harness import describe_error, track_clients

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hypersdk import Provider
    from hypersdk_testing._harness import Harness, Session

# How long a closed client's connections may take to reach the server as closed.
_CLOSE_GRACE: Final = 0.5


@implements("LIFECYCLE-CONNECT")
def lifecycle_connect(h: Harness) -> None:
    async def body() -> None:
        async with h.session(connect=False) as session:
            for step in ("connect", "validate_credentials"):
                try:
                    if step == "connect":
                        await session.provider.connect(session.config)
                    else:
                        await session.provider.validate_credentials()
                except Exception as exc:
                    h.fail(
                        expected=f"{step}() to succeed with the config from configure(cloud)",
                        actual=f"it raised {describe_error(exc)}",
                    )

    h.run(body)


def without(config: ProviderConfig, field: str) -> ProviderConfig:
    """``config`` with ``field`` (or ``metadata.<key>``) set back to its empty default."""
    if field.startswith("metadata."):
        key = field.removeprefix("metadata.")
        return attrs.evolve(config, metadata={k: v for k, v in config.metadata.items() if k != key})
    empty: object = {"password": None, "port": 0}.get(field, "")
    changes: dict[str, Any] = {field: empty}
    return attrs.evolve(config, **changes)


@implements("LIFECYCLE-MISSING-CONFIG")
def lifecycle_missing_config(h: Harness) -> None:
    async def body() -> None:
        async with h.session(connect=False) as session:
            fields = h.required_config(session.config, session.cloud.token)
            absent = [field for field in fields if without(session.config, field) == session.config]
        if not fields or absent:
            h.fail(
                expected="configure(cloud) to set every required_config field",
                actual=(
                    f"it leaves {', '.join(absent)} unset, so removing it proves nothing"
                    if absent
                    else "configure(cloud) puts cloud.token in no password, username or "
                    "metadata value, so the required setting is unknown"
                ),
                context="a SUITE-CONFIG problem, see SUITE-CONFIG: name the fields in "
                "required_config = (...) on the conformance class",
            )
        for field in fields:
            name = field.removeprefix("metadata.")
            error: ConfigurationError | None = None
            requests = 0
            async with h.session(connect=False) as session:
                config = without(session.config, field)
                try:
                    provider = h.build(config)
                    await provider.connect(config)
                except ConfigurationError as exc:
                    error = exc
                except Exception as exc:
                    h.fail(
                        expected=f"ConfigurationError naming {name!r} when {field} is missing",
                        actual=f"{describe_error(exc)}",
                    )
                else:
                    await provider.disconnect()
                requests = len(session.exchange())
            if error is None:
                h.fail(
                    expected=f"ConfigurationError naming {name!r} when {field} is missing",
                    actual="connect() succeeded",
                )
            if name.casefold() not in str(error).casefold():
                h.fail(
                    expected=f"the ConfigurationError to name {name!r}",
                    actual=f"ConfigurationError: {error}",
                )
            if requests:
                h.fail(
                    expected=f"no request before the ConfigurationError for {field}",
                    actual=f"{requests} request(s)",
                )

    h.run(body)


@implements("LIFECYCLE-BAD-TOKEN")
def lifecycle_bad_token(h: Harness) -> None:
    async def body() -> None:
        async with h.session(connect=False) as session:
            session.cloud.rotate_token()  # the config's token is now a rejected one
            for step in ("connect", "validate_credentials"):
                try:
                    if step == "connect":
                        await session.provider.connect(session.config)
                    else:
                        await session.provider.validate_credentials()
                except AuthenticationError:
                    return
                except Exception as exc:
                    h.fail(
                        expected=f"AuthenticationError from {step}() with a rejected token",
                        actual=describe_error(exc),
                    )
            h.fail(
                expected="AuthenticationError from connect() or validate_credentials()",
                actual="both succeeded although the API answered 401",
            )

    h.run(body)


def _operations(h: Harness, session: Session) -> dict[str, Callable[[], Awaitable[object]]]:
    provider: Provider = session.provider
    vm_id = session.cloud.vms[0].id if session.cloud.vms else "1"
    formats = h.capabilities.supported_formats
    options = ExportOptions(
        output_path=h.tmp_path / "never", format=formats[0] if formats else "raw"
    )
    return {
        "validate_credentials()": provider.validate_credentials,
        "list_vms()": provider.list_vms,
        f"get_vm({vm_id!r})": lambda: provider.get_vm(vm_id),
        "search_vms('a')": lambda: provider.search_vms("a"),
        f"export_vm({vm_id!r}, ...)": lambda: provider.export_vm(vm_id, options),
    }


@implements("LIFECYCLE-NOT-CONNECTED")
def lifecycle_not_connected(h: Harness) -> None:
    async def body() -> None:
        async with h.session(connect=False) as session:
            for moment in ("before connect()", "after disconnect()"):
                if moment == "after disconnect()":
                    await session.provider.connect(session.config)
                    await session.provider.disconnect()
                for label, call in _operations(h, session).items():
                    before = len(session.exchange())
                    try:
                        await call()
                    except NotConnectedError:
                        pass
                    except UnsupportedFormatError:
                        if h.capabilities.supported_formats:
                            h.fail(
                                expected=f"NotConnectedError from {label} {moment}",
                                actual="UnsupportedFormatError for a supported format",
                            )
                    except Exception as exc:
                        h.fail(
                            expected=f"NotConnectedError from {label} {moment}",
                            actual=describe_error(exc),
                        )
                    else:
                        h.fail(
                            expected=f"NotConnectedError from {label} {moment}",
                            actual="it returned normally",
                        )
                    made = len(session.exchange()) - before
                    if made:
                        h.fail(
                            expected=f"no request from {label} {moment}",
                            actual=f"{made} request(s)",
                        )

    h.run(body)


@implements("LIFECYCLE-DISCONNECT")
def lifecycle_disconnect(h: Harness) -> None:
    async def body() -> None:
        with track_clients() as clients:
            async with h.session(connect=False) as session:
                provider = session.provider
                try:
                    await provider.disconnect()  # before connect: a no-op
                    await provider.connect(session.config)
                    await provider.list_vms()
                    after_list = len(clients)
                    await _every_operation(h, session)
                    await provider.disconnect()
                    await provider.disconnect()
                except Exception as exc:
                    h.fail(
                        expected="disconnect() to never raise, however often it is called",
                        actual=describe_error(exc),
                    )
                still_open = [
                    (index, client) for index, client in enumerate(clients) if not client.is_closed
                ]
                if still_open:
                    h.fail(
                        expected="every HTTP client closed after disconnect()",
                        actual=f"{len(still_open)} of {len(clients)} client(s) still open: "
                        + ", ".join(type(client).__name__ for _, client in still_open),
                        context=None
                        if still_open[0][0] < after_list
                        else "made after connect() and list_vms(), by get_vm, search_vms or "
                        "export_vm",
                        since=1 if still_open[0][0] < after_list else 2,
                    )
                await _socket_connections_closed(h, session)

    h.run(body)


async def _every_operation(h: Harness, session: Session) -> None:
    """Contract 2: clients made by any operation count, export_vm's included."""
    provider = session.provider
    vm_id = session.cloud.vms[0].id
    formats = h.capabilities.supported_formats
    out = h.tmp_path / "disconnect-export"
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: provider.get_vm(vm_id),
        lambda: provider.search_vms("a"),
    ]
    if formats:
        calls.append(
            lambda: provider.export_vm(vm_id, ExportOptions(output_path=out, format=formats[0]))
        )
    for call in calls:
        with contextlib.suppress(Exception):  # how they fail is other checks' business
            await call()


async def _socket_connections_closed(h: Harness, session: Session) -> None:
    """Over the socket path no client object can be inspected: its connections can."""
    network = session.network
    if not network.requests_served:
        return
    deadline = time.monotonic() + _CLOSE_GRACE
    while network.open_connections and time.monotonic() < deadline:
        await anyio.sleep(0.01)
    if network.open_connections:
        h.fail(
            expected="every connection to the API closed after disconnect()",
            actual=f"{network.open_connections} keep-alive connection(s) to the mocked API "
            f"still open {_CLOSE_GRACE} s after disconnect()",
            context="checked on the socket path: close the client's session or pool "
            "(requests.Session.close(), urllib3.PoolManager.clear()) in disconnect()",
            since=2,
        )
