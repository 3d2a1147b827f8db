"""Finding plugins without importing them: entry points and plugin directories."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

from hypersdk.plugins._info import PluginKind

if TYPE_CHECKING:
    # importlib.metadata costs milliseconds; it loads only when entry points are scanned.
    from importlib.metadata import EntryPoint  # noqa: TC004

    from hypersdk.plugins._config import PluginConfig

ENTRY_POINT_GROUP: Final = "hypersdk.providers"

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

    @classmethod
    def for_path(cls, path: Path) -> Candidate:
        """A directory plugin at ``path`` (a ``.py`` file or a package folder)."""
        name = path.stem if path.suffix == ".py" and not path.is_dir() else path.name
        return cls(name=name, kind="directory", source=str(path), path=path)

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
    """The plugins directly inside ``directory``, sorted by file name."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    except OSError as exc:
        _log.warning("cannot list plugin directory %s: %s", directory, exc)
        return []
    found = []
    for name in names:
        path = plugin_at(directory / name)
        if path is not None:
            found.append(Candidate.for_path(path))
        elif is_plugin_name(name) and (directory / name).is_dir():
            _log.debug("skipping %s: a package plugin needs an __init__.py", directory / name)
    return found


def entry_point_candidates() -> list[Candidate]:
    """The plugins installed packages announce in the ``hypersdk.providers`` group.

    Sorted by name then value, so the order does not depend on ``sys.path`` details.
    """
    from importlib.metadata import entry_points

    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name, ep.value))
    return [Candidate.for_entry_point(entry_point) for entry_point in found]


def discover(config: PluginConfig) -> list[Candidate]:
    """Every plugin ``config`` points at, in load order, without importing any of them.

    Entry points first, then each directory of :meth:`PluginConfig.scan_directories`.
    """
    candidates = entry_point_candidates() if config.entry_points else []
    for directory in config.scan_directories():
        candidates.extend(scan_directory(directory))
    return candidates
