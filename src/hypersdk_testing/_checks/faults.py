"""FAULT-*: what the provider does when the API throttles, fails, lies or hangs."""

from __future__ import annotations

import email.utils
import time
from typing import TYPE_CHECKING

import anyio

from hypersdk import (
    AuthenticationError,
    ExportOptions,
    HyperSDKError,
    ProviderAPIError,
    ProviderUnavailableError,
    RateLimitError,
    VMInfo,
)
from hypersdk_testing._checks._registry import implements
from hypersdk_testing._checks.discovery import difference
from hypersdk_testing._checks.hygiene import SHARED_WITH_FAULTS, shared_tour
from hypersdk_testing._fakecloud import Fault
from hypersdk_testing._harness import describe_error

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hypersdk_testing._harness import Harness, Session

# Retry-After in FAULT-RATE-LIMIT: long enough to tell from a provider's own short backoff
# (and from 0 or a unit slip, within the 0.05 s tolerance), short enough to wait for. A sleep
# never ends early, so a busy machine cannot make an honest wait look short.
_RETRY_AFTER = 0.15
# How late past an anyio deadline a call may return (scheduling noise on a busy CI box).
_DEADLINE_SLACK = 1.0


def _world(h: Harness) -> list[VMInfo]:
    return h.world(h.suite.page_size + 1)


async def _bounded(
    h: Harness, call: Callable[[], Awaitable[object]]
) -> tuple[object, BaseException | None, float, bool]:
    """Run ``call`` for at most the retry budget: (result, error, seconds, timed_out)."""
    started = time.monotonic()
    result: object = None
    error: BaseException | None = None
    with anyio.move_on_after(h.suite.retry_budget) as scope:
        try:
            result = await call()
        except Exception as exc:
            error = exc
    return result, error, time.monotonic() - started, scope.cancelled_caught


def _check_listing(h: Harness, session: Session, result: object, expected: list[VMInfo]) -> None:
    if not isinstance(result, list) or not all(isinstance(vm, VMInfo) for vm in result):
        h.fail(expected="list_vms() to return the world", actual=f"{result!r:.200}")
    problem = difference(h.expected(expected), h.expected(result))
    if problem:
        h.fail(
            expected="list_vms() to return the world after the fault",
            actual=problem,
            session=session,
        )


@implements("FAULT-RATE-LIMIT")
def fault_rate_limit(h: Harness) -> None:
    world = _world(h)

    async def body() -> None:
        async with h.session(world) as session:
            cloud = session.cloud
            cloud.inject(Fault.rate_limited(_RETRY_AFTER))
            result, error, _, timed_out = await _bounded(h, session.provider.list_vms)
            if timed_out:
                h.fail(
                    expected=f"list_vms() to finish within {h.suite.retry_budget} s",
                    actual="still running",
                )
            if isinstance(error, RateLimitError):
                if error.retry_after is None or abs(error.retry_after - _RETRY_AFTER) > 0.05:
                    h.fail(
                        expected=f"RateLimitError.retry_after == {_RETRY_AFTER}",
                        actual=f"retry_after == {error.retry_after!r}",
                    )
                return
            if error is not None:
                h.fail(
                    expected=f"success after waiting {_RETRY_AFTER} s, or RateLimitError",
                    actual=describe_error(error),
                )
            fault_at = cloud.faults_served[0][0] if cloud.faults_served else 0.0
            later = [request.at for request in cloud.requests if request.at > fault_at]
            if later and later[0] - fault_at < _RETRY_AFTER * 0.95:
                h.fail(
                    expected=f"the next request at least {_RETRY_AFTER} s after the 429",
                    actual=f"it came {later[0] - fault_at:.3f} s later",
                )
            _check_listing(h, session, result, world)

    h.run(body)


@implements("FAULT-RATE-LIMIT-BUDGET")
def fault_rate_limit_budget(h: Harness) -> None:
    async def body() -> None:
        async with h.session(_world(h)) as session:
            session.cloud.inject(Fault.rate_limited(0.05), times=None)
            _, error, seconds, timed_out = await _bounded(h, session.provider.list_vms)
            tries = len(session.cloud.faults_served)
            if timed_out:
                h.fail(
                    expected=f"RateLimitError within the retry budget ({h.suite.retry_budget} s)",
                    actual=f"still retrying after {seconds:.1f} s and {tries} answers of 429",
                )
            if not isinstance(error, RateLimitError) or error.retry_after is None:
                h.fail(
                    expected="RateLimitError with retry_after once the budget ran out",
                    actual=describe_error(error) if error else "list_vms() returned normally",
                )
            _retry_after_agrees(h, error, 0.05, "Retry-After: 0.05")

        # Contract 2: Retry-After may be an HTTP-date (RFC 9110); one in the past means 0 s.
        async with h.session(_world(h)) as session:
            date = email.utils.formatdate(time.time() - 3600, usegmt=True)
            session.cloud.inject(Fault.http(429, headers={"Retry-After": date}), times=None)
            _, error, seconds, timed_out = await _bounded(h, session.provider.list_vms)
            if timed_out or not isinstance(error, RateLimitError):
                h.fail(
                    expected=f"RateLimitError within the retry budget given Retry-After: {date}",
                    actual=f"still retrying after {seconds:.1f} s"
                    if timed_out
                    else describe_error(error)
                    if error
                    else "list_vms() returned normally",
                    since=2,
                )
            # A past date asks for no wait; a provider may still back off a little on its own.
            got: object = error.retry_after
            if type(got) not in (int, float) or not 0 <= float(got) <= h.suite.retry_budget:  # type: ignore[arg-type]
                h.fail(
                    expected=f"RateLimitError.retry_after in seconds (0 to "
                    f"{h.suite.retry_budget:g}) given Retry-After: {date} (an HTTP-date, past)",
                    actual=f"retry_after == {got!r}",
                    since=2,
                )

    h.run(body)


