"""compress_file and the per-algorithm level rules."""

from __future__ import annotations

import gzip
import os
import sys
import time
from typing import TYPE_CHECKING

import anyio
import pytest

from hypersdk import ConfigurationError, ExportError, RecordingReporter
from hypersdk.export import (
    COMPRESSION_ALGORITHMS,
    compress_file,
    compression_level,
    compression_suffix,
    sha256_file,
)
from hypersdk.export import _compress as compress_module

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

if TYPE_CHECKING:
    from pathlib import Path


def _decompress(algorithm: str, data: bytes) -> bytes:
    return gzip.decompress(data) if algorithm == "gzip" else zstd.decompress(data)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.raw"
    # Compressible but not trivially: 3 MiB of repeating text and a random tail.
    path.write_bytes(b"hypersdk export " * (3 << 16) + os.urandom(100_000))
    return path


@pytest.mark.anyio
@pytest.mark.parametrize("algorithm", COMPRESSION_ALGORITHMS)
@pytest.mark.parametrize("level", [0, 1, 9])
async def test_round_trip_and_sizes(image: Path, algorithm: str, level: int) -> None:
    reporter = RecordingReporter()
    target = image.with_name(f"disk.raw.{compression_suffix(algorithm)}")
    result = await compress_file(image, target, algorithm=algorithm, level=level, progress=reporter)
    packed = target.read_bytes()
    assert _decompress(algorithm, packed) == image.read_bytes()
    assert result.size == image.stat().st_size
    assert result.compressed_size == len(packed) < result.size
    assert result.sha256 == sha256_file(target)
    assert result.level == compression_level(algorithm, level)
    assert sorted(p.name for p in image.parent.iterdir()) == sorted(["disk.raw", target.name])
    assert reporter.phases == ["compressing"]
    assert reporter.percents == sorted(reporter.percents)


@pytest.mark.parametrize(
    ("algorithm", "level", "expected"),
    [("gzip", 0, 6), ("gzip", 1, 1), ("gzip", 9, 9), ("zstd", 0, 3), ("zstd", 22, 22)],
)
def test_levels(algorithm: str, level: int, expected: int) -> None:
    assert compression_level(algorithm, level) == expected


@pytest.mark.parametrize(
    ("algorithm", "level", "message"),
    [
        ("gzip", 10, "gzip accepts 0 \\(default\\) or 1-9, got 10"),
        ("gzip", -1, "gzip accepts"),
        ("zstd", 23, "zstd accepts 0 \\(default\\) or 1-22, got 23"),
        ("zstd", True, "zstd accepts"),
    ],
)
def test_bad_levels_name_the_parameter(algorithm: str, level: int, message: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"^compression_level: {message}"):
        compression_level(algorithm, level)


def test_unknown_algorithm() -> None:
    with pytest.raises(ConfigurationError, match=r"^algorithm: must be one of zstd, gzip"):
        compression_level("lz4", 0)


@pytest.mark.anyio
async def test_existing_destination_is_kept(image: Path) -> None:
    target = image.with_name("disk.raw.zst")
    target.write_bytes(b"precious")
    with pytest.raises(ExportError, match="already exists"):
        await compress_file(image, target)
    assert target.read_bytes() == b"precious"
    assert not target.with_name("disk.raw.zst.part").exists()


@pytest.mark.anyio
async def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="cannot read"):
        await compress_file(tmp_path / "missing", tmp_path / "out.zst")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_cancellation_leaves_no_output(image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = compress_module._compressor

    class Slow:
        """Makes every chunk take a millisecond, so the deadline lands mid-file."""

        def __init__(self, algorithm: str, level: int) -> None:
            self._inner = real(algorithm, level)

        def compress(self, data: bytes) -> bytes:
            time.sleep(0.001)
            return self._inner.compress(data)

        def flush(self) -> bytes:
            return self._inner.flush()

    monkeypatch.setattr(compress_module, "_CHUNK", 4096)
    monkeypatch.setattr(compress_module, "_compressor", Slow)
    target = image.with_name("disk.raw.gz")
    with anyio.move_on_after(0.02) as scope:
        await compress_file(image, target, algorithm="gzip", level=9)
    assert scope.cancelled_caught
    assert sorted(p.name for p in image.parent.iterdir()) == ["disk.raw"]
