"""The command line's logging: to stderr, and never a credential.

While a command runs, every record that reaches a handler the CLI configures (its own
stderr handler with ``--debug``, Python's last-resort handler otherwise, and any handler
already on the root logger) goes through :class:`~hypersdk._redact.RedactingFilter`
first. That covers hypersdk's loggers, the plugins' and httpx/httpcore's debug lines,
which print full URLs (pre-signed queries included) and response headers
(``Set-Cookie``, ``X-Subject-Token``).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import TYPE_CHECKING, TextIO

from hypersdk._redact import RedactingFilter

if TYPE_CHECKING:
    from collections.abc import Iterator

FORMAT = "%(levelname)s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time of the record (as lastResort does)."""

    def __init__(self, level: int) -> None:
        super().__init__(sys.stderr)
        self.setLevel(level)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


@contextlib.contextmanager
def configured_logging(*, debug: bool) -> Iterator[RedactingFilter]:
    """Configure logging for one command and undo it afterwards.

    With ``debug`` every record at DEBUG and above goes to stderr; without it, warnings
    that no handler takes go to stderr as usual (through a redacting last resort).
    """
    redacting = RedactingFilter()
    root = logging.getLogger()
    ours = _StderrHandler(logging.DEBUG if debug else logging.WARNING)
    ours.setFormatter(logging.Formatter(FORMAT))
    ours.addFilter(redacting)
    filtered = [handler for handler in root.handlers if redacting not in handler.filters]
    for handler in filtered:
        handler.addFilter(redacting)
    hypersdk_logger = logging.getLogger("hypersdk")
    hypersdk_logger.addFilter(redacting)
    previous_level, previous_last_resort = root.level, logging.lastResort
    if debug:
        root.addHandler(ours)
        root.setLevel(logging.DEBUG)
    else:
        logging.lastResort = ours
    try:
        yield redacting
    finally:
        logging.lastResort = previous_last_resort
        root.removeHandler(ours)
        root.setLevel(previous_level)
        hypersdk_logger.removeFilter(redacting)
        for handler in filtered:
            handler.removeFilter(redacting)
