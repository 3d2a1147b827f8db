"""Progress on a terminal: a live bar when stdout is a TTY, plain lines otherwise."""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType
    from typing import Self

    from rich.console import Console
    from rich.progress import Progress, TaskID


class LineProgress:
    """Plain ``phase percent message`` lines for logs and pipes.

    A line is written when the phase changes, when progress moved by at least ``step``
    percent, or at 100, so a fast export does not flood a CI log.
    """

    def __init__(self, stream: TextIO | None = None, *, step: float = 10.0) -> None:
        self._stream = stream or sys.stdout
        self._step = step
        self._lock = threading.Lock()
        self._phase = ""
        self._printed = -1.0

    def update(self, phase: str, percent: float, message: str) -> None:
        """Write a line when there is something new to say."""
        with self._lock:
            if phase == self._phase and percent < 100 and percent - self._printed < self._step:
                return
            self._phase, self._printed = phase, percent
            suffix = f"  {message}" if message else ""
            self._stream.write(f"{phase:<12} {percent:5.1f}%{suffix}\n")
            self._stream.flush()


# The export toolkit reports "123 of 456 bytes" (or "123 bytes"); the bar shows it in
# human units with the transfer rate.
_BYTES = re.compile(r"^(?:\w+ )?(\d+)(?: of (\d+))? bytes")


def human_size(size: float) -> str:
    """Bytes in binary units for people: ``"512 B"``, ``"1.5 MiB"``, ``"2.0 TiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


class BarProgress:
    """A rich progress bar: phase, bar, percent, message (bytes), rate of progress, ETA."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress: Progress = Progress(
            TextColumn("[bold]{task.fields[phase]:<11}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[message]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID = self._progress.add_task(
            "export", total=100, phase="starting", message=""
        )
        self._lock = threading.Lock()
        self._first: tuple[float, int] | None = None  # (time, bytes) of the first byte report

    def _describe(self, message: str) -> str:
        match = _BYTES.match(message)
        if match is None:
            return message
        done, total = int(match[1]), match[2]
        now = time.monotonic()
        if self._first is None or done < self._first[1]:
            self._first = (now, done)
        elapsed = now - self._first[0]
        rate = (done - self._first[1]) / elapsed if elapsed > 0.2 else 0.0
        shown = human_size(done) + (f" / {human_size(int(total))}" if total else "")
        return f"{shown}  {human_size(rate)}/s" if rate else shown

    def update(self, phase: str, percent: float, message: str) -> None:
        """Move the bar (safe from worker threads)."""
        with self._lock:
            self._progress.update(
                self._task,
                completed=min(max(percent, 0.0), 100.0),
                phase=phase,
                message=self._describe(message),
            )

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


@contextlib.contextmanager
def terminal_progress(*, json: bool) -> Iterator[LineProgress | BarProgress]:
    """The reporter an export shows: a bar on a terminal, lines otherwise.

    With ``json`` the lines go to stderr so stdout stays one parseable document.
    """
    if json:
        yield LineProgress(sys.stderr)
    elif sys.stdout.isatty():
        from rich.console import Console

        with BarProgress(Console()) as bar:
            yield bar
    else:
        yield LineProgress(sys.stdout)
