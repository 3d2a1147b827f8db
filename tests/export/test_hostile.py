"""The export toolkit under attack: a hostile neighbour, a lying server, careless input.

Each test performs the attack of one item of the hardening issue (#10) and checks that
the promise in DESIGN.md ("Security promises") holds. Tests that plant another user's
file need root (CI runs as root) to ``lchown`` it to a uid nobody uses.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import logging
import os
import re
import sys
from typing import TYPE_CHECKING

import anyio
import pytest

from hypersdk import (
    ChecksumMismatchError,
    ConfigurationError,
    ExportError,
    ExportOptions,
    HyperSDKError,
)
from hypersdk._redact import MASK
from hypersdk.export import (
    UrllibSource,
    compress_file,
    compress_file_blocking,
    download,
    download_blocking,
    export_disk_image,
)
from hypersdk.export import _compress as compress_module
from hypersdk.export import _download as download_module

from .conftest import FAST_RETRY, DiskServer, Fault, serve_disk

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

if TYPE_CHECKING:
    from pathlib import Path

    from hypersdk._http import httpx

# A uid that owns nothing on the machine: "another user".
OTHER_UID = 54321
needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="planting another user's file needs root to chown it (CI runs as root)",
)
posix_only = pytest.mark.skipif(os.name != "posix", reason="symlinks and O_NOFOLLOW are POSIX")

VICTIM = b"root-only bytes that must never change"


def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the export folder that a planted link points at."""
    path = tmp_path / "victim"
    path.write_bytes(VICTIM)
    path.chmod(0o600)
    return path


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """The shared, world-writable export folder (sticky, like /tmp)."""
    path = tmp_path / "shared"
    path.mkdir()
    path.chmod(0o1777)
    return path


# -- 1. no write through a planted link --------------------------------------------------


@posix_only
@pytest.mark.anyio
@pytest.mark.parametrize("plant", ["symlink", "hardlink"])
async def test_a_link_planted_at_the_part_file_is_never_written_through(
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    shared: Path,
    victim: Path,
    plant: str,
) -> None:
    part = shared / "web.raw.part"
    if plant == "symlink":
        part.symlink_to(victim)
    else:
        os.link(victim, part)
    result = await download(client, disk_server.url(), shared / "web.raw", retry=FAST_RETRY)
    assert victim.read_bytes() == VICTIM
    # Nothing derived from the victim reached the server (its size, as a Range).
    assert "range" not in disk_server.requests[0].headers
    final = shared / "web.raw"
    assert not final.is_symlink()
    assert final.read_bytes() == disk_server.body
    assert result.reused_bytes == 0
    # The planted entry is left as it was; our own part file is gone.
    assert os.path.lexists(part)
    assert _files(shared) == ["web.raw", "web.raw.part"]


@posix_only
def test_a_planted_link_is_never_written_through_by_download_blocking(
    disk_server: DiskServer, shared: Path, victim: Path
) -> None:
    (shared / "web.raw.part").symlink_to(victim)
    download_blocking(UrllibSource(disk_server.url()), shared / "web.raw", retry=FAST_RETRY)
    assert victim.read_bytes() == VICTIM
    assert "range" not in disk_server.requests[0].headers
    assert (shared / "web.raw").read_bytes() == disk_server.body


@needs_root
@pytest.mark.anyio
async def test_another_users_part_file_is_not_resumed(
    disk_server: DiskServer, client: httpx.AsyncClient, shared: Path
) -> None:
    part = shared / "web.raw.part"
    part.write_bytes(disk_server.body[:1000])
    os.lchown(part, OTHER_UID, OTHER_UID)
    result = await download(client, disk_server.url(), shared / "web.raw", retry=FAST_RETRY)
    assert result.reused_bytes == 0
    assert "range" not in disk_server.requests[0].headers
    assert part.read_bytes() == disk_server.body[:1000]  # theirs, untouched
    assert (shared / "web.raw").read_bytes() == disk_server.body


