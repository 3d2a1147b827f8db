"""``PluginConfig``: where plugins are looked for and which of them may load."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from hypersdk import _validation as v
from hypersdk._regular import read_regular_text
from hypersdk.errors import ConfigurationError

__all__ = ["PluginConfig", "SYSTEM_PLUGIN_DIRECTORIES", "argument_key", "argument_path"]

SYSTEM_PLUGIN_DIRECTORIES: Final[tuple[Path, ...]] = (
    Path("/usr/local/lib/hypersdk/plugins"),
    Path("/usr/lib/hypersdk/plugins"),
    Path("~/.hypersdk/plugins"),
)
"""The standard plugin directories, scanned in this order (``~`` is expanded at scan time)."""

_SHA256: Final = re.compile(r"[0-9a-f]{64}")
_MAX_DEBOUNCE: Final = 3600.0  # an hour of quiet before reloading is already absurd
_MAX_IMPORT_TIMEOUT: Final = 86400.0  # a day; beyond, timers overflow on some platforms
# The command line's first configuration files spelled the lists without "_list"; read
# silently, "disabled" would be an unknown key and "enabled = []" a type error.
_OLD_SPELLINGS: Final = {"enabled": "enabled_list", "disabled": "disabled_list"}


def argument_key(argument: str, value: object) -> str:
    """``value`` as the text of a plugin name, source or path, or a ConfigurationError.

    The public functions of ``hypersdk.plugins`` take ``str | os.PathLike[str]``; anything
    else (bytes, numbers, None, a path holding NUL) is refused with the argument's name.
    """
    try:
        text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    except Exception as exc:  # a broken PathLike is the caller's bug, not ours
        raise ConfigurationError(
            f"{argument}: {type(value).__name__}.__fspath__ failed ({type(exc).__name__})"
        ) from None
    if not isinstance(text, str) or not text.strip() or "\x00" in text:
        raise ConfigurationError(
            f"{argument}: must be a non-empty name or path (str or os.PathLike) "
            f"without NUL characters, got {v.shown(value)}"
        )
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ConfigurationError(
            f"{argument}: must be a name or path that can be encoded, got {v.shown(text)}"
        ) from None
    return text


def argument_path(function: str, argument: str, value: object) -> Path:
    """``value`` as a :class:`~pathlib.Path`, or a ConfigurationError naming it."""
    return Path(argument_key(f"{function}: {argument}", value))


def _items(field: str, what: str, value: Iterable[object]) -> tuple[object, ...]:
    try:
        return tuple(value)
    except Exception as exc:  # an iterable that fails to iterate is not a sequence
        raise ConfigurationError(
            f"PluginConfig.{field}: must be a sequence of {what}, got a "
            f"{type(value).__name__} that fails to iterate ({type(exc).__name__})"
        ) from None


def _paths(field: str, value: object) -> tuple[Path, ...]:
    items: Iterable[object]
    if isinstance(value, str | os.PathLike):
        items = (value,)
    elif isinstance(value, Iterable) and not isinstance(value, Mapping | bytes):
        items = _items(field, "paths", value)
    else:
        raise ConfigurationError(
            f"PluginConfig.{field}: must be a sequence of paths, got {v.shown(value)}"
        )
    paths = []
    for index, item in enumerate(items):
        try:
            paths.append(argument_path("PluginConfig", f"{field}[{index}]", item))
        except ConfigurationError as exc:
            raise ConfigurationError(
                str(exc).replace("PluginConfig: ", "PluginConfig.", 1)
            ) from None
    return tuple(paths)


def _to_directories(value: object) -> tuple[Path, ...]:
    return _paths("directories", value)


def _to_system_directories(value: object) -> tuple[Path, ...]:
    return _paths("system_directories", value)


def _to_names(field: str) -> Callable[[object], tuple[str, ...]]:
    def convert(value: object) -> tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, Iterable) and not isinstance(value, Mapping | bytes):
            return _items(field, "strings", value)  # type: ignore[return-value]
        raise ConfigurationError(
            f"PluginConfig.{field}: must be a sequence of strings, got {v.shown(value)}"
        )

    convert.__name__ = f"to_{field}"
    return convert


def _to_enabled_list(value: object) -> tuple[str, ...]:
    return _to_names("enabled_list")(value)


def _to_disabled_list(value: object) -> tuple[str, ...]:
    return _to_names("disabled_list")(value)


def _names(instance: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    v.string_items(instance, attribute, value)
    for item in value:
        if not item.strip():
            v.fail(instance, attribute, "a sequence of non-empty plugin names", item)


def _to_digests(value: Iterable[str]) -> tuple[str, ...]:
    items: tuple[object, ...] = _to_names("sha256_allowlist")(value)
    # Digests are compared case-insensitively: `sha256sum` prints lower case, others don't.
    return tuple(item.lower() if isinstance(item, str) else item for item in items)  # type: ignore[misc]


def _digests(instance: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    v.string_items(instance, attribute, value)
    for item in value:
        if not _SHA256.fullmatch(item):
            v.fail(instance, attribute, "a sequence of 64-character SHA-256 hex digests", item)


def _refuse_old_spelling(key: str, value: object) -> None:
    new = _OLD_SPELLINGS.get(key)
    if new is None or (key == "enabled" and not isinstance(value, list | tuple)):
        return  # ``enabled = true/false`` is the switch of the whole plugin system
    raise ConfigurationError(
        f"plugin configuration: {key!r} as a list of plugins is now spelled {new!r}; "
        f"rename it to {new} = [...]"
        + ("; enabled = true/false turns the plugin system on or off" if key == "enabled" else "")
    )


@attrs.frozen(kw_only=True)
class PluginConfig:
    """How a :class:`~hypersdk.PluginManager` finds plugins and which ones it may load.

    Directories are scanned in this order: ``system_directories`` (by default
    ``/usr/local/lib/hypersdk/plugins``, ``/usr/lib/hypersdk/plugins``,
    ``~/.hypersdk/plugins``), each entry of ``$HYPERSDK_PLUGIN_PATH``, then
    ``directories``. Installed packages are found through the ``hypersdk.providers``
    entry-point group first, when ``entry_points`` is true. ``./plugins`` is never scanned
    unless you list it: loading code from the working directory by default is a hole.

    Attributes:
        enabled: ``False`` turns the plugin system off (``load_all`` loads nothing).
        directories: Extra plugin directories, scanned last.
        enabled_list: When not empty, only these plugins may load (it wins over
            ``disabled_list``). Entries are plugin names (file stem, package folder or
            entry-point name) or full source paths.
        disabled_list: Plugins that must not load; their code is never imported.
        hot_reload: Whether :meth:`PluginManager.watch` watches the plugin directories.
        entry_points: Whether installed packages are searched through entry points.
        sha256_allowlist: When not empty, a directory plugin loads only if its SHA-256
            digest (see :func:`hypersdk.plugins.plugin_digest`) is listed.
        system_directories: The standard directories; set ``()`` to scan only what you
            configure (tests, sandboxes).
        reload_debounce: Seconds of quiet the watcher waits for before acting on changes
            (at most 3600).
        import_timeout: Seconds a plugin's code may take to import and build its provider
            (default 30, at most 86400). A plugin that takes longer is recorded as
            ``failed`` with that reason and its late result is discarded; its thread is
            left to finish on its own (Python cannot stop a thread).

    >>> config = PluginConfig(directories=["./plugins"], disabled_list=["legacy"])
    >>> config.hot_reload
    False
    """

    enabled: bool = attrs.field(default=True, validator=v.boolean)
    directories: tuple[Path, ...] = attrs.field(factory=tuple, converter=_to_directories)
    enabled_list: tuple[str, ...] = attrs.field(
        factory=tuple, converter=_to_enabled_list, validator=_names
    )
    disabled_list: tuple[str, ...] = attrs.field(
        factory=tuple, converter=_to_disabled_list, validator=_names
    )
    hot_reload: bool = attrs.field(default=False, validator=v.boolean)
    entry_points: bool = attrs.field(default=True, validator=v.boolean)
    sha256_allowlist: tuple[str, ...] = attrs.field(
        factory=tuple, converter=_to_digests, validator=_digests
    )
    system_directories: tuple[Path, ...] = attrs.field(
        default=SYSTEM_PLUGIN_DIRECTORIES, converter=_to_system_directories
    )
    reload_debounce: float = attrs.field(default=0.3, validator=v.seconds_between(_MAX_DEBOUNCE))
    import_timeout: float = attrs.field(
        default=30.0, validator=v.seconds_between(_MAX_IMPORT_TIMEOUT, above_zero=True)
    )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], *, base: Path | None = None) -> PluginConfig:
        """Build a config from a mapping such as a parsed TOML table.

        Relative ``directories`` are resolved against ``base`` when given (the folder of
        the file they came from), so a config file means the same from any working
        directory. This is the one parser of the ``[plugins]`` table: the command line's
        configuration file is read by it too.

        Raises:
            ConfigurationError: an unknown key (the message suggests the closest one) or
                a value of the wrong kind.
        """
        if not isinstance(data, Mapping):
            raise ConfigurationError(
                f"plugin configuration: must be a table/mapping, got {type(data).__name__}"
            )
        if base is not None and not isinstance(base, Path):
            raise ConfigurationError(
                f"PluginConfig.from_mapping: base must be a pathlib.Path or None, "
                f"got {type(base).__name__}"
            )
        allowed = [field.name for field in attrs.fields(cls)]
        for key in data:
            if not isinstance(key, str):
                raise ConfigurationError(
                    f"plugin configuration: keys must be strings, got {v.shown(key)}"
                )
            _refuse_old_spelling(key, data[key])
            if key not in allowed:
                import difflib  # only to word this error: not on every start-up

                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"; did you mean {v.shown(close[0])}?" if close else ""
                raise ConfigurationError(
                    f"plugin configuration: unknown key {v.shown(key)}{hint} "
                    f"Allowed keys: {', '.join(allowed)}"
                )
        values: dict[str, Any] = dict(data)
        if base is not None:
            for key in ("directories", "system_directories"):
                if key in values:
                    converted = _paths(key, values[key])
                    values[key] = tuple(
                        path if path.is_absolute() or str(path).startswith("~") else base / path
                        for path in converted
                    )
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> PluginConfig:
        """Read a config from a TOML file.

        The settings live in a ``[plugins]`` table, or at the top level of a file that has
        no ``plugins`` key::

            [plugins]
            directories = ["plugins"]          # relative to this file
            disabled_list = ["legacy"]
            hot_reload = true
            sha256_allowlist = ["9f86d081884c7d65..."]

        Raises:
            ConfigurationError: the file is missing or unreadable, is not valid TOML (the
                message gives the line), or holds an invalid setting (the message names
                the file and the key).
        """
        import tomllib

        file = argument_path("PluginConfig.from_toml", "path", path)
        try:
            text = read_regular_text(file)  # never a FIFO or a device
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"plugin config file {file}: cannot be read ({exc}); "
                "check the path passed to PluginConfig.from_toml"
            ) from exc
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"plugin config file {file}: invalid TOML: {exc}") from exc
        except RecursionError:
            raise ConfigurationError(
                f"plugin config file {file}: invalid TOML: nested too deeply"
            ) from None
        table: object = document.get("plugins", document)
        if not isinstance(table, Mapping):
            raise ConfigurationError(
                f"plugin config file {file}: 'plugins' must be a table ([plugins]), "
                f"got {type(table).__name__}"
            )
        try:
            return cls.from_mapping(table, base=file.parent.absolute())
        except ConfigurationError as exc:
            raise ConfigurationError(f"plugin config file {file}: {exc}") from exc

    def scan_directories(self) -> tuple[Path, ...]:
        """The plugin directories in scan order, ``~`` expanded and duplicates removed.

        Reads ``$HYPERSDK_PLUGIN_PATH`` now, so a change of the environment is seen by the
        next scan.
        """
        from_env = tuple(
            Path(entry)
            for entry in os.environ.get("HYPERSDK_PLUGIN_PATH", "").split(os.pathsep)
            if entry.strip()
        )
        seen: set[Path] = set()
        ordered: list[Path] = []
        for directory in (*self.system_directories, *from_env, *self.directories):
            expanded = directory.expanduser().absolute()
            if expanded not in seen:
                seen.add(expanded)
                ordered.append(expanded)
        return tuple(ordered)

    def allows(self, name: str, source: str) -> bool:
        """Whether the enabled/disabled lists let the plugin ``name`` at ``source`` load.

        Raises:
            ConfigurationError: ``name`` or ``source`` is not a string.
        """
        for argument, value in (("name", name), ("source", source)):
            if not isinstance(value, str):
                raise ConfigurationError(
                    f"PluginConfig.allows: {argument} must be a string, got {type(value).__name__}"
                )
        if self.enabled_list:
            return name in self.enabled_list or source in self.enabled_list
        return name not in self.disabled_list and source not in self.disabled_list
