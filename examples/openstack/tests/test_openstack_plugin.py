"""How the plugin loads: cheaply, without the export code."""

from __future__ import annotations

import subprocess
import sys


def test_loading_the_plugin_does_not_load_the_export_toolkit() -> None:
    # An application that only lists servers should not pay for the export code.
    code = "import sys, hypersdk_openstack; print('hypersdk.export' in sys.modules)"
    out = subprocess.run(  # noqa: S603 - our own interpreter, a fixed program
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
