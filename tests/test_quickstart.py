"""The README's main job must keep working: run the quickstart as a user would."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_quickstart_lists_filters_and_exports(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "all VMs (5)" in out
    assert "not-a-real-token" not in out
    assert "VMNotFoundError" in out
    assert "UnsupportedFormatError" in out
    document = re.search(r"^\{\n.*?^\}$", out, flags=re.S | re.M)
    assert document is not None
    exported = json.loads(document.group(0))
    disk = tmp_path / exported["files"][0]
    assert hashlib.sha256(disk.read_bytes()).hexdigest() == exported["checksum"]
    assert [p.name for p in tmp_path.iterdir()] == [disk.name]  # no .part left behind
