"""A download reads its body in large pieces, on its own connection only.

httpcore reads 64 KiB per socket read, a class attribute shared by every client in the
process. ``download`` raises it on the one connection carrying its body, for the length
of the body, and nowhere else. No timing here (``benchmarks/bench_download.py`` measures
what it buys); these check who reads how much.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import TYPE_CHECKING

import httpcore
import pytest

from hypersdk._http import httpx
from hypersdk.export import _download, download

from .conftest import FAST_RETRY, DiskServer, Fault

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

_DEFAULT = httpcore.AsyncHTTP11Connection.READ_NUM_BYTES


class _Reads:
    """Records, for every socket read httpcore makes, the connection and its size."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[httpcore.AsyncHTTP11Connection, int]] = []
        real = httpcore.AsyncHTTP11Connection._receive_event
        reads = self

        async def receive_event(
            self: httpcore.AsyncHTTP11Connection, timeout: float | None = None
        ) -> object:
            reads.calls.append((self, self.READ_NUM_BYTES))
            return await real(self, timeout)

        monkeypatch.setattr(httpcore.AsyncHTTP11Connection, "_receive_event", receive_event)

    def sizes(self) -> set[int]:
        return {size for _, size in self.calls}

    def connections(self) -> set[httpcore.AsyncHTTP11Connection]:
        return {connection for connection, _ in self.calls}


@pytest.mark.anyio
async def test_the_body_is_read_in_large_pieces_then_the_default_returns(
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = _Reads(monkeypatch)
    target = tmp_path / "disk.img"
    result = await download(
        client, disk_server.url(), target, expected_sha256=disk_server.sha256, retry=FAST_RETRY
    )
    assert result.sha256 == disk_server.sha256
    assert target.read_bytes() == disk_server.body
    # The head is read at httpcore's size, the body at ours.
    assert reads.sizes() == {_DEFAULT, _download._READ_SIZE}
    assert reads.calls[0][1] == _DEFAULT
    # Nothing is left behind on the connection or the class.
    for connection in reads.connections():
        assert "READ_NUM_BYTES" not in vars(connection)
    assert httpcore.AsyncHTTP11Connection.READ_NUM_BYTES == _DEFAULT


@pytest.mark.anyio
async def test_a_resumed_body_is_read_in_large_pieces_too(
    disk_server: DiskServer,
    client: httpx.AsyncClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = _Reads(monkeypatch)
    disk_server.faults.append(Fault("reset", after=300_000))
    result = await download(
        client,
        disk_server.url(),
        tmp_path / "disk.img",
        expected_sha256=disk_server.sha256,
        retry=FAST_RETRY,
    )
    assert result.requests == 2
    assert len(reads.connections()) == 2  # the server closes every connection
    for connection in reads.connections():
        assert (connection, _download._READ_SIZE) in reads.calls
        assert "READ_NUM_BYTES" not in vars(connection)


@contextlib.contextmanager
def _keep_alive_server(body: bytes) -> Iterator[str]:
    """One connection, kept alive, answering every GET with ``body``: a pooled client."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    port = listener.getsockname()[1]

    def serve() -> None:
        with contextlib.suppress(OSError), listener, listener.accept()[0] as conn:
            conn.settimeout(5)
            pending = b""
            while True:
                while b"\r\n\r\n" not in pending:
                    data = conn.recv(65536)
                    if not data:
                        return
                    pending += data
                _, pending = pending.split(b"\r\n\r\n", 1)
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                conn.sendall(head + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/disk.img"
    finally:
        thread.join(timeout=5)


@pytest.mark.anyio
async def test_other_requests_on_the_pooled_connection_keep_the_default(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = bytes(range(256)) * 2048
    reads = _Reads(monkeypatch)
    with _keep_alive_server(body) as url:
        await download(client, url, tmp_path / "disk.img", retry=FAST_RETRY)
        during = len(reads.calls)
        response = await client.get(url)  # the same connection, back from the pool
        assert response.content == body
        await client.aclose()
    assert len(reads.connections()) == 1
    assert _download._READ_SIZE in {size for _, size in reads.calls[:during]}
    assert {size for _, size in reads.calls[during:]} == {_DEFAULT}


@pytest.mark.anyio
async def test_a_transport_that_is_not_httpcore_is_left_alone(tmp_path: Path) -> None:
    body = b"x" * 100_000

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        result = await download(client, "http://example.test/disk.img", tmp_path / "d.img")
    assert result.size == len(body)
