"""Building an ExportResult from the files an export wrote."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from typing import TYPE_CHECKING

from hypersdk._regular import open_regular
from hypersdk._validation import is_int_between, is_seconds, path_argument, shown
from hypersdk.errors import ConfigurationError, ExportError
from hypersdk.export import _arguments as arg
from hypersdk.models import ExportResult, ProviderType

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path


__all__ = ["build_export_result", "sha256_file"]


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file, read in chunks (blocking: use a worker thread)."""
    path = path_argument("path", path)
    if not is_int_between(chunk_size, 1, 1 << 30):
        raise ConfigurationError(
            f"chunk_size: must be an integer from 1 to {1 << 30}, got {shown(chunk_size)}"
        )
    digest = hashlib.sha256()
    try:
        with os.fdopen(open_regular(path), "rb") as file:  # never a FIFO or a device
            while block := file.read(chunk_size):
                digest.update(block)
    except OSError as exc:
        raise ExportError(
            f"cannot read {shown(str(path))} to checksum it: {exc.strerror or exc}"
        ) from None
    return digest.hexdigest()


def _inside(item: Path, base: Path, resolved_base: Path) -> str:
    """``item``'s path relative to the output folder, checking it is a file inside it."""
    # A relative item is relative to output_path; failing that, relative to the working
    # directory, which is how export_file_path returns a name in a relative output_path
    # ("out/web.raw" for output_path "out"): the same file must not be joined twice.
    candidates = [item] if item.is_absolute() else [base / item, item]
    found: Path | None = None
    for path in candidates:
        try:
            inside = path.resolve().relative_to(resolved_base)
        except (ValueError, OSError, RuntimeError):
            continue
        if found is None:
            found = inside
        try:
            if path.is_file():
                return inside.as_posix()
        except OSError:
            continue
    if found is None:
        raise ConfigurationError(
            f"files: {shown(str(item))} is not inside output_path {shown(str(base))}"
        )
    raise ConfigurationError(f"files: {shown(str(item))} does not exist or is not a file")


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
    base = path_argument("output_path", output_path)
    if isinstance(files, str | bytes | os.PathLike) or not hasattr(files, "__iter__"):
        raise ConfigurationError(f"files: must be a sequence of paths, got {type(files).__name__}")
    items = [path_argument("files", item) for item in files]
    if not items:
        raise ConfigurationError("files: must name at least the main file, got none")
    if not (isinstance(duration, timedelta) or is_seconds(duration)):
        raise ConfigurationError(
            "duration: must be a timedelta or a number of seconds from 0 to a year, "
            f"got {shown(duration)}"
        )
    if size is not None and not is_int_between(size, 0):
        raise ConfigurationError(f"size: must be an integer >= 0 or None, got {shown(size)}")
    arg.flag("compressed", compressed)
    try:
        resolved_base = base.resolve()
    except (OSError, RuntimeError) as exc:
        raise ConfigurationError(
            f"output_path: cannot be resolved ({type(exc).__name__})"
        ) from None
    relative = [_inside(item, base, resolved_base) for item in items]
    if checksum is not None:
        arg.sha256_or_none("checksum", checksum)
    main = base / relative[0]
    try:
        on_disk = main.stat().st_size
    except OSError as exc:
        raise ExportError(f"cannot read {shown(str(main))}: {exc.strerror or exc}") from None
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    if not seconds >= 0:
        raise ConfigurationError(f"duration: must be >= 0 seconds, got {shown(duration)}")
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
