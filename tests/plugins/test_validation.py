"""The module contract: each way to break it fails that plugin with a fix-it message."""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING

import pytest
from packaging.version import Version

import hypersdk
from hypersdk import (
    IncompatiblePluginError,
    InvalidPluginMetadataError,
    PluginError,
    PluginLoadError,
)
from hypersdk.plugins import PluginStatus
from tests.plugins.conftest import manager_for, plugin_source, private_modules, write

if TYPE_CHECKING:
    from pathlib import Path

BROKEN = {
    "no PLUGIN_INFO": (
        plugin_source("x", footer="del PLUGIN_INFO"),
        InvalidPluginMetadataError,
        ["no PLUGIN_INFO", "PluginMetadata(name="],
    ),
    "PLUGIN_INFO is a dict": (
        plugin_source("x", footer="PLUGIN_INFO = {'name': 'x'}"),
        InvalidPluginMetadataError,
        ["must be a hypersdk.PluginMetadata, got dict", "PluginMetadata(**...)"],
    ),
    "version not PEP 440": (
        plugin_source("x", version="one point oh"),
        InvalidPluginMetadataError,
        ["PLUGIN_INFO is invalid", "PluginMetadata.version", "PEP 440", "one point oh"],
    ),
    "empty name": (
        plugin_source("", provider_type="x"),
        InvalidPluginMetadataError,
        ["PluginMetadata.name", "non-empty"],
    ),
    "empty provider_type": (
        plugin_source("x", footer="").replace("provider_type='x'", "provider_type=' '"),
        InvalidPluginMetadataError,
        ["PluginMetadata.provider_type"],
    ),
    "metadata tampered after construction": (
        plugin_source("x", footer="object.__setattr__(PLUGIN_INFO, 'version', 'nope')"),
        InvalidPluginMetadataError,
        ["PLUGIN_INFO is invalid", "'nope'"],
    ),
    "no new_provider": (
        plugin_source("x", footer="del new_provider"),
        InvalidPluginMetadataError,
        ["no new_provider", "def new_provider(config"],
    ),
    "new_provider not callable": (
        plugin_source("x", footer="new_provider = 42"),
        InvalidPluginMetadataError,
        ["new_provider must be callable, got int"],
    ),
    "new_provider takes one argument": (
        plugin_source("x", footer="def new_provider(config):\n    return None"),
        InvalidPluginMetadataError,
        ["new_provider(config) cannot be called as new_provider(config, logger)"],
    ),
    "new_provider needs a keyword-only argument": (
        plugin_source("x", footer="def new_provider(config, logger, *, region):\n    pass"),
        InvalidPluginMetadataError,
        ["cannot be called as new_provider(config, logger)", "region"],
    ),
    "new_provider is async": (
        plugin_source("x", footer="async def new_provider(config, logger):\n    pass"),
        InvalidPluginMetadataError,
        ["plain def", "not async def"],
    ),
    "factory returns a non-provider": (
        plugin_source("x", footer="def new_provider(config, logger):\n    return object()"),
        PluginLoadError,
        ["returned object, not a hypersdk.Provider or hypersdk.BlockingProvider"],
    ),
    "factory raises": (
        plugin_source("x", footer="def new_provider(config, logger):\n    raise KeyError('k')"),
        PluginLoadError,
        ["new_provider(config, logger) raised KeyError", "without I/O"],
    ),
    "provider type disagrees": (
        plugin_source("x", factory_args=", type='other'"),
        InvalidPluginMetadataError,
        ["provider's type is 'other'", "PLUGIN_INFO.provider_type is 'x'"],
    ),
    "capabilities disagree": (
        plugin_source(
            "x",
            info_extra=", capabilities=ExportCapabilities(supported_formats=['ova'])",
            factory_args=", capabilities=ExportCapabilities(supported_formats=['ova', 'raw'])",
        ),
        InvalidPluginMetadataError,
        ["supported_formats: PLUGIN_INFO says ('ova',), the provider says ('ova', 'raw')"],
    ),
    "import error": (
        plugin_source("x", header="import no_such_module_for_hypersdk_tests"),
        PluginLoadError,
        ["failed to import", "ModuleNotFoundError", "no_such_module_for_hypersdk_tests"],
    ),
    "syntax error": (
        "def broken(:\n",
        PluginLoadError,
        ["failed to import", "SyntaxError"],
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_plugin_fails_alone_with_a_message_that_says_what_to_fix(
    plugin_dir: Path, case: str
) -> None:
    source, error_type, phrases = BROKEN[case]
    write(plugin_dir / "broken.py", source)
    write(plugin_dir / "good.py", plugin_source("good"))
    manager = manager_for(plugin_dir)

    infos = {info.name: info for info in manager.load_all()}

    assert infos["good"].status is PluginStatus.LOADED
    broken = infos["broken"]
    assert broken.status is PluginStatus.FAILED
    assert type(broken.error) is error_type
    message = str(broken.error)
    assert "'broken'" in message
    assert str(plugin_dir / "broken.py") in message
    for phrase in phrases:
        assert phrase in message
    assert manager.registry.list_providers() == ["good"]
    assert len(private_modules()) == 1  # only good's module stays


def test_a_newer_min_sdk_version_is_incompatible_and_names_both_versions(
    plugin_dir: Path,
) -> None:
    write(plugin_dir / "future.py", plugin_source("future", info_extra=", min_sdk_version='99.0'"))

    with pytest.raises(IncompatiblePluginError) as caught:
        manager_for(plugin_dir).load_plugin(plugin_dir / "future.py")

    assert "hypersdk >= 99.0" in str(caught.value)
    assert f"this is hypersdk {hypersdk.__version__}" in str(caught.value)


def test_python_requires_is_checked_against_the_running_python(plugin_dir: Path) -> None:
    write(plugin_dir / "old.py", plugin_source("old", info_extra=", python_requires='<3.0'"))

    (info,) = manager_for(plugin_dir).load_all()

    assert isinstance(info.error, IncompatiblePluginError)
    assert "Python <3.0" in str(info.error)
    assert f"this is Python {platform.python_version()}" in str(info.error)


def test_compatible_versions_load_and_a_dev_build_counts_as_its_release(
    plugin_dir: Path,
) -> None:
    release = Version(hypersdk.__version__).base_version
    write(
        plugin_dir / "current.py",
        plugin_source(
            "current", info_extra=f", min_sdk_version={release!r}, python_requires='>=3.11'"
        ),
    )

    (info,) = manager_for(plugin_dir).load_all()

    assert info.status is PluginStatus.LOADED, info.error


def test_every_plugin_error_is_a_plugin_error(plugin_dir: Path) -> None:
    for name, (source, _, _) in BROKEN.items():
        write(plugin_dir / f"{name.replace(' ', '_').replace('-', '_')}.py", source)

    infos = manager_for(plugin_dir).load_all()

    assert len(infos) == len(BROKEN)
    assert all(isinstance(info.error, PluginError) for info in infos)
