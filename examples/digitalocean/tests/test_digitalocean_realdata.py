"""Regressions found by driving the plugin with other clients' real DigitalOcean bodies.

Each test reproduces one finding of issue 16 from a body shaped like the real API's (see
``fixtures/README.md`` for where each fixture comes from).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
from do_fakes import DropletsApi, connected, droplet, load, serve
from hypersdk_digitalocean import droplet_to_vm, matches_filter, parse_tags, tag_for
from hypothesis import given, settings
from hypothesis import strategies as st

from hypersdk import RateLimitError, VMFilter, VMInfo, VMNotFoundError, search_matches

if TYPE_CHECKING:
    import respx

CLUSTER = "bd5f5959-5e1e-4205-a714-a914373942af"
NODES = ["pool-web-8xq2k", "pool-web-8xq2p", "pool-batch-3zt9a"]


def doks() -> list[dict[str, Any]]:
    droplets: list[dict[str, Any]] = load("droplets_list_doks")["droplets"]
    return droplets


def raw_tags(vm: VMInfo) -> set[str]:
    """The DigitalOcean tag strings a VMInfo's tags stand for."""
    return {f"{key}:{value}" if value else key for key, value in vm.tags.items()}


# -- item 1: DOKS node droplets carry k8s, k8s:<cluster>, k8s:worker -----------------------


def test_every_raw_tag_of_a_kubernetes_node_is_in_vminfo_tags() -> None:
    vms = [droplet_to_vm(item) for item in doks()]
    assert vms[0].tags == {"k8s": "", f"k8s:{CLUSTER}": "", "k8s:worker": ""}
    for vm, item in zip(vms, doks(), strict=True):
        assert raw_tags(vm) == set(item["tags"])
    # An ordinary droplet keeps the key: value form.
    assert vms[3].tags == {"web": "", "env": "prod"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "tags",
    [
        {"k8s": "worker"},
        {"k8s:worker": ""},
        {"k8s": ""},
        {"k8s": CLUSTER},
        {f"k8s:{CLUSTER}": ""},
    ],
)
async def test_a_tag_filter_returns_every_droplet_the_server_returns(
    router: respx.MockRouter, tags: dict[str, str]
) -> None:
    api = DropletsApi(doks())
    serve(router, api)
    async with connected() as provider:
        vms = await provider.list_vms(VMFilter(tags=tags))
    ((key, value),) = tags.items()
    assert api.regular_queries[0]["tag_name"] == (f"{key}:{value}" if value else key)
    assert [vm.name for vm in vms] == NODES


@pytest.mark.anyio
async def test_several_tags_of_one_key_filter_locally_as_the_server_would(
    router: respx.MockRouter,
) -> None:
    api = DropletsApi(doks())
    serve(router, api)
    async with connected() as provider:
        both = await provider.list_vms(VMFilter(tags={"k8s": "worker", "production": ""}))
        none = await provider.list_vms(VMFilter(tags={"k8s": "worker", "env": "prod"}))
    assert [vm.name for vm in both] == ["pool-batch-3zt9a"]
    assert none == []
    assert "tag_name" not in api.regular_queries[0]


@pytest.mark.anyio
@pytest.mark.parametrize(("query", "names"), [("worker", NODES), (CLUSTER[:8], NODES)])
async def test_search_finds_every_raw_tag(
    router: respx.MockRouter, query: str, names: list[str]
) -> None:
    serve(router, DropletsApi(doks()))
    async with connected() as provider:
        found = await provider.search_vms(query)
    assert [vm.name for vm in found] == names
    assert all(search_matches(vm, query) for vm in found)


_TAGS = st.lists(
    st.sampled_from(
        ["k8s", "k8s:worker", "k8s:x", "env:prod", "env", ":x", "x:", "a:b:c", "a:b", "a", "web"]
    ),
    max_size=6,
    unique=True,
)


@settings(max_examples=60)
@given(_TAGS)
def test_tags_are_lossless_and_each_raw_tag_matches_in_both_spellings(tags: list[str]) -> None:
    parsed = parse_tags(tags)
    as_strings = [f"{key}:{value}" if value else key for key, value in parsed.items()]
    assert sorted(as_strings) == sorted(tags)  # nothing lost, nothing invented
    vm = VMInfo(provider="digitalocean", id="1", name="n", tags=parsed)
    for tag in tags:
        key, colon, value = tag.partition(":")
        spellings = [{tag: ""}] + ([{key: value}] if colon and key and value else [])
        for spelling in spellings:
            assert matches_filter(VMFilter(tags=spelling), vm), (tag, spelling)
            assert tag_for(*next(iter(spelling.items()))) == tag
    for absent in {"k8s", "k8s:worker", "env:prod", "web"} - set(tags):
        assert not matches_filter(VMFilter(tags={absent: ""}), vm)


@settings(max_examples=60)
@given(st.dictionaries(st.sampled_from(["env", "web", "db"]), st.sampled_from(["", "p", "q"])))
def test_with_one_tag_per_key_the_filter_is_vmfilter_matches(tags: dict[str, str]) -> None:
    # Where VMInfo.tags can say everything, the plugin's filter is the SDK's reference.
    raw = [f"{key}:{value}" if value else key for key, value in tags.items()]
    vm = droplet_to_vm(droplet(1, "n", tags=raw))
    assert vm.tags == tags
    for key in ("env", "web", "db"):
        for value in ("", "p", "q"):
            wanted = VMFilter(tags={key: value})
            assert matches_filter(wanted, vm) == wanted.matches(vm)


# -- item 4: a listing without "droplets" is an empty page ---------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("body", [{}, load("droplets_list_meta_only"), {"links": {}, "meta": {}}])
async def test_a_listing_without_droplets_is_an_empty_page(
    router: respx.MockRouter, body: dict[str, object]
) -> None:
    router.get("/droplets").mock(return_value=httpx.Response(200, json=body))
    async with connected() as provider:
        assert await provider.list_vms() == []
        assert await provider.list_vms(VMFilter(tags={"k8s": "worker"})) == []


# -- item 6: the request id reaches the caller ---------------------------------------------


@pytest.mark.anyio
async def test_a_404_keeps_the_request_id_of_the_body(router: respx.MockRouter) -> None:
    router.get("/droplets/7").respond(404, json=load("error_404_request_id"))
    async with connected() as provider:
        with pytest.raises(VMNotFoundError) as caught:
            await provider.get_vm("7")
    assert caught.value.request_id == "4d9d8375-3c56-4925-a3e7-eb137fed17e9"
    assert "request id 4d9d8375-3c56-4925-a3e7-eb137fed17e9" in str(caught.value)


@pytest.mark.anyio
async def test_a_rate_limit_error_keeps_the_request_id_header(router: respx.MockRouter) -> None:
    headers = {"x-request-id": "a1b2c3d4-0000-4000-8000-000000000001", "retry-after": "120"}
    router.get("/droplets/7").respond(429, json=load("error_429"), headers=headers)
    async with connected(max_retry_wait="5") as provider:
        with pytest.raises(RateLimitError) as caught:
            await provider.get_vm("7")
    assert caught.value.request_id == "a1b2c3d4-0000-4000-8000-000000000001"
    assert caught.value.retry_after == 120
    assert "a1b2c3d4-0000-4000-8000-000000000001" in str(caught.value)
