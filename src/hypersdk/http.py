"""HTTP helpers for provider authors, whatever HTTP client the provider speaks through.

A provider turns what its API answered into hypersdk errors and checked JSON. The core
functions take plain facts — a status, headers, body bytes, the method and path — so a
plugin on ``requests``, ``urllib3``, ``aiohttp`` or a vendor SDK maps responses exactly as
one on httpx does; the ``*_response`` forms take an ``httpx.Response``::

    from hypersdk.http import json_body, raise_for_status

    reply = session.get(url, timeout=10)                      # requests, say
    raise_for_status(reply.status_code, headers=reply.headers, body=reply.content,
                     provider="mycloud", operation="list_vms", method="GET", path="/v1/vms")
    page = json_body(reply.content, provider="mycloud", operation="list_vms",
                     require=("vms",))

============================  ==============================================================
name                          what
============================  ==============================================================
:func:`error_for_status`      status + headers + body -> the hypersdk error, or ``None``
:func:`raise_for_status`      the same, raised
:func:`error_for_response`    an ``httpx.Response`` -> the hypersdk error, or ``None``
:func:`raise_for_response`    the same, raised
:func:`json_body`             body bytes (or an ``httpx.Response``) -> a checked JSON object
:func:`error_for_exception`   a transport exception (httpx, requests, socket) -> hypersdk
:func:`parse_retry_after`     a ``Retry-After`` value -> seconds
============================  ==============================================================

The same names are importable from ``hypersdk`` itself. Messages carry the provider, the
operation, the status, the method and path and the API's own error text; never headers,
a query string or a token.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import math
import re
import time
from typing import TYPE_CHECKING, Literal, TypedDict

from hypersdk._validation import shown
from hypersdk.errors import (
    AuthenticationError,
    ConfigurationError,
    HyperSDKError,
    ProviderAPIError,
    ProviderUnavailableError,
    RateLimitError,
    VMNotFoundError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hypersdk._http import httpx

__all__ = [
    "error_for_status",
    "raise_for_status",
    "error_for_response",
    "raise_for_response",
    "json_body",
    "error_for_exception",
    "parse_retry_after",
]

Body = bytes | bytearray | memoryview | str
"""A response body as bytes (or already decoded text)."""


class _Context(TypedDict):
    provider: str
    operation: str
    status: int
    request_id: str | None


# API error text is shown to users, but not a whole HTML error page.
_MAX_API_MESSAGE = 300

# Where providers put the id their support asks for: the common header, OpenStack's
# (and its compute service's), AWS's, Azure's; DigitalOcean also repeats it in the body.
_REQUEST_ID_HEADERS = (
    "x-request-id",
    "x-openstack-request-id",
    "x-compute-request-id",
    "x-amz-request-id",
    "x-amzn-requestid",
    "x-ms-request-id",
    "request-id",
)
# A header is text from the network headed for messages and logs: only a plain token of
# visible ASCII is kept, so nothing can forge a log line or bloat a message.
_REQUEST_ID = re.compile(r"[!-~]{1,128}")


def _name(argument: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"{argument}: must be a non-empty string, got {shown(value)}"[:200]
        )
    return value


def _text_or_none(argument: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(f"{argument}: must be a string or None, got {shown(value)}")
    return value


def _status(argument: str, value: object) -> int:
    # Three digits, as RFC 9110 defines a status code.
    if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 999:
        raise ConfigurationError(
            f"{argument}: must be an HTTP status code (an integer from 100 to 999), "
            f"got {shown(value)}"
        )
    return value


def _headers(value: object) -> Mapping[str, str] | None:
    # Any mapping-like header class (httpx, requests, urllib3, aiohttp) has get and items.
    if value is not None and not (
        callable(getattr(value, "get", None)) and callable(getattr(value, "items", None))
    ):
        raise ConfigurationError(
            f"headers: must be a mapping of header names to values or None, "
            f"got {type(value).__name__}"
        )
    return value  # type: ignore[return-value]


def _body(value: object) -> Body | None:
    if value is not None and not isinstance(value, bytes | bytearray | memoryview | str):
        raise ConfigurationError(f"body: must be bytes, str or None, got {type(value).__name__}")
    return value


def _common(
    *, provider: object, operation: object, method: object, path: object
) -> tuple[str, str, str | None, str | None]:
    return (
        _name("provider", provider),
        _name("operation", operation),
        _text_or_none("method", method),
        _text_or_none("path", path),
    )


def _response(value: object) -> httpx.Response:
    from hypersdk._http import httpx

    if not isinstance(value, httpx.Response):
        raise ConfigurationError(
            f"response: must be an httpx.Response, got {type(value).__name__}; "
            "for another HTTP client use error_for_status with its status, headers and body"
        )
    return value


def _request_id(headers: Mapping[str, str] | None, body: Body | None) -> str | None:
    """The provider's id of this request, from a header or a JSON ``request_id``."""
    candidates: list[object] = [_header(headers, name) for name in _REQUEST_ID_HEADERS]
    if not any(candidates):
        text = _text(body).strip()
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, dict):
                candidates.append(parsed.get("request_id"))
    for candidate in candidates:
        if isinstance(candidate, str) and _REQUEST_ID.fullmatch(candidate.strip()):
            return candidate.strip()
    return None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks us to wait, or ``None``.

    Both forms of RFC 9110 are understood: delay-seconds (``"120"``) and an HTTP-date
    (``"Wed, 21 Oct 2026 07:28:00 GMT"``, counted from ``now``, a ``time.time()`` value).
    A date in the past gives ``0.0``; an unparseable value gives ``None``.

    Raises:
        ConfigurationError: ``value`` is not a string (or bytes) or ``None``, or ``now``
            is not a number of seconds.
    """
    # Typed as object: callers without a type checker pass anything.
    given_now: object = now
    if given_now is not None and not (
        isinstance(given_now, int | float)
        and not isinstance(given_now, bool)
        and -1e12 < given_now < 1e12
    ):
        raise ConfigurationError(
            f"now: must be a time.time() value (seconds) or None, got {shown(given_now)}"
        )
    given: object = value
    if given is None:
        return None
    if isinstance(given, bytes | bytearray):  # a raw header value, as urllib3 may give it
        given = bytes(given).decode("latin-1")
    if not isinstance(given, str):
        raise ConfigurationError(
            f"value: must be a Retry-After header value (str) or None, got {shown(given)}"
        )
    text = given.strip()
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
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a missing zone still means GMT
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """``headers[name]``, case-insensitively, for plain dicts as well as header classes."""
    if headers is None:
        return None
    try:
        found = headers.get(name)
        if found is None:
            wanted = name.casefold()
            found = next(
                (v for k, v in headers.items() if str(k).casefold() == wanted),
                None,
            )
    except Exception:  # a header class that fails to look up has no usable value
        return None
    return _header_text(found)


def _header_text(value: object) -> str | None:
    # A header class may hold raw bytes (urllib3) or, from a careless caller, anything.
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else None


def _text(body: Body | None) -> str:
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    return bytes(body).decode("utf-8", errors="replace")


def _api_message(body: Body | None) -> str:
    """The API's own error text: a JSON ``message``/``error``/``detail`` field or the body."""
    text = _text(body).strip()
    if not text:
        return ""
    try:
        parsed = json.loads(text)
    except ValueError:
        return _clip(text) if not text.startswith("<") else ""
    except RecursionError:  # absurdly nested JSON: no message worth showing
        return ""
    if isinstance(parsed, dict):
        for key in ("message", "error_description", "detail", "error", "title"):
            found = parsed.get(key)
            if isinstance(found, dict):
                found = found.get("message")
            if isinstance(found, str) and found.strip():
                return _clip(found.strip())
        # OpenStack services wrap the message in one object named after the fault:
        # {"itemNotFound": {"code": 404, "message": ...}}, {"NeutronError": {...}}.
        if len(parsed) == 1:
            (wrapped,) = parsed.values()
            found = wrapped.get("message") if isinstance(wrapped, dict) else None
            if isinstance(found, str) and found.strip():
                return _clip(found.strip())
    return ""


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_API_MESSAGE else text[: _MAX_API_MESSAGE - 3] + "..."


