"""Deliberately broken refcloud providers, each with the one bug a contract check must catch.

Every variant subclasses the reference provider and overrides one seam. ``VARIANTS`` maps
the variant's name to the check ID that must fail for it; ``conformance_class(name)``
builds the conformance class a pytester run collects.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import time
import types
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.lowlevel
import attrs
import httpx
import requests

from hypersdk import (
    AuthenticationError,
    ConfigurationError,
    ExportCapabilities,
    ExportOptions,
    ExportResult,
    HyperSDKError,
    PluginMetadata,
    ProviderAPIError,
    ProviderType,
    RateLimitError,
    Secret,
    VMFilter,
    VMInfo,
    VMNotFoundError,
    error_for_exception,
)
from tests.conformance import blocking_provider, reference_provider, requests_provider
from tests.conformance.blocking_provider import BlockingRefcloud
from tests.conformance.reference_provider import RefcloudProvider
from tests.conformance.reference_suite import RefcloudConformance, RequestsRefcloudConformance
from tests.conformance.requests_provider import RequestsRefcloud

if TYPE_CHECKING:
    import logging
    from collections.abc import Mapping

    from hypersdk import BlockingProvider, Provider, ProviderConfig


class DropsLastPage(RefcloudProvider):
    """Computes the page count with an off-by-one and never fetches the last page."""

    def _next_page(self, current: int, body: Mapping[str, object]) -> int | None:
        total, machines = body.get("total"), body.get("machines")
        if not isinstance(total, int) or not isinstance(machines, list) or not machines:
            return None
        pages = -(-total // len(machines))
        return current + 1 if current + 1 < pages else None


class IgnoresFilter(RefcloudProvider):
    """Returns every VM whatever the filter says."""

    async def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        return await self._all_machines()


class Swallows404(RefcloudProvider):
    """Turns "not found" into None."""

    async def get_vm(self, identifier: str) -> VMInfo:
        try:
            return await super().get_vm(identifier)
        except VMNotFoundError:
            return None  # type: ignore[return-value]


class LeaksTokenInLog(RefcloudProvider):
    """Logs the headers it sends, bearer token included."""

    def _make_client(self, config: ProviderConfig, token: Secret) -> httpx.AsyncClient:
        self._log.debug("connecting with Authorization: Bearer %s", token.reveal())
        return super()._make_client(config, token)


class LeavesPartFile(RefcloudProvider):
    """Forgets to delete the partial download when the export fails or is cancelled."""

    def _discard(self, part: Path) -> None:
        pass


class Retries429Forever(RefcloudProvider):
    """Honours Retry-After, but never stops retrying."""

    max_attempts = 10**9

    def _retry_delay(self, error: HyperSDKError, attempt: int, *, idempotent: bool) -> float | None:
        if isinstance(error, RateLimitError):
            return error.retry_after or 0.01
        return super()._retry_delay(error, attempt, idempotent=idempotent)


class NaiveDatetimes(RefcloudProvider):
    """Parses timestamps and drops their UTC offset."""

    def _parse_time(self, value: object) -> datetime | None:
        parsed = super()._parse_time(value)
        return parsed.replace(tzinfo=None) if parsed is not None else None


class WritesOutsideOutputPath(RefcloudProvider):
    """Names the file after the raw VM name (only stripping a leading slash)."""

    def _file_name(self, vm: VMInfo) -> str:
        return f"{vm.name.lstrip('/')}-{vm.id}"

    async def _download(self, snapshot: str, part: Path, reporter: Any) -> int:
        part.parent.mkdir(parents=True, exist_ok=True)
        return await super()._download(snapshot, part, reporter)


class WrongType(RefcloudProvider):
    """Reports a type other than PLUGIN_INFO.provider_type."""

    @property
    def type(self) -> ProviderType:
        return ProviderType("refcloud-v2")


class EmptyName(RefcloudProvider):
    """Has no display name."""

    @property
    def name(self) -> str:
        return " "


class ClaimsMoreThanInfo(RefcloudProvider):
    """Answers capabilities that differ from PLUGIN_INFO's."""

    def get_export_capabilities(self) -> ExportCapabilities:
        return attrs.evolve(super().get_export_capabilities(), supported_formats=("raw", "qcow2"))


