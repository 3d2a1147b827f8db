"""Loading plugin code: private module names, packages, and nothing left behind."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

import hypersdk
from hypersdk import ProviderConfig, ProviderType
from hypersdk.plugins import PluginStatus
from tests.plugins.conftest import manager_for, plugin_source, private_modules, write

if TYPE_CHECKING:
    from pathlib import Path


def test_two_plugins_named_provider_py_get_separate_modules(tmp_path: Path) -> None:
    first = write(tmp_path / "one" / "provider.py", plugin_source("one"))
    second = write(tmp_path / "two" / "provider.py", plugin_source("two"))
    manager = manager_for(first.parent, second.parent)

    infos = manager.load_all()

    assert [info.status for info in infos] == [PluginStatus.LOADED, PluginStatus.LOADED]
    assert manager.registry.list_providers() == ["one", "two"]
    modules = sorted(private_modules())
    assert len(modules) == 2
    assert all(name.startswith("hypersdk._plugins.provider_") for name in modules)
    assert "provider" not in sys.modules


def test_a_plugin_named_json_cannot_shadow_the_stdlib(plugin_dir: Path) -> None:
    stdlib_json = sys.modules["json"]
    write(plugin_dir / "json.py", plugin_source("json", footer="def dumps(obj): return 'pwned'"))
    manager = manager_for(plugin_dir)

    (info,) = manager.load_all()

    assert info.status is PluginStatus.LOADED, info.error
    assert sys.modules["json"] is stdlib_json
    assert json.dumps({"a": 1}) == '{"a": 1}'
    (module,) = private_modules()
    assert module.startswith("hypersdk._plugins.json_")


def test_loading_never_changes_sys_path_or_writes_bytecode(plugin_dir: Path) -> None:
    write(plugin_dir / "plain.py", plugin_source("plain"))
    write(plugin_dir / "pkg" / "__init__.py", "from .impl import PLUGIN_INFO, new_provider\n")
    write(plugin_dir / "pkg" / "impl.py", plugin_source("pkg"))
    path_before = list(sys.path)

    infos = manager_for(plugin_dir).load_all()

    assert [info.status for info in infos] == [PluginStatus.LOADED, PluginStatus.LOADED]
    assert sys.path == path_before
    assert not list(plugin_dir.rglob("__pycache__"))


def test_a_package_plugin_uses_relative_imports(plugin_dir: Path) -> None:
    package = plugin_dir / "acme"
    write(package / "__init__.py", "from .provider import PLUGIN_INFO, new_provider\n")
    write(
        package / "provider.py",
        plugin_source(
            "acme",
            header="from . import helpers\nfrom .sub.deep import DEPTH\n",
            footer="assert helpers.VALUE == 42 and DEPTH == 2",
        ),
    )
    write(package / "helpers.py", "VALUE = 42\n")
    write(package / "sub" / "__init__.py", "")
    write(package / "sub" / "deep.py", "from ..helpers import VALUE\nDEPTH = 2 if VALUE else 0\n")
    manager = manager_for(plugin_dir)

    (info,) = manager.load_all()

    assert info.status is PluginStatus.LOADED, info.error
    names = private_modules()
    (root,) = [name for name in names if name.count(".") == 2]
    assert {f"{root}.provider", f"{root}.helpers", f"{root}.sub", f"{root}.sub.deep"} <= names
    assert "helpers" not in sys.modules


def test_a_failed_package_load_leaves_nothing_in_sys_modules(plugin_dir: Path) -> None:
    package = plugin_dir / "halfway"
    write(package / "__init__.py", "from . import good\nfrom . import bad\n")
    write(package / "good.py", "X = 1\n")
    write(package / "bad.py", "raise RuntimeError('boom in bad')\n")
    manager = manager_for(plugin_dir)

    (info,) = manager.load_all()

    assert info.status is PluginStatus.FAILED
    assert "RuntimeError: boom in bad" in str(info.error)
    assert private_modules() == set()


def test_a_missing_submodule_is_reported_and_not_searched_on_disk(plugin_dir: Path) -> None:
    write(plugin_dir / "lacking" / "__init__.py", "from . import absent\n")

    (info,) = manager_for(plugin_dir).load_all()

    assert info.status is PluginStatus.FAILED
    assert "absent" in str(info.error)
    assert private_modules() == set()


def test_package_submodules_come_from_the_checked_snapshot(plugin_dir: Path) -> None:
    # The lazy import runs after the file on disk changed; the checked bytes still win.
    package = plugin_dir / "lazy"
    write(
        package / "__init__.py",
        plugin_source("lazy", footer="def later():\n    from . import late\n    return late.VALUE"),
    )
    late = write(package / "late.py", "VALUE = 'checked'\n")
    manager = manager_for(plugin_dir)
    (info,) = manager.load_all()
    assert info.status is PluginStatus.LOADED, info.error
    write(late, "VALUE = 'swapped after the check'\n")

    (root,) = [name for name in private_modules() if name.count(".") == 2]
    assert sys.modules[root].later() == "checked"


async def _list_names(provider: hypersdk.Provider) -> list[str]:
    async with provider:
        await provider.connect(ProviderConfig(type=provider.type))
        return [vm.name for vm in await provider.list_vms()]


@pytest.mark.parametrize("provider", ["FakeBlockingProvider", "FakeAsyncProvider"])
def test_the_registry_yields_an_async_provider(plugin_dir: Path, provider: str) -> None:
    write(plugin_dir / "either.py", plugin_source("either", version="3.1", provider=provider))
    manager = manager_for(plugin_dir)
    manager.load_all()

    built = manager.registry.create("either", ProviderConfig(type=ProviderType("either")))

    assert isinstance(built, hypersdk.Provider)
    assert anyio.run(_list_names, built) == ["vm-3.1"]
    assert manager.registry.get_capabilities("either") == hypersdk.ExportCapabilities()


def test_the_factory_receives_a_logger_named_after_the_plugin(plugin_dir: Path) -> None:
    write(
        plugin_dir / "logs.py",
        plugin_source(
            "logs",
            footer="def new_provider(config, logger):\n"
            "    assert logger.name == 'hypersdk.plugins.logs', logger.name\n"
            "    return FakeBlockingProvider(config, PLUGIN_INFO)",
        ),
    )
    manager = manager_for(plugin_dir)

    (info,) = manager.load_all()

    assert info.status is PluginStatus.LOADED, info.error
    manager.registry.create("logs", ProviderConfig(type=ProviderType("logs")))
