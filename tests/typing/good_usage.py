"""Realistic integration code: mypy --strict must accept all of it.

Checked by tests/test_typing.py (and by the typecheck session); never executed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import assert_type

import anyio

import hypersdk
from hypersdk import (
    BlockingProvider,
    ExportOptions,
    ExportResult,
    Provider,
    ProviderConfig,
    ProviderType,
    RateLimitError,
    Registry,
    Secret,
    VMFilter,
    VMInfo,
)

log = logging.getLogger("my_app")


def build_config(token: str) -> ProviderConfig:
    config = ProviderConfig(
        type="digitalocean", password=token, metadata={"region": "fra1"}, timeout=30
    )
    assert_type(config.password, Secret | None)
    assert_type(config.metadata, Mapping[str, str])
    assert_type(config.type, ProviderType)
    assert_type(config.timeout, float)
    return config


async def inventory(registry: Registry, config: ProviderConfig) -> list[str]:
    provider = registry.create(config.type, config)
    assert_type(provider, Provider)
    async with provider:
        await provider.connect(config)
        vms = await provider.list_vms(
            VMFilter(name_pattern="web-*", tags={"env": "prod"}, min_cpus=2)
        )
        assert_type(vms, list[VMInfo])
        names = [vm.name for vm in vms if vm.created_at is not None]
        try:
            one = await provider.get_vm("42")
        except hypersdk.VMNotFoundError as exc:
            log.info("missing: %s", exc)
        except RateLimitError as exc:
            assert_type(exc.retry_after, float | None)
            await anyio.sleep(exc.retry_after or 1.0)
        else:
            assert_type(one.tags, Mapping[str, str])
            assert_type(one.ip_addresses, tuple[str, ...])
        with anyio.fail_after(600):
            result = await provider.export_vm(
                "42",
                ExportOptions(output_path=Path("exports"), format="qcow2", compress=True),
                progress=hypersdk.RecordingReporter(),
            )
        assert_type(result, ExportResult)
        assert_type(result.duration, timedelta)
        assert_type(result.output_path, Path)
        return names


def round_trip(vm: VMInfo) -> VMInfo:
    data = hypersdk.to_dict(vm)
    again = hypersdk.from_dict(VMInfo, data)
    assert_type(again, VMInfo)
    assert_type(hypersdk.from_json(VMFilter, "{}"), VMFilter)
    return again


def wrap(blocking: BlockingProvider) -> Provider:
    return hypersdk.as_async_provider(blocking, max_workers=2)


def options_from_str() -> ExportOptions:
    return ExportOptions(output_path="exports", format="raw")
