"""SECRET-*, HTTP-*, CONCURRENT-CALLS: the provider keeps its token, traffic and state tidy."""

from __future__ import annotations

import contextlib
import math
import time
import weakref
from typing import TYPE_CHECKING

import anyio
import attrs

from hypersdk import ExportOptions, ProviderConfig, RecordingReporter, VMFilter, VMInfo
from hypersdk_testing._checks._registry import implements
from hypersdk_testing._checks.discovery import difference
from hypersdk_testing._fakecloud import Fault
from hypersdk_testing._harness import describe_error
from hypersdk_testing._loopback import SOCKET_EXTENSION

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hypersdk_testing._guard import BlockedConnection
    from hypersdk_testing._harness import Harness, Session


class _Tour:
    """What one walk through every operation (and every kind of failure) left behind.

    Each list is split at ``*_v1``: what contract 1's walk produced comes first, what
    contract 2's fault paths added after (a leak found only there is a contract-2 failure).
    """

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.errors_v1 = 0
        self.session: Session | None = None
        self.token = ""
        self.texts: list[str] = []
        self.logs: list[str] = []
        self.logs_v1 = 0
        self.exchange_v1 = 0
        self.blocked: list[BlockedConnection] = []
        # Per contract-2 fault, what each operation did: (result, error, seconds, timed_out).
        # FAULT-UNAVAILABLE reads the 503 and reset passes here instead of walking again.
        self.outcomes: dict[str, dict[str, tuple[object, BaseException | None, float, bool]]]
        self.outcomes = {}


# One tour per conformance class: the hygiene checks all read the same walk.
_TOURS: weakref.WeakKeyDictionary[type, _Tour] = weakref.WeakKeyDictionary()


def shared_tour(h: Harness) -> _Tour:
    """The class's one walk through every operation and fault (made on first use)."""
    return _tour_of(h)


def _tour_of(h: Harness) -> _Tour:
    tour = _TOURS.get(type(h.suite))
    if tour is None:
        before = len(h.guard.blocked)
        tour = h.run(lambda: _tour(h))
        tour.blocked = h.guard.blocked[before:]
        _TOURS[type(h.suite)] = tour
    if tour.session is not None:
        h.adopt(tour.session)  # this check's failure text redacts the tour's token too
    return tour


# Contract 2: every fault path, on every operation at once (export included). Persistent,
# so each operation gives up and raises the error whose text is checked.
_TOUR_FAULTS = (
    Fault.rate_limited(0.01),
    Fault.http(503),
    Fault.http(401),
    Fault.connection_reset(),  # a transport error (timeouts take the same mapping)
    Fault.malformed_json(),
    Fault.wrong_shape(),
    Fault.reset_mid_body(),
)


# The passes FAULT-UNAVAILABLE judges from the walk (every operation must end in
# ProviderUnavailableError) instead of driving them again.
SHARED_WITH_FAULTS = (Fault.http(503), Fault.connection_reset())
assert all(fault in _TOUR_FAULTS for fault in SHARED_WITH_FAULTS)


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and what it was raised from (as pytest shows them), cycles cut."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not other for other in seen):
        seen.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return seen


