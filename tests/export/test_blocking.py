"""download_blocking, compress_file_blocking and export_disk_image_blocking.

They run in the calling thread against the same real loopback server as the async
tests, through UrllibSource (the standard library) and through a hand-written
ByteSource like the glue a plugin on another HTTP client writes.
"""

from __future__ import annotations

import gzip
import hashlib
import sys
from typing import TYPE_CHECKING

import pytest

from hypersdk import (
    ChecksumMismatchError,
    ConfigurationError,
    ExportOptions,
    ProviderAPIError,
    ProviderUnavailableError,
    RecordingReporter,
)
from hypersdk.export import (
    ByteSource,
    SourceResponse,
    UrllibSource,
    compress_file_blocking,
    download_blocking,
    export_disk_image_blocking,
)

from .conftest import FAST_RETRY, DiskServer, Fault

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_downloads_verifies_and_renames(disk_server: DiskServer, tmp_path: Path) -> None:
    reporter = RecordingReporter()
    target = tmp_path / "disk.img"
    result = download_blocking(
        UrllibSource(disk_server.url()),
        target,
        expected_sha256=disk_server.sha256,
        expected_size=len(disk_server.body),
        progress=reporter,
        retry=FAST_RETRY,
        chunk_size=64 * 1024,
    )
    assert target.read_bytes() == disk_server.body
    assert (result.size, result.sha256, result.requests) == (
        len(disk_server.body),
        disk_server.sha256,
        1,
    )
    assert _files(tmp_path) == ["disk.img"]
    assert reporter.phases == ["preparing", "downloading", "verifying", "done"]
    assert reporter.percents == sorted(reporter.percents)
    assert disk_server.requests[0].headers["accept-encoding"] == "identity"


def test_resumes_after_a_mid_body_reset(disk_server: DiskServer, tmp_path: Path) -> None:
    disk_server.faults = [Fault("reset", after=300_000)]
    result = download_blocking(
        UrllibSource(disk_server.url()),
        tmp_path / "disk.img",
        expected_sha256=disk_server.sha256,
        retry=FAST_RETRY,
        chunk_size=64 * 1024,
    )
    assert result.requests == 2
    resumed_from = int(disk_server.requests[1].headers["range"].removeprefix("bytes=")[:-1])
    assert 0 < resumed_from <= 300_000
    assert (tmp_path / "disk.img").read_bytes() == disk_server.body


def test_checksum_mismatch_leaves_nothing(disk_server: DiskServer, tmp_path: Path) -> None:
    disk_server.faults = [Fault("corrupt")]
    with pytest.raises(ChecksumMismatchError, match="SHA-256 is"):
        download_blocking(
            UrllibSource(disk_server.url()),
            tmp_path / "disk.img",
            expected_sha256=disk_server.sha256,
            keep_partial=True,  # a file that failed verification is removed anyway
            retry=FAST_RETRY,
        )
    assert _files(tmp_path) == []


def test_server_errors_are_retried_and_client_errors_are_not(
    disk_server: DiskServer, tmp_path: Path
) -> None:
    disk_server.faults = [Fault("status", status=503), Fault("status", status=502)]
    result = download_blocking(
        UrllibSource(disk_server.url()), tmp_path / "a.img", retry=FAST_RETRY
    )
    assert result.requests == 3
    disk_server.faults = [Fault("status", status=404)]
    with pytest.raises(ProviderAPIError, match="HTTP 404: injected"):
        download_blocking(UrllibSource(disk_server.url()), tmp_path / "b.img", retry=FAST_RETRY)
    assert _files(tmp_path) == ["a.img"]


def test_gzip_body_is_decoded(disk_server: DiskServer, tmp_path: Path) -> None:
    disk_server.faults = [Fault("gzip")]
    result = download_blocking(
        UrllibSource(disk_server.url()),
        tmp_path / "disk.img",
        expected_sha256=disk_server.sha256,
        retry=FAST_RETRY,
    )
    assert result.size == len(disk_server.body)


@pytest.mark.parametrize("algorithm", ["zstd", "gzip"])
def test_download_then_compress_blocking(
    disk_server: DiskServer, tmp_path: Path, algorithm: str
) -> None:
    image = download_blocking(UrllibSource(disk_server.url()), tmp_path / "disk.raw")
    packed = compress_file_blocking(image.path, tmp_path / "disk.raw.z", algorithm=algorithm)
    data = (tmp_path / "disk.raw.z").read_bytes()
    unpacked = gzip.decompress(data) if algorithm == "gzip" else zstd.decompress(data)
    assert unpacked == disk_server.body
    assert packed.sha256 == hashlib.sha256(data).hexdigest()
    assert _files(tmp_path) == ["disk.raw", "disk.raw.z"]


