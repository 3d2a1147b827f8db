"""The hypersdk conformance suite against the {{ cookiecutter.plugin_name }} plugin, offline.

``mock_api`` serves the suite's generated world (a ``FakeCloud``: VMs, their disks, the one
valid token and injected faults) in the API's own dialect. When you change the provider for
your API, change ``vm_json`` and the routes to match; the suite then checks the rest.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from hypersdk import ProviderConfig, VMInfo
from hypersdk_testing import FakeCloud, ProviderConformance

import {{ cookiecutter.package_name }}

if TYPE_CHECKING:
    import httpx
    import respx

API = {{ cookiecutter.package_name }}.DEFAULT_ENDPOINT


def vm_json(vm: VMInfo) -> dict[str, Any]:
    """``vm`` as the API writes it: the inverse of the provider's ``_to_vm``."""
    return {
        "id": vm.id,
        "name": vm.name,
        "status": vm.state,
        "power_state": vm.power_state,
        "region": vm.location,
        "os": vm.guest_os,
        "memory_mb": vm.memory_mb,
        "cpus": vm.num_cpus,
        "disk_gb": vm.storage_gb,
        "ip_addresses": list(vm.ip_addresses),
        "tags": dict(vm.tags),
        "metadata": dict(vm.metadata),
        "created_at": vm.created_at.isoformat() if vm.created_at else None,
        "updated_at": vm.updated_at.isoformat() if vm.updated_at else None,
    }


def not_found(vm_id: str) -> dict[str, str]:
    """The API's 404 body."""
    return {"error": "not_found", "message": f"no VM {vm_id}"}


class TestConformance(ProviderConformance):
    """Every check of the hypersdk provider contract, at the contract version pinned here."""

    plugin = {{ cookiecutter.package_name }}
    # The contract this plugin is certified against: checks added later only warn until
    # you raise it (see "contract versions" in hypersdk's conformance docs).
    contract_version = {{ cookiecutter._contract_version }}

    def configure(self, cloud: FakeCloud) -> ProviderConfig:
        """The config a user would write, aimed at the mocked API."""
        return ProviderConfig(
            type={{ cookiecutter.package_name }}.PROVIDER_TYPE,
{%- if cookiecutter.variant == "async-httpx" %}
            endpoint=API,
{%- else %}
            # requests does not go through respx: the suite serves mock_api's routes on
            # 127.0.0.1 during each check, and this is the address that stands for API.
            endpoint=cloud.loopback_url(API),
{%- endif %}
            password=cloud.token,
            timeout=10,
        )

    def mock_api(self, router: respx.MockRouter, cloud: FakeCloud) -> None:
        """The API's routes, serving ``cloud``; each asks ``cloud.intercept`` first."""

        def account(request: httpx.Request) -> httpx.Response:
            return cloud.intercept(request) or cloud.json({"email": "ops@example.test"})

        def vms(request: httpx.Request) -> httpx.Response:
            if (early := cloud.intercept(request)) is not None:
                return early
            params = request.url.params
            number, per_page = int(params.get("page", 1)), int(params.get("per_page", 20))
            page = cloud.page(cloud.vms, number=number, per_page=per_page)
            items = [vm_json(vm) for vm in page.items]
            return cloud.json({"vms": items, "next_page": page.next})

        def vm(request: httpx.Request, vm_id: str) -> httpx.Response:
            if (early := cloud.intercept(request)) is not None:
                return early
            found = cloud.vm(unquote(vm_id))
            if found is None:
                return cloud.json(not_found(vm_id), 404)
            return cloud.json({"vm": vm_json(found)})

        def disk(request: httpx.Request, vm_id: str) -> httpx.Response:
            if (early := cloud.intercept(request)) is not None:
                return early
            if cloud.vm(unquote(vm_id)) is None:
                return cloud.json(not_found(vm_id), 404)
            return cloud.serve_disk(request, unquote(vm_id))

        one_vm = rf"^{re.escape(API)}/vms/(?P<vm_id>[^/?]+)"
        router.get(f"{API}/account").mock(side_effect=account)
        router.get(f"{API}/vms").mock(side_effect=vms)
        router.get(url__regex=one_vm + "$").mock(side_effect=vm)
        router.get(url__regex=one_vm + "/disk$").mock(side_effect=disk)
