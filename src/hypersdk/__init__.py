"""hypersdk: one typed interface to VM/cloud provider plugins.

Discover the installed provider plugins, then list, find and export virtual machines
through :class:`Provider`, whatever cloud is behind it::

    import anyio, hypersdk

    async def main() -> None:
        registry = hypersdk.Registry()
        registry.register("demo", DemoProvider)
        config = hypersdk.ProviderConfig(type="demo")
        async with registry.create("demo", config) as provider:
            await provider.connect(config)
            for vm in await provider.list_vms(hypersdk.VMFilter(min_cpus=2)):
                print(vm.name)

Every public name is importable from here; submodules are the architecture, not the API.
``import hypersdk`` is cheap: httpx and cattrs load on first use.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hypersdk._version import __version__
from hypersdk.errors import (
    AuthenticationError,
    ChecksumMismatchError,
    ConfigurationError,
    ExportError,
    HyperSDKError,
    IncompatiblePluginError,
    InvalidPluginMetadataError,
    NotConnectedError,
    PluginError,
    PluginLoadError,
    ProviderAPIError,
    ProviderUnavailableError,
    RateLimitError,
    UnsupportedFormatError,
    VMNotFoundError,
)
from hypersdk.models import (
    AWS,
    AZURE,
    GCP,
    HYPERV,
    KUBEVIRT,
    PROXMOX,
    VSPHERE,
    ExportCapabilities,
    ExportOptions,
    ExportResult,
    PluginMetadata,
    ProviderConfig,
    ProviderType,
    Secret,
    VMFilter,
    VMInfo,
    search_matches,
)
from hypersdk.progress import NullReporter, ProgressEvent, ProgressReporter, RecordingReporter
from hypersdk.providers import (
    BlockingProvider,
    Provider,
    as_async_provider,
    check_cancelled,
    time_remaining,
)
from hypersdk.registry import ProviderFactory, Registry
from hypersdk.serialization import from_dict, from_json, to_dict, to_json

if TYPE_CHECKING:
    from hypersdk import export as export
    from hypersdk import http as http
    from hypersdk.http import (
        error_for_exception,
        error_for_response,
        error_for_status,
        json_body,
        parse_retry_after,
        raise_for_response,
        raise_for_status,
    )
    from hypersdk.plugins import PluginConfig, PluginInfo, PluginManager, PluginStatus

__all__ = [
    "__version__",
    # models
    "ProviderType",
    "VSPHERE",
    "AWS",
    "AZURE",
    "GCP",
    "HYPERV",
    "PROXMOX",
    "KUBEVIRT",
    "Secret",
    "ProviderConfig",
    "VMInfo",
    "VMFilter",
    "search_matches",
    "ExportOptions",
    "ExportResult",
    "ExportCapabilities",
    "PluginMetadata",
    # plugins (load on first use)
    "PluginManager",
    "PluginConfig",
    "PluginInfo",
    "PluginStatus",
    # serialization
    "to_dict",
    "from_dict",
    "to_json",
    "from_json",
    # providers
    "Provider",
    "BlockingProvider",
    "as_async_provider",
    "check_cancelled",
    "time_remaining",
    "ProviderFactory",
    "Registry",
    # progress
    "ProgressReporter",
    "ProgressEvent",
    "NullReporter",
    "RecordingReporter",
    # errors
    "HyperSDKError",
    "ConfigurationError",
    "NotConnectedError",
    "AuthenticationError",
    "VMNotFoundError",
    "RateLimitError",
    "ProviderAPIError",
    "ProviderUnavailableError",
    "ExportError",
    "UnsupportedFormatError",
    "ChecksumMismatchError",
    "PluginError",
    "PluginLoadError",
    "InvalidPluginMetadataError",
    "IncompatiblePluginError",
    # HTTP helpers (aliases of hypersdk.http's, loaded on first use)
    "error_for_status",
    "raise_for_status",
    "error_for_response",
    "raise_for_response",
    "error_for_exception",
    "json_body",
    "parse_retry_after",
]

# The library never configures logging; applications do.
logging.getLogger("hypersdk").addHandler(logging.NullHandler())

# The one table of what loads on first use, so that ``import hypersdk`` stays cheap
# (httpx, watchfiles and the plugin machinery are not imported until needed):
# public name -> (module, attribute of it; "" for the module itself).
_LAZY: dict[str, tuple[str, str]] = {
    "export": ("hypersdk.export", ""),
    "http": ("hypersdk.http", ""),
    **{
        name: ("hypersdk.http", name)
        for name in (
            "error_for_status",
            "raise_for_status",
            "error_for_response",
            "raise_for_response",
            "error_for_exception",
            "json_body",
            "parse_retry_after",
        )
    },
    **{
        name: ("hypersdk.plugins", name)
        for name in ("PluginManager", "PluginConfig", "PluginInfo", "PluginStatus")
    },
}

if not TYPE_CHECKING:  # type checkers see the imports above; a typo stays an error for them

    def __getattr__(name: str) -> Any:
        try:
            module_name, attribute = _LAZY[name]
        except KeyError:
            raise AttributeError(f"module 'hypersdk' has no attribute {name!r}") from None
        import importlib

        module = importlib.import_module(module_name)
        value = getattr(module, attribute) if attribute else module
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
