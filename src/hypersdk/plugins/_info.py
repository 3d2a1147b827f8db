"""The records the plugin manager keeps and reports: ``PluginInfo``, stats, ``PluginEvent``."""

from __future__ import annotations

import enum
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import attrs

from hypersdk import _validation as v
from hypersdk.errors import PluginError
from hypersdk.models import PluginMetadata, ProviderType

__all__ = ["EventAction", "PluginEvent", "PluginInfo", "PluginKind", "PluginStats", "PluginStatus"]

PluginKind = Literal["directory", "entry_point", "module"]
"""Where a plugin came from: a plugin directory, an entry point, or a module by name."""


class PluginStatus(enum.StrEnum):
    """Where a plugin stands. The values are the words logs and JSON use."""

    LOADED = "loaded"
    """Imported, validated, and its provider type is in the registry."""
    FAILED = "failed"
    """Could not load; :attr:`PluginInfo.error` says why and what to fix."""
    DISABLED = "disabled"
    """Kept out by ``PluginConfig.enabled_list``/``disabled_list``; never imported."""
    UNLOADED = "unloaded"
    """Found but not loaded (yet), or unloaded since."""


def _status(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, PluginStatus):
        v.fail(instance, attribute, "a PluginStatus", value)


def _kind(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value not in ("directory", "entry_point", "module"):
        v.fail(instance, attribute, "'directory', 'entry_point' or 'module'", value)


def _metadata(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, PluginMetadata):
        v.fail(instance, attribute, "a PluginMetadata or None", type(value).__name__)


def _error(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, PluginError):
        v.fail(instance, attribute, "a hypersdk.PluginError or None", type(value).__name__)


@attrs.frozen(kw_only=True)
class PluginInfo:
    """What the manager knows about one plugin, as of one moment (a snapshot, not live).

    Attributes:
        name: The plugin's file stem, package folder name or entry-point name: the
            word ``enabled_list``/``disabled_list`` match and lookups accept.
        source: Where it came from (a path, ``"entry point NAME = VALUE"`` or
            ``"module NAME"``); unique per plugin.
        kind: ``"directory"``, ``"entry_point"`` or ``"module"``.
        status: See :class:`PluginStatus`.
        metadata: The plugin's ``PLUGIN_INFO`` once it was read, else ``None``.
        loaded_at: When the version in use was loaded (UTC), else ``None``.
        error: Why it failed; on a loaded plugin, why the last reload was rejected (the
            previous version stays in use). ``None`` when all is well.
        digest: The SHA-256 that ``PluginConfig.sha256_allowlist`` pins (directory
            plugins that were read), else ``""``.
    """

    name: str = attrs.field(validator=v.non_empty_string)
    source: str = attrs.field(validator=v.non_empty_string)
    kind: PluginKind = attrs.field(validator=_kind)
    status: PluginStatus = attrs.field(validator=_status)
    metadata: PluginMetadata | None = attrs.field(default=None, validator=_metadata)
    loaded_at: datetime | None = attrs.field(default=None, validator=v.aware_datetime_or_none)
    # Exceptions compare by identity; two records saying the same thing are equal.
    error: PluginError | None = attrs.field(default=None, validator=_error, eq=False)
    digest: str = attrs.field(default="", validator=v.string)

    @property
    def provider_type(self) -> ProviderType | None:
        """The provider type from ``PLUGIN_INFO``, or ``None`` before it was read."""
        return self.metadata.provider_type if self.metadata is not None else None


@attrs.frozen(kw_only=True)
class PluginStats:
    """How many plugins the manager knows, by status."""

    total: int = attrs.field(default=0, validator=v.int_between(0))
    loaded: int = attrs.field(default=0, validator=v.int_between(0))
    failed: int = attrs.field(default=0, validator=v.int_between(0))
    disabled: int = attrs.field(default=0, validator=v.int_between(0))
    unloaded: int = attrs.field(default=0, validator=v.int_between(0))


EventAction = Literal["loaded", "reloaded", "unloaded", "failed", "disabled"]
_ACTIONS: tuple[EventAction, ...] = ("loaded", "reloaded", "unloaded", "failed", "disabled")


@attrs.frozen(kw_only=True)
class PluginEvent:
    """One thing hot reload did, as passed to ``PluginManager.watch(on_event=...)``.

    Attributes:
        action: ``"loaded"`` (a new plugin), ``"reloaded"`` (a changed plugin's new
            version is in use), ``"unloaded"`` (its source was deleted), ``"failed"`` (a
            new plugin failed, or a changed one was rejected and the old version stays)
            or ``"disabled"`` (a new plugin the configuration keeps out).
        path: The plugin's file or package folder.
        info: The plugin's record after the change.
        error: What went wrong for ``"failed"``, else ``None``.
    """

    action: EventAction = attrs.field()
    path: Path = attrs.field()
    info: PluginInfo | None = attrs.field(default=None)
    error: PluginError | None = attrs.field(default=None, eq=False)

    @action.validator
    def _check_action(self, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in _ACTIONS:  # also refuses what is not a string
            v.fail(self, attribute, " or ".join(map(repr, _ACTIONS)), value)

    @path.validator
    def _check_path(self, attribute: attrs.Attribute[Path], value: object) -> None:
        if not isinstance(value, Path):
            v.fail(self, attribute, "a pathlib.Path", type(value).__name__)

    @info.validator
    def _check_info(self, attribute: attrs.Attribute[PluginInfo | None], value: object) -> None:
        if value is not None and not isinstance(value, PluginInfo):
            v.fail(self, attribute, "a PluginInfo or None", type(value).__name__)

    @error.validator
    def _check_error(self, attribute: attrs.Attribute[PluginError | None], value: object) -> None:
        if value is not None and not isinstance(value, PluginError):
            v.fail(self, attribute, "a hypersdk.PluginError or None", type(value).__name__)
