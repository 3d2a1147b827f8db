{%- set formats = cookiecutter.supported_formats.split(",") | map("trim") | list -%}
"""The {{ cookiecutter.plugin_name }} provider: an async hypersdk Provider over httpx.

It speaks a small REST API; the lines marked ``# API:`` are the ones to change for yours.

    GET /account                    200 when the token is good
    GET /vms?page=N&per_page=M      {"vms": [...], "next_page": N + 1, or null on the last}
    GET /vms/{id}                   {"vm": {...}}, or 404 when there is no such VM
    GET /vms/{id}/disk              the VM's disk image; Range requests resume a download

Public methods raise hypersdk's errors only; exports go through the export toolkit, which
resumes, verifies, compresses and never leaves a partial file behind.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import anyio.lowlevel
import httpx
import stamina
from hypersdk import (
    ConfigurationError,
    ExportCapabilities,
    NotConnectedError,
    Provider,
    ProviderAPIError,
    ProviderType,
    ProviderUnavailableError,
    RateLimitError,
    UnsupportedFormatError,
    VMInfo,
    error_for_exception,
    json_body,
    raise_for_response,
    search_matches,
)
from hypersdk.export import export_disk_image

if TYPE_CHECKING:
    from hypersdk import ExportOptions, ExportResult, ProgressReporter, ProviderConfig, VMFilter

PROVIDER_TYPE: Final = ProviderType("{{ cookiecutter.provider_type }}")
DEFAULT_ENDPOINT: Final = "{{ cookiecutter.api_base_url.rstrip('/') }}"
CAPABILITIES: Final = ExportCapabilities(
    supported_formats=({% for name in formats %}"{{ name }}"{{ ", " if not loop.last else ("," if loop.length == 1 else "") }}{% endfor %}),
    supports_compression=True,
    supports_streaming=True,
)
PAGE_SIZE: Final = 100  # API: the most VMs one page may hold
# Retries are few and quick, within the conformance suite's retry_budget (3 s): raise both.
RETRY_ATTEMPTS: Final = 4
RETRY_WAIT_MAX: Final = 1.0  # a longer Retry-After is raised as RateLimitError at once


def _retry(exc: Exception) -> bool | float:
    """stamina's hook: retry throttling (after its Retry-After) and outages, nothing else."""
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        return exc.retry_after if exc.retry_after <= RETRY_WAIT_MAX else False
    return isinstance(exc, (RateLimitError, ProviderUnavailableError))


def _shape_error(operation: str, detail: str) -> ProviderAPIError:
    return ProviderAPIError(
        f"{PROVIDER_TYPE} {operation}: the API answered an unexpected shape ({detail})",
        provider=PROVIDER_TYPE,
        operation=operation,
    )


def _timestamp(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)  # TypeError if not str


