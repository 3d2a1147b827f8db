"""The embedded runner: a plan's jobs on anyio, recorded in its journal as they go."""

from __future__ import annotations

import contextlib
import math
import os
import random
import stat
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, cast

import anyio
import attrs

from hypersdk._regular import open_regular
from hypersdk._validation import is_int_between, is_seconds, shown
from hypersdk.errors import (
    ChecksumMismatchError,
    ConfigurationError,
    ExportError,
    HyperSDKError,
    ProviderAPIError,
    ProviderUnavailableError,
    RateLimitError,
)
from hypersdk.jobs._journal import JobState, Journal
from hypersdk.jobs._plan import ExportPlan, check_distinct_folders
from hypersdk.models import ExportResult
from hypersdk.providers import Provider

if TYPE_CHECKING:
    from pathlib import Path

    from hypersdk.progress import ProgressReporter

__all__ = [
    "PlanProgress",
    "PlanSummary",
    "run_plan",
    "is_transient",
    "prepare_folder",
    "export_once",
    "MARKER_NAME",
    "resolve_vms",
]

# Retrying these can succeed: the API was down, throttling, or the bytes arrived damaged.
# Never AuthenticationError, UnsupportedFormatError, VMNotFoundError or a bad config.
_TRANSIENT: Final = (ProviderUnavailableError, RateLimitError, ChecksumMismatchError)
_MAX_BACKOFF: Final = 300.0


def is_transient(error: BaseException) -> bool:
    """Whether a job that failed with ``error`` is worth another attempt."""
    return isinstance(error, _TRANSIENT)


@attrs.frozen(kw_only=True)
class PlanProgress:
    """One snapshot of a running plan, sent to the ``progress`` callback on every change.

    ``running`` maps each running VM id to its export's percent. ``rate`` is bytes per
    second exported in this run; ``eta`` the seconds left at the rate jobs finish in this
    run (``None`` until one has finished).
    """

    total: int
    done: int
    failed: int
    cancelled: int
    pending: int
    running: Mapping[str, float]
    bytes_done: int
    rate: float
    eta: float | None
    elapsed: float


@attrs.frozen(kw_only=True)
class PlanSummary:
    """How a run of a plan ended. ``ok`` is true when every VM is exported."""

    total: int
    done: int
    failed: int
    cancelled: int
    pending: int
    exported_now: int

    @property
    def ok(self) -> bool:
        """Every VM of the plan is exported."""
        return self.done == self.total


def prepare_folder(path: Path) -> None:
    """Create one VM's export folder, refusing a link or a folder someone else owns."""
    try:
        os.makedirs(path.parent, exist_ok=True)
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ExportError(
            f"cannot create the export folder {shown(str(path))}: {exc.strerror or exc}"
        ) from None
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise ExportError(
            f"{shown(str(path))} is not a folder of this user (a link or someone else's); "
            "refusing to export into it"
        )


MARKER_NAME: Final = ".hypersdk-export.json"
"""The file in a VM's folder that records its finished export (the ExportResult as JSON)."""


def _recorded(folder: Path, vm_id: str) -> ExportResult | None:
    """The result a finished export left in ``folder``, if its files are all still there."""
    from hypersdk.serialization import from_json

    marker = folder / MARKER_NAME
    try:
        # Not through a link, and never a FIFO a neighbour left at the name (it would block).
        fd = open_regular(marker, follow_links=False)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            return None
        with os.fdopen(os.dup(fd), "rb") as stream:
            text = stream.read(1 << 20)
    finally:
        os.close(fd)
    try:
        result = from_json(ExportResult, text)
    except HyperSDKError:
        return None
    if result.vm_id != vm_id or not result.files:
        return None
    for index, name in enumerate(result.files):
        try:
            file_info = os.lstat(folder / name)
        except OSError:
            return None
        main_size = result.compressed_size or result.size
        if not stat.S_ISREG(file_info.st_mode) or (index == 0 and file_info.st_size != main_size):
            return None
    return result


def _write_marker(folder: Path, result: ExportResult) -> None:
    from hypersdk.serialization import to_json

    temporary = folder / f"{MARKER_NAME}.{os.getpid()}.{threading.get_ident()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(temporary, flags, 0o600)
        try:
            os.write(fd, to_json(result).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, folder / MARKER_NAME)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise ExportError(
            f"cannot record the finished export in {shown(str(folder))}: {exc.strerror or exc}"
        ) from None


