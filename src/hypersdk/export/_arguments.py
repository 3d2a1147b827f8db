"""Argument checks of the toolkit's public functions, each naming the argument.

Callers without a type checker pass anything; every wrong value must become a
:class:`~hypersdk.ConfigurationError` that says which argument and what is allowed,
never a ``TypeError`` from deep inside. Values that may be credentials (URLs,
headers) are described, never echoed.
"""

from __future__ import annotations

import re
from typing import Final

from hypersdk._validation import is_int_between
from hypersdk._validation import shown as _shown
from hypersdk.errors import ConfigurationError
from hypersdk.export._formats import DISK_FORMATS

_SHA256: Final = re.compile(r"^[0-9a-fA-F]{64}$")


def flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name}: must be True or False, got {_shown(value)}")
    return value


def text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name}: must be a non-empty string, got {_shown(value)}")
    return value


def sha256_or_none(name: str, value: object) -> str | None:
    if value is not None and not (isinstance(value, str) and _SHA256.match(value)):
        raise ConfigurationError(
            f"{name}: must be a SHA-256 hex digest (64 hex characters) or None, got {_shown(value)}"
        )
    return value


def size_or_none(name: str, value: object) -> int | None:
    if value is not None and not is_int_between(value, 0):
        raise ConfigurationError(f"{name}: must be an integer >= 0 or None, got {_shown(value)}")
    return value  # type: ignore[return-value]


def chunk_size(value: object) -> int:
    if not is_int_between(value, 4096, 64 << 20):
        raise ConfigurationError(
            f"chunk_size: must be an integer from 4096 to {64 << 20}, got {_shown(value)}"
        )
    return value  # type: ignore[return-value]


def disk_format_or_none(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.casefold() not in DISK_FORMATS:
        raise ConfigurationError(
            f"{name}: must be one of {', '.join(DISK_FORMATS)} or None, got {_shown(value)}"
        )
    return value.casefold()


def reporter_or_none(name: str, value: object) -> None:
    if value is not None and not callable(getattr(value, "update", None)):
        raise ConfigurationError(
            f"{name}: must be a ProgressReporter (an object with update(phase, percent, "
            f"message)) or None, got {type(value).__name__}"
        )


def headers_or_none(name: str, value: object) -> dict[str, str]:
    """A mapping of header names to values; values are never echoed (credentials)."""
    if value is None:
        return {}
    items = getattr(value, "items", None)
    try:
        pairs = [(k, v) for k, v in items()] if callable(items) else None
    except Exception:
        pairs = None
    if pairs is None or not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs):
        raise ConfigurationError(
            f"{name}: must be a mapping of header names to string values or None, "
            f"got {type(value).__name__}"
        )
    return dict(pairs)
