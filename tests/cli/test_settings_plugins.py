"""The ``[plugins]`` table means the same to the command line and to ``PluginManager``.

One schema, one parser (``PluginConfig.from_mapping``): the command line's file takes
every ``PluginConfig`` key, resolves relative directories against the file (not the
working directory), and refuses the old spellings ``enabled = [...]``/``disabled``,
naming the key to write instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from hypersdk import ConfigurationError
from hypersdk._settings import load_settings
from hypersdk.plugins import PluginConfig

if TYPE_CHECKING:
    from pathlib import Path

DIGEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def _write(tmp_path: Path, plugins_table: str) -> Path:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "config.toml"
    path.write_text(f"[plugins]\n{plugins_table}\n", encoding="utf-8")
    return path


def test_the_cli_reads_the_table_as_plugin_config_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(
        tmp_path,
        'directories = ["plugins", "/opt/plugins", "~/mine"]\n'
        'enabled_list = ["acme"]\ndisabled_list = ["legacy"]\n'
        f'sha256_allowlist = ["{DIGEST}"]\nentry_points = false\nimport_timeout = 5\n',
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative to the file, never to the working directory
    settings = load_settings(path, environ={})
    assert settings.plugins == PluginConfig.from_toml(path)
    assert settings.plugins.directories[0] == tmp_path / "etc" / "plugins"
    assert settings.plugins.enabled_list == ("acme",)
    assert settings.plugins.disabled_list == ("legacy",)
    assert settings.plugins.sha256_allowlist == (DIGEST,)
    assert settings.plugins.entry_points is False


def test_no_file_means_the_default_plugin_config(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert settings.plugins == PluginConfig()


@pytest.mark.parametrize(
    ("table", "new_key"),
    [
        ('enabled = ["acme"]', "enabled_list"),
        ("enabled = []", "enabled_list"),
        ('disabled = ["legacy"]', "disabled_list"),
    ],
)
def test_the_old_cli_spelling_is_refused_naming_the_new_key(
    tmp_path: Path, table: str, new_key: str
) -> None:
    path = _write(tmp_path, table)
    for load in (lambda: load_settings(path, environ={}), lambda: PluginConfig.from_toml(path)):
        with pytest.raises(ConfigurationError, match=new_key) as caught:
            load()
        assert str(path) in str(caught.value)


def test_enabled_as_a_switch_still_turns_plugins_off(tmp_path: Path) -> None:
    path = _write(tmp_path, "enabled = false")
    assert load_settings(path, environ={}).plugins.enabled is False


def test_an_unknown_plugins_key_names_the_file_and_suggests_one(tmp_path: Path) -> None:
    path = _write(tmp_path, 'disabled_lst = ["legacy"]')
    with pytest.raises(ConfigurationError, match="did you mean 'disabled_list'") as caught:
        load_settings(path, environ={})
    assert str(path) in str(caught.value)
