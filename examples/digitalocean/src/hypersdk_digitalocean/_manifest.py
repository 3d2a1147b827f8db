"""The exported file: a JSON manifest of the droplet and its snapshot, written atomically."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Final

from hypersdk import ConfigurationError, ExportError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

__all__ = ["MANIFEST_KIND", "MANIFEST_SUFFIX", "build_manifest", "write_manifest"]

MANIFEST_KIND: Final = "hypersdk-digitalocean/snapshot-manifest"
MANIFEST_VERSION: Final = 1
MANIFEST_SUFFIX: Final = "snapshot.json"


def build_manifest(
    *,
    droplet: Mapping[str, object],
    snapshot: Mapping[str, object],
    action: Mapping[str, object],
    exported_at: datetime,
    exported_by: str,
    shutdown: str,
) -> bytes:
    """Return the manifest: enough to find the snapshot and recreate the droplet from it.

    ``recreate`` is the body of a ``POST /v2/droplets`` that boots a copy of the
    droplet from the snapshot, in the same region, size, VPC and tags.
    """
    region = droplet.get("region")
    region_slug = region.get("slug") if isinstance(region, dict) else droplet.get("region_slug")
    image = droplet.get("image")
    image = image if isinstance(image, dict) else {}
    features = droplet.get("features")
    features = features if isinstance(features, list) else []
    document = {
        "kind": MANIFEST_KIND,
        "manifest_version": MANIFEST_VERSION,
        "exported_at": exported_at.isoformat(),
        "exported_by": exported_by,
        "shutdown": shutdown,
        "droplet": {
            "id": droplet.get("id"),
            "name": droplet.get("name"),
            "status": droplet.get("status"),
            "region": region_slug,
            "size_slug": droplet.get("size_slug"),
            "vcpus": droplet.get("vcpus"),
            "memory": droplet.get("memory"),
            "disk": droplet.get("disk"),
            "image": {key: image.get(key) for key in ("id", "slug", "name", "distribution")},
            "tags": droplet.get("tags") or [],
            "features": features,
            "vpc_uuid": droplet.get("vpc_uuid"),
            "volume_ids": droplet.get("volume_ids") or [],
            "created_at": droplet.get("created_at"),
        },
        "snapshot": {
            key: snapshot.get(key)
            for key in (
                "id",
                "name",
                "type",
                "size_gigabytes",
                "min_disk_size",
                "regions",
                "created_at",
            )
        },
        "action": {key: action.get(key) for key in ("id", "status", "started_at", "completed_at")},
        "recreate": {
            "method": "POST",
            "path": "/v2/droplets",
            "body": {
                "name": droplet.get("name"),
                "region": region_slug,
                "size": droplet.get("size_slug"),
                "image": snapshot.get("id"),
                "tags": droplet.get("tags") or [],
                "vpc_uuid": droplet.get("vpc_uuid"),
                "ipv6": "ipv6" in features,
                "backups": "backups" in features,
                "monitoring": "monitoring" in features,
            },
        },
    }
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# Until hypersdk's export toolkit provides it: one file-name component that cannot
# escape the output directory, whatever the droplet is called.
_UNSAFE: Final = re.compile(r"[^\w.\-]", re.UNICODE)
_MAX_STEM_BYTES: Final = 150


def _safe_stem(name: str, fallback: str) -> str:
    text = unicodedata.normalize("NFC", name)
    text = _UNSAFE.sub("_", text).strip(". _")
    encoded = text.encode("utf-8")[:_MAX_STEM_BYTES]
    text = encoded.decode("utf-8", errors="ignore").rstrip(". ")
    return text or fallback


def write_manifest(directory: Path, name: str, fallback: str, data: bytes) -> Path:
    """Write ``data`` to a new file named after ``name`` inside ``directory``, atomically.

    The bytes go to a hidden temporary file first, are flushed to disk, then linked to the
    final name, which never replaces an existing file (``-1``, ``-2``... are appended).
    Blocking; call it in a worker thread.

    Raises:
        ConfigurationError: ``directory`` exists and is not a directory.
        ExportError: the file cannot be written.
    """
    if directory.exists() and not directory.is_dir():
        raise ConfigurationError(
            f"ExportOptions.output_path must be a directory, got the file {str(directory)!r}"
        )
    stem = _safe_stem(name, fallback)
    part: Path | None = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, part_name = tempfile.mkstemp(dir=directory, prefix=".", suffix=".part")
        part = Path(part_name)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        for counter in range(10_000):
            candidate = directory / (
                f"{stem}.{MANIFEST_SUFFIX}"
                if counter == 0
                else f"{stem}-{counter}.{MANIFEST_SUFFIX}"
            )
            try:
                os.link(part, candidate)  # fails instead of replacing an existing file
            except FileExistsError:
                continue
            _fsync_directory(directory)
            return candidate
        raise ExportError(
            f"every manifest name like {stem!r} is taken in {str(directory)!r}; "
            "clean up old exports"
        )
    except OSError as exc:
        raise ExportError(
            f"digitalocean export_vm: cannot write the manifest in {str(directory)!r}: "
            f"{exc.strerror or exc}; choose a writable output_path"
        ) from None
    finally:
        if part is not None:
            with contextlib.suppress(OSError):
                part.unlink()


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
