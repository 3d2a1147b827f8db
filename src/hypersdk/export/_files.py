"""Part files and atomic commits, shared by the download and compression steps.

A shared, writable folder may hold anything a hostile neighbour planted: a symlink or a
hard link at ``NAME.part`` pointing at a file of ours, a FIFO, a file of theirs. So a
part file is only ever

* created by us with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (mode 0600), or
* reopened (to resume) when ``lstat``/``fstat`` say it is our own regular file with a
  single link, opened with ``O_NOFOLLOW``;

anything else at ``NAME.part`` is left untouched and the bytes go to a new part file
with an unpredictable name beside it. Every part file is locked (``flock``) while it is
written, so two writers of one destination never share it, and it is moved into place
with ``rename``/``link`` (which replace or refuse a link at the final name, never
follow it) only after checking that the name still refers to the file we wrote.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Final

from hypersdk.errors import ExportError

if sys.platform != "win32":
    import fcntl

PART_SUFFIX: Final = ".part"

logger = logging.getLogger("hypersdk.export")

_BINARY: Final = getattr(os, "O_BINARY", 0)
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: opening a planted FIFO must not hang waiting for a writer.
_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
_OPEN_FLAGS: Final = os.O_RDWR | _BINARY | _NOFOLLOW | _CLOEXEC
# How often to start over when the part file vanishes or changes while being opened.
_OPEN_ATTEMPTS: Final = 5


def part_path(destination: Path) -> Path:
    """Where ``destination`` is written until it is complete."""
    return destination.with_name(destination.name + PART_SUFFIX)


def os_error_message(exc: OSError, action: str, path: Path) -> str:
    """A message for a failed file operation that says what to do about it."""
    reason = exc.strerror or type(exc).__name__
    hint = ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "; free some space or choose another output_path"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "; choose a writable output_path"
    return f"cannot {action} {str(path)!r}: {reason}{hint}"


def fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (a no-op where that is impossible)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:  # Windows cannot open directories; its renames are journaled anyway
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems (and Windows) refuse fsync on directories: nothing to do.
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def remove_quietly(path: Path) -> None:
    """Delete ``path`` if it exists; cleanup must not hide the error that caused it."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def is_own_regular_file(info: os.stat_result) -> bool:
    """Whether ``info`` describes a regular file of ours that nobody else links to."""
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        return False
    return not hasattr(os, "geteuid") or info.st_uid == os.geteuid()