class NoConfigCheck(RefcloudProvider):
    """Connects without a token and lets the API say no."""

    def _token(self, config: ProviderConfig) -> Secret:
        return config.password or Secret("none")


class RawJSONErrors(RefcloudProvider):
    """Parses bodies with response.json() and indexes them blindly."""

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
        body: dict[str, object] = response.json()
        for key in require:
            body[key]
        return body


class NoConnectGuard(RefcloudProvider):
    """Uses the client without checking that connect() ran."""

    def _require(self, operation: str) -> httpx.AsyncClient:
        return self._client  # type: ignore[return-value]


class LeaksClient(RefcloudProvider):
    """Forgets the client on disconnect without closing it."""

    async def disconnect(self) -> None:
        self._client = None


class TimeoutsAsAPIErrors(RefcloudProvider):
    """Reports a timeout as a bad answer, so nobody retries it."""

    def _transport_error(self, exc: httpx.HTTPError, operation: str) -> HyperSDKError:
        return ProviderAPIError(f"refcloud {operation}: request failed ({type(exc).__name__})")


class RawTransportErrors(RefcloudProvider):
    """Lets httpx's own exceptions out."""

    def _transport_error(self, exc: httpx.HTTPError, operation: str) -> HyperSDKError:
        raise exc


class RequiresRegion(RefcloudProvider):
    """Refuses to connect without a region the API never needed."""

    async def connect(self, config: ProviderConfig) -> None:
        if not config.region:
            raise ConfigurationError("refcloud connect: ProviderConfig.region is required")
        await super().connect(config)


class IgnoresRetryAfter(RefcloudProvider):
    """Retries a 429 after its own short backoff, not after Retry-After."""

    def _retry_delay(self, error: HyperSDKError, attempt: int, *, idempotent: bool) -> float | None:
        if isinstance(error, RateLimitError) and attempt < self.max_attempts:
            return 0.01
        return super()._retry_delay(error, attempt, idempotent=idempotent)


class No5xxRetry(RefcloudProvider):
    """Gives up on the first 5xx."""

    def _retry_delay(self, error: HyperSDKError, attempt: int, *, idempotent: bool) -> float | None:
        if isinstance(error, RateLimitError):
            return super()._retry_delay(error, attempt, idempotent=idempotent)
        return None


class NoTimeout(RefcloudProvider):
    """Builds its client with timeout=None."""

    def _make_client(self, config: ProviderConfig, token: Secret) -> httpx.AsyncClient:
        client = super()._make_client(config, token)
        client.timeout = httpx.Timeout(None)
        return client


class TokenInURL(RefcloudProvider):
    """Sends the token as a query parameter as well."""

    def _make_client(self, config: ProviderConfig, token: Secret) -> httpx.AsyncClient:
        client = super()._make_client(config, token)
        client.params = client.params.set("access_token", token.reveal())
        return client


class ProgressStopsAt99(RefcloudProvider):
    """Never reports 100."""

    def _finish(self, reporter: Any, filename: str) -> None:
        reporter.update("done", 99, f"wrote {filename}")


class NeverChecksFormat(RefcloudProvider):
    """Exports whatever format is asked for, as raw, after making a snapshot."""

    def _check_format(self, options: Any) -> None:
        pass


class SnapshotLeftOnCancel(RefcloudProvider):
    """Deletes its temporary snapshot without shielding the call from cancellation."""

    async def _delete_snapshot(self, snapshot: str) -> None:
        await self._request("DELETE", f"/snapshots/{snapshot}", operation="export_vm")


class NoResume(RefcloudProvider):
    """Treats a dropped download as fatal."""

    async def _download(self, snapshot: str, part: Path, reporter: Any) -> int:
        self.max_attempts = 1
        return await super()._download(snapshot, part, reporter)


