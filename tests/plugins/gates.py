"""Gates a test plugin's module code waits at, so a test can hold an import open.

A plugin whose source starts with ``from tests.plugins.gates import hold; hold("x")``
signals ``gate("x").entered`` and then blocks until the test sets ``gate("x").release``
(or ``limit`` seconds pass, so a broken test cannot hang the run forever).
"""

from __future__ import annotations

import threading

import attrs


@attrs.define
class Gate:
    """The three moments of a held import."""

    entered: threading.Event = attrs.Factory(threading.Event)
    release: threading.Event = attrs.Factory(threading.Event)
    finished: threading.Event = attrs.Factory(threading.Event)


GATES: dict[str, Gate] = {}
_lock = threading.Lock()


def gate(name: str) -> Gate:
    """The gate called ``name`` (created on first use)."""
    with _lock:
        return GATES.setdefault(name, Gate())


def hold(name: str, limit: float = 20.0) -> None:
    """Block the calling import at gate ``name`` until released (at most ``limit`` s)."""
    held = gate(name)
    held.entered.set()
    try:
        held.release.wait(limit)
    finally:
        held.finished.set()


def release_all(wait: float = 5.0) -> None:
    """Open every gate and wait (bounded) until each held import went on; forget them."""
    with _lock:
        gates = list(GATES.values())
        GATES.clear()
    for held in gates:
        held.release.set()
    for held in gates:
        if held.entered.is_set():
            held.finished.wait(wait)
