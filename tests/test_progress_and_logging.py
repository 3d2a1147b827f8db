from __future__ import annotations

import logging
import subprocess
import sys
import threading

import pytest

from hypersdk import NullReporter, ProgressEvent, ProgressReporter, RecordingReporter


def test_reporters_satisfy_the_protocol() -> None:
    assert isinstance(NullReporter(), ProgressReporter)
    assert isinstance(RecordingReporter(), ProgressReporter)
    NullReporter().update("done", 100.0, "ignored")


def test_recording_reporter_is_thread_safe() -> None:
    reporter = RecordingReporter()

    def work() -> None:
        for index in range(1000):
            reporter.update("downloading", float(index), "")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reporter.events) == 4000
    reporter.update("done", 100.0, "finished")
    assert reporter.phases == ["downloading", "done"]
    assert reporter.events[-1] == ProgressEvent("done", 100.0, "finished")


def test_library_logger_has_only_a_null_handler() -> None:
    logger = logging.getLogger("hypersdk")
    assert [type(handler) for handler in logger.handlers] == [logging.NullHandler]
    assert logger.level == logging.NOTSET
    code = "import logging, hypersdk; print(len(logging.getLogger().handlers))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "0"  # the root logger is the application's


def test_import_is_light() -> None:
    """`import hypersdk` must not pull in httpx, cattrs, anyio or packaging."""
    code = (
        "import sys, hypersdk; "
        "heavy = [m for m in ('httpx', 'cattrs', 'anyio', 'packaging', 'hypothesis') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_lazy_http_helpers_resolve() -> None:
    import hypersdk

    assert callable(hypersdk.raise_for_response)
    assert "raise_for_response" in dir(hypersdk)
    with pytest.raises(AttributeError, match="does_not_exist"):
        hypersdk.does_not_exist  # type: ignore[attr-defined]  # noqa: B018
