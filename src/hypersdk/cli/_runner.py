"""Run one async command with Ctrl-C turned into clean cancellation."""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING, TypeVar

import anyio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

_T = TypeVar("_T")


class Interrupted(Exception):
    """Ctrl-C arrived; the command's work was cancelled and cleaned up."""


def run_interruptible(command: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``command`` on the event loop; SIGINT cancels it and raises :class:`Interrupted`.

    Cancelling (rather than letting KeyboardInterrupt land at a random line) gives the
    provider's cleanup a chance to run: part files removed, temporary snapshots deleted.
    """
    results: list[_T] = []
    interrupted: list[bool] = []
    errors: list[Exception] = []

    async def main() -> None:
        async with anyio.create_task_group() as group:

            async def watch_signals() -> None:
                with anyio.open_signal_receiver(signal.SIGINT) as signals:
                    async for _ in signals:
                        interrupted.append(True)
                        sys.stderr.write("\ninterrupted: cancelling (cleaning up)...\n")
                        group.cancel_scope.cancel()
                        return

            if sys.platform != "win32":  # no signal receivers there: KeyboardInterrupt it is
                group.start_soon(watch_signals)
            try:
                results.append(await command())
            except Exception as exc:  # keep it out of the task group's ExceptionGroup
                errors.append(exc)
            group.cancel_scope.cancel()

    try:
        anyio.run(main)
    except KeyboardInterrupt:
        raise Interrupted from None
    if errors:
        raise errors[0]
    if interrupted or not results:
        raise Interrupted
    return results[0]
