"""IDENTITY-LOADS: whether the plugin module passes the plugin system's own validation."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from hypersdk import PluginError

if TYPE_CHECKING:
    import types

__all__ = ["plugin_problems"]


def _importable_as_itself(module: types.ModuleType) -> bool:
    # Only then does importing module.__name__ give back this very module object.
    return sys.modules.get(module.__name__) is module


def plugin_problems(module: types.ModuleType) -> list[str]:
    """What stops :class:`hypersdk.plugins.PluginManager` from loading ``module`` (or ``[]``).

    A module importable under its own name goes through ``PluginManager.check_plugin``
    (every loading check, in isolation, nothing registered) with a manager that scans
    nothing else: the exact path an installed plugin takes. A module built on the fly (not
    importable by name) gets :func:`hypersdk.plugins.validate_module`: the checks the
    manager runs after importing (the module contract, the SDK and Python version
    requirements, and a provider built from a blank config that agrees with
    ``PLUGIN_INFO``).
    """
    from hypersdk.plugins import PluginConfig, PluginManager, validate_module

    if _importable_as_itself(module):
        config = PluginConfig(entry_points=False, system_directories=(), hot_reload=False)
        results = PluginManager(config).check_plugin(module.__name__)
        return [f"{check.name}: {check.detail}" for check in results if check.outcome == "fail"]
    try:
        validate_module(module)
    except PluginError as exc:
        return [f"{type(exc).__name__}: {exc}"]
    return []
