"""The plugin driven as an application drives it, against bodies shaped like real clouds'.

Each body in ``fixtures/real/`` is our own, written after a shape found in another
project's fixtures or in an api-ref sample (``fixtures/README.md`` names the source). The
bodies are served over respx exactly as Keystone, Nova and Glance would send them: the
plugin connects, lists, filters, gets, searches and exports through its public API.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import respx
from hypersdk_openstack import OpenStackProvider

from hypersdk import (
    AuthenticationError,
    ConfigurationError,
    ExportError,
    ExportOptions,
    ProviderAPIError,
    ProviderConfig,
    ProviderUnavailableError,
    RateLimitError,
    VMFilter,
    VMNotFoundError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

from os_fakes import FIXTURES

SECRET = "s3cr3t-Pa55w0rd-realdata"
SUBJECT = "gAAAAABm-realdata-subject-token"
KEYSTONE = "https://keystone.test:5000/v3"
COMPUTE = "https://compute.one.test/compute/v2.1"
IMAGE = "https://image.one.test/image"
MIXED = "nova_servers_detail_v2.1_mixed"
BFV = "0a1b2c3d-1111-4aaa-8bbb-000000000001"
API0 = "5e4d3c2b-2222-4bbb-9ccc-000000000010"


def real(name: str) -> Any:
    """A fresh copy of ``fixtures/real/<name>.json``."""
    return json.loads((FIXTURES / "real" / f"{name}.json").read_text())


def config(**metadata: str) -> ProviderConfig:
    return ProviderConfig(
        type="openstack",
        endpoint=KEYSTONE,
        username="demo",
        password=SECRET,
        region=metadata.pop("region", "RegionOne"),
        metadata={"project_name": "demo", "retry_backoff": "0", "poll_interval": "0"} | metadata,
    )


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def keystone(router: respx.MockRouter, token: str = "keystone_token_regions") -> None:  # noqa: S107 - a fixture name
    router.post(f"{KEYSTONE}/auth/tokens").mock(
        return_value=httpx.Response(201, json=real(token), headers={"X-Subject-Token": SUBJECT})
    )


def nova_pages(router: respx.MockRouter, *pages: str) -> respx.Route:
    """``/servers/detail``: page 1 without a marker, page N+1 for the marker ending page N."""
    bodies = [real(page) for page in pages]

    def answer(request: httpx.Request) -> httpx.Response:
        marker = request.url.params.get("marker")
        index = 0
        for number, body in enumerate(bodies):
            if body["servers"] and body["servers"][-1]["id"] == marker:
                index = number + 1
        return httpx.Response(200, json=bodies[index] if index < len(bodies) else {"servers": []})

    return router.get(f"{COMPUTE}/servers/detail").mock(side_effect=answer)


def flavors(router: respx.MockRouter) -> None:
    router.get(f"{COMPUTE}/flavors/3").mock(
        return_value=httpx.Response(200, json=real("nova_flavor_3"))
    )
    router.get(f"{COMPUTE}/flavors/m1.deleted").mock(
        return_value=httpx.Response(404, json=real("nova_error_404_flavor"))
    )


async def connected(**metadata: str) -> OpenStackProvider:
    provider = OpenStackProvider()
    await provider.connect(config(**metadata))
    return provider


# -- listing ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_2_1_listing_with_a_deleted_flavor_lists_every_server(
    router: respx.MockRouter,
) -> None:
    keystone(router)
    nova_pages(router, MIXED)
    flavors(router)
    async with await connected() as provider:
        vms = {vm.name: vm for vm in await provider.list_vms()}
    assert sorted(vms) == ["bfv-db", "broken", "building-1", "parked"]
    bfv = vms["bfv-db"]
    assert (bfv.num_cpus, bfv.memory_mb, bfv.storage_gb) == (2, 4096, 40)
    assert bfv.ip_addresses == ("192.168.40.7", "198.51.100.77", "2001:db8:40::1c", "172.16.9.3")
    assert "image_id" not in bfv.metadata  # "image": "" is a volume-backed server
    assert bfv.metadata["flavor_id"] == "3"
    # A flavor deleted since the server was built: the server stays, sizes unknown.
    building = vms["building-1"]
    assert (building.state, building.power_state) == ("build", "unknown")
    assert (building.num_cpus, building.memory_mb, building.storage_gb) == (0, 0, 0)
    assert building.ip_addresses == ()
    assert building.created_at is not None
    assert building.created_at.utcoffset() is not None
    broken = vms["broken"]
    assert (broken.state, broken.location) == ("error", "")
    assert broken.updated_at is not None
    assert broken.updated_at.microsecond == 123456
    assert broken.updated_at.utcoffset() is not None
    parked = vms["parked"]
    assert (parked.state, parked.power_state, parked.location) == ("shelved_offloaded", "off", "")
    assert parked.ip_addresses == ("192.168.40.9", "203.0.113.9", "2001:db8::9")
    assert parked.tags == {"shelved_at": "2019-07-01T00:00:00Z"}


@pytest.mark.anyio
async def test_each_missing_flavor_is_asked_for_once(router: respx.MockRouter) -> None:
    keystone(router)
    nova_pages(router, MIXED)
    flavors(router)
    async with await connected() as provider:
        await provider.list_vms()
        await provider.list_vms()
    asked = [call.request.url.path for call in router.calls if "/flavors/" in call.request.url.path]
    assert asked == ["/compute/v2.1/flavors/3", "/compute/v2.1/flavors/m1.deleted"]


@pytest.mark.anyio
async def test_a_2_96_listing_follows_a_next_link_on_another_host(
    router: respx.MockRouter,
) -> None:
    keystone(router)
    route = nova_pages(router, "nova_servers_detail_v2.96_page1", "nova_servers_detail_v2.96_page2")
    async with await connected(page_size="2") as provider:
        vms = await provider.list_vms()
        shutoff = await provider.list_vms(VMFilter(state="shutoff"))
        tagged = await provider.list_vms(VMFilter(tags={"tier": "api"}))
        tagged_nova = await provider.list_vms(VMFilter(tags={"canary": ""}))
        found = await provider.search_vms("canary")
    assert [vm.name for vm in vms] == ["api-0", "api-1", "api-2"]
    assert [(vm.state, vm.power_state) for vm in vms] == [
        ("paused", "paused"),
        ("suspended", "suspended"),
        ("shutoff", "off"),
    ]
    assert (vms[0].num_cpus, vms[0].memory_mb, vms[0].storage_gb) == (4, 8192, 80)
    assert vms[0].metadata["nova_tags"] == "blue,canary"
    assert vms[0].ip_addresses == ("2001:db8:aa::10",)
    assert vms[2].ip_addresses == ("10.1.0.12",)  # on two networks, listed once
    assert [vm.name for vm in tagged] == ["api-0"]
    # Nova's own server tags (2.26+) are tags too: filterable and searchable.
    assert vms[0].tags == {"tier": "api", "replicas": "3", "blue": "", "canary": ""}
    assert [vm.name for vm in tagged_nova] == ["api-0"]
    assert [vm.name for vm in found] == ["api-0"]
    assert [vm.name for vm in shutoff] == ["api-2"]
    hosts = {call.request.url.host for call in route.calls}
    assert hosts == {"compute.one.test"}  # the link's host is never contacted
    markers = [call.request.url.params.get("marker") for call in route.calls]
    assert markers[:2] == [None, "5e4d3c2b-2222-4bbb-9ccc-000000000011"]
    statuses = [call.request.url.params.get("status") for call in route.calls]
    assert "SHUTOFF" in statuses


# -- errors ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_nova_fault_bodies_keep_their_message(router: respx.MockRouter) -> None:
    keystone(router)
    missing = "5a6b7c8d-0000-4000-8000-00000000dead"
    router.get(f"{COMPUTE}/servers/{missing}").mock(
        return_value=httpx.Response(
            404,
            json={
                "itemNotFound": {"code": 404, "message": f"Instance {missing} could not be found."}
            },
            headers={"x-openstack-request-id": "req-0e1d2c3b-4a59-4687-9a8b-7c6d5e4f3a2b"},
        )
    )
    router.get(f"{COMPUTE}/servers/detail").mock(
        return_value=httpx.Response(500, json=real("nova_error_500_computefault"))
    )
    async with await connected(max_retries="0") as provider:
        with pytest.raises(VMNotFoundError) as not_found:
            await provider.get_vm(missing)
        with pytest.raises(ProviderUnavailableError) as fault:
            await provider.list_vms()
    assert "could not be found" in str(not_found.value)
    assert not_found.value.request_id == "req-0e1d2c3b-4a59-4687-9a8b-7c6d5e4f3a2b"
    assert "Unexpected API Error" in str(fault.value)
    for error in (not_found.value, fault.value):
        assert SUBJECT not in str(error)
        assert SECRET not in str(error)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "fixture", "header"),
    [
        (413, "nova_error_413_overlimit", "2"),  # old Nova's rate limits: 413 overLimit
        (429, "nova_error_429_overlimit", None),  # retryAfter in the body only
    ],
)
async def test_nova_over_limit_is_a_rate_limit_with_its_wait(
    router: respx.MockRouter, status: int, fixture: str, header: str | None
) -> None:
    keystone(router)
    headers = {"Retry-After": header} if header else {}
    router.get(f"{COMPUTE}/servers/detail").mock(
        return_value=httpx.Response(status, json=real(fixture), headers=headers)
    )
    async with await connected(max_retries="0") as provider:
        with pytest.raises(RateLimitError) as limited:
            await provider.list_vms()
    expected = float(real(fixture)["overLimit"]["retryAfter"])
    assert limited.value.retry_after == expected
    assert real(fixture)["overLimit"]["message"] in str(limited.value)


@pytest.mark.anyio
async def test_an_over_limit_then_success_is_retried(router: respx.MockRouter) -> None:
    keystone(router)
    route = router.get(f"{COMPUTE}/servers/detail").mock(
        side_effect=[
            httpx.Response(
                413, json=real("nova_error_413_overlimit"), headers={"Retry-After": "0"}
            ),
            httpx.Response(200, json=real("nova_servers_detail_v2.96_page2")),
        ]
    )
    async with await connected() as provider:
        assert [vm.name for vm in await provider.list_vms()] == ["api-2"]
    assert route.call_count == 2


@pytest.mark.anyio
async def test_a_quota_413_is_not_retried_and_says_why(router: respx.MockRouter) -> None:
    keystone(router)
    route = router.get(f"{COMPUTE}/servers/detail").mock(
        return_value=httpx.Response(413, json=real("nova_error_413_quota"))
    )
    async with await connected() as provider:
        with pytest.raises(ProviderAPIError, match="Quota exceeded for instances") as error:
            await provider.list_vms()
    assert not isinstance(error.value, RateLimitError)
    assert route.call_count == 1


@pytest.mark.anyio
async def test_keystone_401_is_an_authentication_error(router: respx.MockRouter) -> None:
    router.post(f"{KEYSTONE}/auth/tokens").mock(
        return_value=httpx.Response(401, json=real("keystone_error_401_methods"))
    )
    with pytest.raises(AuthenticationError, match="requires authentication") as refused:
        await connected()
    assert SECRET not in str(refused.value)


# -- the catalog -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_without_a_region_image_comes_from_the_compute_region(
    router: respx.MockRouter,
) -> None:
    keystone(router)
    provider = await connected(region="")
    api = provider._api
    assert api is not None
    assert api.endpoint("compute") == COMPUTE
    assert api.endpoint("image") == IMAGE  # not RegionTwo's, listed first
    await provider.disconnect()


@pytest.mark.anyio
async def test_the_internal_interface_and_a_v2_suffixed_glance(router: respx.MockRouter) -> None:
    keystone(router)
    provider = await connected(interface="internal")
    api = provider._api
    assert api is not None
    assert api.endpoint("compute") == "https://compute.one-internal.test:8774/v2.1"
    assert api.endpoint("image") == "https://image.one-internal.test:9292"
    await provider.disconnect()


@pytest.mark.anyio
@pytest.mark.parametrize(
    "token",
    [
        "keystone_token_domain_scoped",
        "keystone_token_unscoped",
        "keystone_token_appcred_empty_catalog",
    ],
)
async def test_a_token_without_compute_says_to_scope_it_to_a_project(
    router: respx.MockRouter, token: str
) -> None:
    keystone(router, token)
    with pytest.raises((ConfigurationError, ProviderAPIError), match="project") as error:
        await connected()
    assert SUBJECT not in str(error.value)


# -- export ----------------------------------------------------------------------------


def glance(router: respx.MockRouter, states: list[dict[str, Any]], data: bytes) -> respx.Route:
    image_id = states[0]["id"]
    router.get(f"{IMAGE}/v2/images/{image_id}").mock(
        side_effect=[httpx.Response(200, json=state) for state in states]
    )
    router.get(f"{IMAGE}/v2/images/{image_id}/file").mock(
        return_value=httpx.Response(200, content=data) if data else httpx.Response(204)
    )
    return router.delete(f"{IMAGE}/v2/images/{image_id}").mock(return_value=httpx.Response(204))


def server_route(router: respx.MockRouter, server: dict[str, Any]) -> respx.Route:
    router.get(f"{COMPUTE}/servers/{server['id']}").mock(
        return_value=httpx.Response(200, json={"server": server})
    )
    return router.post(f"{COMPUTE}/servers/{server['id']}/action")


@pytest.mark.anyio
async def test_a_queued_image_with_null_format_and_checksum_exports_by_os_hash(
    router: respx.MockRouter, tmp_path: Path
) -> None:
    keystone(router)
    server = real("nova_servers_detail_v2.96_page1")["servers"][0]
    queued = real("glance_image_queued")
    data = b"QFI\xfb" + bytes(range(256)) * 64
    active = copy.deepcopy(queued) | {
        "status": "active",
        "disk_format": "qcow2",
        "container_format": "bare",
        "size": len(data),
        "checksum": None,  # Glance with only the multihash configured
        "os_hash_algo": "sha512",
        "os_hash_value": hashlib.sha512(data).hexdigest(),
    }
    saving = copy.deepcopy(queued) | {"status": "saving"}
    deleted = glance(router, [queued, saving, active], data)
    server_route(router, server).mock(
        return_value=httpx.Response(202, json={"image_id": queued["id"]})
    )
    async with await connected() as provider:
        result = await provider.export_vm(API0, ExportOptions(output_path=tmp_path, format="qcow2"))
    assert result.metadata["verified"] == "sha512"
    assert (tmp_path / result.files[0]).read_bytes() == data
    assert deleted.call_count == 1


@pytest.mark.anyio
@pytest.mark.parametrize("status", ["killed", "deleted", "deactivated", "pending_delete"])
async def test_an_image_that_goes_bad_fails_the_export_and_is_deleted(
    router: respx.MockRouter, tmp_path: Path, status: str
) -> None:
    keystone(router)
    server = real("nova_servers_detail_v2.96_page1")["servers"][0]
    queued = real("glance_image_queued")
    deleted = glance(router, [queued, queued | {"status": status}], b"")
    server_route(router, server).mock(
        return_value=httpx.Response(202, json={"image_id": queued["id"]})
    )
    async with await connected() as provider:
        with pytest.raises(ExportError, match=status):
            await provider.export_vm(API0, ExportOptions(output_path=tmp_path, format="qcow2"))
    assert deleted.call_count == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_a_volume_backed_server_is_refused_before_any_snapshot(
    router: respx.MockRouter, tmp_path: Path
) -> None:
    # createImage of a volume-backed server snapshots its Cinder volumes; deleting the
    # Glance image afterwards leaves those snapshots behind. Nothing may be created.
    keystone(router)
    flavors(router)
    server = real(MIXED)["servers"][0]
    action = server_route(router, server).mock(return_value=httpx.Response(202, json={}))
    async with await connected() as provider:
        with pytest.raises(ExportError, match=r"volume-backed.*Cinder"):
            await provider.export_vm(BFV, ExportOptions(output_path=tmp_path, format="qcow2"))
    assert action.call_count == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_a_volume_snapshot_image_is_a_volume_error_not_a_format_error(
    router: respx.MockRouter, tmp_path: Path
) -> None:
    # The server names an image, but what createImage made is a volume snapshot (size 0,
    # no disk_format, a block_device_mapping property).
    keystone(router)
    server = real("nova_servers_detail_v2.96_page1")["servers"][0]
    snapshot = real("glance_image_volume_snapshot")
    deleted = glance(router, [snapshot], b"")
    server_route(router, server).mock(
        return_value=httpx.Response(202, json={"image_id": snapshot["id"]})
    )
    async with await connected() as provider:
        with pytest.raises(ExportError, match=r"volume-backed.*Cinder") as error:
            await provider.export_vm(API0, ExportOptions(output_path=tmp_path, format="qcow2"))
    assert "format" not in type(error.value).__name__.casefold()
    assert deleted.call_count == 1


@pytest.mark.anyio
async def test_a_conflicting_create_image_keeps_novas_reason(
    router: respx.MockRouter, tmp_path: Path
) -> None:
    keystone(router)
    server = real("nova_servers_detail_v2.96_page1")["servers"][0]
    server_route(router, server).mock(
        return_value=httpx.Response(409, json=real("nova_error_409_conflict"))
    )
    async with await connected() as provider:
        with pytest.raises(ProviderAPIError, match="while it is in vm_state building"):
            await provider.export_vm(API0, ExportOptions(output_path=tmp_path, format="qcow2"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_an_image_whose_download_is_204_is_still_a_volume_error(
    router: respx.MockRouter, tmp_path: Path
) -> None:
    # No block_device_mapping to tell (an older Nova): Glance's 204 on download does.
    keystone(router)
    server = real("nova_servers_detail_v2.96_page1")["servers"][0]
    snapshot = real("glance_image_volume_snapshot") | {"disk_format": "qcow2"}
    del snapshot["block_device_mapping"], snapshot["bdm_v2"]
    deleted = glance(router, [snapshot], b"")
    server_route(router, server).mock(
        return_value=httpx.Response(202, json={"image_id": snapshot["id"]})
    )
    async with await connected() as provider:
        with pytest.raises(ExportError, match=r"volume-backed.*HTTP 204.*Cinder"):
            await provider.export_vm(API0, ExportOptions(output_path=tmp_path, format="qcow2"))
    assert deleted.call_count == 1
    assert list(tmp_path.iterdir()) == []


def test_non_string_metadata_is_kept_as_json_text() -> None:
    # Nova stores strings; a proxy or an old cloud has been seen sending numbers/booleans.
    from hypersdk_openstack import server_to_vm

    server = real("nova_servers_detail_v2.96_page1")["servers"][1]
    server["metadata"] = {"replicas": 3, "primary": True, "extra": None, "name": "x"}
    vm = server_to_vm(server, operation="list_vms")
    assert vm.tags == {"replicas": "3", "primary": "true", "extra": "null", "name": "x"}
