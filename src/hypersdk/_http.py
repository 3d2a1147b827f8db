"""The one module that imports httpx; the HTTP helpers themselves live in :mod:`hypersdk.http`.

Everything else in hypersdk reaches httpx through here, so switching HTTP libraries is
one file. The helper names below stay importable from here (and from ``hypersdk``) as
aliases of :mod:`hypersdk.http`'s: nothing is written twice.
"""

from __future__ import annotations

import httpx

from hypersdk.http import (
    error_for_exception,
    error_for_response,
    error_for_status,
    json_body,
    parse_retry_after,
    raise_for_response,
    raise_for_status,
)

__all__ = [
    "httpx",
    "parse_retry_after",
    "error_for_status",
    "raise_for_status",
    "error_for_response",
    "raise_for_response",
    "json_body",
    "error_for_exception",
]
