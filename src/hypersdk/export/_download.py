"""Streaming, resumable, verified downloads of disk images.

The body flows through a small pipeline so that no stage waits for another::

    socket --(event loop)--> batch of pieces --+--> [thread] sha256.update
                                               +--> [thread] writev to NAME.part

The pieces httpx yields are grouped into batches of about ``chunk_size`` bytes without
being copied. Both branches are bounded memory streams, so a few batches at most are in
flight whatever the image size; hashlib and file writes release the GIL, so hashing and
writing run in parallel with each other and with the network reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread
import attrs
import stamina

from hypersdk._http import error_for_exception, error_for_response, httpx, parse_retry_after
from hypersdk.errors import (
    ChecksumMismatchError,
    ConfigurationError,
    ExportError,
    HyperSDKError,
    ProviderAPIError,
    ProviderUnavailableError,
    RateLimitError,
)
from hypersdk.export._checks import is_int_between
from hypersdk.export._files import commit, os_error_message, part_path, remove_quietly
from hypersdk.export._formats import DISK_FORMATS, check_file_format
from hypersdk.export._progress import ProgressTracker
from hypersdk.export._retry import RetryPolicy

if sys.platform != "win32":
    import fcntl

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from hypersdk.progress import ProgressReporter

__all__ = ["DownloadResult", "download", "DEFAULT_CHUNK_SIZE"]

logger = logging.getLogger("hypersdk.export")

DEFAULT_CHUNK_SIZE: Final = 1 << 20
"""Bytes per pipeline batch: large enough that thread hand-offs cost nothing."""

# Batches queued per branch: with 1 MiB batches the pipeline holds under ~10 MiB.
_QUEUE_DEPTH: Final = 4
# writev accepts at most IOV_MAX (1024 on Linux) buffers; stay well below.
_MAX_BATCH: Final = 256
# Start writeback every 32 MiB so the final fsync does not flush a whole image at once.
_FLUSH_BEHIND: Final = 32 << 20
_HAS_WRITEV: Final = hasattr(os, "writev")
_HAS_FADVISE: Final = hasattr(os, "posix_fadvise")
_OPERATION: Final = "download"
_SHA256: Final = re.compile(r"^[0-9a-fA-F]{64}$")
_CONTENT_RANGE: Final = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED_RANGE: Final = re.compile(r"^bytes\s+\*/(\d+)$")


@attrs.frozen(kw_only=True)
class DownloadResult:
    """What :func:`download` wrote.

    ``size`` is the file's size in bytes and ``sha256`` its SHA-256 hex digest, computed
    while the bytes arrived. ``requests`` counts the HTTP requests made (1 when nothing
    went wrong) and ``reused_bytes`` the bytes taken over from an earlier part file.
    """

    path: Path
    size: int
    sha256: str
    requests: int
    reused_bytes: int


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


def _lock(fd: int) -> bool:
    """Take an exclusive, advisory lock on the part file; ``False`` if someone has it."""
    if sys.platform == "win32":  # opening the file is as far as we go there
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # file systems without locks (some network mounts)
        return True
    return True


def _hash_batch(digest: hashlib._Hash, batch: list[bytes]) -> None:
    for chunk in batch:
        digest.update(chunk)


def _start_writeback(fd: int, start: int, length: int) -> None:
    """Ask the kernel to start writing these pages now, so the final fsync is short.

    POSIX_FADV_DONTNEED makes Linux begin writeback of dirty pages without waiting for
    it, and drop the pages once clean: the image does not push other data out of the
    page cache. Elsewhere it is a harmless hint or unavailable.
    """
    if _HAS_FADVISE:
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, start, length, os.POSIX_FADV_DONTNEED)


def _rehash(fd: int, chunk_size: int) -> tuple[hashlib._Hash, int]:
    """Hash what an earlier attempt left in the part file; leave the offset at its end."""
    digest = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    size = 0
    while block := os.read(fd, chunk_size):
        digest.update(block)
        size += len(block)
    return digest, size


def _where(url: httpx.URL) -> str:
    # Host and path only: the query string of a pre-signed URL is a credential.
    return f"{url.host}{url.path}"


class _Transfer:
    """The state of one download across its HTTP requests."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: httpx.URL,
        part: Path,
        *,
        headers: Mapping[str, str],
        expected_size: int | None,
        policy: RetryPolicy,
        chunk_size: int,
        provider: str,
        tracker: ProgressTracker,
    ) -> None:
        self.client, self.url, self.part = client, url, part
        self.headers = headers
        self.expected_size = expected_size
        self.policy = policy
        self.chunk_size = chunk_size
        self.provider = provider
        self.tracker = tracker
        self.fd = -1
        self._flushed = 0
        # Only the download holding the part file's lock may delete it.
        self.owns_part = False
        self.digest = hashlib.sha256()
        self.offset = 0
        self.total: int | None = None
        self.requests = 0
        self.reused = 0
        self.ranges_work = True
        self._last_error: HyperSDKError | None = None
        self._server_wait: float | None = None

    # -- the part file -------------------------------------------------------------

    async def open(self, *, resume: bool) -> None:
        try:
            self.fd = os.open(self.part, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            raise ExportError(os_error_message(exc, "create", self.part)) from None
        if not _lock(self.fd):
            self.close()
            raise ExportError(
                f"another download is already writing {str(self.part)!r}; wait for it to "
                "finish or choose another destination",
                provider=self.provider,
                operation=_OPERATION,
            )
        self.owns_part = True
        try:
            existing = os.fstat(self.fd).st_size if resume else 0
            if existing:
                self.tracker.update("preparing", 0.0, "checking the partial download")
                self.digest, self.offset = await anyio.to_thread.run_sync(
                    _rehash, self.fd, self.chunk_size
                )
        except OSError as exc:
            raise ExportError(os_error_message(exc, "read", self.part)) from None
        if existing:
            if self.expected_size is not None and self.offset > self.expected_size:
                await self.restart("the partial file is larger than expected")
            else:
                self.reused = self._flushed = self.offset
                logger.info("resuming %s from byte %d", self.part.name, self.offset)
        else:
            await self.restart(None)

    async def restart(self, reason: str | None) -> None:
        if reason is not None:
            logger.warning("restarting download of %s from byte 0: %s", self.part.name, reason)
        try:
            await anyio.to_thread.run_sync(os.ftruncate, self.fd, 0)
            os.lseek(self.fd, 0, os.SEEK_SET)
        except OSError as exc:
            raise ExportError(os_error_message(exc, "truncate", self.part)) from None
        self.digest = hashlib.sha256()
        self.offset = self._flushed = 0

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    # -- retries ---------------------------------------------------------------------

    def _should_retry(self, exc: Exception) -> bool | float:
        """Backoff hook for stamina: whether to retry and, for a 429, how long to wait."""
        decision: bool | float
        if isinstance(exc, RateLimitError):
            if exc.retry_after is None:
                decision = True
            elif exc.retry_after <= self.policy.max_retry_after:
                decision = exc.retry_after
            else:
                return False
        elif isinstance(exc, ProviderUnavailableError):
            wait, self._server_wait = self._server_wait, None
            decision = True if wait is None else min(wait, self.policy.max_retry_after)
        else:
            return False
        self._last_error = exc
        return decision

    async def run(self) -> None:
        policy = self.policy
        resumes = 0
        while True:
            try:
                async for attempt in stamina.retry_context(
                    on=self._should_retry,
                    attempts=policy.attempts,
                    timeout=policy.timeout or None,
                    wait_initial=policy.wait_initial,
                    wait_max=policy.wait_max,
                    wait_jitter=policy.wait_jitter,
                ):
                    with attempt:
                        if attempt.num > 1:
                            logger.warning(
                                "retrying download of %s (attempt %d of %d) after: %s",
                                _where(self.url),
                                attempt.num,
                                policy.attempts,
                                self._last_error,
                            )
                        await self._attempt()
                return
            except _Interrupted as interrupted:
                resumes += 1
                if resumes > policy.max_resumes:
                    raise _gave_up(interrupted.error, policy.max_resumes) from None
                logger.warning(
                    "download of %s interrupted at byte %d (%s); resuming (%d of %d)",
                    _where(self.url),
                    self.offset,
                    interrupted.error,
                    resumes,
                    policy.max_resumes,
                )

    async def _attempt(self) -> None:
        start = self.offset
        try:
            await self._request()
        except ProviderUnavailableError as exc:
            if self.offset > start:
                raise _Interrupted(exc) from None
            raise

    # -- one HTTP request ----------------------------------------------------------------

    async def _request(self) -> None:
        headers = dict(self.headers)
        # Ranges and Content-Length count bytes of the representation: ask for it as is.
        headers["Accept-Encoding"] = "identity"
        ranged = self.offset > 0 and self.ranges_work
        if ranged:
            headers["Range"] = f"bytes={self.offset}-"
        elif self.offset:
            await self.restart("the server does not support resuming")
        self.requests += 1
        try:
            async with self.client.stream("GET", self.url, headers=headers) as response:
                await self._receive(response, ranged=ranged)
        except httpx.UnsupportedProtocol:
            raise ConfigurationError(
                f"url: must be an http:// or https:// URL, got a {self.url.scheme!r} URL"
            ) from None
        except httpx.HTTPError as exc:
            raise error_for_exception(exc, provider=self.provider, operation=_OPERATION) from None

    async def _receive(self, response: httpx.Response, *, ranged: bool) -> None:
        status = response.status_code
        if status == 416 and ranged:
            match = _UNSATISFIED_RANGE.match(response.headers.get("content-range", ""))
            if match and int(match[1]) == self.offset:
                self.total = self.offset  # the part file already holds everything
                return
            await self.restart("the server rejected the resume range")
            raise ProviderUnavailableError(
                f"{self.provider} download: HTTP 416 for a resume range; restarting",
                provider=self.provider,
                operation=_OPERATION,
                status=status,
            )
        error = error_for_response(response, provider=self.provider, operation=_OPERATION)
        if error is not None:
            # RFC 9110 also lets a 503 say when to come back; honour it like a 429's.
            self._server_wait = (
                parse_retry_after(response.headers.get("retry-after")) if status == 503 else None
            )
            raise error
        encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
        if status == 206 and ranged and not encoded:
            match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
            if match is None or int(match[1]) != self.offset:
                self.ranges_work = False
                await self.restart("the server answered the resume with another range")
                raise ProviderUnavailableError(
                    f"{self.provider} download: unusable Content-Range on resume; restarting",
                    provider=self.provider,
                    operation=_OPERATION,
                    status=status,
                )
            self.total = int(match[3]) if match[3] != "*" else None
        elif status == 200:
            if ranged:
                # The server ignored Range and sends the whole body: use it from byte 0.
                self.ranges_work = False
                await self.restart("the server ignored the Range header (HTTP 200)")
            length = response.headers.get("content-length")
            self.total = int(length) if length and length.isdigit() and not encoded else None
            if encoded:
                self.ranges_work = False
        else:
            raise ProviderAPIError(
                f"{self.provider} download: unexpected HTTP {status} for "
                f"{response.request.method} {response.request.url.path}; a disk download "
                "needs 200 or 206 (create the client with follow_redirects=True for 3xx)",
                provider=self.provider,
                operation=_OPERATION,
                status=status,
            )
        if (
            self.total is not None
            and self.expected_size is not None
            and self.total != self.expected_size
        ):
            raise ChecksumMismatchError(
                f"{self.provider} download: the server announces {self.total} bytes but "
                f"{self.expected_size} were expected; the image changed or the URL is wrong",
                provider=self.provider,
                operation=_OPERATION,
            )
        await self._pump(response.aiter_bytes() if encoded else response.aiter_raw())
        if self.total is not None and self.offset < self.total:
            raise ProviderUnavailableError(
                f"{self.provider} download: the body ended after {self.offset} of "
                f"{self.total} bytes",
                provider=self.provider,
                operation=_OPERATION,
            )
        if self.total is not None and self.offset > self.total:
            raise ChecksumMismatchError(
                f"{self.provider} download: received {self.offset} bytes, more than the "
                f"{self.total} announced",
                provider=self.provider,
                operation=_OPERATION,
            )

    async def _pump(self, chunks: AsyncIterator[bytes]) -> None:
        """Feed the body to the hashing and writing workers; drain them on any outcome."""
        hash_send, hash_receive = anyio.create_memory_object_stream[list[bytes]](_QUEUE_DEPTH)
        write_send, write_receive = anyio.create_memory_object_stream[list[bytes]](_QUEUE_DEPTH)
        failure: list[BaseException] = []
        digest = self.digest

        async def hash_worker() -> None:
            async with hash_receive:
                async for batch in hash_receive:
                    await anyio.to_thread.run_sync(_hash_batch, digest, batch)

        async def write_worker() -> None:
            async with write_receive:
                try:
                    async for batch in write_receive:
                        await anyio.to_thread.run_sync(self._write_batch, batch)
                        self._report()
                except Exception as exc:
                    # Stop the whole pipeline; the error is raised below, not as a group.
                    failure.append(exc)
                    task_group.cancel_scope.cancel()

        async with anyio.create_task_group() as task_group:
            task_group.start_soon(hash_worker)
            task_group.start_soon(write_worker)
            # The body arrives in the transport's pieces (64 KiB for httpcore); they are
            # passed on in batches, never joined, so no byte is copied on our side.
            batch: list[bytes] = []
            size = 0
            read_error: httpx.HTTPError | None = None
            try:
                async with hash_send, write_send:
                    try:
                        async for chunk in chunks:
                            batch.append(chunk)
                            size += len(chunk)
                            if size >= self.chunk_size or len(batch) >= _MAX_BATCH:
                                await hash_send.send(batch)
                                await write_send.send(batch)
                                batch, size = [], 0
                    except httpx.HTTPError as exc:
                        read_error = exc
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
                raise error_for_exception(error, provider=self.provider, operation=_OPERATION)
            if isinstance(error, OSError):
                raise ExportError(
                    os_error_message(error, "write", self.part),
                    provider=self.provider,
                    operation=_OPERATION,
                ) from error
            raise error

    def _write_batch(self, batch: list[bytes]) -> None:
        """Write a batch (in a worker thread) and start writing back older pages."""
        _write_all(self.fd, batch)
        self.offset += sum(len(chunk) for chunk in batch)
        if self.offset - self._flushed >= _FLUSH_BEHIND:
            _start_writeback(self.fd, self._flushed, self.offset - self._flushed)
            self._flushed = self.offset

    def _report(self) -> None:
        if self.total:
            percent = 100.0 * self.offset / self.total
            message = f"{self.offset} of {self.total} bytes"
        else:
            percent, message = 0.0, f"{self.offset} bytes"
        self.tracker.update("downloading", percent, message)


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


def _check_arguments(
    expected_sha256: str | None, expected_size: int | None, chunk_size: int
) -> None:
    if expected_sha256 is not None and not _SHA256.match(expected_sha256):
        raise ConfigurationError(
            "expected_sha256: must be a SHA-256 hex digest (64 hex characters) or None, "
            f"got {expected_sha256!r}"
        )
    if expected_size is not None and not is_int_between(expected_size, 0):
        raise ConfigurationError(
            f"expected_size: must be an integer >= 0 or None, got {expected_size!r}"
        )
    if not is_int_between(chunk_size, 4096, 64 << 20):
        raise ConfigurationError(
            f"chunk_size: must be an integer from 4096 to {64 << 20}, got {chunk_size!r}"
        )


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

    The body streams to ``destination.part`` while its SHA-256 is computed in parallel;
    memory use does not depend on the image size. When the transfer completes, its size
    is checked against ``Content-Length`` (and ``expected_size``), its digest against
    ``expected_sha256``, the file and its directory are fsynced and the part file is
    renamed to ``destination`` atomically. A dropped connection or a truncated body is
    resumed with a ``Range`` request (restarting when the server ignores ``Range``);
    5xx answers, connection failures and 429s are retried as ``retry`` says, honouring
    ``Retry-After`` (of a 429 or a 503), and every retry is logged on the
    ``hypersdk.export`` logger.

    If the download fails or the task is cancelled, the part file is removed
    (``keep_partial=True`` keeps it so a later call with ``resume=True`` continues where
    this one stopped; a file that fails verification is always removed) and
    ``destination`` is never touched.

    >>> async with httpx.AsyncClient(follow_redirects=True) as client:  # doctest: +SKIP
    ...     result = await download(client, disk_url, path, expected_sha256=digest)

    Args:
        client: The provider's client (its auth, TLS and timeouts apply). Create it with
            ``follow_redirects=True`` if the URL redirects to storage.
        url: What to fetch. Only its host and path ever appear in messages and logs.
        destination: The final file; its directory is created if missing.
        expected_sha256: The digest the provider promises, if it knows one.
        expected_size: The size in bytes the provider promises, if it knows one.
        expected_format: A disk format (see :data:`DISK_FORMATS`) the file must be,
            checked from its magic bytes before it is renamed into place.
        overwrite: Replace an existing ``destination`` instead of failing.
        resume: Continue from an existing ``destination.part`` (re-hashed first).
        keep_partial: Keep the part file when the download fails or is cancelled.
        headers: Extra request headers (``Range`` and ``Accept-Encoding`` are set here).
        progress: Receives phases ``preparing``, ``downloading``, ``verifying``,
            ``done``; percent only grows and ends at 100.
        retry: Retry bounds and timing; :class:`RetryPolicy` defaults when ``None``.
        chunk_size: Bytes per batch handed to the hashing and writing threads, and the
            read size when re-hashing a part file (4 KiB-64 MiB).
        provider: Names the provider in error messages.

    Raises:
        ChecksumMismatchError: the size or digest is not what was expected.
        ExportError: the file is not ``expected_format``.
        RateLimitError: 429 after the retries, or a ``Retry-After`` beyond
            ``retry.max_retry_after``.
        ProviderUnavailableError: 5xx or network failures after the retries.
        AuthenticationError, ProviderAPIError: other HTTP errors (not retried).
        ExportError: the file could not be written (a full disk, for example) or
            ``destination`` exists and ``overwrite`` is false.
        ConfigurationError: an argument is invalid (the message names it).
    """
    _check_arguments(expected_sha256, expected_size, chunk_size)
    if expected_format is not None and expected_format.casefold() not in DISK_FORMATS:
        raise ConfigurationError(
            f"expected_format: must be one of {', '.join(DISK_FORMATS)} or None, "
            f"got {expected_format!r}"
        )
    try:
        target = httpx.URL(url) if isinstance(url, str) else url
    except httpx.InvalidURL:
        # httpx quotes the offending part, which may be a token: leave it out.
        raise ConfigurationError("url: must be a valid http(s) URL, got a malformed one") from None
    dest = Path(destination)
    part = part_path(dest)
    if not overwrite and os.path.lexists(dest):
        raise ExportError(
            f"{str(dest)!r} already exists; choose another name (export_file_path does) "
            "or pass overwrite=True",
            provider=provider,
            operation=_OPERATION,
        )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(os_error_message(exc, "create the directory", dest.parent)) from None
    tracker = progress if isinstance(progress, ProgressTracker) else ProgressTracker(progress)
    tracker.update("preparing", 0.0, f"downloading {_where(target)} to {dest.name}")
    transfer = _Transfer(
        client,
        target,
        part,
        headers=headers or {},
        expected_size=expected_size,
        policy=retry or RetryPolicy(),
        chunk_size=chunk_size,
        provider=provider,
        tracker=tracker,
    )
    keep = keep_partial
    started = time.monotonic()
    try:
        await transfer.open(resume=resume)
        await transfer.run()
        tracker.update("verifying", 100.0, "checking size and checksum")
        keep = False  # from here on the part is complete: a failure means it is bad
        try:
            await anyio.to_thread.run_sync(os.fsync, transfer.fd)
        except OSError as exc:
            raise ExportError(os_error_message(exc, "write", part)) from None
        transfer.close()
        size = transfer.offset
        digest = transfer.digest.hexdigest()
        if expected_size is not None and size != expected_size:
            raise ChecksumMismatchError(
                f"{provider} download of {dest.name}: got {size} bytes, expected "
                f"{expected_size}; the source changed or the transfer was corrupted, retry",
                provider=provider,
                operation=_OPERATION,
            )
        if expected_sha256 is not None and digest != expected_sha256.lower():
            raise ChecksumMismatchError(
                f"{provider} download of {dest.name}: SHA-256 is {digest}, expected "
                f"{expected_sha256.lower()}; the file was removed, retry the export",
                provider=provider,
                operation=_OPERATION,
            )
        if expected_format is not None:
            await anyio.to_thread.run_sync(check_file_format, part, expected_format)
        await anyio.to_thread.run_sync(lambda: commit(part, dest, overwrite=overwrite))
    except BaseException:
        transfer.close()
        if transfer.owns_part and (
            not keep or not os.path.exists(part) or os.path.getsize(part) == 0
        ):
            remove_quietly(part)
        raise
    tracker.update("done", 100.0, f"downloaded {size} bytes in {time.monotonic() - started:.1f} s")
    return DownloadResult(
        path=dest,
        size=size,
        sha256=digest,
        requests=transfer.requests,
        reused_bytes=transfer.reused,
    )
