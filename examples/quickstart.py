"""hypersdk in one file: register a provider, list, filter, search and export its VMs.

Run it with ``python examples/quickstart.py [OUTPUT_DIR]`` (or ``nox -s demo``). The
provider here is an in-memory stand-in for a blocking vendor SDK, so it needs no cloud
account; hypersdk runs it in worker threads and presents it as an async Provider, exactly
as it would a real plugin.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

import hypersdk
from hypersdk import (
    BlockingProvider,
    ExportCapabilities,
    ExportOptions,
    ExportResult,
    NotConnectedError,
    ProgressReporter,
    ProviderConfig,
    ProviderType,
    UnsupportedFormatError,
    VMFilter,
    VMInfo,
    VMNotFoundError,
)
from hypersdk.export import build_export_result, export_file_path

SAMPLE = ProviderType("sample")
_QCOW2_MAGIC = b"QFI\xfb\x00\x00\x00\x03"


def _sample_vms() -> list[VMInfo]:
    created = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
    specs = [
        ("101", "web-1", "active", "on", "fra1", 2048, 2, {"env": "prod", "role": "web"}),
        ("102", "web-2", "active", "on", "fra1", 2048, 2, {"env": "prod", "role": "web"}),
        ("103", "db-primary", "active", "on", "ams3", 8192, 4, {"env": "prod", "role": "db"}),
        ("104", "ci-runner", "off", "off", "nyc1", 4096, 8, {"env": "dev"}),
        ("105", "scratch", "archive", "off", "nyc1", 512, 1, {}),
    ]
    return [
        VMInfo(
            provider=SAMPLE,
            id=vm_id,
            name=name,
            state=state,
            power_state=power,
            location=location,
            guest_os="Debian 12 x64",
            memory_mb=memory,
            num_cpus=cpus,
            storage_gb=25,
            ip_addresses=[f"10.0.0.{vm_id[-1]}"],
            tags=tags,
            created_at=created + timedelta(days=int(vm_id) - 100),
        )
        for vm_id, name, state, power, location, memory, cpus, tags in specs
    ]


class SampleProvider(BlockingProvider):
    """A blocking provider over an in-memory inventory (what a vendor SDK wrapper looks like)."""

    def __init__(self, config: ProviderConfig) -> None:
        self._vms = {vm.id: vm for vm in _sample_vms()}
        self._connected = False

    @property
    def name(self) -> str:
        return "Sample cloud"

    @property
    def type(self) -> ProviderType:
        return SAMPLE

    def connect(self, config: ProviderConfig) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    def validate_credentials(self) -> None:
        self._require_connection()

    def _require_connection(self) -> None:
        if not self._connected:
            raise NotConnectedError("sample: call connect() first", provider=SAMPLE)

    def list_vms(self, filter: VMFilter | None = None) -> list[VMInfo]:
        self._require_connection()
        wanted = filter or VMFilter()
        return [vm for vm in self._vms.values() if wanted.matches(vm)]

    def get_vm(self, identifier: str) -> VMInfo:
        self._require_connection()
        try:
            return self._vms[identifier]
        except KeyError:
            raise VMNotFoundError(
                f"sample get_vm: no VM with id {identifier!r}", provider=SAMPLE, operation="get_vm"
            ) from None

    def export_vm(
        self, identifier: str, options: ExportOptions, *, progress: ProgressReporter | None = None
    ) -> ExportResult:
        self._require_connection()
        if not self.get_export_capabilities().supports_format(options.format):
            raise UnsupportedFormatError(
                f"sample export_vm: format {options.format!r} is not supported; use qcow2",
                provider=SAMPLE,
                operation="export_vm",
            )
        vm = self.get_vm(identifier)
        report = progress or hypersdk.NullReporter()
        started = time.monotonic()
        # The toolkit names the file: the VM name can never escape output_path.
        final = export_file_path(options.output_path, vm.name, suffix="qcow2")
        part = final.with_name(final.name + ".part")
        digest = hashlib.sha256()
        chunks = 16
        try:
            with part.open("wb") as out:
                for index in range(chunks):
                    hypersdk.check_cancelled()  # the async caller may have given up
                    chunk = (_QCOW2_MAGIC if index == 0 else b"") + os.urandom(64 * 1024)
                    out.write(chunk)
                    digest.update(chunk)
                    report.update(
                        "downloading", 100 * (index + 1) / (chunks + 1), f"chunk {index + 1}"
                    )
                out.flush()
                os.fsync(out.fileno())
            part.replace(final)
        except BaseException:
            part.unlink(missing_ok=True)  # never leave half a disk behind
            raise
        report.update("done", 100.0, f"wrote {final.name}")
        return build_export_result(
            provider=SAMPLE,
            vm_name=vm.name,
            vm_id=vm.id,
            format=options.format,
            output_path=options.output_path,
            files=[final],
            checksum=digest.hexdigest(),
            duration=time.monotonic() - started,
        )

    def get_export_capabilities(self) -> ExportCapabilities:
        return ExportCapabilities(supported_formats=["qcow2"], supports_streaming=True)


class PrintingReporter:
    """Prints each phase change and every quarter of progress."""

    def __init__(self) -> None:
        self._last = -25.0

    def update(self, phase: str, percent: float, message: str) -> None:
        if percent - self._last >= 25 or percent >= 100:
            self._last = percent
            print(f"    {phase:<12} {percent:5.1f}%  {message}")


def _table(vms: list[VMInfo]) -> None:
    for vm in vms:
        tags = ", ".join(f"{k}={v}" for k, v in sorted(vm.tags.items())) or "-"
        print(
            f"    {vm.id:>4}  {vm.name:<11} {vm.state:<8} {vm.location:<5} "
            f"{vm.num_cpus:>2} vCPU {vm.memory_mb:>5} MB  {tags}"
        )


async def main(output: Path) -> None:
    registry = hypersdk.Registry()
    registry.register(SAMPLE, SampleProvider)
    print(f"hypersdk {hypersdk.__version__}: registered providers {registry.list_providers()}")

    config = ProviderConfig(type=SAMPLE, password="not-a-real-token")  # noqa: S106 - a demo
    print(f"  config: {config!r}")  # the password is masked, never printed
    async with registry.create(SAMPLE, config) as provider:
        await provider.connect(config)

        vms = await provider.list_vms()
        print(f"\n  all VMs ({len(vms)}):")
        _table(vms)

        prod_web = VMFilter(name_pattern="WEB-*", tags={"env": "prod"}, min_cpus=2)
        print(f"\n  list_vms({prod_web}):")
        _table(await provider.list_vms(prod_web))

        print("\n  search_vms('prod ams3'):")
        _table(await provider.search_vms("prod ams3"))

        try:
            await provider.get_vm("999")
        except VMNotFoundError as exc:
            print(f"\n  get_vm('999') -> {type(exc).__name__}: {exc}")

        try:
            await provider.export_vm("101", ExportOptions(output_path=output, format="vmdk"))
        except UnsupportedFormatError as exc:
            print(f"  export_vm(format='vmdk') -> {type(exc).__name__}: {exc}")

        print(f"\n  exporting web-1 as qcow2 into {output}:")
        with anyio.fail_after(60):
            result = await provider.export_vm(
                "101",
                ExportOptions(output_path=output, format="qcow2"),
                progress=PrintingReporter(),
            )
        main_file = output / result.files[0]
        assert hashlib.sha256(main_file.read_bytes()).hexdigest() == result.checksum
        print(f"\n  ExportResult as JSON:\n{hypersdk.to_json(result, indent=2)}")
        print(f"\n  verified: {main_file.name} is {result.size} bytes, SHA-256 matches")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        anyio.run(main, Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory(prefix="hypersdk-demo-") as tmp:
            anyio.run(main, Path(tmp))