def _where(method: str | None, path: str | None) -> str:
    # Method and path only: a query string or header may carry a credential.
    if not method and not path:
        return ""
    path = (path or "").split("?", 1)[0]
    return f" ({' '.join(part for part in (method, path) if part)})"


def error_for_status(
    status: int,
    *,
    provider: str,
    operation: str,
    headers: Mapping[str, str] | None = None,
    body: Body | None = None,
    method: str | None = None,
    path: str | None = None,
    resource: Literal["vm"] | None = None,
    identifier: str | None = None,
) -> HyperSDKError | None:
    """Return the hypersdk error an HTTP answer stands for, or ``None`` for 1xx-3xx.

    =========  ==================================================================
    status     error
    =========  ==================================================================
    401, 403   :class:`~hypersdk.AuthenticationError`
    404        :class:`~hypersdk.VMNotFoundError` when ``resource="vm"``, else
               :class:`~hypersdk.ProviderAPIError`
    429        :class:`~hypersdk.RateLimitError` with ``retry_after`` from ``Retry-After``
    5xx        :class:`~hypersdk.ProviderUnavailableError`
    other 4xx  :class:`~hypersdk.ProviderAPIError`
    =========  ==================================================================

    ``headers`` is any mapping (looked up case-insensitively); ``body`` the response's
    bytes, whose JSON ``message``/``error``/``detail`` becomes part of the message;
    ``method`` and ``path`` say where (a query string in ``path`` is dropped). The
    provider's request id (``x-request-id``, ``x-openstack-request-id``,
    ``x-amz-request-id``..., or a JSON ``request_id``) becomes the error's ``request_id``
    and is shown after the message, for support tickets.

    Raises:
        ConfigurationError: an argument has the wrong type (the message names it).
    """
    status = _status("status", status)
    provider, operation, method, path = _common(
        provider=provider, operation=operation, method=method, path=path
    )
    headers = _headers(headers)
    body = _body(body)
    if resource not in (None, "vm"):
        raise ConfigurationError(f'resource: must be "vm" or None, got {shown(resource)}')
    identifier = _text_or_none("identifier", identifier)
    if status < 400:
        return None
    api_message = _api_message(body)
    detail = f": {api_message}" if api_message else ""
    context = _Context(
        provider=provider,
        operation=operation,
        status=status,
        request_id=_request_id(headers, body),
    )
    head = f"{provider} {operation} failed with HTTP {status}{_where(method, path)}{detail}"
    if status in (401, 403):
        return AuthenticationError(
            f"{head}. Check the credentials in the provider config"
            + (" and the token's scopes" if status == 403 else ""),
            **context,
        )
    if status == 404 and resource == "vm":
        target = f"VM {shown(identifier)}" if identifier is not None else "the VM"
        return VMNotFoundError(f"{provider} {operation}: {target} not found{detail}", **context)
    if status == 429:
        retry_after = parse_retry_after(_header(headers, "retry-after"))
        hint = f"retry after {retry_after:g} s" if retry_after is not None else "slow down"
        return RateLimitError(f"{head}. Rate limited: {hint}", retry_after=retry_after, **context)
    if status >= 500:
        return ProviderUnavailableError(
            f"{head}. The provider's API is unavailable; try again later", **context
        )
    return ProviderAPIError(head, **context)


