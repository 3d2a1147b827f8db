"""The loading checks as one ordered table, walked by loading and by ``check_plugin``.

Each :class:`_Stage` row is one check: its name (as :data:`CHECKS` and
:class:`PluginCheck` show it), when it applies, what it does, and why it is skipped when
it does not apply. :func:`prepare` walks the rows in order and says each one's name as it
starts, so :func:`check_report` can tell which one failed; adding a check is one row.

The stages that run plugin code (importing it, reading ``PLUGIN_INFO``, building the
provider) run in a daemon thread bounded by ``PluginConfig.import_timeout``; the file
checks before them run in the caller's thread.
"""

from __future__ import annotations

import logging
import threading
import time
import types
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

import attrs

from hypersdk import _validation as v
from hypersdk.errors import ConfigurationError, PluginError, PluginLoadError
from hypersdk.models import PluginMetadata
from hypersdk.plugins._discovery import Candidate
from hypersdk.plugins._validate import (
    NewProvider,
    check_compatible,
    check_contract,
    check_provider,
    describe,
    metadata_error,
)

if TYPE_CHECKING:
    # _loader pulls in importlib.abc (and importlib.resources): import it on first load.
    from hypersdk.plugins._loader import Imported  # noqa: TC004
    from hypersdk.plugins._security import Snapshot  # noqa: TC004  (imported on first load)

__all__ = [
    "CHECKS",
    "PluginCheck",
    "Prepared",
    "check_report",
    "label",
    "prepare",
    "validate_module",
]

_log = logging.getLogger("hypersdk.plugins")


def label(candidate: Candidate) -> str:
    """How messages name a plugin: its name and where it came from."""
    return f"{v.shown(candidate.name)} ({candidate.source})"


@attrs.frozen(eq=False)
class Prepared:
    """A plugin that passed every check: imported and validated, not registered yet."""

    metadata: PluginMetadata
    factory: NewProvider
    imported: Imported
    digest: str


@attrs.define(eq=False)
class _Attempt:
    """What the stages of one load learn, handed from each to the next."""

    candidate: Candidate
    generation: int
    allowlist: Collection[str]
    snapshot: Snapshot | None = None
    imported: Imported | None = None
    metadata: PluginMetadata | None = None
    factory: NewProvider | None = None
    shown_as: str = ""  # how messages name it, when not by its candidate

    @property
    def label(self) -> str:
        return self.shown_as or label(self.candidate)

    def prepared(self) -> Prepared:
        assert self.imported is not None
        assert self.metadata is not None
        assert self.factory is not None
        digest = self.snapshot.digest if self.snapshot is not None else ""
        return Prepared(
            metadata=self.metadata, factory=self.factory, imported=self.imported, digest=digest
        )


# -- the stages, in the order they run ---------------------------------------------------


def _found(attempt: _Attempt) -> None:
    # Discovery already found it; what it saw wrong on the way (an unsafe path) fails here.
    if attempt.candidate.problem is not None:
        raise attempt.candidate.problem


def _read_safely(attempt: _Attempt) -> None:
    from hypersdk.plugins._security import read_snapshot

    assert attempt.candidate.path is not None
    attempt.snapshot = read_snapshot(attempt.candidate.path)


def _allowlisted(attempt: _Attempt) -> None:
    assert attempt.snapshot is not None
    digest = attempt.snapshot.digest
    if digest not in attempt.allowlist:
        raise PluginLoadError(
            f"refusing plugin {attempt.label}: its SHA-256 {digest} is not in "
            "PluginConfig.sha256_allowlist; if you trust this exact version, add "
            "that digest to the allowlist",
            operation="load",
        )


def _import(attempt: _Attempt) -> None:
    from hypersdk.plugins import _loader

    candidate, fresh = attempt.candidate, attempt.generation > 0
    try:
        if attempt.snapshot is not None:
            module_name = _loader.private_module_name(
                candidate.name, candidate.source, attempt.generation
            )
            attempt.imported = _loader.import_directory_plugin(attempt.snapshot, module_name)
        elif candidate.entry_point is not None:
            attempt.imported = _loader.import_entry_point(candidate.entry_point, fresh=fresh)
        else:
            attempt.imported = _loader.import_module_plugin(candidate.name, fresh=fresh)
    except BaseException as exc:
        # BaseException on purpose: SystemExit or KeyboardInterrupt raised by a
        # plugin's module code must not take the application down.
        invalid = metadata_error(exc, attempt.label)
        if invalid is not None:
            raise invalid from exc
        raise PluginLoadError(
            f"plugin {attempt.label} failed to import: {describe(exc)}; fix the plugin "
            "(the traceback is logged on the 'hypersdk.plugins' logger)",
            operation="load",
        ) from exc


