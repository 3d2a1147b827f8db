"""PluginManager: configuration, enabled/disabled lists, lookups, unload and reload."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import hypersdk
from hypersdk import ConfigurationError, PluginError, ProviderConfig, ProviderType
from hypersdk.plugins import PluginConfig, PluginManager, PluginStats, PluginStatus
from tests.plugins.conftest import InstallDist, manager_for, plugin_source, private_modules, write


def provider_name(manager: PluginManager, provider_type: str) -> str:
    return manager.registry.create(
        provider_type, ProviderConfig(type=ProviderType(provider_type))
    ).name


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"enabled": "yes"}, "PluginConfig.enabled"),
        ({"hot_reload": 1}, "PluginConfig.hot_reload"),
        ({"directories": 42}, "PluginConfig.directories"),
        ({"directories": ["ok", ""]}, r"PluginConfig.directories\[1\]"),
        ({"disabled_list": ["a", 3]}, r"PluginConfig.disabled_list\[1\]"),
        ({"enabled_list": [" "]}, "PluginConfig.enabled_list"),
        ({"reload_debounce": -1}, "PluginConfig.reload_debounce"),
    ],
)
def test_config_values_are_validated_naming_the_field(
    settings: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigurationError, match=field):
        PluginConfig(**settings)  # type: ignore[arg-type]


def test_config_is_frozen_and_keyword_only() -> None:
    config = PluginConfig(directories="one")

    assert config.directories == (Path("one"),)
    with pytest.raises(AttributeError):
        config.enabled = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        PluginConfig(True)  # type: ignore[call-arg]


def test_config_from_toml_resolves_directories_against_the_file(tmp_path: Path) -> None:
    file = write(
        tmp_path / "conf" / "hypersdk.toml",
        "[plugins]\n"
        'directories = ["plugins", "/abs/plugins"]\n'
        'disabled_list = ["legacy"]\n'
        "hot_reload = true\n"
        f'sha256_allowlist = ["{"A" * 64}"]\n'
        "reload_debounce = 0.1\n",
    )

    config = PluginConfig.from_toml(file)

    assert config.directories == (tmp_path / "conf" / "plugins", Path("/abs/plugins"))
    assert config.disabled_list == ("legacy",)
    assert config.hot_reload is True
    assert config.sha256_allowlist == ("a" * 64,)
    assert config.reload_debounce == 0.1


def test_a_toml_file_without_a_plugins_table_is_read_from_the_top(tmp_path: Path) -> None:
    file = write(tmp_path / "plugins.toml", "enabled = false\n")

    assert PluginConfig.from_toml(file).enabled is False
    assert PluginManager(file).config.enabled is False


@pytest.mark.parametrize(
    ("text", "phrases"),
    [
        (
            "[plugins]\ndirectorys = []\n",
            ["unknown key 'directorys'", "did you mean 'directories'"],
        ),
        ("[plugins]\nenabled = \n", ["invalid TOML", "line 2"]),
        ("[plugins]\nenabled = 'yes'\n", ["PluginConfig.enabled", "True or False"]),
        ("plugins = 3\n", ["'plugins' must be a table"]),
    ],
)
def test_bad_toml_config_names_the_file_and_the_problem(
    tmp_path: Path, text: str, phrases: list[str]
) -> None:
    file = write(tmp_path / "bad.toml", text)

    with pytest.raises(ConfigurationError) as caught:
        PluginConfig.from_toml(file)

    assert str(file) in str(caught.value)
    for phrase in phrases:
        assert phrase in str(caught.value)


def test_a_missing_toml_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot be read"):
        PluginManager(tmp_path / "absent.toml")


def test_the_manager_rejects_a_wrong_config_type() -> None:
    with pytest.raises(ConfigurationError, match="config: must be a PluginConfig"):
        PluginManager(42)  # type: ignore[arg-type]


# -- enabled / disabled lists -------------------------------------------------------------


def test_a_disabled_plugin_is_never_imported(plugin_dir: Path) -> None:
    marker = plugin_dir.parent / "ran"
    write(plugin_dir / "off.py", plugin_source("off", header=f"open({str(marker)!r}, 'w')"))
    write(plugin_dir / "on.py", plugin_source("on"))

    infos = {i.name: i.status for i in manager_for(plugin_dir, disabled_list=["off"]).load_all()}

    assert infos == {"off": PluginStatus.DISABLED, "on": PluginStatus.LOADED}
    assert not marker.exists()


def test_the_enabled_list_wins_over_the_disabled_list(plugin_dir: Path) -> None:
    for name in ("a", "b", "c"):
        write(plugin_dir / f"{name}.py", plugin_source(name))
    manager = manager_for(plugin_dir, enabled_list=["a", "b"], disabled_list=["a"])

    infos = {info.name: info.status for info in manager.load_all()}

    assert infos == {
        "a": PluginStatus.LOADED,
        "b": PluginStatus.LOADED,
        "c": PluginStatus.DISABLED,
    }


def test_the_lists_accept_a_full_source_path(tmp_path: Path) -> None:
    one = write(tmp_path / "one" / "provider.py", plugin_source("one"))
    two = write(tmp_path / "two" / "provider.py", plugin_source("two"))

    infos = manager_for(one.parent, two.parent, disabled_list=[str(two)]).load_all()

    assert [info.status for info in infos] == [PluginStatus.LOADED, PluginStatus.DISABLED]


def test_a_disabled_plugin_system_loads_nothing(plugin_dir: Path) -> None:
    write(plugin_dir / "a.py", plugin_source("a"))

    assert manager_for(plugin_dir, enabled=False).load_all() == []


# -- load_plugin, lookups, stats ----------------------------------------------------------


def test_load_plugin_accepts_a_path_string_or_a_module_name(
    tmp_path: Path, install_dist: InstallDist
) -> None:
    path = write(tmp_path / "extra" / "by_path.py", plugin_source("by_path"))
    install_dist("mod", entry_points={}, modules={"by_module_plugin": plugin_source("by_mod")})
    manager = manager_for()

    by_path = manager.load_plugin(str(path))
    by_module = manager.load_plugin("by_module_plugin")

    assert (by_path.kind, by_path.status) == ("directory", PluginStatus.LOADED)
    assert (by_module.kind, by_module.source) == ("module", "module by_module_plugin")
    assert manager.registry.list_providers() == ["by_mod", "by_path"]
    assert manager.load_plugin(path) == by_path  # already loaded: the same record


@pytest.mark.parametrize("target", ["not a module", "/no/such/plugin.py"])
def test_load_plugin_explains_a_target_it_cannot_use(target: str) -> None:
    with pytest.raises(PluginError, match="plugin"):
        manager_for().load_plugin(target)


def test_lookups_by_name_source_metadata_name_and_type(tmp_path: Path) -> None:
    one = write(tmp_path / "one" / "provider.py", plugin_source("alpha", provider_type="t1"))
    two = write(tmp_path / "two" / "provider.py", plugin_source("beta", provider_type="t2"))
    manager = manager_for(one.parent, two.parent)
    manager.load_all()

    assert manager.get_plugin(str(one)) == manager.get_plugin("alpha") == manager.get_plugin("t1")
    info = manager.get_plugin(two)
    assert info is not None
    assert info.provider_type == "t2"
    assert manager.get_plugin("nothing") is None
    with pytest.raises(PluginError, match="names 2 plugins"):
        manager.get_plugin("provider")


def test_stats_count_by_status(plugin_dir: Path) -> None:
    write(plugin_dir / "good.py", plugin_source("good"))
    write(plugin_dir / "gone.py", plugin_source("gone"))
    write(plugin_dir / "bad.py", "raise SystemExit\n")
    write(plugin_dir / "off.py", plugin_source("off"))
    manager = manager_for(plugin_dir, disabled_list=["off"])
    manager.load_all()
    manager.unload_plugin("gone")

    assert manager.stats() == PluginStats(total=4, loaded=1, failed=1, disabled=1, unloaded=1)


def test_load_all_twice_keeps_what_is_loaded(plugin_dir: Path) -> None:
    write(plugin_dir / "a.py", plugin_source("a"))
    manager = manager_for(plugin_dir)
    first = manager.load_all()

    assert manager.load_all() == first
    assert len(private_modules()) == 1


# -- unload and reload ----------------------------------------------------------------------


def test_unload_removes_the_type_and_the_modules(plugin_dir: Path) -> None:
    write(plugin_dir / "pkg" / "__init__.py", "from .impl import PLUGIN_INFO, new_provider\n")
    write(plugin_dir / "pkg" / "impl.py", plugin_source("pkg"))
    manager = manager_for(plugin_dir)
    manager.load_all()
    assert len(private_modules()) == 2

    info = manager.unload_plugin("pkg")

    assert info.status is PluginStatus.UNLOADED
    assert info.loaded_at is None
    assert not manager.registry.is_registered("pkg")
    assert private_modules() == set()
    with pytest.raises(PluginError, match="no plugin named 'ghost'; known plugins: pkg"):
        manager.unload_plugin("ghost")
    assert manager.load_all()[0].status is PluginStatus.LOADED  # and it can come back


def test_reload_swaps_in_a_new_version_that_validates(plugin_dir: Path) -> None:
    path = write(plugin_dir / "acme.py", plugin_source("acme", version="1.0"))
    manager = manager_for(plugin_dir)
    (first,) = manager.load_all()
    write(path, plugin_source("acme", version="2.0"))

    info = manager.reload_plugin("acme")

    assert info.metadata is not None
    assert info.metadata.version == "2.0"
    assert first.loaded_at is not None
    assert info.loaded_at is not None
    assert info.loaded_at >= first.loaded_at
    assert provider_name(manager, "acme") == "acme 2.0"
    assert len(private_modules()) == 1  # the old module is gone


@pytest.mark.parametrize(
    "broken",
    [
        plugin_source("acme", version="2.0", header="raise SystemExit"),
        plugin_source("acme", version="not a version"),
        plugin_source("acme", version="2.0", footer="del new_provider"),
        "def (:\n",
    ],
)
def test_a_broken_update_leaves_the_working_version_registered(
    plugin_dir: Path, broken: str
) -> None:
    path = write(plugin_dir / "acme.py", plugin_source("acme", version="1.0"))
    manager = manager_for(plugin_dir)
    manager.load_all()
    modules = private_modules()
    write(path, broken)

    with pytest.raises(PluginError):
        manager.reload_plugin("acme")

    info = manager.get_plugin("acme")
    assert info is not None
    assert info.status is PluginStatus.LOADED
    assert info.metadata is not None
    assert info.metadata.version == "1.0"
    assert info.error is not None  # why the update was rejected
    assert provider_name(manager, "acme") == "acme 1.0"
    assert private_modules() == modules


def test_reload_can_change_the_provider_type(plugin_dir: Path) -> None:
    path = write(plugin_dir / "acme.py", plugin_source("acme", provider_type="old"))
    manager = manager_for(plugin_dir)
    manager.load_all()
    write(path, plugin_source("acme", provider_type="new"))

    manager.reload_plugin("acme")

    assert manager.registry.list_providers() == ["new"]


def test_reload_into_a_type_another_plugin_owns_is_rejected(plugin_dir: Path) -> None:
    write(plugin_dir / "a.py", plugin_source("a"))
    path = write(plugin_dir / "b.py", plugin_source("b"))
    manager = manager_for(plugin_dir)
    manager.load_all()
    write(path, plugin_source("b", provider_type="a"))

    with pytest.raises(PluginError, match="already provides"):
        manager.reload_plugin("b")

    assert manager.registry.list_providers() == ["a", "b"]


def test_reload_of_a_failed_plugin_loads_it(plugin_dir: Path) -> None:
    path = write(plugin_dir / "late.py", "raise SystemExit\n")
    manager = manager_for(plugin_dir)
    assert manager.load_all()[0].status is PluginStatus.FAILED
    write(path, plugin_source("late"))

    assert manager.reload_plugin("late").status is PluginStatus.LOADED


def test_reload_of_an_entry_point_plugin_imports_it_again(install_dist: InstallDist) -> None:
    site = install_dist(
        "acme", entry_points={"acme": "acme_ep"}, modules={"acme_ep": plugin_source("acme")}
    )
    manager = PluginManager(PluginConfig(system_directories=()))
    manager.load_all()
    # A different length too: a same-size rewrite within one second could reuse the old .pyc.
    write(site / "acme_ep.py", plugin_source("acme", version="2.0.0"))

    info = manager.reload_plugin("acme")

    assert info.metadata is not None
    assert info.metadata.version == "2.0.0"
    write(site / "acme_ep.py", "raise SystemExit\n")
    with pytest.raises(PluginError):
        manager.reload_plugin("acme")
    assert sys.modules["acme_ep"].PLUGIN_INFO.version == "2.0.0"  # the working one is back


# -- import cost ------------------------------------------------------------------------


def test_import_hypersdk_loads_no_plugin_machinery() -> None:
    code = (
        "import sys, hypersdk\n"
        "heavy = ['importlib.metadata', 'tomllib', 'watchfiles', 'hypersdk.plugins']\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "hypersdk.PluginManager\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    # hypersdk.plugins loads on first use; its own heavy imports wait until needed.
    assert result.stdout.split("\n")[:2] == ["[]", "['hypersdk.plugins']"]


def test_the_public_names_are_exported_from_hypersdk() -> None:
    for name in ("PluginManager", "PluginConfig", "PluginInfo", "PluginStatus"):
        assert name in hypersdk.__all__
        assert name in dir(hypersdk)
        assert getattr(hypersdk, name) is getattr(hypersdk.plugins, name)


def test_plugin_info_validates_its_fields() -> None:
    from hypersdk.plugins import PluginInfo

    with pytest.raises(ConfigurationError, match=r"PluginInfo\.name"):
        PluginInfo(name="", source="x", kind="directory", status=PluginStatus.LOADED)
    with pytest.raises(ConfigurationError, match=r"PluginInfo\.status: must be a PluginStatus"):
        PluginInfo(name="x", source="x", kind="directory", status="loaded")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"PluginInfo\.kind"):
        PluginInfo(name="x", source="x", kind="zip", status=PluginStatus.LOADED)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"PluginInfo\.error"):
        PluginInfo(
            name="x",
            source="x",
            kind="directory",
            status=PluginStatus.FAILED,
            error=ValueError("not a PluginError"),  # type: ignore[arg-type]
        )


def test_reloading_an_installed_plugin_leaves_its_package_siblings_alone(
    install_dist: InstallDist,
) -> None:
    site = install_dist(
        "acmepkg",
        entry_points={"acmepkg": "acmepkg.provider"},
        modules={
            "acmepkg/__init__": "",
            "acmepkg/other": "STATE = []\n",
            "acmepkg/provider": plugin_source("acmepkg"),
        },
    )
    try:
        import acmepkg.other  # type: ignore[import-not-found]

        manager = PluginManager(PluginConfig(system_directories=()))
        assert manager.load_all()[0].status is PluginStatus.LOADED
        write(site / "acmepkg" / "provider.py", plugin_source("acmepkg", version="2.0.0"))

        info = manager.reload_plugin("acmepkg")

        assert info.metadata is not None
        assert info.metadata.version == "2.0.0"
        assert sys.modules["acmepkg.other"] is acmepkg.other
    finally:
        for name in [n for n in sys.modules if n == "acmepkg" or n.startswith("acmepkg.")]:
            del sys.modules[name]
