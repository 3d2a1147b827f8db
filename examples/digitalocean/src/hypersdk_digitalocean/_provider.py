"""``DigitalOceanProvider``: droplets through the hypersdk :class:`~hypersdk.Provider` API."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import anyio
import anyio.lowlevel
import anyio.to_thread
import attrs

from hypersdk import (
    ConfigurationError,
    ExportCapabilities,
    ExportError,
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
from hypersdk.export import build_export_result
from hypersdk_digitalocean._client import PROVIDER, Api, user_agent
from hypersdk_digitalocean._manifest import build_manifest, write_manifest
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
_SNAPSHOT_LOOKUPS: Final = 3


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


class _ActionFailed(ExportError):
    """A droplet action errored or did not finish in time."""


class _Progress:
    """Forwards to the caller's reporter, never letting the percent go down."""

    def __init__(self, reporter: ProgressReporter | None) -> None:
        self._reporter = reporter
        self.percent = 0.0

    def update(self, phase: str, percent: float, message: str) -> None:
        self.percent = max(self.percent, min(100.0, percent))
        if self._reporter is not None:
            self._reporter.update(phase, self.percent, message)


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
        run = _Export(
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


class _Export:
    """One run of ``export_vm``: the steps in order, and what to undo when it stops early."""

    def __init__(
        self,
        api: Api,
        logger: logging.Logger,
        *,
        identifier: str,
        options: ExportOptions,
        plan: _ExportPlan,
        reporter: ProgressReporter | None,
    ) -> None:
        self.api = api
        self.logger = logger
        self.identifier = identifier
        self.options = options
        self.plan = plan
        self.progress = _Progress(reporter)
        self.action_id: int | None = None
        self.snapshot_name = ""
        self.powered_off_by_us = False
        self.status_at_snapshot = ""

    async def run(self) -> ExportResult:
        started = time.monotonic()
        self.progress.update("preparing", 0.0, f"looking up droplet {self.identifier}")
        droplet = await _get_droplet(self.api, self.identifier, "export_vm")
        vm = droplet_to_vm(droplet)
        self.status_at_snapshot = vm.state
        self.snapshot_name = self.plan.snapshot_name or (
            f"{vm.name}-hypersdk-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        )
        try:
            shutdown = "none"
            if self.plan.shutdown and vm.state == "active":
                shutdown = await self._shut_down()
            elif self.plan.shutdown:
                shutdown = "already-off"
            action = await self._snapshot()
            snapshot = await self._find_snapshot()
            self.progress.update("writing", 92.0, "writing the manifest")
            data = build_manifest(
                droplet=droplet,
                snapshot=snapshot,
                action=action,
                exported_at=datetime.now(UTC),
                exported_by=user_agent(),
                shutdown=shutdown,
                status_at_snapshot=self.status_at_snapshot,
            )
            path = await self._write(vm, data)
        except anyio.get_cancelled_exc_class():
            self._report_cancelled()
            raise
        finally:
            await self._restore_power()
        self.progress.update("done", 100.0, f"snapshot {snapshot['id']} recorded in {path.name}")
        return build_export_result(
            provider=PROVIDER_TYPE,
            vm_name=vm.name,
            vm_id=vm.id,
            format=EXPORT_FORMAT,
            output_path=self.options.output_path,
            files=[path],
            checksum=hashlib.sha256(data).hexdigest(),
            duration=time.monotonic() - started,
            metadata={
                "snapshot_id": str(snapshot["id"]),
                "snapshot_name": self.snapshot_name,
                "action_id": str(self.action_id),
                "size_gigabytes": str(snapshot.get("size_gigabytes", "")),
                "min_disk_size": str(snapshot.get("min_disk_size", "")),
                "regions": ",".join(str(region) for region in _list(snapshot.get("regions"))),
                "shutdown": shutdown,
                "manifest": path.name,
            },
        )

    async def _action(self, kind: str, body: dict[str, object]) -> dict[str, object]:
        response = await self.api.post(
            f"/droplets/{self.identifier}/actions",
            body,
            operation="export_vm",
            resource="vm",
            identifier=self.identifier,
            require=("action",),
        )
        return _action_of(response, kind)

    async def _wait(
        self, action: dict[str, object], *, timeout: float, low: float, high: float, phase: str
    ) -> dict[str, object]:
        """Poll ``GET /v2/actions/{id}`` until the action completes; progress goes low -> high."""
        action_id = action["id"]
        kind = str(action.get("type") or phase)
        started = time.monotonic()
        polls = 0
        while action.get("status") == "in-progress":
            elapsed = time.monotonic() - started
            if elapsed >= timeout:
                raise _ActionFailed(
                    f"digitalocean export_vm: the {kind} action {action_id} of droplet "
                    f"{self.identifier} did not finish within {timeout:g} s; it may still "
                    "complete on DigitalOcean's side",
                    provider=PROVIDER,
                    operation="export_vm",
                )
            # DigitalOcean reports no percentage: an estimate that approaches `high`.
            self.progress.update(
                phase,
                low + (high - low) * (1 - 0.85**polls),
                f"{kind} action {action_id} in progress ({elapsed:.0f} s)",
            )
            await anyio.sleep(self.api.settings.poll_interval)
            body = await self.api.get(
                f"/actions/{action_id}", operation="export_vm", require=("action",)
            )
            action = _action_of(body, kind)
            polls += 1
        if action.get("status") != "completed":
            raise _ActionFailed(
                f"digitalocean export_vm: the {kind} action {action_id} of droplet "
                f"{self.identifier} ended with status {action.get('status')!r}; see the "
                "droplet's history in the DigitalOcean control panel",
                provider=PROVIDER,
                operation="export_vm",
            )
        self.progress.update(phase, high, f"{kind} action {action_id} completed")
        return action

    async def _shut_down(self) -> str:
        """Shut the droplet down; returns how: ``shutdown`` or ``power_off``.

        DigitalOcean's shutdown action "guarantees that the command is issued, not that it
        succeeds": a completed action proves nothing, so the droplet itself is polled until
        its status is ``off``, within ``shutdown_timeout``. Otherwise ``power_off`` (polled
        the same way); a droplet still not off after that is an ExportError, never a
        snapshot of a running droplet recorded as shut down.
        """
        timeout = self.plan.shutdown_timeout
        self.progress.update("shutting down", 2.0, f"shutting droplet {self.identifier} down")
        started = time.monotonic()
        action = await self._action("shutdown", {"type": "shutdown"})
        self.powered_off_by_us = True
        try:
            await self._wait(action, timeout=timeout, low=2, high=8, phase="shutting down")
        except _ActionFailed as exc:
            self.logger.warning("%s; forcing power_off", exc)
        else:
            status = await self._wait_until_off(started + timeout)
            if status == "off":
                return "shutdown"
            self.logger.warning(
                "digitalocean export_vm: the shutdown action of droplet %s completed but the "
                "droplet is still %s after %g s; forcing power_off",
                self.identifier,
                status,
                timeout,
            )
        started = time.monotonic()
        action = await self._action("power_off", {"type": "power_off"})
        await self._wait(action, timeout=timeout, low=10, high=15, phase="shutting down")
        status = await self._wait_until_off(started + timeout)
        if status != "off":
            raise _ActionFailed(
                f"digitalocean export_vm: droplet {self.identifier} is still {status} "
                f"{timeout:g} s after a completed power_off; not snapshotting a running "
                "droplet (raise shutdown_timeout, or export without shutdown)",
                provider=PROVIDER,
                operation="export_vm",
            )
        return "power_off"

    async def _wait_until_off(self, deadline: float) -> str:
        """Poll the droplet until its status is ``off`` or ``deadline``; its last status."""
        # At least 50 ms between looks, so poll_interval=0 cannot turn into a request storm.
        interval = max(self.api.settings.poll_interval, 0.05)
        while True:
            droplet = await _get_droplet(self.api, self.identifier, "export_vm")
            status = str(droplet.get("status") or "unknown")
            if status == "off" or time.monotonic() >= deadline:
                self.status_at_snapshot = status
                return status
            self.progress.update(
                "shutting down", 8.0, f"droplet {self.identifier} is {status}; waiting for off"
            )
            await anyio.sleep(min(interval, max(0.0, deadline - time.monotonic())))

    async def _snapshot(self) -> dict[str, object]:
        self.progress.update("snapshotting", 15.0, f"snapshot {self.snapshot_name!r} requested")
        action = await self._action("snapshot", {"type": "snapshot", "name": self.snapshot_name})
        self.action_id = _int_id(action["id"])
        self.logger.info(
            "digitalocean export_vm: snapshot action %s started for droplet %s",
            self.action_id,
            self.identifier,
        )
        return await self._wait(
            action, timeout=self.plan.snapshot_timeout, low=15, high=85, phase="snapshotting"
        )

    async def _find_snapshot(self) -> dict[str, object]:
        self.progress.update("locating", 88.0, f"looking up snapshot {self.snapshot_name!r}")
        for attempt in range(_SNAPSHOT_LOOKUPS):
            if attempt:
                # The list can lag the completed action by a moment.
                await anyio.sleep(self.api.settings.poll_interval)
            found = await self._snapshots_named(self.snapshot_name)
            if found:
                # Several with one name (a reused snapshot_name): the newest is ours.
                newest = max(
                    found, key=lambda item: (str(item.get("created_at", "")), str(item.get("id")))
                )
                _int_id(newest.get("id"))
                return newest
        raise ExportError(
            f"digitalocean export_vm: the snapshot action {self.action_id} completed but no "
            f"snapshot named {self.snapshot_name!r} is listed for droplet {self.identifier} "
            f"after {_SNAPSHOT_LOOKUPS} looks; look for it in the control panel",
            provider=PROVIDER,
            operation="export_vm",
        )

    async def _snapshots_named(self, name: str) -> list[dict[str, object]]:
        found: list[dict[str, object]] = []
        page = 1
        while True:
            body = await self.api.get(
                f"/droplets/{self.identifier}/snapshots",
                operation="export_vm",
                params={"page": page, "per_page": 200},
                resource="vm",
                identifier=self.identifier,
            )
            if "snapshots" not in body and set(body) - {"links", "meta"}:
                # An empty list may leave "snapshots" out (only "meta" is required); a
                # body with other members instead is not a snapshot list at all.
                raise ProviderAPIError(
                    "digitalocean export_vm: the snapshot list lacks 'snapshots' "
                    f"(it has {', '.join(sorted(body)[:5])})",
                    provider=PROVIDER,
                    operation="export_vm",
                )
            snapshots = _list(body.get("snapshots"))
            found += [
                item for item in snapshots if isinstance(item, dict) and item.get("name") == name
            ]
            links = body.get("links")
            pages = links.get("pages") if isinstance(links, dict) else None
            if not snapshots or not (isinstance(pages, dict) and pages.get("next")):
                return found
            page += 1

    async def _write(self, vm: VMInfo, data: bytes) -> Path:
        written: list[Path] = []

        def write() -> None:
            written.append(write_manifest(self.options.output_path, vm.name, data))

        try:
            await anyio.to_thread.run_sync(write)
            # A cancellation that arrived while the thread wrote is honoured here.
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            # The file must not stay behind. Removed synchronously, as an await would be
            # cancelled again.
            for path in written:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
        return written[0]

    def _report_cancelled(self) -> None:
        if self.action_id is None:
            message = f"export of droplet {self.identifier} cancelled before any snapshot"
        else:
            message = (
                f"export of droplet {self.identifier} cancelled while snapshot action "
                f"{self.action_id} ran; DigitalOcean cannot cancel it, so snapshot "
                f"{self.snapshot_name!r} may still appear: delete it if unwanted"
            )
        self.logger.warning("digitalocean export_vm: %s; no local file was written", message)
        self.progress.update("cancelled", self.progress.percent, message)

    async def _restore_power(self) -> None:
        if not (self.powered_off_by_us and self.plan.power_on_after):
            return
        # Shielded and bounded: runs even when the export was cancelled.
        with anyio.move_on_after(30, shield=True):
            try:
                await self._action("power_on", {"type": "power_on"})
            except HyperSDKError as exc:
                self.logger.warning(
                    "digitalocean export_vm: could not power droplet %s on again: %s",
                    self.identifier,
                    exc,
                )
            else:
                self.logger.info(
                    "digitalocean export_vm: powering droplet %s on again", self.identifier
                )


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _int_id(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProviderAPIError(
            f"digitalocean export_vm: expected a numeric id, got {value!r}",
            provider=PROVIDER,
            operation="export_vm",
        )
    return value


def _action_of(body: Mapping[str, object], kind: str) -> dict[str, object]:
    action = body.get("action")
    if not isinstance(action, dict) or not isinstance(action.get("status"), str):
        raise ProviderAPIError(
            f"digitalocean export_vm: the {kind} action response lacks an action with a status",
            provider=PROVIDER,
            operation="export_vm",
        )
    _int_id(action.get("id"))
    return action
