"""Nova discovery: the server mapping, marker pagination, filter push-down, microversions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import respx
from hypersdk_openstack import PROVIDER_TYPE, OpenStackProvider, server_filters, server_to_vm
from os_fakes import KEYSTONE, NOVA, OpenStackWorld, load, mount

from hypersdk import ProviderAPIError, ProviderConfig, VMFilter, VMInfo, VMNotFoundError
from hypersdk_testing import FakeCloud, standard_world

TOKEN = "gAAAAABm-listing-token"


def config() -> ProviderConfig:
    return ProviderConfig(
        type="openstack",
        endpoint=KEYSTONE,
        username="demo",
        password=TOKEN,
        metadata={"project_name": "demo", "retry_backoff": "0"},
    )


def cloud_of(vms: list[VMInfo], page_size: int = 20) -> FakeCloud:
    return FakeCloud(
        vms, token=TOKEN, page_size=page_size, auth_header="X-Auth-Token", auth_scheme=""
    )


def test_a_nova_server_maps_onto_vminfo() -> None:
    server = load("nova_servers_detail")["servers"][0]
    vm = server_to_vm(server, operation="list_vms")
    assert (vm.id, vm.name, vm.state, vm.power_state) == (server["id"], "web-1", "active", "on")
    assert (vm.num_cpus, vm.memory_mb, vm.storage_gb) == (1, 2048, 20)
    assert vm.location == "nova"
    assert vm.ip_addresses == ("10.0.0.12", "fd5e:7a6b:91d0::3", "203.0.113.24")
    assert vm.tags == {"env": "prod", "role": "web"}
    assert vm.created_at == datetime(2024, 4, 2, 8, 15, 2, tzinfo=UTC)
    assert vm.created_at.tzinfo is not None
    assert vm.updated_at is not None
    assert vm.metadata["flavor"] == "m1.small"
    assert vm.metadata["image_id"] == "1bea47ed-f6a9-463b-b423-14b9cca9ad27"
    stopped = server_to_vm(load("nova_servers_detail")["servers"][1], operation="list_vms")
    assert (stopped.state, stopped.power_state, stopped.location) == ("shutoff", "off", "az-2")


@pytest.mark.parametrize("broken", [None, [], "server", {"id": 42}, {"name": "web-1"}])
def test_a_malformed_server_is_an_api_error(broken: object) -> None:
    with pytest.raises(ProviderAPIError, match="server object"):
        server_to_vm(broken, operation="list_vms")


@pytest.mark.parametrize(
    ("wanted", "params"),
    [
        (VMFilter(), {}),
        (VMFilter(name_pattern="web-*"), {"name": "[wW][eE][bB]-"}),
        (VMFilter(name_pattern="*db?primary*"), {"name": "[pP][rR][iI][mM][aA][rR][yY]"}),
        (VMFilter(name_pattern="ab.c*"), {"name": "[aA][bB]"}),  # "." never reaches a regex
        (VMFilter(name_pattern="[ab]*"), {}),
        (VMFilter(name_pattern="ünï*"), {}),
        (VMFilter(name_pattern="*"), {}),
        (VMFilter(state="shutoff"), {"status": "SHUTOFF"}),
        (VMFilter(state="running"), {}),  # not a Nova status: local only
    ],
)
def test_only_superset_filters_are_pushed_to_nova(wanted: VMFilter, params: dict[str, str]) -> None:
    assert server_filters(wanted) == params


@pytest.mark.anyio
async def test_pagination_follows_the_next_marker_never_the_link_host() -> None:
    vms = list(standard_world(PROVIDER_TYPE, 45))
    cloud = cloud_of(vms)
    with respx.mock(assert_all_called=False) as router:
        mount(router, cloud)
        async with OpenStackProvider() as provider:
            await provider.connect(config())
            listed = await provider.list_vms()
        pages = [c.request.url for c in router.calls if c.request.url.path.endswith("/detail")]
    assert [vm.id for vm in listed] == [vm.id for vm in vms]
    assert [url.params.get("marker") for url in pages] == [None, vms[19].id, vms[39].id]
    assert {url.host for url in pages} == {"nova.test"}  # not nova-public.example.test


@pytest.mark.anyio
async def test_filters_go_to_nova_and_matches_decides() -> None:
    vms = list(standard_world(PROVIDER_TYPE, 80))
    cloud = cloud_of(vms)
    wanted = VMFilter(name_pattern="VM-*1", state="active")
    with respx.mock(assert_all_called=False) as router:
        mount(router, cloud)
        async with OpenStackProvider() as provider:
            await provider.connect(config())
            listed = await provider.list_vms(wanted)
        query = next(c.request.url.params for c in router.calls if "detail" in str(c.request.url))
    assert query["name"] == "[vV][mM]-"
    assert query["status"] == "ACTIVE"
    assert [vm.id for vm in listed] == [vm.id for vm in vms if wanted.matches(vm)]
    assert listed, "the filter should match something in this world"


@pytest.mark.anyio
async def test_an_old_nova_gets_2_1_and_flavors_are_looked_up_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    vms = list(standard_world(PROVIDER_TYPE, 12))
    cloud = cloud_of(vms)
    with respx.mock(assert_all_called=False) as router:
        mount(router, cloud, OpenStackWorld(max_microversion="2.38"))
        async with OpenStackProvider() as provider:
            await provider.connect(config())
            listed = await provider.list_vms()
        flavor_calls = [c for c in router.calls if "/flavors/" in c.request.url.path]
    assert [(vm.num_cpus, vm.memory_mb, vm.storage_gb) for vm in listed] == [
        (vm.num_cpus, vm.memory_mb, vm.storage_gb) for vm in vms
    ]
    distinct = {(vm.num_cpus, vm.memory_mb, vm.storage_gb) for vm in vms}
    assert len(flavor_calls) == len(distinct)
    assert any("HTTP 406" in record.getMessage() for record in caplog.records)


@pytest.mark.anyio
async def test_a_next_link_that_repeats_is_an_error_not_a_loop() -> None:
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{KEYSTONE}/auth/tokens").respond(
            201, json=load("keystone_token_password"), headers={"X-Subject-Token": TOKEN}
        )
        router.get(f"{NOVA}/servers/detail").respond(200, json=load("nova_servers_detail"))
        async with OpenStackProvider() as provider:
            await provider.connect(config())
            with pytest.raises(ProviderAPIError, match="same next page twice"):
                await provider.list_vms()


@pytest.mark.anyio
@pytest.mark.parametrize("identifier", ["../flavors/1", "a b", "", "x" * 65, "?marker=1"])
async def test_get_vm_refuses_what_is_no_server_id_without_a_request(identifier: str) -> None:
    cloud = cloud_of(list(standard_world(PROVIDER_TYPE, 1)))
    with respx.mock(assert_all_called=False) as router:
        mount(router, cloud)
        async with OpenStackProvider() as provider:
            await provider.connect(config())
            before = len(router.calls)
            with pytest.raises(VMNotFoundError):
                await provider.get_vm(identifier)
            assert len(router.calls) == before


@pytest.mark.anyio
async def test_get_vm_404_is_vm_not_found() -> None:
    cloud = cloud_of(list(standard_world(PROVIDER_TYPE, 1)))
    with respx.mock(assert_all_called=False) as router:
        mount(router, cloud)
        async with OpenStackProvider() as provider:
            await provider.connect(config())
            with pytest.raises(
                VMNotFoundError, match=r"5a6b7c8d-0000-4000-8000-000000000000.*not found"
            ):
                await provider.get_vm("5a6b7c8d-0000-4000-8000-000000000000")