async def export_once(
    provider: Provider,
    plan: ExportPlan,
    vm_id: str,
    *,
    progress: ProgressReporter | None = None,
) -> ExportResult:
    """Export one VM of ``plan`` into its folder, unless a finished export is already there.

    This is what makes a job safe to run twice (a redelivered Celery task, a crash between
    the export and the journal's record of it): a finished export leaves a marker
    (:data:`MARKER_NAME`) holding its result, and a second run whose files are all still
    in place returns that result without exporting again. An export cut off half way left
    only the toolkit's part file, which the second run resumes.
    """
    options = plan.options_for(vm_id)
    prepare_folder(options.output_path)
    recorded = _recorded(options.output_path, vm_id)
    if recorded is not None:
        return recorded
    result: object = await provider.export_vm(vm_id, options, progress=progress)
    _check_result(provider, vm_id, result)
    assert isinstance(result, ExportResult)
    _write_marker(options.output_path, result)
    return result


def _check_result(provider: Provider, vm_id: str, result: object) -> None:
    """Refuse an answer that is not this VM's export (it is never marked done)."""
    if not isinstance(result, ExportResult):
        raise ProviderAPIError(
            f"provider {shown(provider.type)}: export_vm({shown(vm_id)}) must return an "
            f"ExportResult, got {type(result).__name__}"
        )
    if result.vm_id != vm_id:
        raise ProviderAPIError(
            f"provider {shown(provider.type)}: export_vm({shown(vm_id)}) returned the "
            f"result of another VM ({shown(result.vm_id)})"
        )


class _Tracker:
    """Counts and per-VM percents behind :class:`PlanProgress` (thread-safe)."""

    def __init__(self, journal: Journal, callback: Callable[[PlanProgress], None] | None) -> None:
        self._journal = journal
        self._callback = callback
        self._lock = threading.Lock()
        self._running: dict[str, float] = {}
        self._started = time.monotonic()
        self._finished_now = 0
        self._bytes_now = 0
        counts = journal.counts()
        self._counts = dict(counts)
        self._bytes_before = sum(
            job.result.size for job in journal.jobs(JobState.DONE) if job.result is not None
        )

    def started(self, vm_id: str) -> None:
        with self._lock:
            self._running[vm_id] = 0.0
        self.refresh()  # the journal has just moved the job from pending to running

    def percent(self, vm_id: str, percent: float) -> None:
        with self._lock:
            if vm_id in self._running:
                self._running[vm_id] = max(self._running[vm_id], min(percent, 100.0))
        self.emit()

    def ended(self, vm_id: str, result: ExportResult | None = None) -> None:
        with self._lock:
            self._running.pop(vm_id, None)
            if result is not None:
                self._finished_now += 1
                self._bytes_now += result.size
        self.refresh()

    def refresh(self) -> None:
        counts = self._journal.counts()
        with self._lock:
            self._counts = dict(counts)
        self.emit()

    def snapshot(self) -> PlanProgress:
        with self._lock:
            elapsed = time.monotonic() - self._started
            counts = self._counts
            left = counts[JobState.PENDING] + counts[JobState.RUNNING]
            eta = (elapsed / self._finished_now * left) if self._finished_now else None
            return PlanProgress(
                total=sum(counts.values()),
                done=counts[JobState.DONE],
                failed=counts[JobState.FAILED],
                cancelled=counts[JobState.CANCELLED],
                pending=counts[JobState.PENDING],
                running=MappingProxyType(dict(self._running)),
                bytes_done=self._bytes_before + self._bytes_now,
                rate=self._bytes_now / elapsed if elapsed > 0 else 0.0,
                eta=eta,
                elapsed=elapsed,
            )

    def emit(self) -> None:
        if self._callback is not None:
            self._callback(self.snapshot())


class _JobReporter:
    """The ProgressReporter one VM's export writes to."""

    def __init__(self, tracker: _Tracker, vm_id: str) -> None:
        self._tracker = tracker
        self._vm_id = vm_id

    def update(self, phase: str, percent: float, message: str) -> None:
        checked: object = percent  # a provider may send anything
        if isinstance(checked, int | float) and math.isfinite(checked):
            self._tracker.percent(self._vm_id, float(checked))