async def _tour(h: Harness) -> _Tour:
    """Connect, list, filter, get, search, fail in every way, export; keep everything."""
    tour = _Tour()
    world = h.world(h.suite.page_size + 1)
    formats = h.capabilities.supported_formats
    exports = iter(range(10**6))

    async with h.session(world) as session:
        tour.session = session
        tour.token = session.cloud.token
        provider = session.provider
        tour.texts += [repr(provider), str(provider)]
        vm = session.cloud.vms[0]

        async def export() -> object:
            out = h.tmp_path / "tour" / f"export-{next(exports)}"
            return await provider.export_vm(
                vm.id,
                ExportOptions(output_path=out, format=formats[0]),
                progress=RecordingReporter(),
            )

        async def attempt(
            step: Callable[[], Awaitable[object]],
            record: dict[str, tuple[object, BaseException | None, float, bool]] | None = None,
            label: str = "",
        ) -> None:
            started = time.monotonic()
            result: object = None
            error: BaseException | None = None
            with anyio.move_on_after(h.suite.retry_budget) as scope:
                try:
                    result = await step()
                except Exception as exc:
                    error = exc
                    tour.errors.append(exc)
            if record is not None:
                record[label] = (result, error, time.monotonic() - started, scope.cancelled_caught)

        steps: list[tuple[Fault | None, Callable[[], Awaitable[object]]]] = [
            (None, provider.validate_credentials),
            (None, provider.list_vms),
            (None, lambda: provider.list_vms(VMFilter(min_cpus=2))),
            (None, lambda: provider.get_vm(vm.id)),
            (None, lambda: provider.get_vm("987654321012")),
            (None, lambda: provider.search_vms(vm.name[:3])),
            (Fault.http(401), provider.validate_credentials),
            (Fault.http(403), provider.list_vms),
            (Fault.http(500), lambda: provider.get_vm(vm.id)),
            (Fault.malformed_json(), provider.list_vms),
            (Fault.timeout(), lambda: provider.get_vm(vm.id)),
        ]
        for fault, step in steps:
            session.cloud.clear_faults()
            if fault is not None:
                session.cloud.inject(fault, times=None)
            await attempt(step)
        session.cloud.clear_faults()
        if formats:
            await attempt(export)
        tour.texts += [repr(provider), str(provider)]
        tour.errors_v1 = len(tour.errors)
        tour.logs_v1 = len(h.logs.texts())
        tour.exchange_v1 = len(session.exchange())

        # Labelled as FAULT-UNAVAILABLE reports them ("list_vms()" is contract 1's).
        operations: dict[str, Callable[[], Awaitable[object]]] = {
            "list_vms()": provider.list_vms,
            "validate_credentials()": provider.validate_credentials,
            "list_vms(VMFilter(min_cpus=2))": lambda: provider.list_vms(VMFilter(min_cpus=2)),
            f"get_vm({vm.id!r})": lambda: provider.get_vm(vm.id),
            f"search_vms({vm.name[:3]!r})": lambda: provider.search_vms(vm.name[:3]),
        }
        if formats:
            operations[f"export_vm({vm.id!r}, ...)"] = export
        for fault in _TOUR_FAULTS:
            session.cloud.clear_faults()
            session.cloud.inject(fault, times=None)
            record = tour.outcomes.setdefault(fault.describe(), {})
            # All at once: each gives up within the retry budget, so the wait is one budget.
            async with anyio.create_task_group() as tasks:
                for label, operation in operations.items():
                    tasks.start_soon(attempt, operation, record, label)
        session.cloud.clear_faults()
        tour.texts += [repr(provider), str(provider)]
    tour.logs = [text for _, text in h.logs.texts()]
    return tour


@implements("SECRET-LOGS")
def secret_logs(h: Harness) -> None:
    tour = _tour_of(h)
    leaks = [(i, text) for i, text in enumerate(tour.logs) if tour.token in text]
    if leaks:
        h.fail(
            expected="no log record containing the token",
            actual=f"{len(leaks)} record(s), e.g. {leaks[0][1][:300]!r}",
            context=f"{len(tour.logs)} records captured at DEBUG"
            + ("" if leaks[0][0] < tour.logs_v1 else _V2_CONTEXT),
            since=None if leaks[0][0] < tour.logs_v1 else 2,
        )


_V2_CONTEXT = (
    "; found on a fault path contract 2 drives (429, 5xx, 401/400, timeouts, resets, bad "
    "bodies, a dropped disk download), every operation and export_vm included"
)


@implements("SECRET-REPR")
def secret_repr(h: Harness) -> None:
    tour = _tour_of(h)
    leaks: list[tuple[bool, str]] = [(True, text) for text in tour.texts if tour.token in text]
    for index, error in enumerate(tour.errors):
        for link in _chain(error):
            for text in (str(link), repr(link), *(str(arg) for arg in link.args)):
                if tour.token in text:
                    leaks.append((index < tour.errors_v1, f"{type(link).__name__}: {text}"))
                    break
    if leaks:
        v1 = [text for old, text in leaks if old]
        h.fail(
            expected="the token absent from repr/str of the provider and its errors (and the "
            "errors they were raised from)",
            actual=f"{len(leaks)} leak(s), e.g. {(v1 or [leaks[0][1]])[0][:300]!r}",
            context=None if v1 else _V2_CONTEXT.removeprefix("; "),
            since=None if v1 else 2,
        )


@implements("SECRET-URL")
def secret_url(h: Harness) -> None:
    tour = _tour_of(h)
    assert tour.session is not None
    leaky = [
        (index, request)
        for index, (request, _) in enumerate(tour.session.exchange())
        if tour.token in str(request.url)
    ]
    if leaky:
        index, request = leaky[0]
        h.fail(
            expected="no request URL containing the token",
            actual=f"{len(leaky)} request(s), e.g. {request.method} {request.url.path}?...",
            since=None if index < tour.exchange_v1 else 2,
        )


@implements("HTTP-MOCKED")
def http_mocked(h: Harness) -> None:
    tour = _tour_of(h)
    assert tour.session is not None
    unmatched = tour.session.cloud.unmatched
    if unmatched:
        routes = [repr(route.pattern) for route in tour.session.router.routes][:-1]
        h.fail(
            expected="every request served by a mock_api route",
            actual="unserved: " + ", ".join(f"{r.method} {r.url}" for r in unmatched[:5]),
            context=f"mock_api routes: {'; '.join(routes) or 'none'}",
        )
    if tour.blocked:
        targets = sorted({blocked.target for blocked in tour.blocked})
        host = tour.blocked[0].host
        h.fail(
            expected="no connection outside 127.0.0.1 (the suite serves mock_api there)",
            actual=f"{len(tour.blocked)} connection(s) blocked, to {', '.join(targets[:5])}",
            context="the plugin's HTTP does not go through httpx, or it ignores the endpoint "
            "it was given. Point it at the mock: in configure(), pass "
            f"endpoint=cloud.loopback_url('https://{host}/...') (the base URL your routes "
            f"use), and serve {host} in mock_api",
            since=2,
        )


