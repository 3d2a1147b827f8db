"""A provider for "refcloud", a small fake API, written to pass every conformance check.

The API (served in tests by ``reference_suite.RefcloudConformance.mock_api``):

``GET  /v1/account``                   200 when the bearer token is valid
``GET  /v1/machines?page=&per_page=``  ``{"machines": [...], "next_page": n | null}``
``GET  /v1/machines/{id}``             ``{"machine": {...}}`` or 404
``POST /v1/machines/{id}/snapshots``   ``{"snapshot": {"id": ...}}``
``DELETE /v1/snapshots/{id}``          204
``GET  /v1/snapshots/{id}/disk``       the disk image, with Range support

The broken variants in ``variants.py`` subclass :class:`RefcloudProvider` and override one
small method each, so every hook below is a seam on purpose.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.lowlevel
import httpx

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
    Secret,
    UnsupportedFormatError,
    VMFilter,
    VMInfo,
    error_for_exception,
    error_for_response,
    json_body,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_ENDPOINT: Final = "https://api.refcloud.test/v1"

PLUGIN_INFO = PluginMetadata(
    name="refcloud",
    version="1.0.0",
    provider_type="refcloud",
    description="The reference provider the conformance suite is tested against.",
    capabilities=ExportCapabilities(
        supported_formats=("raw",),
        supports_compression=True,
        supports_streaming=True,
        supports_snapshots=True,
    ),
    python_requires=">=3.11",
)


class RefcloudProvider(Provider):
    """The reference provider: async, retrying, resuming, tidy."""

    max_attempts = 4
    backoff = 0.02
    max_wait = 1.0  # the longest Retry-After worth waiting for; longer ones are raised
    page_request_size = 100

    def __init__(self, config: ProviderConfig, logger: logging.Logger) -> None:
        self._config = config
        self._log = logger
        self._client: httpx.AsyncClient | None = None

    # --- identity ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return "Reference Cloud"

    @property
    def type(self) -> ProviderType:
        return PLUGIN_INFO.provider_type

    def get_export_capabilities(self) -> ExportCapabilities:
        return PLUGIN_INFO.capabilities

    def __repr__(self) -> str:
        state = "connected" if self._client is not None else "disconnected"
        return f"RefcloudProvider({self._config.endpoint or DEFAULT_ENDPOINT!r}, {state})"

    # --- lifecycle -----------------------------------------------------------------------

    async def connect(self, config: ProviderConfig) -> None:
        token = self._token(config)
        self._config = config
        await self.disconnect()
        self._client = self._make_client(config, token)
        try:
            await self.validate_credentials()
        except BaseException:
            await self.disconnect()
            raise

    def _token(self, config: ProviderConfig) -> Secret:
        if config.password is None:
            raise ConfigurationError(
                "refcloud connect: ProviderConfig.password (the API token) is required",
                provider="refcloud",
                operation="connect",
            )
        return config.password

    def _make_client(self, config: ProviderConfig, token: Secret) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=config.endpoint or DEFAULT_ENDPOINT,
            headers={"Authorization": f"Bearer {token.reveal()}"},
            timeout=httpx.Timeout(config.timeout or 30.0),
        )

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def validate_credentials(self) -> None:
        await self._json("GET", "/account", operation="validate_credentials")

    def _require(self, operation: str) -> httpx.AsyncClient:
        if self._client is None:
            raise NotConnectedError(
                f"refcloud {operation}: not connected; call connect(config) first",
                provider="refcloud",
                operation=operation,
            )
        return self._client

    # --- HTTP ----------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        identifier: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        client = self._require(operation)
        idempotent = method in ("GET", "HEAD", "DELETE")
        for attempt in range(1, self.max_attempts + 1):
            self._log.debug("refcloud %s %s (attempt %d)", method, path, attempt)
            try:
                response = await client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                error: HyperSDKError = self._transport_error(exc, operation)
            else:
                mapped = error_for_response(
                    response,
                    provider="refcloud",
                    operation=operation,
                    resource="vm" if identifier is not None else None,
                    identifier=identifier,
                )
                if mapped is None:
                    return response
                error = mapped
            delay = self._retry_delay(error, attempt, idempotent=idempotent)
            if delay is None:
                raise error
            self._log.info(
                "refcloud %s: %s; retrying in %.2f s", operation, type(error).__name__, delay
            )
            await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _transport_error(self, exc: httpx.HTTPError, operation: str) -> HyperSDKError:
        return error_for_exception(exc, provider="refcloud", operation=operation)

    def _retry_delay(self, error: HyperSDKError, attempt: int, *, idempotent: bool) -> float | None:
        if attempt >= self.max_attempts:
            return None
        if isinstance(error, RateLimitError):
            wait = (
                error.retry_after if error.retry_after is not None else self.backoff * 2.0**attempt
            )
            return wait if wait <= self.max_wait else None
        if isinstance(error, ProviderUnavailableError) and idempotent:
            return self.backoff * 2.0**attempt
        return None

    async def _sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    async def _json(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        require: tuple[str, ...] = (),
        identifier: str | None = None,
        **kwargs: Any,
    ) -> dict[str, object]:
        response = await self._request(
            method, path, operation=operation, identifier=identifier, **kwargs
        )
        return json_body(response, provider="refcloud", operation=operation, require=require)

    # --- discovery -----------------------------------------------------------------------

    async def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        vms = await self._all_machines()
        return [vm for vm in vms if filter is None or filter.matches(vm)]

    async def _all_machines(self) -> list[VMInfo]:
        vms: list[VMInfo] = []
        page: int | None = 1
        while page is not None:
            body = await self._json(
                "GET",
                "/machines",
                operation="list_vms",
                require=("machines",),
                params={"page": page, "per_page": self.page_request_size},
            )
            machines = body["machines"]
            next_page = body.get("next_page")
            if not isinstance(machines, list) or not (
                next_page is None or isinstance(next_page, int)
            ):
                raise self._shape_error(
                    "list_vms", "machines must be a list and next_page an integer or null"
                )
            vms.extend(self._to_vm(raw, "list_vms") for raw in machines)
            await anyio.lowlevel.checkpoint()
            page = self._next_page(page, body)
        return vms

    def _next_page(self, current: int, body: Mapping[str, object]) -> int | None:
        announced = body.get("next_page")
        return announced if isinstance(announced, int) else None

    async def get_vm(self, identifier: str) -> VMInfo:
        body = await self._json(
            "GET",
            f"/machines/{identifier}",
            operation="get_vm",
            require=("machine",),
            identifier=identifier,
        )
        return self._to_vm(body["machine"], "get_vm")

    def _shape_error(self, operation: str, detail: str) -> ProviderAPIError:
        return ProviderAPIError(
            f"refcloud {operation}: the API answered an unexpected shape ({detail})",
            provider="refcloud",
            operation=operation,
        )

    def _to_vm(self, raw: object, operation: str) -> VMInfo:
        if not isinstance(raw, dict):
            raise self._shape_error(operation, f"a machine is {type(raw).__name__}, not an object")
        try:
            return VMInfo(
                provider=self.type,
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
                created_at=self._parse_time(raw["created_at"]),
                updated_at=self._parse_time(raw["updated_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._shape_error(operation, f"{type(exc).__name__}: {exc}") from None

    def _parse_time(self, value: object) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"a timestamp is {type(value).__name__}")
        return datetime.fromisoformat(value)

    # --- export --------------------------------------------------------------------------

    async def export_vm(
        self,
        identifier: str,
        options: ExportOptions,
        *,
        progress: ProgressReporter | None = None,
    ) -> ExportResult:
        self._check_format(options)
        self._require("export_vm")
        started = time.monotonic()
        reporter = _Progress(progress)
        vm = await self.get_vm(identifier)
        reporter.update("preparing", 0, f"exporting {vm.name!r}")
        out = options.output_path
        out.mkdir(parents=True, exist_ok=True)
        snapshot = await self._create_snapshot(vm)
        try:
            reporter.update("snapshot", 5, f"snapshot {snapshot} ready")
            filename = self._file_name(vm) + (".raw.gz" if options.compress else ".raw")
            final = out / filename
            part = out / (filename + ".part")
            try:
                size = await self._download(snapshot, part, reporter)
                if options.compress:
                    self._compress(part, options.compression_level)
                part.replace(final)
            except BaseException:
                self._discard(part)
                raise
        finally:
            await self._delete_snapshot(snapshot)
        checksum = hashlib.sha256(final.read_bytes()).hexdigest()
        self._finish(reporter, filename)
        return ExportResult(
            provider=self.type,
            vm_name=vm.name,
            vm_id=vm.id,
            format=options.format,
            output_path=out,
            files=(filename,),
            size=size,
            compressed_size=final.stat().st_size if options.compress else 0,
            checksum=checksum,
            duration=timedelta(seconds=time.monotonic() - started),
        )

    def _finish(self, reporter: _Progress, filename: str) -> None:
        reporter.update("done", 100, f"wrote {filename}")

    def _check_format(self, options: ExportOptions) -> None:
        if not PLUGIN_INFO.capabilities.supports_format(options.format):
            raise UnsupportedFormatError(
                f"refcloud export_vm: format {options.format!r} is not supported; "
                f"use one of {', '.join(PLUGIN_INFO.capabilities.supported_formats)}",
                provider="refcloud",
                operation="export_vm",
            )

    def _file_name(self, vm: VMInfo) -> str:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", vm.name).strip("._-")[:60]
        return f"{safe or 'vm'}-{vm.id}"

    def _discard(self, part: Path) -> None:
        part.unlink(missing_ok=True)

    async def _create_snapshot(self, vm: VMInfo) -> str:
        body = await self._json(
            "POST", f"/machines/{vm.id}/snapshots", operation="export_vm", require=("snapshot",)
        )
        snapshot = body["snapshot"]
        if not isinstance(snapshot, dict) or not isinstance(snapshot.get("id"), str):
            raise self._shape_error("export_vm", "snapshot.id must be a string")
        return str(snapshot["id"])

    async def _delete_snapshot(self, snapshot: str) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self._request("DELETE", f"/snapshots/{snapshot}", operation="export_vm")
            except HyperSDKError as exc:
                self._log.warning(
                    "refcloud: could not delete temporary snapshot %s: %s", snapshot, exc
                )

    async def _download(self, snapshot: str, part: Path, reporter: _Progress) -> int:
        client = self._require("export_vm")
        received = 0
        total: int | None = None
        with part.open("wb") as sink:
            for attempt in range(1, self.max_attempts + 1):
                headers = {"Range": f"bytes={received}-"} if received else {}
                try:
                    async with client.stream(
                        "GET", f"/snapshots/{snapshot}/disk", headers=headers
                    ) as response:
                        error = error_for_response(
                            response, provider="refcloud", operation="export_vm"
                        )
                        if error is not None:
                            await response.aread()
                            raise error
                        total = received + int(response.headers.get("Content-Length", "0"))
                        async for chunk in response.aiter_bytes():
                            sink.write(chunk)
                            received += len(chunk)
                            reporter.update(
                                "downloading",
                                5 + 90 * received / max(total, 1),
                                f"{received} bytes",
                            )
                    if received >= total:
                        return received
                except httpx.TransportError as exc:
                    if attempt == self.max_attempts:
                        raise error_for_exception(
                            exc, provider="refcloud", operation="export_vm"
                        ) from None
                    self._log.info(
                        "refcloud export: download interrupted at %d bytes; resuming", received
                    )
        raise ProviderUnavailableError("refcloud export_vm: the download never completed")

    def _compress(self, part: Path, level: int) -> None:
        packed = part.with_name(part.name + ".gz")
        with (
            part.open("rb") as source,
            gzip.open(packed, "wb", compresslevel=min(level or 6, 9)) as sink,
        ):
            shutil.copyfileobj(source, sink)
        packed.replace(part)


class _Progress:
    """Clamps and never goes backwards, whatever the caller computes."""

    def __init__(self, reporter: ProgressReporter | None) -> None:
        self._reporter = reporter
        self._last = 0.0

    def update(self, phase: str, percent: float, message: str) -> None:
        self._last = max(self._last, min(100.0, max(0.0, percent)))
        if self._reporter is not None:
            self._reporter.update(phase, self._last, message)


def new_provider(config: ProviderConfig, logger: logging.Logger) -> Provider:
    """The plugin factory (the module contract's ``new_provider``)."""
    return RefcloudProvider(config, logger)


def machine_json(vm: VMInfo) -> Mapping[str, object]:
    """``vm`` in refcloud's dialect (used by the mocked API)."""
    return {
        "id": vm.id,
        "name": vm.name,
        "status": vm.state,
        "power": vm.power_state,
        "region": vm.location,
        "os": vm.guest_os,
        "memory_mb": vm.memory_mb,
        "vcpus": vm.num_cpus,
        "disk_gb": vm.storage_gb,
        "ips": list(vm.ip_addresses),
        "tags": dict(vm.tags),
        "labels": dict(vm.metadata),
        "created_at": vm.created_at.isoformat() if vm.created_at else None,
        "updated_at": vm.updated_at.isoformat() if vm.updated_at else None,
    }


class ToolkitRefcloudProvider(RefcloudProvider):
    """The reference provider with export_vm built on hypersdk.export.export_disk_image.

    The suite's export checks then vouch for the toolkit as a provider would use it.
    """

    async def export_vm(
        self,
        identifier: str,
        options: ExportOptions,
        *,
        progress: ProgressReporter | None = None,
    ) -> ExportResult:
        from hypersdk.export import RetryPolicy, export_disk_image

        self._check_format(options)
        client = self._require("export_vm")
        vm = await self.get_vm(identifier)
        snapshot = await self._create_snapshot(vm)
        try:
            return await export_disk_image(
                client,
                f"/snapshots/{snapshot}/disk",
                options,
                provider=self.type,
                vm_id=vm.id,
                vm_name=vm.name,
                progress=progress,
                retry=RetryPolicy(wait_initial=0.01, wait_max=0.1, wait_jitter=0.0),
            )
        finally:
            await self._delete_snapshot(snapshot)


def new_toolkit_provider(config: ProviderConfig, logger: logging.Logger) -> Provider:
    """A factory for :class:`ToolkitRefcloudProvider` (see test_reference.py)."""
    return ToolkitRefcloudProvider(config, logger)
