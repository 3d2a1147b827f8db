"""The export toolkit: what a provider needs to write a VM export correctly.

Fetching a large disk image well takes more than ``client.get``: a file name that
cannot escape the output directory, a streaming download that is hashed as it arrives,
resumed when the connection drops and retried when the API hiccups, a file that appears
only when complete and verified, optional compression, honest progress. Each piece is
a function here; :func:`export_disk_image` chains them for the common case::

    from hypersdk.export import export_disk_image

    result = await export_disk_image(
        client, disk_url, options, provider="proxmox", vm_id=vm.id, vm_name=vm.name,
        expected_sha256=digest, progress=progress,
    )

A :class:`~hypersdk.BlockingProvider` on another HTTP stack uses the blocking twins
(:func:`export_disk_image_blocking`, :func:`download_blocking`,
:func:`compress_file_blocking`) with a :class:`ByteSource`: :class:`UrllibSource`, or
ten lines over its own client. They share one core with the async functions.

The toolkit is a library the provider calls; it never calls back into plugins.
Retries are logged on the ``hypersdk.export`` logger.
"""

from __future__ import annotations

from hypersdk.export._compress import (
    COMPRESSION_ALGORITHMS,
    CompressionResult,
    compress_file,
    compress_file_blocking,
    compression_level,
    compression_suffix,
)
from hypersdk.export._download import (
    DEFAULT_CHUNK_SIZE,
    DownloadResult,
    download,
    download_blocking,
)
from hypersdk.export._export import export_disk_image, export_disk_image_blocking
from hypersdk.export._formats import (
    DISK_FORMATS,
    check_file_format,
    detect_file_format,
    detect_format,
)
from hypersdk.export._image import DiskImage
from hypersdk.export._paths import DEFAULT_MAX_NAME_BYTES, export_file_path, safe_filename
from hypersdk.export._progress import ProgressTracker
from hypersdk.export._result import build_export_result, sha256_file
from hypersdk.export._retry import RetryPolicy
from hypersdk.export._source import ByteSource, SourceResponse, UrllibSource

__all__ = [
    # the whole job
    "export_disk_image",
    "export_disk_image_blocking",
    "DiskImage",
    # file names
    "safe_filename",
    "export_file_path",
    "DEFAULT_MAX_NAME_BYTES",
    # downloads
    "download",
    "DownloadResult",
    "RetryPolicy",
    "DEFAULT_CHUNK_SIZE",
    # blocking downloads over any HTTP client
    "download_blocking",
    "ByteSource",
    "SourceResponse",
    "UrllibSource",
    # compression
    "compress_file",
    "compress_file_blocking",
    "CompressionResult",
    "compression_level",
    "compression_suffix",
    "COMPRESSION_ALGORITHMS",
    # formats
    "detect_format",
    "detect_file_format",
    "check_file_format",
    "DISK_FORMATS",
    # progress and results
    "ProgressTracker",
    "build_export_result",
    "sha256_file",
]
