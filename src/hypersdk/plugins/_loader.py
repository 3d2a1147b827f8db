"""Importing plugin code without touching ``sys.path`` or anyone else's module names.

Directory plugins are imported under a private name, ``hypersdk._plugins.<stem>_<hash>``,
derived from the plugin's path: two plugins both called ``provider.py`` get two modules,
and a plugin file named ``json.py`` is ``hypersdk._plugins.json_...``, never ``json``.
Their code is compiled from the :class:`~hypersdk.plugins._security.Snapshot` that was
checked, including the submodules of a package plugin (served by one meta-path finder
that answers only for ``hypersdk._plugins.*`` names), and no bytecode is written next to
the plugin. Whatever fails leaves nothing behind in ``sys.modules``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint
    from pathlib import Path
    from types import ModuleType

    from hypersdk.plugins._security import Snapshot

__all__ = ["Imported", "import_directory_plugin", "import_entry_point", "import_module_plugin"]

PRIVATE_PACKAGE: Final = "hypersdk._plugins"


def private_module_name(name: str, source: str, generation: int = 0) -> str:
    """The private module name of the plugin ``name`` found at ``source``.

    The hash of the source keeps two same-named plugins apart; the generation keeps a
    reloaded version apart from the one still in use until the swap.
    """
    stem = re.sub(r"\W", "_", name) or "plugin"
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    suffix = f"_{generation}" if generation else ""
    return f"{PRIVATE_PACKAGE}.{stem}_{digest}{suffix}"


class _SnapshotLoader(importlib.abc.SourceLoader):
    """Compiles a module from checked bytes; never reads or writes bytecode caches."""

    def __init__(self, path: str, files: Mapping[str, bytes]) -> None:
        self._path = path
        self._files = files

    def get_filename(self, fullname: str) -> str:
        return self._path

    def get_data(self, path: str) -> bytes:
        try:
            return self._files[path]
        except KeyError:
            # SourceLoader asks for bytecode first; refusing makes it compile the source.
            raise OSError(f"{path} is not part of the checked plugin source") from None


def _spec(fullname: str, path: Path, snapshot: Snapshot) -> importlib.machinery.ModuleSpec:
    is_package = path.name == "__init__.py"
    spec = importlib.util.spec_from_file_location(
        fullname,
        path,
        loader=_SnapshotLoader(str(path), snapshot.files),
        submodule_search_locations=[str(path.parent)] if is_package else None,
    )
    if spec is None:  # pragma: no cover - only for unknown suffixes, and ours is .py
        raise ImportError(f"cannot build an import spec for {path}", name=fullname)
    return spec


class _SnapshotFinder(importlib.abc.MetaPathFinder):
    """Serves the submodules of loaded package plugins from their snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._packages: dict[str, Snapshot] = {}

    def add(self, fullname: str, snapshot: Snapshot) -> None:
        with self._lock:
            self._packages[fullname] = snapshot

    def remove(self, fullname: str) -> None:
        with self._lock:
            self._packages.pop(fullname, None)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(PRIVATE_PACKAGE + "."):
            return None
        with self._lock:
            owners = [
                (root, snapshot)
                for root, snapshot in self._packages.items()
                if fullname.startswith(root + ".")
            ]
        if not owners:
            return None
        root, snapshot = owners[0]
        base = snapshot.root.joinpath(*fullname[len(root) + 1 :].split("."))
        for candidate in (base / "__init__.py", base.with_name(base.name + ".py")):
            if str(candidate) in snapshot.files:
                return _spec(fullname, candidate, snapshot)
        # Falling through to the path finder would read unchecked files from disk.
        raise ModuleNotFoundError(
            f"No module named {fullname!r}: the plugin package {snapshot.root} has no "
            f"{base.relative_to(snapshot.root).as_posix()}.py",
            name=fullname,
        )


_finder_lock = threading.Lock()
_finder: _SnapshotFinder | None = None


def _snapshot_finder() -> _SnapshotFinder:
    global _finder  # noqa: PLW0603 - one finder per process, installed on first use
    with _finder_lock:
        if _finder is None:
            _finder = _SnapshotFinder()
            sys.meta_path.insert(0, _finder)
        return _finder


def _forget(fullname: str) -> None:
    for name in [n for n in sys.modules if n == fullname or n.startswith(fullname + ".")]:
        del sys.modules[name]
    if _finder is not None:
        _finder.remove(fullname)


@attrs.define(eq=False)
class Imported:
    """A freshly imported plugin module and how to take it back out of ``sys.modules``."""

    target: object  # the module (or entry-point object) holding PLUGIN_INFO / new_provider
    module_name: str
    discard: Callable[[], None]  # undo the import (failed validation, unload, lost reload)


def import_directory_plugin(snapshot: Snapshot, module_name: str) -> Imported:
    """Execute a checked directory plugin as the private module ``module_name``.

    Raises whatever the plugin's code raises (any :class:`BaseException`); the module and
    its submodules are gone from ``sys.modules`` when it does.
    """
    origin = snapshot.root / "__init__.py" if snapshot.is_package else snapshot.root
    spec = _spec(module_name, origin, snapshot)
    module = importlib.util.module_from_spec(spec)
    if snapshot.is_package:
        _snapshot_finder().add(module_name, snapshot)
    sys.modules[module_name] = module
    try:
        assert spec.loader is not None
        spec.loader.exec_module(module)
    except BaseException:
        _forget(module_name)
        raise
    return Imported(target=module, module_name=module_name, discard=lambda: _forget(module_name))


def _subtree(root: str) -> Callable[[str], bool]:
    return lambda name: name == root or name.startswith(root + ".")


def _import_installed(module: str, load: Callable[[], object], *, fresh: bool) -> Imported:
    in_package = _subtree(module.partition(".")[0])
    in_module = _subtree(module)
    # A reload imports the named module (and its submodules) again from disk; the old
    # ones come back if it fails. Sibling modules of its package are left alone: other
    # code may be using them.
    saved = {n: sys.modules.pop(n) for n in list(sys.modules) if in_module(n)} if fresh else {}
    before = set(sys.modules)

    def discard() -> None:
        # Whatever this import added to the package goes; what was there stays.
        for name in [n for n in sys.modules if in_package(n) and n not in before]:
            del sys.modules[name]
        sys.modules.update(saved)

    try:
        target = load()
    except BaseException:
        discard()
        raise
    return Imported(target=target, module_name=module, discard=discard)


def import_entry_point(entry_point: EntryPoint, *, fresh: bool = False) -> Imported:
    """Import the module (or object) an entry point names; ``fresh`` re-imports it."""
    if fresh:
        importlib.invalidate_caches()
    return _import_installed(entry_point.module, entry_point.load, fresh=fresh)


def import_module_plugin(module: str, *, fresh: bool = False) -> Imported:
    """Import an installed module by name; ``fresh`` re-imports it."""
    if fresh:
        importlib.invalidate_caches()
    return _import_installed(module, lambda: importlib.import_module(module), fresh=fresh)
