"""Hot reload: watch plugin directories with ``watchfiles`` and apply what changed.

``watchfiles`` (the ``reload`` extra) is imported only here, only when watching starts.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from hypersdk.errors import PluginError
from hypersdk.plugins._discovery import is_plugin_name
from hypersdk.plugins._info import PluginEvent

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    import anyio

    from hypersdk.plugins._config import PluginConfig

__all__ = ["affected_plugins", "watch"]

_log = logging.getLogger("hypersdk.plugins")


def affected_plugins(changed: Iterable[str], directories: Iterable[Path]) -> list[Path]:
    """The plugin paths (``x.py`` or package folder) that a batch of changed paths touch.

    An edit anywhere inside a package plugin touches the package. Private and hidden
    entries (``_x.py``, ``.x.py.swp``) are ignored, as discovery ignores them.
    """
    roots = sorted(directories, key=lambda d: len(d.parts), reverse=True)
    touched: set[Path] = set()
    for raw in changed:
        path = Path(raw)
        for root in roots:
            if path == root or not path.is_relative_to(root):
                continue
            top = root / path.relative_to(root).parts[0]
            is_module = top.suffix == ".py" and not _is(top, Path.is_dir)
            # A deleted package is gone from disk, so any other entry that is not a
            # plain file (notes.txt) counts as a package; the manager sorts it out.
            maybe_package = not _is(top, Path.is_file)
            if is_plugin_name(top.name) and (is_module or maybe_package):
                touched.add(top)
            break
    return sorted(touched)


def _is(path: Path, test: Callable[[Path], bool]) -> bool:
    """``test(path)``, False when the answer is hidden (a folder we may not search)."""
    try:
        return test(path)
    except OSError:
        return False


def _report(on_event: Callable[[PluginEvent], object] | None, event: PluginEvent) -> None:
    level = logging.WARNING if event.action == "failed" else logging.INFO
    _log.log(level, "hot reload: %s %s", event.action, event.path)
    if on_event is None:
        return
    try:
        on_event(event)
    except Exception:
        # A broken callback must not stop hot reload for everyone else.
        _log.exception("hot reload: the on_event callback raised; continuing")


async def watch(
    config: PluginConfig,
    apply_change: Callable[[Path], PluginEvent | None],
    *,
    on_event: Callable[[PluginEvent], object] | None,
    stop_event: anyio.Event | None,
) -> None:
    """The body of :meth:`PluginManager.watch`.

    ``apply_change`` brings the plugin at one path in line with the disk and says what it
    did; the manager hands in its own, so the watcher never reaches into the manager.
    """
    if not (config.enabled and config.hot_reload):
        _log.info("hot reload is off (PluginConfig.enabled/hot_reload); not watching")
        return
    try:
        import watchfiles
    except ImportError as exc:
        raise PluginError(
            "hot reload needs the watchfiles package: pip install 'hypersdk[reload]'"
        ) from exc
    import anyio
    import anyio.lowlevel

    directories = [d for d in config.scan_directories() if _is(d, Path.is_dir)]
    if not directories:
        _log.info("hot reload: none of the plugin directories exists; nothing to watch")
        return
    _log.info("hot reload: watching %s", ", ".join(map(str, directories)))
    # watchfiles polls its stop event from a worker thread, and cancelling the awaiting
    # task does not set it until that thread returns (seconds later). A sibling task
    # sets it the moment we are cancelled or the caller's stop_event fires, and then
    # cancels the loop, which may be waiting for a slow plugin import: that wait is
    # abandoned (the import goes on in its thread, bounded by import_timeout).
    stop_watching = anyio.Event()

    async with anyio.create_task_group() as group:

        async def relay_stop() -> None:
            try:
                if stop_event is None:
                    await anyio.sleep_forever()
                else:
                    await stop_event.wait()
            finally:
                stop_watching.set()
            group.cancel_scope.cancel()

        group.start_soon(relay_stop)
        changes_stream = watchfiles.awatch(
            *directories,
            debounce=max(1, round(config.reload_debounce * 1000)),
            step=max(1, min(50, round(config.reload_debounce * 1000))),
            stop_event=stop_watching,
            watch_filter=watchfiles.DefaultFilter(),
            # A directory we may not read is a failed record already (load_all says
            # so); it must not stop the watching of the others.
            ignore_permission_denied=True,
        )
        # aclosing: leaving the loop early (stop, cancellation) closes the watcher now,
        # not whenever the generator is collected.
        async with contextlib.aclosing(changes_stream):
            async for changes in changes_stream:
                for path in affected_plugins((c for _, c in changes), directories):
                    await _apply(apply_change, path, on_event)
        group.cancel_scope.cancel()
    # watchfiles ends quietly once its stop event is set; if that was our cancellation,
    # let it propagate as cancellation.
    await anyio.lowlevel.checkpoint_if_cancelled()


async def _apply(
    apply_change: Callable[[Path], PluginEvent | None],
    path: Path,
    on_event: Callable[[PluginEvent], object] | None,
) -> None:
    import anyio.to_thread

    try:
        # Plugin code runs in a worker thread so a slow import never stalls the loop, and
        # a stop or cancellation does not wait for it (abandon_on_cancel).
        event = await anyio.to_thread.run_sync(apply_change, path, abandon_on_cancel=True)
    except Exception as exc:  # the manager records plugin errors; this would be ours
        _log.exception("hot reload: applying a change to %s failed", path)
        error = exc if isinstance(exc, PluginError) else PluginError(str(exc))
        event = PluginEvent(action="failed", path=path, error=error)
    if event is not None:
        _report(on_event, event)
