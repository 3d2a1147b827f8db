"""The plugin system: find provider plugins, load the good ones, keep them current.

A plugin is a module or package exposing ``PLUGIN_INFO: hypersdk.PluginMetadata`` and
``new_provider(config, logger) -> Provider | BlockingProvider``. It is found through the
``hypersdk.providers`` entry-point group and in plugin directories (see
:class:`PluginConfig`)::

    from hypersdk.plugins import PluginConfig, PluginManager

    manager = PluginManager(PluginConfig(directories=["/opt/acme/plugins"]))
    for info in manager.load_all():
        print(info.name, info.status, info.error or "")
    provider = manager.registry.create("acme", hypersdk.ProviderConfig(type="acme"))

Private modules do the work: ``_discovery`` (finding, no imports), ``_security``
(ownership, permissions, digests), ``_loader`` (private module names, no ``sys.path``
changes), ``_validate`` (the module contract), ``_pipeline`` (the loading checks, in order),
``_manager`` (records and lifecycle) and ``_watch`` (hot reload with ``watchfiles``).
"""

from __future__ import annotations

from hypersdk.plugins._config import SYSTEM_PLUGIN_DIRECTORIES, PluginConfig
from hypersdk.plugins._discovery import ENTRY_POINT_GROUP
from hypersdk.plugins._info import PluginEvent, PluginInfo, PluginKind, PluginStats, PluginStatus
from hypersdk.plugins._manager import PluginManager
from hypersdk.plugins._pipeline import CHECKS, PluginCheck, validate_module
from hypersdk.plugins._security import plugin_digest

__all__ = [
    "PluginManager",
    "PluginCheck",
    "CHECKS",
    "PluginConfig",
    "PluginInfo",
    "PluginStatus",
    "PluginStats",
    "PluginKind",
    "PluginEvent",
    "plugin_digest",
    "validate_module",
    "ENTRY_POINT_GROUP",
    "SYSTEM_PLUGIN_DIRECTORIES",
]
