"""A BlockingProvider for the refcloud API: the suite must drive it through worker threads.

It speaks the same dialect as ``reference_provider`` with ``httpx.Client``, honours the
caller's cancellation and deadline through ``check_cancelled``/``time_remaining``, and
claims less (raw exports, no compression, no resumable streaming), so the capability
checks it does not claim are skipped.
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from hypersdk import (
    BlockingProvider,
    ConfigurationError,
    ExportCapabilities,
    ExportOptions,
    ExportResult,
    HyperSDKError,
    NotConnectedError,
    PluginMetadata,
    ProgressReporter,
    ProviderAPIError,
    ProviderConfig,
    ProviderType,
    ProviderUnavailableError,
    RateLimitError,
    UnsupportedFormatError,
    VMFilter,
    VMInfo,
    check_cancelled,
    error_for_exception,
    error_for_response,
    json_body,
    time_remaining,
)

if TYPE_CHECKING:
    import logging

PLUGIN_INFO = PluginMetadata(
    name="refcloud-blocking",
    version="1.0.0",
    provider_type="refcloud",
    capabilities=ExportCapabilities(supported_formats=("raw",)),
)


class BlockingRefcloud(BlockingProvider):
    """refcloud, the blocking way."""

    def __init__(self, config: ProviderConfig, logger: logging.Logger) -> None:
        self._config = config
        self._log = logger
        self._client: httpx.Client | None = None
        self._timeout = 30.0

    @property
    def name(self) -> str:
        return "Reference Cloud (blocking)"

    @property
    def type(self) -> ProviderType:
        return PLUGIN_INFO.provider_type

    def get_export_capabilities(self) -> ExportCapabilities:
        return PLUGIN_INFO.capabilities

    def connect(self, config: ProviderConfig) -> None:
        if config.password is None:
            raise ConfigurationError("refcloud connect: ProviderConfig.password is required")
        self.disconnect()
        self._config = config
        self._timeout = config.timeout or 30.0
        self._client = httpx.Client(
            base_url=config.endpoint,
            headers={"Authorization": f"Bearer {config.password.reveal()}"},
            timeout=httpx.Timeout(self._timeout),
        )
        try:
            self.validate_credentials()
        except BaseException:
            self.disconnect()
            raise

    def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def validate_credentials(self) -> None:
        self._json("GET", "/account", "validate_credentials")

    def _request(
        self, method: str, path: str, operation: str, *, cleanup: bool = False, **kwargs: Any
    ) -> httpx.Response:
        if self._client is None:
            raise NotConnectedError(f"refcloud {operation}: call connect(config) first")
        for attempt in range(1, 5):
            if not cleanup:  # cleanup runs even when the caller was cancelled
                check_cancelled()
            try:
                response = self._client.request(
                    method, path, timeout=self._request_timeout(), **kwargs
                )
            except httpx.HTTPError as exc:
                error: HyperSDKError = error_for_exception(
                    exc, provider="refcloud", operation=operation
                )
            else:
                mapped = error_for_response(
                    response,
                    provider="refcloud",
                    operation=operation,
                    resource="vm" if path.startswith("/machines/") else None,
                )
                if mapped is None:
                    return response
                error = mapped
            wait = 0.02 * 2.0**attempt
            if isinstance(error, RateLimitError) and error.retry_after is not None:
                wait = error.retry_after
            retryable = isinstance(error, RateLimitError | ProviderUnavailableError)
            left = time_remaining()
            if not retryable or attempt == 4 or wait > 1.0 or (left is not None and wait > left):
                raise error
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _request_timeout(self) -> float:
        # Sized by the caller's deadline: a hung API must not outlive it.
        left = time_remaining()
        return self._timeout if left is None else min(self._timeout, max(left, 0.001))

    def _checkpoint(self) -> None:
        check_cancelled()

    def _json(self, method: str, path: str, operation: str, **kwargs: Any) -> dict[str, object]:
        response = self._request(method, path, operation, **kwargs)
        return json_body(response, provider="refcloud", operation=operation)

    def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        vms: list[VMInfo] = []
        page: object = 1
        while isinstance(page, int):
            body = self._json("GET", "/machines", "list_vms", params={"page": page})
            machines = body.get("machines")
            if not isinstance(machines, list):
                raise ProviderAPIError("refcloud list_vms: the answer has no machines list")
            vms.extend(self._to_vm(raw) for raw in machines)
            page = body.get("next_page")
        return [vm for vm in vms if filter is None or filter.matches(vm)]

    def get_vm(self, identifier: str) -> VMInfo:
        return self._to_vm(self._json("GET", f"/machines/{identifier}", "get_vm").get("machine"))

    def _to_vm(self, raw: object) -> VMInfo:
        try:
            assert isinstance(raw, dict)
            times = [
                raw[key] and datetime.fromisoformat(raw[key])
                for key in ("created_at", "updated_at")
            ]
            return VMInfo(
                provider=self.type,
                id=raw["id"],
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
                created_at=times[0],
                updated_at=times[1],
            )
        except (AssertionError, KeyError, TypeError, ValueError) as exc:
            raise ProviderAPIError(f"refcloud: unexpected machine ({type(exc).__name__})") from None

    def export_vm(
        self,
        identifier: str,
        options: ExportOptions,
        *,
        progress: ProgressReporter | None = None,
    ) -> ExportResult:
        if not PLUGIN_INFO.capabilities.supports_format(options.format):
            raise UnsupportedFormatError(f"refcloud export_vm: cannot export {options.format!r}")
        started = time.monotonic()
        vm = self.get_vm(identifier)
        snapshot = self._json("POST", f"/machines/{vm.id}/snapshots", "export_vm").get("snapshot")
        if not isinstance(snapshot, dict) or not isinstance(snapshot.get("id"), str):
            raise ProviderAPIError("refcloud export_vm: the answer has no snapshot id")
        snapshot_id = snapshot["id"]
        options.output_path.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", vm.name).strip("._-")[:60] or "vm"
        final = options.output_path / f"{name}-{vm.id}.raw"
        part = final.with_name(final.name + ".part")
        digest = hashlib.sha256()
        size = 0
        try:
            assert self._client is not None
            with (
                self._client.stream("GET", f"/snapshots/{snapshot_id}/disk") as response,
                part.open("wb") as sink,
            ):
                total = int(response.headers.get("Content-Length", "1"))
                for chunk in response.iter_bytes():
                    self._checkpoint()
                    sink.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if progress is not None:
                        progress.update("downloading", min(99.0, 100.0 * size / total), "")
            part.replace(final)
        except httpx.HTTPError as exc:
            part.unlink(missing_ok=True)
            raise error_for_exception(exc, provider="refcloud", operation="export_vm") from None
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        finally:
            try:
                self._request("DELETE", f"/snapshots/{snapshot_id}", "export_vm", cleanup=True)
            except HyperSDKError:
                self._log.warning("refcloud: snapshot %s was not deleted", snapshot_id)
        if progress is not None:
            progress.update("done", 100.0, final.name)
        return ExportResult(
            provider=self.type,
            vm_name=vm.name,
            vm_id=vm.id,
            format=options.format,
            output_path=options.output_path,
            files=(final.name,),
            size=size,
            checksum=digest.hexdigest(),
            duration=timedelta(seconds=time.monotonic() - started),
        )


def new_provider(config: ProviderConfig, logger: logging.Logger) -> BlockingProvider:
    """The plugin factory."""
    return BlockingRefcloud(config, logger)