def test_export_disk_image_blocking_compressed(disk_server: DiskServer, tmp_path: Path) -> None:
    reporter = RecordingReporter()
    disk_server.faults = [Fault("reset", after=200_000)]
    options = ExportOptions(output_path=tmp_path, format="raw", compress=True)
    result = export_disk_image_blocking(
        UrllibSource(disk_server.url()),
        options,
        provider="test",
        vm_id="vm-1",
        vm_name="web",
        expected_sha256=disk_server.sha256,
        progress=reporter,
        retry=FAST_RETRY,
    )
    assert result.files == ("web.raw.zst",)
    assert _files(tmp_path) == ["web.raw.zst"]
    data = (tmp_path / "web.raw.zst").read_bytes()
    assert zstd.decompress(data) == disk_server.body
    assert result.checksum == hashlib.sha256(data).hexdigest()
    assert result.metadata["image_sha256"] == disk_server.sha256
    assert reporter.phases == ["preparing", "downloading", "verifying", "compressing", "done"]
    assert reporter.percents[-1] == 100.0


class _FlakySource:
    """Glue as a plugin would write it: serves bytes, failing once mid-body like a socket."""

    def __init__(self, body: bytes, fail_at: int) -> None:
        self.body, self.fail_at = body, fail_at
        self.opened: list[tuple[int, str | None]] = []
        self.closed = 0

    def open(self, offset: int, validator: str | None) -> SourceResponse:
        self.opened.append((offset, validator))
        headers = {"ETag": '"v1"', "Content-Length": str(len(self.body) - offset)}
        if offset:
            headers["Content-Range"] = f"bytes {offset}-{len(self.body) - 1}/{len(self.body)}"
        return SourceResponse(
            status=206 if offset else 200,
            headers=headers,
            chunks=self._chunks(offset),
            on_close=self._close,
        )

    def _close(self) -> None:
        self.closed += 1

    def _chunks(self, offset: int) -> Iterator[bytes]:
        position = offset
        while position < len(self.body):
            if len(self.opened) == 1 and position >= self.fail_at:
                raise ConnectionResetError("reset by https://host/x?X-Amz-Signature=SECRET")
            yield self.body[position : position + 4096]
            position += 4096


def test_a_hand_written_source_resumes_with_if_range(tmp_path: Path) -> None:
    body = bytes(range(256)) * 256
    source = _FlakySource(body, fail_at=20_000)
    assert isinstance(source, ByteSource)
    result = download_blocking(source, tmp_path / "disk.img", retry=FAST_RETRY, chunk_size=8192)
    assert (tmp_path / "disk.img").read_bytes() == body
    assert source.opened[0] == (0, None)
    assert source.opened[1][0] > 0
    assert source.opened[1][1] == '"v1"'
    assert source.closed == 2
    assert result.requests == 2


def test_source_errors_never_show_their_text(tmp_path: Path) -> None:
    class Broken:
        def open(self, offset: int, validator: str | None) -> SourceResponse:
            raise ConnectionRefusedError("https://host/x?X-Amz-Signature=SECRET")

    with pytest.raises(ProviderUnavailableError, match="ConnectionRefusedError") as caught:
        download_blocking(Broken(), tmp_path / "x", retry=FAST_RETRY)
    assert "SECRET" not in str(caught.value)
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        ({"source": object()}, "source"),
        ({"destination": 5}, "destination"),
        ({"expected_sha256": 5}, "expected_sha256"),
        ({"overwrite": "yes"}, "overwrite"),
        ({"retry": 3}, "retry"),
        ({"progress": "bar"}, "progress"),
        ({"provider": None}, "provider"),
    ],
)
def test_bad_arguments_name_the_parameter(
    tmp_path: Path, arguments: dict[str, object], parameter: str
) -> None:
    call: dict[str, object] = {
        "source": UrllibSource("http://127.0.0.1:9/x"),
        "destination": tmp_path / "x",
    }
    call.update(arguments)
    with pytest.raises(ConfigurationError, match=rf"^{parameter}: must be"):
        download_blocking(**call)  # type: ignore[arg-type]
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        ({"url": "ftp://host/x"}, "url"),
        ({"url": b"http://host/x"}, "url"),
        ({"timeout": 0}, "timeout"),
        ({"headers": {"Authorization": 5}}, "headers"),
        ({"read_size": 1}, "read_size"),
    ],
)
def test_urllib_source_arguments(arguments: dict[str, object], parameter: str) -> None:
    call: dict[str, object] = {"url": "http://127.0.0.1/x"}
    call.update(arguments)
    with pytest.raises(ConfigurationError, match=rf"^{parameter}: must be"):
        UrllibSource(**call)  # type: ignore[arg-type]
