"""The journal: one SQLite file that records every VM job of one plan.

Why SQLite in WAL mode: every state change is one small transaction that is on disk
when the call returns, so a crash or Ctrl-C loses nothing, and readers (``hypersdk jobs
status``, a Celery coordinator) never block the writer. The journal holds the plan and
the jobs' states, results and error messages; never a credential.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import sqlite3
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

import attrs

from hypersdk._validation import path_argument, shown
from hypersdk.errors import ConfigurationError, HyperSDKError
from hypersdk.models import ExportResult

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import TracebackType

    from hypersdk.jobs._plan import ExportPlan

__all__ = ["Journal", "JobRecord", "JobState"]

_SCHEMA_VERSION: Final = "1"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    vm_id TEXT PRIMARY KEY,
    vm_name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error_family TEXT,
    error_message TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    updated_at TEXT NOT NULL
);
"""


class JobState(enum.StrEnum):
    """Where one VM's export stands."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@attrs.frozen(kw_only=True)
class JobRecord:
    """One VM's job as the journal records it.

    ``error_family`` is the name of the :class:`~hypersdk.HyperSDKError` subclass that
    failed it (``"ProviderUnavailableError"``, ...), ``result`` the
    :class:`~hypersdk.ExportResult` once ``state`` is ``done``.
    """

    vm_id: str
    vm_name: str
    state: JobState
    attempts: int
    result: ExportResult | None
    error_family: str
    error_message: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class Journal:
    """The record of one plan's jobs, in a SQLite file.

    ``Journal(path, plan)`` creates the journal for ``plan`` or opens the one at ``path``
    (whose plan must then be the same); ``Journal(path)`` opens an existing journal.
    The file is created with mode 0600 and is never opened through a symbolic link.
    Every method is thread-safe; the journal is a context manager that closes on exit.

    Raises:
        ConfigurationError: ``path`` is a link or not a journal, or ``plan`` differs from
            the plan recorded in it.
    """

    def __init__(self, path: str | os.PathLike[str], plan: ExportPlan | None = None) -> None:
        from hypersdk.jobs._plan import ExportPlan

        checked = path_argument("path", path)  # callers may pass anything at run time
        if plan is not None and not isinstance(plan, ExportPlan):
            raise ConfigurationError(f"plan: must be an ExportPlan or None, got {shown(plan)}")
        self.path = checked
        self._lock = threading.Lock()
        _create_file(self.path, create=plan is not None)
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
        except sqlite3.Error as exc:
            raise ConfigurationError(
                f"path: cannot open the journal {shown(str(path))}: {exc}"
            ) from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a job marked done stays done
            self._db.executescript(_SCHEMA)
            self._plan = self._settle_plan(plan)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ConfigurationError(
                f"path: {shown(str(path))} is not a hypersdk journal ({exc})"
            ) from None
        except BaseException:
            self._db.close()
            raise

    # -- the plan ------------------------------------------------------------------------

    def _settle_plan(self, plan: ExportPlan | None) -> ExportPlan:
        from hypersdk.jobs._plan import ExportPlan
        from hypersdk.serialization import from_json, to_json

        stored = self._meta("plan")
        if stored is None:
            if plan is None:
                raise ConfigurationError(
                    f"path: {shown(str(self.path))} holds no plan; create the journal with a plan"
                )
            with self._transaction() as db:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))
                db.execute("INSERT INTO meta VALUES ('plan', ?)", (to_json(plan),))
            return plan
        recorded = from_json(ExportPlan, stored)
        if plan is not None and plan != recorded:
            raise ConfigurationError(
                f"plan: differs from the plan recorded in {shown(str(self.path))}; "
                "use a new journal for a new plan, or open this one without a plan to resume it"
            )
        return recorded

    @property
    def plan(self) -> ExportPlan:
        """The plan this journal records."""
        return self._plan

    @property
    def expanded(self) -> bool:
        """Whether the plan's VMs have been resolved into jobs (done once per plan)."""
        return self._meta("expanded") == "1"

    def add_jobs(self, vms: Iterable[tuple[str, str]]) -> None:
        """Record ``(vm_id, vm_name)`` pairs as pending jobs and mark the plan expanded.

        Jobs already recorded are kept as they are, so this is safe to repeat.
        """
        now = _now()
        with self._transaction() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM jobs").fetchone()
            for seq, (vm_id, vm_name) in enumerate(vms, start=count):
                db.execute(
                    "INSERT OR IGNORE INTO jobs (vm_id, vm_name, seq, state, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (vm_id, vm_name, seq, JobState.PENDING.value, now, now),
                )
            db.execute("INSERT OR REPLACE INTO meta VALUES ('expanded', '1')")

    # -- reading -------------------------------------------------------------------------

    def jobs(self, *states: JobState) -> list[JobRecord]:
        """Every job in plan order, or only those in one of ``states``."""
        query = "SELECT * FROM jobs"
        wanted = [JobState(state).value for state in states]
        if wanted:
            query += f" WHERE state IN ({', '.join('?' * len(wanted))})"
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", wanted).fetchall()
        return [self._record(row) for row in rows]

    def job(self, vm_id: str) -> JobRecord:
        """The job of one VM.

        Raises:
            ConfigurationError: the plan has no job for ``vm_id``.
        """
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE vm_id = ?", (vm_id,)).fetchone()
        if row is None:
            raise ConfigurationError(f"vm_id: the plan has no job for {shown(vm_id)}")
        return self._record(row)

    def counts(self) -> dict[JobState, int]:
        """How many jobs are in each state (every state present, possibly 0)."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        counts = dict.fromkeys(JobState, 0)
        try:
            for state, count in rows:
                counts[JobState(state)] = int(count)
        except (TypeError, ValueError):
            raise self._damaged() from None
        return counts

    def _record(self, row: tuple[object, ...]) -> JobRecord:
        try:
            return _record(row)
        except (HyperSDKError, TypeError, ValueError):  # a row this module never writes
            raise self._damaged() from None

    def _damaged(self) -> ConfigurationError:
        return ConfigurationError(
            f"path: the journal {shown(str(self.path))} is damaged (a job row this version "
            "of hypersdk never writes); restore it or start the plan with a new journal"
        )

    # -- state changes -------------------------------------------------------------------

    def start(self, vm_id: str) -> bool:
        """Move a pending job to running and count the attempt.

        Returns ``False`` (and changes nothing) when the job is not pending, so two
        runners, or a redelivered Celery task, never export the same VM at once.
        """
        now = _now()
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET state = ?, attempts = attempts + 1, started_at = ?,"
                " updated_at = ?, error_family = NULL, error_message = NULL"
                " WHERE vm_id = ? AND state = ?",
                (JobState.RUNNING.value, now, now, vm_id, JobState.PENDING.value),
            )
            return cursor.rowcount == 1

    def finish(self, vm_id: str, result: ExportResult) -> None:
        """Record a job as done with its result."""
        from hypersdk.serialization import to_json

        now = _now()
        self._set(vm_id, JobState.DONE, now, result=to_json(result), finished_at=now)

    def fail(self, vm_id: str, error: BaseException, *, family: str | None = None) -> None:
        """Record a job as failed for good, with the error's family and message.

        ``family`` overrides the error's class name (a worker reports its error by name).
        """
        now = _now()
        self._set(
            vm_id,
            JobState.FAILED,
            now,
            error_family=family or type(error).__name__,
            error_message=_error_message(error),
            finished_at=now,
        )

    def retry_later(self, vm_id: str, error: BaseException, *, family: str | None = None) -> None:
        """Put a running job back to pending after a transient error (kept for the record)."""
        self._set(
            vm_id,
            JobState.PENDING,
            _now(),
            error_family=family or type(error).__name__,
            error_message=_error_message(error),
        )

    def cancel(self, vm_id: str) -> None:
        """Record a running job as cancelled (its partial files are the exporter's to remove)."""
        self._set(vm_id, JobState.CANCELLED, _now(), finished_at=_now())

    def requeue(self, *states: JobState) -> int:
        """Put every job in one of ``states`` back to pending; return how many moved.

        Resuming a plan requeues ``running`` (a crash) and ``cancelled`` jobs;
        ``hypersdk jobs retry --failed`` requeues ``failed`` ones.
        """
        wanted = [JobState(state).value for state in states]
        if not wanted:
            return 0
        # Only placeholders are formatted in: the values travel as parameters.
        marks = ", ".join("?" * len(wanted))
        sql = f"UPDATE jobs SET state = ?, updated_at = ? WHERE state IN ({marks})"  # noqa: S608
        with self._transaction() as db:
            cursor = db.execute(sql, (JobState.PENDING.value, _now(), *wanted))
            return cursor.rowcount

    def _set(self, vm_id: str, state: JobState, now: str, **columns: str | None) -> None:
        names = ", ".join(f"{name} = ?" for name in columns)
        # Column names come from this module's own callers; values travel as parameters.
        extra = f", {names}" if names else ""
        sql = f"UPDATE jobs SET state = ?, updated_at = ?{extra} WHERE vm_id = ?"  # noqa: S608
        with self._transaction() as db:
            cursor = db.execute(sql, (state.value, now, *columns.values(), vm_id))
            if cursor.rowcount != 1:
                raise ConfigurationError(f"vm_id: the plan has no job for {shown(vm_id)}")

    # -- plumbing ------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({shown(str(self.path))})"


def _error_message(error: BaseException) -> str:
    # Errors of the hypersdk tree promise a secret-free message; anything else (a bug in a
    # plugin) is recorded by type only, as its text may hold whatever the plugin had.
    if isinstance(error, HyperSDKError):
        return str(error)[:2000]
    return f"{type(error).__name__} (not a hypersdk error: a bug in the provider)"


def _record(row: tuple[object, ...]) -> JobRecord:
    from hypersdk.serialization import from_json

    (vm_id, vm_name, _seq, state, attempts, result, family, message, created, started,
     finished, updated) = row  # fmt: skip
    return JobRecord(
        vm_id=str(vm_id),
        vm_name=str(vm_name),
        state=JobState(str(state)),
        attempts=int(str(attempts)),
        result=from_json(ExportResult, str(result)) if result else None,
        error_family=str(family or ""),
        error_message=str(message or ""),
        created_at=datetime.fromisoformat(str(created)),
        started_at=_time(started if isinstance(started, str) else None),
        finished_at=_time(finished if isinstance(finished, str) else None),
        updated_at=datetime.fromisoformat(str(updated)),
    )


def _create_file(path: Path, *, create: bool) -> None:
    """Make sure ``path`` and its side files are our own, creating them (0600) when allowed.

    A link, someone else's file, a hard link or a non-file is refused: SQLite opens the
    journal and its side files by name and follows links, and it replays a ``-wal`` (or
    a hot ``-journal``) it finds into the database, so a side file planted by another
    user could rewrite the plan. The ``-wal`` and ``-shm`` are created here, exclusively,
    before SQLite opens them: a neighbour in a sticky folder cannot slip one in between.
    """
    for side in ("-wal", "-shm", "-journal"):
        _check_own(Path(f"{path}{side}"), missing_ok=True)
    flags = os.O_RDWR | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                fd = os.open(path, flags)
        else:
            fd = os.open(path, flags)
    except FileNotFoundError:
        raise ConfigurationError(
            f"path: no journal at {shown(str(path))}; create it by running a plan"
        ) from None
    except OSError as exc:
        raise _open_error(path, exc) from None
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    _check_info(path, info)
    for side in ("-wal", "-shm"):
        _create_side(Path(f"{path}{side}"))


def _open_error(path: Path, exc: OSError) -> ConfigurationError:
    if exc.errno == errno.ELOOP:
        return ConfigurationError(
            f"path: {shown(str(path))} is a symbolic link; a journal is never opened through one"
        )
    return ConfigurationError(
        f"path: cannot open the journal {shown(str(path))}: {exc.strerror or exc}"
    )


def _check_info(path: Path, info: os.stat_result) -> None:
    # One link only: a hard link planted at the name would make SQLite write into
    # whatever file of ours it names.
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_nlink != 1:
        raise ConfigurationError(
            f"path: {shown(str(path))} is not a regular file of this user (a link, a hard "
            "link or someone else's file); refusing to use the journal"
        )


def _check_own(path: Path, *, missing_ok: bool) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    except OSError as exc:
        raise _open_error(path, exc) from None
    if stat.S_ISLNK(info.st_mode):
        raise ConfigurationError(
            f"path: {shown(str(path))} is a symbolic link (not a regular file of this user); "
            "refusing to open the journal"
        )
    _check_info(path, info)


def _create_side(path: Path) -> None:
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        os.close(os.open(path, flags, 0o600))
    except FileExistsError:
        _check_own(path, missing_ok=True)  # ours (checked above) unless it appeared just now
    except OSError as exc:
        raise _open_error(path, exc) from None
