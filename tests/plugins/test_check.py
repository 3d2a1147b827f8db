"""PluginManager.check_plugin: every loading check reported as pass, fail or skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypersdk.plugins import CHECKS, PluginCheck
from tests.plugins.conftest import manager_for, plugin_source, private_modules, write


def outcomes(checks: list[PluginCheck]) -> dict[str, str]:
    return {check.name.split(":")[0]: check.outcome for check in checks}


def test_a_good_plugin_passes_every_applicable_check(tmp_path: Path) -> None:
    path = write(tmp_path / "plugins" / "good.py", plugin_source("good"))
    manager = manager_for()
    checks = manager.check_plugin(path)
    assert [check.name for check in checks] == list(CHECKS)
    assert outcomes(checks) == {
        "found": "pass",
        "safe file": "pass",
        "allowlisted": "skip",
        "imports without raising": "pass",
        "contract": "pass",
        "compatible": "pass",
        "provider": "pass",
    }
    assert manager.list_plugins() == []  # checked in isolation, nothing registered
    assert len(manager.registry) == 0
    assert private_modules() == set()


@pytest.mark.parametrize(
    ("source", "mode", "failed", "fix"),
    [
        (plugin_source("w"), 0o666, "safe file", "writable"),
        (
            plugin_source("boom", header="raise RuntimeError('boom')"),
            0o644,
            "imports without raising",
            "boom",
        ),
        (plugin_source("nofactory", footer="del new_provider"), 0o644, "contract", "new_provider"),
        (
            plugin_source("future", info_extra=", min_sdk_version='99.0'"),
            0o644,
            "compatible",
            "99.0",
        ),
        (
            plugin_source("liar", provider_type="liar", factory_args=", type='other'"),
            0o644,
            "provider",
            "other",
        ),
    ],
)
def test_the_first_failing_check_says_why_and_later_ones_are_skipped(
    tmp_path: Path, source: str, mode: int, failed: str, fix: str
) -> None:
    path = write(tmp_path / "plugins" / "plugin.py", source, mode=mode)
    checks = manager_for().check_plugin(path)
    by_name = {check.name.split(":")[0]: check for check in checks}
    assert by_name[failed].outcome == "fail"
    assert fix in by_name[failed].detail
    after = checks[list(by_name).index(failed) + 1 :]
    assert all(check.outcome == "skip" for check in after)
    assert private_modules() == set()


def test_missing_target(tmp_path: Path) -> None:
    checks = manager_for().check_plugin(tmp_path / "nope.py")
    assert checks[0].outcome == "fail"
    assert "no plugin at" in checks[0].detail


def test_module_plugins_skip_file_checks() -> None:
    checks = manager_for().check_plugin("json")  # importable, but no PLUGIN_INFO
    by_name = {check.name.split(":")[0]: check for check in checks}
    assert by_name["safe file"].outcome == "skip"
    assert by_name["contract"].outcome == "fail"
    assert "PLUGIN_INFO" in by_name["contract"].detail
