"""download() against a real loopback server: the happy path and every failure it survives."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING

import anyio
import pytest

from hypersdk import (
    ChecksumMismatchError,
    ConfigurationError,
    ExportError,
    ProviderAPIError,
    ProviderUnavailableError,
    RateLimitError,
    RecordingReporter,
)
from hypersdk.export import RetryPolicy, download
from hypersdk.export import _download as download_module

from .conftest import FAST_RETRY, DiskServer, Fault

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from hypersdk._http import httpx


def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


@contextlib.contextmanager
def socket_port() -> Iterator[int]:
    """A loopback port that nothing listens on once the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield probe.getsockname()[1]


@pytest.mark.anyio
async def test_downloads_verifies_and_renames(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    reporter = RecordingReporter()
    target = tmp_path / "disk.img"
    result = await download(
        client,
        disk_server.url(),
        target,
        expected_sha256=disk_server.sha256.upper(),
        expected_size=len(disk_server.body),
        progress=reporter,
        retry=FAST_RETRY,
        chunk_size=64 * 1024,
    )
    assert target.read_bytes() == disk_server.body
    assert result.size == len(disk_server.body)
    assert result.sha256 == disk_server.sha256
    assert result.requests == 1
    assert _files(tmp_path) == ["disk.img"]
    assert reporter.phases == ["preparing", "downloading", "verifying", "done"]
    assert reporter.percents == sorted(reporter.percents)
    assert reporter.percents[-1] == 100.0
    assert all(0.0 <= percent <= 100.0 for percent in reporter.percents)
    assert disk_server.requests[0].headers["accept-encoding"] == "identity"


def _range_starts(server: DiskServer) -> list[int | None]:
    starts: list[int | None] = []
    for request in server.requests:
        header = request.headers.get("range")
        starts.append(int(header.removeprefix("bytes=").rstrip("-")) if header else None)
    return starts


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["truncate", "reset"])
async def test_dropped_body_resumes_with_range(
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cut = 300_000
    disk_server.faults = [Fault(kind, after=cut)]
    caplog.set_level(logging.WARNING, logger="hypersdk.export")
    result = await download(
        client,
        disk_server.url(),
        tmp_path / "disk.img",
        expected_sha256=disk_server.sha256,
        retry=FAST_RETRY,
        chunk_size=64 * 1024,
    )
    assert (tmp_path / "disk.img").read_bytes() == disk_server.body
    assert result.requests == 2
    starts = _range_starts(disk_server)
    assert starts[0] is None
    # Whole chunks that reached the disk before the cut, never more than was sent.
    assert starts[1] is not None
    assert 0 < starts[1] <= cut
    assert any("resuming" in record.getMessage() for record in caplog.records)
    assert _files(tmp_path) == ["disk.img"]


@pytest.mark.anyio
@pytest.mark.parametrize("server_ranges", [True, False])
async def test_server_ignoring_range_restarts_from_zero(
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    server_ranges: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    disk_server.supports_range = server_ranges
    disk_server.faults = [Fault("truncate", after=500_000), Fault("ignore_range")]
    caplog.set_level(logging.WARNING, logger="hypersdk.export")
    result = await download(
        client,
        disk_server.url(),
        tmp_path / "disk.img",
        expected_sha256=disk_server.sha256,
        retry=FAST_RETRY,
        chunk_size=64 * 1024,
    )
    assert (tmp_path / "disk.img").read_bytes() == disk_server.body
    assert result.requests == 2
    assert _range_starts(disk_server)[1] not in (None, 0)
    assert any("ignored the Range" in record.getMessage() for record in caplog.records)


@pytest.mark.anyio
async def test_resumes_an_existing_part_file_after_rehashing_it(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    half = len(disk_server.body) // 2
    (tmp_path / "disk.img.part").write_bytes(disk_server.body[:half])
    result = await download(
        client,
        disk_server.url(),
        tmp_path / "disk.img",
        expected_sha256=disk_server.sha256,
        retry=FAST_RETRY,
    )
    assert result.reused_bytes == half
    assert _range_starts(disk_server) == [half]
    assert (tmp_path / "disk.img").read_bytes() == disk_server.body


@pytest.mark.anyio
async def test_a_corrupt_part_file_is_caught_by_the_checksum(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # The re-hash covers the reused bytes: a bad prefix cannot slip through a resume.
    (tmp_path / "disk.img.part").write_bytes(b"\x00" * 1000)
    with pytest.raises(ChecksumMismatchError, match="SHA-256"):
        await download(
            client,
            disk_server.url(),
            tmp_path / "disk.img",
            expected_sha256=disk_server.sha256,
            retry=FAST_RETRY,
        )
    assert _files(tmp_path) == []


@pytest.mark.anyio
async def test_complete_part_file_and_416_finishes_without_body(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (tmp_path / "disk.img.part").write_bytes(disk_server.body)
    result = await download(
        client,
        disk_server.url(),
        tmp_path / "disk.img",
        expected_sha256=disk_server.sha256,
        retry=FAST_RETRY,
    )
    assert result.reused_bytes == len(disk_server.body)
    assert (tmp_path / "disk.img").read_bytes() == disk_server.body


@pytest.mark.anyio
async def test_part_larger_than_expected_restarts(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (tmp_path / "disk.img.part").write_bytes(disk_server.body + b"junk")
    result = await download(
        client,
        disk_server.url(),
        tmp_path / "disk.img",
        expected_size=len(disk_server.body),
        retry=FAST_RETRY,
    )
    assert result.reused_bytes == 0
    assert _range_starts(disk_server) == [None]
    assert (tmp_path / "disk.img").read_bytes() == disk_server.body


@pytest.mark.anyio
async def test_no_resume_ignores_the_part_file(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    (tmp_path / "disk.img.part").write_bytes(b"stale")
    await download(client, disk_server.url(), tmp_path / "disk.img", resume=False, retry=FAST_RETRY)
    assert _range_starts(disk_server) == [None]
    assert (tmp_path / "disk.img").read_bytes() == disk_server.body


def _http_date(delta: timedelta) -> str:
    return format_datetime(datetime.now(UTC) + delta, usegmt=True)


@pytest.mark.anyio
async def test_429_with_delay_seconds_waits_that_long(
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    disk_server.faults = [Fault("status", 429, (("Retry-After", "0.3"),))]
    caplog.set_level(logging.WARNING, logger="hypersdk.export")
    started = anyio.current_time()
    result = await download(client, disk_server.url(), tmp_path / "disk.img", retry=FAST_RETRY)
    # FAST_RETRY's own backoff is at most 10 ms: the 0.3 s wait is Retry-After's.
    assert anyio.current_time() - started >= 0.3
    assert result.requests == 2
    retries = [r for r in caplog.records if r.name == "hypersdk.export" and "retrying" in r.msg]
    assert len(retries) == 1
    assert "429" in retries[0].getMessage()


@pytest.mark.anyio
async def test_503_with_retry_after_waits_that_long(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    disk_server.faults = [Fault("status", 503, (("Retry-After", "0.3"),))]
    started = anyio.current_time()
    result = await download(client, disk_server.url(), tmp_path / "disk.img", retry=FAST_RETRY)
    assert anyio.current_time() - started >= 0.3
    assert result.requests == 2


@pytest.mark.anyio
async def test_429_with_http_date_in_the_past_retries_at_once(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    stamp = _http_date(timedelta(seconds=-30))
    disk_server.faults = [Fault("status", 429, (("Retry-After", stamp),))] * 2
    result = await download(client, disk_server.url(), tmp_path / "disk.img", retry=FAST_RETRY)
    assert result.requests == 3


@pytest.mark.anyio
async def test_429_with_http_date_beyond_the_limit_raises_rate_limit_error(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    disk_server.faults = [Fault("status", 429, (("Retry-After", _http_date(timedelta(hours=1))),))]
    with pytest.raises(RateLimitError) as caught:
        await download(client, disk_server.url(), tmp_path / "disk.img", retry=FAST_RETRY)
    assert caught.value.retry_after is not None
    assert 3500 < caught.value.retry_after <= 3600
    assert len(disk_server.requests) == 1
    assert _files(tmp_path) == []


@pytest.mark.anyio
async def test_5xx_burst_is_retried(
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    disk_server.faults = [Fault("status", 503), Fault("status", 500), Fault("status", 502)]
    caplog.set_level(logging.WARNING, logger="hypersdk.export")
    result = await download(
        client,
        disk_server.url(),
        tmp_path / "disk.img",
        expected_sha256=disk_server.sha256,
        retry=FAST_RETRY,
    )
    assert result.requests == 4
    retries = [r for r in caplog.records if r.name == "hypersdk.export" and "retrying" in r.msg]
    assert [r.args[1] for r in retries] == [2, 3, 4]  # type: ignore[index]


@pytest.mark.anyio
async def test_5xx_beyond_the_attempts_raises_and_leaves_nothing(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    disk_server.faults = [Fault("status", 503)] * 10
    url = disk_server.url(query="X-Amz-Signature=SECRETSIG&token=SECRETTOKEN")
    with pytest.raises(ProviderUnavailableError) as caught:
        await download(client, url, tmp_path / "disk.img", retry=FAST_RETRY, keep_partial=True)
    assert len(disk_server.requests) == FAST_RETRY.attempts
    assert "503" in str(caught.value)
    assert "SECRET" not in str(caught.value)
    assert "?" not in str(caught.value)
    assert _files(tmp_path) == []


@pytest.mark.anyio
async def test_retry_time_budget_bounds_the_attempts(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    disk_server.faults = [Fault("status", 503)] * 100
    policy = RetryPolicy(
        attempts=1000, timeout=0.3, wait_initial=0.05, wait_max=0.05, wait_jitter=0
    )
    started = anyio.current_time()
    with pytest.raises(ProviderUnavailableError):
        await download(client, disk_server.url(), tmp_path / "disk.img", retry=policy)
    assert anyio.current_time() - started < 2.0
    assert 2 <= len(disk_server.requests) < 20


@pytest.mark.anyio
async def test_secrets_in_the_url_stay_out_of_logs(
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    disk_server.faults = [Fault("status", 503), Fault("reset", after=1000)]
    caplog.set_level(logging.DEBUG)
    await download(
        client, disk_server.url(query="token=SECRETTOKEN"), tmp_path / "d.img", retry=FAST_RETRY
    )
    # httpx's own INFO log shows full URLs; that is the application's logging to tune.
    ours = [r for r in caplog.records if r.name.startswith(("hypersdk", "stamina"))]
    assert len(ours) >= 2
    for record in ours:
        assert "SECRETTOKEN" not in record.getMessage()
        assert "SECRETTOKEN" not in repr(record.__dict__)


@pytest.mark.anyio
async def test_client_errors_are_not_retried(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    disk_server.faults = [Fault("status", 404)]
    with pytest.raises(ProviderAPIError, match="404"):
        await download(client, disk_server.url(), tmp_path / "disk.img", retry=FAST_RETRY)
    assert len(disk_server.requests) == 1
    assert _files(tmp_path) == []


@pytest.mark.anyio
async def test_connection_refused_is_unavailable(client: httpx.AsyncClient, tmp_path: Path) -> None:
    with socket_port() as port:
        url = f"http://127.0.0.1:{port}/disk.img"
    with pytest.raises(ProviderUnavailableError, match="could not reach"):
        await download(client, url, tmp_path / "disk.img", retry=FAST_RETRY)
    assert _files(tmp_path) == []


@pytest.mark.anyio
@pytest.mark.parametrize("keep_partial", [False, True])
async def test_wrong_checksum_removes_everything(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path, keep_partial: bool
) -> None:
    disk_server.faults = [Fault("corrupt")]
    with pytest.raises(ChecksumMismatchError, match="expected"):
        await download(
            client,
            disk_server.url(),
            tmp_path / "disk.img",
            expected_sha256=disk_server.sha256,
            keep_partial=keep_partial,
            retry=FAST_RETRY,
        )
    assert _files(tmp_path) == []


@pytest.mark.anyio
async def test_announced_size_different_from_expected_fails_early(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with pytest.raises(ChecksumMismatchError, match="announces"):
        await download(
            client,
            disk_server.url(),
            tmp_path / "disk.img",
            expected_size=len(disk_server.body) + 1,
            retry=FAST_RETRY,
        )
    assert _files(tmp_path) == []


@pytest.mark.anyio
async def test_wrong_format_never_reaches_the_final_path(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with pytest.raises(ExportError, match="not the qcow2"):
        await download(
            client,
            disk_server.url(),
            tmp_path / "disk.qcow2",
            expected_format="qcow2",
            retry=FAST_RETRY,
        )
    assert _files(tmp_path) == []


async def _cancel_mid_stream(
    server: DiskServer, client: httpx.AsyncClient, target: Path, *, keep_partial: bool
) -> None:
    server.faults = [Fault("stall", after=400_000)]
    reporter = RecordingReporter()
    async with anyio.create_task_group() as group:

        async def run() -> None:
            await download(
                client,
                server.url(),
                target,
                keep_partial=keep_partial,
                progress=reporter,
                retry=FAST_RETRY,
                chunk_size=64 * 1024,
            )

        group.start_soon(run)
        with anyio.fail_after(5):
            while not (target.with_name(target.name + ".part")).exists() or (
                os.path.getsize(target.with_name(target.name + ".part")) < 200_000
            ):
                await anyio.sleep(0.01)
        group.cancel_scope.cancel()


@pytest.mark.anyio
async def test_cancellation_mid_stream_leaves_nothing(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await _cancel_mid_stream(disk_server, client, tmp_path / "disk.img", keep_partial=False)
    assert _files(tmp_path) == []


@pytest.mark.anyio
async def test_cancellation_with_keep_partial_can_resume_later(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    target = tmp_path / "disk.img"
    await _cancel_mid_stream(disk_server, client, target, keep_partial=True)
    assert _files(tmp_path) == ["disk.img.part"]
    kept = os.path.getsize(tmp_path / "disk.img.part")
    assert 200_000 <= kept <= 400_000
    result = await download(
        client, disk_server.url(), target, expected_sha256=disk_server.sha256, retry=FAST_RETRY
    )
    assert result.reused_bytes == kept
    assert _range_starts(disk_server)[-1] == kept
    assert target.read_bytes() == disk_server.body


@pytest.mark.anyio
async def test_full_disk_fails_cleanly(
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_write = download_module._write_all
    calls = 0

    def failing_write(fd: int, data: list[bytes]) -> None:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(fd, data)

    monkeypatch.setattr(download_module, "_write_all", failing_write)
    with pytest.raises(ExportError, match="free some space") as caught:
        await download(
            client, disk_server.url(), tmp_path / "disk.img", retry=FAST_RETRY, chunk_size=65536
        )
    assert not isinstance(caught.value, ProviderUnavailableError)
    assert len(disk_server.requests) == 1  # a full disk is not worth a retry
    assert _files(tmp_path) == []


@pytest.mark.anyio
async def test_existing_destination_needs_overwrite(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    target = tmp_path / "disk.img"
    target.write_bytes(b"precious")
    with pytest.raises(ExportError, match="already exists"):
        await download(client, disk_server.url(), target, retry=FAST_RETRY)
    assert target.read_bytes() == b"precious"
    assert disk_server.requests == []
    await download(client, disk_server.url(), target, overwrite=True, retry=FAST_RETRY)
    assert target.read_bytes() == disk_server.body


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        ({"expected_sha256": "abc"}, "expected_sha256"),
        ({"expected_size": -1}, "expected_size"),
        ({"chunk_size": 10}, "chunk_size"),
        ({"expected_format": "iso"}, "expected_format"),
    ],
)
async def test_bad_arguments_name_the_parameter(
    client: httpx.AsyncClient, tmp_path: Path, arguments: dict[str, object], parameter: str
) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{parameter}: must be"):
        await download(client, "http://127.0.0.1:9/x", tmp_path / "x", **arguments)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_non_http_url_is_a_configuration_error(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=r"^url:"):
        await download(client, "ftp://127.0.0.1/x", tmp_path / "x", retry=FAST_RETRY)
    assert _files(tmp_path) == []


@pytest.mark.anyio
@pytest.mark.skipif(os.name != "posix", reason="advisory locks are POSIX")
async def test_a_part_file_in_use_is_left_alone(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    import fcntl

    part = tmp_path / "disk.img.part"
    part.write_bytes(b"someone else's bytes")
    with part.open("rb+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ExportError, match="another download is already writing"):
            await download(client, disk_server.url(), tmp_path / "disk.img", retry=FAST_RETRY)
    assert part.read_bytes() == b"someone else's bytes"
    assert disk_server.requests == []


@pytest.mark.anyio
async def test_content_encoding_is_decoded(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    disk_server.faults = [Fault("gzip")]
    result = await download(
        client,
        disk_server.url(),
        tmp_path / "disk.img",
        expected_sha256=disk_server.sha256,
        retry=FAST_RETRY,
    )
    assert result.size == len(disk_server.body)
    assert (tmp_path / "disk.img").read_bytes() == disk_server.body


@pytest.mark.anyio
async def test_resumes_are_bounded(
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    disk_server.faults = [Fault("reset", after=100_000)] * 10
    policy = RetryPolicy(attempts=2, wait_initial=0, wait_jitter=0, max_resumes=2)
    caplog.set_level(logging.WARNING, logger="hypersdk.export")
    with pytest.raises(ProviderUnavailableError, match="gave up after 2 resumed transfers"):
        await download(client, disk_server.url(), tmp_path / "disk.img", retry=policy)
    assert len(disk_server.requests) == 3
    starts = _range_starts(disk_server)
    assert starts[0] is None
    assert starts[1] is not None
    assert starts[2] is not None
    assert 0 < starts[1] < starts[2]
    resumed = [r for r in caplog.records if "resuming (" in r.getMessage()]
    assert len(resumed) == 2
    assert _files(tmp_path) == []


@pytest.mark.anyio
async def test_malformed_url_is_a_configuration_error_without_the_url(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=r"^url: must be a valid") as caught:
        await download(client, "http://host:SECRET/x", tmp_path / "x", retry=FAST_RETRY)
    assert "SECRET" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert _files(tmp_path) == []
