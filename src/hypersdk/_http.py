"""The one module that imports httpx, and the mapping of HTTP responses to hypersdk errors.

Everything else in hypersdk reaches httpx through here, so switching HTTP libraries is
one file. ``import hypersdk`` does not import this module; its public names load on
first use.
"""

from __future__ import annotations

import email.utils
import math
import time
from typing import Literal, TypedDict

import httpx

from hypersdk.errors import (
    AuthenticationError,
    HyperSDKError,
    ProviderAPIError,
    ProviderUnavailableError,
    RateLimitError,
    VMNotFoundError,
)

__all__ = [
    "httpx",
    "parse_retry_after",
    "error_for_response",
    "raise_for_response",
    "json_body",
    "error_for_exception",
]


class _Context(TypedDict):
    provider: str
    operation: str
    status: int


# API error text is shown to users, but not a whole HTML error page.
_MAX_API_MESSAGE = 300


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks us to wait, or ``None``.

    Both forms of RFC 9110 are understood: delay-seconds (``"120"``) and an HTTP-date
    (``"Wed, 21 Oct 2026 07:28:00 GMT"``, counted from ``now``, a ``time.time()`` value).
    A date in the past gives ``0.0``; an unparseable value gives ``None``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a missing zone still means GMT
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _api_message(response: httpx.Response) -> str:
    """The API's own error text: a JSON ``message``/``error``/``detail`` field or the body."""
    try:
        body = response.json()
    # ValueError covers JSONDecodeError, UnicodeDecodeError and an integer of more than
    # 4,300 digits; RecursionError a body nested deeper than the stack: hostile bodies.
    except (ValueError, RecursionError, httpx.ResponseNotRead):
        try:
            text = response.text.strip()
        except httpx.ResponseNotRead:
            return ""
        return _clip(text) if text and not text.lstrip().startswith("<") else ""
    if isinstance(body, dict):
        for key in ("message", "error_description", "detail", "error", "title"):
            found = body.get(key)
            if isinstance(found, dict):
                found = found.get("message")
            if isinstance(found, str) and found.strip():
                return _clip(found.strip())
    return ""


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_API_MESSAGE else text[: _MAX_API_MESSAGE - 3] + "..."


def _where(response: httpx.Response) -> str:
    # Method and path only: a query string or header may carry a credential.
    try:
        request = response.request
    except RuntimeError:
        return ""
    return f" ({request.method} {request.url.path})"


def error_for_response(
    response: httpx.Response,
    *,
    provider: str,
    operation: str,
    resource: Literal["vm"] | None = None,
    identifier: str | None = None,
) -> HyperSDKError | None:
    """Return the hypersdk error a response stands for, or ``None`` for 1xx-3xx.

    =========  ==================================================================
    status     error
    =========  ==================================================================
    401, 403   :class:`AuthenticationError`
    404        :class:`VMNotFoundError` when ``resource="vm"``, else ProviderAPIError
    429        :class:`RateLimitError` with ``retry_after`` from ``Retry-After``
    5xx        :class:`ProviderUnavailableError`
    other 4xx  :class:`ProviderAPIError`
    =========  ==================================================================

    The message carries the provider, the operation, the status, the method and path
    and the API's own error text; never headers, the query string or a token.
    """
    status = response.status_code
    if status < 400:
        return None
    api_message = _api_message(response)
    detail = f": {api_message}" if api_message else ""
    context = _Context(provider=provider, operation=operation, status=status)
    head = f"{provider} {operation} failed with HTTP {status}{_where(response)}{detail}"
    if status in (401, 403):
        return AuthenticationError(
            f"{head}. Check the credentials in the provider config"
            + (" and the token's scopes" if status == 403 else ""),
            provider=provider,
            operation=operation,
            status=status,
        )
    if status == 404 and resource == "vm":
        target = f"VM {identifier!r}" if identifier is not None else "the VM"
        return VMNotFoundError(
            f"{provider} {operation}: {target} not found{detail}",
            provider=provider,
            operation=operation,
            status=status,
        )
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        hint = f"retry after {retry_after:g} s" if retry_after is not None else "slow down"
        return RateLimitError(
            f"{head}. Rate limited: {hint}",
            retry_after=retry_after,
            provider=provider,
            operation=operation,
            status=status,
        )
    if status >= 500:
        return ProviderUnavailableError(
            f"{head}. The provider's API is unavailable; try again later",
            provider=provider,
            operation=operation,
            status=status,
        )
    return ProviderAPIError(head, **context)


def raise_for_response(
    response: httpx.Response,
    *,
    provider: str,
    operation: str,
    resource: Literal["vm"] | None = None,
    identifier: str | None = None,
) -> None:
    """Raise :func:`error_for_response`'s error, if the response is an error."""
    error = error_for_response(
        response, provider=provider, operation=operation, resource=resource, identifier=identifier
    )
    if error is not None:
        raise error


def json_body(
    response: httpx.Response,
    *,
    provider: str,
    operation: str,
    require: tuple[str, ...] = (),
) -> dict[str, object]:
    """Return a successful response's JSON object, or raise :class:`ProviderAPIError`.

    Error statuses are raised first (as :func:`raise_for_response`). ``require`` names
    top-level keys that must be present; a body that is not JSON, not an object or lacks
    one of them is a ProviderAPIError naming what was wrong.
    """
    raise_for_response(response, provider=provider, operation=operation)
    status = response.status_code
    try:
        body = response.json()
    except (ValueError, RecursionError) as exc:  # as in _api_message: hostile bodies too
        reason = "nested too deeply to read" if isinstance(exc, RecursionError) else exc
        raise ProviderAPIError(
            f"{provider} {operation}: the API returned a body that is not JSON "
            f"(HTTP {status}{_where(response)}): {reason}",
            provider=provider,
            operation=operation,
            status=status,
        ) from None
    if not isinstance(body, dict):
        raise ProviderAPIError(
            f"{provider} {operation}: expected a JSON object, got {type(body).__name__} "
            f"(HTTP {status}{_where(response)})",
            provider=provider,
            operation=operation,
            status=status,
        )
    missing = [key for key in require if key not in body]
    if missing:
        raise ProviderAPIError(
            f"{provider} {operation}: the API response lacks {', '.join(missing)} "
            f"(HTTP {status}{_where(response)})",
            provider=provider,
            operation=operation,
            status=status,
        )
    return body


def error_for_exception(exc: httpx.HTTPError, *, provider: str, operation: str) -> HyperSDKError:
    """Map an httpx transport error (timeout, refused or reset connection) to hypersdk.

    Timeouts and connection failures become :class:`ProviderUnavailableError`; anything
    else httpx raises becomes :class:`ProviderAPIError`. The URL's query is left out.
    """
    try:
        request = exc.request
        where = f" ({request.method} {request.url.path})"
    except RuntimeError:
        where = ""
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return ProviderUnavailableError(
            f"{provider} {operation} timed out{where} ({kind}); the API is slow or "
            "unreachable, try again or raise the config timeout",
            provider=provider,
            operation=operation,
        )
    if isinstance(exc, httpx.TransportError):
        return ProviderUnavailableError(
            f"{provider} {operation} could not reach the API{where} ({kind}); "
            "check the endpoint and the network",
            provider=provider,
            operation=operation,
        )
    return ProviderAPIError(
        f"{provider} {operation} failed{where} ({kind})", provider=provider, operation=operation
    )
