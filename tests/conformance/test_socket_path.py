"""The socket path and the network guard, seen by a real non-httpx client (requests)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import requests
import respx

from hypersdk import VMInfo
from hypersdk_testing import FakeCloud, Fault
from hypersdk_testing._guard import NetworkGuard
from hypersdk_testing._loopback import LoopbackNetwork
from tests.conformance.test_variants import run_check

if TYPE_CHECKING:
    from collections.abc import Iterator

pytest_plugins = ["pytester"]

API = "https://api.multi.test/v1"
OBJECTS = "https://objects.multi.test"
COMPUTE = "https://compute.multi.test:8774/v2.1"


@pytest.fixture
def served() -> Iterator[tuple[LoopbackNetwork, respx.MockRouter, FakeCloud]]:
    """A FakeCloud of one VM whose router is served on loopback, as during a check."""
    cloud = FakeCloud([VMInfo(provider="multi", id="vm-1", name="one")])
    network = LoopbackNetwork()
    cloud._network = network
    router = respx.MockRouter(assert_all_mocked=True, assert_all_called=False)
    yield network, router, cloud
    network.close()


def _start(network: LoopbackNetwork, router: respx.MockRouter, cloud: FakeCloud) -> None:
    def unmatched(request: httpx.Request) -> httpx.Response:
        cloud.unmatched.append(request)
        raise httpx.ConnectError("no route", request=request)

    router.route().mock(side_effect=unmatched)
    network.serve(router, cloud)


def test_a_redirect_to_another_host_is_served_on_loopback(
    served: tuple[LoopbackNetwork, respx.MockRouter, FakeCloud],
) -> None:
    network, router, cloud = served
    vm_id = cloud.vms[0].id

    def disk(request: httpx.Request) -> httpx.Response:
        if (early := cloud.intercept(request)) is not None:
            return early
        return httpx.Response(302, headers={"Location": f"{OBJECTS}/bucket/{vm_id}?sig=abc"})

    def presigned(request: httpx.Request) -> httpx.Response:
        # A pre-signed URL carries a signature, never the token.
        assert "authorization" not in request.headers
        assert request.url.params["sig"] == "abc"
        return cloud.intercept(request, check_token=False) or cloud.serve_disk(request, vm_id)

    router.get(f"{API}/disk").mock(side_effect=disk)
    router.get(url__regex=r"^https://objects\.multi\.test/bucket/").mock(side_effect=presigned)
    endpoint = cloud.loopback_url(API)
    _start(network, router, cloud)
    with NetworkGuard() as guard, requests.Session() as session:
        reply = session.get(
            f"{endpoint}/disk", headers={"Authorization": f"Bearer {cloud.token}"}, timeout=5
        )
        assert reply.status_code == 200
        assert reply.content == cloud.disks[vm_id]
        (hop,) = reply.history
        assert hop.headers["Location"].startswith("http://127.0.0.1:")
        assert guard.blocked == []
    assert [str(call.request.url) for call in router.calls] == [
        f"{API}/disk",
        f"{OBJECTS}/bucket/{vm_id}?sig=abc",
    ]


def test_a_service_catalog_names_loopback_endpoints(
    served: tuple[LoopbackNetwork, respx.MockRouter, FakeCloud],
) -> None:
    network, router, cloud = served
    catalog = {
        "catalog": [
            {"type": "compute", "url": COMPUTE},
            {"type": "image", "url": "https://image.multi.test/"},
            {"type": "docs", "url": "https://docs.elsewhere.example/"},  # no route: left alone
        ]
    }
    router.get(f"{API}/catalog").mock(side_effect=lambda request: cloud.json(catalog))
    router.get(f"{COMPUTE}/servers").mock(side_effect=lambda request: cloud.json({"servers": []}))
    router.get(url__regex=r"^https://image\.multi\.test/v2/images$").mock(
        side_effect=lambda request: cloud.json({"images": []})
    )
    _start(network, router, cloud)
    with NetworkGuard() as guard, requests.Session() as session:
        reply = session.get(f"{cloud.loopback_url(API)}/catalog", timeout=5)
        urls = {entry["type"]: entry["url"] for entry in reply.json()["catalog"]}
        assert urls["compute"].startswith("http://127.0.0.1:")
        assert urls["compute"].endswith("/v2.1")
        assert urls["image"].startswith("http://127.0.0.1:")
        assert urls["docs"] == "https://docs.elsewhere.example/"
        assert int(reply.headers["Content-Length"]) == len(reply.content)
        assert session.get(f"{urls['compute']}/servers", timeout=5).json() == {"servers": []}
        assert session.get(f"{urls['image']}v2/images", timeout=5).json() == {"images": []}
        assert guard.blocked == []
    assert not cloud.unmatched


def test_faults_have_a_socket_meaning(
    served: tuple[LoopbackNetwork, respx.MockRouter, FakeCloud],
) -> None:
    network, router, cloud = served
    vm_id = cloud.vms[0].id

    def route(request: httpx.Request) -> httpx.Response:
        return cloud.intercept(request) or cloud.serve_disk(request, vm_id)

    router.get(f"{API}/disk").mock(side_effect=route)
    _start(network, router, cloud)
    url = f"{cloud.loopback_url(API)}/disk"
    auth = {"Authorization": f"Bearer {cloud.token}"}
    with requests.Session() as session:
        cloud.inject(Fault.timeout())
        started = time.monotonic()
        with pytest.raises(requests.ConnectionError):  # silence, then a hang-up
            session.get(url, headers=auth, timeout=5)
        assert time.monotonic() - started < 2

        cloud.inject(Fault.connection_reset())
        with pytest.raises(requests.ConnectionError):
            session.get(url, headers=auth, timeout=5)

        cloud.inject(Fault.stall())
        started = time.monotonic()
        with pytest.raises(requests.ReadTimeout):  # the client gives up first
            session.get(url, headers=auth, timeout=0.2)
        assert time.monotonic() - started < 1.5

        cloud.inject(Fault.reset_mid_body())
        with session.get(url, headers=auth, stream=True, timeout=5) as reply:
            assert reply.headers["Content-Length"] == str(len(cloud.disks[vm_id]))
            with pytest.raises(requests.exceptions.ChunkedEncodingError):
                b"".join(reply.iter_content(8192))

        reply = session.get(url, headers={**auth, "Range": "bytes=100-"}, timeout=5)
        assert reply.status_code == 206
        assert reply.content == cloud.disks[vm_id][100:]
        assert session.get(url, timeout=5).status_code == 401
    deadline = time.monotonic() + 2
    while not network.stalls and time.monotonic() < deadline:
        time.sleep(0.01)
    (stall,) = network.stalls
    assert stall.ended_by == "client"


def test_the_guard_refuses_the_outside_at_once_and_names_the_host() -> None:
    with NetworkGuard() as guard:
        started = time.monotonic()
        with pytest.raises(requests.ConnectionError) as info:
            requests.get("https://api.refcloud.example/v1/regions", timeout=30)
        assert time.monotonic() - started < 1
        assert "api.refcloud.example" in str(info.value)
        assert "cloud.loopback_url" in str(info.value)
        with pytest.raises(OSError, match="203.0.113.9"):
            socket.create_connection(("203.0.113.9", 443), timeout=30)
        with socket.socket() as listener:  # loopback stays open
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            socket.create_connection(listener.getsockname(), timeout=1).close()
    assert [blocked.target for blocked in guard.blocked] == [
        "api.refcloud.example:443",
        "203.0.113.9:443",
    ]
    assert socket.getaddrinfo.__module__ == "socket"  # restored


def test_a_plugin_reaching_for_a_real_host_fails_http_mocked_only(
    pytester: pytest.Pytester,
) -> None:
    outcomes = run_check(pytester, "requests_calls_real_host")
    mocked = outcomes.pop("HTTP-MOCKED")
    assert mocked["status"] == "failed", mocked
    assert "api.refcloud.example:443" in str(mocked["reason"])
    assert "cloud.loopback_url('https://api.refcloud.example/...')" in str(mocked["reason"])
    assert float(str(mocked["duration"])) < 1
    assert {check: o["status"] for check, o in outcomes.items() if o["status"] != "passed"} == {}


def test_pinned_to_contract_1_a_blocked_connection_is_a_warning(
    pytester: pytest.Pytester,
) -> None:
    outcome = run_check(
        pytester, "requests_calls_real_host", "HTTP-MOCKED", knobs="contract_version=1"
    )["HTTP-MOCKED"]
    assert outcome["status"] == "warning", outcome
    assert "api.refcloud.example" in str(outcome["reason"])
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["plugins"][0]["contract_version"] == 1


def test_an_httpx_plugin_may_be_given_the_loopback_url(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_loopback_httpx=(
            "from hypersdk import ProviderConfig\n"
            "from tests.conformance.reference_suite import BASE, RefcloudConformance\n"
            "class TestLoopback(RefcloudConformance):\n"
            "    def configure(self, cloud):\n"
            "        return ProviderConfig(type='refcloud', endpoint=cloud.loopback_url(BASE),\n"
            "                              password=cloud.token, timeout=10)\n"
        )
    )
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--hypersdk-check=GET-AGREES",
        "--hypersdk-check=EXPORT-RESUME",
        "--hypersdk-check=HTTP-TIMEOUTS",
    )
    result.assert_outcomes(passed=3)


def test_the_vendor_sdk_example_in_the_docs_passes_the_contract(
    pytester: pytest.Pytester,
) -> None:
    text = (Path(__file__).parents[2] / "docs" / "conformance.md").read_text(encoding="utf-8")
    block = text.split("<!-- example: vendor-sdk -->\n```python\n", 1)[1].split("\n```", 1)[0]
    pytester.makepyfile(test_tinycloud=block)
    result = pytester.runpytest("-p", "no:cacheprovider", "--hypersdk-report=report")
    document = json.loads((pytester.path / "report.json").read_text())
    (plugin,) = document["plugins"]
    unexpected = {
        check["id"]: check["reason"][:300]
        for check in plugin["checks"]
        if check["status"] != "passed" and not check["id"].startswith("EXPORT-")
    }
    assert unexpected == {}, result.stdout.str()[-3000:]
    assert plugin["contract_version"] == 2
