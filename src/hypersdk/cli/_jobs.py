"""Fleet exports from the terminal: ``export --all`` and ``jobs status|resume|retry``."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Final, TextIO

from hypersdk.cli import _exit, _render
from hypersdk.cli._progress import human_size as _human

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

    from rich.progress import Progress, TaskID

    from hypersdk.jobs import JobRecord, Journal, PlanProgress, PlanSummary

JOURNAL_NAME: Final = "hypersdk-plan.journal"
"""The journal's file name inside ``--output`` when ``--journal`` is not given."""


def totals_line(event: PlanProgress) -> str:
    """One line of plan totals: done / failed / running / pending, bytes, rate, ETA."""
    eta = f"  ETA {event.eta:.0f}s" if event.eta is not None else ""
    return (
        f"{event.done}/{event.total} done, {event.failed} failed, {len(event.running)} running, "
        f"{event.pending} pending  {_human(event.bytes_done)}  {_human(event.rate)}/s{eta}"
    )


class LinePlanView:
    """Plain lines, for logs and pipes: one whenever the totals change."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._last: tuple[int, ...] = ()

    def __call__(self, event: PlanProgress) -> None:
        key = (event.done, event.failed, event.cancelled, len(event.running), event.total)
        with self._lock:
            if key == self._last:
                return
            self._last = key
            self._stream.write(totals_line(event) + "\n")
            self._stream.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class BarPlanView:
    """One live view: a bar for the whole plan and one per running VM."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self._progress: Progress = Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            console=Console(),
        )
        self._total: TaskID = self._progress.add_task("plan", total=1, detail="")
        self._vms: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def __call__(self, event: PlanProgress) -> None:
        with self._lock:
            self._progress.update(
                self._total,
                total=max(event.total, 1),
                completed=event.done + event.failed,
                detail=totals_line(event),
            )
            for vm_id in list(self._vms):
                if vm_id not in event.running:
                    self._progress.remove_task(self._vms.pop(vm_id))
            for vm_id, percent in event.running.items():
                if vm_id not in self._vms:
                    self._vms[vm_id] = self._progress.add_task(vm_id[:24], total=100, detail="")
                self._progress.update(self._vms[vm_id], completed=percent)

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()


def plan_view(*, json: bool) -> LinePlanView | BarPlanView:
    """A bar view on a terminal, plain lines otherwise (stderr with ``--json``)."""
    if json:
        return LinePlanView(sys.stderr)
    if sys.stdout.isatty():
        return BarPlanView()
    return LinePlanView(sys.stdout)


def job_dict(job: JobRecord) -> dict[str, Any]:
    """A job as JSON-friendly data (the result through the hypersdk converter)."""
    from hypersdk.serialization import to_dict

    return {
        "vm_id": job.vm_id,
        "vm_name": job.vm_name,
        "state": job.state.value,
        "attempts": job.attempts,
        "error_family": job.error_family or None,
        "error_message": job.error_message or None,
        "result": to_dict(job.result) if job.result is not None else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def print_status(journal: Journal, *, json: bool) -> int:
    """Show a plan's jobs; the exit code says whether every VM is exported."""
    from hypersdk.jobs import JobState

    jobs = journal.jobs()
    counts = journal.counts()
    if json:
        _render.print_json(
            {
                "journal": str(journal.path),
                "provider_type": journal.plan.provider_type,
                "counts": {state.value: count for state, count in counts.items()},
                "jobs": [job_dict(job) for job in jobs],
            }
        )
    else:
        rows = [
            (
                job.vm_id,
                job.vm_name,
                job.state.value,
                str(job.attempts),
                f"{job.result.files[0]} ({_human(job.result.size)})"
                if job.result is not None and job.result.files
                else f"{job.error_family}: {job.error_message}"
                if job.error_family
                else "",
            )
            for job in jobs
        ]
        _render.journal_table(
            f"{journal.plan.provider_type} plan: {journal.path}",
            rows,
            ", ".join(f"{count} {state.value}" for state, count in counts.items()),
        )
    complete = bool(jobs) and counts[JobState.DONE] == len(jobs)
    return _exit.OK if complete else _exit.PLAN_INCOMPLETE


def summary_line(summary: PlanSummary, seconds: float) -> str:
    """What a finished run says on stderr."""
    return (
        f"plan: {summary.done}/{summary.total} exported ({summary.exported_now} in this run, "
        f"{seconds:.1f}s), {summary.failed} failed, {summary.pending + summary.cancelled} left"
    )


def now() -> float:
    """Monotonic seconds, for the summary line."""
    return time.monotonic()
