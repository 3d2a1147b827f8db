"""The one call most providers need: fetch a disk image and describe the export.

:func:`export_disk_image` (async, httpx) and :func:`export_disk_image_blocking` (any
client, through a :class:`~hypersdk.export.ByteSource`) share the plan (every argument
checked before anything is written, the file names), the download core and the
compression loop; only the driver differs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.from_thread
import anyio.to_thread
import attrs

from hypersdk._http import httpx
from hypersdk.errors import ConfigurationError
from hypersdk.export import _arguments as arg
from hypersdk.export._compress import (
    _codec,
    _Job,
    compress_fd,
    compression_level,
    compression_suffix,
)
from hypersdk.export._download import (
    DEFAULT_CHUNK_SIZE,
    _check_source,
    _commit,
    _Core,
    _fetch_async,
    _fetch_blocking,
    _Settings,
    _settings,
)
from hypersdk.export._formats import DISK_FORMATS
from hypersdk.export._image import DiskImage
from hypersdk.export._paths import export_file_path
from hypersdk.export._progress import ProgressTracker
from hypersdk.export._result import build_export_result
from hypersdk.models import ExportOptions, ExportResult

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hypersdk.export._retry import RetryPolicy
    from hypersdk.export._source import ByteSource
    from hypersdk.progress import ProgressReporter

__all__ = ["export_disk_image", "export_disk_image_blocking"]


@attrs.frozen(kw_only=True)
class _Plan:
    options: ExportOptions
    provider: str
    vm_id: str
    vm_name: str
    main: Path
    settings: _Settings  # for the download, to `main` or to the intermediate file
    compression: _Job | None
    started: float

    def download_share(self) -> tuple[float, float]:
        return (0.0, 60.0) if self.compression else (0.0, 99.0)


def _plan(
    options: object,
    *,
    provider: object,
    vm_id: object,
    vm_name: object,
    expected_sha256: object,
    expected_size: object,
    algorithm: object,
    overwrite: object,
    keep_partial: object,
    progress: object,
    retry: object,
    chunk_size: object,
) -> _Plan:
    """Check every argument, then choose the file names (creating ``output_path``)."""
    started = time.monotonic()
    if not isinstance(options, ExportOptions):
        raise ConfigurationError(f"options: must be an ExportOptions, got {type(options).__name__}")
    name = _codec(algorithm).name  # type: ignore[arg-type]
    level = compression_level(name, options.compression_level) if options.compress else 0
    # The model's own validators judge the identifying fields, before any file exists.
    ExportResult(
        provider=arg.text("provider", provider),
        vm_id=arg.text("vm_id", vm_id),
        vm_name=(name_of_vm := arg.text("vm_name", vm_name)),
        format=options.format,
        output_path=options.output_path,
    )
    checked_overwrite = arg.flag("overwrite", overwrite)
    fmt = options.format.casefold()
    # Validate the download's arguments against a stand-in path: nothing is chosen yet.
    probe = _settings(
        options.output_path,
        expected_sha256=expected_sha256,
        expected_size=expected_size,
        expected_format=fmt if fmt in DISK_FORMATS else None,
        overwrite=True,
        resume=True,
        keep_partial=keep_partial,
        progress=progress,
        retry=retry,
        chunk_size=chunk_size,
        provider=provider,
    )
    suffix = f"{fmt}.{compression_suffix(name)}" if options.compress else fmt
    main = export_file_path(
        options.output_path, name_of_vm, suffix=suffix, overwrite=checked_overwrite
    )
    compression = None
    fetched = main
    if options.compress:
        # The plain image is a part file named after the main one; it is compressed
        # from the open, locked file and never renamed into place.
        fetched = main.with_name(main.name + ".download")
        compression = _Job(
            source=fetched,
            destination=main,
            algorithm=name,
            level=level,
            overwrite=checked_overwrite,
        )
    settings = attrs.evolve(probe, destination=fetched, overwrite=checked_overwrite)
    return _Plan(
        options=options,
        provider=provider,  # type: ignore[arg-type]
        vm_id=vm_id,  # type: ignore[arg-type]
        vm_name=vm_name,  # type: ignore[arg-type]
        main=main,
        settings=settings,
        compression=compression,
        started=started,
    )


def _finish(
    plan: _Plan, core: _Core, tracker: ProgressTracker, check_cancelled: Callable[[], None]
) -> ExportResult:
    """Commit the download, or compress it into place; then describe the export (blocking)."""
    metadata: dict[str, str] = {}
    checksum, compressed = core.digest.hexdigest(), False
    if plan.compression is None:
        _commit(core)
    else:
        try:
            packed = compress_fd(
                core.part.fd, plan.compression, _section(tracker, (60.0, 99.0)), check_cancelled
            )
        finally:
            core.part.discard()
        checksum, compressed = packed.sha256, True
        metadata = {
            "image_sha256": core.digest.hexdigest(),
            "compression": packed.algorithm,
            "compression_level": str(packed.level),
        }
    export = build_export_result(
        provider=plan.provider,
        vm_id=plan.vm_id,
        vm_name=plan.vm_name,
        format=plan.options.format,
        output_path=plan.options.output_path,
        # By name: plan.main already starts with output_path, which may be relative.
        files=[plan.main.name],
        duration=time.monotonic() - plan.started,
        size=core.offset,
        compressed=compressed,
        checksum=checksum,
        metadata=metadata,
    )
    tracker.update("done", 100.0, f"exported {plan.vm_name} to {plan.main.name}")
    return export


async def export_disk_image(
    client: httpx.AsyncClient,
    url: DiskImage | str | httpx.URL,
    options: ExportOptions,
    *,
    provider: str,
    vm_id: str,
    vm_name: str,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    algorithm: str = "zstd",
    overwrite: bool = False,
    keep_partial: bool = False,
    headers: Mapping[str, str] | None = None,
    progress: ProgressReporter | None = None,
    retry: RetryPolicy | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> ExportResult:
    """Download a VM's disk image into ``options.output_path`` and return the result.

    Puts the toolkit together the way ``Provider.export_vm`` needs it: every argument
    is checked first (a bad one raises :class:`~hypersdk.ConfigurationError` naming
    it, and nothing is written); then a safe, non-colliding file name from ``vm_name``
    and ``options.format`` (:func:`export_file_path`); a verified, resumable
    :func:`download`; for the formats in :data:`DISK_FORMATS`, a check of the magic
    bytes; compression with ``algorithm`` at ``options.compression_level`` when
    ``options.compress`` is set (straight from the locked part file, so two exports to
    one name can never mix); and the :class:`~hypersdk.ExportResult` (``checksum`` is
    the SHA-256 of the main file as written; when compressed,
    ``metadata["image_sha256"]`` is the image's own). Progress runs through
    ``preparing``, ``downloading``, ``verifying``, ``compressing`` (if any) and
    ``done`` at 100.

    >>> async def export_vm(self, identifier, options, *, progress=None):  # doctest: +SKIP
    ...     vm = await self.get_vm(identifier)
    ...     url = await self._disk_url(vm)
    ...     return await export_disk_image(self._client, url, options, provider=self.type,
    ...                                    vm_id=vm.id, vm_name=vm.name, progress=progress)

    ``url`` may be a :class:`DiskImage`, which names the image's URL, headers and
    expected size and digest in one value; those four are then not passed beside it::

        image = DiskImage(url, headers=auth, expected_size=vm.disk_bytes)
        await export_disk_image(client, image, options, provider=..., vm_id=..., vm_name=...)

    Raises the errors of :func:`download` and :func:`compress_file`; on any failure or
    cancellation nothing is left in ``output_path`` (except the part file with
    ``keep_partial=True``, which a later call with the same name resumes).
    """
    image = _disk_image(
        url, headers=headers, expected_sha256=expected_sha256, expected_size=expected_size
    )
    if not isinstance(client, httpx.AsyncClient):
        raise ConfigurationError(
            f"client: must be an httpx.AsyncClient, got {type(client).__name__}"
        )
    plan = _plan(
        options,
        provider=provider,
        vm_id=vm_id,
        vm_name=vm_name,
        expected_sha256=image.expected_sha256,
        expected_size=image.expected_size,
        algorithm=algorithm,
        overwrite=overwrite,
        keep_partial=keep_partial,
        progress=progress,
        retry=retry,
        chunk_size=chunk_size,
    )
    tracker = ProgressTracker(progress)
    core = await _fetch_async(
        client,
        image.url,
        plan.settings,
        dict(image.headers),
        _section(tracker, plan.download_share()),
    )
    try:
        return await anyio.to_thread.run_sync(
            lambda: _finish(plan, core, tracker, anyio.from_thread.check_cancelled)
        )
    except BaseException:
        core.part.discard()
        raise


def _disk_image(
    url: object,
    *,
    headers: object,
    expected_sha256: object,
    expected_size: object,
) -> DiskImage:
    """``url`` as a :class:`DiskImage`, built from the loose keywords when it is not one."""
    if not isinstance(url, DiskImage):
        return DiskImage(
            url,
            headers=headers,
            expected_size=expected_size,
            expected_sha256=expected_sha256,
        )
    beside = [
        name
        for name, value in (
            ("headers", headers),
            ("expected_sha256", expected_sha256),
            ("expected_size", expected_size),
        )
        if value is not None
    ]
    if beside:
        raise ConfigurationError(
            f"{beside[0]}: the DiskImage already says it; pass it in the DiskImage, not beside it"
        )
    return url


def export_disk_image_blocking(
    source: ByteSource,
    options: ExportOptions,
    *,
    provider: str,
    vm_id: str,
    vm_name: str,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    algorithm: str = "zstd",
    overwrite: bool = False,
    keep_partial: bool = False,
    progress: ProgressReporter | None = None,
    retry: RetryPolicy | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> ExportResult:
    """:func:`export_disk_image` for a :class:`~hypersdk.BlockingProvider`.

    The same steps and guarantees, in the calling thread, reading the image through
    ``source`` (see :class:`ByteSource`; :class:`UrllibSource` needs no dependency)::

        def export_vm(self, identifier, options, *, progress=None):
            vm = self.get_vm(identifier)
            source = RequestsSource(self._session, self._disk_url(vm))
            return export_disk_image_blocking(source, options, provider=self.name,
                                              vm_id=vm.id, vm_name=vm.name,
                                              progress=progress)
    """
    _check_source(source)
    plan = _plan(
        options,
        provider=provider,
        vm_id=vm_id,
        vm_name=vm_name,
        expected_sha256=expected_sha256,
        expected_size=expected_size,
        algorithm=algorithm,
        overwrite=overwrite,
        keep_partial=keep_partial,
        progress=progress,
        retry=retry,
        chunk_size=chunk_size,
    )
    tracker = ProgressTracker(progress)
    core = _fetch_blocking(source, plan.settings, _section(tracker, plan.download_share()))
    try:
        return _finish(plan, core, tracker, lambda: None)
    except BaseException:
        core.part.discard()
        raise


def _section(tracker: ProgressTracker, share: tuple[float, float]) -> ProgressTracker:
    return ProgressTracker(tracker.section(*share))
