"""A plugin directory the user may not list or search: issue #10 item 9.

Root may enter any folder, so these tests run the part that meets the locked folders in
a child process that dropped to an unprivileged uid (see ``run_unprivileged``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from hypersdk import PluginLoadError
from hypersdk.plugins import PluginStatus
from tests.plugins.conftest import (
    UNPRIVILEGED_UID,
    manager_for,
    needs_root,
    plugin_source,
    run_unprivileged,
    write,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions"),
    needs_root,
]


def readable_plugin(folder: Path, name: str, mode: int = 0o755) -> Path:
    """A root-owned plugin every uid may read, in ``folder`` (then given ``mode``)."""
    write(folder / f"{name}.py", plugin_source(name), mode=0o644)
    folder.chmod(mode)
    return folder


@pytest.fixture
def layout(world_tmp: Path) -> dict[str, Path]:
    """Good plugin directories around three kinds of locked ones."""
    locked_parent = world_tmp / "locked"
    behind = readable_plugin(locked_parent / "plugins", "hidden_c")
    locked_parent.chmod(0o700)
    return {
        "good": readable_plugin(world_tmp / "good", "good"),
        # no r, no x for others: cannot be listed
        "unlistable": readable_plugin(world_tmp / "unlistable", "hidden_a", mode=0o700),
        # r but no x for others: listed, but no entry can be looked at
        "unsearchable": readable_plugin(world_tmp / "unsearchable", "hidden_b", mode=0o744),
        # fine itself, but inside a folder others may not enter
        "behind": behind,
        "locked": locked_parent,
        "later": readable_plugin(world_tmp / "later", "later"),
        "warm_up": readable_plugin(world_tmp / "warm_up", "warm_up"),
    }


SCAN = """
from hypersdk.plugins import PluginConfig, PluginManager
manager = PluginManager(PluginConfig(
    system_directories=(), entry_points=False, directories={directories!r}))
for step in ("discover", "load_all"):
    result[step] = [
        [info.source, str(info.status), str(info.error or "")]
        for info in getattr(manager, step)()
    ]
"""


def test_locked_directories_are_failures_and_the_others_load(layout: dict[str, Path]) -> None:
    order = ["good", "unlistable", "unsearchable", "behind", "later"]
    directories = [str(layout[key]) for key in order]

    result = run_unprivileged(SCAN.format(directories=directories), warm_up=layout["warm_up"])

    for step in ("discover", "load_all"):
        by_source = {source: (status, error) for source, status, error in result[step]}
        expected_loaded = "loaded" if step == "load_all" else "unloaded"
        assert by_source[str(layout["good"] / "good.py")][0] == expected_loaded
        assert by_source[str(layout["later"] / "later.py")][0] == expected_loaded
        unlistable = by_source[f"plugin directory {layout['unlistable']}"]
        assert unlistable[0] == "failed"
        assert f"cannot list plugin directory {layout['unlistable']}" in unlistable[1]
        assert f"chmod o+r {layout['unlistable']}" in unlistable[1]
        unsearchable = by_source[f"plugin directory {layout['unsearchable']}"]
        assert unsearchable[0] == "failed"
        assert f"cannot search plugin directory {layout['unsearchable']}" in unsearchable[1]
        assert f"chmod o+x {layout['unsearchable']}" in unsearchable[1]
        behind = by_source[f"plugin directory {layout['behind']}"]
        assert behind[0] == "failed"
        assert (
            f"the folder {layout['locked']} is not searchable by uid {UNPRIVILEGED_UID}"
            in (behind[1])
        )
        assert f"chmod o+x {layout['locked']}" in behind[1]
        assert len(by_source) == 5  # nothing from inside the locked folders


def test_a_locked_plugin_path_given_to_load_plugin_is_a_plugin_error(
    layout: dict[str, Path],
) -> None:
    target = layout["behind"] / "hidden_c.py"
    code = f"""
from hypersdk import PluginError
from hypersdk.plugins import PluginConfig, PluginManager
manager = PluginManager(PluginConfig(system_directories=(), entry_points=False))
for call in ("load_plugin", "check_plugin"):
    try:
        outcome = getattr(manager, call)({str(target)!r})
    except PluginError as exc:
        result[call] = "PluginError: " + str(exc)
    else:
        result[call] = repr(outcome)
"""
    result = run_unprivileged(code, warm_up=layout["warm_up"])

    assert result["load_plugin"].startswith("PluginError: cannot inspect")
    assert "'fail'" in result["check_plugin"]


def test_a_cli_config_file_in_a_locked_folder_exits_3(layout: dict[str, Path]) -> None:
    config = write(layout["locked"] / "config.toml", "[plugins]\n", mode=0o644)
    good_config = write(
        layout["good"] / "config.toml",
        f"[plugins]\ndirectories = [{str(layout['unlistable'])!r}, {str(layout['good'])!r}]\n",
        mode=0o644,
    )
    home = layout["good"].parent
    code = f"""
import contextlib, io
from hypersdk.cli import main
for name, argv in {{
    "locked": ["plugins", "list", "--config", {str(config)!r}],
    "good": ["plugins", "list", "--json", "--config", {str(good_config)!r}],
}}.items():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    result[name] = [code, out.getvalue(), err.getvalue()]
"""
    result = run_unprivileged(
        code, warm_up=layout["warm_up"], env={"HOME": str(home), "XDG_CONFIG_HOME": str(home)}
    )

    code_locked, _, err_locked = result["locked"]
    assert code_locked == 3, err_locked
    assert f"cannot read configuration file {config}" in err_locked
    code_good, out_good, err_good = result["good"]
    assert code_good == 0, err_good
    assert '"status": "loaded"' in out_good
    assert f"cannot list plugin directory {layout['unlistable']}" in out_good


def test_an_unsearchable_directory_does_not_stop_a_privileged_manager(
    layout: dict[str, Path],
) -> None:
    # As root the locked folders are fine: the check is about safety, not about modes
    # that only lock out others.
    infos = manager_for(layout["unsearchable"], layout["good"]).load_all()

    assert {info.status for info in infos} == {PluginStatus.LOADED}
    assert not any(isinstance(info.error, PluginLoadError) for info in infos)


def test_watch_goes_on_beside_an_unreadable_directory(layout: dict[str, Path]) -> None:
    directories = [str(layout["unlistable"]), str(layout["good"])]
    code = f"""
import anyio
from hypersdk.plugins import PluginConfig, PluginManager
manager = PluginManager(PluginConfig(system_directories=(), entry_points=False,
    directories={directories!r}, hot_reload=True, reload_debounce=0.05))
events = []
async def main():
    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: manager.watch(on_event=events.append, stop_event=stop))
        await anyio.sleep(0.5)
        stop.set()
anyio.run(main)
result["stopped"] = True
"""
    result = run_unprivileged(code, warm_up=layout["warm_up"])

    assert result == {"stopped": True}