def _retry_after_agrees(h: Harness, error: RateLimitError, seconds: float, header: str) -> None:
    got: object = error.retry_after
    if type(got) not in (int, float) or abs(float(got) - seconds) > 0.05:  # type: ignore[arg-type]
        h.fail(
            expected=f"RateLimitError.retry_after == {seconds:g} (seconds) given {header}",
            actual=f"retry_after == {got!r}",
            since=2,
        )


@implements("FAULT-TRANSIENT")
def fault_transient(h: Harness) -> None:
    world = _world(h)

    async def body() -> None:
        for status in (500, 502, 503):
            async with h.session(world) as session:
                session.cloud.inject(Fault.http(status))
                result, error, seconds, timed_out = await _bounded(h, session.provider.list_vms)
                if timed_out or error is not None:
                    h.fail(
                        expected=f"list_vms() to retry after one HTTP {status} and succeed",
                        actual=describe_error(error)
                        if error
                        else f"still running after {seconds:.1f} s",
                    )
                _check_listing(h, session, result, world)

    h.run(body)


def _every_operation(h: Harness, session: Session) -> dict[str, Callable[[], Awaitable[object]]]:
    """list_vms() first (contract 1 checked only it), then every other operation."""
    provider = session.provider
    vm_id = session.cloud.vms[0].id
    operations: dict[str, Callable[[], Awaitable[object]]] = {
        "list_vms()": provider.list_vms,
        "validate_credentials()": provider.validate_credentials,
        f"get_vm({vm_id!r})": lambda: provider.get_vm(vm_id),
        "search_vms('vm')": lambda: provider.search_vms("vm"),
    }
    formats = h.capabilities.supported_formats
    if formats:
        options = ExportOptions(output_path=h.tmp_path / "unavailable", format=formats[0])
        operations[f"export_vm({vm_id!r}, ...)"] = lambda: provider.export_vm(vm_id, options)
    return operations


_Outcome = tuple[object, BaseException | None, float, bool]


async def _unavailable(h: Harness, fault: Fault, *, everywhere: bool) -> None:
    async with h.session(_world(h)) as session:
        operations = _every_operation(h, session)
        if not everywhere:
            operations = {"list_vms()": operations["list_vms()"]}
        session.cloud.inject(fault, times=None)
        outcomes: dict[str, _Outcome] = {}

        async def run(label: str, call: Callable[[], Awaitable[object]]) -> None:
            outcomes[label] = await _bounded(h, call)

        # All at once: each gives up within the retry budget, so the wait is one budget.
        async with anyio.create_task_group() as tasks:
            for label, call in operations.items():
                tasks.start_soon(run, label, call)
        _judge_unavailable(h, fault, {label: outcomes[label] for label in operations})


def _judge_unavailable(h: Harness, fault: Fault, outcomes: dict[str, _Outcome]) -> None:
    for label, (_, error, seconds, timed_out) in outcomes.items():
        if timed_out or not isinstance(error, ProviderUnavailableError):
            h.fail(
                expected=f"ProviderUnavailableError from {label} when every request gets "
                f"{fault.describe()}",
                actual=(
                    f"still retrying after {seconds:.1f} s"
                    if timed_out
                    else describe_error(error)
                    if error
                    else f"{label} returned normally"
                ),
                since=1 if label == "list_vms()" else 2,
            )


@implements("FAULT-UNAVAILABLE")
def fault_unavailable(h: Harness) -> None:
    # The secrets walk already drove every operation under a persistent 503 and a
    # persistent reset, all at once: judge those outcomes rather than wait out the same
    # retries a second time. 500 (contract 1's, on list_vms) and timeouts run here.
    tour = shared_tour(h)
    for fault in SHARED_WITH_FAULTS:
        _judge_unavailable(h, fault, tour.outcomes[fault.describe()])

    async def body() -> None:
        await _unavailable(h, Fault.http(500), everywhere=False)
        await _unavailable(h, Fault.timeout(), everywhere=True)

    h.run(body)


_BAD_BODIES = (
    Fault.malformed_json(),
    Fault.wrong_shape(),
    Fault.wrong_shape(b"[]"),
    Fault.wrong_shape(b"null"),
)


