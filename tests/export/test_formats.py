"""Disk format detection from magic bytes."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import pytest

from hypersdk import ConfigurationError, ExportError
from hypersdk.export import DISK_FORMATS, check_file_format, detect_file_format, detect_format

if TYPE_CHECKING:
    from pathlib import Path

_QCOW2 = b"QFI\xfb" + struct.pack(">I", 3) + bytes(100)
_VMDK_SPARSE = b"KDMV" + struct.pack("<I", 1) + bytes(500)
_VMDK_DESCRIPTOR = (
    b"# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
    b'createType="monolithicFlat"\nRW 2048 FLAT "disk-flat.vmdk" 0\n'
)
_VHDX = b"vhdxfile" + "Microsoft Windows".encode("utf-16-le") + bytes(100)
_VHD_FOOTER = b"conectix" + struct.pack(">II", 2, 0x10000) + bytes(512 - 16)


@pytest.mark.parametrize(
    ("header", "footer", "expected"),
    [
        (_QCOW2, b"", "qcow2"),
        (_VMDK_SPARSE, b"", "vmdk"),
        (b"COWD" + bytes(100), b"", "vmdk"),
        (_VMDK_DESCRIPTOR, b"", "vmdk"),
        (b"# comment\n" * 5 + _VMDK_DESCRIPTOR, b"", "vmdk"),
        (_VHDX, b"", "vhdx"),
        (_VHD_FOOTER, b"", "vhd"),  # dynamic VHD: a copy of the footer comes first
        (bytes(4096), _VHD_FOOTER, "vhd"),  # fixed VHD: only the footer says so
        (bytes(4096), _VHD_FOOTER[:511], "vhd"),  # pre-Virtual PC 2004 511-byte footer
        (bytes(4096), bytes(512), "raw"),
        (b"\xebc\x90" + bytes(507) + b"\x55\xaa", b"", "raw"),  # an MBR disk is raw
        (b"", b"", "raw"),
        (b"QFI", b"", "raw"),  # too short to be qcow2
    ],
)
def test_detect_format(header: bytes, footer: bytes, expected: str) -> None:
    assert detect_format(header, footer) == expected
    assert expected in DISK_FORMATS


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (_QCOW2 + bytes(10_000), "qcow2"),
        (bytes(8192) + _VHD_FOOTER, "vhd"),
        (_VMDK_DESCRIPTOR, "vmdk"),
        (bytes(10), "raw"),
    ],
)
def test_detect_file_format(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "image"
    path.write_bytes(content)
    assert detect_file_format(path) == expected
    assert check_file_format(path, expected.upper()) == expected


def test_check_file_format_names_both_formats(tmp_path: Path) -> None:
    path = tmp_path / "image"
    path.write_bytes(_QCOW2)
    with pytest.raises(ExportError, match="is a qcow2 image, not the vmdk"):
        check_file_format(path, "vmdk")
    with pytest.raises(ExportError, match="is a qcow2 image, not the raw"):
        check_file_format(path, "raw")


def test_check_file_format_rejects_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"^expected: must be one of"):
        check_file_format(tmp_path / "x", "iso")


def test_unreadable_file_is_an_export_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="cannot read"):
        detect_file_format(tmp_path / "missing")
