"""Discovery: where plugins are found, in which order, and that finding imports nothing."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hypersdk.plugins import PluginConfig, PluginManager, PluginStatus
from tests.plugins.conftest import InstallDist, manager_for, plugin_source, private_modules, write

if TYPE_CHECKING:
    import pytest


def names(manager: PluginManager) -> list[str]:
    return [info.name for info in manager.discover()]


def test_a_directory_lists_py_files_and_packages_sorted_and_skips_the_rest(
    plugin_dir: Path,
) -> None:
    write(plugin_dir / "zeta.py", plugin_source("zeta"))
    write(plugin_dir / "alpha.py", plugin_source("alpha"))
    write(plugin_dir / "mid" / "__init__.py", plugin_source("mid"))
    write(plugin_dir / "_private.py", plugin_source("private"))
    write(plugin_dir / ".hidden.py", plugin_source("hidden"))
    write(plugin_dir / "_pkg" / "__init__.py", plugin_source("pkg"))
    write(plugin_dir / "notes.txt", "not a plugin")
    write(plugin_dir / "no_init" / "module.py", plugin_source("no_init"))

    assert names(manager_for(plugin_dir)) == ["alpha", "mid", "zeta"]


def test_directories_are_scanned_system_then_environment_then_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dirs = {label: tmp_path / label for label in ("system", "env1", "env2", "configured")}
    for label, directory in dirs.items():
        write(directory / f"{label}.py", plugin_source(label))
    monkeypatch.setenv(
        "HYPERSDK_PLUGIN_PATH", os.pathsep.join([str(dirs["env1"]), "", str(dirs["env2"])])
    )
    config = PluginConfig(
        system_directories=[dirs["system"]],
        directories=[dirs["configured"]],
        entry_points=False,
    )

    assert names(PluginManager(config)) == ["system", "env1", "env2", "configured"]


def test_a_directory_listed_twice_is_scanned_once(plugin_dir: Path) -> None:
    write(plugin_dir / "once.py", plugin_source("once"))
    config = PluginConfig(
        system_directories=[plugin_dir], directories=[plugin_dir], entry_points=False
    )

    assert names(PluginManager(config)) == ["once"]


def test_the_default_directories_include_home_but_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # HOME is an empty temp folder (see conftest), so ~/.hypersdk/plugins is ours.
    write(Path.home() / ".hypersdk" / "plugins" / "from_home.py", plugin_source("from_home"))
    workdir = tmp_path / "work"
    write(workdir / "plugins" / "from_cwd.py", plugin_source("from_cwd"))
    monkeypatch.chdir(workdir)

    found = PluginManager(PluginConfig(entry_points=False)).discover()
    sources = [info.source for info in found]

    assert str(Path.home() / ".hypersdk" / "plugins" / "from_home.py") in sources
    assert not any("from_cwd" in source for source in sources)
    assert "from_cwd" in names(
        PluginManager(PluginConfig(entry_points=False, directories=["plugins"]))
    )


def test_discovery_imports_nothing(plugin_dir: Path) -> None:
    marker = plugin_dir.parent / "imported"
    write(
        plugin_dir / "loud.py",
        plugin_source("loud", header=f"open({str(marker)!r}, 'w').close()\nraise SystemExit(1)"),
    )
    before = set(sys.modules)

    found = manager_for(plugin_dir, disabled_list=["other"]).discover()

    assert [(info.name, info.status) for info in found] == [("loud", PluginStatus.UNLOADED)]
    assert not marker.exists()
    assert set(sys.modules) == before


def test_discover_reports_what_the_lists_keep_out(plugin_dir: Path) -> None:
    write(plugin_dir / "kept.py", plugin_source("kept"))
    write(plugin_dir / "dropped.py", plugin_source("dropped"))

    found = {
        info.name: info.status
        for info in manager_for(plugin_dir, disabled_list=["dropped"]).discover()
    }

    assert found == {"dropped": PluginStatus.DISABLED, "kept": PluginStatus.UNLOADED}


def test_entry_points_are_found_first_sorted_by_name(
    plugin_dir: Path, install_dist: InstallDist
) -> None:
    install_dist(
        "acme-plugins",
        entry_points={"zz_acme": "zz_acme_plugin", "aa_acme": "aa_acme_plugin"},
        modules={
            "zz_acme_plugin": plugin_source("zz_acme"),
            "aa_acme_plugin": plugin_source("aa_acme"),
        },
    )
    write(plugin_dir / "local.py", plugin_source("local"))
    config = PluginConfig(system_directories=(), directories=[plugin_dir])

    found = PluginManager(config).discover()

    assert [(info.name, info.kind) for info in found] == [
        ("aa_acme", "entry_point"),
        ("zz_acme", "entry_point"),
        ("local", "directory"),
    ]
    assert "aa_acme_plugin" not in sys.modules  # listed, not imported


def test_entry_points_load_through_the_real_metadata(install_dist: InstallDist) -> None:
    install_dist(
        "acme",
        entry_points={"acme": "acme_plugin"},
        modules={"acme_plugin": plugin_source("acme", version="2.5")},
    )
    manager = PluginManager(PluginConfig(system_directories=()))

    (info,) = manager.load_all()

    assert info.status is PluginStatus.LOADED, info.error
    assert info.source == "entry point acme = acme_plugin"
    assert info.metadata is not None
    assert info.metadata.version == "2.5"
    assert manager.registry.is_registered("acme")
    assert not private_modules()  # installed packages keep their own module names


def test_an_entry_point_that_fails_to_import_leaves_no_module_behind(
    install_dist: InstallDist,
) -> None:
    install_dist(
        "broken",
        entry_points={"broken": "broken_plugin", "fine": "fine_plugin"},
        modules={
            "broken_plugin": plugin_source("broken", header="raise KeyboardInterrupt"),
            "fine_plugin": plugin_source("fine"),
        },
    )
    manager = PluginManager(PluginConfig(system_directories=()))

    statuses = {info.name: info.status for info in manager.load_all()}

    assert statuses == {"broken": PluginStatus.FAILED, "fine": PluginStatus.LOADED}
    assert "broken_plugin" not in sys.modules
    info = manager.get_plugin("broken")
    assert info is not None
    assert "KeyboardInterrupt" in str(info.error)


def test_entry_points_can_be_turned_off(install_dist: InstallDist) -> None:
    install_dist("acme", entry_points={"acme": "acme_plugin"}, modules={"acme_plugin": ""})

    assert PluginManager(PluginConfig(system_directories=(), entry_points=False)).discover() == []


def test_no_plugins_anywhere_loads_nothing(tmp_path: Path) -> None:
    manager = PluginManager(
        PluginConfig(system_directories=[tmp_path / "missing"], directories=[tmp_path / "nope"])
    )

    assert [info for info in manager.load_all() if info.kind == "directory"] == []


def test_the_fast_entry_point_precheck_is_sure_only_when_it_can_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, install_dist: InstallDist
) -> None:
    from hypersdk.plugins._discovery import _surely_no_entry_points

    empty = tmp_path / "empty_site"
    write(empty / "other-1.0.dist-info" / "entry_points.txt", "[console_scripts]\nx = y:z\n")
    write(empty / "bare-1.0.egg-info", "PKG-INFO as a file\n")
    monkeypatch.setattr(sys, "path", [str(empty), str(tmp_path / "missing")])
    assert _surely_no_entry_points()

    archive = tmp_path / "bundle.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip archive
    monkeypatch.setattr(sys, "path", [str(empty), str(archive)])
    assert not _surely_no_entry_points()  # cannot look inside: let importlib.metadata decide

    site = install_dist("acme", entry_points={"acme": "acme_plugin"}, modules={})
    monkeypatch.setattr(sys, "path", [str(empty), str(site)])
    assert not _surely_no_entry_points()
