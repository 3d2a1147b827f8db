"""The export package's public surface and its import cost."""

from __future__ import annotations

import subprocess
import sys

import hypersdk
import hypersdk.export


def test_import_hypersdk_does_not_load_the_toolkit() -> None:
    code = (
        "import sys, hypersdk\n"
        "heavy = {'hypersdk.export', 'stamina', 'httpx', 'backports.zstd'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert hypersdk.export.download\n"
        "assert 'hypersdk.export' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_public_name_is_documented() -> None:
    assert hypersdk.export.__all__
    for name in hypersdk.export.__all__:
        value = getattr(hypersdk.export, name)
        if callable(value):
            assert value.__doc__, name
    assert "export" in dir(hypersdk)


def test_no_direct_httpx_imports_in_hypersdk() -> None:
    from pathlib import Path

    package = Path(hypersdk.__file__).parent
    offenders = [
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if path.name != "_http.py"
        and any(
            line.strip().startswith(("import httpx", "from httpx"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == []
