"""Durable, atomic file commits shared by the download and compression steps."""

from __future__ import annotations

import contextlib
import errno
import os
from typing import TYPE_CHECKING

from hypersdk.errors import ExportError

if TYPE_CHECKING:
    from pathlib import Path

PART_SUFFIX = ".part"


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


def commit(part: Path, destination: Path, *, overwrite: bool) -> None:
    """Atomically move the complete, fsynced ``part`` to ``destination``.

    Without ``overwrite`` an existing destination is never replaced, even one created
    after the name was chosen: a hard link fails if the name is taken, atomically.
    """
    try:
        if overwrite:
            os.replace(part, destination)
        else:
            try:
                os.link(part, destination)
            except FileExistsError:
                raise ExportError(
                    f"{str(destination)!r} already exists; pick another name "
                    "(export_file_path does) or pass overwrite=True"
                ) from None
            except OSError as exc:
                # No hard links here (FAT, some network shares): check, then rename.
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                    raise
                if os.path.lexists(destination):
                    raise ExportError(
                        f"{str(destination)!r} already exists; pass overwrite=True"
                    ) from None
                os.replace(part, destination)
            else:
                os.unlink(part)
        fsync_directory(destination.parent)
    except OSError as exc:
        raise ExportError(os_error_message(exc, "move the finished file to", destination)) from None


def remove_quietly(path: Path) -> None:
    """Delete ``path`` if it exists; cleanup must not hide the error that caused it."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
