"""An OpenStack (Keystone v3, Nova, Glance) served from a hypersdk_testing FakeCloud.

``mount(router, cloud)`` adds respx routes that speak each API's dialect, built from the
fixtures in ``fixtures/`` (see its README): the conformance subclass and the
OpenStack-specific tests share them. ``OpenStackWorld`` holds the knobs a test turns
(microversion, snapshot format, hash algorithm, volume-backed servers, ...).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import httpx

if TYPE_CHECKING:
    import respx

    from hypersdk import VMInfo
    from hypersdk_testing import FakeCloud

FIXTURES = Path(__file__).parent / "fixtures"
KEYSTONE = "https://keystone.test:5000/v3"
NOVA = "https://nova.test:8774/v2.1"
GLANCE = "https://glance.test:9292"
# Nova writes its links with its own public prefix, which need not be the catalog's.
LINK_PREFIX = "http://nova-public.example.test/v2.1"
POWER_CODES = {"on": 1, "off": 4, "paused": 3, "crashed": 6, "suspended": 7, "unknown": 0}
# Magic bytes a snapshot of each format starts with (a FakeCloud disk is raw bytes).
MAGIC = {"qcow2": b"QFI\xfb", "vmdk": b"KDMV", "vhdx": b"vhdxfile", "vhd": b"conectix"}


def load(name: str) -> Any:
    """A fresh copy of ``fixtures/<name>.json``."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


@attrs.define
class OpenStackWorld:
    """What the fake cloud does beyond FakeCloud's VMs, disks and faults."""

    max_microversion: str = "2.96"
    # None: the format the export asked for (hypersdk_export_format), as a real cloud
    # whose image backend produces it would.
    snapshot_format: str | None = None
    hash_algo: str | None = "sha512"  # None: only the MD5 "checksum"
    corrupt_hash: bool = False
    volume_backed: frozenset[str] = frozenset()
    statuses: tuple[str, ...] = ("queued", "saving", "active")
    token_lifetime: str = "2099-01-01T00:00:00.000000Z"
    images: dict[str, dict[str, Any]] = attrs.Factory(dict)
    polls: dict[str, int] = attrs.Factory(dict)
    auth_requests: int = 0

    def body_of(self, cloud: FakeCloud, image: dict[str, Any]) -> bytes:
        """The bytes Glance serves for a snapshot image."""
        disk = cloud.disks[image["instance_uuid"]]
        magic = MAGIC.get(image["disk_format"], b"")
        return magic + disk[len(magic) :]


def to_server(vm: VMInfo, *, embed_flavor: bool = True) -> dict[str, Any]:
    """A world VM as a Nova server object (the fixture's shape, the VM's values)."""
    server: dict[str, Any] = load("nova_server_get")["server"]
    server.update(
        id=vm.id,
        name=vm.name,
        status=vm.state.upper(),
        metadata=dict(vm.tags),
        created=vm.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if vm.created_at
        else None,
        updated=vm.updated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if vm.updated_at
        else None,
        addresses={
            "private": [
                {"addr": ip, "version": 6 if ":" in ip else 4, "OS-EXT-IPS:type": "fixed"}
                for ip in vm.ip_addresses
            ]
        },
    )
    server["OS-EXT-AZ:availability_zone"] = vm.location
    server["OS-EXT-STS:power_state"] = POWER_CODES.get(vm.power_state, 0)
    server["OS-EXT-STS:vm_state"] = vm.state
    if embed_flavor:
        server["flavor"].update(vcpus=vm.num_cpus, ram=vm.memory_mb, disk=vm.storage_gb)
    else:
        server["flavor"] = {"id": f"f-{vm.num_cpus}-{vm.memory_mb}-{vm.storage_gb}", "links": []}
    return server


def _serve_bytes(request: httpx.Request, body: bytes) -> httpx.Response:
    """``body`` with ``Range: bytes=N-`` support (what the export toolkit sends)."""
    wanted = re.match(r"^bytes=(\d+)-$", request.headers.get("Range", ""))
    headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
    if wanted is None:
        return httpx.Response(200, headers=headers, content=body)
    start = int(wanted[1])
    if start >= len(body):
        return httpx.Response(416, headers={"Content-Range": f"bytes */{len(body)}"})
    headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
    return httpx.Response(206, headers=headers, content=body[start:])


