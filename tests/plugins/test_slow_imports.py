"""A slow or hung plugin import blocks nothing: issue #10 item 7.

The plugins here hold their import at a gate (``tests.plugins.gates``) until the test
opens it, so every wait is bounded and nothing depends on timing guesses.
"""

from __future__ import annotations

import math
import threading
import time
from functools import partial
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import pytest

from hypersdk import ConfigurationError
from hypersdk.plugins import PluginConfig, PluginStatus
from tests.plugins.conftest import manager_for, plugin_source, private_modules, write
from tests.plugins.gates import gate, release_all

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def held_plugin(name: str, limit: float = 20.0) -> str:
    return plugin_source(
        name, header=f"from tests.plugins.gates import hold\nhold({name!r}, {limit})"
    )


@pytest.fixture(autouse=True)
def open_gates_afterwards() -> Iterator[None]:
    yield
    release_all()


def wait_until(condition: object, limit: float = 5.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.01)
    return False


def test_an_import_past_import_timeout_fails_and_the_rest_load(plugin_dir: Path) -> None:
    write(plugin_dir / "a_good.py", plugin_source("a_good"))
    write(plugin_dir / "hung.py", held_plugin("hung"))
    write(plugin_dir / "z_good.py", plugin_source("z_good"))
    manager = manager_for(plugin_dir, import_timeout=0.3)

    infos = {info.name: info for info in manager.load_all()}

    assert infos["a_good"].status is infos["z_good"].status is PluginStatus.LOADED
    assert infos["hung"].status is PluginStatus.FAILED
    message = str(infos["hung"].error)
    assert "did not finish importing within 0.3 s (PluginConfig.import_timeout)" in message
    # The hung import finishes late: its result is discarded, not registered.
    hung = gate("hung")
    assert hung.entered.is_set()
    assert not hung.finished.is_set()
    hung.release.set()
    assert hung.finished.wait(5)
    assert wait_until(lambda: not any("hung" in name for name in private_modules()))
    assert wait_until(
        lambda: not any(t.name.startswith("hypersdk-plugin 'hung'") for t in threading.enumerate())
    )
    info = manager.get_plugin("hung")
    assert info is not None
    assert info.status is PluginStatus.FAILED
    assert not manager.registry.is_registered("hung")


def test_check_plugin_reports_a_hung_import(plugin_dir: Path) -> None:
    path = write(plugin_dir / "hung.py", held_plugin("hung"))
    manager = manager_for(plugin_dir, import_timeout=0.2)

    checks = {check.name: check for check in manager.check_plugin(path)}

    failed = [check for check in checks.values() if check.outcome == "fail"]
    assert [check.name for check in failed] == ["imports without raising"]
    assert "PluginConfig.import_timeout" in failed[0].detail


def test_reading_the_table_never_waits_for_an_import(plugin_dir: Path) -> None:
    write(plugin_dir / "a_good.py", plugin_source("a_good"))
    write(plugin_dir / "slow.py", held_plugin("slow"))
    manager = manager_for(plugin_dir, import_timeout=30)
    manager.load_plugin(plugin_dir / "a_good.py")
    loader = threading.Thread(target=manager.load_all, daemon=True)
    loader.start()
    slow = gate("slow")
    assert slow.entered.wait(10)

    answers: list[object] = []
    reader = threading.Thread(
        target=lambda: answers.extend(
            [manager.list_plugins(), manager.get_plugin("a_good"), manager.stats()]
        ),
        daemon=True,
    )
    reader.start()
    reader.join(5)

    assert not reader.is_alive()
    assert not slow.finished.is_set()  # the answers came while the import was held
    infos = answers[0]
    assert isinstance(infos, list)
    assert [info.name for info in infos] == ["a_good"]
    slow.release.set()
    loader.join(10)
    assert not loader.is_alive()
    assert {info.name: info.status for info in manager.list_plugins()} == {
        "a_good": PluginStatus.LOADED,
        "slow": PluginStatus.LOADED,
    }


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["stop_event", "cancel"])
async def test_watch_stops_within_a_second_during_an_import_that_never_returns(
    plugin_dir: Path, how: str
) -> None:
    manager = manager_for(plugin_dir, hot_reload=True, reload_debounce=0.05, import_timeout=30)
    stop = anyio.Event()
    held = gate("forever")
    stopped_at = math.inf
    async with anyio.create_task_group() as group:
        group.start_soon(partial(manager.watch, stop_event=stop))
        await anyio.sleep(0.3)  # let the watcher register its inotify watches
        write(plugin_dir / "forever.py", held_plugin("forever", limit=10))
        assert await anyio.to_thread.run_sync(held.entered.wait, 10)

        infos = manager.list_plugins()  # on the event loop, during the import

        assert infos == []
        assert not held.finished.is_set()
        stopped_at = time.monotonic()
        if how == "stop_event":
            stop.set()
        else:
            group.cancel_scope.cancel()
    took = time.monotonic() - stopped_at

    assert took < 1.0, f"watch() took {took:.2f} s to stop"
    assert not held.finished.is_set()  # it stopped without waiting for the import


@pytest.mark.parametrize("bad", [0, -1, 2**100, math.inf, math.nan, True, "5", None, 86401])
def test_import_timeout_is_validated(bad: object) -> None:
    with pytest.raises(ConfigurationError, match=r"PluginConfig\.import_timeout"):
        PluginConfig(import_timeout=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, 2**100, math.inf, True, "0.3", 3601])
def test_reload_debounce_is_bounded(bad: object) -> None:
    with pytest.raises(ConfigurationError, match=r"PluginConfig\.reload_debounce"):
        PluginConfig(reload_debounce=bad)  # type: ignore[arg-type]