class {{ cookiecutter.__class_prefix }}Provider(Provider):
    """{{ cookiecutter.plugin_name }} virtual machines through hypersdk's Provider interface."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger(__name__)
        self._client: httpx.AsyncClient | None = None

    @property
    def name(self) -> str:
        return "{{ cookiecutter.plugin_name }}"

    @property
    def type(self) -> ProviderType:
        return PROVIDER_TYPE

    def get_export_capabilities(self) -> ExportCapabilities:
        return CAPABILITIES

    async def connect(self, config: ProviderConfig) -> None:
        """Open a client with the config's token and check it against the API."""
        if config.password is None:
            raise ConfigurationError(
                f"{PROVIDER_TYPE} connect: ProviderConfig.password (the API token) is required",
                provider=PROVIDER_TYPE,
                operation="connect",
            )
        await self.disconnect()
        self._client = httpx.AsyncClient(
            base_url=(config.endpoint or DEFAULT_ENDPOINT).rstrip("/"),
            headers={"Authorization": f"Bearer {config.password.reveal()}"},  # API: auth
            timeout=httpx.Timeout(config.timeout or 30.0),
        )
        try:
            await self.validate_credentials()
        except BaseException:
            await self.disconnect()
            raise

    async def disconnect(self) -> None:
        """Close the client; safe to call any number of times."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def validate_credentials(self) -> None:
        """Raise AuthenticationError unless the API accepts the token."""
        await self._get("/account", operation="validate_credentials")  # API: a cheap call

    async def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        """Every VM, page by page, in the API's order; then ``filter``, as VMFilter.matches."""
        vms: list[VMInfo] = []
        page: object = 1
        seen: set[object] = set()
        while page is not None:
            seen.add(page)
            params = {"page": page, "per_page": PAGE_SIZE}  # API: pagination parameters
            body = await self._get("/vms", operation="list_vms", params=params, require=("vms",))
            items, page = body["vms"], body.get("next_page")  # API: items, next page
            if not isinstance(items, list) or page in seen:
                raise _shape_error("list_vms", "vms must be a list and next_page a new page")
            vms.extend(self._to_vm(item, "list_vms") for item in items)
            await anyio.lowlevel.checkpoint()
        return [vm for vm in vms if filter is None or filter.matches(vm)]

    async def get_vm(self, identifier: str) -> VMInfo:
        """One VM by id; VMNotFoundError when there is none."""
        path = f"/vms/{quote(identifier, safe='')}"
        body = await self._get(path, operation="get_vm", identifier=identifier, require=("vm",))
        return self._to_vm(body["vm"], "get_vm")

    async def search_vms(self, query: str) -> list[VMInfo]:
        """The VMs hypersdk.search_matches accepts, in list order."""
        return [vm for vm in await self.list_vms() if search_matches(vm, query)]

    async def export_vm(
        self,
        identifier: str,
        options: ExportOptions,
        *,
        progress: ProgressReporter | None = None,
    ) -> ExportResult:
        """Download the VM's disk image into ``options.output_path``."""
        if not CAPABILITIES.supports_format(options.format):
            raise UnsupportedFormatError(
                f"{PROVIDER_TYPE} export_vm: format {options.format!r} is not supported; "
                f"use one of {', '.join(CAPABILITIES.supported_formats)}",
                provider=PROVIDER_TYPE,
                operation="export_vm",
            )
        vm = await self.get_vm(identifier)
        return await export_disk_image(
            self._connected("export_vm"),
            f"/vms/{quote(vm.id, safe='')}/disk",  # API: where the disk image is downloaded
            options,
            provider=PROVIDER_TYPE,
            vm_id=vm.id,
            vm_name=vm.name,
            progress=progress,
        )

    def _connected(self, operation: str) -> httpx.AsyncClient:
        if self._client is None:
            raise NotConnectedError(
                f"{PROVIDER_TYPE} {operation}: not connected; call connect(config) first",
                provider=PROVIDER_TYPE,
                operation=operation,
            )
        return self._client

    @stamina.retry(on=_retry, attempts=RETRY_ATTEMPTS, wait_max=RETRY_WAIT_MAX, wait_jitter=0.1)
    async def _get(
        self,
        path: str,
        *,
        operation: str,
        identifier: str | None = None,
        params: dict[str, Any] | None = None,
        require: tuple[str, ...] = (),
    ) -> dict[str, object]:
        """GET ``path`` as a checked JSON object (stamina retries throttling and outages)."""
        try:
            response = await self._connected(operation).get(path, params=params)
        except httpx.HTTPError as exc:
            raise error_for_exception(exc, provider=PROVIDER_TYPE, operation=operation) from None
        raise_for_response(
            response,
            provider=PROVIDER_TYPE,
            operation=operation,
            resource="vm" if identifier is not None else None,
            identifier=identifier,
        )
        return json_body(response, provider=PROVIDER_TYPE, operation=operation, require=require)

    def _to_vm(self, raw: object, operation: str) -> VMInfo:
        """One VM object of the API as a VMInfo (API: the field names)."""
        if not isinstance(raw, dict):
            raise _shape_error(operation, f"a VM is {type(raw).__name__}, not an object")
        try:
            return VMInfo(
                provider=PROVIDER_TYPE,
                id=str(raw["id"]),
                name=raw["name"],
                state=raw["status"],
                power_state=raw["power_state"],
                location=raw["region"],
                guest_os=raw["os"],
                memory_mb=raw["memory_mb"],
                num_cpus=raw["cpus"],
                storage_gb=raw["disk_gb"],
                ip_addresses=raw["ip_addresses"],
                tags=raw["tags"],
                metadata=raw["metadata"],
                created_at=_timestamp(raw["created_at"]),
                updated_at=_timestamp(raw["updated_at"]),
            )
        except (KeyError, TypeError, ValueError, ConfigurationError) as exc:
            raise _shape_error(operation, f"{type(exc).__name__}: {exc}") from None