def _contract(attempt: _Attempt) -> None:
    assert attempt.imported is not None
    attempt.metadata, attempt.factory = check_contract(attempt.imported.target, attempt.label)


def _compatible(attempt: _Attempt) -> None:
    assert attempt.metadata is not None
    check_compatible(attempt.metadata, attempt.label)


def _provider(attempt: _Attempt) -> None:
    assert attempt.metadata is not None
    assert attempt.factory is not None
    logger = logging.getLogger(f"hypersdk.plugins.{attempt.metadata.name}")
    check_provider(attempt.factory, attempt.metadata, logger, attempt.label)


def _always(attempt: _Attempt) -> bool:
    return True


def _from_a_directory(attempt: _Attempt) -> bool:
    return attempt.candidate.kind == "directory"


def _with_an_allowlist(attempt: _Attempt) -> bool:
    return _from_a_directory(attempt) and bool(attempt.allowlist)


@attrs.frozen
class _Stage:
    check: str
    applies: Callable[[_Attempt], bool]
    run: Callable[[_Attempt], None]
    plugin_code: bool = False  # runs in the bounded thread
    why_skipped: str = "not needed for a {kind} plugin"


_STAGES: tuple[_Stage, ...] = (
    _Stage("found: a .py file, a package folder or an importable module", _always, _found),
    _Stage(
        "safe file: owned by you or root, not writable by group/others",
        _from_a_directory,
        _read_safely,
    ),
    _Stage(
        "allowlisted: SHA-256 in PluginConfig.sha256_allowlist",
        _with_an_allowlist,
        _allowlisted,
        why_skipped="no allowlist configured",
    ),
    _Stage("imports without raising", _always, _import, plugin_code=True),
    _Stage(
        "contract: PLUGIN_INFO is a valid PluginMetadata, new_provider(config, logger)",
        _always,
        _contract,
        plugin_code=True,
    ),
    _Stage(
        "compatible: min_sdk_version and python_requires satisfied",
        _always,
        _compatible,
        plugin_code=True,
    ),
    _Stage(
        "provider: new_provider builds it; type and capabilities match PLUGIN_INFO",
        _always,
        _provider,
        plugin_code=True,
    ),
)

CHECKS = tuple(stage.check for stage in _STAGES)
"""The loading checks in the order they run (the file checks only for directory plugins)."""
CHECK_FOUND = CHECKS[0]
# The rows that judge a module once it is imported: all that follow the import.
_MODULE_STAGES = _STAGES[[stage.run for stage in _STAGES].index(_import) + 1 :]


def _ignore(check: str) -> None:
    """The default ``step`` callback of :func:`prepare`."""


def _walk(attempt: _Attempt, stages: tuple[_Stage, ...], step: Callable[[str], None]) -> None:
    for stage in stages:
        if stage.applies(attempt):
            step(stage.check)
            stage.run(attempt)


def prepare(
    candidate: Candidate,
    generation: int,
    *,
    allowlist: Collection[str],
    timeout: float,
    step: Callable[[str], None] = _ignore,
) -> Prepared:
    """Walk every stage on ``candidate``; nothing is registered.

    ``step`` is told each check's name as it starts (see :data:`CHECKS`).

    Raises:
        PluginError: a check failed; the message says what to fix.
    """
    attempt = _Attempt(candidate=candidate, generation=generation, allowlist=allowlist)
    _walk(attempt, tuple(s for s in _STAGES if not s.plugin_code), step)
    plugin_code = tuple(s for s in _STAGES if s.plugin_code)

    def run_plugin_code(step: Callable[[str], None]) -> Prepared:
        try:
            _walk(attempt, plugin_code, step)
        except BaseException as exc:
            if attempt.imported is None:
                raise  # the import stage's own message says it all
            attempt.imported.discard()
            raise _as_plugin_error(exc, attempt) from exc
        return attempt.prepared()

    return _run_bounded(
        run_plugin_code,
        step,
        timeout=timeout,
        label=attempt.label,
        private=candidate.kind == "directory",
    )