@posix_only
@pytest.mark.anyio
async def test_our_own_part_file_is_still_resumed(
    disk_server: DiskServer, client: httpx.AsyncClient, shared: Path
) -> None:
    (shared / "web.raw.part").write_bytes(disk_server.body[:1000])
    result = await download(client, disk_server.url(), shared / "web.raw", retry=FAST_RETRY)
    assert result.reused_bytes == 1000
    assert disk_server.requests[0].headers["range"] == "bytes=1000-"


@posix_only
@pytest.mark.anyio
async def test_a_link_planted_at_the_final_name_is_replaced_not_followed(
    disk_server: DiskServer, client: httpx.AsyncClient, shared: Path, victim: Path
) -> None:
    final = shared / "web.raw"
    final.symlink_to(victim)
    with pytest.raises(ExportError, match="already exists"):
        await download(client, disk_server.url(), final, retry=FAST_RETRY)
    assert victim.read_bytes() == VICTIM
    await download(client, disk_server.url(), final, overwrite=True, retry=FAST_RETRY)
    assert victim.read_bytes() == VICTIM
    assert not final.is_symlink()
    assert final.read_bytes() == disk_server.body


@posix_only
@pytest.mark.anyio
@pytest.mark.parametrize("blocking", [False, True])
async def test_compress_file_never_truncates_a_planted_links_target(
    shared: Path, victim: Path, blocking: bool
) -> None:
    source = shared / "disk.raw"
    source.write_bytes(b"image " * 10_000)
    (shared / "disk.raw.zst.part").symlink_to(victim)
    if blocking:
        result = compress_file_blocking(source, shared / "disk.raw.zst")
    else:
        result = await compress_file(source, shared / "disk.raw.zst")
    assert victim.read_bytes() == VICTIM
    packed = (shared / "disk.raw.zst").read_bytes()
    assert zstd.decompress(packed) == source.read_bytes()
    assert result.sha256 == hashlib.sha256(packed).hexdigest()


# -- 3. concurrent compressed exports of one name never mix ------------------------------


@pytest.mark.anyio
async def test_concurrent_compressed_exports_of_one_name_never_mix(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # Export A compresses slowly (4 MiB of noise at gzip level 9); export B of another VM
    # to the same name runs from start to end while A is compressing.
    bodies = [os.urandom(4 << 20), os.urandom(100_000)]
    options = ExportOptions(output_path=tmp_path, format="raw", compress=True, compression_level=9)
    outcomes: list[object] = [None, None]
    compressing = anyio.Event()

    class StartB:
        def update(self, phase: str, percent: float, message: str) -> None:
            if phase == "compressing" and not compressing.is_set():
                anyio.from_thread.run_sync(compressing.set)  # called from the worker thread

    with serve_disk(bodies[0]) as first, serve_disk(bodies[1]) as second:

        async def export(index: int, server: DiskServer) -> None:
            if index == 1:
                await compressing.wait()
            try:
                outcomes[index] = await export_disk_image(
                    client,
                    server.url(),
                    options,
                    provider="test",
                    vm_id=f"vm-{index}",
                    vm_name="web",
                    algorithm="gzip",
                    progress=StartB() if index == 0 else None,
                    retry=FAST_RETRY,
                )
            except HyperSDKError as exc:
                outcomes[index] = exc

        async with anyio.create_task_group() as group:
            group.start_soon(export, 0, first)
            group.start_soon(export, 1, second)

    succeeded = 0
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, HyperSDKError):
            assert isinstance(outcome, ExportError), outcome
            assert re.search("another download is already writing|already exists", str(outcome))
            continue
        succeeded += 1
        assert outcome is not None
        packed = (tmp_path / outcome.files[0]).read_bytes()  # type: ignore[attr-defined]
        assert outcome.checksum == hashlib.sha256(packed).hexdigest()  # type: ignore[attr-defined]
        assert gzip.decompress(packed) == bodies[index]
    assert succeeded >= 1
    assert not [name for name in _files(tmp_path) if "part" in name or "download" in name]