class BlockingSleep(RefcloudProvider):
    """Backs off with time.sleep, freezing the event loop and every deadline with it."""

    backoff = 0.4

    async def _sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class SharedPaginationState(RefcloudProvider):
    """Accumulates pages in an attribute shared by concurrent calls."""

    async def _all_machines(self) -> list[VMInfo]:
        self._acc: list[VMInfo] = []
        page: int | None = 1
        while page is not None:
            body = await self._json(
                "GET",
                "/machines",
                operation="list_vms",
                require=("machines",),
                params={"page": page, "per_page": 100},
            )
            self._acc.extend(self._to_vm(raw, "list_vms") for raw in body["machines"])  # type: ignore[attr-defined]
            await anyio.lowlevel.checkpoint()
            page = self._next_page(page, body)
        return list(self._acc)


class CaseSensitiveSearch(RefcloudProvider):
    """Searches names only, case-sensitively."""

    async def search_vms(self, query: str) -> list[VMInfo]:
        return [
            vm for vm in await self.list_vms() if all(term in vm.name for term in query.split())
        ]


class WrongProviderField(RefcloudProvider):
    """Fills VMInfo.provider with a display name."""

    def _to_vm(self, raw: object, operation: str) -> VMInfo:
        return attrs.evolve(super()._to_vm(raw, operation), provider="RefCloud")


class BadTokenAsAPIError(RefcloudProvider):
    """Reports a rejected token as a generic API error."""

    async def validate_credentials(self) -> None:
        try:
            await super().validate_credentials()
        except AuthenticationError as exc:
            raise ProviderAPIError(f"refcloud: account check failed: {exc}") from None


class TokenInErrorMessage(RefcloudProvider):
    """Puts the rejected token into the error message."""

    async def validate_credentials(self) -> None:
        try:
            await super().validate_credentials()
        except AuthenticationError:
            token = self._config.password.reveal() if self._config.password else ""
            raise AuthenticationError(f"refcloud rejected token {token}") from None


class TokenInRateLimitError(RefcloudProvider):
    """Says which credential was throttled: the token goes into the RateLimitError."""

    async def _request(
        self, method: str, path: str, *, operation: str, identifier: str | None = None, **kw: Any
    ) -> httpx.Response:
        try:
            return await super()._request(
                method, path, operation=operation, identifier=identifier, **kw
            )
        except RateLimitError as exc:
            token = self._config.password.reveal() if self._config.password else ""
            raise RateLimitError(
                f"refcloud {operation}: throttled for token {token}", retry_after=exc.retry_after
            ) from None


class TokenInExportError(RefcloudProvider):
    """Explains a failed disk download with the request's headers, token included."""

    async def _download(self, snapshot: str, part: Path, reporter: Any) -> int:
        try:
            return await super()._download(snapshot, part, reporter)
        except HyperSDKError as exc:
            token = self._config.password.reveal() if self._config.password else ""
            raise type(exc)(
                f"{exc} (GET /snapshots/{snapshot}/disk, Authorization: Bearer {token})"
            ) from None


class ProgressRestartsOnRetry(RefcloudProvider):
    """Restarts a dropped download from byte 0, and reports its progress from 0 again."""

    async def _download(self, snapshot: str, part: Path, reporter: Any) -> int:
        raw = reporter._reporter  # the caller's reporter, past the clamp
        client = self._require("export_vm")
        for attempt in range(1, self.max_attempts + 1):
            received = 0
            try:
                with part.open("wb") as sink:
                    async with client.stream("GET", f"/snapshots/{snapshot}/disk") as response:
                        response.raise_for_status()
                        total = int(response.headers.get("Content-Length", "0"))
                        async for chunk in response.aiter_bytes():
                            sink.write(chunk)
                            received += len(chunk)
                            if raw is not None:
                                raw.update("downloading", 5 + 90 * received / max(total, 1), "")
                return received
            except httpx.TransportError as exc:
                if attempt == self.max_attempts:
                    raise error_for_exception(
                        exc, provider="refcloud", operation="export_vm"
                    ) from None
        raise AssertionError("unreachable")


