"""Fixtures that build real plugin files, directories and installed distributions.

Every test runs with ``HOME`` pointed at an empty temporary folder and
``HYPERSDK_PLUGIN_PATH`` unset, so ``~/.hypersdk/plugins`` and the environment of the
machine running the tests never leak in; managers built with :func:`manager_for` scan
only the directories a test passes (no system directories, no entry points).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

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
    ``importlib.metadata`` finds it exactly as it finds a pip-installed package. The
    folder leaves ``sys.path`` and its modules leave ``sys.modules`` after the test.
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
    yield install
    for module in created:
        sys.modules.pop(module, None)
    importlib.invalidate_caches()
