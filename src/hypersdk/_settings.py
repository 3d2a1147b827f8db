r"""The configuration file of the command line and of fleet workers.

The ``hypersdk`` command reads it, and so do Celery workers (``hypersdk.jobs.celery``),
which take their plugins and credentials from their own machine's file, never from the
broker; it lives here, beside both, rather than inside the CLI package.

A TOML file found at ``--config``, else ``$HYPERSDK_CONFIG``, else the platform's config
directory (``$XDG_CONFIG_HOME/hypersdk/config.toml``, ``~/.config/hypersdk/config.toml``;
``~/Library/Application Support/hypersdk/config.toml`` on macOS;
``%APPDATA%\hypersdk\config.toml`` on Windows). A missing default file is fine; a missing
file named explicitly is an error.

.. code-block:: toml

    [plugins]                          # read by PluginConfig.from_mapping, as everywhere
    directories = ["~/src/my-plugins"] # a relative one is relative to this file
    enabled_list = []                  # when non-empty, only these plugins load
    disabled_list = ["legacy"]

    [providers.digitalocean]
    token_env = "DIGITALOCEAN_TOKEN"   # read the token from this environment variable
    timeout = 30

Secrets are never stored in the file in plain text: a key that looks secret (``password``,
``token``, ``api_key``, ``Authorization``...) is refused at any depth, with a hint to use
``<key>_env`` instead, which names the environment variable to read. ``password_env``
fills ``ProviderConfig.password``; any other ``<key>_env`` fills ``metadata[<key>]``.
A ``*_env`` value that is not an environment variable name (a token pasted there by
mistake) is refused without being echoed. Provider settings are strings, numbers or
booleans; ``metadata`` is a table of strings.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from hypersdk._regular import read_regular_text
from hypersdk._validation import looks_secret
from hypersdk.errors import ConfigurationError
from hypersdk.models import ProviderConfig, ProviderType
from hypersdk.plugins import PluginConfig

ENV_VAR: Final = "HYPERSDK_CONFIG"

_PROVIDER_FIELDS: Final = frozenset(
    {"endpoint", "host", "port", "username", "region", "insecure", "timeout", "metadata"}
)
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Names shown back in messages: upper case and short, as environment variables are
# by convention. Anything else may be a token pasted into a *_env key by mistake.
_CONVENTIONAL_ENV_NAME: Final = re.compile(r"[A-Z_][A-Z0-9_]{0,39}")


def _kind(value: object) -> str:
    # What a TOML value is, for messages that must not echo the value itself.
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


def _secret_paths(table: Mapping[str, Any]) -> list[str]:
    """Dotted paths of every secret-looking key in ``table``, at any depth.

    Top-level ``<key>_env`` keys are how secrets are named, so they are not secrets.
    Iterative, so a deeply nested document cannot exhaust the stack.
    """
    found: list[str] = []
    pending: list[tuple[str, object]] = [
        (key, value) for key, value in table.items() if not key.endswith("_env")
    ]
    while pending:
        path, value = pending.pop()
        name = path.rpartition(".")[2]
        if path == "password" or (path not in _PROVIDER_FIELDS and looks_secret(name)):
            found.append(path)
            continue
        if isinstance(value, dict):
            pending.extend((f"{path}.{key}", item) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    return sorted(found)


def _refuse_plain_secrets(where: str, table: Mapping[str, Any]) -> None:
    paths = _secret_paths(table)
    if not paths:
        return
    path = paths[0]
    more = f" (and {len(paths) - 1} more: {', '.join(paths[1:])})" if len(paths) > 1 else ""
    hint = (
        f'remove it and set {path}_env = "SOME_VARIABLE" instead'
        if "." not in path and "[" not in path
        else f"remove it, export it as an environment variable and name that with a "
        f'top-level {path.rpartition(".")[2]}_env = "SOME_VARIABLE"'
    )
    raise ConfigurationError(
        f"{where}: {path} looks like a secret and secrets are not stored in plain text{more}; "
        + hint
    )


@attrs.frozen(kw_only=True)
class Settings:
    """Everything the configuration file says (empty when there is no file)."""

    source: Path | None = None
    plugins: PluginConfig = attrs.field(factory=PluginConfig)
    # The raw tables are only ever shown by name: they are checked per provider.
    providers: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, repr=lambda tables: f"<tables for {', '.join(sorted(tables)) or 'none'}>"
    )

    def provider_config(
        self, provider_type: str, environ: Mapping[str, str] | None = None
    ) -> ProviderConfig:
        """Build the ProviderConfig for ``provider_type`` (secrets read from the environment).

        Raises:
            ConfigurationError: a key is unknown, a secret is in plain text, or a named
                environment variable is unset.
        """
        env = os.environ if environ is None else environ
        table = dict(self.providers.get(provider_type, {}))
        where = f"[providers.{provider_type}]" + (f" in {self.source}" if self.source else "")
        _refuse_plain_secrets(where, table)
        fields: dict[str, Any] = {"type": ProviderType(provider_type)}
        metadata: dict[str, str] = {}
        for key, value in table.items():
            if key.endswith("_env"):
                target = key.removesuffix("_env")
                if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
                    # Never echoed: a token pasted here by mistake is exactly what it holds.
                    raise ConfigurationError(
                        f"{where}: {key} must name an environment variable (letters, digits "
                        f"and _, such as {target.upper() or 'SOME'}_VARIABLE), got "
                        f"{_kind(value) if not isinstance(value, str) else 'something else'} "
                        "(not shown: it may be the secret itself; put the secret in that "
                        "variable, not in the file)"
                    )
                secret = env.get(value)
                if not secret and _CONVENTIONAL_ENV_NAME.fullmatch(value):
                    raise ConfigurationError(
                        f"{where}: {key} names the environment variable {value}, which is not "
                        f"set; export {value}=... before running hypersdk"
                    )
                if not secret:
                    # A legal but unusual name (dop_v1_3f9a...) is likely a pasted token.
                    raise ConfigurationError(
                        f"{where}: {key} names an environment variable that is not set; the "
                        "name is not shown because it does not look like one (it may be the "
                        f"secret itself): use a name such as {target.upper() or 'SOME'}_VARIABLE"
                    )
                if target == "password":
                    fields["password"] = secret
                else:
                    metadata[target] = secret
            elif key == "metadata":
                if not isinstance(value, dict):
                    raise ConfigurationError(
                        f"{where}: metadata must be a table of strings, got {_kind(value)}"
                    )
                for meta_key, item in value.items():
                    if not isinstance(item, str):
                        raise ConfigurationError(
                            f"{where}: metadata.{meta_key} must be a string, got {_kind(item)}"
                        )
                metadata.update(value)
            elif key in _PROVIDER_FIELDS:
                fields[key] = value
            elif isinstance(value, dict | list):
                raise ConfigurationError(
                    f"{where}: {key} must be a string, number or boolean (provider-specific "
                    f"settings are flat), got {_kind(value)}"
                )
            else:
                # Unknown plain keys are provider-specific settings, as in ProviderConfig.
                metadata[key] = value if isinstance(value, str) else str(value)
        try:
            return ProviderConfig(**fields, metadata=metadata)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None


def default_path(environ: Mapping[str, str] | None = None) -> Path:
    """Return where the configuration file lives by default on this platform."""
    env = os.environ if environ is None else environ
    if sys.platform == "win32":
        base = Path(env.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "hypersdk" / "config.toml"


def load_settings(
    explicit: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Find and read the configuration file.

    Raises:
        ConfigurationError: the file named by ``--config``/``$HYPERSDK_CONFIG`` is missing,
            is not valid TOML, or has a wrong key or value (named in the message).
    """
    env = os.environ if environ is None else environ
    named = explicit or (Path(env[ENV_VAR]) if env.get(ENV_VAR) else None)
    path = named.expanduser() if named else default_path(env)
    try:
        # exists(), not is_file(): a FIFO or a device at the name is refused when read
        # (saying what it is), not taken for a missing file.
        exists = path.exists()
    except OSError as exc:
        # A folder on the way that we may not search (no x permission): is_file() raises
        # instead of answering, and that is a configuration problem, not a crash.
        raise ConfigurationError(
            f"cannot read configuration file {path}: {exc.strerror or exc}; check that "
            "every folder on its path is searchable (chmod +x) and the file readable"
        ) from None
    if not exists:
        if named:
            origin = "--config" if explicit else f"${ENV_VAR}"
            raise ConfigurationError(f"configuration file {path} (from {origin}) does not exist")
        return Settings()
    try:
        document = tomllib.loads(read_regular_text(path))  # never a FIFO or a device
    except RecursionError:
        raise ConfigurationError(
            f"cannot read configuration file {path}: nested too deeply"
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read configuration file {path}: {exc.strerror or exc}"
        ) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read configuration file {path}: {exc}") from None
    return _parse(document, path)


def _parse(document: dict[str, Any], path: Path) -> Settings:
    unknown = sorted(set(document) - {"plugins", "providers"})
    if unknown:
        raise ConfigurationError(
            f"{path}: unknown table(s) {', '.join(unknown)}; allowed: [plugins], [providers.TYPE]"
        )
    plugins_table = document.get("plugins", {})
    if not isinstance(plugins_table, dict):
        raise ConfigurationError(f"{path}: plugins must be a table")
    try:
        plugins = PluginConfig.from_mapping(plugins_table, base=path.parent.absolute())
    except ConfigurationError as exc:
        detail = str(exc).removeprefix("plugin configuration: ")
        raise ConfigurationError(f"{path}: [plugins] {detail}") from None
    providers = document.get("providers", {})
    if not isinstance(providers, dict) or not all(isinstance(t, dict) for t in providers.values()):
        raise ConfigurationError(f"{path}: providers must hold tables such as [providers.aws]")
    # A plain secret anywhere in the file is refused, whichever provider the command uses.
    for name, table in providers.items():
        _refuse_plain_secrets(f"[providers.{name}] in {path}", table)
    return Settings(source=path, plugins=plugins, providers=providers)
