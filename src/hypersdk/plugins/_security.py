"""Reading a directory plugin's code safely: ownership, permissions and digests.

A plugin runs with the application's rights, so whoever can write its file can run code
as the application. Like ssh with ``~/.ssh``, we refuse a plugin whose files or folders
are writable by group/others or owned by someone other than the current user or root.

The bytes checked are the bytes executed: :func:`read_snapshot` opens each file once,
checks the open file's owner and mode, hashes what it read, and the loader compiles
exactly those bytes. Nothing is read again from disk, so a file swapped after the check
cannot slip in.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import attrs

from hypersdk.errors import PluginLoadError

__all__ = ["Snapshot", "plugin_digest", "read_snapshot"]

# Windows has neither POSIX owners nor group/other write bits worth checking.
_POSIX = hasattr(os, "getuid")


@attrs.frozen(kw_only=True)
class Snapshot:
    """The source files of one directory plugin as read (and checked) at one moment."""

    root: Path  # the .py file, or the package folder
    is_package: bool  # decided once, when read: the disk may change afterwards
    files: Mapping[str, bytes]  # absolute file path -> content
    digest: str  # see plugin_digest


def _check_owner_and_mode(path: Path, status: os.stat_result, what: str) -> None:
    if not _POSIX:
        return
    writers = [
        who
        for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH))
        if status.st_mode & bit
    ]
    if writers:
        raise PluginLoadError(
            f"refusing plugin {what} {path}: it is writable by {' and '.join(writers)} "
            f"(mode {stat.S_IMODE(status.st_mode):04o}), so another user could run code "
            f"in this process; fix it with: chmod go-w {path}"
        )
    me = os.getuid()
    if status.st_uid not in (me, 0):
        raise PluginLoadError(
            f"refusing plugin {what} {path}: it is owned by uid {status.st_uid}, not by you "
            f"(uid {me}) or root; fix it with: chown {me} {path} (or remove it)"
        )


def _check_directory(path: Path) -> None:
    try:
        status = os.stat(path)
    except OSError as exc:
        raise PluginLoadError(f"cannot inspect plugin folder {path}: {exc}") from exc
    _check_owner_and_mode(path, status, "folder")


def _read_file(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise PluginLoadError(f"cannot read plugin file {path}: {exc}") from exc
    with os.fdopen(fd, "rb") as file:
        # fstat on the open file: what we check is what we read.
        _check_owner_and_mode(path, os.fstat(file.fileno()), "file")
        return file.read()


def _package_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for folder, subfolders, names in os.walk(root):
        # __pycache__ and hidden folders hold no source we execute.
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__" and d[0] != ".")
        files.extend(Path(folder) / name for name in sorted(names) if name.endswith(".py"))
    return files


def _digest(root: Path, files: Mapping[str, bytes], *, is_package: bool) -> str:
    if not is_package:
        return hashlib.sha256(files[str(root)]).hexdigest()
    lines = sorted(
        f"{hashlib.sha256(content).hexdigest()}  {Path(name).relative_to(root).as_posix()}\n"
        for name, content in files.items()
    )
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def read_snapshot(path: Path, *, check_permissions: bool = True) -> Snapshot:
    """Read and check the source of the directory plugin at ``path``.

    Raises:
        PluginLoadError: a file or folder is writable by group/others or owned by another
            user (the message gives the ``chmod``/``chown`` that fixes it), or unreadable.
    """
    path = path.absolute()
    check = _check_directory if check_permissions else (lambda _path: None)
    files: dict[str, bytes] = {}
    is_package = path.is_dir()
    if is_package:
        check(path.parent)
        sources = _package_files(path)
        for folder in sorted({path, *(file.parent for file in sources)}):
            check(folder)
        for file in sources:
            files[str(file)] = _read_file(file) if check_permissions else file.read_bytes()
    else:
        check(path.parent)
        if path.is_symlink():
            # A symlinked plugin is only as safe as the folder it really lives in.
            check(path.resolve().parent)
        files[str(path)] = _read_file(path) if check_permissions else path.read_bytes()
    return Snapshot(
        root=path,
        is_package=is_package,
        files=MappingProxyType(files),
        digest=_digest(path, files, is_package=is_package),
    )


def plugin_digest(path: str | os.PathLike[str]) -> str:
    r"""The SHA-256 digest that ``PluginConfig.sha256_allowlist`` pins for a plugin.

    For a single-file plugin it is the file's SHA-256 (what ``sha256sum plugin.py``
    prints). For a package folder it is the SHA-256 of the sorted lines
    ``"<sha256 of file>  <path relative to the package>\\n"`` of its ``*.py`` files, so
    any change to any source file of the package changes the digest.

    >>> plugin_digest("~/.hypersdk/plugins/digitalocean.py")  # doctest: +SKIP
    '3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b'
    """
    return read_snapshot(Path(path).expanduser(), check_permissions=False).digest
