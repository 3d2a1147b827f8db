"""A loopback fleet for the jobs tests: a real HTTP server and a provider that exports from it.

The server lists ``count`` VMs at ``/vms`` and serves each one's disk image at
``/disks/<id>`` with Range support, slowly enough (``delay`` seconds per 64 KiB) that a test
can interrupt an export half way. Faults are injected per VM id: the next ``n`` requests for
that disk answer ``status``.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from .fleet_plugin import PROVIDER_TYPE, FleetProvider

if TYPE_CHECKING:
    from collections.abc import Iterator


_CHUNK = 64 * 1024


def disk_bytes(vm_id: str, size: int) -> bytes:
    seed = hashlib.sha256(vm_id.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


class FleetServer:
    def __init__(self, count: int, *, disk_size: int = 256 * 1024, delay: float = 0.0) -> None:
        self.vms = [{"id": f"vm-{i:04d}", "name": f"web-{i}"} for i in range(count)]
        self.disks = {
            vm["id"]: disk_bytes(vm["id"], disk_size + i) for i, vm in enumerate(self.vms)
        }
        self.delay = delay
        self.faults: dict[str, list[int]] = {}
        self.served: Counter[str] = Counter()  # full or partial disk bodies finished
        self.requested: Counter[str] = Counter()  # disk requests, ranged or not
        self.ranged: Counter[str] = Counter()  # disk requests that resumed at an offset
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def sha256(self, vm_id: str) -> str:
        return hashlib.sha256(self.disks[vm_id]).hexdigest()

    def __enter__(self) -> FleetServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        fleet = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/vms":
                    self._send(200, json.dumps(fleet.vms).encode(), "application/json")
                    return
                match = re.fullmatch(r"/disks/([\w-]+)", self.path)
                if not match or match.group(1) not in fleet.disks:
                    self._send(404, b'{"error": "not found"}', "application/json")
                    return
                vm_id = match.group(1)
                with fleet._lock:
                    pending = fleet.faults.get(vm_id)
                    fault = pending.pop(0) if pending else None
                if fault is not None:
                    self._send(fault, b'{"error": "injected"}', "application/json")
                    return
                self._disk(vm_id)

            def _disk(self, vm_id: str) -> None:
                data = fleet.disks[vm_id]
                start = 0
                header = self.headers.get("Range")
                if header and (m := re.fullmatch(r"bytes=(\d+)-", header)):
                    start = int(m.group(1))
                with fleet._lock:
                    fleet.requested[vm_id] += 1
                    fleet.ranged[vm_id] += bool(start)
                body = data[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", '"' + fleet.sha256(vm_id)[:16] + '"')
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                with fleet._lock:
                    fleet.in_flight += 1
                    fleet.max_in_flight = max(fleet.max_in_flight, fleet.in_flight)
                try:
                    for offset in range(0, len(body), _CHUNK):
                        if fleet.delay:
                            time.sleep(fleet.delay)
                        self.wfile.write(body[offset : offset + _CHUNK])
                    with fleet._lock:
                        fleet.served[vm_id] += 1
                except OSError:
                    pass  # the client went away (cancelled): fine
                finally:
                    with fleet._lock:
                        fleet.in_flight -= 1

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


__all__ = ["PROVIDER_TYPE", "FleetProvider", "FleetServer", "disk_bytes", "iter_parts"]


def iter_parts(root: Any) -> Iterator[str]:
    for path in root.rglob("*"):
        if path.name.endswith((".part", ".download")):
            yield str(path)
