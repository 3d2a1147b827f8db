"""Finding plugins without importing them: entry points and plugin directories."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

from hypersdk.errors import PluginLoadError
from hypersdk.plugins._info import PluginKind

if TYPE_CHECKING:
    # importlib.metadata costs milliseconds; it loads only when entry points are scanned.
    from importlib.metadata import EntryPoint  # noqa: TC004

    from hypersdk.plugins._config import PluginConfig

ENTRY_POINT_GROUP: Final = "hypersdk.providers"
"""The entry-point group installed plugins announce themselves in; the value names the module."""

_log = logging.getLogger("hypersdk.plugins")


@attrs.frozen(kw_only=True)
class Candidate:
    """One plugin found by discovery, not yet imported.

    ``name`` is the key the enabled/disabled lists match: the file stem, the package
    folder's name or the entry point's name. ``source`` is unique per plugin.
    """

    name: str
    kind: PluginKind
    source: str
    path: Path | None = None  # the .py file or the package folder
    entry_point: EntryPoint | None = attrs.field(default=None, eq=False)
    # Found but known to be unloadable before any import: the reason, with its fix.
    problem: PluginLoadError | None = attrs.field(default=None, eq=False)
    # The problem is the plugin directory itself, not one plugin in it.
    whole_directory: bool = False

    @classmethod
    def for_path(cls, path: Path) -> Candidate:
        """A directory plugin at ``path`` (a ``.py`` file or a package folder)."""
        name = path.stem if path.suffix == ".py" and not path.is_dir() else path.name
        return cls(name=name, kind="directory", source=str(path), path=path)

    @classmethod
    def for_directory_problem(cls, directory: Path, problem: PluginLoadError) -> Candidate:
        """A plugin directory that cannot be scanned safely, recorded as one failure."""
        return cls(
            name=str(directory),
            kind="directory",
            source=f"plugin directory {directory}",
            problem=problem,
            whole_directory=True,
        )

    @classmethod
    def for_entry_point(cls, entry_point: EntryPoint) -> Candidate:
        """An installed plugin announced by ``entry_point``."""
        return cls(
            name=entry_point.name,
            kind="entry_point",
            source=f"entry point {entry_point.name} = {entry_point.value}",
            entry_point=entry_point,
        )


def is_plugin_name(name: str) -> bool:
    """Whether a directory entry may be a plugin (``_private`` and ``.hidden`` are not)."""
    return not name.startswith(("_", "."))


def plugin_at(entry: Path) -> Path | None:
    """``entry`` if it is a ``*.py`` file or a package folder worth loading, else None."""
    if not is_plugin_name(entry.name):
        return None
    if entry.is_dir():
        return entry if (entry / "__init__.py").is_file() else None
    if entry.suffix == ".py" and entry.is_file():
        return entry
    return None


def scan_directory(directory: Path) -> list[Candidate]:
    """The plugins directly inside ``directory``, sorted by file name.

    A directory that does not exist holds no plugins. One that cannot be listed or
    searched, or whose path is unsafe (see :mod:`hypersdk.plugins._security`), is one
    candidate carrying that problem, so the other directories still load.
    """
    from hypersdk.plugins._security import PathMissingError, access_fix, check_plugin_directory

    directory = directory.absolute()
    try:
        real = check_plugin_directory(directory)
    except PathMissingError:
        return []
    except PluginLoadError as exc:
        return [Candidate.for_directory_problem(directory, exc)]

    def unusable(what: str, bits: str, exc: OSError) -> list[Candidate]:
        try:
            status: os.stat_result | None = os.stat(real)
        except OSError:
            status = None
        problem = PluginLoadError(
            f"cannot {what} plugin directory {directory}: {exc.strerror or exc}; its "
            f"plugins are not loaded. Fix it with: {access_fix(real, status, bits)} (or "
            "remove the directory from PluginConfig.directories / HYPERSDK_PLUGIN_PATH)",
            operation="load",
        )
        return [Candidate.for_directory_problem(directory, problem)]

    try:
        names = sorted(os.listdir(real))
    except FileNotFoundError:
        return []
    except OSError as exc:
        return unusable("list", "r", exc)
    found = []
    for name in names:
        if not is_plugin_name(name):
            continue
        try:
            os.lstat(real / name)
        except FileNotFoundError:
            continue  # removed since the listing
        except PermissionError as exc:
            # Listing needs r, looking at an entry needs x: this folder has r only.
            return unusable("search", "x", exc)
        except OSError:
            continue
        entry = directory / name
        try:
            path = plugin_at(entry)
        except (OSError, ValueError) as exc:
            # A link into a folder we may not search: this entry fails, the rest loads.
            problem = PluginLoadError(
                f"cannot inspect plugin {entry}: {getattr(exc, 'strerror', None) or exc}",
                operation="load",
            )
            stem = entry.stem if entry.suffix == ".py" else entry.name
            found.append(
                Candidate(
                    name=stem, kind="directory", source=str(entry), path=entry, problem=problem
                )
            )
            continue
        if path is not None:
            found.append(Candidate.for_path(path))
        elif entry.is_dir():
            _log.debug("skipping %s: a package plugin needs an __init__.py", entry)
    return found


def _surely_no_entry_points() -> bool:
    """True only when no installed distribution can declare a ``hypersdk.providers`` entry.

    ``importlib.metadata`` costs tens of milliseconds (importing it, then parsing every
    distribution's entry points), which an application without plugins should not pay.
    This pre-check reads only the ``entry_points.txt`` files of the plain folders on
    ``sys.path``; whenever it cannot be sure (a zip on ``sys.path``, a custom
    distribution finder) it says False and importlib.metadata decides.
    """
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if hasattr(finder, "find_distributions") and finder is not PathFinder:
            return False
    group = ENTRY_POINT_GROUP.encode()
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as listing:
                names = [item.name for item in listing]
        except NotADirectoryError:
            return False  # a zip archive: let importlib.metadata look inside
        except OSError:
            continue  # missing or unreadable: importlib.metadata finds nothing there either
        for name in names:
            if name.lower().endswith((".dist-info", ".egg-info")):
                try:
                    with open(os.path.join(entry or ".", name, "entry_points.txt"), "rb") as file:
                        if group in file.read():
                            return False
                except (FileNotFoundError, NotADirectoryError):
                    continue  # no entry points (a PKG-INFO-only .egg-info is a file)
                except OSError:
                    return False
    return True


def entry_point_candidates() -> list[Candidate]:
    """The plugins installed packages announce in the ``hypersdk.providers`` group.

    Sorted by name then value, so the order does not depend on ``sys.path`` details.
    """
    if _surely_no_entry_points():
        return []
    from importlib.metadata import distributions

    found: dict[tuple[str, str], EntryPoint] = {}
    seen: set[str] = set()
    for distribution in distributions():
        # Only the distributions that mention the group get their entry points parsed:
        # parsing every one is what makes importlib.metadata.entry_points() slow.
        # The first distribution of a name on sys.path shadows later ones, as for imports
        # (and as importlib.metadata.entry_points() does).
        key = getattr(distribution, "_normalized_name", None) or distribution.metadata["Name"]
        if key in seen:
            continue
        seen.add(key)
        text = distribution.read_text("entry_points.txt")
        if not text or ENTRY_POINT_GROUP not in text:
            continue
        for entry_point in distribution.entry_points.select(group=ENTRY_POINT_GROUP):
            found.setdefault((entry_point.name, entry_point.value), entry_point)
    return [Candidate.for_entry_point(found[key]) for key in sorted(found)]


def discover(config: PluginConfig) -> list[Candidate]:
    """Every plugin ``config`` points at, in load order, without importing any of them.

    Entry points first, then each directory of :meth:`PluginConfig.scan_directories`.
    """
    candidates = entry_point_candidates() if config.entry_points else []
    for directory in config.scan_directories():
        candidates.extend(scan_directory(directory))
    return candidates
