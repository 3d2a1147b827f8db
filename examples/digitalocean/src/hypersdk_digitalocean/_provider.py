"""``DigitalOceanProvider``: droplets through the hypersdk :class:`~hypersdk.Provider` API."""

from __future__ import annotations

import logging
import math
import re
from typing import TYPE_CHECKING, Final

import anyio
import attrs

from hypersdk import (
    ConfigurationError,
    ExportCapabilities,
    ExportOptions,
    ExportResult,
    HyperSDKError,
    NotConnectedError,
    Provider,
    ProviderAPIError,
    ProviderConfig,
    ProviderType,
    UnsupportedFormatError,
    VMFilter,
    VMInfo,
    VMNotFoundError,
    search_matches,
)
from hypersdk_digitalocean._client import PROVIDER, Api
from hypersdk_digitalocean._mapping import (
    PROVIDER_TYPE,
    Droplet,
    Mapper,
    TagMatcher,
    droplet_to_vm,
    is_tag_name,
    tag_for,
)
from hypersdk_digitalocean._settings import Settings, parse_bool, settings_from_config

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import httpx

    from hypersdk import ProgressReporter

__all__ = ["CAPABILITIES", "DigitalOceanProvider", "EXPORT_FORMAT"]

EXPORT_FORMAT: Final = "snapshot"

CAPABILITIES: Final = ExportCapabilities(
    # DigitalOcean cannot download a snapshot as a disk image: the export is a
    # provider-side snapshot plus a local JSON manifest that references it.
    supported_formats=(EXPORT_FORMAT,),
    supports_compression=False,
    supports_streaming=False,
    supports_snapshots=True,
    max_vm_size_gb=0,
    supported_targets=("local",),
)

_DROPLET_ID: Final = re.compile(r"[0-9]{1,19}")
_GLOB_CHARS: Final = frozenset("*?[")


@attrs.frozen(kw_only=True)
class _ExportPlan:
    """The export options of ``ExportOptions.metadata``, validated before any request."""

    shutdown: bool = False
    shutdown_timeout: float = 120.0
    power_on_after: bool = True
    snapshot_name: str = ""
    snapshot_timeout: float = 3600.0

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> _ExportPlan:
        where = "ExportOptions.metadata"

        def seconds(key: str, default: float) -> float:
            raw = metadata.get(key, "")
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value <= 0:
                raise ConfigurationError(
                    f"{where}[{key!r}] must be a positive number of seconds, got {raw!r}"
                )
            return value

        return cls(
            shutdown=parse_bool(metadata.get("shutdown", "false"), key="shutdown", where=where),
            shutdown_timeout=seconds("shutdown_timeout", 120.0),
            power_on_after=parse_bool(
                metadata.get("power_on_after", "true"), key="power_on_after", where=where
            ),
            snapshot_name=metadata.get("snapshot_name", "").strip(),
            snapshot_timeout=seconds("snapshot_timeout", 3600.0),
        )


class DigitalOceanProvider(Provider):
    """DigitalOcean droplets as hypersdk VMs.

    >>> async def main() -> None:
    ...     config = ProviderConfig(type="digitalocean", metadata={"token": "dop_v1_..."})
    ...     async with DigitalOceanProvider() as provider:
    ...         await provider.connect(config)
    ...         web = await provider.list_vms(VMFilter(tags={"env": "prod"}))

    Settings come from :class:`~hypersdk.ProviderConfig` (see the README): the token in
    ``metadata["token"]`` or ``password``, ``endpoint`` to aim elsewhere, ``timeout`` in
    seconds (default 30), and tuning keys in ``metadata`` such as ``max_concurrency``.
    """

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._logger = logger or logging.getLogger("hypersdk_digitalocean")
        self._transport = transport  # for tests and proxies; None means real network
        self._api: Api | None = None

    @property
    def name(self) -> str:
        return "DigitalOcean"

    @property
    def type(self) -> ProviderType:
        return PROVIDER_TYPE

    def __repr__(self) -> str:
        where = self._api.settings.base_url if self._api is not None else "not connected"
        return f"DigitalOceanProvider({where})"

    # -- lifecycle ---------------------------------------------------------------------

    async def connect(self, config: ProviderConfig) -> None:
        """Validate ``config``, open the HTTP client and check the token (``GET /v2/account``)."""
        settings: Settings = settings_from_config(config)
        await self.disconnect()
        api = Api(settings, self._logger, transport=self._transport)
        try:
            await self._check_account(api, "connect")
        except BaseException:
            with anyio.CancelScope(shield=True):
                await api.aclose()
            raise
        self._api = api
        self._logger.info("digitalocean: connected to %s", settings.base_url)

    async def disconnect(self) -> None:
        """Close the HTTP client. Idempotent."""
        api, self._api = self._api, None
        if api is not None:
            with anyio.CancelScope(shield=True):
                await api.aclose()

    async def validate_credentials(self) -> None:
        """``GET /v2/account``; a rejected token raises AuthenticationError with the API's text."""
        await self._check_account(self._require_api("validate_credentials"), "validate_credentials")

    async def _check_account(self, api: Api, operation: str) -> None:
        body = await api.get("/account", operation=operation, require=("account",))
        account = body["account"]
        status = account.get("status") if isinstance(account, dict) else None
        if status not in (None, "active"):
            self._logger.warning(
                "digitalocean %s: the account's status is %r; some calls may fail",
                operation,
                status,
            )

    def _require_api(self, operation: str) -> Api:
        if self._api is None:
            raise NotConnectedError(
                f"digitalocean {operation}: not connected; call connect(config) first",
                provider=PROVIDER,
                operation=operation,
            )
        return self._api

    # -- discovery ---------------------------------------------------------------------

    async def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        """Every droplet that ``filter`` matches, in the API's order (GPU droplets last).

        An exact name (a pattern without ``*?[``) is sent as ``name``, or else a filter
        with exactly one tag as ``tag_name``; everything is checked locally with
        :func:`~hypersdk_digitalocean.matches_filter`: :meth:`VMFilter.matches`, except
        that a tag pair holds when the droplet carries the tag it names (``{"k8s":
        "worker"}`` or ``{"k8s:worker": ""}`` for the tag ``k8s:worker``), as ``tag_name``.
        """
        api = self._require_api("list_vms")
        wanted = filter or VMFilter()
        match = TagMatcher(wanted)
        to_vm = Mapper()

        def convert(droplets: list[Droplet]) -> list[VMInfo]:
            if wanted.is_empty:
                return list(map(to_vm, droplets))
            # The raw tags are checked first: a droplet without them is never mapped.
            kept = [droplet for droplet in droplets if match.raw_tags(droplet)]
            return [vm for vm in map(to_vm, kept) if match(vm)]

        params = _pushdown(wanted)
        listings: list[dict[str, str]] = [params]
        if api.settings.include_gpus:
            # GPU droplets are listed only with type=gpus, which cannot be combined with
            # tag_name (nor, we assume, name): list them all and filter locally.
            listings.append({"type": "gpus"})
        limiter = anyio.CapacityLimiter(api.settings.max_concurrency)
        results: list[list[VMInfo]] = [[] for _ in listings]
        failures: list[tuple[int, HyperSDKError]] = []
        # The first page goes alone: it tells the total and meets a 429 or a bad token
        # before anything else is sent. Everything else then runs concurrently.
        first_page_in = anyio.Event()

        async def run(index: int, query: dict[str, str], scope: anyio.CancelScope) -> None:
            if index:
                await first_page_in.wait()
            try:
                results[index] = await api.list_droplets(
                    query,
                    operation="list_vms",
                    limiter=limiter,
                    convert=convert,
                    on_first_page=first_page_in.set if index == 0 else None,
                )
            except HyperSDKError as exc:
                failures.append((index, exc))
                scope.cancel()

        async with anyio.create_task_group() as group:
            for index, query in enumerate(listings):
                group.start_soon(run, index, query, group.cancel_scope)
        if failures:
            raise min(failures, key=lambda failure: failure[0])[1]
        # A droplet can appear twice when the list shifts between page requests.
        seen: set[str] = set()
        vms: list[VMInfo] = []
        for vm in (vm for listing in results for vm in listing):
            if vm.id not in seen:
                seen.add(vm.id)
                vms.append(vm)
        return vms

    async def get_vm(self, identifier: str) -> VMInfo:
        """``GET /v2/droplets/{id}``; a non-numeric id is not found, without a request."""
        api = self._require_api("get_vm")
        return droplet_to_vm(await _get_droplet(api, identifier, "get_vm"))

    async def search_vms(self, query: str) -> list[VMInfo]:
        """The droplets :func:`~hypersdk.search_matches` accepts (the API has no search)."""
        return [vm for vm in await self.list_vms() if search_matches(vm, query)]

    # -- export ------------------------------------------------------------------------

    def get_export_capabilities(self) -> ExportCapabilities:
        """Format ``snapshot`` only: a DigitalOcean snapshot plus a local JSON manifest."""
        return CAPABILITIES

    async def export_vm(
        self,
        identifier: str,
        options: ExportOptions,
        *,
        progress: ProgressReporter | None = None,
    ) -> ExportResult:
        """Snapshot the droplet and write a JSON manifest of it into ``options.output_path``.

        DigitalOcean cannot download snapshots, so this is the honest export: optionally
        shut the droplet down (``metadata["shutdown"] = "true"``; ``power_off`` when a
        graceful shutdown fails or exceeds ``shutdown_timeout``; powered on again after
        unless ``power_on_after = "false"``), take a ``snapshot`` action and poll it to
        completion, find the snapshot by name, and write the manifest (droplet spec,
        snapshot reference, the request that recreates the droplet) as the exported file.

        Raises:
            UnsupportedFormatError: any format but ``snapshot``, or ``compress=True``
                (before any request).
            ConfigurationError: a bad option in ``options.metadata`` (before any request).
            VMNotFoundError: no such droplet.
            ExportError: an action errored or timed out, or the snapshot cannot be found.
        """
        api = self._require_api("export_vm")
        if not CAPABILITIES.supports_format(options.format):
            raise UnsupportedFormatError(
                f"digitalocean export_vm: format {options.format!r} is not supported; "
                "DigitalOcean cannot download disk images, so the only format is 'snapshot' "
                "(a provider-side snapshot and a local JSON manifest)",
                provider=PROVIDER,
                operation="export_vm",
            )
        if options.compress:
            raise UnsupportedFormatError(
                "digitalocean export_vm: compression is not supported (the export is a small "
                "JSON manifest); set ExportOptions.compress=False",
                provider=PROVIDER,
                operation="export_vm",
            )
        plan = _ExportPlan.from_metadata(options.metadata)
        _check_output_path(options.output_path)
        # Imported here: listing-only commands never load hypersdk.export (see _export).
        from hypersdk_digitalocean._export import Export

        run = Export(
            api,
            self._logger,
            identifier=identifier,
            options=options,
            plan=plan,
            reporter=progress,
        )
        return await run.run()