def _as_plugin_error(error: BaseException, attempt: _Attempt) -> PluginError:
    if isinstance(error, PluginError):
        return error
    return PluginLoadError(
        f"plugin {attempt.label}: reading PLUGIN_INFO/new_provider raised {describe(error)}",
        operation="load",
    )


def _nothing_to_undo() -> None:
    """The ``discard`` of a module the caller imported: it stays theirs."""


def validate_module(module: types.ModuleType) -> PluginMetadata:
    """Run the loading checks that judge an imported plugin module on one you hold.

    These are the checks :class:`PluginManager` runs once a plugin is imported (the
    entries of :data:`CHECKS` after "imports without raising"): ``PLUGIN_INFO`` and
    ``new_provider`` meet the module contract, ``min_sdk_version`` and ``python_requires``
    are satisfied, and ``new_provider`` builds, from a blank config, a provider that
    agrees with ``PLUGIN_INFO``. Nothing is imported or registered, and the checks run in
    the calling thread. For a file or an importable module,
    :meth:`PluginManager.check_plugin` runs every check, the file checks included.

    >>> metadata = validate_module(my_plugin_module)  # doctest: +SKIP

    Returns:
        The module's ``PLUGIN_INFO``.

    Raises:
        ConfigurationError: ``module`` is not a module.
        PluginError: the first check that fails (``InvalidPluginMetadataError``,
            ``IncompatiblePluginError`` or ``PluginLoadError``); the message names the
            module and says what to fix.
    """
    from hypersdk.plugins._loader import Imported

    if not isinstance(module, types.ModuleType):
        raise ConfigurationError(
            f"validate_module: module must be a module object, got {type(module).__name__}"
        )
    given: object = module.__name__  # anyone may have set it to anything
    name = given if isinstance(given, str) else "<unnamed>"
    attempt = _Attempt(
        candidate=Candidate(name=name, kind="module", source=name),
        generation=0,
        allowlist=(),
        shown_as=f"module {name}",
    )
    attempt.imported = Imported(target=module, module_name=name, discard=_nothing_to_undo)
    try:
        _walk(attempt, _MODULE_STAGES, _ignore)
    except Exception as exc:  # not BaseException: the caller's own Ctrl-C stays theirs
        raise _as_plugin_error(exc, attempt) from exc
    assert attempt.metadata is not None
    return attempt.metadata


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


def check_report(started: list[str], failure: PluginError | None, kind: str) -> list[PluginCheck]:
    """One :class:`PluginCheck` per stage, from the checks that started and the failure.

    The failure, if any, belongs to the last check that started.
    """
    results: list[PluginCheck] = []
    for stage in _STAGES:
        if stage.check in started:
            failed = failure is not None and stage.check == started[-1]
            detail = str(failure) if failed else ""
            results.append(PluginCheck(stage.check, "fail" if failed else "pass", detail))
        elif failure is not None:
            results.append(PluginCheck(stage.check, "skip", "not run: an earlier check failed"))
        else:
            why = stage.why_skipped.format(kind=kind.replace("_", "-"))
            results.append(PluginCheck(stage.check, "skip", why))
    return results


# -- running plugin code with a deadline ---------------------------------------------------


class _PluginCodeRun:
    """Plugin code running in its own daemon thread, which the caller may give up on.

    A plugin's import (and the building of its provider) can take any time or never
    return; the caller waits at most ``PluginConfig.import_timeout``. Python cannot stop
    a thread, so a run given up on goes on alone as a daemon thread (it never keeps the
    process alive) and whatever it produces when it finally returns is discarded.
    """

    def __init__(
        self,
        work: Callable[[Callable[[str], None]], Prepared],
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
        self._result: Prepared | None = None
        self._error: BaseException | None = None
        self._started = time.monotonic()

    def _report_step(self, name: str) -> None:
        if not self._abandoned:
            self._step(name)

    def run(self) -> None:
        result: Prepared | None = None
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

    def wait(self, timeout: float) -> Prepared:
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
    work: Callable[[Callable[[str], None]], Prepared],
    step: Callable[[str], None],
    *,
    timeout: float,
    label: str,
    private: bool,
) -> Prepared:
    """Run ``work`` (plugin code) in a daemon thread; wait at most ``timeout`` seconds."""
    run = _PluginCodeRun(work, step, label=label, private=private)
    thread = threading.Thread(target=run.run, name=f"hypersdk-plugin {label}", daemon=True)
    thread.start()
    return run.wait(timeout)
