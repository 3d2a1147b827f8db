"""hypersdk-digitalocean: DigitalOcean droplets through hypersdk.

A hypersdk provider plugin. Installed, it is found through the ``hypersdk.providers``
entry point ``digitalocean``; it can also be used directly::

    import anyio
    from hypersdk import ProviderConfig, VMFilter
    from hypersdk_digitalocean import DigitalOceanProvider

    async def main() -> None:
        config = ProviderConfig(type="digitalocean", metadata={"token": "dop_v1_..."})
        async with DigitalOceanProvider() as provider:
            await provider.connect(config)
            for vm in await provider.list_vms(VMFilter(tags={"env": "prod"})):
                print(vm.id, vm.name, vm.location)

    anyio.run(main)

Exports are honest: DigitalOcean cannot download disk images, so the one export format
is ``snapshot`` (a provider-side snapshot plus a local JSON manifest).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hypersdk import PluginMetadata, Provider, ProviderConfig
from hypersdk_digitalocean._mapping import (
    PROVIDER_TYPE,
    droplet_to_vm,
    matches_filter,
    parse_tags,
    tag_for,
)
from hypersdk_digitalocean._provider import CAPABILITIES, EXPORT_FORMAT, DigitalOceanProvider
from hypersdk_digitalocean._version import __version__

if TYPE_CHECKING:
    import logging

__all__ = [
    "__version__",
    "PLUGIN_INFO",
    "new_provider",
    "DigitalOceanProvider",
    "CAPABILITIES",
    "EXPORT_FORMAT",
    "PROVIDER_TYPE",
    "droplet_to_vm",
    "parse_tags",
    "tag_for",
    "matches_filter",
]

PLUGIN_INFO = PluginMetadata(
    name="digitalocean",
    version=__version__,
    provider_type=PROVIDER_TYPE,
    description="DigitalOcean droplets: list, filter, search, and export as snapshot manifests",
    author="The hypersdk developers",
    license="LGPL-3.0-or-later",
    capabilities=CAPABILITIES,
    min_sdk_version="0.1.0.dev0",
    dependencies=("httpx>=0.28,<1", "anyio>=4.5", "msgspec>=0.18", "sniffio>=1.3"),
    python_requires=">=3.11",
)
"""What the plugin declares to hypersdk's plugin manager."""


def new_provider(config: ProviderConfig, logger: logging.Logger) -> Provider:
    """Build a provider (no I/O). ``connect(config)`` validates the config and the token."""
    del config  # everything is read, and checked, by connect()
    return DigitalOceanProvider(logger)
