"""A real HTTP server on 127.0.0.1 that serves one disk image and misbehaves on cue.

The server is a plain threaded socket server, not ``http.server``: the tests need to cut
a body short, reset a connection mid-stream and stall, which a well-behaved server
library will not do. Every response carries ``Connection: close`` so each request is a
new connection and faults line up with requests one to one.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import socket
import socketserver
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from hypersdk._http import httpx
from hypersdk.export import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

#: Retries in tests wait milliseconds, not seconds.
FAST_RETRY = RetryPolicy(
    attempts=4, timeout=10.0, wait_initial=0.001, wait_max=0.01, wait_jitter=0.0, max_resumes=10
)


@dataclass(frozen=True)
class Fault:
    """What the server does instead of (or while) serving the next request.

    kind is one of:
    ``status``  answer ``status`` with ``headers`` and a short body;
    ``truncate`` announce the full length, send ``after`` body bytes, close cleanly;
    ``reset``   send ``after`` body bytes, then reset the connection (RST);
    ``ignore_range`` answer 200 with the whole body even if Range was asked;
    ``stall``   send ``after`` bytes, then hang until the client goes away;
    ``corrupt`` serve the body with one byte flipped;
    ``gzip``    serve the body with ``Content-Encoding: gzip`` (and no Range support);
    ``swap``    from this request on, serve ``body`` (with ``etag`` and
                ``last_modified``) as the object: a
                server whose object changed between two requests;
    ``stream``  send ``headers`` verbatim (no ``Content-Length`` added), then ``body``,
                then close: chunked, close-delimited or lying bodies, built by the test.
    """

    kind: str
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    after: int = 0
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]


@dataclass
class DiskServer:
    """The state of the server: the image it serves, queued faults, requests seen."""

    body: bytes = b""
    faults: list[Fault] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    supports_range: bool = True
    etag: str | None = None
    last_modified: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/disk.img", query: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    def next_fault(self, request: Request) -> Fault | None:
        with self.lock:
            self.requests.append(request)
            return self.faults.pop(0) if self.faults else None


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        state = self.server.state
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.connection.recv(65536)
            if not data:
                return
            head += data
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        fault = state.next_fault(Request(method, target, headers))
        if fault is not None and fault.kind == "swap":
            state.body, state.etag = fault.body, fault.etag
            state.last_modified = fault.last_modified
        body = state.body
        if fault is not None and fault.kind == "stream":
            lines = ["HTTP/1.1 200 X", "Connection: close"]
            lines += [f"{name}: {value}" for name, value in fault.headers]
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            with contextlib.suppress(OSError):  # the client may stop reading early
                self.connection.sendall(head + fault.body)
            return
        if fault is not None and fault.kind == "status":
            payload = b'{"message": "injected"}'
            self._send_head(fault.status, len(payload), fault.headers)
            self.connection.sendall(payload)
            return
        if fault is not None and fault.kind == "corrupt" and body:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        if fault is not None and fault.kind == "gzip":
            payload = gzip.compress(body)
            self._send_head(200, len(payload), (("Content-Encoding", "gzip"),))
            self.connection.sendall(payload)
            return
        start = 0
        range_header = headers.get("range")
        honour = state.supports_range and not (fault is not None and fault.kind == "ignore_range")
        validator = headers.get("if-range")
        if validator is not None and validator not in (state.etag, state.last_modified):
            honour = False  # RFC 9110: the object changed, send all of it
        if range_header and honour:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self._send_head(416, 0, (("Content-Range", f"bytes */{len(body)}"),))
                return
            extra = (("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}"),)
            self._send_head(206, len(body) - start, extra)
        else:
            self._send_head(200, len(body), (("Accept-Ranges", "bytes"),) if honour else ())
        if method == "HEAD":
            return
        rest = body[start:]
        if fault is None or fault.kind in {"ignore_range", "corrupt"}:
            self.connection.sendall(rest)
            return
        self.connection.sendall(rest[: fault.after])
        if fault.kind == "reset":
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif fault.kind == "stall":
            self.connection.settimeout(0.05)
            while not state.closed.is_set():
                try:
                    if not self.connection.recv(1):
                        return
                except TimeoutError:
                    continue
                except OSError:
                    return

    def _send_head(self, status: int, length: int, extra: tuple[tuple[str, str], ...]) -> None:
        state = self.server.state
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {length}", "Connection: close"]
        if state.etag is not None:
            lines.append(f"ETag: {state.etag}")
        if state.last_modified is not None:
            lines.append(f"Last-Modified: {state.last_modified}")
        lines += [f"{name}: {value}" for name, value in state.extra_headers + extra]
        self.connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    state: DiskServer


@pytest.fixture
def disk_server() -> Iterator[DiskServer]:
    """A server on 127.0.0.1 (ephemeral port) serving ``state.body`` at any path.

    Range requests get 206 unless ``supports_range`` is false or an ``If-Range`` does
    not match ``etag``/``last_modified`` (sent when set); ``faults`` is consumed one
    per request, oldest first; ``requests`` records every request's method, target and
    lower-cased headers.
    """
    with serve_disk(bytes(range(256)) * 4096) as state:  # 1 MiB, position-dependent bytes
        yield state


@contextlib.contextmanager
def serve_disk(body: bytes) -> Iterator[DiskServer]:
    """Run a :class:`DiskServer` serving ``body`` for the length of the block."""
    state = DiskServer(body=body)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = state
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield state
    finally:
        state.closed.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        time.sleep(0)


# Loading the CA bundle costs ~50 ms per client; the tests only speak plain HTTP.
_TLS = ssl.create_default_context()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client as a provider would pass it (5 s timeouts, TLS context shared)."""
    async with httpx.AsyncClient(timeout=5.0, verify=_TLS) as client:
        yield client
