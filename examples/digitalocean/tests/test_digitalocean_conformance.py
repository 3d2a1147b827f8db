"""The hypersdk_testing conformance suite against the DigitalOcean plugin.

``mock_api`` serves the suite's generated world in DigitalOcean's own dialect: droplet
objects shaped like the API's examples, pages of at most ``page_size`` with ``meta.total``
and absolute ``links.pages.next``, ``tag_name``/``name`` filtering as the API does it,
``type=gpus`` (no GPU droplets here), droplet actions and the snapshot list.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import attrs
import hypersdk_digitalocean
from do_fakes import load
from hypersdk_digitalocean import parse_tags

from hypersdk import ProviderConfig, VMInfo
from hypersdk_testing import FakeCloud, ProviderConformance

if TYPE_CHECKING:
    import httpx
    import respx

API = "https://api.digitalocean.test/v2"
_POWER = {"active": "on", "off": "off", "archive": "off", "new": "starting"}


def droplet_id(vm_id: str) -> int:
    """DigitalOcean ids are numbers: a stable number for each generated id (numbers stay)."""
    if vm_id.isascii() and vm_id.isdigit() and len(vm_id) <= 15:
        return int(vm_id)
    return int.from_bytes(hashlib.sha256(vm_id.encode()).digest()[:6], "big")


def tag_string(key: str, value: str) -> str:
    """The DigitalOcean tag for a hypersdk tag pair (``env:prod``, or ``web`` for no value)."""
    return f"{key}:{value}" if value else key


def to_droplet(vm: VMInfo) -> dict[str, Any]:
    """A generated VM as the API's example droplet, with the VM's identity and fields."""
    template: dict[str, Any] = load("droplet_get")["droplet"]
    v4 = [ip for ip in vm.ip_addresses if ":" not in ip]
    v6 = [ip for ip in vm.ip_addresses if ":" in ip]
    template.update(
        id=droplet_id(vm.id),
        name=vm.name,
        status=vm.state,
        memory=vm.memory_mb,
        vcpus=vm.num_cpus,
        disk=vm.storage_gb,
        created_at=vm.created_at.isoformat() if vm.created_at else None,
        tags=[tag_string(key, value) for key, value in vm.tags.items()],
        networks={
            "v4": [{"ip_address": ip, "type": "public", "netmask": "255.255.255.0"} for ip in v4],
            "v6": [{"ip_address": ip, "type": "public", "netmask": 64} for ip in v6],
        },
    )
    template["region"]["slug"] = vm.location
    template["image"].update(distribution=vm.guest_os, name="")
    return template


class TestDigitalOceanConformance(ProviderConformance):
    plugin = hypersdk_digitalocean
    required_config = ("metadata.token",)
    # DigitalOcean-specific metadata (size slug, VPC, raw tags...) is not the world's.
    compared_fields = tuple(
        field.name for field in attrs.fields(VMInfo) if field.name != "metadata"
    )

    def configure(self, cloud: FakeCloud) -> ProviderConfig:
        return ProviderConfig(
            type="digitalocean",
            endpoint=API,
            metadata={"token": cloud.token, "retry_backoff": "0.01", "poll_interval": "0"},
        )

    def representable(self, vm: VMInfo) -> VMInfo:
        v4 = [ip for ip in vm.ip_addresses if ":" not in ip]
        v6 = [ip for ip in vm.ip_addresses if ":" in ip]
        return attrs.evolve(
            vm,
            id=str(droplet_id(vm.id)),
            power_state=_POWER.get(vm.state, ""),
            ip_addresses=tuple(dict.fromkeys(v4 + v6)),
            tags=parse_tags([tag_string(key, value) for key, value in vm.tags.items()]),
            updated_at=None,
        )

    def mock_api(self, router: respx.MockRouter, cloud: FakeCloud) -> None:
        by_number = {droplet_id(vm.id): vm for vm in cloud.vms}
        snapshots: dict[int, list[dict[str, Any]]] = {}
        actions: dict[int, dict[str, Any]] = {}

        def account(request: httpx.Request) -> httpx.Response:
            if (early := cloud.intercept(request)) is not None:
                return early
            return cloud.json(load("account"))

        def droplets(request: httpx.Request) -> httpx.Response:
            if (early := cloud.intercept(request)) is not None:
                return early
            query = request.url.params
            selected = list(cloud.vms) if query.get("type") != "gpus" else []
            if "tag_name" in query:
                wanted = query["tag_name"]
                selected = [
                    vm
                    for vm in selected
                    if wanted in (tag_string(k, v) for k, v in vm.tags.items())
                ]
            if "name" in query:
                selected = [vm for vm in selected if vm.name.lower() == query["name"].lower()]
            page = cloud.page(
                selected,
                number=int(query.get("page", "1")),
                per_page=int(query.get("per_page", "20")),
            )
            pages: dict[str, str] = {}
            if page.next is not None:
                pages["next"] = str(request.url.copy_merge_params({"page": str(page.next)}))
                pages["last"] = str(request.url.copy_merge_params({"page": str(page.last)}))
            body = {
                "droplets": [to_droplet(vm) for vm in page.items],
                "links": {"pages": pages},
                "meta": {"total": page.total},
            }
            return cloud.json(body)

        def droplet(request: httpx.Request, number: str) -> httpx.Response:
            if (early := cloud.intercept(request)) is not None:
                return early
            vm = by_number.get(int(number))
            if vm is None:
                return cloud.json(load("error_404"), 404)
            return cloud.json({"droplet": to_droplet(vm)})

        def action(request: httpx.Request, number: str) -> httpx.Response:
            if (early := cloud.intercept(request)) is not None:
                return early
            vm = by_number.get(int(number))
            if vm is None:
                return cloud.json(load("error_404"), 404)
            body = json.loads(request.content)
            action_id = 1000 + len(actions)
            if body["type"] == "snapshot":
                snapshot = load("droplet_snapshots_list")["snapshots"][0]
                snapshot.update(id=5000 + len(actions), name=body["name"])
                snapshots.setdefault(int(number), []).append(snapshot)
                cloud.record("snapshot.created", id=body["name"], droplet=vm.id)
            else:
                cloud.record(f"power.{body['type']}", droplet=vm.id)
            actions[action_id] = {"id": action_id, "status": "completed", "type": body["type"]}
            return cloud.json({"action": {**actions[action_id], "status": "in-progress"}}, 201)

        def poll(request: httpx.Request, number: str) -> httpx.Response:
            if (early := cloud.intercept(request)) is not None:
                return early
            return cloud.json({"action": actions[int(number)]})

        def snapshot_list(request: httpx.Request, number: str) -> httpx.Response:
            if (early := cloud.intercept(request)) is not None:
                return early
            found = snapshots.get(int(number), [])
            return cloud.json({"snapshots": found, "links": {}, "meta": {"total": len(found)}})

        router.get(f"{API}/account").mock(side_effect=account)
        router.get(f"{API}/droplets").mock(side_effect=droplets)
        router.get(path__regex=r"^/v2/droplets/(?P<number>\d+)$").mock(side_effect=droplet)
        router.post(path__regex=r"^/v2/droplets/(?P<number>\d+)/actions$").mock(side_effect=action)
        router.get(path__regex=r"^/v2/actions/(?P<number>\d+)$").mock(side_effect=poll)
        router.get(path__regex=r"^/v2/droplets/(?P<number>\d+)/snapshots$").mock(
            side_effect=snapshot_list
        )
