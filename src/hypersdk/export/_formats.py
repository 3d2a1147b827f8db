"""Disk image formats recognised from their magic bytes."""

from __future__ import annotations

import os
from typing import Final

from hypersdk._regular import open_regular
from hypersdk._validation import path_argument, shown
from hypersdk.errors import ConfigurationError, ExportError

__all__ = ["DISK_FORMATS", "detect_format", "detect_file_format", "check_file_format"]

DISK_FORMATS: Final = ("qcow2", "vmdk", "vhd", "vhdx", "raw")
"""The formats :func:`detect_format` can tell apart (``raw`` is "none of the others")."""

# How much of the start of a file detection needs: a VMDK descriptor file is small text
# whose "# Disk DescriptorFile" line may follow a few comment lines.
HEADER_BYTES: Final = 4096
# A VHD (fixed or dynamic) ends with a 512-byte footer; very old images use 511 bytes.
FOOTER_BYTES: Final = 512

_QCOW = b"QFI\xfb"
_VMDK_SPARSE = (b"KDMV", b"COWD")  # hosted sparse extent, ESX "COWD" sparse extent
_VMDK_DESCRIPTOR = b"# disk descriptorfile"
_VHDX = b"vhdxfile"
_VHD = b"conectix"


def _data(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ConfigurationError(
            f"{name}: must be bytes (the image's first or last bytes), got {type(value).__name__}"
        )
    return bytes(value)


def detect_format(header: bytes, footer: bytes = b"") -> str:
    r"""Name the disk image format of data from its first and last bytes.

    ``header`` should be the first :data:`HEADER_BYTES` (4 KiB) of the image and ``footer``
    its last 512 bytes (needed for fixed VHDs, whose only signature is the ``conectix``
    footer at the very end). Returns one of :data:`DISK_FORMATS`; anything unrecognised
    is ``"raw"``, so check that the answer is what you asked for, not that it is known.

    >>> detect_format(b"QFI\xfb\x00\x00\x00\x03")
    'qcow2'

    Raises:
        ConfigurationError: ``header`` or ``footer`` is not bytes.
    """
    header = _data("header", header)
    footer = _data("footer", footer)
    if header.startswith(_QCOW):
        return "qcow2"
    if header.startswith(_VHDX):
        return "vhdx"
    if header.startswith(_VMDK_SPARSE):
        return "vmdk"
    # A dynamic VHD starts with a copy of its footer.
    if header.startswith(_VHD):
        return "vhd"
    if _VMDK_DESCRIPTOR in header[:HEADER_BYTES].lower():
        return "vmdk"
    tail = footer[-FOOTER_BYTES:]
    if tail.startswith(_VHD) or tail[1:].startswith(_VHD):
        return "vhd"
    return "raw"


def detect_file_format(path: str | os.PathLike[str]) -> str:
    """Name the disk image format of the file at ``path`` (see :func:`detect_format`).

    Reads at most 4.5 KiB. Raises :class:`~hypersdk.ExportError` when the file cannot
    be read, :class:`~hypersdk.ConfigurationError` when ``path`` is not a path.
    """
    path = path_argument("path", path)
    try:
        # Never a FIFO or a device a neighbour left at the name: open_regular refuses them.
        with os.fdopen(open_regular(path), "rb") as file:
            header = file.read(HEADER_BYTES)
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - FOOTER_BYTES))
            footer = file.read(FOOTER_BYTES)
    except OSError as exc:
        raise ExportError(
            f"cannot read {shown(str(path))} to detect its format: {exc.strerror or exc}"
        ) from None
    return detect_format(header, footer)


def check_file_format(path: str | os.PathLike[str], expected: str) -> str:
    """Check that the file at ``path`` is a ``expected`` image; return the detected format.

    ``expected`` is compared ignoring case. Because ``raw`` means "no known signature",
    a file of a known format is not accepted as raw, and vice versa.

    Raises:
        ConfigurationError: ``expected`` is not one of :data:`DISK_FORMATS`, or ``path``
            is not a path.
        ExportError: the file is another format (the message names both).
    """
    wanted = expected.casefold() if isinstance(expected, str) else None  # type: ignore[redundant-expr]
    if wanted not in DISK_FORMATS:
        raise ConfigurationError(
            f"expected: must be one of {', '.join(DISK_FORMATS)}, got {shown(expected)}"
        )
    path = path_argument("path", path)
    found = detect_file_format(path)
    if found != wanted:
        raise ExportError(
            f"{shown(path.name)} is a {found} image, not the {wanted} "
            "that was asked for; check the export format the provider requested"
        )
    return found
