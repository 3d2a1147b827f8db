"""Reading a directory plugin's code safely: every path component, links, digests.

A plugin runs with the application's rights, so whoever can change any folder on the
way to its file can run code as the application: they can rename a folder away and put
their own in its place, or repoint a link. Like ssh with its keys, a plugin is imported
only when every component of its path from ``/`` down, and every hop of every symlink on
the way, is owned by the current user or root and not writable by group or others. A
group/other-writable folder with the sticky bit (``/tmp``) is allowed, because there only
an entry's owner can rename or remove it, and every entry we pass through must be owned
by the user or root anyway.

Links are resolved here, one hop at a time, never by the operating system: the folder
holding each link is checked before the link is read, the link's own owner is checked,
and the walk continues through the link's target with the same checks. Once every
component is safe nobody else can change the path, so opening the resolved path (with
``O_NOFOLLOW``) opens what was checked.

The bytes checked are the bytes executed: :func:`read_snapshot` opens each file once,
checks the open file's owner and mode, hashes what it read, and the loader compiles
exactly those bytes. Nothing is read again from disk, so a file swapped after the check
cannot slip in.

A plugin directory, package or file that resolves into the standard library or a
site-packages folder is refused: those hold modules the application imports for other
reasons, never plugins (a planted link to the standard library would otherwise import
every standard module as a "plugin").
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final

import attrs

from hypersdk.errors import PluginLoadError

__all__ = [
    "PathMissingError",
    "access_fix",
    "Snapshot",
    "check_plugin_directory",
    "plugin_digest",
    "read_snapshot",
]

# Windows has neither POSIX owners nor group/other write bits worth checking.
_POSIX: Final = hasattr(os, "getuid")
_MAX_LINKS: Final = 40  # as Linux's MAXSYMLINKS: a longer chain is a loop
_MAX_DEPTH: Final = 32  # package folders nested deeper than this are not a plugin
_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    # A FIFO must not hang the loader; on regular files the flag changes nothing.
    | getattr(os, "O_NONBLOCK", 0)
)


class PathMissingError(PluginLoadError):
    """A component of a plugin path does not exist (a missing directory is not an error)."""


@attrs.frozen(kw_only=True)
class Snapshot:
    """The source files of one directory plugin as read (and checked) at one moment."""

    root: Path  # the .py file, or the package folder, as configured (links not resolved)
    is_package: bool  # decided once, when read: the disk may change afterwards
    files: Mapping[str, bytes]  # absolute file path (under root) -> content
    digest: str  # see plugin_digest


def _uid() -> int:
    return os.getuid() if _POSIX else 0


def _writers(status: os.stat_result) -> list[str]:
    return [
        who
        for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH))
        if status.st_mode & bit
    ]


def access_fix(folder: Path, status: os.stat_result | None, bits: str = "x") -> str:
    """The chmod that gives the current user ``bits`` (``"x"``, ``"r"``) on ``folder``."""
    if status is None or not _POSIX:
        return f"chmod a+{bits} {folder}"
    if status.st_uid == _uid():
        who = "u"
    elif status.st_gid in {os.getgid(), *os.getgroups()}:
        who = "g"
    else:
        who = "o"
    return f"chmod {who}+{bits} {folder}"


class _Walk:
    """Resolves one path component by component, checking each (see the module doc)."""

    def __init__(self, subject: Path, *, check: bool) -> None:
        self._subject = subject  # what is being loaded, for messages
        self._check = check and _POSIX
        self._me = _uid()
        self._statuses: dict[Path, os.stat_result] = {}

    def _via(self, component: Path) -> str:
        if component == self._subject:
            return ""
        return f" (while loading {self._subject})"

    def _refuse(self, kind: str, component: Path, status: os.stat_result) -> None:
        if not self._check:
            return
        if status.st_uid not in (self._me, 0):
            chown = "chown -h" if kind == "link" else "chown"
            raise PluginLoadError(
                f"refusing plugin {kind} {component}: it is owned by uid {status.st_uid}, "
                f"not by you (uid {self._me}) or root, so that user could change the code "
                f"imported through it{self._via(component)}; fix it with: "
                f"{chown} {self._me} {component} (or remove it)",
                operation="load",
            )
        writers = _writers(status)
        if kind == "link" or not writers:
            return  # a link's own mode means nothing (it is always 0777 on Linux)
        if kind == "folder" and status.st_mode & stat.S_ISVTX:
            return  # sticky: only an entry's owner may rename it, and we check owners
        raise PluginLoadError(
            f"refusing plugin {kind} {component}: it is writable by {' and '.join(writers)} "
            f"(mode {stat.S_IMODE(status.st_mode):04o}), so another user could change the "
            f"code imported from it{self._via(component)}; fix it with: chmod go-w {component}",
            operation="load",
        )

    def _lstat(self, component: Path, parent: Path) -> os.stat_result:
        try:
            return os.lstat(component)
        except FileNotFoundError:
            raise PathMissingError(
                f"cannot load plugin {self._subject}: {component} does not exist",
                operation="load",
            ) from None
        except PermissionError:
            raise PluginLoadError(
                f"cannot load plugin {self._subject}: the folder {parent} is not searchable "
                f"by uid {self._me} (no x permission), so {component} cannot be checked; fix "
                f"it with: {access_fix(parent, self._statuses.get(parent))}",
                operation="load",
            ) from None
        except OSError as exc:
            raise PluginLoadError(
                f"cannot load plugin {self._subject}: cannot inspect {component}: "
                f"{exc.strerror or exc}",
                operation="load",
            ) from None

    def resolve(self, path: Path, start: Path | None = None) -> tuple[Path, os.stat_result]:
        """The real path of ``path`` (relative to the checked real folder ``start``).

        Every component is checked on the way; the last one may be a file or a folder.
        """
        root = Path(path.anchor or os.sep)
        if start is None:
            current = root
            status = self._lstat(root, root)
            self._refuse("folder", root, status)
            pending = list(reversed(path.parts[1:] if path.anchor else path.parts))
        else:
            current, status = start, self._statuses[start]
            pending = list(reversed(path.parts))
        self._statuses[current] = status
        hops = 0
        while pending:
            name = pending.pop()
            if name in ("", "."):
                continue
            if name == "..":
                # current has no links left in it, so its parent is the real parent,
                # and it was checked on the way down.
                current = current.parent
                status = self._statuses.get(current) or self._lstat(current, current.parent)
                continue
            if not stat.S_ISDIR(status.st_mode):
                raise PluginLoadError(
                    f"cannot load plugin {self._subject}: {current} is not a folder",
                    operation="load",
                )
            component = current / name
            status = self._lstat(component, current)
            if stat.S_ISLNK(status.st_mode):
                self._refuse("link", component, status)
                hops += 1
                if hops > _MAX_LINKS:
                    raise PluginLoadError(
                        f"cannot load plugin {self._subject}: more than {_MAX_LINKS} symlinks "
                        f"on its path (a loop at {component}?); fix the links",
                        operation="load",
                    )
                try:
                    target = Path(os.readlink(component))
                except OSError as exc:
                    raise PluginLoadError(
                        f"cannot load plugin {self._subject}: cannot read the link "
                        f"{component}: {exc.strerror or exc}",
                        operation="load",
                    ) from None
                if target.anchor:
                    current = Path(target.anchor)
                    status = self._lstat(current, current)
                    self._refuse("folder", current, status)
                    self._statuses[current] = status
                    pending.extend(reversed(target.parts[1:]))
                else:
                    status = self._statuses[current]
                    pending.extend(reversed(target.parts))
                continue
            self._refuse("folder" if stat.S_ISDIR(status.st_mode) else "file", component, status)
            current = component
            self._statuses[current] = status
        return current, status


def _python_roots() -> list[tuple[Path, str]]:
    """The real folders of the standard library and of every site-packages."""
    key = tuple(map(str, sys.path))  # str(): applications sometimes append Path objects
    cached = _roots_cache.get(key)
    if cached is None:
        cached = _roots_cache[key] = _find_python_roots()
        if len(_roots_cache) > 8:  # sys.path changed many times: keep only the newest
            del _roots_cache[next(iter(_roots_cache))]
    return cached


_STDLIB: Final = "the Python standard library"
_roots_cache: dict[tuple[str, ...], list[tuple[Path, str]]] = {}


def _find_python_roots() -> list[tuple[Path, str]]:
    import site
    import sysconfig

    # os.py lives in the standard library, whatever sysconfig can tell.
    folders: list[tuple[str, str]] = [(os.path.dirname(os.__file__), _STDLIB)]
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
    for variables in (None, base):
        try:
            paths = sysconfig.get_paths(vars=variables) if variables else sysconfig.get_paths()
        except Exception:  # noqa: S112 - a broken install must not stop the check
            continue  # (os.py's folder, above, still names the standard library)
        keys = [("purelib", "site-packages"), ("platlib", "site-packages")]
        if variables is base:
            # A virtual environment's own "stdlib" path is just its lib folder.
            keys += [("stdlib", _STDLIB), ("platstdlib", _STDLIB)]
        folders.extend((paths[key], label) for key, label in keys if paths.get(key))
    try:
        folders.extend((folder, "site-packages") for folder in site.getsitepackages())
        if site.ENABLE_USER_SITE:
            folders.append((site.getusersitepackages(), "site-packages"))
    except AttributeError:  # pragma: no cover - virtualenv's old site.py lacks these
        pass
    # Distribution site folders (Debian's dist-packages) are only known from sys.path.
    folders.extend(
        (str(entry), "site-packages")
        for entry in sys.path
        if os.path.basename(str(entry)) in ("site-packages", "dist-packages")
    )
    roots: dict[Path, str] = {}
    for folder, label in folders:
        # These are the interpreter's own folders, trusted here only to be compared with.
        roots.setdefault(Path(os.path.realpath(folder)), label)
    # Most specific first, so a site-packages inside the standard library's folder is
    # called site-packages.
    return sorted(roots.items(), key=lambda item: len(item[0].parts), reverse=True)


def _refuse_python_folder(subject: Path, real: Path, what: str) -> None:
    for root, label in _python_roots():
        if real == root or real.is_relative_to(root):
            raise PluginLoadError(
                f"refusing plugin {what} {subject}: it resolves to {real}, inside {label} "
                f"({root}); a plugin {what} must hold only plugins, not modules Python "
                "imports for other reasons. Point PluginConfig at a folder of your own",
                operation="load",
            )


def check_plugin_directory(directory: Path) -> Path:
    """Check a plugin directory's whole path; return the real folder to list.

    Raises:
        PathMissingError: the directory (or a folder above it) does not exist.
        PluginLoadError: a component is unsafe, unsearchable or not a folder, or the
            directory resolves into the standard library or a site-packages folder.
    """
    directory = directory.absolute()
    real, status = _Walk(directory, check=True).resolve(directory)
    if not stat.S_ISDIR(status.st_mode):
        raise PluginLoadError(
            f"plugin directory {directory} is not a folder (it resolves to {real}); fix "
            "PluginConfig.directories or HYPERSDK_PLUGIN_PATH",
            operation="load",
        )
    _refuse_python_folder(directory, real, "directory")
    return real


def _read_file(walk: _Walk, logical: Path, real: Path, *, check: bool) -> bytes:
    try:
        fd = os.open(real, _OPEN_FLAGS)
    except OSError as exc:
        hint = "; fix it with: chmod u+r " + str(real) if exc.errno == errno.EACCES else ""
        raise PluginLoadError(
            f"cannot read plugin file {logical}: {exc.strerror or exc}{hint}", operation="load"
        ) from None
    with os.fdopen(fd, "rb") as file:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise PluginLoadError(
                f"refusing plugin file {logical}: it is not a regular file", operation="load"
            )
        if check:
            # fstat on the open file: what we check is what we read.
            walk._refuse("file", real, status)
        return file.read()


def _package_files(walk: _Walk, root: Path, real_root: Path) -> list[tuple[Path, Path]]:
    """``(path under root, real path)`` of every ``*.py`` file of a package, sorted.

    Linked files and folders inside the package are followed with the same checks as
    the package itself; ``__pycache__`` and hidden entries hold no source we execute.
    """
    found: list[tuple[Path, Path]] = []
    root_status = os.lstat(real_root)
    pending = [(root, real_root, 0, frozenset({(root_status.st_dev, root_status.st_ino)}))]
    while pending:
        folder, real_folder, depth, ancestors = pending.pop()
        try:
            names = sorted(os.listdir(real_folder))
        except OSError as exc:
            raise PluginLoadError(
                f"cannot load plugin package {root}: cannot list {folder}: "
                f"{exc.strerror or exc}; fix it with: chmod u+rx {real_folder}",
                operation="load",
            ) from None
        subfolders = []
        for name in names:
            entry = real_folder / name
            try:
                entry_status = os.lstat(entry)
            except OSError:
                continue  # gone since the listing
            mode = entry_status.st_mode
            hidden = name == "__pycache__" or name.startswith(".")
            if stat.S_ISDIR(mode) and hidden:
                continue
            if stat.S_ISLNK(mode) and not name.endswith(".py"):
                # Only a linked folder can hold modules; a linked data file is not ours.
                if hidden or not os.path.isdir(entry):
                    continue
            elif not stat.S_ISDIR(mode) and not name.endswith(".py"):
                continue  # a data file: never imported
            try:
                real, status = walk.resolve(Path(name), start=real_folder)
            except PathMissingError:
                continue  # a dangling link (an editor's lock file) imports nothing
            if stat.S_ISDIR(status.st_mode):
                key = (status.st_dev, status.st_ino)
                if key not in ancestors and depth < _MAX_DEPTH:
                    subfolders.append((folder / name, real, depth + 1, ancestors | {key}))
            elif name.endswith(".py"):
                found.append((folder / name, real))
        pending.extend(reversed(subfolders))
    return sorted(found)


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
        PluginLoadError: a component of its path (folder, link or file, see the module
            doc) is unsafe (the message names it and gives the ``chmod``/``chown`` that
            fixes it), unreadable or missing, or the plugin resolves into the standard
            library or a site-packages folder.
    """
    path = path.absolute()
    walk = _Walk(path, check=check_permissions)
    real, status = walk.resolve(path)
    is_package = stat.S_ISDIR(status.st_mode)
    if check_permissions:
        _refuse_python_folder(
            path, real if is_package else real.parent, "package" if is_package else "file"
        )
    files: dict[str, bytes] = {}
    if is_package:
        for logical, real_file in _package_files(walk, path, real):
            files[str(logical)] = _read_file(walk, logical, real_file, check=check_permissions)
    else:
        files[str(path)] = _read_file(walk, path, real, check=check_permissions)
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

    Raises:
        ConfigurationError: ``path`` is not a non-empty path.
        PluginLoadError: there is no readable plugin at ``path``.
    """
    from hypersdk.plugins._config import argument_path

    return read_snapshot(
        argument_path("plugin_digest", "path", path).expanduser(), check_permissions=False
    ).digest
