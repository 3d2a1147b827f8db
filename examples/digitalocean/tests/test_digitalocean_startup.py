"""What keeps a listing command fast: what the plugin imports, and what a listing costs.

Speed itself is measured in ``benchmarks/bench_digitalocean.py``; these tests pin the
properties the figures rest on, so a change that loses one fails here.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import anyio
import msgspec
import pytest
from do_fakes import TOKEN, droplet, load, make_config
from hypersdk_digitalocean import DigitalOceanProvider, droplet_to_vm
from hypersdk_digitalocean._mapping import Droplet, Mapper, decode_page

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType


def test_importing_the_plugin_leaves_the_export_machinery_unloaded() -> None:
    # A fresh interpreter: this test process has long imported everything.
    code = (
        "import sys, hypersdk_digitalocean\n"
        "print([m for m in ('hypersdk.export', 'hypersdk_digitalocean._export', "
        "'hypersdk_digitalocean._manifest') if m in sys.modules])"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_decoded_droplets_are_not_tracked_by_the_garbage_collector() -> None:
    body = {"droplets": [load("droplet_get")["droplet"]], "meta": {"total": 1}, "links": {}}
    page = decode_page(json.dumps(body).encode(), operation="test")
    (decoded,) = page.droplets
    assert decoded.networks is not None
    parts: list[object] = [page, decoded, decoded.region, decoded.image, decoded.networks]
    parts += [*decoded.networks.v4, *decoded.networks.v6]
    assert None not in parts
    assert not any(gc.is_tracked(part) for part in parts)
    # Arrays decode to tuples: a tuple of strings or untracked structs leaves the
    # collector's sight at its first collection, while a list would stay in it (and be
    # scanned by every collection) for as long as the page is alive.
    gc.collect()
    arrays = [decoded.tags, decoded.volume_ids, decoded.networks.v4, decoded.networks.v6]
    assert all(type(array) is tuple for array in arrays)
    assert not any(gc.is_tracked(array) for array in arrays)


def _varied_droplets() -> list[Droplet]:
    """A droplet, its twin, and one droplet for each field of the metadata it differs in."""

    def image(item: dict[str, Any], **changes: object) -> None:
        item["image"].update(changes)

    def region(item: dict[str, Any], **changes: object) -> None:
        item["region"].update(changes)

    variants: list[Callable[[dict[str, Any]], object]] = [
        lambda item: None,  # the twin: only id and name differ
        lambda item: item.update(size_slug="s-2vcpu-2gb"),
        lambda item: region(item, name="Elsewhere"),
        lambda item: image(item, slug="debian-12-x64"),
        lambda item: image(item, id=1234),
        lambda item: item.pop("image"),
        lambda item: item.update(vpc_uuid="5a4981aa-9653-4bd1-bef5-d6bff52042e4"),
        lambda item: item.update(locked=not item["locked"]),
        lambda item: item.update(tags=["a", "b:c"]),
        lambda item: item.update(tags=["a,b:c"]),  # joins like ["a", "b:c"]
        lambda item: item.update(volume_ids=["vol-1"]),
        lambda item: item.update(volume_ids=["vol-1", "vol-2"]),
    ]
    raw = [droplet(9000, "db-0", tags=["a"])]
    for index, change in enumerate(variants, start=1):
        item = droplet(9000 + index, f"db-{index}", tags=["a"])
        change(item)
        raw.append(item)
    return [msgspec.convert(item, Droplet) for item in raw]


def test_the_listing_mapper_maps_every_droplet_as_droplet_to_vm_does() -> None:
    droplets = _varied_droplets()
    for mapper in (Mapper(), Mapper(limit=2)):  # with a full cache too
        for decoded in droplets + droplets:  # the second time from the cache
            mapped, reference = mapper(decoded), droplet_to_vm(decoded)
            assert mapped == reference
            assert dict(mapped.metadata) == dict(reference.metadata)
            assert dict(mapped.tags) == dict(reference.tags)


def test_droplets_alike_share_one_metadata_mapping() -> None:
    first, second = (droplet(1, "a", tags=["x"]), droplet(2, "b", tags=["x"]))
    mapper = Mapper()
    one, two = (mapper(msgspec.convert(item, Droplet)) for item in (first, second))
    assert one.metadata is two.metadata
    # Everything that comes from what the droplets share is worked out once, and kept once.
    assert one.tags is two.tags
    assert one.guest_os is two.guest_os
    assert one.location is two.location
    assert one.state is two.state
    second["volume_ids"] = ["vol-1"]
    three = mapper(msgspec.convert(second, Droplet))
    assert three.metadata is not one.metadata
    assert three.metadata["volume_ids"] == "vol-1"
    assert "volume_ids" not in one.metadata


class _ImportRecorder:
    """A meta path finder that finds nothing and records every name it is asked for."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        self.names.append(name)
        return None


@pytest.fixture
def loopback_api() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1: the account and 450 droplets, 200 a page."""
    droplets = [droplet(7000 + index, f"web-{index}") for index in range(450)]
    account = json.dumps(load("account")).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.reply(401, {"id": "unauthorized", "message": "Unable to authenticate you."})
            elif url.path == "/v2/account":
                self.reply_bytes(200, account)
            elif url.path == "/v2/droplets":
                selected = [] if query.get("type") == "gpus" else droplets
                page, size = int(query.get("page", "1")), int(query.get("per_page", "20"))
                pages: dict[str, str] = {}
                if page * size < len(selected):
                    pages["next"] = f"{base}/v2/droplets?page={page + 1}&per_page={size}"
                chunk = selected[(page - 1) * size : page * size]
                body = {"droplets": chunk, "links": {"pages": pages}, "meta": {}}
                body["meta"] = {"total": len(selected)}
                self.reply(200, body)
            else:
                self.reply(404, {"id": "not_found", "message": "The resource was not found."})

        def reply(self, status: int, body: Any) -> None:
            self.reply_bytes(status, json.dumps(body).encode())

        def reply_bytes(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.anyio
async def test_a_listing_over_a_real_connection_attempts_no_import(loopback_api: str) -> None:
    # Python does not remember failed imports: an import attempted per request or per
    # lock (httpcore's lookup of sniffio is one) walks sys.path every time.
    recorder = _ImportRecorder()
    config = make_config()
    config = type(config)(type=config.type, endpoint=loopback_api, metadata=config.metadata)
    async with DigitalOceanProvider() as provider:
        await provider.connect(config)
        assert len(await provider.list_vms()) == 450  # the first may import lazily
        sys.meta_path.insert(0, recorder)
        try:
            assert len(await provider.list_vms()) == 450
        finally:
            sys.meta_path.remove(recorder)
    assert recorder.names == []


@pytest.mark.anyio
async def test_each_page_is_mapped_in_one_go(loopback_api: str) -> None:
    # Mapped in slices with a checkpoint between them, every page in flight would be
    # decoded before any is mapped: all their droplets alive at once, and slower.
    config = make_config()
    config = type(config)(type=config.type, endpoint=loopback_api, metadata=config.metadata)
    sizes: list[int] = []

    def convert(droplets: list[Droplet]) -> list[int]:
        sizes.append(len(droplets))
        return [d.id for d in droplets]

    async with DigitalOceanProvider() as provider:
        await provider.connect(config)
        api = provider._require_api("test")
        ids = await api.list_droplets(
            {}, operation="test", limiter=anyio.CapacityLimiter(25), convert=convert
        )
    assert len(ids) == 450
    assert sorted(sizes) == [50, 200, 200]
