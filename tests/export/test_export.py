"""export_disk_image and build_export_result: the pieces put together."""

from __future__ import annotations

import gzip
import hashlib
import sys
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from hypersdk import (
    ConfigurationError,
    ExportError,
    ExportOptions,
    ProviderUnavailableError,
    RecordingReporter,
)
from hypersdk.export import build_export_result, export_disk_image, sha256_file

from .conftest import FAST_RETRY, DiskServer, Fault

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

if TYPE_CHECKING:
    from pathlib import Path

    from hypersdk._http import httpx

_QCOW2_HEADER = b"QFI\xfb\x00\x00\x00\x03" + bytes(4088)


@pytest.mark.anyio
async def test_plain_export(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    disk_server.body = _QCOW2_HEADER + bytes(range(256)) * 2000
    reporter = RecordingReporter()
    options = ExportOptions(output_path=tmp_path, format="qcow2")
    result = await export_disk_image(
        client,
        disk_server.url(),
        options,
        provider="test",
        vm_id="vm-1",
        vm_name="../web/01",
        expected_sha256=disk_server.sha256,
        progress=reporter,
        retry=FAST_RETRY,
    )
    assert result.files == ("_web_01.qcow2",)
    assert (tmp_path / "_web_01.qcow2").read_bytes() == disk_server.body
    assert result.size == len(disk_server.body)
    assert result.compressed_size == 0
    assert result.checksum == disk_server.sha256
    assert result.format == "qcow2"
    assert result.output_path == tmp_path
    assert (result.provider, result.vm_id, result.vm_name) == ("test", "vm-1", "../web/01")
    assert result.duration > timedelta(0)
    assert reporter.phases == ["preparing", "downloading", "verifying", "done"]
    assert reporter.percents == sorted(reporter.percents)
    assert reporter.percents[-1] == 100.0
    again = await export_disk_image(
        client, disk_server.url(), options, provider="test", vm_id="vm-1", vm_name="../web/01"
    )
    assert again.files == ("_web_01-1.qcow2",)


@pytest.mark.anyio
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "compressed"])
async def test_export_into_a_relative_output_path(
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    compress: bool,
) -> None:
    # The output path is relative to the working directory and must be joined to the
    # file name once: "out/web-1.raw", never "out/out/web-1.raw".
    monkeypatch.chdir(tmp_path)
    disk_server.body = bytes(range(256)) * 64
    options = ExportOptions(output_path="out", format="raw", compress=compress)
    result = await export_disk_image(
        client,
        disk_server.url(),
        options,
        provider="test",
        vm_id="vm-1",
        vm_name="web-1",
        retry=FAST_RETRY,
    )
    name = "web-1.raw.zst" if compress else "web-1.raw"
    assert result.files == (name,)
    assert str(result.output_path) == "out"
    assert (tmp_path / "out" / name).is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [name]
    if not compress:
        assert (tmp_path / "out" / name).read_bytes() == disk_server.body


def test_build_export_result_with_a_relative_output_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file named relative to output_path, or by a path that already starts with the
    # relative output_path (what export_file_path returns): both are the same file.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "disk.raw").write_bytes(b"abc")
    for files in (["disk.raw"], ["out/disk.raw"], [tmp_path / "out" / "disk.raw"]):
        result = build_export_result(
            provider="p",
            vm_id="1",
            vm_name="n",
            format="raw",
            output_path="out",
            files=files,
            duration=0,
        )
        assert result.files == ("disk.raw",), files


