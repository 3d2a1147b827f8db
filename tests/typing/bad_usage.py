"""Wrong usage that mypy --strict must reject: each marked line must produce that error.

A line ending in ``# E: code`` must have a mypy error with that code; tests/test_typing.py
checks every mark and fails on any error that is not marked.
"""

from __future__ import annotations

from pathlib import Path

import hypersdk
from hypersdk import ExportOptions, Provider, ProviderConfig, Registry, VMFilter, VMInfo


async def misuse(provider: Provider, registry: Registry) -> None:
    VMInfo(provider="p", id="1")  # E: call-arg
    VMInfo("p", "1", "name")  # E: call-arg
    VMFilter(min_cpus="2")  # E: arg-type
    ProviderConfig(type="x", port="22")  # E: arg-type
    ProviderConfig(type="x", password=42)  # E: arg-type
    ExportOptions(output_path=Path("out"), format="raw", compress="yes")  # E: arg-type
    vm = await provider.get_vm("1")
    vm.name = "renamed"  # E: misc
    vm.tags["env"] = "prod"  # E: index
    vm.memory_mb + "MB"  # E: operator
    provider.list_vms()  # E: unused-coroutine
    hypersdk.from_dict(VMInfo, {}).nonexistent  # E: attr-defined
    registry.create("x")  # E: call-arg
    await provider.export_vm("1", ExportOptions(output_path="o", format="raw"), None)  # E: call-arg
    count: int = await provider.search_vms("x")  # E: assignment
    hypersdk.Secret(b"bytes")  # E: arg-type