class ProgressFloorChunkCount(RefcloudProvider):
    """Counts 64 KiB reads against total // 65536 chunks: past 100 on the last, short one."""

    async def _download(self, snapshot: str, part: Path, reporter: Any) -> int:
        raw = reporter._reporter  # the caller's reporter, past the clamp
        client = self._require("export_vm")
        received = reads = 0
        with part.open("wb") as sink:
            async with client.stream("GET", f"/snapshots/{snapshot}/disk") as response:
                expected = max(int(response.headers.get("Content-Length", "0")) // 65536, 1)
                async for chunk in response.aiter_bytes(65536):
                    sink.write(chunk)
                    received += len(chunk)
                    reads += 1
                    if raw is not None:
                        raw.update("downloading", max(5.0, 100 * reads / expected), "")
        return received


class LeavesPartOnFailure(RefcloudProvider):
    """Removes the partial file when cancelled, but keeps it when the download fails."""

    def _discard(self, part: Path) -> None:
        if not isinstance(sys.exc_info()[1], HyperSDKError):
            super()._discard(part)


class TempFileLeftBehind(RefcloudProvider):
    """Stages the download in the system temp dir and moves it only when it completes."""

    async def _download(self, snapshot: str, part: Path, reporter: Any) -> int:
        handle, staging = tempfile.mkstemp(suffix=".raw")
        os.close(handle)
        received = await super()._download(snapshot, Path(staging), reporter)
        shutil.move(staging, part)
        return received


class ExportLeaksClient(RefcloudProvider):
    """Downloads the disk with a client of its own, and never closes it."""

    async def _download(self, snapshot: str, part: Path, reporter: Any) -> int:
        main = self._client
        self._client = self._make_client(self._config, self._token(self._config))
        try:
            return await super()._download(snapshot, part, reporter)
        finally:
            self._client = main


class ResultPathIsTheFile(RefcloudProvider):
    """Reports the main file's path as output_path, not the directory it was asked for."""

    async def export_vm(self, identifier: str, options: Any, *, progress: Any = None) -> Any:
        result = await super().export_vm(identifier, options, progress=progress)
        main = result.output_path / result.files[0]
        return attrs.evolve(result, output_path=main)


class GetWrapsOutages(RefcloudProvider):
    """Wraps whatever goes wrong in get_vm (but "not found") in a generic ProviderAPIError."""

    async def get_vm(self, identifier: str) -> VMInfo:
        try:
            return await super().get_vm(identifier)
        except VMNotFoundError:
            raise
        except HyperSDKError as exc:
            raise ProviderAPIError(f"refcloud get_vm({identifier!r}) failed: {exc}") from None


class FakeCompression(RefcloudProvider):
    """Names the file .gz but writes it uncompressed."""

    def _compress(self, part: Path, level: int) -> None:
        pass


class CallsUnmockedHost(RefcloudProvider):
    """Also fetches regions from the production host, whatever the endpoint says."""

    async def validate_credentials(self) -> None:
        await super().validate_credentials()
        client = self._require("validate_credentials")
        with contextlib.suppress(httpx.HTTPError):
            await client.get("https://api.refcloud.example/v1/regions")


class GetDropsAddresses(RefcloudProvider):
    """Maps the single-VM endpoint with its own (incomplete) code."""

    async def get_vm(self, identifier: str) -> VMInfo:
        return attrs.evolve(await super().get_vm(identifier), ip_addresses=())


class ResumesFromStaleCursor(RefcloudProvider):
    """Keeps the page cursor between listings, so the second listing starts at the end."""

    _cursor = 1

    async def _all_machines(self) -> list[VMInfo]:
        vms: list[VMInfo] = []
        page: int | None = self._cursor
        while page is not None:
            body = await self._json(
                "GET",
                "/machines",
                operation="list_vms",
                require=("machines",),
                params={"page": page, "per_page": 100},
            )
            vms.extend(self._to_vm(raw, "list_vms") for raw in body["machines"])  # type: ignore[attr-defined]
            self._cursor = page
            page = self._next_page(page, body)
        self._cursor += 1
        return vms


class ChecksumOfWrongBytes(RefcloudProvider):
    """Hashes the file name instead of its contents."""

    async def export_vm(self, identifier: str, options: Any, *, progress: Any = None) -> Any:
        result = await super().export_vm(identifier, options, progress=progress)
        return attrs.evolve(result, checksum=hashlib.sha256(result.files[0].encode()).hexdigest())


class BlockingIgnoresCancellation(BlockingRefcloud):
    """A BlockingProvider that never calls check_cancelled() while downloading."""

    def _checkpoint(self) -> None:
        pass


class BlockingIgnoresDeadline(BlockingRefcloud):
    """A BlockingProvider whose requests wait out their full timeout, deadline or not."""

    def _request_timeout(self) -> float:
        return self._timeout


# --- the requests reference, broken one seam at a time (one variant per area at least) ---


class RequestsWrongType(RequestsRefcloud):
    """Reports a type other than PLUGIN_INFO.provider_type."""

    @property
    def type(self) -> ProviderType:
        return ProviderType("refcloud-requests")


class RequestsLeaksSession(RequestsRefcloud):
    """Keeps its requests.Session for the next connect() instead of closing it."""

    _spare: requests.Session | None = None

    def disconnect(self) -> None:
        if self._session is not None:
            self._spare = self._session
        self._session = None


class RequestsDropsLastPage(RequestsRefcloud):
    """Stops one page early."""

    def _next_page(self, current: int, body: dict[str, object]) -> int | None:
        following = super()._next_page(current, body)
        total, machines = body.get("total"), body.get("machines")
        if following is None or not isinstance(total, int) or not isinstance(machines, list):
            return following
        return following if (following * len(machines)) < total else None


class RequestsIgnoresRetryAfter(RequestsRefcloud):
    """Retries a 429 after its own short backoff."""

    def _retry_delay(self, error: HyperSDKError, attempt: int, *, idempotent: bool) -> float | None:
        if isinstance(error, RateLimitError) and attempt < self.max_attempts:
            return 0.01
        return super()._retry_delay(error, attempt, idempotent=idempotent)


class RequestsIgnoresDeadline(RequestsRefcloud):
    """Gives every request the full config timeout, whatever deadline the caller set."""

    def _timeouts(self) -> tuple[float, float]:
        return self._timeout, self._timeout


class RequestsNoResume(RequestsRefcloud):
    """Downloads once: a dropped connection fails the export."""

    def _download_retry(self) -> Any:
        from hypersdk.export import RetryPolicy

        return RetryPolicy(attempts=1, max_resumes=0, wait_initial=0.0, wait_jitter=0.0)


class RequestsIgnoresCancellation(RequestsRefcloud):
    """Never calls check_cancelled() while downloading."""

    def _checkpoint(self) -> None:
        pass


class RequestsNoTimeout(RequestsRefcloud):
    """Sends every request with requests' default: no timeout at all."""

    def _timeouts(self) -> Any:
        return None


class RequestsCallsRealHost(RequestsRefcloud):
    """Also fetches regions from the production host, whatever the endpoint says."""

    def validate_credentials(self) -> None:
        super().validate_credentials()
        with contextlib.suppress(requests.RequestException):
            self._require("validate_credentials").get(
                "https://api.refcloud.example/v1/regions", timeout=30
            )


class AuthErrorAsAPIError(RefcloudProvider):
    """Maps a 401 on a connected session to a generic ProviderAPIError."""

    async def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        try:
            return await super().list_vms(filter)
        except AuthenticationError as exc:
            raise ProviderAPIError(f"refcloud list_vms: HTTP {exc.status}") from None


class RetriesClientErrors(RefcloudProvider):
    """Retries every API error, 400 and 422 included, as if asking again could help."""

    def _retry_delay(self, error: HyperSDKError, attempt: int, *, idempotent: bool) -> float | None:
        if type(error) is ProviderAPIError and attempt < self.max_attempts:
            return 0.01
        return super()._retry_delay(error, attempt, idempotent=idempotent)


class RetryAfterSecondsOnly(RefcloudProvider):
    """Reads Retry-After only as delay-seconds: an HTTP-date is dropped as unreadable."""

    def _make_client(self, config: ProviderConfig, token: Secret) -> httpx.AsyncClient:
        client = super()._make_client(config, token)

        async def seconds_only(response: httpx.Response) -> None:
            value = response.headers.get("retry-after")
            if value is not None:
                try:
                    float(value)
                except ValueError:
                    del response.headers["retry-after"]

        client.event_hooks["response"].append(seconds_only)
        return client


class PrefixMatchingGet(RefcloudProvider):
    """Finds a VM by listing and taking the first whose id starts with the one asked for."""

    async def get_vm(self, identifier: str) -> VMInfo:
        for vm in await self._all_machines():
            if vm.id.startswith(identifier):
                return vm
        raise VMNotFoundError(f"refcloud get_vm: no VM {identifier!r}")


class ExportWritesBeforeLookup(RefcloudProvider):
    """Opens the output file before it knows the VM exists, and leaves it on "not found"."""

    async def export_vm(
        self, identifier: str, options: ExportOptions, *, progress: Any = None
    ) -> ExportResult:
        options.output_path.mkdir(parents=True, exist_ok=True)
        (options.output_path / f"{identifier}.raw.part").write_bytes(b"")
        return await super().export_vm(identifier, options, progress=progress)


class _OwnFilter(RefcloudProvider):
    """Filters with its own ``_matches`` (each subclass gets one rule of it wrong)."""

    async def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        vms = await self._all_machines()
        return [vm for vm in vms if filter is None or self._matches(filter, vm)]

    def _matches(self, f: VMFilter, vm: VMInfo) -> bool:
        return f.matches(vm)


class CaseSensitiveStateFilter(_OwnFilter):
    """Compares state and location exactly, so "RUNNING" finds no running VM."""

    def _matches(self, f: VMFilter, vm: VMInfo) -> bool:
        if (f.state and f.state != vm.state) or (f.location and f.location != vm.location):
            return False
        return attrs.evolve(f, state="", location="").matches(vm)


class AnyTagFilter(_OwnFilter):
    """Accepts a VM that carries any one of the filter's tags."""

    def _matches(self, f: VMFilter, vm: VMInfo) -> bool:
        if f.tags and not any(vm.tags.get(key) == value for key, value in f.tags.items()):
            return False
        return attrs.evolve(f, tags={}).matches(vm)


class TagKeyOnlyFilter(_OwnFilter):
    """Checks that the tag key exists and ignores its value."""

    def _matches(self, f: VMFilter, vm: VMInfo) -> bool:
        if any(key not in vm.tags for key in f.tags):
            return False
        return attrs.evolve(f, tags={}).matches(vm)


class EmptyTagValueMeansAny(_OwnFilter):
    """Reads a filter tag with an empty value as "this key, any value"."""

    def _matches(self, f: VMFilter, vm: VMInfo) -> bool:
        for key, value in f.tags.items():
            if key not in vm.tags or (value and vm.tags[key] != value):
                return False
        return attrs.evolve(f, tags={}).matches(vm)


class CaseInsensitiveTagValues(_OwnFilter):
    """Compares tag values ignoring case."""

    def _matches(self, f: VMFilter, vm: VMInfo) -> bool:
        for key, value in f.tags.items():
            if vm.tags.get(key, "\x00").casefold() != value.casefold():
                return False
        return attrs.evolve(f, tags={}).matches(vm)


class SubstringGlob(_OwnFilter):
    """Matches the name glob anywhere in the name (re.search semantics), not anchored."""

    def _matches(self, f: VMFilter, vm: VMInfo) -> bool:
        import fnmatch

        pattern = f.name_pattern.casefold()
        if pattern and not fnmatch.fnmatchcase(vm.name.casefold(), f"*{pattern}*"):
            return False
        return attrs.evolve(f, name_pattern="").matches(vm)


class AnyTermSearch(RefcloudProvider):
    """Returns VMs matching any term of the query instead of every term."""

    async def search_vms(self, query: str) -> list[VMInfo]:
        from hypersdk import search_matches

        terms = query.split()
        vms = await self.list_vms()
        if not terms:
            return vms
        return [vm for vm in vms if any(search_matches(vm, term) for term in terms)]


class MetadataTokenRefcloud(RefcloudProvider):
    """A correct provider reading its token from metadata["token"], as the README's does."""

    def _token(self, config: ProviderConfig) -> Secret:
        token = config.secret("token")
        if token is None:
            raise ConfigurationError("refcloud connect: metadata['token'] is required")
        return token


ProviderClass = type[RefcloudProvider] | type[BlockingRefcloud] | type[RequestsRefcloud]

VARIANTS: dict[str, tuple[ProviderClass, str]] = {
    "drops_last_page": (DropsLastPage, "LIST-COMPLETE"),
    "naive_datetimes": (NaiveDatetimes, "LIST-COMPLETE"),
    "resumes_from_stale_cursor": (ResumesFromStaleCursor, "LIST-STABLE"),
    "wrong_provider_field": (WrongProviderField, "LIST-PROVIDER-TYPE"),
    "ignores_filter": (IgnoresFilter, "LIST-FILTER"),
    "case_sensitive_state_filter": (CaseSensitiveStateFilter, "LIST-FILTER"),
    "any_tag_filter": (AnyTagFilter, "LIST-FILTER"),
    "tag_key_only_filter": (TagKeyOnlyFilter, "LIST-FILTER"),
    "empty_tag_value_means_any": (EmptyTagValueMeansAny, "LIST-FILTER"),
    "case_insensitive_tag_values": (CaseInsensitiveTagValues, "LIST-FILTER"),
    "substring_glob": (SubstringGlob, "LIST-FILTER"),
    "get_drops_addresses": (GetDropsAddresses, "GET-AGREES"),
    "swallows_404": (Swallows404, "GET-NOT-FOUND"),
    "prefix_matching_get": (PrefixMatchingGet, "GET-NOT-FOUND"),
    "export_writes_before_lookup": (ExportWritesBeforeLookup, "GET-NOT-FOUND"),
    "case_sensitive_search": (CaseSensitiveSearch, "SEARCH-SEMANTICS"),
    "any_term_search": (AnyTermSearch, "SEARCH-SEMANTICS"),
    "empty_name": (EmptyName, "IDENTITY-NAME"),
    "wrong_type": (WrongType, "IDENTITY-TYPE"),
    "claims_more_than_info": (ClaimsMoreThanInfo, "IDENTITY-CAPABILITIES"),
    "requires_region": (RequiresRegion, "LIFECYCLE-CONNECT"),
    "no_config_check": (NoConfigCheck, "LIFECYCLE-MISSING-CONFIG"),
    "bad_token_as_api_error": (BadTokenAsAPIError, "LIFECYCLE-BAD-TOKEN"),
    "no_connect_guard": (NoConnectGuard, "LIFECYCLE-NOT-CONNECTED"),
    "leaks_client": (LeaksClient, "LIFECYCLE-DISCONNECT"),
    "ignores_retry_after": (IgnoresRetryAfter, "FAULT-RATE-LIMIT"),
    "retries_429_forever": (Retries429Forever, "FAULT-RATE-LIMIT-BUDGET"),
    "no_5xx_retry": (No5xxRetry, "FAULT-TRANSIENT"),
    "timeouts_as_api_errors": (TimeoutsAsAPIErrors, "FAULT-UNAVAILABLE"),
    "get_wraps_outages": (GetWrapsOutages, "FAULT-UNAVAILABLE"),
    "raw_json_errors": (RawJSONErrors, "FAULT-BAD-BODY"),
    "raw_transport_errors": (RawTransportErrors, "FAULT-ERROR-TYPES"),
    "auth_error_as_api_error": (AuthErrorAsAPIError, "FAULT-ERROR-TYPES"),
    "retries_client_errors": (RetriesClientErrors, "FAULT-ERROR-TYPES"),
    "retry_after_seconds_only": (RetryAfterSecondsOnly, "FAULT-RATE-LIMIT-BUDGET"),
    "blocking_sleep": (BlockingSleep, "FAULT-DEADLINE"),
    "checksum_of_wrong_bytes": (ChecksumOfWrongBytes, "EXPORT-RESULT"),
    "never_checks_format": (NeverChecksFormat, "EXPORT-UNSUPPORTED"),
    "writes_outside_output_path": (WritesOutsideOutputPath, "EXPORT-CONFINED"),
    "progress_stops_at_99": (ProgressStopsAt99, "EXPORT-PROGRESS"),
    "leaves_part_file": (LeavesPartFile, "EXPORT-CANCEL"),
    "snapshot_left_on_cancel": (SnapshotLeftOnCancel, "EXPORT-CANCEL"),
    "no_resume": (NoResume, "EXPORT-RESUME"),
    "fake_compression": (FakeCompression, "EXPORT-COMPRESSION"),
    "progress_restarts_on_retry": (ProgressRestartsOnRetry, "EXPORT-PROGRESS"),
    "progress_floor_chunk_count": (ProgressFloorChunkCount, "EXPORT-PROGRESS"),
    "leaves_part_on_failure": (LeavesPartOnFailure, "EXPORT-CANCEL"),
    "temp_file_left_behind": (TempFileLeftBehind, "EXPORT-CANCEL"),
    "export_leaks_client": (ExportLeaksClient, "LIFECYCLE-DISCONNECT"),
    "result_path_is_the_file": (ResultPathIsTheFile, "EXPORT-RESULT"),
    "leaks_token_in_log": (LeaksTokenInLog, "SECRET-LOGS"),
    "token_in_error_message": (TokenInErrorMessage, "SECRET-REPR"),
    "token_in_url": (TokenInURL, "SECRET-URL"),
    "token_in_rate_limit_error": (TokenInRateLimitError, "SECRET-REPR"),
    "token_in_export_error": (TokenInExportError, "SECRET-REPR"),
    "calls_unmocked_host": (CallsUnmockedHost, "HTTP-MOCKED"),
    "no_timeout": (NoTimeout, "HTTP-TIMEOUTS"),
    "shared_pagination_state": (SharedPaginationState, "CONCURRENT-CALLS"),
    "blocking_ignores_cancellation": (BlockingIgnoresCancellation, "EXPORT-CANCEL"),
    "blocking_ignores_deadline": (BlockingIgnoresDeadline, "FAULT-DEADLINE"),
    "requests_wrong_type": (RequestsWrongType, "IDENTITY-TYPE"),
    "requests_leaks_session": (RequestsLeaksSession, "LIFECYCLE-DISCONNECT"),
    "requests_drops_last_page": (RequestsDropsLastPage, "LIST-COMPLETE"),
    "requests_ignores_retry_after": (RequestsIgnoresRetryAfter, "FAULT-RATE-LIMIT"),
    "requests_ignores_deadline": (RequestsIgnoresDeadline, "FAULT-DEADLINE"),
    "requests_no_resume": (RequestsNoResume, "EXPORT-RESUME"),
    "requests_ignores_cancellation": (RequestsIgnoresCancellation, "EXPORT-CANCEL"),
    "requests_no_timeout": (RequestsNoTimeout, "HTTP-TIMEOUTS"),
    "requests_calls_real_host": (RequestsCallsRealHost, "HTTP-MOCKED"),
}
"""Variant name -> (provider class, the check ID that must fail for it)."""


def plugin_module(
    name: str,
    provider: ProviderClass = RefcloudProvider,
    info: PluginMetadata | None = None,
) -> types.ModuleType:
    """A plugin module (PLUGIN_INFO + new_provider) whose provider is ``provider``."""
    module = types.ModuleType(f"refcloud_variant_{name}")

    def new_provider(config: ProviderConfig, logger: logging.Logger) -> Provider | BlockingProvider:
        return provider(config, logger)

    if info is None:
        if issubclass(provider, RequestsRefcloud):
            info = requests_provider.PLUGIN_INFO
        elif issubclass(provider, BlockingRefcloud):
            info = blocking_provider.PLUGIN_INFO
        else:
            info = reference_provider.PLUGIN_INFO
    module.PLUGIN_INFO = info  # type: ignore[attr-defined]
    module.new_provider = new_provider  # type: ignore[attr-defined]
    return module


def conformance_class(name: str, **knobs: Any) -> type[RefcloudConformance]:
    """The conformance class of variant ``name`` (``"reference"`` for the reference).

    ``knobs`` become class attributes; ``info=`` replaces the plugin's PLUGIN_INFO.
    """
    info = knobs.pop("info", None)
    if name == "reference" and info is None:
        module = reference_provider
    else:
        provider = RefcloudProvider if name == "reference" else VARIANTS[name][0]
        module = plugin_module(name, provider, info)
    attributes: dict[str, Any] = {"plugin": module, **knobs}
    over_socket = name != "reference" and issubclass(VARIANTS[name][0], RequestsRefcloud)
    base = RequestsRefcloudConformance if over_socket else RefcloudConformance
    return type(f"Test_{name}", (base,), attributes)
