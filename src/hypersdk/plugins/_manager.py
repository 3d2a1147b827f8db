"""``PluginManager``: discovery, loading, validation and lifecycle in one place."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from hypersdk._validation import shown
from hypersdk.errors import ConfigurationError, PluginError, PluginLoadError
from hypersdk.plugins._config import PluginConfig, argument_key
from hypersdk.plugins._discovery import Candidate, discover, plugin_at
from hypersdk.plugins._info import EventAction, PluginEvent, PluginInfo, PluginStats, PluginStatus
from hypersdk.plugins._pipeline import (
    CHECK_FOUND,
    PluginCheck,
    Prepared,
    check_report,
    label,
    prepare,
)
from hypersdk.plugins._validate import describe
from hypersdk.registry import Registry

if TYPE_CHECKING:
    from collections.abc import Callable

    import anyio

    from hypersdk.models import ProviderConfig, ProviderType

    # _loader pulls in importlib.abc (and importlib.resources): import it on first load.
    from hypersdk.plugins._loader import Imported  # noqa: TC004
    from hypersdk.providers import BlockingProvider, Provider

__all__ = ["PluginManager"]

_log = logging.getLogger("hypersdk.plugins")


@attrs.define(eq=False)
class _Record:
    candidate: Candidate
    info: PluginInfo
    imported: Imported | None = None
    generation: int = 0


def _info(candidate: Candidate, status: PluginStatus, **fields: Any) -> PluginInfo:
    """A fresh record of ``candidate``; ``fields`` are the rest of :class:`PluginInfo`."""
    return PluginInfo(
        name=candidate.name,
        source=candidate.source,
        kind=candidate.kind,
        status=status,
        **fields,
    )


def _now() -> datetime:
    return datetime.now(UTC)


class PluginManager:
    """Finds provider plugins, loads the good ones into a :class:`~hypersdk.Registry`.

    One broken plugin never stops the others: each ends up ``loaded``, ``failed`` (with
    an error that says what to fix), ``disabled`` or ``unloaded``; see
    :meth:`list_plugins`.

    >>> manager = PluginManager(PluginConfig(directories=["./plugins"]))
    >>> infos = manager.load_all()  # doctest: +SKIP
    >>> provider = manager.registry.create("digitalocean", config)  # doctest: +SKIP

    Args:
        config: A :class:`PluginConfig`, or the path of a TOML file holding one (see
            :meth:`PluginConfig.from_toml`). Default: ``PluginConfig()``.
        registry: The registry to fill; a new empty one by default.

    The manager is thread-safe; loads run one at a time.
    """

    def __init__(
        self,
        config: PluginConfig | str | os.PathLike[str] | None = None,
        *,
        registry: Registry | None = None,
    ) -> None:
        if config is None:
            config = PluginConfig()
        elif isinstance(config, str | os.PathLike):
            config = PluginConfig.from_toml(argument_key("config", config))
        elif not isinstance(config, PluginConfig):
            raise ConfigurationError(
                "config: must be a PluginConfig, a TOML file path or None, "
                f"got {type(config).__name__}"
            )
        if registry is not None and not isinstance(registry, Registry):
            raise ConfigurationError(
                f"registry: must be a hypersdk.Registry or None, got {type(registry).__name__}"
            )
        self._config = config
        self._registry = registry if registry is not None else Registry()
        # Held by whoever changes plugins (a load, reload or unload, imports included);
        # readers never take it: they read the table, which is replaced, not mutated.
        self._lock = threading.RLock()
        # By source, in the order first seen. Copy-on-write: a writer builds a new dict
        # and swaps it in, and a record's info is replaced whole, so list_plugins() and
        # get_plugin() never wait for an import that is holding the lock.
        self._records: dict[str, _Record] = {}

    @property
    def config(self) -> PluginConfig:
        """The configuration this manager follows."""
        return self._config

    @property
    def registry(self) -> Registry:
        """The registry loaded plugins register their provider types in."""
        return self._registry

    # -- discovery -----------------------------------------------------------------------

    def discover(self) -> list[PluginInfo]:
        """List the plugins the configuration points at, importing none of them.

        Each is ``unloaded``, or ``disabled`` when the enabled/disabled lists keep it
        out, or ``failed`` when it is known unloadable without importing it: a plugin
        directory that cannot be listed or searched, or whose path is unsafe, is one
        ``failed`` record (its error gives the fix) and the other directories are still
        listed. The manager's own records are not changed.
        """
        infos = []
        for candidate in discover(self._config):
            if candidate.problem is not None and (
                candidate.whole_directory or self._config.allows(candidate.name, candidate.source)
            ):
                status = PluginStatus.FAILED
            elif self._config.allows(candidate.name, candidate.source):
                status = PluginStatus.UNLOADED
            else:
                status = PluginStatus.DISABLED
            error = candidate.problem if status is PluginStatus.FAILED else None
            infos.append(_info(candidate, status, error=error))
        return infos

    # -- loading -------------------------------------------------------------------------

    def load_all(self) -> list[PluginInfo]:
        """Discover and load every plugin; return their records in discovery order.

        Never raises because of a plugin: each failure is recorded (and logged on the
        ``hypersdk.plugins`` logger). Plugins already loaded are left as they are.
        Returns ``[]`` when ``PluginConfig.enabled`` is false.
        """
        if not self._config.enabled:
            _log.info("plugin system disabled (PluginConfig.enabled is false)")
            return []
        started = time.perf_counter()
        candidates = discover(self._config)
        results = [self._load(candidate) for candidate in candidates]
        self._forget_stale_directory_problems({c.source for c in candidates})
        loaded = sum(info.status is PluginStatus.LOADED for info in results)
        _log.info(
            "plugins: %d found, %d loaded in %.1f ms",
            len(results),
            loaded,
            (time.perf_counter() - started) * 1000,
        )
        return results

    def load_plugin(self, target: str | os.PathLike[str]) -> PluginInfo:
        """Load one plugin from a path (a ``.py`` file or package folder) or a module name.

        A :class:`~os.PathLike`, or a string containing a path separator or ending in
        ``.py``, is a path: the security checks of directory plugins apply. Any other
        string is the name of an installed module (``"hypersdk_digitalocean"``).

        Returns the plugin's record (``disabled`` when the lists keep it out; the
        existing record when it is already loaded).

        Raises:
            PluginError: the plugin failed; the error is also in its record.
        """
        candidate = self._candidate_for(target)
        info = self._load(candidate)
        if info.status is PluginStatus.FAILED:
            assert info.error is not None
            raise info.error
        return info

    def _forget_stale_directory_problems(self, current: set[str]) -> None:
        """Drop the failure records of plugin directories that scanned cleanly now."""
        with self._lock:
            stale = [
                source
                for source, record in self._records.items()
                if record.candidate.whole_directory and source not in current
            ]
            if stale:
                self._records = {k: r for k, r in self._records.items() if k not in stale}

    def _candidate_for(self, target: str | os.PathLike[str]) -> Candidate:
        text = argument_key("target", target)
        if isinstance(target, os.PathLike) or os.sep in text or "/" in text or text.endswith(".py"):
            path = Path(text).expanduser().absolute()
            try:
                is_plugin = (path.is_dir() and (path / "__init__.py").is_file()) or (
                    path.suffix == ".py" and path.is_file()
                )
            except OSError as exc:
                raise PluginLoadError(
                    f"cannot inspect {path}: {exc.strerror or exc}; check that every folder "
                    "on its path is searchable (chmod u+x)",
                    operation="load",
                ) from None
            if not is_plugin:
                raise PluginLoadError(
                    f"no plugin at {path}: expected a .py file or a package folder with an "
                    "__init__.py",
                    operation="load",
                )
            return Candidate.for_path(path)
        if not text or not all(part.isidentifier() for part in text.split(".")):
            raise PluginLoadError(
                f"{shown(text)} is neither a plugin path nor a module name such as "
                "'hypersdk_digitalocean'; pass a pathlib.Path for a file",
                operation="load",
            )
        return Candidate(name=text, kind="module", source=f"module {text}")

    def _load(self, candidate: Candidate) -> PluginInfo:
        with self._lock:
            record = self._records.get(candidate.source)
            if record is not None and record.info.status is PluginStatus.LOADED:
                return record.info
            if candidate.problem is not None and candidate.whole_directory:
                return self._fail(candidate, candidate.problem, 0)
            if not self._config.allows(candidate.name, candidate.source):
                _log.info("plugin %s is disabled by configuration", label(candidate))
                return self._store(candidate, _info(candidate, PluginStatus.DISABLED))
            generation = record.generation + 1 if record is not None else 0
            try:
                prepared = self._prepare(candidate, generation, replacing=None)
            except PluginError as exc:
                return self._fail(candidate, exc, generation)
            except Exception as exc:
                # A bug of ours must not stop the other plugins either; say it is ours.
                error = PluginLoadError(
                    f"plugin {label(candidate)} could not be loaded because of an "
                    f"unexpected error in hypersdk ({describe(exc)}); please report it",
                    operation="load",
                )
                error.__cause__ = exc
                return self._fail(candidate, error, generation)
            info = self._activate(candidate, prepared, generation)
            _log.info(
                "loaded plugin %s %s (provider type %r)",
                label(candidate),
                prepared.metadata.version,
                prepared.metadata.provider_type,
            )
            return info

    def _prepare(
        self,
        candidate: Candidate,
        generation: int,
        *,
        replacing: _Record | None,
    ) -> Prepared:
        """Run every loading check, then claim the provider type; nothing is registered.

        ``replacing`` is the loaded record a reload swaps out (it may keep its type).
        """
        prepared = prepare(
            candidate,
            generation,
            allowlist=self._config.sha256_allowlist,
            timeout=self._config.import_timeout,
        )
        try:
            self._claim(prepared.metadata.provider_type, candidate, replacing=replacing)
        except PluginError:
            prepared.imported.discard()
            raise
        return prepared

    def _activate(self, candidate: Candidate, prepared: Prepared, generation: int) -> PluginInfo:
        """Register ``prepared`` in place of whatever version of ``candidate`` was loaded."""
        record = self._records.get(candidate.source)
        old = record.info if record is not None else None
        was_loaded = old is not None and old.status is PluginStatus.LOADED
        self._register(prepared, candidate)
        if was_loaded:
            assert record is not None
            assert old is not None
            old_type = old.provider_type
            if old_type is not None and old_type != prepared.metadata.provider_type:
                self._registry.unregister(old_type)
            if record.imported is not None and candidate.kind == "directory":
                record.imported.discard()
        fields: dict[str, Any] = {
            "metadata": prepared.metadata,
            "loaded_at": _now(),
            "error": None,
            "digest": prepared.digest,
        }
        info = (
            attrs.evolve(old, **fields)
            if was_loaded and old is not None
            else _info(candidate, PluginStatus.LOADED, **fields)
        )
        return self._store(candidate, info, prepared.imported, generation)

    def _owner(self, provider_type: ProviderType) -> _Record | None:
        """The loaded plugin that provides ``provider_type``: the records are the map."""
        for record in self._records.values():
            if (
                record.info.status is PluginStatus.LOADED
                and record.info.provider_type == provider_type
            ):
                return record
        return None

    def _claim(
        self, provider_type: ProviderType, candidate: Candidate, *, replacing: _Record | None
    ) -> None:
        """Refuse ``provider_type`` when someone else already provides it (first wins)."""
        other = self._owner(provider_type)
        if other is not None and other is not replacing:
            raise PluginLoadError(
                f"plugin {label(candidate)} provides provider type {shown(provider_type)}, "
                f"which plugin {shown(other.info.name)} ({other.info.source}) already "
                "provides; the first one found wins. Remove one of them or add one to "
                "PluginConfig.disabled_list",
                provider=provider_type,
                operation="load",
            )
        owned = replacing is not None and replacing.info.provider_type == provider_type
        if not owned and self._registry.is_registered(provider_type):
            raise PluginLoadError(
                f"plugin {label(candidate)} provides provider type {shown(provider_type)}, which "
                "the application already registered in the registry itself; unregister it "
                "first or disable the plugin",
                provider=provider_type,
                operation="load",
            )

    def _register(self, prepared: Prepared, candidate: Candidate) -> None:
        factory = prepared.factory
        logger = logging.getLogger(f"hypersdk.plugins.{prepared.metadata.name}")

        def build(config: ProviderConfig) -> Provider | BlockingProvider:
            return factory(config, logger)

        build.__qualname__ = f"new_provider[{candidate.name}]"
        self._registry.register(
            prepared.metadata.provider_type,
            build,
            capabilities=prepared.metadata.capabilities,
            replace=True,
        )

    def _store(
        self,
        candidate: Candidate,
        info: PluginInfo,
        imported: Imported | None = None,
        generation: int = 0,
    ) -> PluginInfo:
        record = self._records.get(candidate.source)
        if record is None:
            record = _Record(candidate, info, imported, generation)
            self._records = {**self._records, candidate.source: record}
        else:
            record.candidate, record.info = candidate, info
            record.imported, record.generation = imported, generation
        return info

    def _fail(self, candidate: Candidate, error: PluginError, generation: int) -> PluginInfo:
        cause = error.__cause__
        # The plugin's own traceback helps its author; ours would only be noise.
        _log.error(
            "%s",
            error,
            exc_info=cause if cause is not None and not isinstance(cause, PluginError) else None,
        )
        return self._store(
            candidate, _info(candidate, PluginStatus.FAILED, error=error), generation=generation
        )

    # -- lifecycle -----------------------------------------------------------------------

    def _lookup(self, key: str | os.PathLike[str]) -> _Record | None:
        text = argument_key("key", key)
        records = self._records  # one consistent table, read without waiting
        record = records.get(text)
        if record is None and (os.sep in text or "/" in text):
            record = records.get(str(Path(text).expanduser().absolute()))
        if record is not None:
            return record
        matches = [r for r in records.values() if r.info.name == text]
        if not matches:
            matches = [
                r
                for r in records.values()
                if r.info.status is PluginStatus.LOADED
                and r.info.metadata is not None
                and text in (r.info.metadata.name, r.info.metadata.provider_type)
            ]
        if len(matches) > 1:
            sources = "; ".join(r.info.source for r in matches)
            raise PluginError(
                f"{shown(text)} names {len(matches)} plugins ({sources}); pass the source instead"
            )
        return matches[0] if matches else None

    def _require(self, key: str | os.PathLike[str]) -> _Record:
        record = self._lookup(key)
        if record is None:
            known = ", ".join(sorted({r.info.name for r in self._records.values()}))
            raise PluginError(
                f"no plugin named {shown(os.fspath(key))}; known plugins: {known or 'none'}. "
                "Pass a plugin name or its source as list_plugins() shows them"
            )
        return record

    def get_plugin(self, key: str | os.PathLike[str]) -> PluginInfo | None:
        """The record of one plugin, or ``None`` when there is none.

        ``key`` is a plugin's name, its source, or (for a loaded plugin) its
        ``PLUGIN_INFO.name`` or provider type.

        Raises:
            PluginError: ``key`` matches several plugins (pass the source instead).
        """
        record = self._lookup(key)
        return record.info if record is not None else None

    def list_plugins(self) -> list[PluginInfo]:
        """The records of every plugin the manager has seen, in the order first seen.

        Never waits: a plugin being imported right now shows its previous record.
        """
        return [record.info for record in self._records.values()]

    def stats(self) -> PluginStats:
        """How many plugins are known, by status."""
        infos = self.list_plugins()
        count = dict.fromkeys(PluginStatus, 0)
        for info in infos:
            count[info.status] += 1
        return PluginStats(
            total=len(infos),
            loaded=count[PluginStatus.LOADED],
            failed=count[PluginStatus.FAILED],
            disabled=count[PluginStatus.DISABLED],
            unloaded=count[PluginStatus.UNLOADED],
        )

    def unload_plugin(self, key: str | os.PathLike[str]) -> PluginInfo:
        """Unregister a plugin's provider type and forget its private modules.

        Providers already built keep working; new ``registry.create`` calls for the type
        fail. An installed package's modules stay imported (other code may use them).

        Raises:
            PluginError: no plugin (or several) match ``key``.
        """
        with self._lock:
            record = self._require(key)
            self._drop(record)
            record.info = attrs.evolve(
                record.info, status=PluginStatus.UNLOADED, loaded_at=None, error=None
            )
            _log.info("unloaded plugin %s", label(record.candidate))
            return record.info

    def _drop(self, record: _Record) -> None:
        provider_type = record.info.provider_type
        if record.info.status is PluginStatus.LOADED and provider_type is not None:
            self._registry.unregister(provider_type)
        if record.imported is not None and record.candidate.kind == "directory":
            record.imported.discard()
        record.imported = None

    def reload_plugin(self, key: str | os.PathLike[str]) -> PluginInfo:
        """Load a plugin's current code and swap it in only when it validates.

        The new version is imported and checked while the old one stays registered; a
        broken update leaves the old version in use, with the reason in the record's
        ``error``. A plugin that is not loaded is simply loaded.

        Raises:
            PluginError: no plugin matches ``key``, or the new version failed (the old
                one, if any, is still loaded).
        """
        with self._lock:
            record = self._require(key)
            candidate = record.candidate
            if candidate.whole_directory:
                raise PluginLoadError(
                    f"{candidate.source} is a plugin directory that could not be scanned, "
                    "not a plugin; fix what its error says, then call load_all() again",
                    operation="reload",
                )
            if record.info.status is not PluginStatus.LOADED:
                info = self._load(candidate)
                if info.status is PluginStatus.FAILED:
                    assert info.error is not None
                    raise info.error
                return info
            if not self._config.allows(candidate.name, candidate.source):
                self._drop(record)
                record.info = attrs.evolve(
                    record.info, status=PluginStatus.DISABLED, loaded_at=None, error=None
                )
                return record.info
            generation = record.generation + 1
            try:
                if candidate.path is not None and not candidate.path.exists():
                    raise PluginLoadError(
                        f"plugin {label(candidate)}: its source is gone; unload it instead",
                        operation="reload",
                    )
                prepared = self._prepare(candidate, generation, replacing=record)
            except PluginError as exc:
                _log.error(
                    "reload of plugin %s rejected, keeping version %s: %s",
                    label(candidate),
                    record.info.metadata.version if record.info.metadata else "?",
                    exc,
                )
                record.info = attrs.evolve(record.info, error=exc)
                raise
            info = self._activate(candidate, prepared, generation)
            _log.info(
                "reloaded plugin %s, now version %s",
                label(candidate),
                prepared.metadata.version,
            )
            return info

    def check_plugin(self, target: str | os.PathLike[str]) -> list[PluginCheck]:
        """Run every loading check on one plugin in isolation and report each.

        The plugin is imported under a private name, validated and discarded again:
        nothing is registered and :meth:`list_plugins` does not change. This is the
        Python form of Go's ``go tool nm plugin.so | grep PluginInfo``, with reasons.

        >>> for check in PluginManager().check_plugin("./my_plugin.py"):  # doctest: +SKIP
        ...     print(check.outcome, check.name, check.detail)
        """
        started: list[str] = []
        failure: PluginError | None = None
        kind = "module"
        try:
            try:
                candidate = self._candidate_for(target)
            except PluginError:
                started.append(CHECK_FOUND)
                raise
            kind = candidate.kind
            prepared = prepare(
                candidate,
                0,
                allowlist=self._config.sha256_allowlist,
                timeout=self._config.import_timeout,
                step=started.append,
            )
        except PluginError as exc:
            failure = exc
        else:
            prepared.imported.discard()
        return check_report(started, failure, kind)

    # -- hot reload ----------------------------------------------------------------------

    async def watch(
        self,
        *,
        on_event: Callable[[PluginEvent], object] | None = None,
        stop_event: anyio.Event | None = None,
    ) -> None:
        """Watch the plugin directories and apply changes until stopped or cancelled.

        A new plugin is loaded, a changed one reloaded (the old version stays if the new
        one fails), a deleted one unloaded. Changes are debounced by
        ``PluginConfig.reload_debounce``. Nothing a plugin does is raised here: every
        outcome goes to ``on_event`` (a :class:`~hypersdk.plugins.PluginEvent`) and the
        ``hypersdk.plugins`` logger. Returns at once when ``PluginConfig.hot_reload`` (or
        ``enabled``) is false. Directories that do not exist when watching starts are not watched.

        Stopping (``stop_event`` or cancellation) takes effect at once, even while a
        plugin is importing: the import goes on in its own thread, bounded by
        ``PluginConfig.import_timeout``, and :meth:`list_plugins` never waits for it.

        >>> async with anyio.create_task_group() as tg:  # doctest: +SKIP
        ...     tg.start_soon(manager.watch)

        Raises:
            PluginError: ``watchfiles`` is not installed (``pip install 'hypersdk[reload]'``).
        """
        if on_event is not None and not callable(on_event):
            raise ConfigurationError(
                f"watch: on_event must be a callable or None, got {type(on_event).__name__}"
            )
        if stop_event is not None and not callable(getattr(stop_event, "wait", None)):
            raise ConfigurationError(
                "watch: stop_event must be an anyio.Event (or None), "
                f"got {type(stop_event).__name__}"
            )
        from hypersdk.plugins._watch import watch

        # The watcher is handed the one step it needs, not the manager.
        await watch(self._config, self._apply_change, on_event=on_event, stop_event=stop_event)

    def _apply_change(self, path: Path) -> PluginEvent | None:
        """Bring the plugin at ``path`` in line with the disk (the watcher's one step)."""
        source = str(path)
        with self._lock:
            record = self._records.get(source)
            present = plugin_at(path) is not None
            if present and record is not None and record.info.status is PluginStatus.LOADED:
                try:
                    info = self.reload_plugin(source)
                except PluginError as exc:
                    return PluginEvent(action="failed", path=path, info=record.info, error=exc)
                return PluginEvent(action="reloaded", path=path, info=info)
            if present:
                info = self._load(Candidate.for_path(path))
                action: EventAction = (
                    "loaded"
                    if info.status is PluginStatus.LOADED
                    else "disabled"
                    if info.status is PluginStatus.DISABLED
                    else "failed"
                )
                return PluginEvent(action=action, path=path, info=info, error=info.error)
            if record is not None and record.info.status is not PluginStatus.UNLOADED:
                return PluginEvent(action="unloaded", path=path, info=self.unload_plugin(source))
            return None
