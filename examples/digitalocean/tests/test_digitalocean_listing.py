"""list_vms, get_vm and search_vms against DigitalOcean's real response shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import pytest
import respx
from do_fakes import BASE, DropletsApi, connected, droplet, load, serve
from hypersdk_digitalocean import droplet_to_vm, matches_filter, parse_tags, tag_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypersdk import (
    ProviderAPIError,
    ProviderUnavailableError,
    VMFilter,
    VMNotFoundError,
    search_matches,
)


def serve_fixture(router: respx.MockRouter, name: str, *, gpu: str | None = None) -> None:
    """Serve a fixture list as the only page (and ``gpu`` for ``type=gpus``)."""
    gpus = load(gpu) if gpu else {"droplets": [], "links": {}, "meta": {"total": 0}}
    router.get("/droplets", params={"type": "gpus"}, name="gpus").respond(200, json=gpus)
    router.get("/droplets", name="droplets").respond(200, json=load(name))


# -- mapping ----------------------------------------------------------------------------


def test_the_example_droplet_maps_to_every_vminfo_field() -> None:
    vm = droplet_to_vm(load("droplet_get")["droplet"])
    assert vm.provider == "digitalocean"
    assert vm.id == "3164444"
    assert vm.name == "example.com"
    assert (vm.state, vm.power_state) == ("active", "on")
    assert vm.location == "nyc3"
    assert vm.guest_os == "Ubuntu 20.04 (LTS) x64"
    assert (vm.memory_mb, vm.num_cpus, vm.storage_gb) == (1024, 1, 25)
    assert vm.ip_addresses == ("192.241.165.154", "10.128.192.124", "2604:a880:0:1010::18a:a001")
    assert vm.tags == {"web": "", "env": "prod"}
    assert vm.created_at == datetime(2020, 7, 21, 18, 37, 44, tzinfo=UTC)
    assert vm.metadata["size_slug"] == "s-1vcpu-1gb"
    assert vm.metadata["image_slug"] == "ubuntu-20-04-x64"
    assert vm.metadata["do_tags"] == "web,env:prod"
    assert vm.metadata["vpc_uuid"] == "760e09ef-dc84-11e8-981e-3cfdfeaae000"


def test_the_gpu_droplets_space_separated_timestamp_is_timezone_aware() -> None:
    vm = droplet_to_vm(load("droplets_list_gpu")["droplets"][0])
    assert vm.created_at == datetime(2024, 9, 30, 15, 23, 36, tzinfo=UTC)
    assert vm.guest_os == "Ubuntu AI/ML Ready H100x1"
    assert (vm.memory_mb, vm.num_cpus, vm.storage_gb) == (245760, 20, 720)
    assert vm.tags == {}


@pytest.mark.parametrize(
    ("status", "power"), [("active", "on"), ("off", "off"), ("archive", "off"), ("new", "starting")]
)
def test_status_maps_to_power_state(status: str, power: str) -> None:
    vm = droplet_to_vm(droplet(1, "a", status=status))
    assert (vm.state, vm.power_state) == (status, power)


def test_tags_key_value_and_bare() -> None:
    assert parse_tags(["web", "env:prod", "a:b:c", ":x", "x:", "env:stage"]) == {
        "web": "",
        "env": "prod",
        "a": "b:c",
        ":x": "",
        "x:": "",
        "env:stage": "",  # the key is taken: kept whole, not dropped
    }


@settings(max_examples=40)
@given(st.lists(st.text(alphabet="ab:_-", min_size=1, max_size=6), max_size=6))
def test_tag_for_inverts_parse_tags(tags: list[str]) -> None:
    for key, value in parse_tags(tags).items():
        assert tag_for(key, value) in tags


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "3164444"),
        ("name", ""),
        ("memory", "1024"),
        ("vcpus", -1),
        ("tags", "web"),
        ("created_at", "yesterday"),
        ("networks", {"v4": [{"ip_address": "not-an-ip", "type": "public"}]}),
        ("region", ["nyc3"]),
    ],
)
def test_wrongly_shaped_droplets_are_provider_api_errors(field: str, value: object) -> None:
    item = droplet(1, "web")
    item[field] = value
    with pytest.raises(
        ProviderAPIError, match={"id": r"\$\.id", "networks": "ip_addresses"}.get(field, field)
    ):
        droplet_to_vm(item)


# -- listing ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_list_vms_maps_the_fixture_list_then_gpu_droplets(router: respx.MockRouter) -> None:
    serve_fixture(router, "droplets_list", gpu="droplets_list_gpu")
    async with connected() as provider:
        vms = await provider.list_vms()
    assert [vm.id for vm in vms] == ["3164444", "3164459", "3164412", "448543583"]
    assert [vm.tags for vm in vms[:3]] == [
        {"web": "", "env": "prod"},
        {"storage": "", "env": "prod"},
        {"env": "stage"},
    ]
    request = router["droplets"].calls.last.request
    assert request.url.params["per_page"] == "200"
    assert request.url.params["page"] == "1"


@pytest.mark.anyio
async def test_gpu_listing_can_be_switched_off(router: respx.MockRouter) -> None:
    serve_fixture(router, "droplets_list", gpu="droplets_list_gpu")
    async with connected(include_gpus="false") as provider:
        assert len(await provider.list_vms()) == 3
    assert not router["gpus"].called


@pytest.mark.anyio
@pytest.mark.parametrize(("count", "pages"), [(0, 1), (200, 1), (401, 3)])
async def test_every_page_is_listed_in_order(
    router: respx.MockRouter, count: int, pages: int
) -> None:
    api = DropletsApi([droplet(i + 1, f"vm-{i:05d}") for i in range(count)])
    serve(router, api)
    async with connected(include_gpus="false") as provider:
        vms = await provider.list_vms()
    assert [vm.name for vm in vms] == [f"vm-{i:05d}" for i in range(count)]
    assert sorted(int(query["page"]) for query in api.queries) == list(range(1, pages + 1))
    assert {query["per_page"] for query in api.queries} == {"200"}


@pytest.mark.anyio
@pytest.mark.parametrize(("limit", "expected"), [("3", 3), ("8", 8), ("", 19)])
async def test_pages_after_the_first_are_fetched_concurrently_within_the_bound(
    router: respx.MockRouter, limit: str, expected: int
) -> None:
    # The fake pages by 5 (as a server may): 20 pages of a small world stay fast to map.
    api = DropletsApi([droplet(i + 1, f"vm-{i}") for i in range(100)], delay=0.05, page_size=5)
    serve(router, api)
    async with connected(include_gpus="false", max_concurrency=limit) as provider:
        vms = await provider.list_vms()
    assert [vm.name for vm in vms] == [f"vm-{i}" for i in range(100)]
    # 1 page, then 19 pages `expected` at a time: concurrency is what is pinned here; how
    # long that takes is the benchmark's to say (benchmarks/bench_digitalocean.py).
    assert api.max_in_flight == expected


@pytest.mark.anyio
async def test_a_server_with_smaller_pages_is_still_read_completely(
    router: respx.MockRouter,
) -> None:
    api = DropletsApi([droplet(i + 1, f"vm-{i}") for i in range(50)], page_size=7)
    serve(router, api)
    async with connected(include_gpus="false") as provider:
        assert [vm.id for vm in await provider.list_vms()] == [str(i + 1) for i in range(50)]


@pytest.mark.anyio
async def test_without_meta_total_the_next_links_are_followed(router: respx.MockRouter) -> None:
    api = DropletsApi([droplet(i + 1, f"vm-{i}") for i in range(450)], with_total=False)
    serve(router, api)
    async with connected(include_gpus="false") as provider:
        assert len(await provider.list_vms()) == 450
    assert [query["page"] for query in api.queries] == ["1", "2", "3"]


@pytest.mark.anyio
async def test_a_list_that_grew_while_paging_is_read_to_the_end(router: respx.MockRouter) -> None:
    droplets = [droplet(i + 1, f"vm-{i}") for i in range(20)]
    api = DropletsApi(droplets, page_size=5)
    original = api.__call__

    async def grow(request: httpx.Request) -> httpx.Response:
        response = await original(request)
        if request.url.params["page"] == "1":
            api.droplets = [*droplets, *(droplet(i + 1, f"vm-{i}") for i in range(20, 33))]
            body = response.json()
            body["meta"]["total"] = 20
            return httpx.Response(200, json=body)
        return response

    router.get("/droplets").mock(side_effect=grow)
    async with connected(include_gpus="false") as provider:
        assert [vm.name for vm in await provider.list_vms()] == [f"vm-{i}" for i in range(33)]


@pytest.mark.anyio
async def test_duplicates_from_a_shifting_list_are_dropped(router: respx.MockRouter) -> None:
    page_one = {"droplets": [droplet(1, "a"), droplet(2, "b")], "links": {"pages": {"next": "x"}}}
    page_two = {"droplets": [droplet(2, "b"), droplet(3, "c")], "links": {"pages": {}}}
    page_one["meta"] = page_two["meta"] = {"total": 4}
    router.get("/droplets", params={"page": "1"}).respond(200, json=page_one)
    router.get("/droplets", params={"page": "2"}).respond(200, json=page_two)
    async with connected(include_gpus="false") as provider:
        assert [vm.id for vm in await provider.list_vms()] == ["1", "2", "3"]


# -- filters ----------------------------------------------------------------------------

WORLD = [
    droplet(1, "web-1", tags=["web", "env:prod"], region="nyc3", memory=2048, vcpus=2),
    droplet(2, "Web-2", tags=["web", "env:stage"], region="fra1", status="off"),
    droplet(3, "db-1", tags=["env:prod", "env:stage", "db"], memory=8192, vcpus=4),
    droplet(4, "worker", tags=["a:b:c", "x:"], region="sgp1", status="new"),
    droplet(5, "web-10", tags=[], region="nyc3", memory=512),
]
GPUS = [droplet(9, "gpu-1", tags=["web", "env:prod"], region="tor1", memory=245760, vcpus=20)]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("wanted", "pushed"),
    [
        (VMFilter(tags={"env": "prod"}), {"tag_name": "env:prod"}),
        (VMFilter(tags={"web": ""}), {"tag_name": "web"}),
        (VMFilter(name_pattern="WEB-1"), {"name": "WEB-1"}),
        (VMFilter(name_pattern="web-*", tags={"env": "prod"}), {"tag_name": "env:prod"}),
        (VMFilter(name_pattern="web-1", tags={"env": "prod"}), {"name": "web-1"}),
        (VMFilter(name_pattern="web-?"), {}),
        (VMFilter(name_pattern="[wd]*"), {}),
        (VMFilter(tags={"env": "prod", "web": ""}), {}),
        (VMFilter(tags={"a:b": "c"}), {"tag_name": "a:b:c"}),
        (VMFilter(tags={"env": "stage"}), {"tag_name": "env:stage"}),
        (VMFilter(tags={"env:stage": ""}), {"tag_name": "env:stage"}),
        (VMFilter(tags={"env": "pr\u00f6d"}), {}),
        (VMFilter(tags={"env": "a b"}), {}),
        (VMFilter(state="off", min_cpus=1), {}),
    ],
)
async def test_pushdown_is_exact_and_the_result_is_the_reference(
    router: respx.MockRouter, wanted: VMFilter, pushed: dict[str, str]
) -> None:
    api = DropletsApi(WORLD, gpus=GPUS)
    serve(router, api)
    async with connected() as provider:
        everything = [droplet_to_vm(item) for item in WORLD + GPUS]
        api.queries.clear()
        result = await provider.list_vms(wanted)
    assert result == [vm for vm in everything if matches_filter(wanted, vm)]
    sent = {k: v for k, v in api.regular_queries[0].items() if k not in ("page", "per_page")}
    assert sent == pushed
    gpu_queries = [query for query in api.queries if query.get("type") == "gpus"]
    assert [set(query) for query in gpu_queries] == [{"type", "page", "per_page"}]


filters = st.builds(
    VMFilter,
    name_pattern=st.sampled_from(["", "web-1", "WEB-1", "web-*", "*-1", "db-?", "gpu-1", "x"]),
    state=st.sampled_from(["", "active", "OFF", "new"]),
    power_state=st.sampled_from(["", "on", "off"]),
    tags=st.dictionaries(
        st.sampled_from(["env", "web", "db", "a", "x:", "env:stage", "a:b"]),
        st.sampled_from(["", "prod", "stage", "b:c", "c"]),
        max_size=2,
    ),
    location=st.sampled_from(["", "nyc3", "FRA1", "tor1"]),
    min_memory_mb=st.sampled_from([0, 1024, 4096]),
    min_cpus=st.sampled_from([0, 2]),
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wanted=st.lists(filters, min_size=10, max_size=10))
def test_list_vms_always_equals_the_reference_semantics(wanted: list[VMFilter]) -> None:
    everything = [droplet_to_vm(item) for item in WORLD + GPUS]

    async def check() -> None:
        with respx.mock(base_url=BASE) as mock:
            mock.get("/account").respond(200, json=load("account"))
            mock.get("/droplets").mock(side_effect=DropletsApi(WORLD, gpus=GPUS, page_size=2))
            async with connected() as provider:
                for each in wanted:
                    expected = [vm for vm in everything if matches_filter(each, vm)]
                    assert await provider.list_vms(each) == expected, each

    anyio.run(check)


# -- failures ---------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>not json</html>"),
        httpx.Response(200, json=["droplets"]),
        httpx.Response(200, json={"droplets": None}),
        httpx.Response(200, json={"unexpected": {"shape": True}}),
        httpx.Response(200, json={"droplets": {"id": 1}}),
        httpx.Response(200, json={"droplets": [{"name": "no id"}]}),
    ],
)
async def test_malformed_listings_are_provider_api_errors(
    router: respx.MockRouter, response: httpx.Response
) -> None:
    router.get("/droplets").mock(return_value=response)
    async with connected(include_gpus="false") as provider:
        with pytest.raises(ProviderAPIError):
            await provider.list_vms()


@pytest.mark.anyio
async def test_a_failing_later_page_fails_the_listing(router: respx.MockRouter) -> None:
    api = DropletsApi([droplet(i + 1, f"vm-{i}") for i in range(50)], page_size=5)

    async def fail_page_three(request: httpx.Request) -> httpx.Response:
        if request.url.params["page"] == "3":
            return httpx.Response(400, json={"id": "bad_request", "message": "page 3 broke"})
        return await api(request)

    router.get("/droplets").mock(side_effect=fail_page_three)
    async with connected(include_gpus="false") as provider:
        with pytest.raises(ProviderAPIError, match="page 3 broke"):
            await provider.list_vms()


@pytest.mark.anyio
async def test_transient_5xx_is_retried(router: respx.MockRouter) -> None:
    route = router.get("/droplets").mock(
        side_effect=[
            httpx.Response(500, json=load("error_500")),
            httpx.Response(503, text="unavailable"),
            httpx.Response(200, json=load("droplets_list")),
        ]
    )
    async with connected(include_gpus="false") as provider:
        assert len(await provider.list_vms()) == 3
    assert route.call_count == 3


@pytest.mark.anyio
async def test_a_503_retry_after_is_honoured(router: respx.MockRouter) -> None:
    route = router.get("/droplets").mock(
        side_effect=[
            httpx.Response(503, headers={"retry-after": "0.15"}, text="maintenance"),
            httpx.Response(200, json=load("droplets_list")),
        ]
    )
    async with connected(include_gpus="false") as provider:
        started = anyio.current_time()
        assert len(await provider.list_vms()) == 3
        assert anyio.current_time() - started >= 0.15
    assert route.call_count == 2


@pytest.mark.anyio
async def test_disconnect_during_a_call_is_not_connected_error(router: respx.MockRouter) -> None:
    serve(
        router, DropletsApi([droplet(i + 1, f"vm-{i}") for i in range(30)], page_size=5, delay=0.05)
    )
    async with connected(include_gpus="false", max_concurrency="1") as provider:
        failure: list[BaseException] = []

        async def list_all() -> None:
            try:
                await provider.list_vms()
            except Exception as exc:
                failure.append(exc)

        async with anyio.create_task_group() as group:
            group.start_soon(list_all)
            await anyio.sleep(0.08)  # page 2 is in flight; pages 3-6 are still to be sent
            await provider.disconnect()
    assert [type(exc).__name__ for exc in failure] == ["NotConnectedError"]


@pytest.mark.anyio
async def test_persistent_5xx_is_provider_unavailable_after_the_retry_budget(
    router: respx.MockRouter,
) -> None:
    route = router.get("/droplets").respond(500, json=load("error_500"))
    async with connected(include_gpus="false", max_retries="2") as provider:
        with pytest.raises(ProviderUnavailableError, match="Unexpected server-side error"):
            await provider.list_vms()
    assert route.call_count == 3


@pytest.mark.anyio
async def test_connection_failures_are_retried_then_mapped(router: respx.MockRouter) -> None:
    route = router.get("/droplets").mock(side_effect=httpx.ConnectError("refused"))
    async with connected(include_gpus="false", max_retries="1") as provider:
        with pytest.raises(ProviderUnavailableError, match="could not reach"):
            await provider.list_vms()
    assert route.call_count == 2


@pytest.mark.anyio
async def test_a_deadline_is_respected(router: respx.MockRouter) -> None:
    serve(router, DropletsApi([droplet(1, "slow")], delay=5))
    async with connected() as provider:
        with anyio.move_on_after(0.1) as scope:
            await provider.list_vms()
    assert scope.cancelled_caught


# -- get_vm and search_vms --------------------------------------------------------------


@pytest.mark.anyio
async def test_get_vm_maps_the_droplet(router: respx.MockRouter) -> None:
    router.get("/droplets/3164444").respond(200, json=load("droplet_get"))
    async with connected() as provider:
        vm = await provider.get_vm("3164444")
    assert vm == droplet_to_vm(load("droplet_get")["droplet"])


@pytest.mark.anyio
async def test_get_vm_404_is_vm_not_found_with_the_apis_message(
    router: respx.MockRouter,
) -> None:
    router.get("/droplets/42").respond(404, json=load("error_404"))
    async with connected() as provider:
        with pytest.raises(VMNotFoundError, match="could not be found") as caught:
            await provider.get_vm("42")
    assert caught.value.status == 404


@pytest.mark.anyio
@pytest.mark.parametrize(
    "identifier", ["", "web-1", "../account", "1/actions", "-1", "1.0", " 1", "١٢", "9" * 20]
)
async def test_get_vm_with_a_non_numeric_id_makes_no_request(
    router: respx.MockRouter, identifier: str
) -> None:
    async with connected() as provider:
        with pytest.raises(VMNotFoundError, match="droplet ids are numbers"):
            await provider.get_vm(identifier)
    assert [call.request.url.path for call in router.calls] == ["/v2/account"]


@pytest.mark.anyio
@pytest.mark.parametrize("query", ["", "web", "WEB prod", "nyc3", "192.241", "stage", "db 8192"])
async def test_search_vms_is_the_reference_search(router: respx.MockRouter, query: str) -> None:
    serve(router, DropletsApi(WORLD, gpus=GPUS))
    everything: list[Any] = [droplet_to_vm(item) for item in WORLD + GPUS]
    async with connected() as provider:
        found = await provider.search_vms(query)
    assert found == [vm for vm in everything if search_matches(vm, query)]
