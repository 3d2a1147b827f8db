"""Open a path for reading only when it is a regular file.

A shared folder has hostile neighbours, and a name hypersdk is about to read may hold a
FIFO (opening it waits for a writer that never comes) or a link to a device (``/dev/zero``
never ends). These open without blocking, check what was opened, and refuse anything but a
regular file with an :class:`OSError` whose ``strerror`` says what it is, so each caller's
own OSError handling words the error.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Final

__all__ = ["open_regular", "read_regular_text"]

# O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer; O_NOCTTY: a
# terminal device never becomes our controlling terminal.
_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)

_KINDS: Final = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "an unknown kind of file"


def open_regular(path: str | os.PathLike[str], *, follow_links: bool = True) -> int:
    """A blocking descriptor open for reading on the regular file at ``path``.

    ``follow_links=False`` also refuses a symbolic link at ``path`` (``ELOOP``).

    Raises:
        OSError: ``path`` cannot be opened, or it is not a regular file (``EINVAL``,
            ``strerror`` such as ``"not a regular file (a FIFO)"``).
    """
    fd = os.open(path, _FLAGS | (0 if follow_links else _NOFOLLOW))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"not a regular file ({_kind(mode)})")
        os.set_blocking(fd, True)  # reads of a regular file do not block anyway; be plain
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular_text(path: str | os.PathLike[str], *, encoding: str = "utf-8") -> str:
    """The text of the regular file at ``path`` (see :func:`open_regular`).

    Raises:
        OSError: as :func:`open_regular`, or a read failed.
        UnicodeDecodeError: the file is not valid ``encoding``.
    """
    with os.fdopen(open_regular(path), "rb") as file:
        return file.read().decode(encoding)