@pytest.mark.anyio
async def test_concurrent_compressions_of_one_destination_never_mix(tmp_path: Path) -> None:
    sources = []
    for n in (1, 2):
        path = tmp_path / f"disk{n}.raw"
        path.write_bytes(bytes([n]) * (4 << 20) + os.urandom(1000))
        sources.append(path)
    target = tmp_path / "disk.raw.gz"
    outcomes: list[object] = [None, None]

    async def run(index: int) -> None:
        try:
            outcomes[index] = await compress_file(sources[index], target, algorithm="gzip", level=1)
        except HyperSDKError as exc:
            outcomes[index] = exc

    async with anyio.create_task_group() as group:
        group.start_soon(run, 0)
        group.start_soon(run, 1)
    winners = [i for i, outcome in enumerate(outcomes) if not isinstance(outcome, HyperSDKError)]
    assert len(winners) == 1, outcomes
    packed = target.read_bytes()
    assert gzip.decompress(packed) == sources[winners[0]].read_bytes()
    assert outcomes[winners[0]].sha256 == hashlib.sha256(packed).hexdigest()  # type: ignore[attr-defined]
    loser = outcomes[1 - winners[0]]
    assert isinstance(loser, ExportError)
    assert _files(tmp_path) == ["disk.raw.gz", "disk1.raw", "disk2.raw"]


# -- 4. a resume never splices two objects ------------------------------------------------


