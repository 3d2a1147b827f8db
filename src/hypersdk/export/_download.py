"""Streaming, resumable, verified downloads of disk images, async and blocking.

One core (:class:`_Core`) owns everything that does not depend on the HTTP client: the
part file, the hash, the size limits, the resume decisions, verification and the
commit. Two thin drivers feed it: :func:`download` reads an httpx response on the
event loop, :func:`download_blocking` reads a :class:`~hypersdk.export.ByteSource` in
the calling thread. In the async driver the body flows through a small pipeline so that
no stage waits for another::

    socket --(event loop)--> batch of pieces --+--> [thread] sha256.update
                                               +--> [thread] writev to NAME.part

The pieces httpx yields are grouped into batches of about ``chunk_size`` bytes without
being copied. Both branches are bounded memory streams, so a few batches at most are in
flight whatever the image size; hashlib and file writes release the GIL, so hashing and
writing run in parallel with each other and with the network reads.

Every piece is counted against the size limit (``expected_size``, or the length the
server announced) *before* it is queued for writing, so a body longer than promised
(chunked, close-delimited, or a decompression bomb) never reaches the disk.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import http.client
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, cast

import anyio
import anyio.to_thread
import attrs
import stamina

from hypersdk._http import error_for_exception, error_for_response, httpx, parse_retry_after
from hypersdk._redact import install_log_redaction
from hypersdk._validation import path_argument, shown
from hypersdk.errors import (
    ChecksumMismatchError,
    ConfigurationError,
    ExportError,
    HyperSDKError,
    ProviderAPIError,
    ProviderUnavailableError,
    RateLimitError,
)
from hypersdk.export import _arguments as arg
from hypersdk.export._files import PartFile, os_error_message
from hypersdk.export._formats import check_file_format
from hypersdk.export._progress import ProgressTracker
from hypersdk.export._retry import RetryPolicy
from hypersdk.export._source import ByteSource, SourceResponse, UrllibSource

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Mapping

    from hypersdk.progress import ProgressReporter

__all__ = ["DownloadResult", "download", "download_blocking", "DEFAULT_CHUNK_SIZE"]

logger = logging.getLogger("hypersdk.export")

DEFAULT_CHUNK_SIZE: Final = 1 << 20
"""Bytes per pipeline batch: large enough that thread hand-offs cost nothing."""

# Batches queued per branch: with 1 MiB batches the pipeline holds under ~10 MiB.
_QUEUE_DEPTH: Final = 4
# writev accepts at most IOV_MAX (1024 on Linux) buffers; stay well below.
_MAX_BATCH: Final = 256
# Of an error response's body, this much is read for the message.
_ERROR_BODY: Final = 4096
_HAS_WRITEV: Final = hasattr(os, "writev")
_HAS_FADVISE: Final = hasattr(os, "posix_fadvise")
_OPERATION: Final = "download"
_CONTENT_RANGE: Final = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED_RANGE: Final = re.compile(r"^bytes\s+\*/(\d+)$")


@attrs.frozen(kw_only=True)
class DownloadResult:
    """What :func:`download` or :func:`download_blocking` wrote.

    ``size`` is the file's size in bytes and ``sha256`` its SHA-256 hex digest, computed
    while the bytes arrived. ``requests`` counts the HTTP requests made (1 when nothing
    went wrong) and ``reused_bytes`` the bytes taken over from an earlier part file.
    """

    path: Path
    size: int
    sha256: str
    requests: int
    reused_bytes: int


@attrs.frozen(kw_only=True)
class _Settings:
    """The checked knobs both drivers share."""

    destination: Path
    expected_sha256: str | None
    expected_size: int | None
    expected_format: str | None
    overwrite: bool
    resume: bool
    keep_partial: bool
    policy: RetryPolicy
    chunk_size: int
    provider: str


def _settings(
    destination: object,
    *,
    expected_sha256: object,
    expected_size: object,
    expected_format: object,
    overwrite: object,
    resume: object,
    keep_partial: object,
    progress: object,
    retry: object,
    chunk_size: object,
    provider: object,
) -> _Settings:
    sha = arg.sha256_or_none("expected_sha256", expected_sha256)
    arg.reporter_or_none("progress", progress)
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ConfigurationError(
            f"retry: must be a RetryPolicy or None, got {type(retry).__name__}"
        )
    return _Settings(
        destination=path_argument("destination", destination),
        expected_sha256=sha.lower() if sha else None,
        expected_size=arg.size_or_none("expected_size", expected_size),
        expected_format=arg.disk_format_or_none("expected_format", expected_format),
        overwrite=arg.flag("overwrite", overwrite),
        resume=arg.flag("resume", resume),
        keep_partial=arg.flag("keep_partial", keep_partial),
        policy=retry or RetryPolicy(),
        chunk_size=arg.chunk_size(chunk_size),
        provider=arg.text("provider", provider),
    )


class _Interrupted(Exception):
    """A transfer failed after making progress: resume at once with a fresh retry budget."""

    def __init__(self, error: HyperSDKError) -> None:
        super().__init__(str(error))
        self.error = error


def _write_all(fd: int, batch: list[bytes]) -> None:
    """Write every byte of ``batch`` at the file position (one writev where possible)."""
    total = sum(len(chunk) for chunk in batch)
    written = os.writev(fd, batch) if _HAS_WRITEV else 0
    if written == total:
        return
    # A short write (signals, quotas) or no writev: write what is left piece by piece.
    for chunk in batch:
        if written >= len(chunk):
            written -= len(chunk)
            continue
        view = memoryview(chunk)[written:]
        written = 0
        while view:
            view = view[os.write(fd, view) :]


class _WriteBehind:
    """Write a download's pages back to disk while it streams, not all at the final fsync.

    Left alone, a fast transfer fills the page cache with a whole image and the final
    fsync then writes it alone, with nothing else to overlap. Every ``window`` bytes
    the writer thread instead starts writeback of the window just written and waits
    for the one before it, so at most about two windows are dirty at any time and the
    disk works while the network does. How, in order of preference:

    ``sync_file_range``
        Linux (through ctypes): ``SYNC_FILE_RANGE_WRITE`` on the new window starts its
        writeback without waiting; ``WAIT_BEFORE | WRITE | WAIT_AFTER`` on the previous
        one waits for it. It flushes no metadata and no disk cache, so it is no
        durability promise: the final fsync still gives that.
    ``fdatasync``
        Elsewhere: a periodic ``os.fdatasync`` (or ``os.fsync``) of what is written.
    ``fadvise``
        ``POSIX_FADV_DONTNEED`` alone: Linux starts writeback but nothing waits for it
        (what downloads did before; kept for the benchmark's comparison).
    ``none``
        Only the final fsync.

    Clean windows are then dropped from the page cache (``POSIX_FADV_DONTNEED``), so an
    image does not push everything else out of it. Any failure of a hint turns it off
    for this file: write-behind is an optimisation and never a new way to fail; an
    error the data would meet is reported by the final fsync.
    """

    def __init__(self, fd: int, start: int, *, method: str | None = None) -> None:
        self.fd = fd
        self.method = method or _WRITEBACK
        self.window = _WRITEBACK_WINDOW
        self.started = start  # writeback has been started below this offset
        self.previous: tuple[int, int] | None = None  # the window started, not yet waited
        self.windows = 0  # windows handed to the kernel (tests check it is exercised)

    def reset(self, start: int) -> None:
        self.started, self.previous = start, None

    def advance(self, offset: int) -> None:
        """Called after each write with the new end of the file."""
        if self.method == "none" or offset - self.started < self.window:
            return
        window = (self.started, offset - self.started)
        try:
            if self.method == "sync_file_range":
                _sync_file_range(self.fd, *window, _SFR_WRITE)
                if self.previous is not None:
                    _sync_file_range(self.fd, *self.previous, _SFR_WAIT)
                    _drop_cached(self.fd, *self.previous)
                self.previous = window
            elif self.method == "fadvise":
                _drop_cached(self.fd, *window)  # starts writeback on Linux; never waits
            else:
                _fdatasync(self.fd)
                _drop_cached(self.fd, *window)
        except OSError:
            self.method = "none"  # the final fsync reports what matters
            return
        self.started = offset
        self.windows += 1


def _fdatasync(fd: int) -> None:
    (os.fdatasync if hasattr(os, "fdatasync") else os.fsync)(fd)


def _drop_cached(fd: int, start: int, length: int) -> None:
    if _HAS_FADVISE:
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, start, length, os.POSIX_FADV_DONTNEED)


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return cast("Callable[[int, int, int, int], int]", function)


_SYNC_FILE_RANGE: Final = _load_sync_file_range()
# <linux/fs.h>: WAIT_BEFORE = 1, WRITE = 2, WAIT_AFTER = 4.
_SFR_WRITE: Final = 2
_SFR_WAIT: Final = 1 | 2 | 4


def _sync_file_range(fd: int, start: int, length: int, flags: int) -> None:
    if _SYNC_FILE_RANGE is None:
        raise OSError(errno.ENOSYS, "sync_file_range is not available")
    if _SYNC_FILE_RANGE(fd, start, length, flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


# Which write-behind the writer uses; the benchmark sets others to compare them.
_WRITEBACK: str = "sync_file_range" if _SYNC_FILE_RANGE is not None else "fdatasync"
# Bytes per write-behind window: at most about two windows of a download are dirty.
_WRITEBACK_WINDOW: int = 32 << 20


# Bytes per socket read while a download's body streams (httpcore reads 64 KiB). Each
# read costs the same trip through h11 and five async generators whatever its size, and
# anyio's asyncio stream copies the rest of a larger buffered piece on every split, so
# at 64 KiB reading a loopback body takes about twice the CPU it takes at 1 MiB
# (benchmarks/bench_download.py). The asyncio transport hands over at most 256 KiB per
# read; trio reads what is asked.
_READ_SIZE: int = 1 << 20


def _http11_connection(response: httpx.Response) -> object | None:
    """The httpcore HTTP/1.1 connection carrying ``response``, or ``None``.

    httpcore only exposes its read size as a class attribute, shared by every client
    in the process; an instance attribute on the one connection that carries this
    download changes this download alone. The way there is private to httpx and
    httpcore, so every step is checked, and the connection must hold the very network
    stream the response names: any other transport (a mock, HTTP/2, a wrapper of
    its own) simply keeps its own reads.
    """
    try:
        import httpcore
    except ImportError:  # pragma: no cover - httpx depends on httpcore
        return None
    stream: object = response.stream
    for name in ("_stream", "_httpcore_stream", "_stream"):
        stream = getattr(stream, name, None)
    connection = getattr(stream, "_connection", None)
    if type(connection) is not httpcore.AsyncHTTP11Connection:
        return None
    network = response.extensions.get("network_stream")
    if network is None or getattr(connection, "_network_stream", None) is not network:
        return None
    return connection


@contextlib.contextmanager
def _large_reads(response: httpx.Response, size: int) -> Iterator[None]:
    """Read ``response``'s body ``size`` bytes per socket read; restore the default after.

    The connection serves one request at a time, so no other request sees the change
    while it lasts, and it goes back to its pool with httpcore's own read size.
    """
    connection = _http11_connection(response)
    if connection is None or not size:
        yield
        return
    connection.READ_NUM_BYTES = size  # type: ignore[attr-defined]
    try:
        yield
    finally:
        with contextlib.suppress(AttributeError):
            del connection.READ_NUM_BYTES  # type: ignore[attr-defined]


def _where(url: httpx.URL) -> str:
    # Scheme, host and path only: the query string of a pre-signed URL is a credential.
    return f"{url.scheme}://{url.host}{url.path}"


def _strong_etag(value: str | None) -> str | None:
    # If-Range needs a strong validator (RFC 9110 13.1.5): a weak ETag may not be used.
    if value is None or value.startswith("W/") or not value.strip():
        return None
    return value.strip()


class _Core:
    """One download's state across its requests; knows nothing of the HTTP client.

    Every method is blocking (file I/O): the async driver calls them in worker threads,
    except :meth:`accept`, which only counts.
    """

    def __init__(
        self, part: PartFile, settings: _Settings, tracker: ProgressTracker, where: str
    ) -> None:
        self.part, self.settings, self.tracker, self.where = part, settings, tracker, where
        self.provider = settings.provider
        self.digest = hashlib.sha256()
        self.offset = 0  # bytes in the part file (and hashed)
        self.received = 0  # bytes accepted from the current body, counted before writing
        self.behind = _WriteBehind(part.fd, 0)
        self.total: int | None = None  # full length the current response announces
        self.limit: int | None = None  # no more bytes than this may be written
        # What the first response said about the object: every resume must agree.
        self.object_total: int | None = None
        self.etag: str | None = None
        self.last_modified: str | None = None
        self.if_range: str | None = None
        self.ranges_work = True
        self.requests = 0
        self.reused = 0
        self.server_wait: float | None = None
        self._last_error: HyperSDKError | None = None

    # -- the part file -------------------------------------------------------------

    def load_existing(self) -> None:
        """Re-hash what an earlier attempt left in our part file, to resume after it."""
        if not self.part.reusable:
            return
        self.tracker.update("preparing", 0.0, "checking the partial download")
        digest = hashlib.sha256()
        size = 0
        try:
            os.lseek(self.part.fd, 0, os.SEEK_SET)
            while block := os.read(self.part.fd, self.settings.chunk_size):
                digest.update(block)
                size += len(block)
        except OSError as exc:
            raise ExportError(os_error_message(exc, "read", self.part.path)) from None
        expected = self.settings.expected_size
        if expected is not None and size > expected:
            self.restart("the partial file is larger than expected")
            return
        self.digest, self.offset = digest, size
        self.reused = size
        self.behind.reset(size)
        logger.info("resuming %s from byte %d", self.part.path.name, size)

    def restart(self, reason: str | None) -> None:
        if reason is not None:
            logger.warning("restarting download of %s from byte 0: %s", self.part.path.name, reason)
        try:
            self.part.truncate()
        except OSError as exc:
            raise ExportError(os_error_message(exc, "truncate", self.part.path)) from None
        self.digest = hashlib.sha256()
        self.offset = self.received = 0
        self.behind.reset(0)

    # -- one request ---------------------------------------------------------------

    def plan(self) -> tuple[int, str | None]:
        """The offset to ask for and the If-Range validator to send with it."""
        if self.offset and not self.ranges_work:
            self.restart("the server does not support resuming")
        self.requests += 1
        self.received = self.offset
        self.if_range = (_strong_etag(self.etag) or self.last_modified) if self.offset else None
        return self.offset, self.if_range

    def begin(
        self, status: int, raw_headers: Mapping[str, str], *, error: HyperSDKError | None
    ) -> bool | None:
        """Decide what to do with a response; ``True`` if its body is content-encoded.

        ``None`` means there is no body to read (the part file already holds it all).
        Raises the error the response stands for (retryable ones restart or resume).
        """
        headers = {name.lower(): value for name, value in raw_headers.items()}
        ranged = self.offset > 0
        if status == 416 and ranged:
            match = _UNSATISFIED_RANGE.match(headers.get("content-range", ""))
            if match and int(match[1]) == self.offset and self.object_total in (None, self.offset):
                self.total = self.limit = self.offset  # the part file holds everything
                return None
            self.restart("the server rejected the resume range")
            raise self._unavailable("HTTP 416 for a resume range; restarting", status)
        if error is not None:
            # RFC 9110 also lets a 503 say when to come back; honour it like a 429's.
            self.server_wait = (
                parse_retry_after(headers.get("retry-after")) if status == 503 else None
            )
            raise error
        encoding = headers.get("content-encoding", "identity").strip().lower()
        encoded = encoding not in ("identity", "")
        if status == 206 and ranged and not encoded:
            self._check_resumed(headers)
        elif status == 200:
            if ranged:
                if self.if_range is None:
                    self.ranges_work = False
                    reason = "the server ignored the Range header (HTTP 200)"
                else:
                    reason = "the object changed since the first response (If-Range)"
                # The whole body follows: use it from byte 0 (our own part file).
                self.restart(reason)
            length = headers.get("content-length", "")
            self.total = int(length) if length.isdigit() and not encoded else None
            if encoded:
                self.ranges_work = False
            self.object_total = self.total
            self.etag, self.last_modified = headers.get("etag"), headers.get("last-modified")
        else:
            raise ProviderAPIError(
                f"{self.provider} download: unexpected HTTP {status} for {self.where}; a "
                "disk download needs 200 or 206 (follow redirects for 3xx)",
                provider=self.provider,
                operation=_OPERATION,
                status=status,
            )
        expected = self.settings.expected_size
        if self.total is not None and expected is not None and self.total != expected:
            raise ChecksumMismatchError(
                f"{self.provider} download: the server announces {self.total} bytes but "
                f"{expected} were expected; the image changed or the URL is wrong",
                provider=self.provider,
                operation=_OPERATION,
            )
        limits = [size for size in (self.total, expected) if size is not None]
        self.limit = min(limits) if limits else None
        return encoded

    def _check_resumed(self, headers: Mapping[str, str]) -> None:
        """A 206 must continue the same object at our offset, or we start over."""
        match = _CONTENT_RANGE.match(headers.get("content-range", ""))
        if match is None or int(match[1]) != self.offset:
            self.ranges_work = False
            self.restart("the server answered the resume with another range")
            raise self._unavailable("unusable Content-Range on resume; restarting", 206)
        total = int(match[3]) if match[3] != "*" else None
        etag, modified = headers.get("etag"), headers.get("last-modified")
        changed = (
            (self.object_total is not None and total != self.object_total)
            or (self.etag is not None and etag is not None and etag != self.etag)
            or (
                self.last_modified is not None
                and modified is not None
                and modified != self.last_modified
            )
        )
        if changed:
            # Splicing the end of another object onto ours would pass every size check.
            self.restart(
                f"the resumed response is another object (length {total}, first "
                f"{self.object_total})"
            )
            raise self._unavailable("the object changed between requests; restarting", 206)
        self.total = total
        if self.object_total is None:
            # Resuming a part file from an earlier call: this is the first we hear.
            self.object_total, self.etag, self.last_modified = total, etag, modified

    def _unavailable(self, what: str, status: int | None = None) -> ProviderUnavailableError:
        return ProviderUnavailableError(
            f"{self.provider} download of {self.where}: {what}",
            provider=self.provider,
            operation=_OPERATION,
            status=status,
        )

    def accept(self, size: int) -> None:
        """Count ``size`` more body bytes before they are written; stop past the limit."""
        self.received += size
        if self.limit is not None and self.received > self.limit:
            raise ChecksumMismatchError(
                f"{self.provider} download of {self.where}: the body is longer than the "
                f"{self.limit} bytes {'announced' if self.limit == self.total else 'expected'}"
                f"; stopped after {self.received - size} bytes and removed the file",
                provider=self.provider,
                operation=_OPERATION,
            )

    def hash(self, batch: list[bytes]) -> None:
        for chunk in batch:
            self.digest.update(chunk)

    def write(self, batch: list[bytes]) -> None:
        """Write a batch and start writing back older pages."""
        try:
            _write_all(self.part.fd, batch)
        except OSError as exc:
            raise ExportError(
                os_error_message(exc, "write", self.part.path),
                provider=self.provider,
                operation=_OPERATION,
            ) from exc
        self.offset += sum(len(chunk) for chunk in batch)
        self.behind.advance(self.offset)
        self.report()

    def report(self) -> None:
        if self.total:
            percent = 100.0 * self.offset / self.total
            message = f"{self.offset} of {self.total} bytes"
        else:
            percent, message = 0.0, f"{self.offset} bytes"
        self.tracker.update("downloading", percent, message)

    def end_body(self) -> None:
        if self.total is not None and self.offset < self.total:
            raise self._unavailable(f"the body ended after {self.offset} of {self.total} bytes")

    # -- retries ---------------------------------------------------------------------

    def should_retry(self, exc: Exception) -> bool | float:
        """Backoff hook for stamina: whether to retry and, for a 429, how long to wait."""
        decision: bool | float
        policy = self.settings.policy
        if isinstance(exc, RateLimitError):
            if exc.retry_after is None:
                decision = True
            elif exc.retry_after <= policy.max_retry_after:
                decision = exc.retry_after
            else:
                return False
        elif isinstance(exc, ProviderUnavailableError):
            wait, self.server_wait = self.server_wait, None
            decision = True if wait is None else min(wait, policy.max_retry_after)
        else:
            return False
        self._last_error = exc
        return decision

    def retry_options(self) -> dict[str, object]:
        policy = self.settings.policy
        return {
            "on": self.should_retry,
            "attempts": policy.attempts,
            "timeout": policy.timeout or None,
            "wait_initial": policy.wait_initial,
            "wait_max": policy.wait_max,
            "wait_jitter": policy.wait_jitter,
        }

    def log_attempt(self, number: int) -> None:
        if number > 1:
            logger.warning(
                "retrying download of %s (attempt %d of %d) after: %s",
                self.where,
                number,
                self.settings.policy.attempts,
                self._last_error,
            )

    @contextlib.contextmanager
    def progress_guard(self) -> Iterator[None]:
        """Turn a failure after new bytes arrived into a resume, not a used-up attempt."""
        start = self.offset
        try:
            yield
        except ProviderUnavailableError as exc:
            if self.offset > start:
                raise _Interrupted(exc) from None
            raise

    def resumed(self, interrupted: _Interrupted, resumes: int) -> int:
        """Count a resume; give up past ``max_resumes``."""
        resumes += 1
        limit = self.settings.policy.max_resumes
        if resumes > limit:
            raise _gave_up(interrupted.error, limit) from None
        logger.warning(
            "download of %s interrupted at byte %d (%s); resuming (%d of %d)",
            self.where,
            self.offset,
            interrupted.error,
            resumes,
            limit,
        )
        return resumes

    # -- the end -----------------------------------------------------------------------

    def verify(self) -> None:
        """fsync, then check size, digest and format of the complete part file."""
        settings = self.settings
        self.tracker.update("verifying", 100.0, "checking size and checksum")
        try:
            os.fsync(self.part.fd)
        except OSError as exc:
            raise ExportError(os_error_message(exc, "write", self.part.path)) from None
        name = settings.destination.name
        if settings.expected_size is not None and self.offset != settings.expected_size:
            raise ChecksumMismatchError(
                f"{self.provider} download of {name}: got {self.offset} bytes, expected "
                f"{settings.expected_size}; the source changed or the transfer was "
                "corrupted, retry",
                provider=self.provider,
                operation=_OPERATION,
            )
        digest = self.digest.hexdigest()
        if settings.expected_sha256 is not None and digest != settings.expected_sha256:
            raise ChecksumMismatchError(
                f"{self.provider} download of {name}: SHA-256 is {digest}, expected "
                f"{settings.expected_sha256}; the file was removed, retry the export",
                provider=self.provider,
                operation=_OPERATION,
            )
        if settings.expected_format is not None:
            check_file_format(self.part.path, settings.expected_format)

    def result(self, started: float) -> DownloadResult:
        self.tracker.update(
            "done", 100.0, f"downloaded {self.offset} bytes in {time.monotonic() - started:.1f} s"
        )
        return DownloadResult(
            path=self.settings.destination,
            size=self.offset,
            sha256=self.digest.hexdigest(),
            requests=self.requests,
            reused_bytes=self.reused,
        )


def _gave_up(error: HyperSDKError, resumes: int) -> HyperSDKError:
    message = f"{error} (gave up after {resumes} resumed transfers)"
    if isinstance(error, RateLimitError):
        return RateLimitError(
            message,
            provider=error.provider,
            operation=error.operation,
            status=error.status,
            retry_after=error.retry_after,
        )
    return type(error)(
        message, provider=error.provider, operation=error.operation, status=error.status
    )


def _prepare(settings: _Settings) -> PartFile:
    """Check the destination and take its part file (blocking)."""
    dest = settings.destination
    if not settings.overwrite and os.path.lexists(dest):
        raise ExportError(
            f"{str(dest)!r} already exists; choose another name (export_file_path does) "
            "or pass overwrite=True",
            provider=settings.provider,
            operation=_OPERATION,
        )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(os_error_message(exc, "create the directory", dest.parent)) from None
    return PartFile.acquire(
        dest, resume=settings.resume, provider=settings.provider, operation=_OPERATION
    )


def _tracker(progress: ProgressReporter | None) -> ProgressTracker:
    return progress if isinstance(progress, ProgressTracker) else ProgressTracker(progress)


# -- the async driver (httpx) ------------------------------------------------------------


async def _run_async(
    core: _Core, client: httpx.AsyncClient, url: httpx.URL, headers: Mapping[str, str]
) -> None:
    resumes = 0
    while True:
        try:
            async for attempt in stamina.retry_context(**core.retry_options()):  # type: ignore[arg-type]
                with attempt:
                    core.log_attempt(attempt.num)
                    with core.progress_guard():
                        await _request_async(core, client, url, headers)
            return
        except _Interrupted as interrupted:
            resumes = core.resumed(interrupted, resumes)


async def _request_async(
    core: _Core, client: httpx.AsyncClient, url: httpx.URL, extra: Mapping[str, str]
) -> None:
    offset, validator = await anyio.to_thread.run_sync(core.plan)
    headers = dict(extra)
    # Ranges and Content-Length count bytes of the representation: ask for it as is.
    headers["Accept-Encoding"] = "identity"
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            headers["If-Range"] = validator
    try:
        async with client.stream("GET", url, headers=headers) as response:
            error = error_for_response(response, provider=core.provider, operation=_OPERATION)
            encoded = await anyio.to_thread.run_sync(
                lambda: core.begin(response.status_code, response.headers, error=error)
            )
            if encoded is None:
                return
            # A transport may hand over a response already read (httpx.MockTransport or
            # respx with content=); its raw stream is gone, its content is the body.
            decoded = encoded or response.is_stream_consumed
            with _large_reads(response, _READ_SIZE):
                await _pump(core, response.aiter_bytes() if decoded else response.aiter_raw())
            core.end_body()
    except httpx.UnsupportedProtocol:
        raise ConfigurationError(
            f"url: must be an http:// or https:// URL, got a {shown(url.scheme)} URL"
        ) from None
    except httpx.HTTPError as exc:
        raise error_for_exception(exc, provider=core.provider, operation=_OPERATION) from None


async def _pump(core: _Core, chunks: AsyncIterator[bytes]) -> None:
    """Feed the body to the hashing and writing workers; drain them on any outcome."""
    hash_send, hash_receive = anyio.create_memory_object_stream[list[bytes]](_QUEUE_DEPTH)
    write_send, write_receive = anyio.create_memory_object_stream[list[bytes]](_QUEUE_DEPTH)
    failure: list[BaseException] = []

    async def hash_worker() -> None:
        async with hash_receive:
            async for batch in hash_receive:
                await anyio.to_thread.run_sync(core.hash, batch)

    async def write_worker() -> None:
        async with write_receive:
            try:
                async for batch in write_receive:
                    await anyio.to_thread.run_sync(core.write, batch)
            except Exception as exc:
                # Stop the whole pipeline; the error is raised below, not as a group.
                failure.append(exc)
                task_group.cancel_scope.cancel()

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(hash_worker)
        task_group.start_soon(write_worker)
        # The body arrives in the transport's pieces (up to 256 KiB); they are
        # passed on in batches, never joined, so no byte is copied on our side.
        batch: list[bytes] = []
        size = 0
        read_error: Exception | None = None
        try:
            async with hash_send, write_send:
                try:
                    async for chunk in chunks:
                        core.accept(len(chunk))
                        batch.append(chunk)
                        size += len(chunk)
                        if size >= core.settings.chunk_size or len(batch) >= _MAX_BATCH:
                            await hash_send.send(batch)
                            await write_send.send(batch)
                            batch, size = [], 0
                except httpx.HTTPError as exc:
                    read_error = exc
                except ChecksumMismatchError as exc:
                    read_error, batch = exc, []  # past the limit: write nothing more
                # What arrived before a dropped connection is kept: the resume
                # starts after it. Closing the streams then lets both workers
                # finish, so the part file and the hash agree.
                if batch:
                    await hash_send.send(batch)
                    await write_send.send(batch)
        except anyio.BrokenResourceError:
            pass  # the writer failed and said why in `failure`
        if read_error is not None:
            failure.append(read_error)
    if failure:
        error = failure[0]
        if isinstance(error, httpx.HTTPError):
            raise error_for_exception(error, provider=core.provider, operation=_OPERATION)
        raise error


async def _fetch_async(
    client: httpx.AsyncClient,
    url: httpx.URL,
    settings: _Settings,
    headers: Mapping[str, str],
    tracker: ProgressTracker,
) -> _Core:
    """Download into a verified part file and return the core holding it (uncommitted).

    On failure the part file is discarded (or kept for a resume, as the settings say).
    """
    install_log_redaction()
    where = _where(url)
    tracker.update("preparing", 0.0, f"downloading {where} to {settings.destination.name}")
    part = await anyio.to_thread.run_sync(_prepare, settings)
    core = _Core(part, settings, tracker, where)
    try:
        await anyio.to_thread.run_sync(core.load_existing)
        await _run_async(core, client, url, headers)
        await anyio.to_thread.run_sync(core.verify)
    except BaseException as exc:
        _discard(core, exc, verified=False)
        raise
    return core


def _discard(core: _Core, exc: BaseException, *, verified: bool) -> None:
    # A file that failed verification, or was cut off past its limit, is never kept.
    keep = (
        core.settings.keep_partial
        and not verified
        and not isinstance(exc, ChecksumMismatchError | ExportError)
    )
    core.part.discard(keep=keep)


def _commit(core: _Core) -> None:
    try:
        core.part.commit(core.settings.destination, overwrite=core.settings.overwrite)
    except BaseException as exc:
        _discard(core, exc, verified=True)
        raise
    core.part.close()


async def download(
    client: httpx.AsyncClient,
    url: str | httpx.URL,
    destination: str | os.PathLike[str],
    *,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    expected_format: str | None = None,
    overwrite: bool = False,
    resume: bool = True,
    keep_partial: bool = False,
    headers: Mapping[str, str] | None = None,
    progress: ProgressReporter | None = None,
    retry: RetryPolicy | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    provider: str = "export",
) -> DownloadResult:
    """Download ``url`` to ``destination``, verified, resumable and all-or-nothing.

    The body streams to a part file (``destination.part``) while its SHA-256 is
    computed in parallel; memory use does not depend on the image size. A body longer
    than ``Content-Length`` or ``expected_size`` is cut off as it streams. When the
    transfer completes, its size is checked against ``Content-Length`` (and
    ``expected_size``), its digest against ``expected_sha256``, the file and its
    directory are fsynced and the part file is renamed to ``destination`` atomically.
    A dropped connection or a truncated body is resumed with a ``Range`` request (with
    ``If-Range`` when the server gave an ETag or Last-Modified; a resume that answers
    with another object restarts from zero, as does a server that ignores ``Range``);
    5xx answers, connection failures and 429s are retried as ``retry`` says, honouring
    ``Retry-After`` (of a 429 or a 503), and every retry is logged on the
    ``hypersdk.export`` logger, naming the URL by scheme, host and path only.

    The part file is created exclusively and locked; an existing one is resumed only
    when it is this user's own regular file (a link or another user's file planted
    there is left alone and a new part file with a random name is used instead). If
    the download fails or the task is cancelled, the part file is removed
    (``keep_partial=True`` keeps it so a later call with ``resume=True`` continues where
    this one stopped; a file that fails verification is always removed) and
    ``destination`` is never touched.

    >>> async with httpx.AsyncClient(follow_redirects=True) as client:  # doctest: +SKIP
    ...     result = await download(client, disk_url, path, expected_sha256=digest)

    Args:
        client: The provider's client (its auth, TLS and timeouts apply). Create it with
            ``follow_redirects=True`` if the URL redirects to storage.
        url: What to fetch. Only its scheme, host and path ever appear in messages and
            logs (also in httpx's and httpcore's log records, which are redacted).
        destination: The final file; its directory is created if missing.
        expected_sha256: The digest the provider promises, if it knows one.
        expected_size: The size in bytes the provider promises, if it knows one.
        expected_format: A disk format (see :data:`DISK_FORMATS`) the file must be,
            checked from its magic bytes before it is renamed into place.
        overwrite: Replace an existing ``destination`` instead of failing.
        resume: Continue from an existing ``destination.part`` (re-hashed first).
        keep_partial: Keep the part file when the download fails or is cancelled.
        headers: Extra request headers (``Range``, ``If-Range`` and
            ``Accept-Encoding`` are set here).
        progress: Receives phases ``preparing``, ``downloading``, ``verifying``,
            ``done``; percent only grows and ends at 100.
        retry: Retry bounds and timing; :class:`RetryPolicy` defaults when ``None``.
        chunk_size: Bytes per batch handed to the hashing and writing threads, and the
            read size when re-hashing a part file (4 KiB-64 MiB).
        provider: Names the provider in error messages.

    Raises:
        ChecksumMismatchError: the size or digest is not what was expected, or the body
            ran past the announced or expected size.
        ExportError: the file is not ``expected_format``.
        RateLimitError: 429 after the retries, or a ``Retry-After`` beyond
            ``retry.max_retry_after``.
        ProviderUnavailableError: 5xx or network failures after the retries.
        AuthenticationError, ProviderAPIError: other HTTP errors (not retried).
        ExportError: the file could not be written (a full disk, for example), another
            download holds the part file, or ``destination`` exists and ``overwrite``
            is false.
        ConfigurationError: an argument is invalid (the message names it).
    """
    settings = _settings(
        destination,
        expected_sha256=expected_sha256,
        expected_size=expected_size,
        expected_format=expected_format,
        overwrite=overwrite,
        resume=resume,
        keep_partial=keep_partial,
        progress=progress,
        retry=retry,
        chunk_size=chunk_size,
        provider=provider,
    )
    target = _url_argument(url)
    if not isinstance(client, httpx.AsyncClient):
        raise ConfigurationError(
            f"client: must be an httpx.AsyncClient, got {type(client).__name__}"
        )
    extra = arg.headers_or_none("headers", headers)
    started = time.monotonic()
    core = await _fetch_async(client, target, settings, extra, _tracker(progress))
    await anyio.to_thread.run_sync(_commit, core)
    return core.result(started)


def _url_argument(url: object) -> httpx.URL:
    if isinstance(url, httpx.URL):
        return url
    if not isinstance(url, str):
        raise ConfigurationError(f"url: must be a str or httpx.URL, got {type(url).__name__}")
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, UnicodeError, ValueError):
        # httpx quotes the offending part, which may be a token: leave it out.
        raise ConfigurationError("url: must be a valid http(s) URL, got a malformed one") from None


# -- the blocking driver (any client, through a ByteSource) -------------------------------


def _source_error(exc: Exception, provider: str) -> HyperSDKError:
    """Map what a byte source raised; its text may hold a signed URL, so it is not shown."""
    if isinstance(exc, HyperSDKError):
        return exc
    if isinstance(exc, httpx.HTTPError):
        return error_for_exception(exc, provider=provider, operation=_OPERATION)
    if isinstance(exc, OSError | http.client.HTTPException):
        return ProviderUnavailableError(
            f"{provider} download could not read from the source ({type(exc).__name__}); "
            "check the endpoint and the network",
            provider=provider,
            operation=_OPERATION,
        )
    return ExportError(
        f"{provider} download: the byte source failed with {type(exc).__name__}; this is a "
        "bug in the source's glue code",
        provider=provider,
        operation=_OPERATION,
    )


def _status_error(response: SourceResponse, provider: str) -> HyperSDKError | None:
    """The hypersdk error an error status stands for (the same mapping httpx answers get)."""
    if response.status < 400:
        return None
    body = bytearray()
    with contextlib.suppress(Exception):  # the message is a courtesy: never fail on it
        for chunk in response.chunks:
            body += chunk
            if len(body) >= _ERROR_BODY:
                break
    answer = httpx.Response(
        response.status, headers=dict(response.headers.items()), content=bytes(body[:_ERROR_BODY])
    )
    return error_for_response(answer, provider=provider, operation=_OPERATION)


def _request_blocking(core: _Core, source: ByteSource) -> None:
    offset, validator = core.plan()
    provider = core.provider
    try:
        response = source.open(offset, validator)
    except Exception as exc:
        raise _source_error(exc, provider) from None
    if not isinstance(response, SourceResponse):
        raise ExportError(
            f"{provider} download: the byte source's open() returned "
            f"{type(response).__name__}, not a SourceResponse",
            provider=provider,
            operation=_OPERATION,
        )
    try:
        error = _status_error(response, provider)
        if core.begin(response.status, response.headers, error=error) is None:
            return
        pieces = iter(response.chunks)
        batch: list[bytes] = []
        size = 0
        while True:
            try:
                chunk = next(pieces, None)
            except Exception as exc:
                core.hash(batch)
                core.write(batch)  # keep what arrived: the resume starts after it
                raise _source_error(exc, provider) from None
            if chunk is not None:
                if not isinstance(chunk, bytes | bytearray | memoryview):
                    raise ExportError(
                        f"{provider} download: the byte source yielded "
                        f"{type(chunk).__name__}, not bytes",
                        provider=provider,
                        operation=_OPERATION,
                    )
                core.accept(len(chunk))
                batch.append(bytes(chunk))
                size += len(chunk)
            if batch and (chunk is None or size >= core.settings.chunk_size):
                core.hash(batch)
                core.write(batch)
                batch, size = [], 0
            if chunk is None:
                break
        core.end_body()
    finally:
        with contextlib.suppress(Exception):
            response.close()


def _run_blocking(core: _Core, source: ByteSource) -> None:
    resumes = 0
    while True:
        try:
            for attempt in stamina.retry_context(**core.retry_options()):  # type: ignore[arg-type]
                with attempt:
                    core.log_attempt(attempt.num)
                    with core.progress_guard():
                        _request_blocking(core, source)
            return
        except _Interrupted as interrupted:
            resumes = core.resumed(interrupted, resumes)


def _fetch_blocking(source: ByteSource, settings: _Settings, tracker: ProgressTracker) -> _Core:
    """The blocking twin of :func:`_fetch_async`: a verified, uncommitted part file."""
    install_log_redaction()
    where = source.where if isinstance(source, UrllibSource) else settings.destination.name
    tracker.update("preparing", 0.0, f"downloading {where} to {settings.destination.name}")
    core = _Core(_prepare(settings), settings, tracker, where)
    try:
        core.load_existing()
        _run_blocking(core, source)
        core.verify()
    except BaseException as exc:
        _discard(core, exc, verified=False)
        raise
    return core


def download_blocking(
    source: ByteSource,
    destination: str | os.PathLike[str],
    *,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    expected_format: str | None = None,
    overwrite: bool = False,
    resume: bool = True,
    keep_partial: bool = False,
    progress: ProgressReporter | None = None,
    retry: RetryPolicy | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    provider: str = "export",
) -> DownloadResult:
    """Download from a :class:`ByteSource` in the calling thread; :func:`download`'s twin.

    For a :class:`~hypersdk.BlockingProvider` whose HTTP goes through requests, urllib3,
    http.client or a vendor SDK. It is the same pipeline as :func:`download` (one core
    decides resumes, limits, verification and the commit): the body goes to a locked,
    exclusively created part file while it is hashed; a body past ``expected_size`` or
    the announced length is cut off; a dropped connection resumes at the byte it
    reached (``If-Range`` with the object's ETag or Last-Modified, restarting when the
    object changed); errors are retried per ``retry``; the verified file is renamed to
    ``destination`` atomically. The arguments mean what they mean for :func:`download`.

    ``source`` is anything with an ``open(offset, validator) -> SourceResponse``
    method: :class:`UrllibSource` for the standard library, or a few lines over the
    plugin's own client (the :class:`ByteSource` docstring shows one for requests)::

        result = download_blocking(UrllibSource(url, headers=auth), out / "disk.raw",
                                   expected_sha256=digest)

    Raises the errors :func:`download` raises.
    """
    settings = _settings(
        destination,
        expected_sha256=expected_sha256,
        expected_size=expected_size,
        expected_format=expected_format,
        overwrite=overwrite,
        resume=resume,
        keep_partial=keep_partial,
        progress=progress,
        retry=retry,
        chunk_size=chunk_size,
        provider=provider,
    )
    _check_source(source)
    started = time.monotonic()
    core = _fetch_blocking(source, settings, _tracker(progress))
    _commit(core)
    return core.result(started)


def _check_source(source: object) -> None:
    if not callable(getattr(source, "open", None)):
        raise ConfigurationError(
            "source: must be a ByteSource (an object with open(offset, validator) -> "
            f"SourceResponse), got {type(source).__name__}"
        )
