"""The compression codecs hypersdk writes: one table, so adding an algorithm is one edit.

Each :class:`Codec` row says everything the rest of the package needs to know about an
algorithm: the name users pass, the file suffix, the level range and what level ``0``
means, how to start a streaming compressor, and how to recognise and read its output.
:mod:`hypersdk.export` compresses with it, :class:`~hypersdk.ExportOptions` takes its
upper level bound from it, and the conformance suite recognises a toolkit-compressed
export by it. The first row is the toolkit's default.

This module sits at the bottom of the package (it imports nothing from hypersdk), so the
models can read it without reaching up into the export toolkit.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

import attrs

if TYPE_CHECKING:
    import types
    from collections.abc import Mapping

__all__ = ["CODECS", "MAX_LEVEL", "Codec", "Compressor"]


class Compressor(Protocol):
    """A streaming compressor: feed it chunks, then flush once at the end."""

    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


@attrs.frozen(kw_only=True)
class Codec:
    """One compression algorithm: its name, suffix, levels, and how to write and read it."""

    name: str
    suffix: str
    lowest_level: int
    highest_level: int
    default_level: int
    magic: bytes
    compressor: Callable[[int], Compressor]
    decompress: Callable[[bytes], bytes]


def _gzip_compressor(level: int) -> Compressor:
    # wbits 16 + 15 writes a gzip header and trailer, readable by gunzip.
    return zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)


def _gzip_decompress(data: bytes) -> bytes:
    import gzip  # only the conformance suite reads compressed data

    return gzip.decompress(data)  # every member, as gunzip reads them


def _zstd() -> types.ModuleType:
    # Imported on first use, so `import hypersdk` does not load the zstd library.
    if sys.version_info >= (3, 14):
        from compression import zstd
    else:
        from backports import zstd
    return zstd


def _zstd_compressor(level: int) -> Compressor:
    compressor: Compressor = _zstd().ZstdCompressor(level=level)
    return compressor


def _zstd_decompress(data: bytes) -> bytes:
    return bytes(_zstd().decompress(data))


_TABLE: Final = (
    # zstd's negative "fast" levels are left out: 0 already means "the default".
    Codec(
        name="zstd",
        suffix="zst",
        lowest_level=1,
        highest_level=22,
        default_level=3,
        magic=b"\x28\xb5\x2f\xfd",
        compressor=_zstd_compressor,
        decompress=_zstd_decompress,
    ),
    Codec(
        name="gzip",
        suffix="gz",
        lowest_level=1,
        highest_level=9,
        default_level=6,
        magic=b"\x1f\x8b",
        compressor=_gzip_compressor,
        decompress=_gzip_decompress,
    ),
)

CODECS: Final[Mapping[str, Codec]] = {codec.name: codec for codec in _TABLE}
"""Codec by name, in table order (the first is the default)."""

MAX_LEVEL: Final = max(codec.highest_level for codec in _TABLE)
"""The highest level any codec accepts: the bound :class:`~hypersdk.ExportOptions` checks."""
