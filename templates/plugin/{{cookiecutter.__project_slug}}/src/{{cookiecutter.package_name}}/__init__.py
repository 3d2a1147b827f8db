"""{{ cookiecutter.__project_slug }}: {{ cookiecutter.plugin_name }} virtual machines through hypersdk.

Installed, the plugin is found through the ``hypersdk.providers`` entry point
``{{ cookiecutter.provider_type }}``; it can also be used directly::

    import anyio
    from hypersdk import ProviderConfig, Secret
    from {{ cookiecutter.package_name }} import {{ cookiecutter.__class_prefix }}Provider

    async def main() -> None:
        config = ProviderConfig(type="{{ cookiecutter.provider_type }}", password=Secret("..."))
        async with {{ cookiecutter.__class_prefix }}Provider() as provider:
            await provider.connect(config)
            for vm in await provider.list_vms():
                print(vm.id, vm.name, vm.power_state)

    anyio.run(main)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hypersdk import PluginMetadata

# Relative imports: the package also loads from a plugin directory, under another name.
from ._provider import (
    CAPABILITIES,
    DEFAULT_ENDPOINT,
    PROVIDER_TYPE,
    {{ cookiecutter.__class_prefix }}Provider,
)
from ._version import __version__

if TYPE_CHECKING:
    import logging

    from hypersdk import ProviderConfig

__all__ = [
    "__version__",
    "PLUGIN_INFO",
    "new_provider",
    "{{ cookiecutter.__class_prefix }}Provider",
    "CAPABILITIES",
    "DEFAULT_ENDPOINT",
    "PROVIDER_TYPE",
]

PLUGIN_INFO = PluginMetadata(
    name="{{ cookiecutter.provider_type }}",
    version=__version__,
    provider_type=PROVIDER_TYPE,
    description="{{ cookiecutter.plugin_name }} virtual machines: list, search, export disk images",
    author="{{ cookiecutter.author }}",
    license="{{ cookiecutter.license }}",
    capabilities=CAPABILITIES,
    min_sdk_version="{{ cookiecutter._template_version }}",
    python_requires=">=3.11",
)
"""What the plugin declares to hypersdk's plugin manager."""


def new_provider(
    config: ProviderConfig,
    logger: logging.Logger,
) -> {{ cookiecutter.__class_prefix }}Provider:
    """Build a provider (no I/O); ``connect(config)`` checks the config and the token."""
    del config  # connect() reads, and checks, the config
    return {{ cookiecutter.__class_prefix }}Provider(logger)
