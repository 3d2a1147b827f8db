"""The configuration file keeps secrets in environment variables only (issue #10 item 10).

Each test writes the file a careless or hurried user would write and checks that it is
refused with a message that names the key and never shows the secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from hypersdk import ConfigurationError
from hypersdk._settings import load_settings
from tests.cli.conftest import TOKEN

if TYPE_CHECKING:
    from pathlib import Path

    from tests.cli.conftest import CliEnv

PASTED = "dop_v1_3f9a0c1e5b7d9f2a4c6e8b0d1f3a5c7e9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a"


def _load(tmp_path: Path, table: str) -> object:
    path = tmp_path / "config.toml"
    path.write_text(f"[providers.demo]\n{table}\n", encoding="utf-8")
    return load_settings(path, environ={}).provider_config("demo", environ={})


@pytest.mark.parametrize(
    ("table", "path"),
    [
        (f'headers = {{Authorization = "Bearer {TOKEN}"}}', "headers.Authorization"),
        (f'metadata = {{extra = {{token = "{TOKEN}"}}}}', "metadata.extra.token"),
        (f'metadata = {{region = "x", bearer = "{TOKEN}"}}', "metadata.bearer"),
        (f'[providers.demo.proxy]\nurl = "x"\npassword = "{TOKEN}"', "proxy.password"),
        (f'hooks = [{{name = "a"}}, {{sas = "{TOKEN}"}}]', "hooks[1].sas"),
        (f'api_key = "{TOKEN}"', "api_key"),
        (f'password = "{TOKEN}"', "password"),
    ],
)
def test_secret_looking_keys_are_refused_at_any_depth(
    tmp_path: Path, table: str, path: str
) -> None:
    with pytest.raises(ConfigurationError, match="looks like a secret") as info:
        _load(tmp_path, table)
    assert path in str(info.value)
    assert TOKEN not in str(info.value)
    assert "_env" in str(info.value)


def test_a_plain_secret_for_another_provider_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[providers.demo]\nregion = "x"\n[providers.other]\nheaders = {{Cookie = "{TOKEN}"}}\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError, match=r"providers\.other.*headers\.Cookie") as info:
        load_settings(path, environ={})
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize(
    "value", [f'"{PASTED}"', '"Bearer abc.def"', '"ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"', "42"]
)
def test_a_token_pasted_into_an_env_key_is_never_echoed(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigurationError, match="token_env") as info:
        _load(tmp_path, f"token_env = {value}")
    # The file's own path is named (and pytest's tmp path may contain "42" by chance).
    message = str(info.value).replace(str(tmp_path), "<tmp>")
    assert value.strip('"') not in message
    assert "abc.def" not in message
    assert "TOKEN_VARIABLE" in message


def test_a_conventional_unset_variable_is_still_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="DEMO_TOKEN, which is not set"):
        _load(tmp_path, 'token_env = "DEMO_TOKEN"')


def test_nested_and_non_string_settings_are_refused_without_their_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="headers must be a string") as info:
        _load(tmp_path, 'headers = {Accept = "SECRETISH-VALUE"}')
    assert "SECRETISH-VALUE" not in str(info.value)
    with pytest.raises(ConfigurationError, match="metadata.extra must be a string") as info:
        _load(tmp_path, 'metadata = {extra = {note = "SECRETISH-VALUE"}}')
    assert "SECRETISH-VALUE" not in str(info.value)


def test_settings_repr_never_shows_the_provider_tables(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[providers.demo]\nnote = "PRIVATE-NOTE"\n', encoding="utf-8")
    settings = load_settings(path, environ={})
    assert "PRIVATE-NOTE" not in repr(settings)
    assert "demo" in repr(settings)


def test_deeply_nested_toml_is_a_configuration_error(cli_env: CliEnv) -> None:
    depth = 5000
    cli_env.config.write_text(
        "[providers.clisample]\nx = " + "[" * depth + "]" * depth + "\n", encoding="utf-8"
    )
    result = cli_env.run("providers")
    assert result.returncode == 3, result.stderr
    assert "nested too deeply" in result.stderr


def test_cli_refuses_a_plain_authorization_header(cli_env: CliEnv) -> None:
    cli_env.write_config(
        f'[providers.clisample]\ntoken_env = "CLISAMPLE_TOKEN"\n'
        f'headers = {{Authorization = "Bearer {TOKEN}"}}\n'
    )
    result = cli_env.run("vms", "list", "--provider", "clisample", "--debug")
    assert result.returncode == 3, result.stderr
    assert "headers.Authorization looks like a secret" in result.stderr
    assert TOKEN not in result.stdout + result.stderr
