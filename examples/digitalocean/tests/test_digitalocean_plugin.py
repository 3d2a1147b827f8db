"""The plugin module contract, connecting, configuration and secret hygiene."""

from __future__ import annotations

import importlib.metadata
import logging
import re
from typing import TYPE_CHECKING

import httpx
import hypersdk_digitalocean
import pytest
import respx
from do_fakes import BASE, FAST, TOKEN, connected, make_config
from hypersdk_digitalocean import PLUGIN_INFO, DigitalOceanProvider, new_provider

import hypersdk
from hypersdk import (
    AuthenticationError,
    ConfigurationError,
    ExportOptions,
    NotConnectedError,
    Provider,
    ProviderConfig,
    Registry,
    Secret,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


def test_plugin_module_contract() -> None:
    assert isinstance(PLUGIN_INFO, hypersdk.PluginMetadata)
    assert PLUGIN_INFO.provider_type == "digitalocean"
    assert PLUGIN_INFO.version == hypersdk_digitalocean.__version__
    provider = new_provider(ProviderConfig(type="digitalocean"), logging.getLogger("t"))
    assert isinstance(provider, Provider)
    assert provider.type == PLUGIN_INFO.provider_type
    assert provider.name == "DigitalOcean"
    assert provider.get_export_capabilities() == PLUGIN_INFO.capabilities


def test_capabilities_say_snapshot_manifests_only() -> None:
    capabilities = PLUGIN_INFO.capabilities
    assert capabilities.supported_formats == ("snapshot",)
    assert not capabilities.supports_compression
    assert not capabilities.supports_streaming
    assert not capabilities.supports_format("qcow2")


def test_entry_point_names_the_module() -> None:
    points = importlib.metadata.entry_points(group="hypersdk.providers", name="digitalocean")
    assert [point.value for point in points] == ["hypersdk_digitalocean"]
    assert next(iter(points)).load() is hypersdk_digitalocean


@pytest.mark.anyio
async def test_the_plugin_manager_finds_and_loads_it_through_the_entry_point(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypersdk.plugins import PluginConfig, PluginManager, PluginStatus

    monkeypatch.delenv("HYPERSDK_PLUGIN_PATH", raising=False)
    manager = PluginManager(PluginConfig(system_directories=(), enabled_list=["digitalocean"]))
    [info] = [info for info in manager.load_all() if info.name == "digitalocean"]
    assert info.status is PluginStatus.LOADED, info.error
    assert info.kind == "entry_point"
    assert info.metadata == PLUGIN_INFO
    checks = manager.check_plugin("hypersdk_digitalocean")
    assert [check for check in checks if check.outcome == "fail"] == []
    assert any(check.outcome == "pass" for check in checks)
    config = make_config()
    async with manager.registry.create("digitalocean", config) as provider:
        await provider.connect(config)
    assert router["account"].call_count == 1


@pytest.mark.anyio
async def test_registry_builds_the_provider(router: respx.MockRouter) -> None:
    registry = Registry()
    registry.register(
        "digitalocean",
        lambda config: new_provider(config, logging.getLogger("t")),
        capabilities=PLUGIN_INFO.capabilities,
    )
    config = make_config()
    async with registry.create("digitalocean", config) as provider:
        await provider.connect(config)
        await provider.validate_credentials()
    assert router["account"].call_count == 2


@pytest.mark.anyio
async def test_connect_sends_bearer_user_agent_and_finite_timeouts(
    router: respx.MockRouter,
) -> None:
    async with connected() as provider:
        request = router["account"].calls.last.request
        assert request.url == f"{BASE}/account"
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        agent = request.headers["User-Agent"]
        assert f"hypersdk-digitalocean/{hypersdk_digitalocean.__version__}" in agent
        assert f"hypersdk/{hypersdk.__version__}" in agent
        timeout = request.extensions["timeout"]
        assert all(value is not None and 0 < value <= 30 for value in timeout.values())
        assert "dop_v1" not in repr(provider)


@pytest.mark.anyio
async def test_timeout_comes_from_the_config(router: respx.MockRouter) -> None:
    config = ProviderConfig(type="digitalocean", metadata=FAST, timeout=4.5)
    async with connected(config):
        timeout = router["account"].calls.last.request.extensions["timeout"]
        assert timeout == {"connect": 4.5, "read": 4.5, "write": 4.5, "pool": 4.5}


@pytest.mark.anyio
async def test_password_secret_is_used_when_metadata_has_no_token(
    router: respx.MockRouter,
) -> None:
    config = ProviderConfig(type="digitalocean", password=Secret(TOKEN))
    async with connected(config):
        pass
    assert router["account"].calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.anyio
async def test_missing_token_is_a_configuration_error_without_a_request(
    router: respx.MockRouter,
) -> None:
    provider = DigitalOceanProvider()
    with pytest.raises(ConfigurationError, match=r"metadata\['token'\]"):
        await provider.connect(ProviderConfig(type="digitalocean"))
    assert not router.calls
    with pytest.raises(NotConnectedError):
        await provider.list_vms()


@pytest.mark.anyio
async def test_rejected_token_raises_authentication_error_with_the_apis_message(
    router: respx.MockRouter,
) -> None:
    provider = DigitalOceanProvider()
    with pytest.raises(AuthenticationError, match="Unable to authenticate you") as caught:
        await provider.connect(make_config(token="dop_v1_wrong"))
    assert caught.value.status == 401
    assert "dop_v1_wrong" not in str(caught.value)
    with pytest.raises(NotConnectedError):
        await provider.validate_credentials()


@pytest.mark.anyio
async def test_validate_credentials_notices_a_revoked_token(router: respx.MockRouter) -> None:
    async with connected() as provider:
        router["account"].mock(side_effect=None, return_value=httpx.Response(401, json={}))
        with pytest.raises(AuthenticationError):
            await provider.validate_credentials()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("https://do-proxy.example", "https://do-proxy.example/v2/account"),
        ("https://do-proxy.example/v2/", "https://do-proxy.example/v2/account"),
        ("https://do-proxy.example:8443/base", "https://do-proxy.example:8443/base/v2/account"),
        ("http://127.0.0.1:9999", "http://127.0.0.1:9999/v2/account"),
    ],
)
async def test_endpoint_override(endpoint: str, expected: str) -> None:
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(expected).respond(200, json={"account": {"status": "active"}})
        config = ProviderConfig(type="digitalocean", endpoint=endpoint, metadata=FAST)
        async with connected(config):
            pass
    assert route.call_count == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            ProviderConfig(type="digitalocean", endpoint="http://api.example", metadata=FAST),
            "plain http",
        ),
        (
            ProviderConfig(
                type="digitalocean", endpoint="https://me:hunter2@api.example", metadata=FAST
            ),
            "user info",
        ),
        (ProviderConfig(type="digitalocean", endpoint="ftp://api.example", metadata=FAST), "http"),
        (make_config(max_concurrency="0"), "max_concurrency"),
        (make_config(max_retries="many"), "max_retries"),
        (make_config(poll_interval="nan"), "poll_interval"),
        (make_config(include_gpus="perhaps"), "include_gpus"),
        (make_config(token="dop v1 with spaces"), "token"),
    ],
)
async def test_bad_settings_are_configuration_errors_without_requests(
    router: respx.MockRouter, config: ProviderConfig, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        await DigitalOceanProvider().connect(config)
    assert "hunter2" not in str(caught.value)
    assert not router.calls


@pytest.mark.anyio
async def test_every_call_needs_a_connection_and_disconnect_is_idempotent(
    router: respx.MockRouter, tmp_path: object
) -> None:
    provider = DigitalOceanProvider()
    calls: list[Callable[[], Awaitable[object]]] = [
        provider.validate_credentials,
        provider.list_vms,
        lambda: provider.get_vm("1"),
        lambda: provider.search_vms("web"),
        lambda: provider.export_vm("1", ExportOptions(output_path="out", format="snapshot")),
    ]
    for call in calls:
        with pytest.raises(NotConnectedError, match="connect"):
            await call()
    await provider.connect(make_config())
    api = provider._api
    assert api is not None
    await provider.disconnect()
    await provider.disconnect()
    assert api.http.is_closed
    for call in calls:
        with pytest.raises(NotConnectedError):
            await call()


@pytest.mark.anyio
async def test_reconnect_closes_the_previous_client(router: respx.MockRouter) -> None:
    async with connected() as provider:
        first = provider._api
        await provider.connect(make_config())
        assert first is not None
        assert first.http.is_closed
        assert provider._api is not first


@pytest.mark.anyio
async def test_the_token_never_appears_in_logs_errors_or_urls(
    router: respx.MockRouter, caplog: pytest.LogCaptureFixture, tmp_path: object
) -> None:
    caplog.set_level(logging.DEBUG)
    router.get("/droplets/404").respond(404, json={"id": "not_found", "message": "nope"})
    router.get("/droplets").mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after": "0"}, json={"message": "slow"}),
            httpx.Response(500, json={"message": "boom"}),
            httpx.Response(200, json={"droplets": [], "links": {}, "meta": {"total": 0}}),
        ]
    )
    errors: list[BaseException] = []
    config = make_config(include_gpus="false")
    async with connected(config) as provider:
        await provider.list_vms()
        for call in (provider.get_vm("404"), provider.connect(make_config(token="dop_v1_bad"))):
            try:
                await call
            except hypersdk.HyperSDKError as exc:
                errors.append(exc)
        texts = [record.getMessage() for record in caplog.records]
        texts += [str(error) for error in errors] + [repr(error) for error in errors]
        texts += [str(call.request.url) for call in router.calls]
        texts += [repr(provider), repr(config), repr(provider._api)]
    assert len(errors) == 2
    assert any("HTTP 429" in text for text in texts)
    leaked = [text for text in texts if re.search(r"dop_v1_(0123|bad)", text)]
    assert leaked == []


@pytest.mark.parametrize(
    ("endpoint", "insecure", "verified"),
    [
        ("https://api.digitalocean.com", False, True),
        ("https://do-proxy.example", True, False),
        ("http://127.0.0.1:8080", False, False),  # no TLS, no CA bundle to load
    ],
)
def test_tls_verification_follows_the_endpoint_and_insecure(
    endpoint: str, insecure: bool, verified: bool
) -> None:
    import ssl

    from hypersdk_digitalocean._client import _tls
    from hypersdk_digitalocean._settings import settings_from_config

    config = ProviderConfig(
        type="digitalocean", endpoint=endpoint, insecure=insecure, metadata=FAST
    )
    context = _tls(settings_from_config(config))
    assert isinstance(context, ssl.SSLContext) == verified
    if verified:
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode is ssl.CERT_REQUIRED
