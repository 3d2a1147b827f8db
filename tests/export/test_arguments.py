"""Wrong types and hostile values to every public function of the toolkit's I/O modules.

Only a HyperSDKError may escape: no TypeError, AttributeError, OverflowError or
RecursionError, whatever a caller without a type checker passes.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import pytest
import stamina

from hypersdk import ExportOptions, HyperSDKError
from hypersdk.export import (
    ProgressTracker,
    RetryPolicy,
    UrllibSource,
    build_export_result,
    compress_file,
    compress_file_blocking,
    compression_level,
    compression_suffix,
    download,
    download_blocking,
    export_disk_image,
    export_disk_image_blocking,
    sha256_file,
)

from .conftest import FAST_RETRY

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from hypersdk._http import httpx

HOSTILE: tuple[object, ...] = (
    None,
    5,
    -1,
    2**100,
    float("nan"),
    float("inf"),
    True,
    "",
    "\0",
    "\ud800",
    b"bytes",
    [],
    {},
    {1: "a"},
    object(),
)


def _valid_arguments(
    tmp_path: Path, client: httpx.AsyncClient
) -> dict[str, tuple[Callable[..., object], dict[str, object]]]:
    image = tmp_path / "image.raw"
    image.write_bytes(b"\0" * 4096)
    url = "http://127.0.0.1:9/disk"  # nothing listens: connection refused at once
    options = ExportOptions(output_path=tmp_path / "out", format="raw")
    return {
        "download": (
            download,
            {"client": client, "url": url, "destination": tmp_path / "d", "retry": FAST_RETRY},
        ),
        "download_blocking": (
            download_blocking,
            {"source": UrllibSource(url), "destination": tmp_path / "d", "retry": FAST_RETRY},
        ),
        "export_disk_image": (
            export_disk_image,
            {
                "client": client,
                "url": url,
                "options": options,
                "provider": "p",
                "vm_id": "1",
                "vm_name": "w",
                "retry": FAST_RETRY,
            },
        ),
        "export_disk_image_blocking": (
            export_disk_image_blocking,
            {
                "source": UrllibSource(url),
                "options": options,
                "provider": "p",
                "vm_id": "1",
                "vm_name": "w",
                "retry": FAST_RETRY,
            },
        ),
        "compress_file": (compress_file, {"source": image, "destination": tmp_path / "c.zst"}),
        "compress_file_blocking": (
            compress_file_blocking,
            {"source": image, "destination": tmp_path / "c.zst"},
        ),
        "compression_level": (compression_level, {"algorithm": "gzip", "level": 1}),
        "compression_suffix": (compression_suffix, {"algorithm": "gzip"}),
        "sha256_file": (sha256_file, {"path": image}),
        "build_export_result": (
            build_export_result,
            {
                "provider": "p",
                "vm_id": "1",
                "vm_name": "w",
                "format": "raw",
                "output_path": tmp_path,
                "files": [image],
                "duration": 1.0,
            },
        ),
        "ProgressTracker": (ProgressTracker, {"reporter": None}),
        "ProgressTracker.update": (
            ProgressTracker(None, min_interval=0).update,
            {"phase": "p", "percent": 1.0, "message": "m"},
        ),
        "ProgressTracker.section": (ProgressTracker(None).section, {"start": 0.0, "end": 1.0}),
        "RetryPolicy": (RetryPolicy, {"attempts": 2}),
        "UrllibSource": (UrllibSource, {"url": url}),
    }


FUNCTIONS = [
    "download",
    "download_blocking",
    "export_disk_image",
    "export_disk_image_blocking",
    "compress_file",
    "compress_file_blocking",
    "compression_level",
    "compression_suffix",
    "sha256_file",
    "build_export_result",
    "ProgressTracker",
    "ProgressTracker.update",
    "ProgressTracker.section",
    "RetryPolicy",
    "UrllibSource",
]


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    # retry=None is a valid value: it must not make the test wait the default backoff.
    stamina.set_testing(True, attempts=1)
    yield
    stamina.set_testing(False)


@pytest.mark.anyio
@pytest.mark.parametrize("name", FUNCTIONS)
async def test_only_hypersdk_errors_escape(
    name: str, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    function, valid = _valid_arguments(tmp_path, client)[name]
    parameters = list(valid)
    escaped: list[str] = []
    for parameter in parameters:
        for value in HOSTILE:
            call = {**valid, parameter: value}
            try:
                outcome = function(**call)
                if inspect.isawaitable(outcome):
                    await outcome
            except HyperSDKError:
                pass
            except Exception as exc:
                escaped.append(f"{parameter}={value!r}: {type(exc).__name__}: {exc}")
    assert not escaped, "\n".join(escaped)
