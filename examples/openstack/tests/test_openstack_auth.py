"""Keystone v3: password and application-credential bodies, the catalog, re-auth, secrecy."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest
import respx
from hypersdk_openstack import OpenStackProvider
from os_fakes import GLANCE, KEYSTONE, NOVA, OpenStackWorld, load, mount

from hypersdk import (
    AuthenticationError,
    ConfigurationError,
    NotConnectedError,
    PluginConfig,
    PluginManager,
    ProviderAPIError,
    ProviderConfig,
    VMInfo,
)
from hypersdk_testing import FakeCloud, Fault

if TYPE_CHECKING:
    from collections.abc import Iterator

TOKEN = "gAAAAABm-test-token-0123456789"
VM = VMInfo(provider="openstack", id="9c8d1f2e-3b4a-4c5d-8e6f-7a8b9c0d1e2f", name="web-1")


def config(**changes: object) -> ProviderConfig:
    base: dict[str, object] = {
        "type": "openstack",
        "endpoint": KEYSTONE,
        "username": "demo",
        "password": TOKEN,
        "metadata": {"project_name": "demo", "retry_backoff": "0"},
    }
    return ProviderConfig(**(base | changes))  # type: ignore[arg-type]


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud([VM], token=TOKEN, auth_header="X-Auth-Token", auth_scheme="")


@pytest.fixture
def router(cloud: FakeCloud) -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def auth_bodies(router: respx.MockRouter) -> list[dict[str, object]]:
    return [
        json.loads(call.request.content)
        for call in router.calls
        if "auth/tokens" in str(call.request.url)
    ]


@pytest.mark.anyio
async def test_password_auth_sends_the_v3_body_and_uses_the_subject_token(
    router: respx.MockRouter, cloud: FakeCloud
) -> None:
    mount(router, cloud)
    async with OpenStackProvider() as provider:
        await provider.connect(config())
        assert [vm.id for vm in await provider.list_vms()] == [VM.id]
    body = auth_bodies(router)[0]
    assert body == {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "demo", "domain": {"name": "Default"}, "password": TOKEN}
                },
            },
            "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}},
        }
    }
    nova = [call.request for call in router.calls if call.request.url.host == "nova.test"]
    assert nova
    assert all(request.headers["X-Auth-Token"] == TOKEN for request in nova)
    assert nova[0].headers["OpenStack-API-Version"] == "compute 2.47"


@pytest.mark.anyio
async def test_application_credential_auth(router: respx.MockRouter, cloud: FakeCloud) -> None:
    mount(router, cloud)
    async with OpenStackProvider() as provider:
        await provider.connect(
            ProviderConfig(
                type="openstack",
                endpoint="https://keystone.test:5000/",  # /v3 is added
                metadata={
                    "application_credential_id": "423f19a4ac1e4f48bbb4180756e6eb6c",
                    "application_credential_secret": TOKEN,
                },
            )
        )
        await provider.get_vm(VM.id)
    assert auth_bodies(router)[0] == {
        "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {
                    "id": "423f19a4ac1e4f48bbb4180756e6eb6c",
                    "secret": TOKEN,
                },
            }
        }
    }


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("region", "interface", "nova_host"),
    [("", "public", "nova.test"), ("RegionTwo", "public", "nova.two.test"),
     ("RegionOne", "internal", "nova.internal.test")],
)  # fmt: skip
async def test_the_catalog_endpoint_follows_region_and_interface(
    region: str, interface: str, nova_host: str
) -> None:
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{KEYSTONE}/auth/tokens").respond(
            201, json=load("keystone_token_password"), headers={"X-Subject-Token": TOKEN}
        )
        route = router.get(host=nova_host, path="/v2.1/servers/detail").respond(
            200, json={"servers": []}
        )
        async with OpenStackProvider() as provider:
            await provider.connect(
                config(region=region, metadata={"project_name": "demo", "interface": interface})
            )
            assert await provider.list_vms() == []
        assert route.called


@pytest.mark.anyio
async def test_a_region_without_endpoints_is_a_configuration_error(
    router: respx.MockRouter,
) -> None:
    router.post(f"{KEYSTONE}/auth/tokens").respond(
        201, json=load("keystone_token_password"), headers={"X-Subject-Token": TOKEN}
    )
    with pytest.raises(ConfigurationError, match=r"region 'Mars'.*public@RegionOne"):
        await OpenStackProvider().connect(config(region="Mars"))


@pytest.mark.anyio
async def test_keystone_without_subject_token_is_an_api_error(router: respx.MockRouter) -> None:
    router.post(f"{KEYSTONE}/auth/tokens").respond(201, json=load("keystone_token_password"))
    with pytest.raises(ProviderAPIError, match="X-Subject-Token"):
        await OpenStackProvider().connect(config())


@pytest.mark.anyio
async def test_wrong_password_is_an_authentication_error_without_the_secret(
    router: respx.MockRouter, cloud: FakeCloud
) -> None:
    mount(router, cloud)
    with pytest.raises(AuthenticationError) as caught:
        await OpenStackProvider().connect(config(password="not-the-password-xyz"))
    assert "not-the-password-xyz" not in str(caught.value)
    assert "requires authentication" in str(caught.value)  # Keystone's own words


@pytest.mark.anyio
async def test_an_expired_token_reauthenticates_once_and_retries(
    router: respx.MockRouter, cloud: FakeCloud, caplog: pytest.LogCaptureFixture
) -> None:
    world = mount(router, cloud)
    caplog.set_level(logging.DEBUG)
    async with OpenStackProvider() as provider:
        await provider.connect(config())
        assert world.auth_requests == 1
        cloud.inject(Fault.http(401), on="/servers/")
        assert (await provider.get_vm(VM.id)).id == VM.id
        assert world.auth_requests == 2
        # A token that stays rejected is the answer after one re-auth, not a loop.
        cloud.inject(Fault.http(401), times=None, on="/servers/")
        with pytest.raises(AuthenticationError):
            await provider.get_vm(VM.id)
        assert world.auth_requests == 3
        assert TOKEN not in repr(provider)
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


@pytest.mark.anyio
async def test_a_token_about_to_expire_is_renewed_before_the_request(
    router: respx.MockRouter, cloud: FakeCloud
) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    world = mount(router, cloud, OpenStackWorld(token_lifetime=soon))
    async with OpenStackProvider() as provider:
        await provider.connect(config())
        await provider.get_vm(VM.id)
    assert world.auth_requests == 2  # renewed ahead of expiry, without a 401 first


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"password": None}, "password"),
        ({"username": ""}, "username"),
        ({"endpoint": ""}, "endpoint"),
        ({"endpoint": "ftp://keystone.test"}, "endpoint"),
        ({"endpoint": "http://keystone.example.com/v3"}, "https"),
        ({"endpoint": "https://user:pw@keystone.test/v3"}, "user info"),
        ({"metadata": {"interface": "sideways"}}, "interface"),
        ({"metadata": {"poll_interval": "-1"}}, "poll_interval"),
        ({"metadata": {"keep_image": "maybe"}}, "keep_image"),
    ],
)
@pytest.mark.anyio
async def test_bad_config_is_refused_before_any_request(
    router: respx.MockRouter, changes: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named) as caught:
        await OpenStackProvider().connect(config(**changes))
    assert "pw@" not in str(caught.value)
    assert not router.calls


@pytest.mark.anyio
async def test_not_connected_before_connect() -> None:
    with pytest.raises(NotConnectedError):
        await OpenStackProvider().list_vms()


def test_the_plugin_loads_through_the_plugin_manager() -> None:
    manager = PluginManager(PluginConfig(directories=()))
    manager.load_all()
    info = manager.get_plugin("openstack")
    assert info is not None, [str(p.source) for p in manager.list_plugins()]
    assert info.status.value == "loaded", info.error
    assert manager.registry.is_registered("openstack")


def test_endpoints_in_the_fixture_catalog_are_the_fake_hosts() -> None:
    # The fixtures and os_fakes must agree, or the tests above would test nothing.
    urls = json.dumps(load("keystone_token_password"))
    assert httpx.URL(NOVA).host in urls
    assert httpx.URL(GLANCE).host in urls
