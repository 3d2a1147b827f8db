"""Progress reporting: the protocol providers call, and two ready-made reporters."""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["ProgressReporter", "ProgressEvent", "NullReporter", "RecordingReporter"]


@runtime_checkable
class ProgressReporter(Protocol):
    """Receives progress of a long operation such as an export.

    ``phase`` is a short word (``"preparing"``, ``"downloading"``, ``"verifying"``,
    ``"done"``...), ``percent`` the overall progress in ``[0, 100]`` and never lower than
    the previous call's, ``message`` a human sentence. Providers may call ``update`` from
    worker threads, so an implementation that keeps state must be thread-safe.
    """

    def update(self, phase: str, percent: float, message: str) -> None:
        """Record one step of progress."""


class NullReporter:
    """A reporter that ignores every update (the default when none is given)."""

    __slots__ = ()

    def update(self, phase: str, percent: float, message: str) -> None:
        """Ignore the update."""


@attrs.frozen
class ProgressEvent:
    """One recorded call of :meth:`ProgressReporter.update`."""

    phase: str
    percent: float
    message: str


class RecordingReporter:
    """A thread-safe reporter that keeps every update, for tests and diagnostics.

    >>> reporter = RecordingReporter()
    >>> reporter.update("downloading", 50.0, "half way")
    >>> reporter.percents
    [50.0]
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[ProgressEvent] = []

    def update(self, phase: str, percent: float, message: str) -> None:
        """Record the update."""
        with self._lock:
            self._events.append(ProgressEvent(phase, percent, message))

    @property
    def events(self) -> list[ProgressEvent]:
        """A copy of the updates received so far, oldest first."""
        with self._lock:
            return list(self._events)

    @property
    def percents(self) -> list[float]:
        """The ``percent`` of every update, oldest first."""
        return [event.percent for event in self.events]

    @property
    def phases(self) -> list[str]:
        """The distinct phases in the order they first appeared."""
        return list(dict.fromkeys(event.phase for event in self.events))
