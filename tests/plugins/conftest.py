"""Fixtures that build real plugin files, directories and installed distributions.

Every test runs with ``HOME`` pointed at an empty temporary folder and
``HYPERSDK_PLUGIN_PATH`` unset, so ``~/.hypersdk/plugins`` and the environment of the
machine running the tests never leak in; managers built with :func:`manager_for` scan
only the directories a test passes (no system directories, no entry points).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hypersdk.plugins import PluginConfig, PluginManager


def plugin_source(
    name: str,
    *,
    provider_type: str | None = None,
    version: str = "1.0",
    provider: str = "FakeBlockingProvider",
    info_extra: str = "",
    factory_args: str = "",
    header: str = "",
    footer: str = "",
) -> str:
    """The source of a valid plugin module, with hooks to break it in one place.

    ``header`` runs first (raise there to fail at import), ``info_extra`` adds keyword
    arguments to ``PluginMetadata``, ``factory_args`` to the provider constructor, and
    ``footer`` runs last (redefine or delete ``new_provider`` there).
    """
    return (
        f"{header}\n"
        "import logging\n"
        "from hypersdk import ExportCapabilities, PluginMetadata, ProviderConfig\n"
        "from tests.plugins.providers import FakeAsyncProvider, FakeBlockingProvider\n"
        f"PLUGIN_INFO = PluginMetadata(name={name!r}, version={version!r}, "
        f"provider_type={provider_type or name!r}{info_extra})\n"
        "def new_provider(config: ProviderConfig, logger: logging.Logger) -> object:\n"
        f"    return {provider}(config, PLUGIN_INFO{factory_args})\n"
        f"{footer}\n"
    )


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    """Write ``text`` to ``path`` (creating folders, mode 0700) and set its mode."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def manager_for(*directories: Path, **settings: object) -> PluginManager:
    """A manager that scans exactly ``directories``: no system dirs, no entry points."""
    config = PluginConfig(
        system_directories=(),
        entry_points=False,
        directories=directories,
        **settings,  # type: ignore[arg-type]
    )
    return PluginManager(config)


def private_modules() -> set[str]:
    """The private plugin modules currently imported."""
    return {name for name in sys.modules if name.startswith("hypersdk._plugins.")}


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """An empty HOME, no HYPERSDK_PLUGIN_PATH; private plugin modules removed afterwards."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("HYPERSDK_PLUGIN_PATH", raising=False)
    before = private_modules()
    yield
    for name in private_modules() - before:
        del sys.modules[name]


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    """An empty plugin directory owned by the current user, mode 0700."""
    directory = tmp_path / "plugins"
    directory.mkdir(mode=0o700)
    return directory


InstallDist = Callable[..., Path]


@pytest.fixture
def install_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InstallDist]:
    """Install a real distribution into a temporary site folder put on ``sys.path``.

    ``install_dist("acme", entry_points={"acme": "acme_plugin"}, modules={"acme_plugin":
    source})`` writes ``acme_plugin.py`` and ``acme-1.0.dist-info`` (``METADATA`` and an
    ``entry_points.txt`` with a ``[hypersdk.providers]`` section), so
    ``importlib.metadata`` finds it exactly as it finds a pip-installed package, and finds
    only the distributions installed here. The folder leaves ``sys.path`` and its modules
    leave ``sys.modules`` after the test.
    """
    site = tmp_path / "site"
    site.mkdir(mode=0o700)
    created: list[str] = []

    def install(
        dist: str, *, entry_points: dict[str, str], modules: dict[str, str], version: str = "1.0"
    ) -> Path:
        for module, source in modules.items():
            write(site / f"{module}.py", source)
            created.append(module)
        info = site / f"{dist}-{version}.dist-info"
        write(info / "METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
        write(info / "entry_points.txt", f"[hypersdk.providers]\n{lines}")
        importlib.invalidate_caches()
        return site

    monkeypatch.syspath_prepend(str(site))
    # Only this folder's distributions: plugins installed in the test environment (the
    # DigitalOcean example is) must not change what these tests discover.
    everywhere = importlib.metadata.distributions

    def only_here(**kwargs: Any) -> Iterable[importlib.metadata.Distribution]:
        return everywhere(**kwargs) if kwargs else everywhere(path=[str(site)])

    monkeypatch.setattr(importlib.metadata, "distributions", only_here)
    yield install
    for module in created:
        sys.modules.pop(module, None)
    importlib.invalidate_caches()


UNPRIVILEGED_UID = 54321  # owns nothing on the machine
needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="dropping to another uid (or giving a file to one) needs root; CI runs as root",
)

_CHILD_PROLOGUE = """\
import contextlib, io, json, os, sys
# Everything the child needs is imported while it is still root: after the drop it may
# not be able to read the interpreter, the source tree or the virtual environment. A
# warm-up load and CLI run pull in whatever hypersdk imports lazily.
import importlib.metadata, platform, site, subprocess, sysconfig, tomllib
import hypersdk, hypersdk.plugins
import hypersdk.plugins._loader, hypersdk.plugins._security, hypersdk.plugins._watch
import tests.plugins.providers
sysconfig.get_paths()
import anyio, anyio.lowlevel, anyio.to_thread, asyncio, watchfiles
async def _warm_up():
    await anyio.to_thread.run_sync(lambda: None)
anyio.run(_warm_up)
hypersdk.plugins.PluginManager(hypersdk.plugins.PluginConfig(
    system_directories=(), entry_points=False, directories=[{warm_up!r}])).load_all()
try:
    from hypersdk.cli import main as _cli
except ImportError:
    pass
else:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        _cli(["plugins", "list", "--json"])
        _cli(["plugins", "list"])
os.setgroups([])
os.setgid({uid})
os.setuid({uid})
result = {{}}
"""


def run_unprivileged(code: str, *, warm_up: Path, env: dict[str, str] | None = None) -> Any:
    """Run ``code`` in a Python child that dropped to :data:`UNPRIVILEGED_UID`.

    Before the drop the child loads the plugins of ``warm_up`` (a folder of its own, so
    the test's plugins keep their private names) and runs the CLI once. ``code`` fills
    the dict ``result``, which comes back decoded from JSON. The child has a 60 s limit;
    what it wrote to stderr is in the assertion message on failure.
    """
    prologue = _CHILD_PROLOGUE.format(uid=UNPRIVILEGED_UID, warm_up=str(warm_up))
    script = prologue + code + "\nprint(json.dumps(result))\n"
    child_env = {**os.environ, **(env or {})}
    child_env.pop("HYPERSDK_PLUGIN_PATH", None)
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
        env=child_env,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.splitlines()[-1])


@pytest.fixture
def world_tmp() -> Iterator[Path]:
    """A root-owned temporary folder that every uid may search (mode 0755).

    pytest's ``tmp_path`` lives under a 0700 folder an unprivileged child cannot enter.
    """
    folder = Path(tempfile.mkdtemp(prefix="hypersdk-plugins-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o700)  # so rmtree may enter what the test locked
        shutil.rmtree(folder, ignore_errors=True)
