"""The socket path: the author's respx router served on 127.0.0.1, for clients that are not httpx.

A plugin on requests, urllib3, ``http.client`` or aiohttp never passes through respx, so the
suite also serves the same router, with the same FakeCloud, on real sockets::

    configure(cloud) ─ cloud.loopback_url("https://api.x.test/v1") ─▶ http://127.0.0.1:PORT/v1
    client ──TCP──▶ listener for https://api.x.test ──▶ request rewritten to https://api.x.test/…
                                                      ──▶ the author's routes (one at a time)
    client ◀──TCP── answer streamed, absolute URLs of served hosts rewritten to loopback

One listening port stands for each origin (scheme, host, port), so a plugin's paths, query
strings and relative links are what it would send to the real API. A ``Location`` (a 302
to a pre-signed object URL) or a URL in a text body naming a host the routes serve (a
service catalog) is rewritten to that host's loopback port, allocated on first sight.

Faults keep their meaning on the wire: an intercepted timeout is silence and then a
hang-up, a reset is a TCP reset, ``Fault.stall`` is silence until the client gives up (or
:data:`~hypersdk_testing._fakecloud.STALL_CAP`), a mid-body reset closes the connection
half way through a body whose ``Content-Length`` promised more.
"""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import re
import selectors
import socket
import struct
import threading
import time
from typing import TYPE_CHECKING, Final, Literal

import attrs
import httpx
import respx

from hypersdk_testing._fakecloud import STALL_CAP, FakeCloud

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["LoopbackNetwork", "StallRecord", "SOCKET_EXTENSION", "TIMEOUT_SILENCE", "is_loopback"]

SOCKET_EXTENSION: Final = "hypersdk_testing.socket"
"""Set in ``request.extensions`` of every request that arrived over the socket path."""

TIMEOUT_SILENCE: Final = 0.1
"""Seconds an intercepted ``Fault.timeout`` stays silent before hanging up."""

