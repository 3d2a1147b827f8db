"""TinyCloud's conformance test: the whole provider contract, offline, with plain pytest."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import httpx
import hypersdk_tinycloud

from hypersdk import ProviderConfig, VMInfo
from hypersdk_testing import FakeCloud, ProviderConformance

if TYPE_CHECKING:
    import respx

API = "https://api.tinycloud.test/v1"


def server_json(vm: VMInfo) -> dict[str, object]:
    """``vm`` as TinyCloud's API writes a server: the inverse of the plugin's mapping."""
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


class TestTinyCloud(ProviderConformance):
    plugin = hypersdk_tinycloud
    contract_version = 1  # the contract this release was certified against

    def configure(self, cloud: FakeCloud) -> ProviderConfig:
        return ProviderConfig(type="tinycloud", endpoint=API, password=cloud.token, timeout=5)

    def mock_api(self, router: respx.MockRouter, cloud: FakeCloud) -> None:
        snapshots: dict[str, str] = {}  # snapshot id -> server id
        numbers = itertools.count(1)

        def not_found(what: str) -> httpx.Response:
            return cloud.json({"error": f"no such {what}"}, status=404)

        def account(request: httpx.Request) -> httpx.Response:
            return cloud.intercept(request) or cloud.json({"account": {"id": "acct-1"}})

        def servers(request: httpx.Request) -> httpx.Response:
            if (early := cloud.intercept(request)) is not None:  # 401s and injected faults
                return early
            page = cloud.page(cloud.vms, number=int(request.url.params.get("page", "1")))
            body = {"servers": [server_json(vm) for vm in page.items], "next_page": page.next}
            return cloud.json(body)

        def server(request: httpx.Request, vm_id: str) -> httpx.Response:
            if (early := cloud.intercept(request)) is not None:
                return early
            vm = cloud.vm(vm_id)
            return cloud.json({"server": server_json(vm)}) if vm else not_found("server")

        def snapshot(request: httpx.Request, vm_id: str) -> httpx.Response:
            if (early := cloud.intercept(request)) is not None:
                return early
            if cloud.vm(vm_id) is None:
                return not_found("server")
            snapshot_id = f"snap-{next(numbers)}"
            snapshots[snapshot_id] = vm_id
            cloud.record("snapshot.created", id=snapshot_id, vm_id=vm_id)
            return cloud.json({"snapshot": {"id": snapshot_id}}, status=201)

        def image(request: httpx.Request, snapshot_id: str) -> httpx.Response:
            if (early := cloud.intercept(request)) is not None:
                return early
            vm_id = snapshots.get(snapshot_id)
            return cloud.serve_disk(request, vm_id) if vm_id else not_found("snapshot")

        def delete(request: httpx.Request, snapshot_id: str) -> httpx.Response:
            if (early := cloud.intercept(request)) is not None:
                return early
            if snapshots.pop(snapshot_id, None) is None:
                return not_found("snapshot")
            cloud.record("snapshot.deleted", id=snapshot_id)
            return httpx.Response(204)

        one = "(?P<{}>[^/?]+)"
        router.get(f"{API}/account").mock(side_effect=account)
        router.get(f"{API}/servers").mock(side_effect=servers)
        router.get(path__regex=rf"/v1/servers/{one.format('vm_id')}$").mock(side_effect=server)
        router.post(path__regex=rf"/v1/servers/{one.format('vm_id')}/snapshots$").mock(
            side_effect=snapshot
        )
        router.get(path__regex=rf"/v1/snapshots/{one.format('snapshot_id')}/image$").mock(
            side_effect=image
        )
        router.delete(path__regex=rf"/v1/snapshots/{one.format('snapshot_id')}$").mock(
            side_effect=delete
        )
