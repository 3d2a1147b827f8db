"""FakeCloud: the in-memory world a conformance run serves through the author's mock_api."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Final, Literal

import anyio.lowlevel
import attrs
import httpx

from hypersdk import VMInfo

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from hypersdk_testing._loopback import LoopbackNetwork


__all__ = ["FakeCloud", "Fault", "Mutation", "Page", "DEFAULT_DISK_SIZE", "STALL_CAP"]

DEFAULT_DISK_SIZE: Final = 48 * 1024
"""Bytes of each generated disk image: a few chunks, so downloads can fail mid-body."""

_CHUNK: Final = 8 * 1024

FaultKind = Literal[
    "status", "timeout", "reset", "malformed", "wrong_shape", "reset_mid_body", "stall"
]

STALL_CAP: Final = 3.0
"""The longest a stalled request waits when the client set no shorter read timeout."""


@attrs.frozen(kw_only=True)
class Fault:
    """One failure the mocked API serves instead of a normal answer.

    Build faults with the class methods (``Fault.http(503)``, ``Fault.rate_limited(1)``,
    ...) and queue them with :meth:`FakeCloud.inject`.
    """

    kind: FaultKind
    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""

    @classmethod
    def http(cls, status: int, *, headers: Mapping[str, str] | None = None) -> Fault:
        """An HTTP error status with a small JSON error body (401, 403, 404, 500, ...)."""
        body = b'{"id": "fault", "message": "injected by hypersdk_testing"}'
        return cls(kind="status", status=status, headers=dict(headers or {}), body=body)

    @classmethod
    def rate_limited(cls, retry_after: float) -> Fault:
        """HTTP 429 with ``Retry-After: <retry_after>`` (seconds)."""
        return cls.http(429, headers={"Retry-After": f"{retry_after:g}"})

    @classmethod
    def timeout(cls) -> Fault:
        """The request times out before any response.

        On httpx it raises ``httpx.ReadTimeout``; over the socket path the server stays
        silent for a moment, then hangs up without answering (a client with a shorter
        read timeout sees its own timeout first).
        """
        return cls(kind="timeout")

    @classmethod
    def connection_reset(cls) -> Fault:
        """The connection drops before any response.

        On httpx it raises ``httpx.RemoteProtocolError``; over the socket path the server
        closes the connection with a TCP reset.
        """
        return cls(kind="reset")

    @classmethod
    def malformed_json(cls) -> Fault:
        """HTTP 200 whose body is cut-off JSON."""
        return cls(kind="malformed", body=b'{"truncated": [1, 2, ')

    @classmethod
    def wrong_shape(cls, body: bytes = b'{"unexpected": {"shape": true}}') -> Fault:
        """HTTP 200 with valid JSON of the wrong shape (by default an unrelated object)."""
        return cls(kind="wrong_shape", body=body)

    @classmethod
    def stall(cls) -> Fault:
        """The server never answers the request.

        The request fails with ``httpx.ReadTimeout`` once the client's read timeout has
        passed (at most :data:`STALL_CAP` seconds). The suite's router serves it before
        any route runs, so a client under an anyio deadline (or with a short timeout) sees
        what a hung API would do to it. Over the socket path the server says nothing until
        the client hangs up (or :data:`STALL_CAP` passes), then closes the connection.
        """
        return cls(kind="stall")

    @classmethod
    def reset_mid_body(cls) -> Fault:
        """A disk download (:meth:`FakeCloud.serve_disk`) drops after half its bytes.

        Over the socket path the connection closes after half the bytes its
        ``Content-Length`` promised.
        """
        return cls(kind="reset_mid_body")

    def describe(self) -> str:
        """A short phrase for messages: ``'HTTP 429 (Retry-After: 1)'``, ``'a timeout'``."""
        if self.kind == "status":
            extra = ", ".join(f"{key}: {value}" for key, value in self.headers.items())
            return f"HTTP {self.status}" + (f" ({extra})" if extra else "")
        return {
            "timeout": "a read timeout",
            "reset": "a connection reset",
            "malformed": "a malformed JSON body",
            "wrong_shape": "a wrongly shaped JSON body",
            "reset_mid_body": "a connection reset mid-body",
            "stall": "no answer at all",
        }[self.kind]


@attrs.frozen(kw_only=True)
class Mutation:
    """One provider-side change recorded by the mocked API (``cloud.record(...)``)."""

    kind: str
    details: Mapping[str, object]
    at: float


@attrs.frozen(kw_only=True)
class Page:
    """One page of a listing, as :meth:`FakeCloud.page` cuts it."""

    items: Sequence[VMInfo]
    number: int
    per_page: int
    total: int

    @property
    def last(self) -> int:
        """The number of the last page (1 for an empty listing)."""
        return max(1, -(-self.total // self.per_page))

    @property
    def next(self) -> int | None:
        """The next page number, or ``None`` on the last page."""
        return self.number + 1 if self.number < self.last else None


@attrs.define
class _PendingFault:
    fault: Fault
    remaining: int | None  # None: forever
    on: str | None


@attrs.frozen
class _Request:
    at: float
    method: str
    url: str


class _Disks(Mapping[str, bytes]):
    """Disk images generated on first access, deterministic per VM id."""

    def __init__(self, ids: Sequence[str], size: int) -> None:
        self._ids = frozenset(ids)
        self._size = size
        self._cache: dict[str, bytes] = {}

    def __getitem__(self, vm_id: str) -> bytes:
        if vm_id not in self._ids:
            raise KeyError(vm_id)
        if vm_id not in self._cache:
            # One extendable-output hash: deterministic, incompressible, and fast for the
            # disks of several MiB the export checks use.
            self._cache[vm_id] = hashlib.shake_256(f"disk:{vm_id}".encode()).digest(self._size)
        return self._cache[vm_id]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._ids))

    def __len__(self) -> int:
        return len(self._ids)


# The faults intercept() serves; the others act on a body (serve_disk) or before routing.
_INTERCEPTED: Final = frozenset({"status", "timeout", "reset", "malformed", "wrong_shape"})

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


class FakeCloud:
    """An in-memory cloud: VMs, their disks, the one valid token, faults and a mutation log.

    The suite builds one per scenario and hands it to your ``mock_api``, whose routes
    serve it in your API's dialect. A route calls :meth:`intercept` first::

        def mock_api(self, router: respx.MockRouter, cloud: FakeCloud) -> None:
            def list_machines(request: httpx.Request) -> httpx.Response:
                if (early := cloud.intercept(request)) is not None:
                    return early
                page = cloud.page(cloud.vms, number=int(request.url.params.get("page", 1)))
                return cloud.json({"machines": [to_api(vm) for vm in page.items],
                                   "next": page.next})
            router.get("https://api.test/v1/machines").mock(side_effect=list_machines)

    ``vms`` are in the order the API lists them; ``page_size`` is the most the API puts
    on one page, whatever the client asks for, so pagination is always exercised.
    """

    def __init__(
        self,
        vms: Sequence[VMInfo],
        *,
        token: str | None = None,
        page_size: int = 20,
        disk_size: int = DEFAULT_DISK_SIZE,
        auth_scheme: str = "Bearer",
        auth_header: str = "Authorization",
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size: must be >= 1, got {page_size}")
        self.vms: Sequence[VMInfo] = tuple(vms)
        ids = [vm.id for vm in self.vms]
        if len(set(ids)) != len(ids):
            repeated = sorted({vm_id for vm_id in ids if ids.count(vm_id) > 1})
            raise ValueError(
                f"FakeCloud: VM ids must be unique, {repeated[:5]} repeat; if your "
                "representable() rewrites ids, keep them distinct"
            )
        self.token: str = token if token is not None else "hsdk-test-" + secrets.token_hex(12)
        self.page_size = page_size
        self.auth_scheme = auth_scheme
        self.auth_header = auth_header
        self.disks: Mapping[str, bytes] = _Disks([vm.id for vm in self.vms], disk_size)
        self.mutations: list[Mutation] = []
        self.requests: list[_Request] = []
        self.unmatched: list[httpx.Request] = []
        self.misplaced_token: list[str] = []
        """Where rejected requests carried the valid token instead (``"header 'X-Token'"``)."""
        self.disk_requests = 0
        self.faults_served: list[tuple[float, Fault]] = []
        self.on_disk_chunk: Callable[[], None] | None = None
        """Called after each chunk of a disk download (the suite cancels exports here)."""
        self._faults: list[_PendingFault] = []
        self._lock = threading.Lock()
        self._by_id = {vm.id: vm for vm in self.vms}
        self._network: LoopbackNetwork | None = None

    # --- where the plugin finds it -------------------------------------------------------

    def loopback_url(self, url: str) -> str:
        """The address on 127.0.0.1 that serves ``url``'s host during a check.

        Routes keep the URLs you wrote (``https://api.example.test/v1/...``); hand the
        plugin this address instead when its HTTP does not go through httpx (requests,
        urllib3, ``http.client``, aiohttp, a vendor SDK)::

            def configure(self, cloud):
                return ProviderConfig(type="mycloud", endpoint=cloud.loopback_url(API), ...)

        Same path and query, scheme ``http``, host ``127.0.0.1`` and one port per origin.
        An httpx plugin may use it too: respx maps it back to ``url``. Raises RuntimeError
        outside a conformance check (nothing serves this FakeCloud on a socket then).
        """
        if self._network is None:
            raise RuntimeError(
                "FakeCloud.loopback_url: this FakeCloud is not served on a socket; only a "
                "conformance check (ProviderConformance) serves one"
            )
        return self._network.loopback_url(url)

    # --- the world -----------------------------------------------------------------------

    def vm(self, vm_id: str) -> VMInfo | None:
        """The VM with this id, or ``None``."""
        return self._by_id.get(vm_id)

    def page(self, items: Sequence[VMInfo], *, number: int, per_page: int | None = None) -> Page:
        """Cut page ``number`` (1-based) of ``items``; ``per_page`` is capped at page_size."""
        size = min(per_page or self.page_size, self.page_size)
        size = max(size, 1)
        number = max(number, 1)
        chunk = items[(number - 1) * size : number * size]
        return Page(items=tuple(chunk), number=number, per_page=size, total=len(items))

    def rotate_token(self) -> str:
        """Replace the valid token (the old one is now rejected) and return the new one."""
        self.token = "hsdk-test-" + secrets.token_hex(12)
        return self.token

    # --- serving -------------------------------------------------------------------------

    def authorized(self, request: httpx.Request) -> bool:
        """Whether ``request`` carries the valid token in the configured header and scheme."""
        sent = str(request.headers.get(self.auth_header, ""))
        expected = f"{self.auth_scheme} {self.token}" if self.auth_scheme else self.token
        return sent == expected

    def _token_elsewhere(self, request: httpx.Request) -> str:
        # The valid token sent in another header or scheme: a suite setting, not a bug.
        for name, value in request.headers.items():
            if self.token and self.token in value:
                scheme = value[: value.index(self.token)].strip()
                shown = f"scheme {scheme!r}" if scheme else "no scheme (the bare token)"
                return f"header {name!r} with {shown}"
        return ""

    def intercept(
        self, request: httpx.Request, *, check_token: bool = True
    ) -> httpx.Response | None:
        """Answer a request early: a 401 without the token, or the next injected fault.

        Returns ``None`` when the route should serve normally. Timeouts and connection
        resets are raised as the httpx exceptions a real transport raises. Pass
        ``check_token=False`` in a route that a pre-signed URL reaches (object storage
        after a redirect): it carries a signature, not the token, but faults still apply.
        """
        with self._lock:
            self.requests.append(_Request(time.monotonic(), request.method, str(request.url)))
        if check_token and not self.authorized(request):
            where = self._token_elsewhere(request)
            if where:
                with self._lock:
                    self.misplaced_token.append(where)
            return self.json({"id": "unauthorized", "message": "Unable to authenticate you"}, 401)
        fault = self._next_fault(request, kinds=_INTERCEPTED)
        if fault is None:
            return None
        if fault.kind == "timeout":
            raise httpx.ReadTimeout("injected read timeout", request=request)
        if fault.kind == "reset":
            raise httpx.RemoteProtocolError("injected connection reset", request=request)
        headers = {"Content-Type": "application/json", **fault.headers}
        return httpx.Response(fault.status, headers=headers, content=fault.body)

    def json(
        self, data: object, status: int = 200, *, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """A JSON response."""
        return httpx.Response(status, json=data, headers=dict(headers or {}))

    def serve_disk(self, request: httpx.Request, vm_id: str) -> httpx.Response:
        """Serve ``vm_id``'s disk bytes, honouring ``Range`` and mid-body faults.

        Call :meth:`intercept` first as in every route. The body streams in 8 KiB chunks;
        an injected :meth:`Fault.reset_mid_body` cuts it after half the requested bytes.
        """
        disk = self.disks.get(vm_id)
        if disk is None:
            return self.json({"id": "not_found", "message": f"no disk for {vm_id}"}, 404)
        with self._lock:
            self.disk_requests += 1
        start, end = 0, len(disk) - 1
        status = 200
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        wanted = request.headers.get("Range")
        if wanted:
            match = _RANGE.match(wanted)
            if match is None or (not match.group(1) and not match.group(2)):
                return httpx.Response(416, headers={"Content-Range": f"bytes */{len(disk)}"})
            first, last = match.group(1), match.group(2)
            if first:
                start, end = int(first), int(last) if last else len(disk) - 1
            else:  # a suffix range: the last N bytes
                start = max(0, len(disk) - int(last))
            end = min(end, len(disk) - 1)
            if start > end:
                return httpx.Response(416, headers={"Content-Range": f"bytes */{len(disk)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{len(disk)}"
        body = disk[start : end + 1]
        headers["Content-Length"] = str(len(body))
        broken = self._next_fault(request, kinds=frozenset({"reset_mid_body"}))
        cut = len(body) // 2 if broken is not None else None
        return httpx.Response(status, headers=headers, stream=_DiskStream(body, cut, self))

    # --- faults --------------------------------------------------------------------------

    def inject(self, fault: Fault, *, times: int | None = 1, on: str | None = None) -> None:
        """Queue ``fault`` for the next ``times`` matching requests (``None``: forever).

        ``on`` limits it to requests whose URL path contains that text. Faults are served
        in the order they were injected.
        """
        if times is not None and times < 1:
            raise ValueError(f"times: must be >= 1 or None, got {times}")
        with self._lock:
            self._faults.append(_PendingFault(fault, times, on))

    def clear_faults(self) -> None:
        """Drop every fault still queued."""
        with self._lock:
            self._faults.clear()

    def stalls(self, request: httpx.Request) -> bool:
        """Whether an injected :meth:`Fault.stall` takes ``request`` (the suite asks)."""
        if self._next_fault(request, kinds=frozenset({"stall"})) is None:
            return False
        with self._lock:
            self.requests.append(_Request(time.monotonic(), request.method, str(request.url)))
        return True

    def _next_fault(self, request: httpx.Request, *, kinds: frozenset[str]) -> Fault | None:
        with self._lock:
            for pending in self._faults:
                if pending.fault.kind not in kinds:
                    continue
                if pending.on is not None and pending.on not in request.url.path:
                    continue
                if pending.remaining is not None:
                    pending.remaining -= 1
                    if pending.remaining == 0:
                        self._faults.remove(pending)
                self.faults_served.append((time.monotonic(), pending.fault))
                return pending.fault
        return None

    # --- mutations -----------------------------------------------------------------------

    def record(self, kind: str, **details: object) -> None:
        """Log a provider-side change: ``cloud.record("snapshot.created", id="s1")``.

        Pair ``<thing>.created`` with ``<thing>.deleted`` (same ``id``) so the suite can
        tell what an export left behind; other kinds (``"power.off"``) are only logged.
        """
        with self._lock:
            self.mutations.append(Mutation(kind=kind, details=dict(details), at=time.monotonic()))

    def leftovers(self) -> list[Mutation]:
        """``*.created`` mutations with no matching ``*.deleted`` (same kind prefix and id)."""
        deleted = {
            (m.kind.removesuffix(".deleted"), m.details.get("id"))
            for m in self.mutations
            if m.kind.endswith(".deleted")
        }
        return [
            m
            for m in self.mutations
            if m.kind.endswith(".created")
            and (m.kind.removesuffix(".created"), m.details.get("id")) not in deleted
        ]

    def __repr__(self) -> str:
        return (
            f"FakeCloud({len(self.vms)} VMs, page_size={self.page_size}, "
            f"{len(self.mutations)} mutations)"
        )


class _DiskStream(httpx.AsyncByteStream, httpx.SyncByteStream):
    """A body that arrives in chunks, can break half way, and yields to the event loop."""

    def __init__(self, body: bytes, cut: int | None, cloud: FakeCloud) -> None:
        self._body = body
        self._cut = cut
        self._cloud = cloud

    def _chunks(self) -> Iterator[bytes]:
        limit = len(self._body) if self._cut is None else self._cut
        for offset in range(0, limit, _CHUNK):
            yield self._body[offset : min(offset + _CHUNK, limit)]
            if self._cloud.on_disk_chunk is not None:
                self._cloud.on_disk_chunk()
        if self._cut is not None:
            raise httpx.ReadError("injected connection reset mid-body")

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks():
            yield chunk
            # A real network read is a checkpoint: cancellation lands mid-download.
            await anyio.lowlevel.checkpoint()
