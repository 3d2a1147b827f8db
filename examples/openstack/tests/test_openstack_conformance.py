"""The hypersdk_testing conformance suite against the OpenStack plugin.

``mock_api`` is ``os_fakes.mount``: the suite's generated world served as Keystone v3
(the configured password is ``cloud.token``, and so is the token Keystone issues), Nova
(``/servers/detail`` with marker pagination and Nova's ``name``/``status`` filters,
``createImage``) and Glance (snapshot images polled from ``queued`` to ``active``, their
bytes with Range support, deletion). Every image the export creates is recorded in
FakeCloud's mutation log as ``image.created`` / ``image.deleted``.

The fake snapshots a server in the format the export asked for (the plugin records it
as the image property ``hypersdk_export_format``), as a cloud whose image backend
produces that format would; a cloud that produces another is covered in
test_openstack_export.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import hypersdk_openstack
from os_fakes import KEYSTONE, mount

from hypersdk import ProviderConfig, VMInfo
from hypersdk_testing import FakeCloud, ProviderConformance

if TYPE_CHECKING:
    import respx


class TestOpenStackConformance(ProviderConformance):
    plugin = hypersdk_openstack
    auth_header = "X-Auth-Token"
    auth_scheme = ""
    required_config = ("password", "username", "endpoint")
    disk_image_formats = ("raw", "vdi", "iso", "ploop")
    # The OpenStack-specific metadata (flavor name, image id, vm_state...) is not the world's.
    compared_fields = tuple(
        field.name for field in attrs.fields(VMInfo) if field.name != "metadata"
    )

    def configure(self, cloud: FakeCloud) -> ProviderConfig:
        return ProviderConfig(
            type="openstack",
            endpoint=KEYSTONE,
            username="demo",
            password=cloud.token,
            region="RegionOne",
            metadata={
                "project_name": "demo",
                "retry_backoff": "0.01",
                "poll_interval": "0",
                "max_retry_wait": "2",
            },
        )

    def representable(self, vm: VMInfo) -> VMInfo:
        # Nova has no guest OS field and writes times to the second; everything else
        # round-trips (metadata as tags).
        return attrs.evolve(
            vm,
            guest_os="",
            created_at=vm.created_at.replace(microsecond=0) if vm.created_at else None,
            updated_at=vm.updated_at.replace(microsecond=0) if vm.updated_at else None,
        )

    def mock_api(self, router: respx.MockRouter, cloud: FakeCloud) -> None:
        mount(router, cloud)
