from __future__ import annotations

import threading
import time
from pathlib import Path

import anyio
import pytest

from hypersdk import (
    BlockingProvider,
    ConfigurationError,
    ExportCapabilities,
    ExportOptions,
    ExportResult,
    NotConnectedError,
    ProgressReporter,
    Provider,
    ProviderConfig,
    ProviderType,
    RecordingReporter,
    VMFilter,
    VMInfo,
    as_async_provider,
    check_cancelled,
    time_remaining,
)

T = ProviderType("memory")
VMS = [
    VMInfo(provider=T, id="1", name="web-1", num_cpus=2),
    VMInfo(provider=T, id="2", name="db-1", num_cpus=8),
]


class MemoryBlocking(BlockingProvider):
    """A blocking provider that records which threads ran it."""

    def __init__(self, delay: float = 0.0) -> None:
        self.connected = False
        self.delay = delay
        self.threads: set[int] = set()
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()
        self.cancel_seen = False

    @property
    def name(self) -> str:
        return "Memory"

    @property
    def type(self) -> ProviderType:
        return T

    def connect(self, config: ProviderConfig) -> None:
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def validate_credentials(self) -> None:
        self._check()

    def _check(self) -> None:
        if not self.connected:
            raise NotConnectedError("memory: call connect() first")

    def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        self._check()
        with self.lock:
            self.threads.add(threading.get_ident())
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(self.delay)
        finally:
            with self.lock:
                self.active -= 1
        return [vm for vm in VMS if filter is None or filter.matches(vm)]

    def get_vm(self, identifier: str) -> VMInfo:
        self._check()
        # A long blocking loop that honours the async caller's cancellation.
        try:
            for _ in range(500):
                check_cancelled()
                time.sleep(0.01)
        except BaseException:
            self.cancel_seen = True
            raise
        return VMS[0]

    def export_vm(
        self, identifier: str, options: ExportOptions, *, progress: ProgressReporter | None = None
    ) -> ExportResult:
        self._check()
        if progress is not None:
            progress.update("done", 100.0, f"remaining={time_remaining()}")
        return ExportResult(
            provider=T,
            vm_name="web-1",
            vm_id=identifier,
            format=options.format,
            output_path=options.output_path,
        )

    def get_export_capabilities(self) -> ExportCapabilities:
        return ExportCapabilities(supported_formats=["raw"])


pytestmark = pytest.mark.anyio


async def test_blocking_provider_runs_in_worker_threads() -> None:
    blocking = MemoryBlocking()
    provider = as_async_provider(blocking)
    assert isinstance(provider, Provider)
    assert provider.name == "Memory"
    assert provider.type == T
    assert provider.get_export_capabilities().supported_formats == ("raw",)
    async with provider:
        await provider.connect(ProviderConfig(type=T))
        assert await provider.list_vms(VMFilter(min_cpus=4)) == [VMS[1]]
        assert [vm.id for vm in await provider.search_vms("WEB")] == ["1"]
    assert not blocking.connected  # __aexit__ disconnected
    assert threading.get_ident() not in blocking.threads


async def test_capacity_limit() -> None:
    blocking = MemoryBlocking(delay=0.05)
    provider = as_async_provider(blocking, max_workers=2)
    await provider.connect(ProviderConfig(type=T))
    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(provider.list_vms)
    assert blocking.peak == 2


async def test_cancellation_reaches_blocking_code() -> None:
    blocking = MemoryBlocking()
    provider = as_async_provider(blocking)
    await provider.connect(ProviderConfig(type=T))
    started = time.monotonic()
    with anyio.move_on_after(0.1):
        await provider.get_vm("1")
    assert time.monotonic() - started < 2.0  # not the 5 s the loop would take
    assert blocking.cancel_seen


async def test_time_remaining_sees_the_deadline(tmp_path: Path) -> None:
    provider = as_async_provider(MemoryBlocking())
    await provider.connect(ProviderConfig(type=T))
    options = ExportOptions(output_path=tmp_path, format="raw")
    reporter = RecordingReporter()
    with anyio.fail_after(30):
        await provider.export_vm("1", options, progress=reporter)
    remaining = float(reporter.events[-1].message.split("=")[1])
    assert 25 < remaining <= 30
    await provider.export_vm("1", options, progress=reporter)
    assert reporter.events[-1].message == "remaining=None"


def test_helpers_outside_worker_threads() -> None:
    check_cancelled()  # a no-op outside hypersdk worker threads
    assert time_remaining() is None


async def test_async_provider_is_returned_unchanged() -> None:
    provider = as_async_provider(MemoryBlocking())
    assert as_async_provider(provider) is provider


@pytest.mark.parametrize("workers", [0, -1, True, 1.5, 2**64, [[]]], ids=str)
async def test_bad_worker_limit(workers: object) -> None:
    with pytest.raises(ConfigurationError, match="max_workers: must be an integer from 1 to 1024"):
        as_async_provider(MemoryBlocking(), max_workers=workers)  # type: ignore[arg-type]


async def test_not_a_provider() -> None:
    with pytest.raises(ConfigurationError, match="got str"):
        as_async_provider("nope")  # type: ignore[arg-type]


class Closing(Provider):
    def __init__(self) -> None:
        self.disconnects = 0

    name = "Closing"
    type = T

    async def connect(self, config: ProviderConfig) -> None:
        pass

    async def disconnect(self) -> None:
        await anyio.sleep(0)  # a checkpoint: would raise if not shielded
        self.disconnects += 1

    async def validate_credentials(self) -> None:
        pass

    async def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        return []

    async def get_vm(self, identifier: str) -> VMInfo:
        raise NotImplementedError

    async def export_vm(
        self, identifier: str, options: ExportOptions, *, progress: ProgressReporter | None = None
    ) -> ExportResult:
        raise NotImplementedError

    def get_export_capabilities(self) -> ExportCapabilities:
        return ExportCapabilities()


async def test_context_manager_disconnects_even_when_cancelled() -> None:
    provider = Closing()
    with anyio.move_on_after(0.01):
        async with provider:
            await anyio.sleep(5)
    assert provider.disconnects == 1


async def test_default_search_uses_list_vms() -> None:
    assert await Closing().search_vms("x") == []