@implements("FAULT-BAD-BODY")
def fault_bad_body(h: Harness) -> None:
    async def body() -> None:
        async with h.session(_world(h)) as session:
            vm_id = session.cloud.vms[0].id
            operations: dict[str, Callable[[], Awaitable[object]]] = {
                "list_vms()": session.provider.list_vms,
                f"get_vm({vm_id!r})": lambda: session.provider.get_vm(vm_id),
            }
            for fault in _BAD_BODIES:
                for label, call in operations.items():
                    session.cloud.clear_faults()
                    session.cloud.inject(fault, times=None)
                    result, error, _, _ = await _bounded(h, call)
                    if not isinstance(error, ProviderAPIError):
                        h.fail(
                            expected=f"ProviderAPIError from {label} given {fault.describe()} "
                            f"({fault.body.decode()!r})",
                            actual=describe_error(error)
                            if error
                            else f"it returned {result!r:.120}",
                        )

    h.run(body)


def _error_faults() -> list[tuple[Fault, int | None]]:
    return [
        (Fault.http(401), None),
        (Fault.http(403), None),
        (Fault.http(404), None),
        (Fault.http(400), None),
        (Fault.http(422), None),
        (Fault.http(409), None),
        (Fault.malformed_json(), None),
        (Fault.wrong_shape(), None),
        (Fault.wrong_shape(b'"a string"'), None),
        (Fault.rate_limited(0.01), 1),
        (Fault.http(500), 1),
        (Fault.timeout(), 1),
        (Fault.connection_reset(), 1),
    ]


# Contract 2: the family each fault must map to, and whether it may be retried.
_FAMILIES: dict[int, tuple[type[HyperSDKError], bool]] = {
    401: (AuthenticationError, True),  # re-authenticating once (Keystone) is fine
    400: (ProviderAPIError, False),
    422: (ProviderAPIError, False),
}


def _family_problem(
    fault: Fault, error: BaseException | None, served: int
) -> tuple[str, str] | None:
    """(expected, actual) when ``error`` is not the family ``fault`` maps to (contract 2)."""
    family = _FAMILIES.get(fault.status) if fault.kind == "status" else None
    if family is None:
        return None
    kind, retried = family
    if not isinstance(error, kind) or type(error) is ProviderUnavailableError:
        shown = describe_error(error) if error else "success"
        return f"{kind.__name__} given {fault.describe()}", shown
    if not retried and served > 1:
        return (
            f"no retry of {fault.describe()} (it will not change by asking again)",
            f"{served} requests got it",
        )
    return None


@implements("FAULT-ERROR-TYPES")
def fault_error_types(h: Harness) -> None:
    async def body() -> None:
        async with h.session(_world(h)) as session:
            vm_id = session.cloud.vms[0].id
            provider = session.provider
            operations: dict[str, Callable[[], Awaitable[object]]] = {
                "validate_credentials()": provider.validate_credentials,
                "list_vms()": provider.list_vms,
                f"get_vm({vm_id!r})": lambda: provider.get_vm(vm_id),
                "search_vms('vm')": lambda: provider.search_vms("vm"),
            }
            for fault, times in _error_faults():
                for label, call in operations.items():
                    session.cloud.clear_faults()
                    session.cloud.inject(fault, times=times)
                    before = len(session.cloud.faults_served)
                    _, error, _, _ = await _bounded(h, call)
                    if error is not None and not isinstance(error, HyperSDKError):
                        h.fail(
                            expected=f"a HyperSDKError (or success) from {label} given "
                            f"{fault.describe()}",
                            actual=describe_error(error),
                        )
                    served = len(session.cloud.faults_served) - before
                    problem = _family_problem(fault, error, served)
                    if problem is not None:
                        h.fail(expected=f"{problem[0]} from {label}", actual=problem[1], since=2)

    h.run(body)


@implements("FAULT-DEADLINE")
def fault_deadline(h: Harness) -> None:
    # Short: the slack, not the deadline, bounds what passes; a plugin that ignores the
    # deadline waits out a 2 s Retry-After or a stall (STALL_CAP) and is caught either way.
    deadline = 0.15

    async def body() -> None:
        for fault in (Fault.rate_limited(2), Fault.http(503), Fault.stall()):
            async with h.session(_world(h)) as session:
                session.cloud.inject(fault, times=None)
                started = time.monotonic()
                with anyio.move_on_after(deadline):
                    try:
                        await session.provider.list_vms()
                    except HyperSDKError:
                        pass
                    except Exception as exc:
                        h.fail(
                            expected="a HyperSDKError or cancellation", actual=describe_error(exc)
                        )
                seconds = time.monotonic() - started
                if seconds > deadline + _DEADLINE_SLACK:
                    h.fail(
                        expected=f"list_vms() under anyio.move_on_after({deadline}) to stop by "
                        f"{deadline + _DEADLINE_SLACK:.1f} s while every request gets "
                        f"{fault.describe()}",
                        actual=f"it returned after {seconds:.2f} s",
                    )

    h.run(body)
