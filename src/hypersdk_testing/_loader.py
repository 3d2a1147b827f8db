"""IDENTITY-LOADS: whether the plugin module passes the plugin system's own validation."""

from __future__ import annotations

import logging
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
    importable by name) gets the validation steps the manager runs after importing: the
    module contract, the SDK and Python version requirements, and a provider built from
    a blank config that agrees with ``PLUGIN_INFO``.
    """
    from hypersdk.plugins import PluginConfig, PluginManager
    from hypersdk.plugins._validate import check_compatible, check_contract, check_provider

    if _importable_as_itself(module):
        config = PluginConfig(entry_points=False, system_directories=(), hot_reload=False)
        results = PluginManager(config).check_plugin(module.__name__)
        return [f"{check.name}: {check.detail}" for check in results if check.outcome == "fail"]
    label = f"module {module.__name__}"
    try:
        metadata, factory = check_contract(module, label)
        check_compatible(metadata, label)
        check_provider(factory, metadata, logging.getLogger("hypersdk.conformance"), label)
    except PluginError as exc:
        return [f"{type(exc).__name__}: {exc}"]
    return []
