"""The refcloud API mocked with FakeCloud, and the conformance class of the reference provider.

``RefcloudConformance`` is what a plugin author writes: ``plugin``, ``configure`` and a
``mock_api`` of about forty lines. It is not collected itself (its name does not start with
``Test``); the tests subclass it, with the reference plugin or a broken variant.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

import httpx

from hypersdk import ProviderConfig
from hypersdk_testing import FakeCloud, ProviderConformance
from tests.conformance import reference_provider, requests_provider

if TYPE_CHECKING:
    import respx

BASE = "https://api.refcloud.test/v1"


def mock_refcloud(router: respx.MockRouter, cloud: FakeCloud) -> None:
    """Serve ``cloud`` in refcloud's dialect (see reference_provider's docstring)."""
    snapshots: dict[str, str] = {}  # snapshot id -> VM id
    counter = itertools.count(1)

    def account(request: httpx.Request) -> httpx.Response:
        return cloud.intercept(request) or cloud.json({"account": {"email": "ops@example.test"}})

    def machines(request: httpx.Request) -> httpx.Response:
        if (early := cloud.intercept(request)) is not None:
            return early
        params = request.url.params
        page = cloud.page(
            cloud.vms, number=int(params.get("page", 1)), per_page=int(params.get("per_page", 20))
        )
        body = [reference_provider.machine_json(vm) for vm in page.items]
        return cloud.json({"machines": body, "next_page": page.next, "total": page.total})

    def machine(request: httpx.Request, vm_id: str) -> httpx.Response:
        if (early := cloud.intercept(request)) is not None:
            return early
        vm = cloud.vm(vm_id)
        if vm is None:
            return cloud.json({"id": "not_found", "message": f"no machine {vm_id}"}, 404)
        return cloud.json({"machine": reference_provider.machine_json(vm)})

    def snapshot(request: httpx.Request, vm_id: str) -> httpx.Response:
        if (early := cloud.intercept(request)) is not None:
            return early
        if cloud.vm(vm_id) is None:
            return cloud.json({"id": "not_found", "message": f"no machine {vm_id}"}, 404)
        snapshot_id = f"snap-{next(counter)}"
        snapshots[snapshot_id] = vm_id
        cloud.record("snapshot.created", id=snapshot_id, vm_id=vm_id)
        return cloud.json({"snapshot": {"id": snapshot_id}}, 201)

    def delete_snapshot(request: httpx.Request, snapshot_id: str) -> httpx.Response:
        if (early := cloud.intercept(request)) is not None:
            return early
        if snapshots.pop(snapshot_id, None) is None:
            return cloud.json({"id": "not_found", "message": "no such snapshot"}, 404)
        cloud.record("snapshot.deleted", id=snapshot_id)
        return httpx.Response(204)

    def disk(request: httpx.Request, snapshot_id: str) -> httpx.Response:
        if (early := cloud.intercept(request)) is not None:
            return early
        vm_id = snapshots.get(snapshot_id)
        if vm_id is None:
            return cloud.json({"id": "not_found", "message": "no such snapshot"}, 404)
        return cloud.serve_disk(request, vm_id)

    router.get(f"{BASE}/account").mock(side_effect=account)
    router.get(f"{BASE}/machines").mock(side_effect=machines)
    router.get(url__regex=rf"^{re.escape(BASE)}/machines/(?P<vm_id>[^/]+)$").mock(
        side_effect=machine
    )
    router.post(url__regex=rf"^{re.escape(BASE)}/machines/(?P<vm_id>[^/]+)/snapshots$").mock(
        side_effect=snapshot
    )
    router.delete(url__regex=rf"^{re.escape(BASE)}/snapshots/(?P<snapshot_id>[^/]+)$").mock(
        side_effect=delete_snapshot
    )
    router.get(url__regex=rf"^{re.escape(BASE)}/snapshots/(?P<snapshot_id>[^/]+)/disk$").mock(
        side_effect=disk
    )


class RefcloudConformance(ProviderConformance):
    """The reference provider's conformance class."""

    plugin = reference_provider
    retry_budget = 2.0

    def configure(self, cloud: FakeCloud) -> ProviderConfig:
        return ProviderConfig(type="refcloud", endpoint=BASE, password=cloud.token, timeout=10)

    def mock_api(self, router: respx.MockRouter, cloud: FakeCloud) -> None:
        mock_refcloud(router, cloud)


class RequestsRefcloudConformance(RefcloudConformance):
    """The requests-based reference: the same routes, the plugin aimed at their loopback URL.

    The only difference from :class:`RefcloudConformance` is ``cloud.loopback_url(BASE)``:
    the plugin's HTTP does not go through httpx, so it talks to the routes over a socket.
    """

    plugin = requests_provider

    def configure(self, cloud: FakeCloud) -> ProviderConfig:
        return ProviderConfig(
            type="refcloud", endpoint=cloud.loopback_url(BASE), password=cloud.token, timeout=10
        )
