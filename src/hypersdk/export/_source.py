"""A client-neutral byte source for blocking downloads, and one over the standard library.

:func:`~hypersdk.export.download_blocking` needs only one thing from an HTTP stack: open
the object at a byte offset and report what the server said. A plugin built on
requests, urllib3, http.client or a vendor SDK supplies that in a few lines (see
:class:`ByteSource`); everything else (resume decisions, hashing, size limits, part
files, the atomic commit) is the toolkit's, shared with the async :func:`download`.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

import attrs

from hypersdk._validation import is_int_between, is_seconds, shown
from hypersdk.errors import ConfigurationError, ProviderAPIError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["ByteSource", "SourceResponse", "UrllibSource"]

_DEFAULT_READ: Final = 1 << 20
# Content-Encodings UrllibSource decodes itself (zlib reads gzip and zlib-wrapped deflate).
_ZLIB_ENCODINGS: Final = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS}
_DEFLATE_WBITS: Final = 32 + zlib.MAX_WBITS  # auto-detects the zlib or gzip header
# Headers that carry credentials: never forwarded when a redirect leaves the host.
_CREDENTIAL_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})


@attrs.define(frozen=True, kw_only=True)
class SourceResponse:
    """What the server answered to :meth:`ByteSource.open`.

    ``status`` is the HTTP status (200: the whole object from byte 0; 206: the range
    asked for; anything else is mapped to a hypersdk error, 4xx/5xx bodies read for
    the message). ``headers`` are the response headers, looked up case-insensitively;
    the toolkit reads ``Content-Length``, ``Content-Range``, ``Content-Encoding``,
    ``ETag``, ``Last-Modified`` and ``Retry-After``. ``chunks`` yields the body; if the
    client already decoded a ``Content-Encoding`` (requests' ``iter_content`` does),
    leave the header in ``headers`` so the toolkit knows ``Content-Length`` does not
    count these bytes. ``on_close`` releases the connection.
    """

    status: int
    headers: Mapping[str, str]
    chunks: Iterable[bytes]
    on_close: Callable[[], object] | None = None

    def close(self) -> None:
        """Release the connection (called by the toolkit on every outcome)."""
        if self.on_close is not None:
            self.on_close()

    def __enter__(self) -> SourceResponse:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@runtime_checkable
class ByteSource(Protocol):
    """An object the toolkit can open at a byte offset, as often as a download needs.

    ``open(offset, validator)`` sends one request for the object from byte ``offset``
    (``Range: bytes=<offset>-`` when ``offset > 0``; ask for ``Accept-Encoding:
    identity``) and, when ``validator`` is not ``None``, ``If-Range: <validator>`` so a
    server whose object changed answers 200 with the new object instead of splicing
    it. Return the answer whatever its status. Transport failures may be raised from
    ``open`` or while iterating ``chunks`` as :class:`OSError` (requests' exceptions
    are), :class:`http.client.HTTPException` or a :class:`~hypersdk.HyperSDKError`;
    the toolkit maps them to :class:`~hypersdk.ProviderUnavailableError`, retries and
    resumes. Their text is never shown (it may hold a signed URL).

    A plugin on requests needs this much glue::

        import requests
        from hypersdk.export import SourceResponse, download_blocking

        class RequestsSource:
            def __init__(self, session: requests.Session, url: str) -> None:
                self.session, self.url = session, url

            def open(self, offset: int, validator: str | None) -> SourceResponse:
                headers = {"Accept-Encoding": "identity"}
                if offset:
                    headers["Range"] = f"bytes={offset}-"
                    if validator:
                        headers["If-Range"] = validator
                r = self.session.get(self.url, headers=headers, stream=True, timeout=60)
                return SourceResponse(status=r.status_code, headers=r.headers,
                                      chunks=r.iter_content(1 << 20), on_close=r.close)

        result = download_blocking(RequestsSource(session, url), "disk.qcow2",
                                   expected_sha256=digest)
    """

    def open(self, offset: int, validator: str | None) -> SourceResponse:
        """Request the object from byte ``offset`` (see the class docstring)."""
        ...


class _SameHostCredentials(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only, and drop credentials when the host changes."""

    def redirect_request(  # noqa: PLR0917 -- urllib's signature
        self,
        req: urllib.request.Request,
        fp: object,
        code: int,
        msg: str,
        headers: object,
        newurl: str,
    ) -> urllib.request.Request | None:
        target = urllib.parse.urlsplit(newurl)
        if target.scheme not in ("http", "https"):
            return None
        new = super().redirect_request(req, fp, code, msg, headers, newurl)  # type: ignore[arg-type]
        if new is not None and target.netloc != urllib.parse.urlsplit(req.full_url).netloc:
            for name in list(new.headers):
                if name.lower() in _CREDENTIAL_HEADERS:
                    del new.headers[name]
        return new


class UrllibSource:
    """A :class:`ByteSource` over the standard library (``urllib.request``).

    Follows redirects (to http and https only; ``Authorization`` and ``Cookie`` are not
    sent to another host), decodes a ``gzip``/``deflate`` body in bounded pieces, and
    needs nothing beyond Python itself.

    >>> source = UrllibSource(url, headers={"Authorization": f"Bearer {token}"})  # doctest: +SKIP
    >>> download_blocking(source, out / "disk.raw", expected_size=size)  # doctest: +SKIP

    Args:
        url: The object's http(s) URL. Only its scheme, host and path are ever shown.
        headers: Extra request headers (credentials, for example).
        timeout: Seconds to wait for a connection or for the next bytes.
        context: TLS settings for https (the system defaults when ``None``).
        read_size: Bytes per read from the socket (4 KiB-64 MiB).

    Raises:
        ConfigurationError: an argument is invalid (the message names it).
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        context: ssl.SSLContext | None = None,
        read_size: int = _DEFAULT_READ,
    ) -> None:
        if not isinstance(url, str):
            raise ConfigurationError(
                f"url: must be an http(s) URL string, got {type(url).__name__}"
            )
        try:
            parts = urllib.parse.urlsplit(url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            valid = False
        if not valid:
            # The URL itself may carry a signature: say what is wrong, not what it was.
            raise ConfigurationError("url: must be an http:// or https:// URL with a host")
        if headers is not None and not _is_string_mapping(headers):
            raise ConfigurationError(
                "headers: must be a mapping of header names to string values or None"
            )
        if not is_seconds(timeout, above_zero=True):
            raise ConfigurationError(
                f"timeout: must be a number of seconds > 0, at most a year, got {shown(timeout)}"
            )
        if context is not None and not isinstance(context, ssl.SSLContext):
            raise ConfigurationError(
                f"context: must be an ssl.SSLContext or None, got {type(context).__name__}"
            )
        if not is_int_between(read_size, 4096, 64 << 20):
            raise ConfigurationError(
                f"read_size: must be an integer from 4096 to {64 << 20}, got {shown(read_size)}"
            )
        self._url = url
        self._headers = dict(headers or {})
        self._timeout = float(timeout)
        self._read_size = read_size
        self._opener = urllib.request.build_opener(
            _SameHostCredentials(), urllib.request.HTTPSHandler(context=context)
        )
        self.where: Final = f"{parts.scheme}://{parts.hostname}{parts.path}"
        """The URL as it may be shown: scheme, host and path."""

    def __repr__(self) -> str:
        return f"UrllibSource({self.where!r})"

    def open(self, offset: int, validator: str | None) -> SourceResponse:
        """Request the object from byte ``offset``; see :class:`ByteSource`."""
        headers = {**self._headers, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if validator:
                headers["If-Range"] = validator
        # The scheme was checked to be http(s) in __init__ (and on every redirect).
        request = urllib.request.Request(self._url, headers=headers, method="GET")  # noqa: S310
        try:
            response: http.client.HTTPResponse = self._opener.open(request, timeout=self._timeout)
        except urllib.error.HTTPError as error:
            # An error status is an answer, not a failure: the toolkit maps it.
            response = error  # type: ignore[assignment]
        except urllib.error.URLError as exc:
            reason = exc.reason
            raise (reason if isinstance(reason, OSError) else OSError(str(type(reason)))) from None
        status = response.status
        header_map = {name.lower(): value for name, value in response.headers.items()}
        encoding = header_map.get("content-encoding", "identity").strip().lower()
        raw = self._read(response)
        if encoding in ("", "identity"):
            chunks: Iterable[bytes] = raw
        elif encoding in _ZLIB_ENCODINGS or encoding == "deflate":
            chunks = _inflate(raw, _ZLIB_ENCODINGS.get(encoding, _DEFLATE_WBITS), self._read_size)
        else:
            response.close()
            raise ProviderAPIError(
                f"the server sent Content-Encoding {encoding!r} although identity was "
                f"asked for ({self.where}); UrllibSource decodes only gzip and deflate"
            )
        return SourceResponse(
            status=status,
            headers=header_map,
            chunks=chunks,
            on_close=response.close,
        )

    def _read(self, response: http.client.HTTPResponse) -> Iterator[bytes]:
        # read1 returns what has arrived: read() would lose it if the connection drops.
        while block := response.read1(self._read_size):
            yield block


def _inflate(raw: Iterable[bytes], wbits: int, piece: int) -> Iterator[bytes]:
    """Decode a zlib-family stream without ever holding more than ``piece`` decoded bytes.

    ``max_length`` keeps a decompression bomb from expanding a small read into gigabytes
    in memory; the toolkit's size limit then stops it at the first piece too many.
    """
    decoder = zlib.decompressobj(wbits)
    for data in raw:
        pending = data
        while True:
            try:
                out = decoder.decompress(pending, piece)
            except zlib.error:
                raise http.client.HTTPException("the compressed body is corrupt") from None
            if out:
                yield out
            pending = decoder.unconsumed_tail
            # A full piece may leave decoded bytes inside zlib even with no input left.
            if not pending and len(out) < piece:
                break
    if tail := decoder.flush():
        yield tail


def _is_string_mapping(value: object) -> bool:
    items = getattr(value, "items", None)
    if not callable(items):
        return False
    try:
        return all(isinstance(k, str) and isinstance(v, str) for k, v in items())
    except Exception:
        return False