@pytest.mark.anyio
@pytest.mark.parametrize(("algorithm", "suffix"), [("zstd", "zst"), ("gzip", "gz")])
async def test_compressed_export(
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    algorithm: str,
    suffix: str,
) -> None:
    reporter = RecordingReporter()
    options = ExportOptions(output_path=tmp_path, format="raw", compress=True, compression_level=5)
    result = await export_disk_image(
        client,
        disk_server.url(),
        options,
        provider="test",
        vm_id="vm-1",
        vm_name="web",
        algorithm=algorithm,
        expected_sha256=disk_server.sha256,
        progress=reporter,
        retry=FAST_RETRY,
    )
    main = tmp_path / f"web.raw.{suffix}"
    assert result.files == (main.name,)
    assert sorted(p.name for p in tmp_path.iterdir()) == [main.name]
    packed = main.read_bytes()
    unpacked = gzip.decompress(packed) if algorithm == "gzip" else zstd.decompress(packed)
    assert unpacked == disk_server.body
    assert result.size == len(disk_server.body)
    assert result.compressed_size == len(packed)
    assert result.checksum == hashlib.sha256(packed).hexdigest()
    assert result.metadata["image_sha256"] == disk_server.sha256
    assert result.metadata["compression_level"] == "5"
    assert reporter.phases == ["preparing", "downloading", "verifying", "compressing", "done"]
    assert reporter.percents == sorted(reporter.percents)
    assert reporter.percents[-1] == 100.0


@pytest.mark.anyio
async def test_bad_level_fails_before_any_request(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    options = ExportOptions(output_path=tmp_path, format="raw", compress=True, compression_level=12)
    with pytest.raises(ConfigurationError, match=r"^compression_level: gzip accepts"):
        await export_disk_image(
            client,
            disk_server.url(),
            options,
            provider="t",
            vm_id="1",
            vm_name="w",
            algorithm="gzip",
        )
    assert disk_server.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize("compress", [False, True])
async def test_wrong_format_leaves_nothing(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path, compress: bool
) -> None:
    options = ExportOptions(output_path=tmp_path, format="vhdx", compress=compress)
    with pytest.raises(ExportError, match="is a raw image, not the vhdx"):
        await export_disk_image(
            client, disk_server.url(), options, provider="t", vm_id="1", vm_name="w"
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
@pytest.mark.parametrize("compress", [False, True])
async def test_failed_export_leaves_nothing(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path, compress: bool
) -> None:
    disk_server.faults = [Fault("reset", after=200_000)] + [Fault("status", 503)] * 10
    options = ExportOptions(output_path=tmp_path, format="raw", compress=compress)
    with pytest.raises(ProviderUnavailableError):
        await export_disk_image(
            client,
            disk_server.url(),
            options,
            provider="t",
            vm_id="1",
            vm_name="w",
            retry=FAST_RETRY,
        )
    assert list(tmp_path.iterdir()) == []


def test_build_export_result_hashes_when_not_told(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    main = tmp_path / "sub" / "disk.vmdk"
    main.write_bytes(b"abc")
    (tmp_path / "disk.ovf").write_bytes(b"<ovf/>")
    result = build_export_result(
        provider="p",
        vm_id="1",
        vm_name="n",
        format="vmdk",
        output_path=tmp_path,
        files=[main, "disk.ovf"],
        duration=1.5,
    )
    assert result.files == ("sub/disk.vmdk", "disk.ovf")
    assert result.size == 3
    assert result.compressed_size == 0
    assert result.checksum == sha256_file(main) == hashlib.sha256(b"abc").hexdigest()
    assert result.duration == timedelta(seconds=1.5)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "^files: must name at least"),
        (["../outside"], "is not inside output_path"),
        (["missing"], "does not exist"),
    ],
)
def test_build_export_result_rejects_bad_files(
    tmp_path: Path, files: list[str], message: str
) -> None:
    (tmp_path.parent / "outside").write_bytes(b"")
    with pytest.raises(ConfigurationError, match=message):
        build_export_result(
            provider="p",
            vm_id="1",
            vm_name="n",
            format="raw",
            output_path=tmp_path,
            files=files,
            duration=0,
        )


def test_build_export_result_rejects_negative_duration(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(ConfigurationError, match=r"^duration"):
        build_export_result(
            provider="p",
            vm_id="1",
            vm_name="n",
            format="raw",
            output_path=tmp_path,
            files=["f"],
            duration=-1,
        )