def _lock(fd: int) -> bool:
    """Take an exclusive, advisory lock on ``fd``; ``False`` if another writer has it."""
    if sys.platform == "win32":  # opening the file is as far as we go there
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # file systems without locks (some network mounts)
        return True
    return True


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte of ``data`` at the file position, whatever short writes happen."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class PartFile:
    """A locked part file that this process created, or verified as its own.

    Use :meth:`acquire`; the file is open read-write as :attr:`fd` until :meth:`close`.
    ``reusable`` is the size of an earlier attempt's bytes a caller may resume from
    (always 0 unless ``resume=True`` found our own ``NAME.part``).
    """

    def __init__(self, path: Path, fd: int, *, reusable: int, resumable: bool) -> None:
        self.path, self.fd = path, fd
        self.reusable = reusable
        # False for a part with a random name: nobody could find it again to resume.
        self.resumable = resumable
        info = os.fstat(fd)
        self._identity = (info.st_dev, info.st_ino)

    @classmethod
    def acquire(cls, destination: Path, *, resume: bool, provider: str, operation: str) -> PartFile:
        """Open the part file for ``destination`` safely (see the module docstring).

        Raises:
            ExportError: another writer holds the part file, or it cannot be created.
        """
        path = part_path(destination)
        for _ in range(_OPEN_ATTEMPTS):
            fd, fresh = _open_named(path)
            if fd is None:
                # Something at NAME.part that is not ours: leave it as it is.
                logger.warning(
                    "%s is not a regular file of this user (a link or someone else's "
                    "file); leaving it alone and writing to a new part file",
                    path.name,
                )
                return cls._acquire_unique(destination, provider=provider, operation=operation)
            if not _lock(fd):
                os.close(fd)
                raise ExportError(
                    f"another download is already writing {str(path)!r}; wait for it to "
                    "finish or choose another destination",
                    provider=provider,
                    operation=operation,
                )
            # The lock holder before us may have renamed the file away: the name must
            # still refer to what we locked, or we would write to an orphan.
            if not _names(path, fd):
                os.close(fd)
                continue
            try:
                size = os.fstat(fd).st_size
                part = cls(path, fd, reusable=size if resume and not fresh else 0, resumable=True)
                if size and not part.reusable:
                    part.truncate()
            except OSError as exc:
                os.close(fd)
                raise ExportError(os_error_message(exc, "open", path)) from None
            return part
        raise ExportError(
            f"{str(path)!r} keeps changing while it is opened; is another program "
            "writing there? Choose another destination",
            provider=provider,
            operation=operation,
        )

    @classmethod
    def _acquire_unique(cls, destination: Path, *, provider: str, operation: str) -> PartFile:
        try:
            # mkstemp: O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600, a name nobody can predict.
            fd, name = tempfile.mkstemp(
                prefix=f".{destination.name}.", suffix=PART_SUFFIX, dir=destination.parent
            )
        except OSError as exc:
            raise ExportError(
                os_error_message(exc, "create a part file in", destination.parent),
                provider=provider,
                operation=operation,
            ) from None
        _lock(fd)
        return cls(Path(name), fd, reusable=0, resumable=False)

    def owns_path(self) -> bool:
        """Whether :attr:`path` still names the file behind :attr:`fd`."""
        try:
            info = os.lstat(self.path)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) == self._identity

    def truncate(self) -> None:
        """Empty the part file (ours: checked when it was opened)."""
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)

    def commit(self, destination: Path, *, overwrite: bool) -> None:
        """Move the complete, fsynced part file to ``destination`` atomically.

        Without ``overwrite`` an existing destination is never replaced, even one created
        after the name was chosen: a hard link fails if the name is taken, atomically.
        Neither ``rename`` nor ``link`` follows a link planted at ``destination``.
        """
        if not self.owns_path():
            raise ExportError(
                f"{str(self.path)!r} was replaced by someone else while it was written; "
                "nothing was moved to the destination. Export into a folder only you "
                "can write to"
            )
        try:
            if overwrite:
                os.replace(self.path, destination)
            else:
                self._link(destination)
            fsync_directory(destination.parent)
        except OSError as exc:
            raise ExportError(
                os_error_message(exc, "move the finished file to", destination)
            ) from None

    def _link(self, destination: Path) -> None:
        try:
            # follow_symlinks=False: link the part itself, whatever it has become.
            os.link(self.path, destination, follow_symlinks=False)
        except FileExistsError:
            raise ExportError(
                f"{str(destination)!r} already exists; pick another name "
                "(export_file_path does) or pass overwrite=True"
            ) from None
        except (OSError, NotImplementedError) as exc:
            # No hard links here (FAT, some network shares): check, then rename.
            if isinstance(exc, OSError) and exc.errno not in (
                errno.EPERM,
                errno.ENOTSUP,
                errno.EXDEV,
                errno.EMLINK,
            ):
                raise
            if os.path.lexists(destination):
                raise ExportError(
                    f"{str(destination)!r} already exists; pass overwrite=True"
                ) from None
            os.replace(self.path, destination)
        else:
            os.unlink(self.path)

    def close(self) -> None:
        """Close the file (idempotent); it stays on disk."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def discard(self, *, keep: bool = False) -> None:
        """Close, and remove the part file unless ``keep`` and it is worth resuming.

        Only our own file is removed: if someone swapped the name, theirs stays.
        """
        keep = keep and self.resumable and self.fd >= 0 and _size(self.fd) > 0
        owned = self.owns_path()
        self.close()
        if owned and not keep:
            remove_quietly(self.path)


def _size(fd: int) -> int:
    try:
        return os.fstat(fd).st_size
    except OSError:
        return 0


def _names(path: Path, fd: int) -> bool:
    try:
        named, opened = os.lstat(path), os.fstat(fd)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _open_named(path: Path) -> tuple[int | None, bool]:
    """Create ``path`` exclusively, or open it if it is our own regular file.

    Returns ``(fd, created)``, or ``(None, False)`` when something else is there.
    """
    for _ in range(_OPEN_ATTEMPTS):
        try:
            return os.open(path, _OPEN_FLAGS | os.O_CREAT | os.O_EXCL, 0o600), True
        except FileExistsError:
            pass
        except OSError as exc:
            raise ExportError(os_error_message(exc, "create", path)) from None
        try:
            fd = os.open(path, _OPEN_FLAGS | _NONBLOCK)
        except FileNotFoundError:
            continue  # removed since: try to create it again
        except OSError as exc:
            # ELOOP: a symlink (O_NOFOLLOW); EACCES/EPERM: not ours; ENXIO: a socket or
            # FIFO; EISDIR: a directory. None of them is a part file we may use.
            if exc.errno in (errno.ELOOP, errno.EACCES, errno.EPERM, errno.ENXIO, errno.EISDIR):
                return None, False
            raise ExportError(os_error_message(exc, "open", path)) from None
        if is_own_regular_file(os.fstat(fd)):
            return fd, False
        os.close(fd)
        return None, False
    return None, False
