"""Streaming compression of a finished file, async or blocking, with a codec of the table.

The algorithms, their suffixes and level ranges are the rows of ``hypersdk._codecs.CODECS``;
nothing here names one. Both forms run one blocking loop (:func:`_compress`) that writes to
a part file taken the same way downloads take theirs (exclusive, locked, never through a
link), so two compressions of one destination never share a part file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import anyio.from_thread
import anyio.to_thread
import attrs

from hypersdk._codecs import CODECS, Codec, Compressor
from hypersdk._regular import open_regular
from hypersdk._validation import is_int_between, path_argument, shown
from hypersdk.errors import ConfigurationError, ExportError
from hypersdk.export import _arguments as arg
from hypersdk.export._files import PartFile, os_error_message, write_all
from hypersdk.export._progress import ProgressTracker

if TYPE_CHECKING:
    from collections.abc import Callable

    from hypersdk.progress import ProgressReporter

__all__ = [
    "COMPRESSION_ALGORITHMS",
    "CompressionResult",
    "compression_level",
    "compression_suffix",
    "compress_file",
    "compress_file_blocking",
]

COMPRESSION_ALGORITHMS: Final = tuple(CODECS)
"""The algorithms :func:`compress_file` supports; the first is the toolkit's default."""

_CHUNK: Final = 1 << 20
_OPERATION: Final = "compress"


def _codec(algorithm: str) -> Codec:
    codec = CODECS.get(algorithm.casefold()) if isinstance(algorithm, str) else None  # type: ignore[redundant-expr]
    if codec is None:
        raise ConfigurationError(
            f"algorithm: must be one of {', '.join(COMPRESSION_ALGORITHMS)}, got {shown(algorithm)}"
        )
    return codec


def compression_level(algorithm: str, level: int) -> int:
    """Validate ``level`` for ``algorithm`` and return the level to use.

    ``0`` means the algorithm's default (gzip 6, zstd 3); otherwise gzip accepts 1-9 and
    zstd 1-22.

    >>> compression_level("gzip", 0)
    6

    Raises:
        ConfigurationError: unknown algorithm, or a level outside its range.
    """
    codec = _codec(algorithm)
    low, high = codec.lowest_level, codec.highest_level
    if not (is_int_between(level, 0, 0) or is_int_between(level, low, high)):
        raise ConfigurationError(
            f"compression_level: {codec.name} accepts 0 (default) or {low}-{high}, "
            f"got {shown(level)}"
        )
    return level or codec.default_level


def compression_suffix(algorithm: str) -> str:
    """The file extension for ``algorithm``, without a dot: ``"gz"`` or ``"zst"``."""
    return _codec(algorithm).suffix


def _compressor(algorithm: str, level: int) -> Compressor:
    return CODECS[algorithm].compressor(level)


@attrs.frozen(kw_only=True)
class CompressionResult:
    """What :func:`compress_file` wrote.

    ``size`` is the number of uncompressed bytes read, ``compressed_size`` the size of
    the compressed file and ``sha256`` the SHA-256 hex digest of the compressed file.
    """

    path: Path
    algorithm: str
    level: int
    size: int
    compressed_size: int
    sha256: str


@attrs.frozen(kw_only=True)
class _Job:
    source: Path
    destination: Path
    algorithm: str
    level: int
    overwrite: bool


def _job(
    source: object,
    destination: object,
    *,
    algorithm: object,
    level: object,
    overwrite: object,
    progress: object,
) -> _Job:
    name = _codec(algorithm).name  # type: ignore[arg-type]
    arg.reporter_or_none("progress", progress)
    return _Job(
        source=path_argument("source", source),
        destination=path_argument("destination", destination),
        algorithm=name,
        level=compression_level(name, level),  # type: ignore[arg-type]
        overwrite=arg.flag("overwrite", overwrite),
    )