async def _get_droplet(api: Api, identifier: str, operation: str) -> dict[str, object]:
    """``GET /v2/droplets/{id}`` as JSON; a non-numeric id is not found without a request."""
    checked: object = identifier  # callers may pass anything at run time
    if not isinstance(checked, str) or not _DROPLET_ID.fullmatch(checked):
        raise VMNotFoundError(
            f"digitalocean {operation}: no droplet {identifier!r}; droplet ids are numbers "
            "such as '3164444' (list_vms shows them)",
            provider=PROVIDER,
            operation=operation,
        )
    body = await api.get(
        f"/droplets/{identifier}",
        operation=operation,
        resource="vm",
        identifier=identifier,
        require=("droplet",),
    )
    droplet = body["droplet"]
    if not isinstance(droplet, dict):
        raise ProviderAPIError(
            f"digitalocean {operation}: 'droplet' must be an object, got {type(droplet).__name__}",
            provider=PROVIDER,
            operation=operation,
        )
    return droplet


def _check_output_path(path: Path) -> None:
    """Refuse, before the snapshot is taken, an output_path that can never be a directory."""
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigurationError(
            "digitalocean export_vm: ExportOptions.output_path must be a directory (or a "
            f"path to create one), but {str(existing)!r} is a file",
            provider=PROVIDER,
            operation="export_vm",
        )


def _pushdown(wanted: VMFilter) -> dict[str, str]:
    """The query parameters that narrow the listing without ever dropping a match.

    The API takes ``name`` (exact, case-insensitive) or ``tag_name``, not both. Names are
    pushed only when the glob has no wildcard and is ASCII (so the API's case-insensitive
    compare agrees with case-folding); a tag only when it is the filter's only tag and a
    tag DigitalOcean could have (anything else matches nothing, locally).
    """
    pattern = wanted.name_pattern
    if pattern and pattern.isascii() and not _GLOB_CHARS & set(pattern):
        return {"name": pattern}
    if len(wanted.tags) == 1:
        ((key, value),) = wanted.tags.items()
        tag = tag_for(key, value)
        if tag is not None and is_tag_name(tag):
            return {"tag_name": tag}
    return {}
