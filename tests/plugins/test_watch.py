"""Hot reload with real file events: create loads, modify reloads, delete unloads."""

from __future__ import annotations

import os
import shutil
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import pytest

from hypersdk import PluginError
from hypersdk.plugins import PluginEvent, PluginManager, PluginStatus
from hypersdk.plugins._watch import affected_plugins
from tests.plugins.conftest import manager_for, plugin_source, write

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from anyio.streams.memory import MemoryObjectReceiveStream

pytestmark = pytest.mark.anyio

DEBOUNCE = 0.05  # seconds: small so the tests are quick, big enough to merge a write


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` in one step, as editors do (the temp file is hidden)."""
    temporary = write(path.with_name(f".{path.name}.tmp"), text)
    os.replace(temporary, path)


@asynccontextmanager
async def watching(
    manager: PluginManager, on_event: Callable[[PluginEvent], object] | None = None
) -> AsyncIterator[MemoryObjectReceiveStream[PluginEvent]]:
    """Run ``manager.watch`` in the background; yield the stream of its events."""
    send, receive = anyio.create_memory_object_stream[PluginEvent](100)

    def record(event: PluginEvent) -> None:
        send.send_nowait(event)
        if on_event is not None:
            on_event(event)

    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: manager.watch(on_event=record, stop_event=stop))
        await anyio.sleep(0.3)  # let the watcher register its inotify watches
        try:
            yield receive
        finally:
            stop.set()
    send.close()
    receive.close()


async def next_event(events: MemoryObjectReceiveStream[PluginEvent]) -> PluginEvent:
    with anyio.fail_after(10):
        return await events.receive()


async def test_create_modify_break_and_delete_are_applied(plugin_dir: Path) -> None:
    manager = manager_for(plugin_dir, hot_reload=True, reload_debounce=DEBOUNCE)
    path = plugin_dir / "live.py"

    async with watching(manager) as events:
        atomic_write(path, plugin_source("live", version="1.0"))
        created = await next_event(events)
        assert (created.action, created.path) == ("loaded", path)
        assert manager.registry.is_registered("live")

        atomic_write(path, plugin_source("live", version="2.0"))
        modified = await next_event(events)
        assert modified.action == "reloaded"
        assert modified.info is not None
        assert modified.info.metadata is not None
        assert modified.info.metadata.version == "2.0"

        atomic_write(path, plugin_source("live", version="3.0", header="raise SystemExit"))
        broken = await next_event(events)
        assert broken.action == "failed"
        assert isinstance(broken.error, PluginError)
        info = manager.get_plugin("live")
        assert info is not None
        assert info.status is PluginStatus.LOADED
        assert info.metadata is not None
        assert info.metadata.version == "2.0"  # the working version stays

        path.unlink()
        deleted = await next_event(events)
        assert deleted.action == "unloaded"
        assert not manager.registry.is_registered("live")


async def test_an_edit_inside_a_package_reloads_the_package(plugin_dir: Path) -> None:
    package = plugin_dir / "pkg"
    write(package / "__init__.py", "from .impl import PLUGIN_INFO, new_provider\n")
    write(package / "impl.py", plugin_source("pkg", version="1.0"))
    manager = manager_for(plugin_dir, hot_reload=True, reload_debounce=DEBOUNCE)
    manager.load_all()

    async with watching(manager) as events:
        atomic_write(package / "impl.py", plugin_source("pkg", version="1.1"))
        event = await next_event(events)
        assert (event.action, event.path) == ("reloaded", package)

        shutil.rmtree(package)
        event = await next_event(events)
        assert (event.action, event.path) == ("unloaded", package)


async def test_a_broken_new_plugin_and_a_raising_callback_do_not_stop_the_watcher(
    plugin_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manager = manager_for(plugin_dir, hot_reload=True, reload_debounce=DEBOUNCE)

    def explode(event: PluginEvent) -> None:
        raise RuntimeError("callback bug")

    async with watching(manager, on_event=explode) as events:
        atomic_write(plugin_dir / "bad.py", "raise KeyboardInterrupt\n")
        failed = await next_event(events)
        assert failed.action == "failed"
        assert "KeyboardInterrupt" in str(failed.error)

        atomic_write(plugin_dir / "good.py", plugin_source("good"))
        loaded = await next_event(events)
        assert (loaded.action, loaded.path.name) == ("loaded", "good.py")

    assert "the on_event callback raised" in caplog.text


async def test_private_and_hidden_files_are_ignored(plugin_dir: Path) -> None:
    manager = manager_for(plugin_dir, hot_reload=True, reload_debounce=DEBOUNCE)

    async with watching(manager) as events:
        write(plugin_dir / "_helper.py", plugin_source("helper"))
        write(plugin_dir / "notes.txt", "hello")
        atomic_write(plugin_dir / "seen.py", plugin_source("seen"))
        event = await next_event(events)

    assert event.path.name == "seen.py"
    assert [info.name for info in manager.list_plugins()] == ["seen"]


async def test_watch_returns_at_once_when_hot_reload_is_off(plugin_dir: Path) -> None:
    with anyio.fail_after(1):
        await manager_for(plugin_dir).watch()
        await manager_for(plugin_dir, hot_reload=True, enabled=False).watch()


async def test_watch_with_no_existing_directory_returns(tmp_path: Path) -> None:
    with anyio.fail_after(1):
        await manager_for(tmp_path / "missing", hot_reload=True).watch()


async def test_watch_without_watchfiles_says_how_to_install_it(
    plugin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "watchfiles", None)

    with pytest.raises(PluginError, match=r"pip install 'hypersdk\[reload\]'"):
        await manager_for(plugin_dir, hot_reload=True).watch()


def test_changed_paths_map_to_the_plugins_they_touch(tmp_path: Path) -> None:
    root = tmp_path / "plugins"
    (root / "pkg" / "sub").mkdir(parents=True)
    write(root / "notes.txt", "not a plugin")

    touched = affected_plugins(
        [
            str(root / "a.py"),
            str(root / "pkg" / "sub" / "deep.py"),
            str(root / "pkg" / "__init__.py"),
            str(root / "_private.py"),
            str(root / ".a.py.swp"),
            str(root),
            str(tmp_path / "elsewhere.py"),
            str(root / "gone_package"),
            str(root / "notes.txt"),
        ],
        [root],
    )

    assert touched == [root / "a.py", root / "gone_package", root / "pkg"]


async def test_cancelling_the_watcher_stops_it_promptly(plugin_dir: Path) -> None:
    manager = manager_for(plugin_dir, hot_reload=True, reload_debounce=DEBOUNCE)

    with anyio.fail_after(5):
        with anyio.move_on_after(0.3) as scope:
            await manager.watch()

    assert scope.cancelled_caught
