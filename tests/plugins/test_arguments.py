"""Wrong argument types and hostile values get a HyperSDKError naming the argument.

Nothing else may escape a public name of ``hypersdk.plugins``: no TypeError,
OverflowError, UnicodeError or RecursionError (issue #10, the plugin part of item 15).
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypersdk import ConfigurationError, HyperSDKError
from hypersdk.plugins import (
    PluginCheck,
    PluginConfig,
    PluginEvent,
    PluginInfo,
    PluginManager,
    PluginStats,
    PluginStatus,
    plugin_digest,
)
from tests.plugins.conftest import manager_for

if TYPE_CHECKING:
    from collections.abc import Callable

# Values no argument of this package accepts as a name or path.
BAD_KEYS: list[object] = [
    None,
    5,
    2**100,
    math.nan,
    b"bytes.py",
    "",
    "   ",
    "nul\x00.py",
    "/tmp/nul\x00/x.py",
    "\ud800.py",
    ["a"],
    {"a": 1},
    object(),
]

HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=8),
    st.text(max_size=8),
    st.sampled_from(["\x00", "\ud800", "a\x00b", "~", " "]),
    st.lists(st.one_of(st.integers(), st.text(max_size=4), st.none()), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
FIELDS = [
    "enabled",
    "directories",
    "enabled_list",
    "disabled_list",
    "hot_reload",
    "entry_points",
    "sha256_allowlist",
    "system_directories",
    "reload_debounce",
    "import_timeout",
]


def named(error: BaseException, *names: str) -> bool:
    return any(name in str(error) for name in names)


@pytest.mark.parametrize("bad", BAD_KEYS, ids=repr)
@pytest.mark.parametrize(
    ("method", "argument"),
    [
        ("load_plugin", "target"),
        ("check_plugin", "target"),
        ("get_plugin", "key"),
        ("unload_plugin", "key"),
        ("reload_plugin", "key"),
    ],
)
def test_manager_methods_refuse_bad_names_and_paths(
    plugin_dir: Path, method: str, argument: str, bad: object
) -> None:
    manager = manager_for(plugin_dir)

    with pytest.raises(ConfigurationError) as caught:
        getattr(manager, method)(bad)

    assert str(caught.value).startswith(f"{argument}: must be")


@pytest.mark.parametrize("bad", BAD_KEYS, ids=repr)
def test_plugin_digest_refuses_bad_paths(bad: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^plugin_digest: path: must be"):
        plugin_digest(bad)  # type: ignore[arg-type]


def test_plugin_digest_of_nothing_is_a_plugin_error(tmp_path: Path) -> None:
    with pytest.raises(HyperSDKError, match="does not exist"):
        plugin_digest(tmp_path / "missing.py")


@pytest.mark.parametrize("bad", [5, b"x.toml", "", "a\x00.toml", "\ud800.toml", ["x"]], ids=repr)
def test_manager_and_from_toml_refuse_bad_config_paths(bad: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^config: must be"):
        PluginManager(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"PluginConfig\.from_toml: path"):
        PluginConfig.from_toml(bad)  # type: ignore[arg-type]


def test_deep_toml_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")

    with pytest.raises(ConfigurationError, match="deep.toml"):
        PluginConfig.from_toml(path)


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(FIELDS), value=HOSTILE)
def test_plugin_config_fields_accept_or_refuse_with_the_field_name(field: str, value: Any) -> None:
    try:
        config = PluginConfig(**{field: value})
    except ConfigurationError as exc:
        assert named(exc, f"PluginConfig.{field}"), str(exc)
        return
    # Accepted values must be usable: scanning the directories may not raise either.
    config.scan_directories()
    assert config.allows("x", "x") in (True, False)


@settings(max_examples=40, deadline=None)
@given(
    data=st.dictionaries(
        st.one_of(st.sampled_from(FIELDS), st.text(max_size=4), st.integers(), st.none()),
        HOSTILE,
        max_size=3,
    )
)
def test_from_mapping_raises_only_configuration_errors(data: Any) -> None:
    with contextlib.suppress(ConfigurationError):  # anything else escaping fails the test
        PluginConfig.from_mapping(data, base=Path("/base"))


@pytest.mark.parametrize(
    "call",
    [
        lambda: PluginConfig.from_mapping(5),  # type: ignore[arg-type]
        lambda: PluginConfig.from_mapping({1: 2}),  # type: ignore[dict-item]
        lambda: PluginConfig.from_mapping({}, base="/x"),  # type: ignore[arg-type]
        lambda: PluginConfig().allows(5, "x"),  # type: ignore[arg-type]
        lambda: PluginConfig().allows("x", None),  # type: ignore[arg-type]
        lambda: PluginConfig(reload_debounce=2**100),
        lambda: PluginConfig(import_timeout=2**100),
        lambda: PluginConfig(directories=["\ud800"]),
        lambda: PluginManager(registry=5),  # type: ignore[arg-type]
        lambda: PluginInfo(name=5, source="s", kind="module", status=PluginStatus.LOADED),  # type: ignore[arg-type]
        lambda: PluginInfo(name="n", source="s", kind="x", status="loaded"),  # type: ignore[arg-type]
        lambda: PluginStats(total=-1),
        lambda: PluginEvent(action="exploded", path=Path("/x")),  # type: ignore[arg-type]
        lambda: PluginEvent(action="loaded", path="/x"),  # type: ignore[arg-type]
        lambda: PluginEvent(action="loaded", path=Path("/x"), info=5),  # type: ignore[arg-type]
        lambda: PluginEvent(action="failed", path=Path("/x"), error=ValueError()),  # type: ignore[arg-type]
        lambda: PluginCheck("n", "maybe"),
        lambda: PluginCheck(5, "pass"),  # type: ignore[arg-type]
        lambda: PluginCheck("n", "pass", None),  # type: ignore[arg-type]
    ],
)
def test_models_and_helpers_refuse_wrong_values(call: Callable[[], object]) -> None:
    with pytest.raises(ConfigurationError):
        call()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "arguments", [{"on_event": 5}, {"stop_event": "soon"}, {"stop_event": 1.0}], ids=repr
)
async def test_watch_refuses_wrong_callbacks(plugin_dir: Path, arguments: dict[str, Any]) -> None:
    manager = manager_for(plugin_dir, hot_reload=True)

    with pytest.raises(ConfigurationError, match=r"^watch: (on_event|stop_event) must be"):
        with anyio.fail_after(5):
            await manager.watch(**arguments)
