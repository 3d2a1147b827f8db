"""ProgressTracker: forward only, clamped, throttled, thread-safe."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hypersdk import ConfigurationError, RecordingReporter
from hypersdk.export import ProgressTracker


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(0, 1),
        )
    )
)
def test_percent_is_monotonic_and_in_range(updates: list[tuple[str, float, float]]) -> None:
    recorder = RecordingReporter()
    clock = FakeClock()
    tracker = ProgressTracker(recorder, clock=clock)
    for phase, percent, step in updates:
        clock.now += step
        tracker.update(phase, percent, "")
    percents = recorder.percents
    assert percents == sorted(percents)
    assert all(0.0 <= percent <= 100.0 for percent in percents)


def test_updates_are_rate_limited_but_phase_changes_and_100_pass() -> None:
    recorder = RecordingReporter()
    clock = FakeClock()
    tracker = ProgressTracker(recorder, min_interval=0.5, clock=clock)
    for step in range(1000):  # a fast download: 1000 chunks in 0.999 s
        clock.now = step / 1000
        tracker.update("downloading", step / 10, "")
    tracker.update("verifying", 99.0, "")
    tracker.update("done", 100.0, "")
    tracker.update("done", 100.0, "")  # a repeated final update is not sent twice
    assert len(recorder.events) <= 5
    assert recorder.phases == ["downloading", "verifying", "done"]
    assert recorder.percents[-1] == 100.0
    assert tracker.percent == 100.0


def test_section_maps_and_hides_done() -> None:
    recorder = RecordingReporter()
    tracker = ProgressTracker(recorder, min_interval=0)
    download = tracker.section(0, 60)
    download.update("downloading", 50, "")
    download.update("done", 100, "")
    compress = tracker.section(60, 100)
    compress.update("compressing", 50, "")
    assert [(e.phase, e.percent) for e in recorder.events] == [
        ("downloading", 30.0),
        ("compressing", 80.0),
    ]


def test_none_reporter_is_accepted() -> None:
    ProgressTracker(None).update("x", 10, "")


def test_bad_arguments() -> None:
    with pytest.raises(ConfigurationError, match=r"^min_interval"):
        ProgressTracker(None, min_interval=-1)
    with pytest.raises(ConfigurationError, match=r"^section"):
        ProgressTracker(None).section(50, 10)


def test_thread_safe_updates_stay_ordered() -> None:
    recorder = RecordingReporter()
    tracker = ProgressTracker(recorder, min_interval=0)

    def work(offset: int) -> None:
        for value in range(offset, 100, 4):
            tracker.update("downloading", value, "")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert recorder.percents == sorted(recorder.percents)
