"""``PluginManager``: discovery, loading, validation and lifecycle in one place."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from hypersdk import _validation as v
from hypersdk.errors import ConfigurationError, PluginError, PluginLoadError
from hypersdk.models import PluginMetadata
from hypersdk.plugins._config import PluginConfig, argument_key
from hypersdk.plugins._discovery import Candidate, discover, plugin_at
from hypersdk.plugins._info import PluginInfo, PluginStats, PluginStatus
from hypersdk.plugins._validate import (
    NewProvider,
    check_compatible,
    check_contract,
    check_provider,
    describe,
    metadata_error,
)
from hypersdk.registry import Registry

if TYPE_CHECKING:
    from collections.abc import Callable

    import anyio

    from hypersdk.models import ProviderConfig, ProviderType

    # _loader pulls in importlib.abc (and importlib.resources): import it on first load.
    from hypersdk.plugins._loader import Imported  # noqa: TC004
    from hypersdk.plugins._watch import PluginEvent
    from hypersdk.providers import BlockingProvider, Provider

__all__ = ["PluginManager"]

_log = logging.getLogger("hypersdk.plugins")


@attrs.define(eq=False)
class _Record:
    candidate: Candidate
    info: PluginInfo
    imported: Imported | None = None
    generation: int = 0


@attrs.frozen(eq=False)
class _Prepared:
    metadata: PluginMetadata
    factory: NewProvider
    imported: Imported
    digest: str


CHECK_FOUND = "found: a .py file, a package folder or an importable module"
CHECK_SAFE_FILE = "safe file: owned by you or root, not writable by group/others"
CHECK_ALLOWLIST = "allowlisted: SHA-256 in PluginConfig.sha256_allowlist"
CHECK_IMPORT = "imports without raising"
CHECK_CONTRACT = "contract: PLUGIN_INFO is a valid PluginMetadata, new_provider(config, logger)"
CHECK_COMPATIBLE = "compatible: min_sdk_version and python_requires satisfied"
CHECK_PROVIDER = "provider: new_provider builds it; type and capabilities match PLUGIN_INFO"
CHECKS = (
    CHECK_FOUND,
    CHECK_SAFE_FILE,
    CHECK_ALLOWLIST,
    CHECK_IMPORT,
    CHECK_CONTRACT,
    CHECK_COMPATIBLE,
    CHECK_PROVIDER,
)
"""The loading checks in the order they run (the file checks only for directory plugins)."""


@attrs.frozen
class PluginCheck:
    """One loading check of :meth:`PluginManager.check_plugin`.

    ``outcome`` is ``"pass"``, ``"fail"`` (``detail`` says what to fix) or ``"skip"``
    (an earlier check failed, or the check does not apply to this kind of plugin).
    """

    name: str = attrs.field(validator=v.non_empty_string)
    outcome: str = attrs.field()
    detail: str = attrs.field(default="", validator=v.string)

    @outcome.validator
    def _check_outcome(self, attribute: attrs.Attribute[str], value: object) -> None:
        if value not in ("pass", "fail", "skip"):
            v.fail(self, attribute, "'pass', 'fail' or 'skip'", value)


def _ignore(step: str) -> None:
    """The default ``step`` callback of ``_prepare``."""


def _label(candidate: Candidate) -> str:
    return f"{candidate.name!r} ({candidate.source})"


def _now() -> datetime:
    return datetime.now(UTC)


class _PluginCodeRun:
    """Plugin code running in its own daemon thread, which the caller may give up on.

    A plugin's import (and the building of its provider) can take any time or never
    return; the caller waits at most ``PluginConfig.import_timeout``. Python cannot stop
    a thread, so a run given up on goes on alone as a daemon thread (it never keeps the
    process alive) and whatever it produces when it finally returns is discarded.
    """

    def __init__(
        self,
        work: Callable[[Callable[[str], None]], _Prepared],
        step: Callable[[str], None],
        *,
        label: str,
        private: bool,
    ) -> None:
        self._work = work
        self._step = step
        self._label = label
        self._private = private
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._abandoned = False
        self._result: _Prepared | None = None
        self._error: BaseException | None = None
        self._started = time.monotonic()

    def _report_step(self, name: str) -> None:
        if not self._abandoned:
            self._step(name)

    def run(self) -> None:
        result: _Prepared | None = None
        error: BaseException | None = None
        try:
            result = self._work(self._report_step)
        except BaseException as exc:  # handed to the waiting caller, who decides
            error = exc
        with self._lock:
            if not self._abandoned:
                self._result, self._error = result, error
                self._finished.set()
                return
        took = time.monotonic() - self._started
        if result is not None and self._private:
            # Its private modules must not linger; an installed module stays imported,
            # as any import of it would, but it is never registered.
            result.imported.discard()
        _log.warning(
            "plugin %s finished after %.1f s, past PluginConfig.import_timeout; "
            "its result was discarded",
            self._label,
            took,
        )

    def wait(self, timeout: float) -> _Prepared:
        finished = self._finished.wait(timeout)
        with self._lock:
            if not finished and not self._finished.is_set():
                self._abandoned = True
                raise PluginLoadError(
                    f"plugin {self._label} did not finish importing within {timeout:g} s "
                    "(PluginConfig.import_timeout), so it was given up on; make its import "
                    "quick (no network or blocking calls at module level or in "
                    "new_provider) or raise the limit",
                    operation="load",
                )
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def _run_bounded(
    work: Callable[[Callable[[str], None]], _Prepared],
    step: Callable[[str], None],
    *,
    timeout: float,
    label: str,
    private: bool,
) -> _Prepared:
    """Run ``work`` (plugin code) in a daemon thread; wait at most ``timeout`` seconds."""
    run = _PluginCodeRun(work, step, label=label, private=private)
    thread = threading.Thread(target=run.run, name=f"hypersdk-plugin {label}", daemon=True)
    thread.start()
    return run.wait(timeout)


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
        self._owners: dict[ProviderType, _Record] = {}  # the loaded plugin of each type

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
            infos.append(
                PluginInfo(
                    name=candidate.name,
                    source=candidate.source,
                    kind=candidate.kind,
                    status=status,
                    error=candidate.problem if status is PluginStatus.FAILED else None,
                )
            )
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
                f"{text!r} is neither a plugin path nor a module name such as "
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
                _log.info("plugin %s is disabled by configuration", _label(candidate))
                return self._store(
                    candidate,
                    PluginInfo(
                        name=candidate.name,
                        source=candidate.source,
                        kind=candidate.kind,
                        status=PluginStatus.DISABLED,
                    ),
                )
            generation = record.generation + 1 if record is not None else 0
            if candidate.problem is not None:
                return self._fail(candidate, candidate.problem, generation)
            try:
                prepared = self._prepare(candidate, generation)
            except PluginError as exc:
                return self._fail(candidate, exc, generation)
            except Exception as exc:
                # A bug of ours must not stop the other plugins either; say it is ours.
                error = PluginLoadError(
                    f"plugin {_label(candidate)} could not be loaded because of an "
                    f"unexpected error in hypersdk ({describe(exc)}); please report it",
                    operation="load",
                )
                error.__cause__ = exc
                return self._fail(candidate, error, generation)
            try:
                self._claim(prepared.metadata.provider_type, candidate, replacing=None)
            except PluginError as exc:
                prepared.imported.discard()
                return self._fail(candidate, exc, generation)
            self._register(prepared, candidate)
            info = PluginInfo(
                name=candidate.name,
                source=candidate.source,
                kind=candidate.kind,
                status=PluginStatus.LOADED,
                metadata=prepared.metadata,
                loaded_at=_now(),
                digest=prepared.digest,
            )
            stored = self._store(candidate, info, prepared.imported, generation)
            self._owners[prepared.metadata.provider_type] = self._records[candidate.source]
            _log.info(
                "loaded plugin %s %s (provider type %r)",
                _label(candidate),
                prepared.metadata.version,
                prepared.metadata.provider_type,
            )
            return stored

    def _prepare(
        self, candidate: Candidate, generation: int, step: Callable[[str], None] = _ignore
    ) -> _Prepared:
        """Import and validate ``candidate``; nothing is registered yet.

        ``step`` is told the name of each check (see :data:`CHECKS`) as it starts, so
        :meth:`check_plugin` can say which one failed.
        """
        from hypersdk.plugins import _loader

        label = _label(candidate)
        digest = ""
        importer: Callable[[], Imported]
        if candidate.kind == "directory":
            from hypersdk.plugins._security import read_snapshot

            assert candidate.path is not None
            step(CHECK_SAFE_FILE)
            snapshot = read_snapshot(candidate.path)
            digest = snapshot.digest
            allowlist = self._config.sha256_allowlist
            if allowlist:
                step(CHECK_ALLOWLIST)
            if allowlist and digest not in allowlist:
                raise PluginLoadError(
                    f"refusing plugin {label}: its SHA-256 {digest} is not in "
                    "PluginConfig.sha256_allowlist; if you trust this exact version, add "
                    "that digest to the allowlist",
                    operation="load",
                )
            module_name = _loader.private_module_name(candidate.name, candidate.source, generation)

            def importer() -> Imported:
                return _loader.import_directory_plugin(snapshot, module_name)

        elif candidate.entry_point is not None:
            entry_point = candidate.entry_point

            def importer() -> Imported:
                return _loader.import_entry_point(entry_point, fresh=generation > 0)

        else:

            def importer() -> Imported:
                return _loader.import_module_plugin(candidate.name, fresh=generation > 0)

        def run_plugin_code(step: Callable[[str], None]) -> _Prepared:
            step(CHECK_IMPORT)
            try:
                imported = importer()
            except BaseException as exc:
                # BaseException on purpose: SystemExit or KeyboardInterrupt raised by a
                # plugin's module code must not take the application down.
                invalid = metadata_error(exc, label)
                if invalid is not None:
                    raise invalid from exc
                raise PluginLoadError(
                    f"plugin {label} failed to import: {describe(exc)}; fix the plugin "
                    "(the traceback is logged on the 'hypersdk.plugins' logger)",
                    operation="load",
                ) from exc
            try:
                step(CHECK_CONTRACT)
                metadata, factory = check_contract(imported.target, label)
                step(CHECK_COMPATIBLE)
                check_compatible(metadata, label)
                logger = logging.getLogger(f"hypersdk.plugins.{metadata.name}")
                step(CHECK_PROVIDER)
                check_provider(factory, metadata, logger, label)
            except PluginError:
                imported.discard()
                raise
            except BaseException as exc:
                imported.discard()
                raise PluginLoadError(
                    f"plugin {label}: reading PLUGIN_INFO/new_provider raised {describe(exc)}",
                    operation="load",
                ) from exc
            return _Prepared(
                metadata=metadata,
                factory=factory,
                imported=imported,
                digest=digest,
            )

        return _run_bounded(
            run_plugin_code,
            step,
            timeout=self._config.import_timeout,
            label=label,
            private=candidate.kind == "directory",
        )

    def _claim(
        self, provider_type: ProviderType, candidate: Candidate, *, replacing: _Record | None
    ) -> None:
        """Refuse ``provider_type`` when someone else already provides it (first wins)."""
        other = self._owners.get(provider_type)
        if other is not None and other is not replacing:
            raise PluginLoadError(
                f"plugin {_label(candidate)} provides provider type {provider_type!r}, "
                f"which plugin {other.info.name!r} ({other.info.source}) already "
                "provides; the first one found wins. Remove one of them or add one to "
                "PluginConfig.disabled_list",
                provider=provider_type,
                operation="load",
            )
        owned = replacing is not None and replacing.info.provider_type == provider_type
        if not owned and self._registry.is_registered(provider_type):
            raise PluginLoadError(
                f"plugin {_label(candidate)} provides provider type {provider_type!r}, which "
                "the application already registered in the registry itself; unregister it "
                "first or disable the plugin",
                provider=provider_type,
                operation="load",
            )

    def _register(self, prepared: _Prepared, candidate: Candidate) -> None:
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
            candidate,
            PluginInfo(
                name=candidate.name,
                source=candidate.source,
                kind=candidate.kind,
                status=PluginStatus.FAILED,
                error=error,
            ),
            generation=generation,
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
                f"{text!r} names {len(matches)} plugins ({sources}); pass the source instead"
            )
        return matches[0] if matches else None

    def _require(self, key: str | os.PathLike[str]) -> _Record:
        record = self._lookup(key)
        if record is None:
            known = ", ".join(sorted({r.info.name for r in self._records.values()}))
            raise PluginError(
                f"no plugin named {os.fspath(key)!r}; known plugins: {known or 'none'}. "
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
            _log.info("unloaded plugin %s", _label(record.candidate))
            return record.info

    def _drop(self, record: _Record) -> None:
        provider_type = record.info.provider_type
        if record.info.status is PluginStatus.LOADED and provider_type is not None:
            self._registry.unregister(provider_type)
            self._owners.pop(provider_type, None)
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
                prepared = self._prepare_reload(record, generation)
            except PluginError as exc:
                _log.error(
                    "reload of plugin %s rejected, keeping version %s: %s",
                    _label(candidate),
                    record.info.metadata.version if record.info.metadata else "?",
                    exc,
                )
                record.info = attrs.evolve(record.info, error=exc)
                raise
            old_type, old_imported = record.info.provider_type, record.imported
            self._register(prepared, candidate)
            if old_type is not None and old_type != prepared.metadata.provider_type:
                self._registry.unregister(old_type)
                self._owners.pop(old_type, None)
            self._owners[prepared.metadata.provider_type] = record
            if old_imported is not None and candidate.kind == "directory":
                old_imported.discard()
            record.imported, record.generation = prepared.imported, generation
            record.info = attrs.evolve(
                record.info,
                metadata=prepared.metadata,
                loaded_at=_now(),
                error=None,
                digest=prepared.digest,
            )
            _log.info(
                "reloaded plugin %s, now version %s",
                _label(candidate),
                prepared.metadata.version,
            )
            return record.info

    def _prepare_reload(self, record: _Record, generation: int) -> _Prepared:
        candidate = record.candidate
        if candidate.path is not None and not candidate.path.exists():
            raise PluginLoadError(
                f"plugin {_label(candidate)}: its source is gone; unload it instead",
                operation="reload",
            )
        prepared = self._prepare(candidate, generation)
        try:
            self._claim(prepared.metadata.provider_type, candidate, replacing=record)
        except PluginError:
            prepared.imported.discard()
            raise
        return prepared

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
            started.append(CHECK_FOUND)
            candidate = self._candidate_for(target)
            kind = candidate.kind
            prepared = self._prepare(candidate, generation=0, step=started.append)
        except PluginError as exc:
            failure = exc
        else:
            prepared.imported.discard()
        results: list[PluginCheck] = []
        for name in CHECKS:
            if name in started:
                failed = failure is not None and name == started[-1]
                detail = str(failure) if failed else ""
                results.append(PluginCheck(name, "fail" if failed else "pass", detail))
            elif failure is not None:
                results.append(PluginCheck(name, "skip", "not run: an earlier check failed"))
            else:
                why = (
                    "no allowlist configured"
                    if name == CHECK_ALLOWLIST
                    else f"not needed for a {kind.replace('_', '-')} plugin"
                )
                results.append(PluginCheck(name, "skip", why))
        return results

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

        await watch(self, on_event=on_event, stop_event=stop_event)

    def _apply_change(self, path: Path) -> PluginEvent | None:
        """Bring the plugin at ``path`` in line with the disk (the watcher's one step)."""
        from hypersdk.plugins._watch import PluginEvent

        if TYPE_CHECKING:
            from hypersdk.plugins._watch import EventAction
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