async def compress_file(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    algorithm: str = "zstd",
    level: int = 0,
    overwrite: bool = False,
    progress: ProgressReporter | None = None,
) -> CompressionResult:
    """Compress ``source`` into ``destination`` without holding either in memory.

    The output is written in a worker thread to a part file next to ``destination``,
    created exclusively and locked (a link or someone else's file planted at
    ``destination.part`` is never written through, and a second compression of the
    same destination fails instead of sharing the part file), then fsynced and renamed
    into place, so ``destination`` is either complete or absent, also when the task is
    cancelled or the disk fills up. Progress is reported in phase ``"compressing"``.

    >>> result = await compress_file("disk.raw", "disk.raw.zst", level=19)  # doctest: +SKIP
    >>> result.compressed_size < result.size  # doctest: +SKIP
    True

    Raises:
        ConfigurationError: bad ``algorithm``, ``level`` or another argument.
        ExportError: reading or writing failed (the message names the file and the
            cause), another writer holds the part file, or ``destination`` exists and
            ``overwrite`` is false.
    """
    job = _job(
        source,
        destination,
        algorithm=algorithm,
        level=level,
        overwrite=overwrite,
        progress=progress,
    )
    tracker = _tracker(progress)
    return await anyio.to_thread.run_sync(
        lambda: _compress_path(job, tracker, anyio.from_thread.check_cancelled)
    )


def compress_file_blocking(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    algorithm: str = "zstd",
    level: int = 0,
    overwrite: bool = False,
    progress: ProgressReporter | None = None,
) -> CompressionResult:
    """:func:`compress_file` in the calling thread, for a :class:`~hypersdk.BlockingProvider`.

    Same guarantees and errors; nothing to await.

    >>> compress_file_blocking("disk.raw", "disk.raw.zst")  # doctest: +SKIP
    """
    job = _job(
        source,
        destination,
        algorithm=algorithm,
        level=level,
        overwrite=overwrite,
        progress=progress,
    )
    return _compress_path(job, _tracker(progress), lambda: None)


def _tracker(progress: ProgressReporter | None) -> ProgressTracker:
    return progress if isinstance(progress, ProgressTracker) else ProgressTracker(progress)


def _compress_path(
    job: _Job, tracker: ProgressReporter, check_cancelled: Callable[[], None]
) -> CompressionResult:
    try:
        # A FIFO would block the open, a device never end: only a regular file is read.
        reader = open_regular(job.source)
    except OSError as exc:
        raise ExportError(os_error_message(exc, "read", job.source)) from None
    try:
        return compress_fd(reader, job, tracker, check_cancelled)
    finally:
        os.close(reader)


def compress_fd(
    reader: int, job: _Job, tracker: ProgressReporter, check_cancelled: Callable[[], None]
) -> CompressionResult:
    """Compress the file open as ``reader`` (from its start) into ``job.destination``."""
    if not job.overwrite and os.path.lexists(job.destination):
        raise ExportError(
            f"{str(job.destination)!r} already exists; pick another name "
            "(export_file_path does) or pass overwrite=True",
            operation=_OPERATION,
        )
    part = PartFile.acquire(job.destination, resume=False, provider="export", operation=_OPERATION)
    try:
        read, written, digest = _compress(reader, part, job, tracker, check_cancelled)
        part.commit(job.destination, overwrite=job.overwrite)
    except BaseException:
        part.discard()
        raise
    part.close()
    return CompressionResult(
        path=job.destination,
        algorithm=job.algorithm,
        level=job.level,
        size=read,
        compressed_size=written,
        sha256=digest,
    )


def _compress(
    reader: int,
    part: PartFile,
    job: _Job,
    tracker: ProgressReporter,
    check_cancelled: Callable[[], None],
) -> tuple[int, int, str]:
    compressor = _compressor(job.algorithm, job.level)
    digest = hashlib.sha256()
    read = written = 0
    try:
        total = os.fstat(reader).st_size
        os.lseek(reader, 0, os.SEEK_SET)
    except OSError as exc:
        raise ExportError(os_error_message(exc, "read", job.source)) from None
    tracker.update("compressing", 0.0, f"compressing with {job.algorithm} level {job.level}")
    while True:
        # Cancellation of the calling task stops the loop between chunks.
        check_cancelled()
        try:
            chunk = os.read(reader, _CHUNK)
        except OSError as exc:
            raise ExportError(os_error_message(exc, "read", job.source)) from None
        out = compressor.compress(chunk) if chunk else compressor.flush()
        if out:
            try:
                write_all(part.fd, out)
            except OSError as exc:
                raise ExportError(
                    os_error_message(exc, "write", job.destination), operation=_OPERATION
                ) from None
            digest.update(out)
            written += len(out)
        if not chunk:
            break
        read += len(chunk)
        tracker.update(
            "compressing",
            100.0 * read / total if total else 100.0,
            f"compressed {read} of {total} bytes",
        )
    try:
        os.fsync(part.fd)
    except OSError as exc:
        raise ExportError(
            os_error_message(exc, "write", job.destination), operation=_OPERATION
        ) from None
    return read, written, digest.hexdigest()