def _check_arguments(
    *,
    plan: object,
    journal: object,
    provider: object,
    concurrency: object,
    max_attempts: object,
    backoff: object,
    progress: object,
) -> None:
    if not isinstance(plan, ExportPlan):
        raise ConfigurationError(f"plan: must be an ExportPlan, got {type(plan).__name__}")
    if not isinstance(journal, Journal):
        raise ConfigurationError(f"journal: must be a Journal, got {type(journal).__name__}")
    if journal.plan != plan:
        raise ConfigurationError(
            f"journal: records a different plan ({shown(str(journal.path))}); "
            "open it with this plan, or use a new journal"
        )
    if not isinstance(provider, Provider):
        raise ConfigurationError(
            f"provider: must be a connected hypersdk Provider, got {type(provider).__name__}"
        )
    if provider.type != plan.provider_type:
        raise ConfigurationError(
            f"provider: is a {shown(provider.type)} provider "
            f"but the plan is for {shown(plan.provider_type)}"
        )
    for name, value, low, high in (
        ("concurrency", concurrency, 1, 256),
        ("max_attempts", max_attempts, 1, 100),
    ):
        if not is_int_between(value, low, high):
            raise ConfigurationError(
                f"{name}: must be an integer from {low} to {high}, got {shown(value)}"
            )
    if not is_seconds(backoff, at_most=_MAX_BACKOFF):
        raise ConfigurationError(
            f"backoff: must be a number of seconds from 0 to {_MAX_BACKOFF:g}, got {shown(backoff)}"
        )
    if progress is not None and not callable(progress):
        raise ConfigurationError(f"progress: must be a callable or None, got {shown(progress)}")


async def resolve_vms(plan: ExportPlan, provider: Provider) -> list[tuple[str, str]]:
    """The ``(vm_id, vm_name)`` of every VM the plan names, checked.

    The provider's answers are checked as untrusted input: anything but
    :class:`~hypersdk.VMInfo` objects, or a VM other than the one asked for by id, fails
    the plan with a :class:`~hypersdk.ProviderAPIError`; an error outside the hypersdk
    tree (a plugin bug) is reported by its type only, as its text may hold anything.
    """
    from hypersdk.models import VMInfo

    answers: object  # a plugin may return anything at run time, whatever its annotations
    try:
        if plan.vm_ids:
            answers = cast("object", [await provider.get_vm(vm_id) for vm_id in plan.vm_ids])
        else:
            answers = cast("object", await provider.list_vms(plan.filter))
    except HyperSDKError:
        raise
    except Exception as exc:  # a provider bug: its text is not ours to show
        raise ProviderAPIError(
            f"resolving the plan's VMs failed: {type(exc).__name__} "
            "(not a hypersdk error: a bug in the provider)"
        ) from None
    call = "get_vm" if plan.vm_ids else "list_vms"
    if not isinstance(answers, list | tuple):
        raise ProviderAPIError(
            f"provider {shown(provider.type)}: {call} must return a list of VMInfo, "
            f"got {type(answers).__name__}"
        )
    vms = [vm for vm in answers if isinstance(vm, VMInfo)]
    if len(vms) != len(answers):
        wrong = next(vm for vm in answers if not isinstance(vm, VMInfo))
        raise ProviderAPIError(
            f"provider {shown(provider.type)}: {call} must return VMInfo objects, "
            f"got a {type(wrong).__name__}"
        )
    for asked, vm in zip(plan.vm_ids, vms, strict=False):
        if vm.id != asked:
            raise ProviderAPIError(
                f"provider {shown(provider.type)}: get_vm({shown(asked)}) "
                f"returned another VM ({shown(vm.id)})"
            )
    check_distinct_folders(vm.id for vm in vms)
    return [(vm.id, vm.name) for vm in vms]


async def _expand(plan: ExportPlan, journal: Journal, provider: Provider) -> None:
    """Resolve the plan's VMs into jobs, once per journal."""
    if journal.expanded:
        return
    journal.add_jobs(await resolve_vms(plan, provider))


