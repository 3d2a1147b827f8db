"""``OpenStackProvider``: Nova servers through the hypersdk :class:`~hypersdk.Provider` API."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Final

import httpx

from hypersdk import (
    ExportCapabilities,
    ExportError,
    ExportOptions,
    ExportResult,
    NotConnectedError,
    Provider,
    ProviderAPIError,
    ProviderConfig,
    ProviderType,
    VMFilter,
    VMInfo,
    VMNotFoundError,
    search_matches,
)
from hypersdk_openstack._client import Api
from hypersdk_openstack._formats import GLANCE_FORMATS, check_format
from hypersdk_openstack._mapping import (
    PROVIDER_TYPE,
    Flavor,
    embedded_flavor,
    flavor_id,
    is_volume_backed,
    server_filters,
    server_to_vm,
)
from hypersdk_openstack._settings import PROVIDER, settings_from_config

if TYPE_CHECKING:
    from hypersdk import ProgressReporter

__all__ = ["CAPABILITIES", "OpenStackProvider"]

CAPABILITIES: Final = ExportCapabilities(
    # The snapshot's format is Nova's choice (its image backend): each of these can come
    # out, and the one asked for must be the one Glance reports.
    supported_formats=GLANCE_FORMATS,
    supports_compression=True,
    supports_streaming=True,
    supports_snapshots=False,
    max_vm_size_gb=0,
    supported_targets=("local",),
)

_SERVER_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAX_PAGES: Final = 100_000


class OpenStackProvider(Provider):
    """Nova servers, exported through Glance. Build with :func:`hypersdk_openstack.new_provider`.

    ``connect`` authenticates with Keystone v3 and reads the service catalog;
    ``list_vms`` pages through ``GET /servers/detail``; ``export_vm`` snapshots the server
    with ``createImage`` and downloads the image's bytes, verified.
    """

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._logger = logger or logging.getLogger("hypersdk_openstack")
        self._transport = transport
        self._api: Api | None = None
        self._flavors: dict[str, Flavor] = {}

    @property
    def name(self) -> str:
        """``"OpenStack"``."""
        return "OpenStack"

    @property
    def type(self) -> ProviderType:
        """``"openstack"``."""
        return PROVIDER_TYPE

    def __repr__(self) -> str:
        state = "connected" if self._api is not None else "not connected"
        return f"OpenStackProvider({state})"

    # -- lifecycle -------------------------------------------------------------------

    async def connect(self, config: ProviderConfig) -> None:
        """Validate ``config`` (no request), then authenticate and pick the endpoints."""
        settings = settings_from_config(config)
        await self.disconnect()
        api = Api(settings, self._logger, transport=self._transport)
        try:
            await api.authenticate()
        except BaseException:
            await api.aclose()
            raise
        self._api = api

    async def disconnect(self) -> None:
        """Close the HTTP client. Idempotent; never raises."""
        api, self._api = self._api, None
        self._flavors.clear()
        if api is not None:
            try:
                await api.aclose()
            except Exception:  # closing must not fail the caller
                self._logger.debug("openstack: error while closing the client", exc_info=True)

    def _connected(self, operation: str) -> Api:
        if self._api is None:
            raise NotConnectedError(
                f"{PROVIDER} {operation}: not connected; call connect(config) first",
                provider=PROVIDER,
                operation=operation,
            )
        return self._api

    async def validate_credentials(self) -> None:
        """Authenticate again with Keystone: an AuthenticationError when refused."""
        await self._connected("validate_credentials").authenticate()

    # -- discovery -------------------------------------------------------------------

    async def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        """Every server ``filter`` matches, in Nova's order (marker pagination)."""
        api = self._connected("list_vms")
        operation = "list_vms"
        params = server_filters(filter) | {"limit": str(api.settings.page_size)}
        found: list[VMInfo] = []
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            page = await api.get_json(
                "compute", "/servers/detail", operation=operation, params=params
            )
            servers = page.get("servers")
            if not isinstance(servers, list):
                raise ProviderAPIError(
                    f"{PROVIDER} {operation}: the response has no 'servers' list",
                    provider=PROVIDER,
                    operation=operation,
                )
            await self._resolve_flavors(api, servers, operation)
            for server in servers:
                vm = server_to_vm(server, flavors=self._flavors, operation=operation)
                if vm.id not in seen:  # a server created while paging can shift a page
                    seen.add(vm.id)
                    if filter is None or filter.matches(vm):
                        found.append(vm)
            marker = _next_marker(page, operation)
            if marker is None or not servers:
                return found
            if marker == params.get("marker"):
                raise ProviderAPIError(
                    f"{PROVIDER} {operation}: Nova returned the same next page twice "
                    f"(marker {marker!r}); the listing would never end",
                    provider=PROVIDER,
                    operation=operation,
                )
            params = params | {"marker": marker}
        raise ProviderAPIError(  # pragma: no cover - a hundred million servers
            f"{PROVIDER} {operation}: more than {_MAX_PAGES} pages",
            provider=PROVIDER,
            operation=operation,
        )

    async def get_vm(self, identifier: str) -> VMInfo:
        """The server with this id (``GET /servers/{id}``)."""
        api = self._connected("get_vm")
        return (await self._server(api, identifier, "get_vm"))[0]

    async def search_vms(self, query: str) -> list[VMInfo]:
        """The servers :func:`hypersdk.search_matches` accepts (Nova has no such search)."""
        self._connected("search_vms")
        return [vm for vm in await self.list_vms() if search_matches(vm, query)]

    async def _server(
        self, api: Api, identifier: str, operation: str
    ) -> tuple[VMInfo, dict[str, object]]:
        if not _SERVER_ID.match(identifier):
            # Never put an arbitrary string into a URL path: it is no Nova id anyway.
            raise VMNotFoundError(
                f"{PROVIDER} {operation}: no server {identifier!r} (a Nova server id is a UUID)",
                provider=PROVIDER,
                operation=operation,
            )
        body = await api.get_json(
            "compute",
            f"/servers/{identifier}",
            operation=operation,
            resource="vm",
            identifier=identifier,
            require=("server",),
        )
        server = body["server"]
        if not isinstance(server, dict):
            raise ProviderAPIError(
                f"{PROVIDER} {operation}: 'server' is not an object",
                provider=PROVIDER,
                operation=operation,
            )
        await self._resolve_flavors(api, [server], operation)
        return server_to_vm(server, flavors=self._flavors, operation=operation), server

    async def _resolve_flavors(self, api: Api, servers: list[object], operation: str) -> None:
        """Below microversion 2.47 a server names its flavor only: look each up once."""
        for server in servers:
            if not isinstance(server, dict) or embedded_flavor(server) is not None:
                continue
            wanted = flavor_id(server)
            if wanted is None or wanted in self._flavors or not _SERVER_ID.match(wanted):
                continue
            try:
                body = await api.get_json(
                    "compute", f"/flavors/{wanted}", operation=operation, require=("flavor",)
                )
            except ProviderAPIError as exc:
                if exc.status != 404:
                    raise
                # A flavor deleted (or made private) since the server was built: the
                # server is still there, its sizes are unknown. Asked once per connect.
                self._logger.info("%s: flavor %s is gone; sizes unknown", PROVIDER, wanted)
                self._flavors[wanted] = (0, 0, 0)
                continue
            sizes = embedded_flavor({"flavor": body["flavor"]})
            self._flavors[wanted] = sizes or (0, 0, 0)

    # -- export ----------------------------------------------------------------------

    def get_export_capabilities(self) -> ExportCapabilities:
        """What ``export_vm`` can do (also ``PLUGIN_INFO.capabilities``)."""
        return CAPABILITIES

    async def export_vm(
        self,
        identifier: str,
        options: ExportOptions,
        *,
        progress: ProgressReporter | None = None,
    ) -> ExportResult:
        """Snapshot the server into Glance, download the image, delete the snapshot.

        ``options.format`` must be the format Glance reports for the snapshot (Nova
        chooses it); any other, or one Glance cannot hold, is an UnsupportedFormatError
        (the latter before any request). ``compress=True`` writes ``.zst``.
        """
        api = self._connected("export_vm")
        fmt = check_format(options)
        vm, server = await self._server(api, identifier, "export_vm")
        if is_volume_backed(server):
            # createImage would snapshot the server's Cinder volumes and make an empty
            # image; deleting that image leaves the volume snapshots behind. Refuse first.
            raise ExportError(
                f"{PROVIDER} export: server {vm.id} is volume-backed (it boots from a "
                "Cinder volume; Nova shows no image), so a snapshot image would hold no "
                "disk data. Export the Cinder volume instead",
                provider=PROVIDER,
                operation="export_vm",
            )
        from hypersdk_openstack._export import export_server  # the toolkit loads on first use

        return await export_server(api, vm, options, fmt, progress=progress)


def _next_marker(page: dict[str, object], operation: str) -> str | None:
    """The marker of ``servers_links``' ``next`` link; its host is never contacted."""
    links = page.get("servers_links")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("rel") == "next":
            href = link.get("href")
            try:
                marker: str | None = httpx.URL(str(href)).params.get("marker")
            except httpx.InvalidURL:
                marker = None
            if not marker:
                raise ProviderAPIError(
                    f"{PROVIDER} {operation}: a next link without a marker",
                    provider=PROVIDER,
                    operation=operation,
                )
            return marker
    return None
