"""Export: createImage, Glance polled to active, the verified download, cleanup always."""

from __future__ import annotations

import hashlib
import logging
import sys
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import respx
from hypersdk_openstack import PROVIDER_TYPE, OpenStackProvider
from os_fakes import KEYSTONE, OpenStackWorld, mount

from hypersdk import (
    ChecksumMismatchError,
    ExportError,
    ExportOptions,
    ExportResult,
    ProviderConfig,
    RecordingReporter,
    UnsupportedFormatError,
    VMInfo,
)
from hypersdk_testing import FakeCloud, Fault

if TYPE_CHECKING:
    from pathlib import Path

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

TOKEN = "gAAAAABm-export-token"
VM = VMInfo(provider=PROVIDER_TYPE, id="9c8d1f2e-3b4a-4c5d-8e6f-7a8b9c0d1e2f", name="web/1")


def config(**metadata: str) -> ProviderConfig:
    return ProviderConfig(
        type="openstack",
        endpoint=KEYSTONE,
        username="demo",
        password=TOKEN,
        metadata={"project_name": "demo", "retry_backoff": "0", "poll_interval": "0", **metadata},
    )


def new_cloud() -> FakeCloud:
    return FakeCloud([VM], token=TOKEN, auth_header="X-Auth-Token", auth_scheme="")


async def export(
    tmp_path: Path,
    world: OpenStackWorld,
    fmt: str = "qcow2",
    *,
    cloud: FakeCloud | None = None,
    compress: bool = False,
    progress: RecordingReporter | None = None,
    **metadata: str,
) -> tuple[ExportResult, FakeCloud]:
    cloud = cloud or new_cloud()
    with respx.mock(assert_all_called=False) as router:
        mount(router, cloud, world)
        async with OpenStackProvider() as provider:
            await provider.connect(config(**metadata))
            result = await provider.export_vm(
                VM.id,
                ExportOptions(output_path=tmp_path / "out", format=fmt, compress=compress),
                progress=progress,
            )
    return result, cloud


def kinds(cloud: FakeCloud) -> list[str]:
    return [mutation.kind for mutation in cloud.mutations]


def files(tmp_path: Path) -> list[str]:
    out = tmp_path / "out"
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("algo", "verified"), [("sha512", "sha512"), ("sha256", "sha256"), (None, "md5")]
)
async def test_the_image_is_downloaded_verified_and_deleted(
    tmp_path: Path, algo: str | None, verified: str
) -> None:
    world = OpenStackWorld(hash_algo=algo)
    reporter = RecordingReporter()
    result, cloud = await export(tmp_path, world, progress=reporter)
    main = tmp_path / "out" / result.files[0]
    image = next(iter(cloud.mutations)).details["id"]
    expected = b"QFI\xfb" + cloud.disks[VM.id][4:]
    assert main.name == "web_1.qcow2"
    assert main.read_bytes() == expected
    assert result.checksum == hashlib.sha256(expected).hexdigest()
    assert result.size == len(expected)
    assert result.metadata["verified"] == verified
    assert result.metadata["image_id"] == image
    assert kinds(cloud) == ["image.created", "image.deleted"]
    assert files(tmp_path) == ["web_1.qcow2"]
    assert reporter.percents[-1] == 100
    assert "snapshotting" in {event.phase for event in reporter.events}


@pytest.mark.anyio
async def test_a_wrong_glance_hash_removes_everything(tmp_path: Path) -> None:
    with pytest.raises(ChecksumMismatchError, match="sha512"):
        await export(tmp_path, OpenStackWorld(corrupt_hash=True))
    assert files(tmp_path) == []


@pytest.mark.anyio
async def test_a_wrong_md5_is_caught_too(tmp_path: Path) -> None:
    with pytest.raises(ChecksumMismatchError, match="md5"):
        await export(tmp_path, OpenStackWorld(hash_algo=None, corrupt_hash=True))


@pytest.mark.anyio
async def test_a_snapshot_in_another_format_is_refused_and_deleted(tmp_path: Path) -> None:
    cloud = new_cloud()
    with pytest.raises(UnsupportedFormatError, match="as 'raw', not 'qcow2'"):
        await export(tmp_path, OpenStackWorld(snapshot_format="raw"), cloud=cloud)
    assert kinds(cloud) == ["image.created", "image.deleted"]
    assert files(tmp_path) == []


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", ["ova", "snapshot", "QCOW3"])
async def test_a_format_glance_cannot_hold_is_refused_before_any_request(
    tmp_path: Path, fmt: str
) -> None:
    cloud = new_cloud()
    with pytest.raises(UnsupportedFormatError, match="not a Glance disk format"):
        await export(tmp_path, OpenStackWorld(), fmt, cloud=cloud)
    assert [r.method for r in cloud.requests] == ["POST"]  # only Keystone, at connect
    assert cloud.mutations == []


