r"""The command line's configuration file.

A TOML file found at ``--config``, else ``$HYPERSDK_CONFIG``, else the platform's config
directory (``$XDG_CONFIG_HOME/hypersdk/config.toml``, ``~/.config/hypersdk/config.toml``;
``~/Library/Application Support/hypersdk/config.toml`` on macOS;
``%APPDATA%\hypersdk\config.toml`` on Windows). A missing default file is fine; a missing
file named explicitly is an error.

.. code-block:: toml

    [plugins]
    directories = ["~/src/my-plugins"]
    enabled = []            # when non-empty, only these plugins load
    disabled = ["legacy"]

    [providers.digitalocean]
    token_env = "DIGITALOCEAN_TOKEN"   # read the token from this environment variable
    timeout = 30

Secrets are never stored in the file in plain text: a key that looks secret (``password``,
``token``, ``api_key``...) is refused with a hint to use ``<key>_env`` instead, which names
the environment variable to read. ``password_env`` fills ``ProviderConfig.password``; any
other ``<key>_env`` fills ``metadata[<key>]``.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from hypersdk.errors import ConfigurationError
from hypersdk.models import ProviderConfig, ProviderType, _looks_secret

ENV_VAR: Final = "HYPERSDK_CONFIG"

_PROVIDER_FIELDS: Final = frozenset(
    {"endpoint", "host", "port", "username", "region", "insecure", "timeout", "metadata"}
)
_PLUGIN_KEYS: Final = frozenset({"directories", "enabled", "disabled"})


@attrs.frozen(kw_only=True)
class PluginSection:
    """The ``[plugins]`` table."""

    directories: tuple[Path, ...] = ()
    enabled: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Settings:
    """Everything the configuration file says (empty when there is no file)."""

    source: Path | None = None
    plugins: PluginSection = PluginSection()
    providers: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)

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
        fields: dict[str, Any] = {"type": ProviderType(provider_type)}
        metadata: dict[str, str] = {}
        for key, value in table.items():
            if key.endswith("_env"):
                target = key.removesuffix("_env")
                if not isinstance(value, str) or not value:
                    raise ConfigurationError(
                        f"{where}: {key} must name an environment variable, got {value!r}"
                    )
                secret = env.get(value)
                if not secret:
                    raise ConfigurationError(
                        f"{where}: {key} names the environment variable {value}, which is not "
                        f"set; export {value}=... before running hypersdk"
                    )
                if target == "password":
                    fields["password"] = secret
                else:
                    metadata[target] = secret
            elif key == "password" or (key not in _PROVIDER_FIELDS and _looks_secret(key)):
                raise ConfigurationError(
                    f"{where}: {key} looks like a secret and secrets are not stored in plain "
                    f'text; remove it and set {key}_env = "SOME_VARIABLE" instead'
                )
            elif key == "metadata":
                if not isinstance(value, dict):
                    raise ConfigurationError(f"{where}: metadata must be a table of strings")
                for meta_key in value:
                    if _looks_secret(meta_key):
                        raise ConfigurationError(
                            f"{where}: metadata.{meta_key} looks like a secret; use "
                            f'{meta_key}_env = "SOME_VARIABLE" instead'
                        )
                metadata.update(value)
            elif key in _PROVIDER_FIELDS:
                fields[key] = value
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
        exists = path.is_file()
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
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read configuration file {path}: {exc}") from None
    return _parse(document, path)


def _strings(path: Path, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigurationError(f"{path}: [plugins] {key} must be a list of strings")
    return tuple(value)


def _parse(document: dict[str, Any], path: Path) -> Settings:
    unknown = sorted(set(document) - {"plugins", "providers"})
    if unknown:
        raise ConfigurationError(
            f"{path}: unknown table(s) {', '.join(unknown)}; allowed: [plugins], [providers.TYPE]"
        )
    plugins_table = document.get("plugins", {})
    if not isinstance(plugins_table, dict):
        raise ConfigurationError(f"{path}: plugins must be a table")
    bad = sorted(set(plugins_table) - _PLUGIN_KEYS)
    if bad:
        raise ConfigurationError(
            f"{path}: unknown key(s) in [plugins]: {', '.join(bad)}; "
            f"allowed: {', '.join(sorted(_PLUGIN_KEYS))}"
        )
    plugins = PluginSection(
        directories=tuple(
            Path(item).expanduser()
            for item in _strings(path, "directories", plugins_table.get("directories", []))
        ),
        enabled=_strings(path, "enabled", plugins_table.get("enabled", [])),
        disabled=_strings(path, "disabled", plugins_table.get("disabled", [])),
    )
    providers = document.get("providers", {})
    if not isinstance(providers, dict) or not all(isinstance(t, dict) for t in providers.values()):
        raise ConfigurationError(f"{path}: providers must hold tables such as [providers.aws]")
    return Settings(source=path, plugins=plugins, providers=providers)