def mount(  # noqa: PLR0915 - one closure per route keeps each API's dialect together
    router: respx.MockRouter, cloud: FakeCloud, world: OpenStackWorld | None = None
) -> OpenStackWorld:
    """Serve ``cloud`` as Keystone at KEYSTONE, Nova at NOVA and Glance at GLANCE."""
    world = world or OpenStackWorld()
    by_id = {vm.id: vm for vm in cloud.vms}

    def with_token(request: httpx.Request) -> httpx.Request:
        # Keystone takes the credential in the body; the rest of FakeCloud (faults, the
        # request log) sees the request as if it carried the token.
        headers = dict(request.headers) | {cloud.auth_header: cloud.token}
        return httpx.Request(request.method, request.url, headers=headers)

    def microversion(request: httpx.Request) -> tuple[int, int] | httpx.Response:
        asked = request.headers.get("OpenStack-API-Version", "compute 2.1").split()[-1]
        if _version(asked) > _version(world.max_microversion):
            return cloud.json(load("nova_error_406"), 406)
        return _version(asked)

    def keystone(request: httpx.Request) -> httpx.Response:
        world.auth_requests += 1
        identity = json.loads(request.content)["auth"]["identity"]
        method = identity["methods"][0]
        secret = (
            identity["password"]["user"]["password"]
            if method == "password"
            else identity["application_credential"]["secret"]
        )
        if secret != cloud.token:
            cloud.intercept(request)  # logged like any request; the answer is Keystone's
            return cloud.json(load("keystone_error_401"), 401)
        if (early := cloud.intercept(with_token(request))) is not None:
            return early
        body = load("keystone_token_password" if method == "password" else "keystone_token_appcred")
        body["token"]["expires_at"] = world.token_lifetime
        return cloud.json(body, 201, headers={"X-Subject-Token": cloud.token})

    def servers(request: httpx.Request) -> httpx.Response:
        if (early := cloud.intercept(request)) is not None:
            return early
        version = microversion(request)
        if isinstance(version, httpx.Response):
            return version
        query = request.url.params
        selected = list(cloud.vms)
        if "name" in query:
            selected = [vm for vm in selected if re.search(query["name"], vm.name)]
        if "status" in query:
            selected = [vm for vm in selected if vm.state.upper() == query["status"]]
        start = 0
        if "marker" in query:
            ids = [vm.id for vm in selected]
            if query["marker"] not in ids:
                message = f"marker [{query['marker']}] not found"
                return cloud.json({"badRequest": {"code": 400, "message": message}}, 400)
            start = ids.index(query["marker"]) + 1
        limit = min(int(query.get("limit", "1000")), cloud.page_size)
        page = selected[start : start + limit]
        body: dict[str, Any] = {
            "servers": [to_server(vm, embed_flavor=version >= (2, 47)) for vm in page]
        }
        if start + limit < len(selected) and page:
            params = dict(query) | {"limit": str(limit), "marker": page[-1].id}
            link = httpx.URL(f"{LINK_PREFIX}/servers/detail", params=params)
            body["servers_links"] = [{"href": str(link), "rel": "next"}]
        return cloud.json(body)

    def server(request: httpx.Request, server_id: str) -> httpx.Response:
        if (early := cloud.intercept(request)) is not None:
            return early
        version = microversion(request)
        if isinstance(version, httpx.Response):
            return version
        vm = by_id.get(server_id)
        if vm is None:
            return cloud.json(load("nova_error_404"), 404)
        return cloud.json({"server": to_server(vm, embed_flavor=version >= (2, 47))})

    def flavor(request: httpx.Request, flavor_id: str) -> httpx.Response:
        if (early := cloud.intercept(request)) is not None:
            return early
        _, vcpus, ram, disk = flavor_id.split("-")
        body = load("nova_flavor_get")
        body["flavor"].update(id=flavor_id, vcpus=int(vcpus), ram=int(ram), disk=int(disk))
        return cloud.json(body)

    def action(request: httpx.Request, server_id: str) -> httpx.Response:
        if (early := cloud.intercept(request)) is not None:
            return early
        version = microversion(request)
        if isinstance(version, httpx.Response):
            return version
        vm = by_id.get(server_id)
        if vm is None:
            return cloud.json(load("nova_error_404"), 404)
        spec = json.loads(request.content)["createImage"]
        properties = spec.get("metadata", {})
        image = load("glance_image_active")
        image_id = str(uuid.uuid4())
        fmt = world.snapshot_format or properties.get("hypersdk_export_format", "qcow2")
        image.update(
            id=image_id,
            name=spec["name"],
            disk_format=fmt,
            instance_uuid=vm.id,
            file=f"/v2/images/{image_id}/file",
            self=f"/v2/images/{image_id}",
            **properties,
        )
        if vm.id in world.volume_backed:
            image.update(size=0, checksum=None, os_hash_algo=None, os_hash_value=None)
            image["block_device_mapping"] = '[{"source_type": "snapshot"}]'
        else:
            data = world.body_of(cloud, image)
            image.update(size=len(data), checksum=hashlib.md5(data).hexdigest())  # noqa: S324
            if world.hash_algo:
                digest = hashlib.new(world.hash_algo, data).hexdigest()
                image.update(os_hash_algo=world.hash_algo, os_hash_value=digest)
            else:
                image.update(os_hash_algo=None, os_hash_value=None)
            if world.corrupt_hash:
                image["os_hash_value"] = "0" * len(image["os_hash_value"] or "0" * 32)
                image["checksum"] = "0" * 32
        world.images[image_id] = image
        world.polls[image_id] = 0
        cloud.record("image.created", id=image_id, server=vm.id)
        if version >= (2, 45):
            return cloud.json({"image_id": image_id}, 202)
        return httpx.Response(202, headers={"Location": f"{GLANCE}/v2/images/{image_id}"})

    def image(request: httpx.Request, image_id: str) -> httpx.Response:
        if (early := cloud.intercept(request)) is not None:
            return early
        found = world.images.get(image_id)
        if found is None:
            return cloud.json({"message": "No image found", "code": "404 Not Found"}, 404)
        step = world.polls[image_id]
        world.polls[image_id] = step + 1
        status = world.statuses[min(step, len(world.statuses) - 1)]
        return cloud.json(found | {"status": status})

    def delete_image(request: httpx.Request, image_id: str) -> httpx.Response:
        if (early := cloud.intercept(request)) is not None:
            return early
        if world.images.pop(image_id, None) is None:
            return cloud.json({"message": "No image found", "code": "404 Not Found"}, 404)
        cloud.record("image.deleted", id=image_id)
        return httpx.Response(204)

    def image_file(request: httpx.Request, image_id: str) -> httpx.Response:
        if (early := cloud.intercept(request)) is not None:
            return early
        found = world.images.get(image_id)
        if found is None:
            return cloud.json({"message": "No image found", "code": "404 Not Found"}, 404)
        if found["instance_uuid"] in world.volume_backed:
            return httpx.Response(204)
        if found["disk_format"] in MAGIC:
            return _serve_bytes(request, world.body_of(cloud, found))
        return cloud.serve_disk(request, found["instance_uuid"])

    nova, glance = httpx.URL(NOVA), httpx.URL(GLANCE)
    on_nova: dict[str, Any] = {"scheme": nova.scheme, "host": nova.host, "port": nova.port}
    on_glance: dict[str, Any] = {"scheme": glance.scheme, "host": glance.host, "port": glance.port}
    base = re.escape(nova.path)
    router.post(f"{KEYSTONE}/auth/tokens").mock(side_effect=keystone)
    router.get(**on_nova, path=f"{nova.path}/servers/detail").mock(side_effect=servers)
    router.get(**on_nova, path__regex=rf"^{base}/servers/(?P<server_id>[^/]+)$").mock(
        side_effect=server
    )
    router.get(**on_nova, path__regex=rf"^{base}/flavors/(?P<flavor_id>[^/]+)$").mock(
        side_effect=flavor
    )
    router.post(**on_nova, path__regex=rf"^{base}/servers/(?P<server_id>[^/]+)/action$").mock(
        side_effect=action
    )
    images = r"^/v2/images/(?P<image_id>[^/]+)"
    router.get(**on_glance, path__regex=images + "$").mock(side_effect=image)
    router.delete(**on_glance, path__regex=images + "$").mock(side_effect=delete_image)
    router.get(**on_glance, path__regex=images + "/file$").mock(side_effect=image_file)
    return world