@pytest.mark.anyio
async def test_a_volume_backed_server_is_a_clear_export_error(tmp_path: Path) -> None:
    cloud = new_cloud()
    world = OpenStackWorld(volume_backed=frozenset({VM.id}))
    with pytest.raises(ExportError, match=r"volume-backed.*Cinder"):
        await export(tmp_path, world, cloud=cloud)
    assert kinds(cloud) == ["image.created", "image.deleted"]
    assert files(tmp_path) == []


@pytest.mark.anyio
async def test_before_2_45_the_image_id_comes_from_location(tmp_path: Path) -> None:
    result, cloud = await export(tmp_path, OpenStackWorld(max_microversion="2.38"))
    assert result.metadata["image_id"] == cloud.mutations[0].details["id"]


@pytest.mark.anyio
async def test_a_killed_image_fails_and_is_deleted(tmp_path: Path) -> None:
    cloud = new_cloud()
    with pytest.raises(ExportError, match="'killed' instead of active"):
        await export(tmp_path, OpenStackWorld(statuses=("queued", "killed")), cloud=cloud)
    assert kinds(cloud) == ["image.created", "image.deleted"]


@pytest.mark.anyio
async def test_an_image_that_never_becomes_active_times_out(tmp_path: Path) -> None:
    cloud = new_cloud()
    world = OpenStackWorld(statuses=("saving",))
    with pytest.raises(ExportError, match=r"still 'saving' after 0\.05 s"):
        await export(tmp_path, world, cloud=cloud, image_timeout="0.05", poll_interval="0.01")
    assert kinds(cloud) == ["image.created", "image.deleted"]


@pytest.mark.anyio
async def test_keep_image_keeps_it(tmp_path: Path) -> None:
    _, cloud = await export(tmp_path, OpenStackWorld(), keep_image="true")
    assert kinds(cloud) == ["image.created"]


@pytest.mark.anyio
async def test_a_dropped_download_resumes_and_glance_hash_needs_no_second_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cloud = new_cloud()
    cloud.inject(Fault.reset_mid_body())
    result, _ = await export(tmp_path, OpenStackWorld(), "raw", cloud=cloud)
    assert (tmp_path / "out" / result.files[0]).read_bytes() == cloud.disks[VM.id]
    assert result.metadata["verified"] == "sha512"
    assert cloud.disk_requests == 2  # the resume was a Range request, not a restart
    assert not [r for r in caplog.records if "again" in r.getMessage()]


@pytest.mark.anyio
async def test_compression_writes_zstd_of_the_verified_image(tmp_path: Path) -> None:
    result, cloud = await export(tmp_path, OpenStackWorld(), "raw", compress=True)
    main = tmp_path / "out" / result.files[0]
    assert main.name == "web_1.raw.zst"
    assert bytes(zstd.decompress(main.read_bytes())) == cloud.disks[VM.id]
    assert result.checksum == hashlib.sha256(main.read_bytes()).hexdigest()
    assert result.metadata["verified"] == "sha512"
    assert result.metadata["image_sha256"] == hashlib.sha256(cloud.disks[VM.id]).hexdigest()
    assert files(tmp_path) == ["web_1.raw.zst"]


@pytest.mark.anyio
async def test_cancelling_mid_download_deletes_the_image_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    cloud = new_cloud()
    with respx.mock(assert_all_called=False) as router:
        mount(router, cloud, OpenStackWorld())
        async with OpenStackProvider() as provider:
            await provider.connect(config())
            with anyio.CancelScope() as scope:
                cloud.on_disk_chunk = scope.cancel
                await provider.export_vm(
                    VM.id, ExportOptions(output_path=tmp_path / "out", format="raw")
                )
            assert scope.cancelled_caught
    assert kinds(cloud) == ["image.created", "image.deleted"]
    assert files(tmp_path) == []


def test_the_fake_serves_what_the_fixtures_describe() -> None:
    # The image fixture says qcow2 with sha512: the fake must keep those field names.
    world: dict[str, Any] = __import__("os_fakes").load("glance_image_active")
    assert {"os_hash_algo", "os_hash_value", "checksum", "disk_format", "size"} <= set(world)
