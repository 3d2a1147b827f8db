"""Loading a plugin whose ``PLUGIN_INFO`` is plain imports neither packaging's requirement
parser nor difflib.

An application's start-up pays for every module loaded (and again at exit): packaging's
requirement parser (with its markers, tags and tokenizer) is not needed for
``"httpx>=0.28,<1"``, nor difflib unless a configuration key is misspelt. Run in a fresh
interpreter: this one imported both long ago.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.plugins.conftest import plugin_source, write

LOAD = """
import sys
from hypersdk.plugins import PluginConfig, PluginManager
manager = PluginManager(
    PluginConfig(system_directories=(), entry_points=False, directories=[sys.argv[1]])
)
[info] = manager.load_all()
assert info.status.value == "loaded", info
print(sorted(name for name in sys.modules if name in ("packaging.requirements", "difflib")))
"""


def modules_after_loading(source: str, tmp_path: Path) -> str:
    directory = tmp_path / "plugins"
    write(directory / "plain.py", source)
    directory.chmod(0o700)
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_plain_plugin_loads_without_the_requirement_parser(tmp_path: Path) -> None:
    extra = ", dependencies=('httpx>=0.28,<1', 'anyio>=4.5', 'msgspec')"
    assert modules_after_loading(plugin_source("plain", info_extra=extra), tmp_path) == "[]"


def test_what_is_not_plain_is_still_packagings_to_decide(tmp_path: Path) -> None:
    extra = ", dependencies=('httpx[http2]>=0.28',)"
    loaded = modules_after_loading(plugin_source("plain", info_extra=extra), tmp_path)
    assert "packaging.requirements" in loaded
