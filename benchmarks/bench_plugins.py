"""What does loading plugins cost? hypersdk's PluginManager next to stevedore.

Generates, in a temporary folder, 200 directory plugins and a distribution announcing 20
entry-point plugins in the ``hypersdk.providers`` group (each a real module with
``PLUGIN_INFO``, ``new_provider`` and a small ``BlockingProvider``), then measures:

1. ``PluginManager.load_all()`` over all 220: discover, check (ownership, mode, SHA-256),
   import, validate the contract, build one provider each, register;
2. the same for the 20 entry points alone, next to stevedore's ``ExtensionManager``
   loading the same 20 entry points (stevedore imports and resolves them, nothing more);
3. ``PluginManager().load_all()`` with no plugins installed: the default directories
   (``HOME`` pointed at an empty temporary folder) and the entry-point scan of this
   environment; in-process, and the first call in a fresh interpreter (which also
   imports ``hypersdk.plugins``).

Before each run every generated module is dropped from ``sys.modules`` so each run really
imports. Entry-point modules use ``__pycache__`` bytecode after the first run (as any
installed package does) unless ``PYTHONDONTWRITEBYTECODE`` is set; directory plugins never
do (hypersdk compiles the checked source), so run it both ways. Figures are medians.

    pip install stevedore   # benchmark-only dependency
    python benchmarks/bench_plugins.py [--runs 7]
    PYTHONDONTWRITEBYTECODE= python benchmarks/bench_plugins.py   # with bytecode caches
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

DIRECTORY_PLUGINS = 200
ENTRY_POINT_PLUGINS = 20
ENTRY_POINT_PREFIX = "hsdk_bench_ep_"

PLUGIN = '''\
"""Benchmark plugin {name}."""
import logging

import hypersdk
from hypersdk import ExportCapabilities, PluginMetadata, ProviderConfig, ProviderType

PLUGIN_INFO = PluginMetadata(
    name="{name}",
    version="1.0.0",
    provider_type=ProviderType("{name}"),
    capabilities=ExportCapabilities(supported_formats=["ova"]),
)


class Provider(hypersdk.BlockingProvider):
    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    @property
    def name(self) -> str:
        return "{name}"

    @property
    def type(self) -> ProviderType:
        return PLUGIN_INFO.provider_type

    def connect(self, config):
        self.config = config

    def disconnect(self):
        pass

    def validate_credentials(self):
        pass

    def list_vms(self, filter=None):
        return []

    def get_vm(self, identifier):
        raise hypersdk.VMNotFoundError(identifier)

    def export_vm(self, identifier, options, *, progress=None):
        raise hypersdk.UnsupportedFormatError(options.format)

    def get_export_capabilities(self):
        return PLUGIN_INFO.capabilities


def new_provider(config: ProviderConfig, logger: logging.Logger) -> Provider:
    return Provider(config)
'''


def generate(root: Path) -> tuple[Path, Path]:
    """Write the directory plugins and the entry-point distribution under ``root``."""
    plugins = root / "plugins"
    plugins.mkdir(mode=0o700)
    for index in range(DIRECTORY_PLUGINS):
        name = f"dir_plugin_{index:03d}"
        (plugins / f"{name}.py").write_text(PLUGIN.format(name=name))
    site = root / "site"
    site.mkdir(mode=0o700)
    lines = []
    for index in range(ENTRY_POINT_PLUGINS):
        name = f"{ENTRY_POINT_PREFIX}{index:02d}"
        (site / f"{name}.py").write_text(PLUGIN.format(name=name))
        lines.append(f"{name} = {name}\n")
    info = site / "hsdk_bench_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: hsdk-bench-plugins\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text("[hypersdk.providers]\n" + "".join(lines))
    return plugins, site


def forget_generated_modules() -> None:
    for name in list(sys.modules):
        if name.startswith(("hypersdk._plugins.", ENTRY_POINT_PREFIX)):
            del sys.modules[name]
    importlib.invalidate_caches()


def median_ms(runs: int, body: Callable[[], object]) -> float:
    samples = []
    for _ in range(runs):
        forget_generated_modules()
        started = time.perf_counter()
        body()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs

    try:
        stevedore: Any = importlib.import_module("stevedore")
    except ImportError:
        sys.exit("stevedore is a benchmark-only dependency: pip install stevedore")
    from hypersdk.plugins import PluginConfig, PluginManager, PluginStatus

    logging.getLogger("hypersdk.plugins").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        home = root / "home"
        home.mkdir()
        os.environ["HOME"] = str(home)  # stevedore's cache and ~/.hypersdk go here
        os.environ.pop("HYPERSDK_PLUGIN_PATH", None)
        plugins, site = generate(root)
        sys.path.insert(0, str(site))  # the benchmark "installs" the distribution
        importlib.invalidate_caches()

        everything = PluginConfig(system_directories=(), directories=[plugins])
        entry_points_only = PluginConfig(system_directories=())

        def load(config: PluginConfig, expected: int) -> None:
            infos = PluginManager(config).load_all()
            loaded = sum(
                info.status is PluginStatus.LOADED and info.name.startswith(("dir_", "hsdk_"))
                for info in infos
            )
            if loaded != expected:
                failures = [str(info.error) for info in infos if info.error][:3]
                raise SystemExit(f"expected {expected} plugins, loaded {loaded}: {failures}")

        def stevedore_load() -> None:
            manager = stevedore.ExtensionManager(
                namespace="hypersdk.providers", invoke_on_load=False
            )
            names = [name for name in manager.names() if name.startswith(ENTRY_POINT_PREFIX)]
            if len(names) != ENTRY_POINT_PLUGINS:
                raise SystemExit(f"stevedore loaded {len(names)} entry points")

        total = DIRECTORY_PLUGINS + ENTRY_POINT_PLUGINS
        all_ms = median_ms(runs, lambda: load(everything, total))
        ep_ms = median_ms(runs, lambda: load(entry_points_only, ENTRY_POINT_PLUGINS))
        stevedore_ms = median_ms(runs, stevedore_load)

        for name in (f"{ENTRY_POINT_PREFIX}{i:02d}" for i in range(ENTRY_POINT_PLUGINS)):
            sys.modules.pop(name, None)
        sys.path.remove(str(site))
        importlib.invalidate_caches()
        empty_ms = median_ms(runs * 3, lambda: PluginManager().load_all())
        # One fresh interpreter per run: time `import hypersdk`, then the first
        # PluginManager().load_all() (which imports hypersdk.plugins on the way).
        cold_code = (
            "import time; t0 = time.perf_counter(); import hypersdk; "
            "t1 = time.perf_counter(); hypersdk.PluginManager().load_all(); "
            "t2 = time.perf_counter(); print((t1 - t0) * 1000, (t2 - t1) * 1000)"
        )
        cold_runs = [[float(field) for field in run_python(cold_code).split()] for _ in range(runs)]
        import_only = statistics.median(run[0] for run in cold_runs)
        cold = statistics.median(run[1] for run in cold_runs)

    bytecode = "off (PYTHONDONTWRITEBYTECODE)" if sys.dont_write_bytecode else "on"
    print(
        f"Python {sys.version.split()[0]}, stevedore {stevedore_version()}, "
        f"median of {runs} runs, __pycache__ bytecode {bytecode}"
    )
    print(
        f"{total} plugins ({DIRECTORY_PLUGINS} directory + {ENTRY_POINT_PLUGINS} entry point), "
        f"PluginManager.load_all: {all_ms:8.1f} ms  ({all_ms / total * 1000:6.0f} us/plugin)"
    )
    print(
        f"{ENTRY_POINT_PLUGINS} entry points, PluginManager.load_all:          "
        f"{ep_ms:8.1f} ms  ({ep_ms / ENTRY_POINT_PLUGINS * 1000:6.0f} us/plugin)"
    )
    print(
        f"{ENTRY_POINT_PLUGINS} entry points, stevedore.ExtensionManager:      "
        f"{stevedore_ms:8.1f} ms  ({stevedore_ms / ENTRY_POINT_PLUGINS * 1000:6.0f} us/plugin)"
    )
    print(f"no plugins installed, PluginManager().load_all() in-process: {empty_ms:8.2f} ms")
    print(
        f"no plugins installed, fresh interpreter: import hypersdk {import_only:.1f} ms, "
        f"then the first PluginManager().load_all() {cold:.1f} ms"
    )


def run_python(code: str) -> str:
    command = [sys.executable, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def stevedore_version() -> str:
    from importlib.metadata import version

    return version("stevedore")


if __name__ == "__main__":
    main()
