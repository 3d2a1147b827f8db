"""Progress that only moves forward, stays in [0, 100] and does not flood the reporter."""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING

from hypersdk._validation import is_seconds, shown
from hypersdk.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from hypersdk.progress import ProgressReporter

__all__ = ["ProgressTracker"]


class ProgressTracker:
    """Wraps a :class:`~hypersdk.ProgressReporter` with the guarantees callers rely on.

    * ``percent`` is clamped to ``[0, 100]`` and never lower than the last one sent;
    * updates within ``min_interval`` seconds of the previous one are dropped unless the
      phase changes or the percent reaches 100, so a fast download sends a handful of
      updates per second rather than one per chunk;
    * it is thread-safe, so worker threads may report.

    A tracker is itself a reporter. :meth:`section` gives a reporter for one step of a
    longer job, mapping that step's 0-100 onto part of the overall range.

    >>> from hypersdk import RecordingReporter
    >>> recorder = RecordingReporter()
    >>> tracker = ProgressTracker(recorder)
    >>> tracker.update("downloading", 40, "")
    >>> tracker.update("verifying", 30, "")   # going backwards is clamped
    >>> recorder.percents
    [40.0, 40.0]

    Args:
        reporter: Where updates go; ``None`` discards them.
        min_interval: Seconds between two updates of the same phase (0 sends all).
        clock: A monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        reporter: ProgressReporter | None,
        *,
        min_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if reporter is not None and not callable(getattr(reporter, "update", None)):
            raise ConfigurationError(
                "reporter: must be a ProgressReporter (an object with update(phase, "
                f"percent, message)) or None, got {type(reporter).__name__}"
            )
        if not callable(clock):
            raise ConfigurationError(f"clock: must be a callable, got {type(clock).__name__}")
        if not is_seconds(min_interval):
            raise ConfigurationError(
                f"min_interval: must be a number of seconds >= 0, at most a year, "
                f"got {shown(min_interval)}"
            )
        self._reporter = reporter
        self._min_interval = float(min_interval)
        self._clock = clock
        self._lock = threading.Lock()
        self._percent = 0.0
        self._phase: str | None = None
        self._sent_at = -math.inf

    @property
    def percent(self) -> float:
        """The highest percent reported so far."""
        with self._lock:
            return self._percent

    def update(self, phase: str, percent: float, message: str) -> None:
        """Forward the update if it is not throttled, clamped and never going back."""
        _check_update(phase, percent, message)
        if self._reporter is None:
            return
        value = percent if math.isfinite(percent) else 0.0
        with self._lock:
            value = max(self._percent, min(100.0, max(0.0, float(value))))
            now = self._clock()
            changed = phase != self._phase
            if not changed and value < 100.0 and now - self._sent_at < self._min_interval:
                return
            if not changed and value == self._percent and value == 100.0:
                return
            self._percent, self._phase, self._sent_at = value, phase, now
            # Call under the lock so two threads cannot deliver out of order.
            self._reporter.update(phase, value, message)

    def section(self, start: float, end: float) -> ProgressReporter:
        """A reporter for one step that maps its ``0-100`` onto ``start-end`` here.

        The step's own ``"done"`` phase is not forwarded: the whole job is done only
        when its owner says so.
        """
        if not (is_percent(start) and is_percent(end) and start <= end):
            raise ConfigurationError(
                f"section: must satisfy 0 <= start <= end <= 100, got {shown(start)}, {shown(end)}"
            )
        return _Section(self, start, end)


def _check_update(phase: object, percent: object, message: object) -> None:
    if not isinstance(phase, str):
        raise ConfigurationError(f"phase: must be a string, got {type(phase).__name__}")
    if not isinstance(percent, int | float) or isinstance(percent, bool):
        raise ConfigurationError(f"percent: must be a number, got {type(percent).__name__}")
    if not isinstance(message, str):
        raise ConfigurationError(f"message: must be a string, got {type(message).__name__}")


def is_percent(value: object) -> bool:
    return is_seconds(value, at_most=100)


class _Section:
    __slots__ = ("_end", "_parent", "_start")

    def __init__(self, parent: ProgressTracker, start: float, end: float) -> None:
        self._parent, self._start, self._end = parent, start, end

    def update(self, phase: str, percent: float, message: str) -> None:
        _check_update(phase, percent, message)
        if phase == "done":
            return
        clamped = min(100.0, max(0.0, percent)) if math.isfinite(percent) else 0.0
        self._parent.update(
            phase, self._start + (self._end - self._start) * clamped / 100.0, message
        )
