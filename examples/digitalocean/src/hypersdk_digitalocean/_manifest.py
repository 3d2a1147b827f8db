"""The exported file: a JSON manifest of the droplet and its snapshot, written atomically."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Final

from hypersdk import ExportError
from hypersdk.export import export_file_path

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
    status_at_snapshot: str = "",
) -> bytes:
    """Return the manifest: enough to find the snapshot and recreate the droplet from it.

    ``shutdown`` is what actually stopped the droplet (``none``, ``already-off``,
    ``shutdown`` or ``power_off``); ``status_at_snapshot`` the droplet's status as last
    seen before the snapshot was requested.

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
        "droplet_status_at_snapshot": status_at_snapshot or droplet.get("status"),
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


def write_manifest(directory: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to a new file named after ``name`` inside ``directory``, atomically.

    The name comes from the export toolkit's :func:`~hypersdk.export.export_file_path`
    (it cannot escape ``directory``; ``-1``, ``-2``... are added when taken). The bytes go
    to a hidden temporary file first, are flushed to disk, then linked to that name, which
    never replaces a file, even one created in the meantime. Blocking: call it in a worker
    thread.

    Raises:
        ConfigurationError: ``directory`` exists and is not a directory.
        ExportError: the file cannot be written.
    """
    part: Path | None = None
    try:
        for _attempt in range(100):
            destination = export_file_path(directory, name, suffix=MANIFEST_SUFFIX)
            if part is None:
                part = _write_part(directory, data)
            if _link(part, destination):
                _fsync_directory(directory)
                return destination
        raise ExportError(
            f"digitalocean export_vm: kept losing the race for a manifest name in "
            f"{str(directory)!r}; is another export writing there?"
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


def _write_part(directory: Path, data: bytes) -> Path:
    handle, part_name = tempfile.mkstemp(dir=directory, prefix=".", suffix=".part")
    part = Path(part_name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink()
        raise
    return part


def _link(part: Path, destination: Path) -> bool:
    """Give ``part`` the name ``destination`` unless it is taken; ``False`` when taken."""
    try:
        os.link(part, destination)  # fails, atomically, when the name is taken
    except FileExistsError:
        return False
    except OSError as exc:
        # No hard links here (FAT, some network shares): check, then rename.
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(destination):
            return False
        os.replace(part, destination)
    return True


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