# Absolute http(s) URLs in headers and text bodies; ``\\/`` covers JSON that escapes slashes.
_URL: Final = re.compile(
    r"(?P<scheme>https?):(?P<slashes>//|\\/\\/)"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r"(?::(?P<port>\d{1,5}))?"
)
# A literal origin inside a route's regex (re.escape writes api\.x\.test).
_REGEX_HOST: Final = re.compile(r"https?\??:(?://|\\/\\/)((?:[A-Za-z0-9-]|\\\.|\\-|\.)+)")
_TEXTUAL: Final = ("json", "xml", "text/", "javascript", "x-www-form-urlencoded", "yaml")
_HOP_BY_HOP: Final = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer"}
)
_NO_BODY_STATUS: Final = frozenset({204, 304})


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a name or an address) stays on this machine."""
    if not host:
        return True  # getaddrinfo(None, ...) asks for a local (passive) address
    name = host.strip("[]").casefold()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _origin(scheme: str, host: str, port: int | None) -> str:
    scheme = scheme.casefold()
    default = {"http": 80, "https": 443}.get(scheme)
    shown = "" if port is None or port == default else f":{port}"
    return f"{scheme}://{host.casefold()}{shown}"


def _origin_of(url: httpx.URL) -> str:
    return _origin(url.scheme, url.host, url.port)


@attrs.define
class StallRecord:
    """One request the socket path kept waiting (``Fault.stall``)."""

    method: str
    path: str
    seconds: float
    ended_by: Literal["client", "cap", "closing"]


class _Listener:
    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"


@attrs.define
class _Target:
    router: respx.MockRouter
    cloud: FakeCloud
    hosts: frozenset[str]


class LoopbackNetwork:
    """Loopback listeners standing for the hosts of one check, serving the current session.

    Started lazily (the first :meth:`loopback_url`), closed by :meth:`close` at the end of
    the check; sessions come and go with :meth:`serve` / :meth:`stop_serving`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._route_lock = threading.Lock()  # routes run one at a time, as on an event loop
        self._listeners: dict[str, _Listener] = {}
        self._by_port: dict[int, _Listener] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._closing = threading.Event()
        self._acceptor: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._target: _Target | None = None
        self._registered_hosts: set[str] = set()
        self.stall_cap: float | None = None
        """The longest a stall lasts (``None``: STALL_CAP); HTTP-TIMEOUTS lowers it."""
        self.stalls: list[StallRecord] = []
        self.route_errors: list[str] = []
        """Exceptions the author's routes raised while serving the socket path."""
        self.requests_served = 0

    # --- addresses -----------------------------------------------------------------------

    def loopback_url(self, url: str | httpx.URL) -> str:
        """The loopback URL standing for ``url`` (same path and query, http, 127.0.0.1)."""
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(
                f"loopback_url: {str(url)!r} is not an absolute http(s) URL; pass the base "
                "URL your mock_api routes use, e.g. 'https://api.example.test/v1'"
            )
        if is_loopback(parsed.host) and parsed.port in self._by_port:
            return str(parsed)
        listener = self._listener_for(_origin_of(parsed))
        with self._lock:
            self._registered_hosts.add(parsed.host.casefold())
        return str(parsed.copy_with(scheme="http", host="127.0.0.1", port=listener.port))

    def original(self, url: httpx.URL) -> httpx.URL | None:
        """The URL a loopback URL stands for, or ``None`` when it is not one of ours."""
        if not is_loopback(url.host) or url.port is None:
            return None
        listener = self._by_port.get(url.port)
        if listener is None:
            return None
        origin = httpx.URL(listener.origin)
        return url.copy_with(scheme=origin.scheme, host=origin.host, port=origin.port)

    def to_original(self, request: httpx.Request) -> httpx.Request:
        """``request`` aimed at the host its loopback URL stands for (else itself)."""
        target = self.original(request.url)
        if target is None:
            return request
        headers = [
            (key, value) for key, value in request.headers.multi_items() if key.lower() != "host"
        ]
        headers.insert(0, ("Host", target.netloc.decode("ascii")))
        return httpx.Request(
            request.method,
            target,
            headers=headers,
            stream=request.stream,
            extensions=request.extensions,
        )

    def _listener_for(self, origin: str) -> _Listener:
        with self._lock:
            if self._closing.is_set():
                raise RuntimeError("the check's loopback network is closed")
            listener = self._listeners.get(origin)
            if listener is None:
                listener = _Listener(origin)
                self._listeners[origin] = listener
                self._by_port[listener.port] = listener
                self._wake_w.send(b"n")  # the acceptor picks the new listener up
                if self._acceptor is None:
                    self._acceptor = threading.Thread(
                        target=self._accept_loop, name="hypersdk-loopback", daemon=True
                    )
                    self._acceptor.start()
            return listener

    @property
    def open_connections(self) -> int:
        """Client connections currently open to the listeners."""
        with self._lock:
            return len(self._connections)

    # --- sessions ------------------------------------------------------------------------

    def serve(self, router: respx.MockRouter, cloud: FakeCloud) -> None:
        """Serve ``router`` (with ``cloud``) until :meth:`stop_serving`."""
        hosts = frozenset(_route_hosts(router.routes)) | frozenset(self._registered_hosts)
        self._target = _Target(router=router, cloud=cloud, hosts=hosts)

    def stop_serving(self) -> None:
        """Stop serving the current session (new requests are refused)."""
        self._target = None

    def close(self) -> None:
        """Close every listener and connection, wake every stall, and stop the threads."""
        with self._lock:
            self._closing.set()
            listeners = list(self._listeners.values())
            connections = list(self._connections)
            self._listeners.clear()
            self._by_port.clear()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._acceptor is not None:
            self._acceptor.join(timeout=2)
        for listener in listeners:
            listener.sock.close()
        self._wake_r.close()
        self._wake_w.close()

    # --- serving -------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:  # no FD_SETSIZE limit, unlike select()
            selector.register(self._wake_r, selectors.EVENT_READ)
            watched: set[socket.socket] = set()
            while not self._closing.is_set():
                with self._lock:
                    for listener in self._listeners.values():
                        if listener.sock not in watched:
                            selector.register(listener.sock, selectors.EVENT_READ)
                            watched.add(listener.sock)
                try:
                    events = selector.select()
                except (OSError, ValueError):
                    return  # a listener closed under us: we are closing
                for key, _ in events:
                    ready = key.fileobj
                    if ready is self._wake_r:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(64)
                        continue
                    assert isinstance(ready, socket.socket)
                    self._accept(ready)

    def _accept(self, ready: socket.socket) -> None:
        try:
            connection, address = ready.accept()
        except OSError:  # BlockingIOError included: another wake-up took it
            return
        connection.setblocking(True)
        # Headers and body go out in separate writes: without this, Nagle and the
        # client's delayed ACK add 40 ms to every answer.
        with contextlib.suppress(OSError):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            listener = self._by_port.get(ready.getsockname()[1])
            if listener is None or self._closing.is_set():
                connection.close()
                return
            self._connections.add(connection)
        threading.Thread(
            target=self._handle,
            args=(connection, address, listener),
            name="hypersdk-loopback-connection",
            daemon=True,
        ).start()

    def _handle(self, connection: socket.socket, address: object, listener: _Listener) -> None:
        try:
            _Handler(connection, address, _HandlerContext(self, listener))  # type: ignore[arg-type]
        except OSError:
            pass  # the client went away; nothing to answer
        finally:
            with self._lock:
                self._connections.discard(connection)
            with contextlib.suppress(OSError):
                connection.close()

    def answer(self, request: httpx.Request) -> _Answer:
        """What the current session answers ``request`` with (on a connection thread)."""
        target = self._target
        if target is None:
            return _Answer(kind="reset")
        request.extensions[SOCKET_EXTENSION] = True
        with self._lock:
            self.requests_served += 1
        if target.cloud.stalls(request):
            target.router.calls.record(request, None)
            return _Answer(kind="stall")
        with self._route_lock:
            try:
                response = respx.MockRouter.handler(target.router, request)
            except httpx.TimeoutException:
                return _Answer(kind="silence")
            except httpx.ConnectError:  # no route serves it: as unreachable as on httpx
                return _Answer(kind="reset")
            except httpx.TransportError:
                return _Answer(kind="reset")
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
                self.route_errors.append(f"{request.method} {request.url.path}: {problem}")
                return _Answer(
                    kind="response",
                    response=httpx.Response(
                        500,
                        text=f"hypersdk_testing: the mock_api route raised {problem}",
                    ),
                )
        return _Answer(kind="response", response=response, hosts=target.hosts)

    def rewrite(self, text: str, hosts: frozenset[str], *, any_host: bool = False) -> str:
        """``text`` with absolute URLs of served hosts pointed at their loopback ports."""

        def replace(match: re.Match[str]) -> str:
            host = match["host"]
            name = host.strip("[]").casefold()
            if is_loopback(name) or not (any_host or name in hosts):
                return match[0]
            port = int(match["port"]) if match["port"] else None
            try:
                listener = self._listener_for(_origin(match["scheme"], host, port))
            except RuntimeError:
                return match[0]
            return f"http:{match['slashes']}{listener.netloc}"

        return _URL.sub(replace, text)

    def wait_silently(self, connection: socket.socket, seconds: float) -> tuple[float, str]:
        """Say nothing until the client hangs up, ``seconds`` pass or the network closes."""
        started = time.monotonic()
        deadline = started + seconds
        with selectors.DefaultSelector() as selector:
            selector.register(connection, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return time.monotonic() - started, "cap"
                try:
                    events = selector.select(left)
                except (OSError, ValueError):
                    return time.monotonic() - started, "closing"
                if self._closing.is_set():
                    return time.monotonic() - started, "closing"
                if any(key.fileobj is connection for key, _ in events):
                    try:
                        peeked = connection.recv(1, socket.MSG_PEEK)
                    except OSError:
                        peeked = b""
                    if not peeked:
                        return time.monotonic() - started, "client"
                    time.sleep(0.01)  # the client sent more: keep ignoring it


def _route_hosts(routes: Iterable[respx.Route]) -> Iterator[str]:
    """The host names the routes name (URL and host patterns, literal parts of regexes)."""
    from respx import patterns

    for route in routes:
        for leaf in route.pattern:
            value = leaf.value
            if isinstance(leaf, patterns.Host) and isinstance(value, str):
                yield value.casefold()
            elif isinstance(leaf, patterns.URL):
                if isinstance(value, str):
                    with contextlib.suppress(httpx.InvalidURL):
                        if host := httpx.URL(value).host:
                            yield host.casefold()
                elif isinstance(value, re.Pattern):
                    for found in _REGEX_HOST.findall(str(value.pattern)):
                        yield found.replace("\\", "").casefold()


@attrs.define
class _Answer:
    kind: Literal["response", "silence", "stall", "reset"]
    response: httpx.Response | None = None
    hosts: frozenset[str] = frozenset()


@attrs.define
class _HandlerContext:
    network: LoopbackNetwork
    listener: _Listener


def _textual(content_type: str) -> bool:
    lowered = content_type.casefold()
    return any(marker in lowered for marker in _TEXTUAL)


def _reset(connection: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed server or a middlebox would."""
    with contextlib.suppress(OSError):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        connection.close()


def _hang_up(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


class _Handler(http.server.BaseHTTPRequestHandler):
    """One client connection: read each request, answer it from the current session."""

    protocol_version = "HTTP/1.1"
    server: _HandlerContext  # type: ignore[assignment]
    rbufsize = -1
    wbufsize = 0

    def log_message(self, format: str, *args: object) -> None:
        pass  # a conformance run prints its own report, not access logs

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").casefold():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        context = self.server
        network = context.network
        body = self._read_body()
        origin = context.listener.origin
        path = self.path if self.path.startswith("/") else "/" + self.path.split("/", 3)[-1]
        headers = [(key, value) for key, value in self.headers.items() if key.lower() != "host"]
        headers.insert(0, ("Host", httpx.URL(origin).netloc.decode("ascii")))
        try:
            request = httpx.Request(self.command, origin + path, headers=headers, content=body)
        except (httpx.InvalidURL, ValueError):
            self.send_error(400, "hypersdk_testing: a request line httpx cannot parse")
            return
        answer = network.answer(request)
        if answer.kind == "response" and answer.response is not None:
            self._respond(answer.response, answer.hosts)
            return
        self.close_connection = True
        connection = self.connection
        if answer.kind == "reset":
            _reset(connection)
            return
        cap = TIMEOUT_SILENCE
        if answer.kind == "stall":
            cap = STALL_CAP if network.stall_cap is None else network.stall_cap
        waited, ended_by = network.wait_silently(connection, cap)
        if answer.kind == "stall":
            network.stalls.append(
                StallRecord(
                    method=request.method,
                    path=request.url.path,
                    seconds=waited,
                    ended_by=ended_by,  # type: ignore[arg-type]
                )
            )
        _hang_up(connection)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def _respond(self, response: httpx.Response, hosts: frozenset[str]) -> None:
        network = self.server.network
        bodiless = self.command == "HEAD" or response.status_code in _NO_BODY_STATUS
        whole: bytes | None = None
        if isinstance(response.stream, httpx.ByteStream):
            whole = b"".join(response.stream)
            encoded = "content-encoding" in response.headers
            if not encoded and _textual(response.headers.get("content-type", "")):
                with contextlib.suppress(UnicodeDecodeError):
                    whole = network.rewrite(whole.decode("utf-8"), hosts).encode("utf-8")
        self.send_response_only(response.status_code, response.reason_phrase or None)
        for key, value in response.headers.multi_items():
            if key.lower() in _HOP_BY_HOP:
                continue
            if key.lower() in ("location", "content-location"):
                shown = network.rewrite(value, hosts, any_host=True)
            else:  # Link: <https://api.x.test/v1/vms?page=2>; rel="next"
                shown = network.rewrite(value, hosts) if "://" in value else value
            self.send_header(key, shown)
        if whole is not None:
            self.send_header("Content-Length", str(0 if bodiless else len(whole)))
            self.end_headers()
            if not bodiless:
                self.wfile.write(whole)
            return
        promised = response.headers.get("content-length")
        chunked = promised is None and not bodiless
        if promised is not None:
            self.send_header("Content-Length", promised)
        elif chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", "0")
        self.end_headers()
        if bodiless:
            return
        try:
            for chunk in response.stream:  # type: ignore[union-attr]
                if not chunk:
                    continue
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    self.wfile.write(chunk)
        except (httpx.TransportError, httpx.StreamError):
            # A body cut short (Fault.reset_mid_body): the client has fewer bytes than
            # Content-Length promised, then the connection ends.
            self.close_connection = True
            _hang_up(self.connection)
            return
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
