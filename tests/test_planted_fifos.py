"""A FIFO or a device where a file is expected is refused at once, never read.

Shared folders have hostile neighbours: whoever can write there can leave a FIFO (or a
link to ``/dev/zero``) at a name hypersdk is about to read. Opening a FIFO for reading
waits for a writer that never comes; a device never ends. Each case runs in a child
process with a time limit, so a regression fails here instead of hanging the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

LIMIT = 25  # seconds; each case takes well under one when it does not hang


def run(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter; return what it printed (the outcome)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=LIMIT,
            check=False,
            cwd=Path(__file__).parents[1],
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"still blocked after {LIMIT} s: it opened or read a FIFO or a device")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


OUTCOME = """
import sys
def outcome(call):
    try:
        call()
    except Exception as exc:
        print(type(exc).__name__, "|", exc)
    else:
        print("no error")
"""


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "planted.img"
    os.mkfifo(path)
    return path


@pytest.fixture(params=["fifo", "device", "link to a device"])
def not_a_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "fifo":
        path = tmp_path / "planted.img"
        os.mkfifo(path)
        return path
    if request.param == "device":
        return Path("/dev/zero")
    path = tmp_path / "planted.img"
    path.symlink_to("/dev/zero")
    return path


@pytest.mark.parametrize(
    "call",
    [
        "hypersdk.export.detect_file_format(sys.argv[1])",
        "hypersdk.export.check_file_format(sys.argv[1], 'raw')",
        "hypersdk.export.sha256_file(sys.argv[1])",
    ],
)
def test_reading_an_image_refuses_what_is_not_a_file(not_a_file: Path, call: str) -> None:
    code = OUTCOME + f"import hypersdk.export\noutcome(lambda: {call})\n"
    found = run(code, str(not_a_file))
    assert found.startswith("ExportError |"), found
    assert "not a regular file" in found


def test_compressing_refuses_what_is_not_a_file(not_a_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    code = OUTCOME + (
        "import hypersdk.export\n"
        "outcome(lambda: hypersdk.export.compress_file_blocking(sys.argv[1], sys.argv[2]))\n"
    )
    found = run(code, str(not_a_file), str(out / "image.raw.zst"))
    assert found.startswith("ExportError |"), found
    assert "not a regular file" in found
    assert list(out.iterdir()) == []  # nothing written, no part left


def test_a_plugin_config_file_that_is_a_fifo_is_refused(fifo: Path) -> None:
    code = OUTCOME + (
        "from hypersdk.plugins import PluginConfig\n"
        "outcome(lambda: PluginConfig.from_toml(sys.argv[1]))\n"
    )
    found = run(code, str(fifo))
    assert found.startswith("ConfigurationError |"), found
    assert "not a regular file" in found


def test_the_cli_refuses_a_config_file_that_is_a_fifo(fifo: Path) -> None:
    code = (
        "import subprocess, sys\n"
        "done = subprocess.run([sys.executable, '-m', 'hypersdk.cli', 'plugins', 'list',"
        " '--config', sys.argv[1]], capture_output=True, text=True, timeout=20)\n"
        "print(done.returncode, '|', done.stderr.strip().splitlines()[-1:])\n"
    )
    found = run(code, str(fifo))
    assert not found.startswith("0 |"), found
    assert "not a regular file" in found


def test_a_fifo_at_the_finished_export_marker_is_no_marker(tmp_path: Path) -> None:
    from hypersdk.jobs._runner import MARKER_NAME

    folder = tmp_path / "vm-1"
    folder.mkdir(mode=0o700)
    os.mkfifo(folder / MARKER_NAME)
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from hypersdk.jobs._runner import _recorded\n"
        "print(_recorded(Path(sys.argv[1]), 'vm-1'))\n"
    )
    assert run(code, str(folder)) == "None"