def raise_for_status(
    status: int,
    *,
    provider: str,
    operation: str,
    headers: Mapping[str, str] | None = None,
    body: Body | None = None,
    method: str | None = None,
    path: str | None = None,
    resource: Literal["vm"] | None = None,
    identifier: str | None = None,
) -> None:
    """Raise :func:`error_for_status`'s error, if the status is an error."""
    error = error_for_status(
        status,
        provider=provider,
        operation=operation,
        headers=headers,
        body=body,
        method=method,
        path=path,
        resource=resource,
        identifier=identifier,
    )
    if error is not None:
        raise error


def _request_line(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        request = response.request
    except RuntimeError:
        return None, None
    return request.method, request.url.path


def _read_body(response: httpx.Response) -> bytes | None:
    from hypersdk._http import httpx

    try:
        return response.content
    except httpx.ResponseNotRead:  # a streamed error body nobody read: no API text
        return None


def error_for_response(
    response: httpx.Response,
    *,
    provider: str,
    operation: str,
    resource: Literal["vm"] | None = None,
    identifier: str | None = None,
) -> HyperSDKError | None:
    """:func:`error_for_status` for an ``httpx.Response`` (status, headers, body, request)."""
    response = _response(response)
    _common(provider=provider, operation=operation, method=None, path=None)
    if response.status_code < 400:
        return None
    method, path = _request_line(response)
    return error_for_status(
        response.status_code,
        provider=provider,
        operation=operation,
        headers=response.headers,
        body=_read_body(response),
        method=method,
        path=path,
        resource=resource,
        identifier=identifier,
    )


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
    source: httpx.Response | Body,
    *,
    provider: str,
    operation: str,
    require: tuple[str, ...] = (),
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    method: str | None = None,
    path: str | None = None,
) -> dict[str, object]:
    """Return a successful answer's JSON object, or raise :class:`~hypersdk.ProviderAPIError`.

    ``source`` is the body (bytes or text) or an ``httpx.Response``. An error status is
    raised first (as :func:`raise_for_status`): a response's own, or ``status`` when you
    pass bytes (with ``headers``, so a 429 keeps its ``Retry-After``). ``require`` names
    top-level keys that must be present; a body that is not JSON, not an object or lacks
    one of them is a ProviderAPIError naming what was wrong.
    """
    provider, operation, method, path = _common(
        provider=provider, operation=operation, method=method, path=path
    )
    keys: object = require
    if not isinstance(keys, tuple | list) or not all(isinstance(key, str) for key in keys):
        raise ConfigurationError(
            f"require: must be a tuple of key names, got {type(require).__name__}"
        )
    if status is not None:
        status = _status("status", status)
    headers = _headers(headers)
    if isinstance(source, bytes | bytearray | memoryview | str):
        body: Body | None = source
    else:
        try:
            source = _response(source)
        except ConfigurationError:
            raise ConfigurationError(
                "source: must be the body (bytes or str) or an httpx.Response, "
                f"got {type(source).__name__}"
            ) from None
        method, path = _request_line(source)
        status, headers, body = source.status_code, source.headers, _read_body(source)
    if status is not None:
        raise_for_status(
            status,
            provider=provider,
            operation=operation,
            headers=headers,
            body=body,
            method=method,
            path=path,
        )
    if body is None:  # a streamed success nobody read: httpx says so
        body = source.content  # type: ignore[union-attr]
    context = _Context(
        provider=provider,
        operation=operation,
        status=status or 0,
        request_id=_request_id(headers, None),
    )
    facts = " ".join(part for part in (f"HTTP {status}" if status else "", method, path) if part)
    where = f" ({facts.split('?', 1)[0]})" if facts else ""
    try:
        parsed = json.loads(body if isinstance(body, str) else bytes(body))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ProviderAPIError(
            f"{provider} {operation}: the API returned a body that is not JSON{where}: {problem}",
            **context,
        ) from None
    if not isinstance(parsed, dict):
        raise ProviderAPIError(
            f"{provider} {operation}: expected a JSON object, got {type(parsed).__name__}{where}",
            **context,
        )
    missing = [key for key in require if key not in parsed]
    if missing:
        raise ProviderAPIError(
            f"{provider} {operation}: the API response lacks {', '.join(missing)}{where}",
            **context,
        )
    return parsed