@pytest.mark.anyio
async def test_a_resume_answered_by_another_object_restarts_from_zero(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    original = disk_server.body
    longer = os.urandom(2 * len(original))
    # The first answer breaks at 300 kB; the resume is served from a 2 MiB object; then
    # the server serves the original again.
    disk_server.faults = [
        Fault("reset", after=300_000),
        Fault("swap", body=longer),
        Fault("swap", body=original),
    ]
    target = tmp_path / "disk.img"
    await download(client, disk_server.url(), target, retry=FAST_RETRY, chunk_size=65536)
    assert target.read_bytes() == original
    ranges = [request.headers.get("range") for request in disk_server.requests]
    assert ranges[0] is None
    assert ranges[1] is not None
    assert ranges[2] is None  # started over


@pytest.mark.anyio
@pytest.mark.parametrize("validator", ["etag", "last-modified"])
async def test_a_resume_sends_if_range_and_takes_a_changed_object_whole(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path, validator: str
) -> None:
    if validator == "etag":
        disk_server.etag = '"v1"'
    else:
        disk_server.last_modified = "Wed, 21 Oct 2026 07:28:00 GMT"
    new = os.urandom(len(disk_server.body))
    # Same length, new content: only If-Range can tell.
    changed = (
        Fault("swap", body=new, etag='"v2"')
        if validator == "etag"
        else Fault("swap", body=new, last_modified="Thu, 22 Oct 2026 07:28:00 GMT")
    )
    disk_server.faults = [Fault("reset", after=300_000), changed]
    target = tmp_path / "disk.img"
    await download(client, disk_server.url(), target, retry=FAST_RETRY, chunk_size=65536)
    sent = disk_server.requests[1].headers.get("if-range")
    assert sent == ('"v1"' if validator == "etag" else "Wed, 21 Oct 2026 07:28:00 GMT")
    assert target.read_bytes() == new  # the new object whole, never a splice


def test_a_blocking_resume_answered_by_another_object_restarts(
    disk_server: DiskServer, tmp_path: Path
) -> None:
    original = disk_server.body
    disk_server.faults = [
        Fault("reset", after=300_000),
        Fault("swap", body=os.urandom(2 * len(original))),
        Fault("swap", body=original),
    ]
    target = tmp_path / "disk.img"
    download_blocking(UrllibSource(disk_server.url()), target, retry=FAST_RETRY)
    assert target.read_bytes() == original


# -- 5. a body longer than promised is cut off while it streams ---------------------------


def _chunked(data: bytes, piece: int = 65536) -> bytes:
    out = bytearray()
    for start in range(0, len(data), piece):
        block = data[start : start + piece]
        out += f"{len(block):x}\r\n".encode() + block + b"\r\n"
    return bytes(out + b"0\r\n\r\n")


_BIG = 8 << 20
_BOMB = gzip.compress(bytes(32 << 20), compresslevel=1)
_OVERSIZED = {
    "chunked": Fault(
        "stream", headers=(("Transfer-Encoding", "chunked"),), body=_chunked(bytes(_BIG))
    ),
    "close-delimited": Fault("stream", body=bytes(_BIG)),
    "gzip bomb": Fault(
        "stream",
        headers=(("Content-Encoding", "gzip"), ("Content-Length", str(len(_BOMB)))),
        body=_BOMB,
    ),
}


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the batches the download writes to disk."""
    sizes: list[int] = []
    real = download_module._write_all

    def counting(fd: int, batch: list[bytes]) -> None:
        sizes.append(sum(len(chunk) for chunk in batch))
        real(fd, batch)

    monkeypatch.setattr(download_module, "_write_all", counting)
    return sizes


@pytest.mark.anyio
@pytest.mark.parametrize("body", list(_OVERSIZED))
async def test_a_body_past_expected_size_is_cut_off_while_streaming(
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    written: list[int],
    body: str,
) -> None:
    disk_server.faults = [_OVERSIZED[body]]
    chunk = 65536
    with pytest.raises(ChecksumMismatchError, match="longer than the 100000 bytes expected"):
        await download(
            client,
            disk_server.url(),
            tmp_path / "disk.img",
            expected_size=100_000,
            retry=FAST_RETRY,
            chunk_size=chunk,
        )
    assert sum(written) <= 100_000 + chunk
    assert len(disk_server.requests) == 1  # a lying server is not retried
    assert _files(tmp_path) == []


@pytest.mark.parametrize("body", list(_OVERSIZED))
def test_a_blocking_body_past_expected_size_is_cut_off(
    disk_server: DiskServer, tmp_path: Path, written: list[int], body: str
) -> None:
    disk_server.faults = [_OVERSIZED[body]]
    chunk = 65536
    with pytest.raises(ChecksumMismatchError, match="longer than the 100000 bytes expected"):
        download_blocking(
            UrllibSource(disk_server.url(), read_size=chunk),
            tmp_path / "disk.img",
            expected_size=100_000,
            retry=FAST_RETRY,
            chunk_size=chunk,
        )
    assert sum(written) <= 100_000 + chunk
    assert _files(tmp_path) == []


def test_a_source_yielding_past_its_content_length_is_cut_off(
    tmp_path: Path, written: list[int]
) -> None:
    from hypersdk.export import SourceResponse

    class Liar:
        def open(self, offset: int, validator: str | None) -> SourceResponse:
            return SourceResponse(
                status=200,
                headers={"Content-Length": "1000"},
                chunks=(bytes(4096) for _ in range(10_000)),
            )

    with pytest.raises(ChecksumMismatchError, match="longer than the 1000 bytes announced"):
        download_blocking(Liar(), tmp_path / "x", retry=FAST_RETRY, chunk_size=4096)
    assert sum(written) <= 1000
    assert _files(tmp_path) == []


# -- 6. no query string or credential header in any log record ---------------------------


_SECRETS = ("SIGNATURE-SECRET", "QUERY-SECRET", "BEARER-SECRET", "COOKIE-SECRET", "SUBJECT-SECRET")


def _assert_clean(caplog: pytest.LogCaptureFixture) -> None:
    messages = [record.getMessage() for record in caplog.records]
    assert messages, "the test should have produced log records"
    for message in messages:
        for secret in _SECRETS:
            assert secret not in message, message
        for url in re.findall(r"https?://\S+", message):
            # A query, if shown at all, is only the mask.
            assert "?" not in url or url.partition("?")[2].startswith(MASK), message


@pytest.mark.anyio
async def test_download_logs_no_query_string_or_credential_header(
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    disk_server.extra_headers = (
        ("Set-Cookie", "sid=COOKIE-SECRET"),
        ("X-Subject-Token", "SUBJECT-SECRET"),
    )
    disk_server.faults = [Fault("status", status=503), Fault("reset", after=300_000)]
    url = disk_server.url(query="X-Amz-Signature=SIGNATURE-SECRET&token=QUERY-SECRET")
    await download(
        client,
        url,
        tmp_path / "disk.img",
        headers={"Authorization": "Bearer BEARER-SECRET"},
        retry=FAST_RETRY,
    )
    assert any(r.name == "httpx" for r in caplog.records)  # httpx did log the request
    assert any(r.name.startswith("httpcore") for r in caplog.records)
    assert any(
        r.name == "hypersdk.export" and "http://127.0.0.1/disk.img" in r.getMessage()
        for r in caplog.records
    )
    _assert_clean(caplog)


def test_download_blocking_logs_no_query_string(
    disk_server: DiskServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    disk_server.faults = [Fault("status", status=503), Fault("reset", after=300_000)]
    url = disk_server.url(query="X-Amz-Signature=SIGNATURE-SECRET&token=QUERY-SECRET")
    source = UrllibSource(url, headers={"Authorization": "Bearer BEARER-SECRET"})
    assert "SECRET" not in repr(source)
    download_blocking(source, tmp_path / "disk.img", retry=FAST_RETRY)
    _assert_clean(caplog)


def test_redaction_of_library_log_text() -> None:
    from hypersdk._redact import redact_text

    text = redact_text(
        "HTTP Request: GET https://user:pw@s3.example/b/k?X-Amz-Signature=abc "
        "receive_response_headers.complete return_value=(b'HTTP/1.1', 200, b'OK', "
        "[(b'Set-Cookie', b'sid=1'), (b'X-Subject-Token', b'tok'), (b'ETag', b'\"e\"')]) "
        '"GET /b/k?sig=abc HTTP/1.1" 200'
    )
    assert "abc" not in text
    assert "pw" not in text
    assert "sid=1" not in text
    assert "tok" not in text
    assert "@s3.example/b/k?" in text  # the host and path stay readable
    assert "X-Session: **" in redact_text("X-Session: s3cr3t")
    assert "b'\"e\"'" in text  # harmless headers stay


# -- 12. a full disk during compression ---------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("blocking", [False, True])
async def test_compress_on_a_full_disk_is_an_export_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blocking: bool
) -> None:
    source = tmp_path / "disk.raw"
    source.write_bytes(os.urandom(3 << 20))

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(compress_module, "write_all", full)
    target = tmp_path / "disk.raw.zst"

    async def run() -> object:
        if blocking:
            return compress_file_blocking(source, target)
        return await compress_file(source, target)

    with pytest.raises(ExportError) as caught:
        await run()
    message = str(caught.value)
    assert "disk.raw.zst" in message
    assert os.strerror(errno.ENOSPC) in message
    assert "free some space" in message
    assert _files(tmp_path) == ["disk.raw"]


# -- 13. export_disk_image checks every argument before writing anything ------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        ({"vm_id": ""}, "vm_id"),
        ({"vm_id": None}, "vm_id"),
        ({"vm_id": 5}, "vm_id"),
        ({"provider": ""}, "provider"),
        ({"provider": 5}, "provider"),
        ({"vm_name": " "}, "vm_name"),
        ({"vm_name": None}, "vm_name"),
        ({"options": "raw"}, "options"),
        ({"algorithm": "lz4"}, "algorithm"),
        ({"algorithm": 5}, "algorithm"),
        ({"expected_sha256": "abc"}, "expected_sha256"),
        ({"expected_size": -1}, "expected_size"),
        ({"overwrite": "yes"}, "overwrite"),
        ({"keep_partial": 1}, "keep_partial"),
        ({"headers": {"Authorization": 5}}, "headers"),
        ({"headers": "Authorization: x"}, "headers"),
        ({"progress": 5}, "progress"),
        ({"retry": 5}, "retry"),
        ({"chunk_size": "big"}, "chunk_size"),
        ({"url": 5}, "url"),
        ({"client": None}, "client"),
    ],
)
async def test_export_disk_image_checks_arguments_before_writing(
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    arguments: dict[str, object],
    parameter: str,
) -> None:
    out = tmp_path / "out"
    call: dict[str, object] = {
        "client": client,
        "url": disk_server.url(),
        "options": ExportOptions(output_path=out, format="raw", compress=True),
        "provider": "test",
        "vm_id": "vm-1",
        "vm_name": "web",
        "retry": FAST_RETRY,
    }
    call.update(arguments)
    with pytest.raises(ConfigurationError, match=rf"^(ExportResult\.)?{parameter}: must be"):
        await export_disk_image(**call)  # type: ignore[arg-type]
    assert not out.exists()
    assert disk_server.requests == []
