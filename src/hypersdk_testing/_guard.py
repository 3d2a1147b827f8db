"""The network guard: while a check runs, nothing leaves 127.0.0.1.

A plugin that ignores its configured endpoint, or an SDK that phones home, would otherwise
reach the real network from a test: slow (DNS, connect timeouts), flaky, and a leak of
whatever it sends. The guard refuses such a connection at once, at the two doors every
Python client goes through — ``socket.getaddrinfo`` (names) and ``socket.socket.connect``
(addresses) — and keeps a record of it, which HTTP-MOCKED reports with the host and the
fix. Loopback, ``localhost`` and Unix sockets are allowed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import attrs

from hypersdk_testing._loopback import is_loopback

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["BlockedConnection", "NetworkGuard", "blocked_message"]

_LOOPBACK_NO_PROXY: Final = ("127.0.0.1", "localhost", "::1")


@attrs.frozen
class BlockedConnection:
    """One connection the guard refused: the host (or address) and port asked for."""

    host: str
    port: int | None
    at: float

    @property
    def target(self) -> str:
        """``'api.example.com:443'``."""
        return f"{self.host}:{self.port}" if self.port is not None else self.host


def blocked_message(host: str, port: int | None) -> str:
    """The text of the error a blocked plugin sees (it often ends up in a failure)."""
    where = f"{host}:{port}" if port is not None else host
    scheme = "http" if port == 80 else "https"
    return (
        f"hypersdk_testing blocked a connection to {where}: a conformance check allows no "
        "network outside 127.0.0.1 (see HTTP-MOCKED). Point the plugin at the mock: return "
        f"endpoint=cloud.loopback_url('{scheme}://{host}/...') from configure(), and serve "
        "that host in mock_api"
    )


def _port(value: object) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, str):
        with contextlib.suppress(OSError):
            return socket.getservbyname(value, "tcp")
    return None


class NetworkGuard:
    """Refuse connections outside loopback while active; record every refusal.

    Re-entrant across nested runs (pytester runs pytest inside pytest): each activation
    restores exactly what it replaced.
    """

    def __init__(self) -> None:
        self.blocked: list[BlockedConnection] = []
        self._lock = threading.Lock()
        self._saved: list[tuple[Any, Any, Any, dict[str, str | None]]] = []

    def _refuse(self, host: str, port: int | None) -> None:
        with self._lock:
            self.blocked.append(BlockedConnection(host=host, port=port, at=time.monotonic()))

    def __enter__(self) -> NetworkGuard:
        original_getaddrinfo = socket.getaddrinfo
        original_connect = socket.socket.connect
        original_connect_ex = socket.socket.connect_ex
        guard = self

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode("ascii", "replace") if isinstance(host, bytes) else host
            if not is_loopback(name):
                guard._refuse(str(name), _port(port))
                raise socket.gaierror(socket.EAI_NONAME, blocked_message(str(name), _port(port)))
            return original_getaddrinfo(host, port, *args, **kwargs)

        def outside(sock: socket.socket, address: Any) -> tuple[str, int | None] | None:
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                return None
            if not isinstance(address, tuple) or not address:
                return None
            host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
            if is_loopback(host):
                return None
            return host, _port(address[1]) if len(address) > 1 else None

        def connect(sock: socket.socket, address: Any) -> None:
            refused = outside(sock, address)
            if refused is not None:
                guard._refuse(*refused)
                raise ConnectionRefusedError(errno.ECONNREFUSED, blocked_message(*refused))
            original_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            refused = outside(sock, address)
            if refused is not None:
                guard._refuse(*refused)
                return errno.ECONNREFUSED
            return original_connect_ex(sock, address)

        environment = {name: os.environ.get(name) for name in ("NO_PROXY", "no_proxy")}
        self._saved.append(
            (original_getaddrinfo, original_connect, original_connect_ex, environment)
        )
        socket.getaddrinfo = getaddrinfo
        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
        # A proxy from the environment would take loopback requests off this machine.
        for name, value in environment.items():
            entries = [entry for entry in (value or "").split(",") if entry.strip()]
            os.environ[name] = ",".join([*entries, *_LOOPBACK_NO_PROXY])
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        getaddrinfo, connect, connect_ex, environment = self._saved.pop()
        socket.getaddrinfo = getaddrinfo
        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        for name, previous in environment.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous
