"""The fleet provider as a directory plugin (the Celery workers load it from a folder).

Self-contained on purpose: a plugin directory holds this one file, importing only
hypersdk and httpx.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

import httpx

import hypersdk
from hypersdk import (
    ExportCapabilities,
    ExportOptions,
    ExportResult,
    ProviderConfig,
    VMFilter,
    VMInfo,
)
from hypersdk.export import RetryPolicy, export_disk_image

if TYPE_CHECKING:
    from hypersdk.progress import ProgressReporter

PROVIDER_TYPE = "fleet"

PLUGIN_INFO = hypersdk.PluginMetadata(
    name="fleet",
    version="1.0.0",
    provider_type=PROVIDER_TYPE,
    capabilities=ExportCapabilities(supported_formats=("raw",), supports_streaming=True),
)


class FleetProvider(hypersdk.Provider):
    """A minimal provider over the fleet server, exporting through the export toolkit."""

    def __init__(self, config: ProviderConfig) -> None:
        self._config = config
        self._client: httpx.AsyncClient | None = None
        self.exports: Counter[str] = Counter()

    @property
    def name(self) -> str:
        return "Fleet"

    @property
    def type(self) -> hypersdk.ProviderType:
        return hypersdk.ProviderType(PROVIDER_TYPE)

    async def connect(self, config: ProviderConfig) -> None:
        self._config = config
        self._client = httpx.AsyncClient(base_url=config.endpoint, timeout=10)

    async def disconnect(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def validate_credentials(self) -> None:
        return None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            raise hypersdk.NotConnectedError("connect first")
        return self._client

    async def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        response = await self._http().get("/vms")
        vms = [
            VMInfo(provider=self.type, id=item["id"], name=item["name"], state="active")
            for item in response.json()
        ]
        return [vm for vm in vms if filter is None or filter.matches(vm)]

    async def get_vm(self, identifier: str) -> VMInfo:
        for vm in await self.list_vms():
            if vm.id == identifier:
                return vm
        raise hypersdk.VMNotFoundError(f"no VM {identifier!r}", provider=PROVIDER_TYPE)

    async def search_vms(self, query: str) -> list[VMInfo]:
        return [vm for vm in await self.list_vms() if hypersdk.search_matches(vm, query)]

    async def export_vm(
        self, identifier: str, options: ExportOptions, *, progress: ProgressReporter | None = None
    ) -> ExportResult:
        vm = await self.get_vm(identifier)
        self.exports[vm.id] += 1
        return await export_disk_image(
            self._http(),
            f"/disks/{vm.id}",
            options,
            provider=PROVIDER_TYPE,
            vm_id=vm.id,
            vm_name=vm.name,
            progress=progress,
            # The runner's retries are under test: the toolkit's own stay quick.
            retry=RetryPolicy(attempts=2, wait_initial=0, wait_max=0, wait_jitter=0),
        )

    def get_export_capabilities(self) -> ExportCapabilities:
        return PLUGIN_INFO.capabilities


def new_provider(config: ProviderConfig, logger: logging.Logger) -> FleetProvider:
    return FleetProvider(config)
