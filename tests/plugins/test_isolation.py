"""Isolation: whatever one plugin does, the others and the application go on."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from hypersdk import PluginError, PluginLoadError, PluginMetadata, ProviderConfig, ProviderType
from hypersdk.plugins import PluginStatus
from tests.plugins.conftest import manager_for, plugin_source, private_modules, write
from tests.plugins.providers import FakeBlockingProvider

if TYPE_CHECKING:
    from pathlib import Path

HOSTILE_IMPORTS = {
    "SystemExit": "import sys\nsys.exit(3)",
    "KeyboardInterrupt": "raise KeyboardInterrupt",
    "GeneratorExit": "raise GeneratorExit('odd')",
    "BaseException": "raise BaseException('base')",
    "MemoryError": "raise MemoryError",
}


@pytest.mark.parametrize("kind", list(HOSTILE_IMPORTS))
def test_any_exception_at_import_fails_only_that_plugin(plugin_dir: Path, kind: str) -> None:
    write(plugin_dir / "a_good.py", plugin_source("a_good"))
    write(plugin_dir / "hostile.py", plugin_source("hostile", header=HOSTILE_IMPORTS[kind]))
    write(plugin_dir / "z_good.py", plugin_source("z_good"))
    manager = manager_for(plugin_dir)

    infos = {info.name: info for info in manager.load_all()}

    assert infos["hostile"].status is PluginStatus.FAILED
    assert isinstance(infos["hostile"].error, PluginLoadError)
    assert kind in str(infos["hostile"].error)
    assert infos["a_good"].status is infos["z_good"].status is PluginStatus.LOADED
    assert not any("hostile" in name for name in private_modules())


def test_system_exit_in_the_factory_fails_only_that_plugin(plugin_dir: Path) -> None:
    write(
        plugin_dir / "exits.py",
        plugin_source("exits", footer="def new_provider(config, logger):\n    raise SystemExit"),
    )

    (info,) = manager_for(plugin_dir).load_all()

    assert info.status is PluginStatus.FAILED
    assert "raised SystemExit" in str(info.error)


def test_a_failing_load_plugin_raises_the_recorded_error(plugin_dir: Path) -> None:
    path = write(plugin_dir / "exits.py", plugin_source("exits", header="raise SystemExit(2)"))
    manager = manager_for(plugin_dir)

    with pytest.raises(PluginLoadError, match="SystemExit: 2") as caught:
        manager.load_plugin(path)

    info = manager.get_plugin("exits")
    assert info is not None
    assert info.error is caught.value


def test_two_plugins_with_one_provider_type_first_wins(tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "acme.py", plugin_source("acme", version="1.0"))
    second = write(tmp_path / "b" / "acme_fork.py", plugin_source("acme", version="9.9"))
    manager = manager_for(first.parent, second.parent)

    winner, loser = manager.load_all()

    assert winner.status is PluginStatus.LOADED
    assert loser.status is PluginStatus.FAILED
    message = str(loser.error)
    assert str(first) in message
    assert str(second) in message
    assert "provider type 'acme'" in message
    assert "disabled_list" in message
    built = manager.registry.create("acme", ProviderConfig(type=ProviderType("acme")))
    assert built.name == "acme 1.0"
    assert not any("acme_fork" in name for name in private_modules())


def test_a_type_the_application_registered_itself_is_not_taken_over(plugin_dir: Path) -> None:
    write(plugin_dir / "acme.py", plugin_source("acme"))
    manager = manager_for(plugin_dir)
    manager.registry.register("acme", lambda config: FakeBlockingProvider(config, _meta()))

    (info,) = manager.load_all()

    assert info.status is PluginStatus.FAILED
    assert "the application already registered" in str(info.error)


def _meta() -> PluginMetadata:
    return PluginMetadata(name="app", version="1", provider_type=ProviderType("acme"))


def test_the_recorded_error_keeps_the_plugins_own_exception_as_cause(plugin_dir: Path) -> None:
    write(plugin_dir / "oops.py", plugin_source("oops", header="raise ValueError('bad value')"))

    (info,) = manager_for(plugin_dir).load_all()

    assert isinstance(info.error, PluginError)
    assert isinstance(info.error.__cause__, ValueError)


def test_a_failed_load_is_logged_with_the_plugins_traceback(
    plugin_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(plugin_dir / "oops.py", plugin_source("oops", header="raise ValueError('bad value')"))

    with caplog.at_level("ERROR", logger="hypersdk.plugins"):
        manager_for(plugin_dir).load_all()

    (record,) = [r for r in caplog.records if r.name == "hypersdk.plugins"]
    assert "ValueError: bad value" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is ValueError


def test_sys_modules_is_unchanged_by_a_failed_directory_plugin(plugin_dir: Path) -> None:
    write(plugin_dir / "bad.py", plugin_source("bad", header="import json\nraise SystemExit"))
    before = set(sys.modules)

    manager_for(plugin_dir).load_all()

    assert set(sys.modules) - before == set()


def test_an_unexpected_error_inside_hypersdk_fails_the_plugin_not_the_application(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypersdk.plugins import _security

    def broken_reader(path: Path, *, check_permissions: bool = True) -> _security.Snapshot:
        raise RuntimeError("a bug in the snapshot reader")

    monkeypatch.setattr(_security, "read_snapshot", broken_reader)
    write(plugin_dir / "innocent.py", plugin_source("innocent"))

    (info,) = manager_for(plugin_dir).load_all()

    assert info.status is PluginStatus.FAILED
    assert "unexpected error in hypersdk" in str(info.error)
    assert "RuntimeError: a bug in the snapshot reader" in str(info.error)


def test_an_exception_while_reading_the_contract_fails_only_that_plugin(plugin_dir: Path) -> None:
    # A module-level __getattr__ runs when PLUGIN_INFO is looked up and missing.
    write(
        plugin_dir / "sneaky.py",
        plugin_source(
            "sneaky",
            footer="del PLUGIN_INFO\ndef __getattr__(name):\n    raise SystemExit(name)",
        ),
    )
    write(
        plugin_dir / "typeless.py",
        plugin_source(
            "typeless",
            header=(
                "from tests.plugins.providers import FakeBlockingProvider\n"
                "class Typeless(FakeBlockingProvider):\n"
                "    @property\n"
                "    def type(self):\n"
                "        raise KeyboardInterrupt\n"
            ),
            provider="Typeless",
        ),
    )
    write(plugin_dir / "zz_good.py", plugin_source("zz_good"))

    infos = {info.name: info for info in manager_for(plugin_dir).load_all()}

    assert "reading PLUGIN_INFO/new_provider raised SystemExit" in str(infos["sneaky"].error)
    assert "type or get_export_capabilities() raised KeyboardInterrupt" in str(
        infos["typeless"].error
    )
    assert infos["zz_good"].status is PluginStatus.LOADED
