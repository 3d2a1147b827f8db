"""The CLI's progress reporters, in-process."""

from __future__ import annotations

import io
import time

from rich.console import Console

from hypersdk.cli._progress import BarProgress, LineProgress


def test_bar_shows_bytes_and_rate() -> None:
    bar = BarProgress(Console(file=io.StringIO()))
    assert bar._describe("1048576 of 4194304 bytes") == "1.0 MiB / 4.0 MiB"
    time.sleep(0.3)
    shown = bar._describe("3145728 of 4194304 bytes")
    assert shown.startswith("3.0 MiB / 4.0 MiB  ")
    assert shown.endswith("MiB/s")
    assert bar._describe("checking size and checksum") == "checking size and checksum"


def test_lines_are_rate_limited_but_phase_changes_and_100_always_show() -> None:
    out = io.StringIO()
    lines = LineProgress(out, step=10)
    for percent in range(101):
        lines.update("downloading", float(percent), "")
    lines.update("verifying", 100.0, "checking")
    written = out.getvalue().splitlines()
    assert len(written) == 12  # 0, 10, ..., 100, then the new phase
    assert written[-1].startswith("verifying")
