"""hypersdk-openstack: OpenStack servers through hypersdk, exported as real disk images.

A hypersdk provider plugin. Installed, it is found through the ``hypersdk.providers``
entry point ``openstack``; it can also be used directly::

    import anyio
    from hypersdk import ExportOptions, ProviderConfig
    from hypersdk_openstack import OpenStackProvider

    async def main() -> None:
        config = ProviderConfig(
            type="openstack", endpoint="https://keystone.example.com:5000/v3",
            username="demo", password="...", region="RegionOne",
            metadata={"project_name": "demo"},
        )
        async with OpenStackProvider() as provider:
            await provider.connect(config)
            vm = (await provider.list_vms())[0]
            result = await provider.export_vm(vm.id, ExportOptions(output_path="out",
                                                                   format="qcow2"))
            print(result.files[0], result.metadata["verified"])

    anyio.run(main)

Keystone v3 (password or application credential) gives the token and the catalog;
Nova lists servers and snapshots one with ``createImage``; Glance serves the image's
bytes, which go through hypersdk's export toolkit (streamed, resumed, verified).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hypersdk import PluginMetadata, Provider, ProviderConfig
from hypersdk_openstack._client import COMPUTE_MICROVERSION
from hypersdk_openstack._formats import GLANCE_FORMATS
from hypersdk_openstack._mapping import PROVIDER_TYPE, server_filters, server_to_vm
from hypersdk_openstack._provider import CAPABILITIES, OpenStackProvider
from hypersdk_openstack._version import __version__

if TYPE_CHECKING:
    import logging

__all__ = [
    "__version__",
    "PLUGIN_INFO",
    "new_provider",
    "OpenStackProvider",
    "CAPABILITIES",
    "COMPUTE_MICROVERSION",
    "GLANCE_FORMATS",
    "PROVIDER_TYPE",
    "server_filters",
    "server_to_vm",
]

PLUGIN_INFO = PluginMetadata(
    name="openstack",
    version=__version__,
    provider_type=PROVIDER_TYPE,
    description="OpenStack (Keystone, Nova, Glance): list servers, export verified disk images",
    author="The hypersdk developers",
    license="LGPL-3.0-or-later",
    capabilities=CAPABILITIES,
    min_sdk_version="0.1.0.dev0",
    dependencies=("httpx>=0.28,<1", "anyio>=4.5", "attrs>=24.1"),
    python_requires=">=3.11",
)
"""What the plugin declares to hypersdk's plugin manager."""


def new_provider(config: ProviderConfig, logger: logging.Logger) -> Provider:
    """Build a provider (no I/O). ``connect(config)`` validates the config and authenticates."""
    del config  # everything is read, and checked, by connect()
    return OpenStackProvider(logger)