def _infinite(timeout: object) -> list[str]:
    if not isinstance(timeout, dict):
        return ["connect", "read", "write", "pool"]
    return [
        name
        for name in ("connect", "read", "write", "pool")
        if not isinstance(timeout.get(name), int | float) or not math.isfinite(timeout[name])
    ]


# HTTP-TIMEOUTS over the socket: the config's timeout, and how late past it a client may
# hang up on a silent server (thread scheduling on a busy CI machine).
_SOCKET_TIMEOUT = 0.3
_SOCKET_SLACK = 0.7


@implements("HTTP-TIMEOUTS")
def http_timeouts(h: Harness) -> None:
    tour = _tour_of(h)
    assert tour.session is not None
    over_socket = False
    for request, _ in tour.session.exchange():
        if request.extensions.get(SOCKET_EXTENSION):
            over_socket = True  # no httpx timeout extension to read: proven by behaviour below
            continue
        missing = _infinite(request.extensions.get("timeout"))
        if missing:
            h.fail(
                expected="finite connect/read/write/pool timeouts on every request",
                actual=f"{request.method} {request.url.path} has no {', '.join(missing)} timeout",
            )
    if over_socket:
        _socket_timeouts(h)


def _socket_timeouts(h: Harness) -> None:
    """A silent server is given up on within ``ProviderConfig.timeout`` (plus slack)."""
    limit = _SOCKET_TIMEOUT + _SOCKET_SLACK

    def short(config: ProviderConfig) -> ProviderConfig:
        return attrs.evolve(config, timeout=_SOCKET_TIMEOUT)

    async def body() -> None:
        async with h.session(h.world(2), adjust=short) as session:
            network = session.network
            network.stall_cap = limit + 0.3
            before = len(network.stalls)
            session.cloud.inject(Fault.stall())  # the next request, whatever its path
            with contextlib.suppress(Exception):
                await session.provider.list_vms()
            stalls = network.stalls[before:]
            late = [stall for stall in stalls if stall.ended_by != "client"]
            if late:
                stall = late[0]
                h.fail(
                    expected=f"the client to hang up on a server silent for more than "
                    f"{limit:.1f} s, with ProviderConfig.timeout = {_SOCKET_TIMEOUT}",
                    actual=f"{stall.method} {stall.path} was still waiting after "
                    f"{stall.seconds:.1f} s (the server hung up first): the request has no "
                    "read timeout, or one not taken from ProviderConfig.timeout",
                    context="checked by behaviour: the request went over the socket path, "
                    "where no httpx timeout can be read",
                    since=2,
                )

    h.run(body)


@implements("CONCURRENT-CALLS")
def concurrency(h: Harness) -> None:
    world = h.world(2 * h.suite.page_size + 1)

    async def body() -> None:
        async with h.session(world) as session:
            problems: list[str] = []
            expected = h.expected(list(session.cloud.vms))

            async def lister(index: int) -> None:
                try:
                    listed = await session.provider.list_vms()
                except Exception as exc:
                    problems.append(f"task {index}: list_vms() raised {describe_error(exc)}")
                    return
                problem = difference(expected, h.expected(listed))
                if problem:
                    problems.append(f"task {index}: list_vms() returned {problem}")

            async def getter(index: int, vm: VMInfo) -> None:
                try:
                    got: object = await session.provider.get_vm(vm.id)
                except Exception as exc:
                    problems.append(f"task {index}: get_vm({vm.id!r}) raised {describe_error(exc)}")
                    return
                if not isinstance(got, VMInfo):
                    problems.append(f"task {index}: get_vm({vm.id!r}) returned {got!r:.100}")
                elif problem := difference([h.comparable(vm)], [h.comparable(got)]):
                    problems.append(f"task {index}: get_vm({vm.id!r}) returned {problem}")

            async with anyio.create_task_group() as tasks:
                for index in range(20):
                    if index % 2:
                        tasks.start_soon(lister, index)
                    else:
                        vms = session.cloud.vms
                        tasks.start_soon(getter, index, vms[index % len(vms)])
            if problems:
                h.fail(
                    expected="20 concurrent list_vms/get_vm calls all correct",
                    actual=f"{len(problems)} wrong:\n  - " + "\n  - ".join(problems[:5]),
                )

    h.run(body)
