"""The one call most providers need: fetch a disk image and describe the export."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from hypersdk.export._compress import compress_file, compression_level, compression_suffix
from hypersdk.export._download import DEFAULT_CHUNK_SIZE, download
from hypersdk.export._files import part_path, remove_quietly
from hypersdk.export._formats import DISK_FORMATS
from hypersdk.export._paths import export_file_path
from hypersdk.export._progress import ProgressTracker
from hypersdk.export._result import build_export_result

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hypersdk._http import httpx
    from hypersdk.export._retry import RetryPolicy
    from hypersdk.models import ExportOptions, ExportResult
    from hypersdk.progress import ProgressReporter

__all__ = ["export_disk_image"]


async def export_disk_image(
    client: httpx.AsyncClient,
    url: str | httpx.URL,
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

    Puts the toolkit together the way ``Provider.export_vm`` needs it: a safe,
    non-colliding file name from ``vm_name`` and ``options.format``
    (:func:`export_file_path`); a verified, resumable :func:`download`; for the formats
    in :data:`DISK_FORMATS`, a check of the magic bytes; compression with ``algorithm``
    at ``options.compression_level`` when ``options.compress`` is set; and the
    :class:`~hypersdk.ExportResult` (``checksum`` is the SHA-256 of the main file as
    written; when compressed, ``metadata["image_sha256"]`` is the image's own).
    Progress runs through ``preparing``, ``downloading``, ``verifying``,
    ``compressing`` (if any) and ``done`` at 100.

    >>> async def export_vm(self, identifier, options, *, progress=None):  # doctest: +SKIP
    ...     vm = await self.get_vm(identifier)
    ...     url = await self._disk_url(vm)
    ...     return await export_disk_image(self._client, url, options, provider=self.type,
    ...                                    vm_id=vm.id, vm_name=vm.name, progress=progress)

    Raises the errors of :func:`download` and :func:`compress_file`; on any failure or
    cancellation nothing is left in ``output_path`` (except the part file with
    ``keep_partial=True``, which a later call with the same name resumes).
    """
    started = time.monotonic()
    fmt = options.format.casefold()
    level = compression_level(algorithm, options.compression_level) if options.compress else 0
    suffix = f"{fmt}.{compression_suffix(algorithm)}" if options.compress else fmt
    main = export_file_path(options.output_path, vm_name, suffix=suffix, overwrite=overwrite)
    tracker = ProgressTracker(progress)
    # While compressing, the plain image is a temporary file named after the main one.
    fetched = main.with_name(main.name + ".download") if options.compress else main
    try:
        result = await download(
            client,
            url,
            fetched,
            expected_sha256=expected_sha256,
            expected_size=expected_size,
            expected_format=fmt if fmt in DISK_FORMATS else None,
            overwrite=overwrite or options.compress,
            keep_partial=keep_partial,
            headers=headers,
            progress=tracker.section(0.0, 60.0 if options.compress else 99.0),
            retry=retry,
            chunk_size=chunk_size,
            provider=provider,
        )
        checksum, compressed = result.sha256, False
        metadata: dict[str, str] = {}
        if options.compress:
            packed = await compress_file(
                fetched,
                main,
                algorithm=algorithm,
                level=level,
                overwrite=overwrite,
                progress=tracker.section(60.0, 99.0),
            )
            remove_quietly(fetched)
            checksum, compressed = packed.sha256, True
            metadata = {
                "image_sha256": result.sha256,
                "compression": packed.algorithm,
                "compression_level": str(packed.level),
            }
    except BaseException:
        if options.compress:
            remove_quietly(fetched)
            remove_quietly(part_path(main))
        raise
    export = build_export_result(
        provider=provider,
        vm_id=vm_id,
        vm_name=vm_name,
        format=options.format,
        output_path=options.output_path,
        files=[main],
        duration=time.monotonic() - started,
        size=result.size,
        compressed=compressed,
        checksum=checksum,
        metadata=metadata,
    )
    tracker.update("done", 100.0, f"exported {vm_name} to {main.name}")
    return export
