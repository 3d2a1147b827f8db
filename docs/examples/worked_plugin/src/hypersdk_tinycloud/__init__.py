"""TinyCloud for hypersdk: the worked plugin of the plugin development guide.

TinyCloud is a made-up cloud with a typical API (bearer token; see the guide): paged
``/servers``, one ``/servers/{id}``, snapshots you make with a POST and must DELETE
again, and ``/snapshots/{id}/image``, the raw disk with ``Range`` support.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import httpx
import stamina

from hypersdk import (
    ConfigurationError,
    ExportCapabilities,
    ExportOptions,
    ExportResult,
    HyperSDKError,
    NotConnectedError,
    PluginMetadata,
    ProgressReporter,
    Provider,
    ProviderAPIError,
    ProviderConfig,
    ProviderType,
    ProviderUnavailableError,
    RateLimitError,
    UnsupportedFormatError,
    VMFilter,
    VMInfo,
    error_for_exception,
    json_body,
    raise_for_response,
)
from hypersdk.export import export_disk_image

if TYPE_CHECKING:
    import logging

__version__ = "1.0.0"

DEFAULT_ENDPOINT: Final = "https://api.tinycloud.test/v1"
TYPE: Final = ProviderType("tinycloud")
E = TypeVar("E", bound=HyperSDKError)

PLUGIN_INFO = PluginMetadata(
    name="tinycloud",
    version=__version__,
    provider_type=TYPE,
    description="TinyCloud servers: list, find, and export disks as raw images",
    author="The hypersdk developers",
    license="MIT",
    capabilities=ExportCapabilities(
        supported_formats=("raw",),
        supports_compression=True,  # export_disk_image compresses on request
        supports_streaming=True,  # ... and resumes a dropped download with Range
        supports_snapshots=True,
    ),
    min_sdk_version="0.1.0",
    python_requires=">=3.11",
)


def new_provider(config: ProviderConfig, logger: logging.Logger) -> Provider:
    """The plugin factory: build the provider, do no I/O (connect() does that)."""
    return TinyCloudProvider(logger)  # the config comes again, to connect()


def _retry_on(exc: Exception) -> bool | float:
    """The stamina hook: retry 429s (waiting what they ask, within reason) and outages."""
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        return exc.retry_after if exc.retry_after <= 5.0 else False  # longer: the caller's call
    return isinstance(exc, RateLimitError | ProviderUnavailableError)


def _error(cls: type[E], operation: str, problem: str) -> E:
    """An error whose message names the provider, the operation and the problem."""
    return cls(f"tinycloud {operation}: {problem}", provider="tinycloud", operation=operation)


class TinyCloudProvider(Provider):
    """A hypersdk provider for TinyCloud, over httpx."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._client: httpx.AsyncClient | None = None

    @property
    def name(self) -> str:
        return "TinyCloud"

    @property
    def type(self) -> ProviderType:
        return TYPE

    def get_export_capabilities(self) -> ExportCapabilities:
        return PLUGIN_INFO.capabilities

    async def connect(self, config: ProviderConfig) -> None:
        if config.password is None or not config.password.reveal():
            raise _error(ConfigurationError, "connect", "password: the API token is required")
        await self.disconnect()
        self._client = httpx.AsyncClient(
            base_url=config.endpoint or DEFAULT_ENDPOINT,
            headers={"Authorization": f"Bearer {config.password.reveal()}"},
            timeout=httpx.Timeout(config.timeout or 30.0),
        )
        try:
            await self.validate_credentials()
        except BaseException:
            await self.disconnect()  # a failed connect leaves nothing open
            raise
        self._log.info("tinycloud: connected to %s", self._client.base_url.host)

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def validate_credentials(self) -> None:
        await self._json("GET", "/account", operation="validate_credentials", key="account")

    async def _request(
        self, method: str, path: str, *, operation: str, vm_id: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One API call, retried within a small budget, errors mapped to hypersdk's."""
        if self._client is None:
            raise _error(NotConnectedError, operation, "not connected; call connect(config) first")
        client = self._client
        attempts = 4 if method in ("GET", "DELETE") else 1  # a failed POST may have happened
        async for attempt in stamina.retry_context(
            on=_retry_on, attempts=attempts, timeout=10.0, wait_initial=0.1, wait_jitter=0.1
        ):
            with attempt:
                self._log.debug("tinycloud %s %s", method, path)  # never headers or tokens
                try:
                    response = await client.request(method, path, **kwargs)
                except httpx.HTTPError as exc:
                    raise error_for_exception(exc, provider=TYPE, operation=operation) from None
                raise_for_response(
                    response,
                    provider="tinycloud",
                    operation=operation,
                    resource="vm" if vm_id is not None else None,
                    identifier=vm_id,
                )
        return response

    async def _json(
        self, method: str, path: str, *, operation: str, key: str, **kwargs: Any
    ) -> dict[str, object]:
        response = await self._request(method, path, operation=operation, **kwargs)
        return json_body(response, provider="tinycloud", operation=operation, require=(key,))

    async def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        vms: list[VMInfo] = []
        page: object = 1
        last = 0
        while page is not None:
            if not isinstance(page, int) or page <= last:  # never loop on a confused API
                raise _error(ProviderAPIError, "list_vms", f"next_page {page!r} after {last}")
            last = page
            body = await self._json(
                "GET", "/servers", operation="list_vms", key="servers", params={"page": page}
            )
            servers = body["servers"]
            if not isinstance(servers, list):
                raise _error(ProviderAPIError, "list_vms", "servers is not a list")
            vms.extend(self._to_vm(raw, "list_vms") for raw in servers)
            page = body.get("next_page")
        # The reference semantics, whatever the server did or did not filter.
        return [vm for vm in vms if filter is None or filter.matches(vm)]

    async def get_vm(self, identifier: str) -> VMInfo:
        body = await self._json(
            "GET", f"/servers/{identifier}", operation="get_vm", key="server", vm_id=identifier
        )
        return self._to_vm(body["server"], "get_vm")

    def _to_vm(self, raw: Any, operation: str) -> VMInfo:
        """One mapping for the list and the single-server endpoints (GET-AGREES)."""
        try:  # anything but a JSON object fails below with a TypeError
            return VMInfo(
                provider=TYPE,
                id=str(raw["id"]),
                name=raw["name"],
                state=raw["status"],
                power_state=raw["power"],
                location=raw["region"],
                guest_os=raw["os"],
                memory_mb=raw["memory_mb"],
                num_cpus=raw["vcpus"],
                storage_gb=raw["disk_gb"],
                ip_addresses=raw["ips"],
                tags=raw["tags"],
                metadata=raw["labels"],
                created_at=_timestamp(raw["created_at"]),
                updated_at=_timestamp(raw["updated_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:  # ConfigurationError is a ValueError
            raise _error(ProviderAPIError, operation, f"malformed server: {exc!r}") from None

    async def export_vm(
        self, identifier: str, options: ExportOptions, *, progress: ProgressReporter | None = None
    ) -> ExportResult:
        capabilities = self.get_export_capabilities()
        if not capabilities.supports_format(options.format):  # before any API call
            formats = ", ".join(capabilities.supported_formats)
            problem = f"format {options.format!r} is not supported; use one of {formats}"
            raise _error(UnsupportedFormatError, "export_vm", problem)
        vm = await self.get_vm(identifier)
        body = await self._json(
            "POST", f"/servers/{vm.id}/snapshots", operation="export_vm", key="snapshot"
        )
        snapshot = body["snapshot"]
        if not isinstance(snapshot, dict) or not isinstance(snapshot.get("id"), str):
            raise _error(ProviderAPIError, "export_vm", "snapshot.id is not a string")
        snapshot_id: str = snapshot["id"]
        try:
            assert self._client is not None  # _request above proved it
            return await export_disk_image(
                self._client,
                f"/snapshots/{snapshot_id}/image",
                options,
                provider=TYPE,
                vm_id=vm.id,
                vm_name=vm.name,
                progress=progress,
            )
        finally:
            await self._delete_snapshot(snapshot_id)

    async def _delete_snapshot(self, snapshot_id: str) -> None:
        # Shielded: a cancelled export must still delete the snapshot it paid for.
        with anyio.CancelScope(shield=True):
            try:
                await self._request("DELETE", f"/snapshots/{snapshot_id}", operation="export_vm")
            except HyperSDKError as exc:
                self._log.warning("tinycloud: snapshot %s left behind: %s", snapshot_id, exc)


def _timestamp(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)  # TypeError if not str