def _named_like(exc: BaseException, *names: str) -> bool:
    # requests, urllib3 and aiohttp share no base classes with the standard library for
    # some of their errors (urllib3.exceptions.ProtocolError): their names are the contract.
    return any(any(name in cls.__name__ for name in names) for cls in type(exc).__mro__)


def error_for_exception(
    exc: BaseException,
    *,
    provider: str,
    operation: str,
    method: str | None = None,
    path: str | None = None,
) -> HyperSDKError:
    """Map a transport failure (timeout, refused or reset connection) to hypersdk.

    ``exc`` comes from any client: httpx, requests, urllib3, aiohttp, ``http.client`` or
    the socket itself. Timeouts and connection failures become
    :class:`~hypersdk.ProviderUnavailableError`; anything else becomes
    :class:`~hypersdk.ProviderAPIError`. The method and path are taken from an httpx
    error's request, else from ``method`` and ``path``; a query string is left out.
    """
    given: object = exc
    if not isinstance(given, BaseException):
        raise ConfigurationError(f"exc: must be an exception, got {type(given).__name__}")
    provider, operation, method, path = _common(
        provider=provider, operation=operation, method=method, path=path
    )
    kind = type(exc).__name__
    if type(exc).__module__.partition(".")[0] == "httpx":
        from hypersdk._http import httpx

        try:
            request = exc.request  # type: ignore[attr-defined]
            method, path = request.method, request.url.path
        except (AttributeError, RuntimeError):
            pass
        timed_out = isinstance(exc, httpx.TimeoutException)
        unreachable = isinstance(exc, httpx.TransportError)
    else:
        timed_out = isinstance(exc, TimeoutError) or _named_like(exc, "Timeout")
        unreachable = isinstance(exc, OSError | http.client.HTTPException) or _named_like(
            exc, "ConnectionError", "ProtocolError", "ChunkedEncodingError", "IncompleteRead"
        )
    where = _where(method, path)
    if timed_out:
        return ProviderUnavailableError(
            f"{provider} {operation} timed out{where} ({kind}); the API is slow or "
            "unreachable, try again or raise the config timeout",
            provider=provider,
            operation=operation,
        )
    if unreachable:
        return ProviderUnavailableError(
            f"{provider} {operation} could not reach the API{where} ({kind}); "
            "check the endpoint and the network",
            provider=provider,
            operation=operation,
        )
    return ProviderAPIError(
        f"{provider} {operation} failed{where} ({kind})", provider=provider, operation=operation
    )
