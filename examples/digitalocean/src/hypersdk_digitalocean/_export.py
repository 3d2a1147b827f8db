"""``export_vm``'s steps: shut down, snapshot, find the snapshot, write the manifest.

Imported by :meth:`DigitalOceanProvider.export_vm` on first use, not with the plugin: a
command that only lists droplets does not pay for ``hypersdk.export`` and the manifest
writer at start-up (about 45 ms of imports, measured by ``benchmarks/bench_digitalocean.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import anyio
import anyio.lowlevel
import anyio.to_thread

from hypersdk import ExportError, HyperSDKError, ProviderAPIError
from hypersdk.export import build_export_result
from hypersdk_digitalocean._client import PROVIDER, user_agent
from hypersdk_digitalocean._manifest import build_manifest, write_manifest
from hypersdk_digitalocean._mapping import PROVIDER_TYPE, droplet_to_vm
from hypersdk_digitalocean._provider import EXPORT_FORMAT, _get_droplet

if TYPE_CHECKING:
    import logging
    from collections.abc import Mapping
    from pathlib import Path

    from hypersdk import ExportOptions, ExportResult, ProgressReporter, VMInfo
    from hypersdk_digitalocean._client import Api
    from hypersdk_digitalocean._provider import _ExportPlan

__all__ = ["Export"]

_SNAPSHOT_LOOKUPS: Final = 3


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


class Export:
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
