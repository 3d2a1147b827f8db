"""A BlockingProvider for refcloud over ``requests``: the suite checks it through the socket path.

This is the shape of a plugin that wraps a vendor SDK: blocking calls, an HTTP stack that
is not httpx, hypersdk's helpers for everything that is not the API's dialect:

- ``hypersdk.http`` maps status, headers and body to hypersdk errors and checks JSON;
- ``check_cancelled()`` / ``time_remaining()`` keep it inside the caller's cancellation
  and deadline (every request's timeout is sized by what is left);
- ``hypersdk.export.export_disk_image_blocking`` over a small :class:`RequestsSource`
  gives it resume, verification, atomic writes and compression.

It claims everything the async reference claims, so the whole contract runs. The broken
variants in ``variants.py`` subclass it and override one seam each.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import requests

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
    Secret,
    UnsupportedFormatError,
    VMFilter,
    VMInfo,
    check_cancelled,
    time_remaining,
)
from hypersdk.export import RetryPolicy, SourceResponse, export_disk_image_blocking
from hypersdk.http import error_for_exception, error_for_status, json_body

if TYPE_CHECKING:
    import logging
    from collections.abc import Iterator

DEFAULT_ENDPOINT: Final = "https://api.refcloud.test/v1"
_PROVIDER: Final = "refcloud"

PLUGIN_INFO = PluginMetadata(
    name="refcloud-requests",
    version="1.0.0",
    provider_type="refcloud",
    description="The reference BlockingProvider over requests (checked through the socket).",
    capabilities=ExportCapabilities(
        supported_formats=("raw",),
        supports_compression=True,
        supports_streaming=True,
        supports_snapshots=True,
    ),
    python_requires=">=3.11",
)


class RequestsSource:
    """The toolkit's :class:`~hypersdk.export.ByteSource` over a ``requests.Session``.

    Each chunk is a cancellation point, and each request's timeout is what the caller's
    deadline leaves.
    """

    def __init__(self, provider: RequestsRefcloud, path: str) -> None:
        self._provider = provider
        self._path = path

    def open(self, offset: int, validator: str | None) -> SourceResponse:
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if validator:
                headers["If-Range"] = validator
        session = self._provider._require("export_vm")
        check_cancelled()
        reply = session.get(
            self._provider._url(self._path),
            headers=headers,
            stream=True,
            timeout=self._provider._timeouts(),
        )
        return SourceResponse(
            status=reply.status_code,
            headers=reply.headers,
            chunks=self._chunks(reply),
            on_close=reply.close,
        )

    def _chunks(self, reply: requests.Response) -> Iterator[bytes]:
        for chunk in reply.iter_content(64 * 1024):
            self._provider._checkpoint()
            yield chunk


class RequestsRefcloud(BlockingProvider):
    """refcloud over requests: retrying, deadline-aware, resuming, tidy."""

    max_attempts = 4
    backoff = 0.02
    max_wait = 1.0  # the longest Retry-After worth waiting for; longer ones are raised
    page_request_size = 100

    def __init__(self, config: ProviderConfig, logger: logging.Logger) -> None:
        self._config = config
        self._log = logger
        self._session: requests.Session | None = None
        self._base = DEFAULT_ENDPOINT
        self._timeout = 30.0

    # --- identity ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return "Reference Cloud (requests)"

    @property
    def type(self) -> ProviderType:
        return PLUGIN_INFO.provider_type

    def get_export_capabilities(self) -> ExportCapabilities:
        return PLUGIN_INFO.capabilities

    def __repr__(self) -> str:
        state = "connected" if self._session is not None else "disconnected"
        return f"RequestsRefcloud({self._base!r}, {state})"

    # --- lifecycle -----------------------------------------------------------------------

    def connect(self, config: ProviderConfig) -> None:
        token = self._token(config)
        self.disconnect()
        self._config = config
        self._base = (config.endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self._timeout = config.timeout or 30.0
        self._session = self._make_session(token)
        try:
            self.validate_credentials()
        except BaseException:
            self.disconnect()
            raise

    def _token(self, config: ProviderConfig) -> Secret:
        if config.password is None:
            raise ConfigurationError(
                "refcloud connect: ProviderConfig.password (the API token) is required",
                provider=_PROVIDER,
                operation="connect",
            )
        return config.password

    def _make_session(self, token: Secret) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token.reveal()}"
        return session

    def disconnect(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def validate_credentials(self) -> None:
        self._json("GET", "/account", "validate_credentials")

    def _require(self, operation: str) -> requests.Session:
        if self._session is None:
            raise NotConnectedError(
                f"refcloud {operation}: not connected; call connect(config) first",
                provider=_PROVIDER,
                operation=operation,
            )
        return self._session

    # --- HTTP ----------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self._base + path

    def _timeouts(self) -> tuple[float, float]:
        # (connect, read), sized by the caller's deadline: a hung API must not outlive it.
        left = time_remaining()
        seconds = self._timeout if left is None else min(self._timeout, max(left, 0.001))
        return seconds, seconds

    def _checkpoint(self) -> None:
        check_cancelled()

    def _request(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        identifier: str | None = None,
        cleanup: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        session = self._require(operation)
        idempotent = method in ("GET", "HEAD", "DELETE")
        for attempt in range(1, self.max_attempts + 1):
            if not cleanup:  # cleanup runs even when the caller was cancelled
                self._checkpoint()
            self._log.debug("refcloud %s %s (attempt %d)", method, path, attempt)
            try:
                reply = session.request(method, self._url(path), timeout=self._timeouts(), **kwargs)
            except requests.RequestException as exc:
                error = self._transport_error(exc, operation, method, path)
            else:
                mapped = error_for_status(
                    reply.status_code,
                    headers=reply.headers,
                    body=reply.content,
                    provider=_PROVIDER,
                    operation=operation,
                    method=method,
                    path=path,
                    resource="vm" if identifier is not None else None,
                    identifier=identifier,
                )
                if mapped is None:
                    return reply
                error = mapped
            delay = self._retry_delay(error, attempt, idempotent=idempotent)
            left = time_remaining()
            if delay is None or (left is not None and delay > left):
                raise error
            self._log.info(
                "refcloud %s: %s; retrying in %.2f s", operation, type(error).__name__, delay
            )
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _transport_error(
        self, exc: requests.RequestException, operation: str, method: str, path: str
    ) -> HyperSDKError:
        return error_for_exception(
            exc, provider=_PROVIDER, operation=operation, method=method, path=path
        )

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

    def _sleep(self, seconds: float) -> None:
        # In slices, so a cancelled caller is not kept waiting for the whole backoff.
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))
            self._checkpoint()

    def _json(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        require: tuple[str, ...] = (),
        identifier: str | None = None,
        **kwargs: Any,
    ) -> dict[str, object]:
        reply = self._request(method, path, operation, identifier=identifier, **kwargs)
        return json_body(
            reply.content,
            provider=_PROVIDER,
            operation=operation,
            require=require,
            status=reply.status_code,
            method=method,
            path=path,
        )

    # --- discovery -----------------------------------------------------------------------

    def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        vms = self._all_machines()
        return [vm for vm in vms if filter is None or filter.matches(vm)]

    def _all_machines(self) -> list[VMInfo]:
        vms: list[VMInfo] = []
        page: int | None = 1
        while page is not None:
            body = self._json(
                "GET",
                "/machines",
                "list_vms",
                require=("machines",),
                params={"page": page, "per_page": self.page_request_size},
            )
            machines = body["machines"]
            if not isinstance(machines, list):
                raise self._shape_error("list_vms", "machines must be a list")
            vms.extend(self._to_vm(raw, "list_vms") for raw in machines)
            page = self._next_page(page, body)
        return vms

    def _next_page(self, current: int, body: dict[str, object]) -> int | None:
        announced = body.get("next_page")
        if announced is not None and not isinstance(announced, int):
            raise self._shape_error("list_vms", "next_page must be an integer or null")
        return announced

    def get_vm(self, identifier: str) -> VMInfo:
        body = self._json(
            "GET", f"/machines/{identifier}", "get_vm", require=("machine",), identifier=identifier
        )
        return self._to_vm(body["machine"], "get_vm")

    def _shape_error(self, operation: str, detail: str) -> ProviderAPIError:
        return ProviderAPIError(
            f"refcloud {operation}: the API answered an unexpected shape ({detail})",
            provider=_PROVIDER,
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

    def export_vm(
        self,
        identifier: str,
        options: ExportOptions,
        *,
        progress: ProgressReporter | None = None,
    ) -> ExportResult:
        self._check_format(options)
        self._require("export_vm")
        vm = self.get_vm(identifier)
        snapshot = self._create_snapshot(vm)
        try:
            return export_disk_image_blocking(
                RequestsSource(self, f"/snapshots/{snapshot}/disk"),
                options,
                provider=self.type,
                vm_id=vm.id,
                vm_name=vm.name,
                algorithm="gzip",
                progress=progress,
                retry=self._download_retry(),
            )
        finally:
            self._delete_snapshot(snapshot)

    def _download_retry(self) -> RetryPolicy:
        return RetryPolicy(attempts=4, wait_initial=0.01, wait_max=0.1, wait_jitter=0.0)

    def _check_format(self, options: ExportOptions) -> None:
        if not PLUGIN_INFO.capabilities.supports_format(options.format):
            raise UnsupportedFormatError(
                f"refcloud export_vm: format {options.format!r} is not supported; "
                f"use one of {', '.join(PLUGIN_INFO.capabilities.supported_formats)}",
                provider=_PROVIDER,
                operation="export_vm",
            )

    def _create_snapshot(self, vm: VMInfo) -> str:
        body = self._json(
            "POST", f"/machines/{vm.id}/snapshots", "export_vm", require=("snapshot",)
        )
        snapshot = body["snapshot"]
        if not isinstance(snapshot, dict) or not isinstance(snapshot.get("id"), str):
            raise self._shape_error("export_vm", "snapshot.id must be a string")
        return str(snapshot["id"])

    def _delete_snapshot(self, snapshot: str) -> None:
        try:
            self._request("DELETE", f"/snapshots/{snapshot}", "export_vm", cleanup=True)
        except HyperSDKError as exc:
            self._log.warning("refcloud: could not delete temporary snapshot %s: %s", snapshot, exc)


def new_provider(config: ProviderConfig, logger: logging.Logger) -> BlockingProvider:
    """The plugin factory (the module contract's ``new_provider``)."""
    return RequestsRefcloud(config, logger)