async def run_plan(
    plan: ExportPlan,
    journal: Journal,
    provider: Provider,
    *,
    concurrency: int = 4,
    max_attempts: int = 3,
    backoff: float = 1.0,
    progress: Callable[[PlanProgress], None] | None = None,
) -> PlanSummary:
    """Export every VM of ``plan`` that is not done yet, recording each job in ``journal``.

    Running the same plan again with the same journal is how a plan resumes: done jobs
    are skipped, jobs that were running when the process died or was cancelled start
    again (the export toolkit's part files make a half-done download continue), failed
    jobs stay failed until :meth:`Journal.requeue` puts them back.

    At most ``concurrency`` exports run at once (rate limits are per account, and a plan is
    for one provider). A job that fails with a transient error (the API unavailable or
    throttling, a damaged transfer) is tried again up to ``max_attempts`` times in all,
    waiting ``backoff`` seconds doubled each time (or the ``retry_after`` a
    :class:`~hypersdk.RateLimitError` gives), with jitter. Authentication, not-found and
    unsupported-format errors fail the job at once.

    Cancelling the calling task marks running jobs ``cancelled`` (the provider removes its
    partial files) and re-raises the cancellation.

    >>> async def main(provider: hypersdk.Provider) -> None:  # doctest: +SKIP
    ...     plan = ExportPlan(provider_type="openstack",
    ...                       options=ExportOptions(output_path="fleet", format="qcow2"))
    ...     with Journal("fleet.journal", plan) as journal:
    ...         summary = await run_plan(plan, journal, provider, concurrency=8)

    Raises:
        ConfigurationError: a wrong argument, or a journal of another plan.
        HyperSDKError: resolving the plan's VMs failed (nothing is recorded then).
    """
    _check_arguments(
        plan=plan,
        journal=journal,
        provider=provider,
        concurrency=concurrency,
        max_attempts=max_attempts,
        backoff=backoff,
        progress=progress,
    )
    await _expand(plan, journal, provider)
    journal.requeue(JobState.RUNNING, JobState.CANCELLED)
    tracker = _Tracker(journal, progress)
    tracker.emit()
    limiter = anyio.CapacityLimiter(concurrency)
    exported: list[str] = []

    async def one(vm_id: str) -> None:
        async with limiter:
            for attempt in range(1, max_attempts + 1):
                outcome = await _attempt(plan, journal, provider, tracker, vm_id)
                if outcome is _DONE:
                    exported.append(vm_id)
                    return
                if outcome is _TAKEN:
                    return
                assert isinstance(outcome, BaseException)
                if not is_transient(outcome) or attempt == max_attempts:
                    journal.fail(vm_id, outcome)
                    tracker.refresh()
                    return
                journal.retry_later(vm_id, outcome)
                tracker.refresh()
                await anyio.sleep(_wait(outcome, backoff, attempt))

    async with anyio.create_task_group() as group:
        for job in journal.jobs(JobState.PENDING):
            group.start_soon(one, job.vm_id)
    counts = journal.counts()
    return PlanSummary(
        total=sum(counts.values()),
        done=counts[JobState.DONE],
        failed=counts[JobState.FAILED],
        cancelled=counts[JobState.CANCELLED],
        pending=counts[JobState.PENDING] + counts[JobState.RUNNING],
        exported_now=len(exported),
    )


_DONE: Final = "done"
_TAKEN: Final = "taken"


async def _attempt(
    plan: ExportPlan, journal: Journal, provider: Provider, tracker: _Tracker, vm_id: str
) -> BaseException | str:
    """Run one attempt of one job: ``_DONE``, ``_TAKEN`` or the error that ended it."""
    if not journal.start(vm_id):
        return _TAKEN  # someone else has it, or it is done: nothing to do here
    tracker.started(vm_id)
    try:
        result = await export_once(provider, plan, vm_id, progress=_JobReporter(tracker, vm_id))
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            journal.cancel(vm_id)
            tracker.ended(vm_id)
        raise
    except HyperSDKError as exc:
        tracker.ended(vm_id)
        return exc
    except Exception as exc:  # a provider bug must fail its job, not the whole plan
        tracker.ended(vm_id)
        return exc
    journal.finish(vm_id, result)
    tracker.ended(vm_id, result)
    return _DONE


def _wait(error: BaseException, backoff: float, attempt: int) -> float:
    base = backoff * 2 ** (attempt - 1)
    if isinstance(error, RateLimitError) and error.retry_after:
        base = max(base, float(error.retry_after))
    # Full jitter on top keeps a fleet of jobs from retrying in lockstep.
    wait: float = min(base + random.uniform(0, base / 2), _MAX_BACKOFF)  # noqa: S311
    return wait
