"""Building an ExportResult from the files an export wrote."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from typing import TYPE_CHECKING

from hypersdk._validation import is_int_between, is_seconds
from hypersdk.errors import ConfigurationError, ExportError
from hypersdk.export import _arguments as arg
from hypersdk.models import ExportResult, ProviderType

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


# timedelta(seconds=...) overflows long before float does.
_MAX_DURATION_SECONDS = 1e15


__all__ = ["build_export_result", "sha256_file"]


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file, read in chunks (blocking: use a worker thread)."""
    path = arg.path_argument("path", path)
    if not is_int_between(chunk_size, 1):
        raise ConfigurationError(f"chunk_size: must be an integer >= 1, got {chunk_size!r}")
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as file:
            while block := file.read(chunk_size):
                digest.update(block)
    except OSError as exc:
        raise ExportError(
            f"cannot read {os.fspath(path)!r} to checksum it: {exc.strerror or exc}"
        ) from None
    return digest.hexdigest()


def build_export_result(
    *,
    provider: str,
    vm_id: str,
    vm_name: str,
    format: str,
    output_path: str | os.PathLike[str],
    files: Sequence[str | os.PathLike[str]],
    duration: timedelta | float,
    size: int | None = None,
    compressed: bool = False,
    checksum: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> ExportResult:
    """Describe an export from the files it wrote.

    ``files`` are absolute or relative to ``output_path``; the first is the main file.
    They are stored relative to ``output_path`` and must exist inside it. ``size`` is the
    uncompressed size of the image: pass it when the main file is compressed (the
    download reports it); by default it is the main file's size. With ``compressed``,
    ``compressed_size`` is the main file's size on disk. ``checksum`` is the main file's
    SHA-256 hex digest; when omitted the file is read and hashed here, which blocks, so
    pass the digest the download or compression step already computed.

    >>> build_export_result(provider="aws", vm_id="i-1", vm_name="web", format="vmdk",
    ...     output_path=out, files=[out / "web.vmdk"], duration=12.5,
    ...     checksum=download.sha256)  # doctest: +SKIP

    Raises:
        ConfigurationError: no files, a file outside ``output_path`` or missing, or a
            negative duration.
    """
    base = arg.path_argument("output_path", output_path)
    if isinstance(files, str | bytes | os.PathLike) or not hasattr(files, "__iter__"):
        raise ConfigurationError(f"files: must be a sequence of paths, got {type(files).__name__}")
    items = [arg.path_argument("files", item) for item in files]
    if not items:
        raise ConfigurationError("files: must name at least the main file, got none")
    if not (isinstance(duration, timedelta) or is_seconds(duration, at_most=_MAX_DURATION_SECONDS)):
        raise ConfigurationError(
            f"duration: must be a timedelta or a number of seconds >= 0, got {duration!r}"
        )
    if size is not None and not is_int_between(size, 0):
        raise ConfigurationError(f"size: must be an integer >= 0 or None, got {size!r}")
    arg.flag("compressed", compressed)
    try:
        resolved_base = base.resolve()
    except (OSError, RuntimeError) as exc:
        raise ConfigurationError(
            f"output_path: cannot be resolved ({type(exc).__name__})"
        ) from None
    relative: list[str] = []
    for item in items:
        path = item if item.is_absolute() else base / item
        try:
            inside = path.resolve().relative_to(resolved_base)
        except (ValueError, OSError, RuntimeError):
            raise ConfigurationError(
                f"files: {os.fspath(item)!r} is not inside output_path {str(base)!r}"
            ) from None
        if not path.is_file():
            raise ConfigurationError(f"files: {os.fspath(item)!r} does not exist or is not a file")
        relative.append(inside.as_posix())
    if checksum is not None:
        arg.sha256_or_none("checksum", checksum)
    main = base / relative[0]
    try:
        on_disk = main.stat().st_size
    except OSError as exc:
        raise ExportError(f"cannot read {str(main)!r}: {exc.strerror or exc}") from None
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    if not seconds >= 0:
        raise ConfigurationError(f"duration: must be >= 0 seconds, got {duration!r}")
    return ExportResult(
        provider=ProviderType(provider),
        vm_id=vm_id,
        vm_name=vm_name,
        format=format,
        output_path=base,
        files=tuple(relative),
        size=on_disk if size is None else size,
        compressed_size=on_disk if compressed else 0,
        checksum=(checksum or sha256_file(main)).lower(),
        duration=timedelta(seconds=seconds),
        metadata=metadata or {},
    )
