"""Write-behind: a download's pages go to disk while it streams, and it stays durable.

No timing here (the benchmark measures speed): these check that each write-behind
method is really exercised on a small window, that the file is still complete and
fsynced before it is renamed, and that a method the system refuses only turns itself
off.
"""

from __future__ import annotations

import errno
import itertools
import os
from typing import TYPE_CHECKING

import pytest

from hypersdk.export import UrllibSource, _download, download, download_blocking

from .conftest import FAST_RETRY, DiskServer

if TYPE_CHECKING:
    from pathlib import Path

    from hypersdk._http import httpx

_WINDOW = 64 * 1024
_METHODS = [
    pytest.param(
        "sync_file_range",
        marks=pytest.mark.skipif(
            _download._SYNC_FILE_RANGE is None, reason="sync_file_range is Linux only"
        ),
    ),
    "fdatasync",
]


class _Calls:
    """Records the write-behind calls and the fsyncs, and still makes them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ranges: list[tuple[int, int, int]] = []
        self.datasyncs = 0
        self.fsyncs: list[int] = []
        real_range, real_datasync, real_fsync = (
            _download._sync_file_range,
            _download._fdatasync,
            os.fsync,
        )

        def sync_range(fd: int, start: int, length: int, flags: int) -> None:
            self.ranges.append((start, length, flags))
            real_range(fd, start, length, flags)

        def datasync(fd: int) -> None:
            self.datasyncs += 1
            real_datasync(fd)

        def fsync(fd: int) -> None:
            self.fsyncs.append(fd)
            real_fsync(fd)

        monkeypatch.setattr(_download, "_sync_file_range", sync_range)
        monkeypatch.setattr(_download, "_fdatasync", datasync)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(_download, "_WRITEBACK_WINDOW", _WINDOW)


@pytest.mark.anyio
@pytest.mark.parametrize("method", _METHODS)
async def test_write_behind_runs_while_downloading(
    method: str,
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _Calls(monkeypatch)
    monkeypatch.setattr(_download, "_WRITEBACK", method)
    target = tmp_path / "disk.img"
    result = await download(
        client,
        disk_server.url(),
        target,
        expected_sha256=disk_server.sha256,
        retry=FAST_RETRY,
        chunk_size=16 * 1024,
    )
    assert target.read_bytes() == disk_server.body
    assert result.sha256 == disk_server.sha256
    windows = len(disk_server.body) // _WINDOW
    if method == "sync_file_range":
        started = [(start, length) for start, length, flags in calls.ranges if flags == 2]
        waited = [(start, length) for start, length, flags in calls.ranges if flags == 7]
        # Consecutive windows from byte 0, each waited for once the next one started.
        # A window ends with the write batch that fills it, and batches are as large
        # as the socket reads (up to 256 KiB here), so count "several", not "each".
        assert len(started) >= 2
        assert all(length >= _WINDOW for _, length in started)
        assert sum(length for _, length in started) >= len(disk_server.body) // 2
        assert started[0][0] == 0
        assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(started))
        assert waited == started[:-1]
        assert calls.datasyncs == 0
    else:
        # One sync per window crossed by a write batch: a batch that spans two windows
        # (a loaded machine coalesces more) syncs once, so count "several", not "each".
        assert windows > 2
        assert calls.datasyncs >= 2
        assert calls.ranges == []
    # Whatever happened while streaming, the file itself was fsynced before the rename.
    assert calls.fsyncs


@pytest.mark.parametrize("method", _METHODS)
def test_write_behind_in_the_blocking_driver(
    method: str, disk_server: DiskServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _Calls(monkeypatch)
    monkeypatch.setattr(_download, "_WRITEBACK", method)
    target = tmp_path / "disk.img"
    download_blocking(
        UrllibSource(disk_server.url()),
        target,
        expected_sha256=disk_server.sha256,
        retry=FAST_RETRY,
        chunk_size=16 * 1024,
    )
    assert target.read_bytes() == disk_server.body
    assert calls.ranges or calls.datasyncs
    assert calls.fsyncs


def test_a_refused_method_turns_itself_off(
    disk_server: DiskServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []

    def refuse(fd: int, start: int, length: int, flags: int) -> None:
        attempts.append(flags)
        raise OSError(errno.ENOSYS, "not here")

    monkeypatch.setattr(_download, "_sync_file_range", refuse)
    monkeypatch.setattr(_download, "_WRITEBACK", "sync_file_range")
    monkeypatch.setattr(_download, "_WRITEBACK_WINDOW", _WINDOW)
    target = tmp_path / "disk.img"
    result = download_blocking(
        UrllibSource(disk_server.url()),
        target,
        expected_sha256=disk_server.sha256,
        retry=FAST_RETRY,
        chunk_size=16 * 1024,
    )
    assert target.read_bytes() == disk_server.body
    assert result.sha256 == disk_server.sha256
    assert attempts == [2]  # tried once, then left to the final fsync
