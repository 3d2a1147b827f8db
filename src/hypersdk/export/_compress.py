"""Streaming gzip and zstd compression of a finished file, in a worker thread."""

from __future__ import annotations

import hashlib
import os
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import anyio
import anyio.from_thread
import anyio.to_thread
import attrs

from hypersdk.errors import ConfigurationError, ExportError
from hypersdk.export._checks import is_int_between
from hypersdk.export._files import commit, os_error_message, part_path, remove_quietly
from hypersdk.export._progress import ProgressTracker

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

if TYPE_CHECKING:
    from hypersdk.progress import ProgressReporter

__all__ = [
    "COMPRESSION_ALGORITHMS",
    "CompressionResult",
    "compression_level",
    "compression_suffix",
    "compress_file",
]

COMPRESSION_ALGORITHMS: Final = ("zstd", "gzip")
"""The algorithms :func:`compress_file` supports; the first is the toolkit's default."""

# (lowest, highest, what 0 means) per algorithm: zstd's negative "fast" levels are left
# out because ExportOptions only allows 0-22.
_LEVELS: Final = {"gzip": (1, 9, 6), "zstd": (1, 22, 3)}
_SUFFIXES: Final = {"gzip": "gz", "zstd": "zst"}
_CHUNK: Final = 1 << 20


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


def _algorithm(algorithm: str) -> str:
    name = algorithm.casefold() if isinstance(algorithm, str) else ""  # type: ignore[redundant-expr]
    if name not in _LEVELS:
        raise ConfigurationError(
            f"algorithm: must be one of {', '.join(COMPRESSION_ALGORITHMS)}, got {algorithm!r}"
        )
    return name


def compression_level(algorithm: str, level: int) -> int:
    """Validate ``level`` for ``algorithm`` and return the level to use.

    ``0`` means the algorithm's default (gzip 6, zstd 3); otherwise gzip accepts 1-9 and
    zstd 1-22.

    >>> compression_level("gzip", 0)
    6

    Raises:
        ConfigurationError: unknown algorithm, or a level outside its range.
    """
    name = _algorithm(algorithm)
    low, high, default = _LEVELS[name]
    if not (is_int_between(level, 0, 0) or is_int_between(level, low, high)):
        raise ConfigurationError(
            f"compression_level: {name} accepts 0 (default) or {low}-{high}, got {level!r}"
        )
    return level or default


def compression_suffix(algorithm: str) -> str:
    """The file extension for ``algorithm``, without a dot: ``"gz"`` or ``"zst"``."""
    return _SUFFIXES[_algorithm(algorithm)]


def _compressor(algorithm: str, level: int) -> _Compressor:
    if algorithm == "gzip":
        # wbits 16 + 15 writes a gzip header and trailer, readable by gunzip.
        return zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return zstd.ZstdCompressor(level=level)


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

    The output is written to ``destination.part`` in a worker thread, fsynced and renamed
    into place, so ``destination`` is either complete or absent, also when the task is
    cancelled. Progress is reported in phase ``"compressing"``.

    >>> result = await compress_file("disk.raw", "disk.raw.zst", level=19)  # doctest: +SKIP
    >>> result.compressed_size < result.size  # doctest: +SKIP
    True

    Raises:
        ConfigurationError: bad ``algorithm`` or ``level``.
        ExportError: reading or writing failed (the message names the file and the fix).
    """
    name = _algorithm(algorithm)
    effective = compression_level(name, level)
    src, dst = Path(source), Path(destination)
    tracker = progress if isinstance(progress, ProgressTracker) else ProgressTracker(progress)
    part = part_path(dst)
    try:
        size, compressed_size, digest = await anyio.to_thread.run_sync(
            _compress_blocking, src, part, name, effective, tracker
        )
        await anyio.to_thread.run_sync(lambda: commit(part, dst, overwrite=overwrite))
    except BaseException:
        remove_quietly(part)
        raise
    return CompressionResult(
        path=dst,
        algorithm=name,
        level=effective,
        size=size,
        compressed_size=compressed_size,
        sha256=digest,
    )


def _compress_blocking(
    source: Path, part: Path, algorithm: str, level: int, tracker: ProgressReporter
) -> tuple[int, int, str]:
    compressor = _compressor(algorithm, level)
    digest = hashlib.sha256()
    read = written = 0
    try:
        reader = open(source, "rb")  # noqa: SIM115 -- closed below with the writer
    except OSError as exc:
        raise ExportError(os_error_message(exc, "read", source)) from None
    with reader:
        total = os.fstat(reader.fileno()).st_size
        try:
            writer = open(part, "wb")  # noqa: SIM115
        except OSError as exc:
            raise ExportError(os_error_message(exc, "create", part)) from None
        with writer:
            tracker.update("compressing", 0.0, f"compressing with {algorithm} level {level}")
            while True:
                # Cancellation of the calling task stops the loop between chunks.
                anyio.from_thread.check_cancelled()
                try:
                    chunk = reader.read(_CHUNK)
                except OSError as exc:
                    raise ExportError(os_error_message(exc, "read", source)) from None
                out = compressor.compress(chunk) if chunk else compressor.flush()
                if out:
                    try:
                        writer.write(out)
                    except OSError as exc:
                        raise ExportError(os_error_message(exc, "write", part)) from None
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
                writer.flush()
                os.fsync(writer.fileno())
            except OSError as exc:
                raise ExportError(os_error_message(exc, "write", part)) from None
    return read, written, digest.hexdigest()
