"""Export a server: Nova ``createImage``, Glance polled to ``active``, its bytes downloaded.

::

    POST /servers/{id}/action {"createImage": ...}   -> image id (body, or Location < 2.45)
    GET  /v2/images/{image}  ... until "active"       -> disk_format, size, hashes
    GET  /v2/images/{image}/file                      -> export toolkit: stream, resume,
                                                         SHA-256; Glance's own hash (sha512,
                                                         md5, ...) computed as the bytes pass
    DELETE /v2/images/{image}                         -> always, shielded from cancellation

The main file appears under its final name only once every check has passed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread
import httpx

from hypersdk import (
    ChecksumMismatchError,
    ExportError,
    HyperSDKError,
    ProviderAPIError,
    UnsupportedFormatError,
)
from hypersdk.export import (
    DISK_FORMATS,
    DownloadResult,
    ProgressTracker,
    build_export_result,
    compress_file,
    compression_suffix,
    download,
    export_file_path,
)
from hypersdk.http import json_body
from hypersdk_openstack._settings import PROVIDER

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from hypersdk import ExportOptions, ExportResult, ProgressReporter, VMInfo
    from hypersdk_openstack._client import Api

__all__ = ["export_server"]


_OPERATION: Final = "export"
_COMPRESSION: Final = "zstd"
_HASH_BATCH: Final = 1 << 20
_CONTENT_RANGE: Final = re.compile(r"^bytes\s+(\d+)-")
_UUIDISH: Final = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_DELETE_TIMEOUT: Final = 30.0

logger = logging.getLogger("hypersdk_openstack")


class _BodyDigest:
    """Glance's hash of the image, computed in a worker thread as the body streams past.

    Installed as a response hook on the download client. It follows the toolkit's
    requests: a 206 that continues exactly where the bytes seen so far end extends the
    hash, a 200 starts it again. Anything else (a part file from an earlier run, a
    server that re-encodes) marks it unusable, and the file is hashed once afterwards.
    """

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self.digest = hashlib.new(algorithm)
        self.seen = 0
        self.usable = True
        self._send, self._receive = anyio.create_memory_object_stream[list[bytes] | None](4)

    async def run(self) -> None:
        async with self._receive:
            async for batch in self._receive:
                if batch is None:
                    self.digest = hashlib.new(self.algorithm)
                else:
                    await anyio.to_thread.run_sync(self._update, batch)

    def _update(self, batch: list[bytes]) -> None:
        for chunk in batch:
            self.digest.update(chunk)

    def close(self) -> None:
        self._send.close()

    async def on_response(self, response: httpx.Response) -> None:
        if not response.request.url.path.endswith("/file") or not self.usable:
            return
        if response.status_code == 200:
            start = 0
        elif response.status_code == 206:
            match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
            start = int(match[1]) if match else -1
        else:
            return  # an error: the toolkit raises or retries, no body is used
        if response.headers.get("content-encoding", "identity").lower() != "identity":
            self.usable = False
            return
        if start == 0 and self.seen:
            await self._send.send(None)
            self.seen = 0
        elif start != self.seen:
            self.usable = False
            return
        response.stream = _Tee(response.stream, self)

    async def feed(self, batch: list[bytes]) -> None:
        await self._send.send(batch)


class _Tee(httpx.AsyncByteStream):
    def __init__(
        self, inner: httpx.AsyncByteStream | httpx.SyncByteStream, owner: _BodyDigest
    ) -> None:
        self._inner = inner
        self._owner = owner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._inner, httpx.AsyncByteStream)
        batch: list[bytes] = []
        size = 0
        try:
            async for chunk in self._inner:
                batch.append(chunk)
                size += len(chunk)
                self._owner.seen += len(chunk)
                if size >= _HASH_BATCH:
                    await self._owner.feed(batch)
                    batch, size = [], 0
                yield chunk
        finally:
            # Every byte handed on is in the part file (the toolkit keeps what arrived
            # before a drop), so it must be in the hash too.
            if batch:
                with (
                    anyio.CancelScope(shield=True),
                    contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError),
                ):
                    await self._owner.feed(batch)

    async def aclose(self) -> None:
        await self._inner.aclose()  # type: ignore[union-attr]


def _image_id(response: httpx.Response) -> str:
    """The new image's id: the body on microversion >= 2.45, else the Location header."""
    image_id: object = None
    with contextlib.suppress(ValueError):
        body = response.json()
        if isinstance(body, dict):
            image_id = body.get("image_id")
    if not isinstance(image_id, str):
        location = response.headers.get("location", "")
        image_id = location.rstrip("/").rsplit("/", 1)[-1] if location else None
    if not isinstance(image_id, str) or not _UUIDISH.match(image_id):
        raise ProviderAPIError(
            f"{PROVIDER} createImage: Nova accepted the request but named no image "
            "(neither image_id in the body nor a Location header)",
            provider=PROVIDER,
            operation=_OPERATION,
            status=response.status_code,
        )
    return image_id


async def _create_image(api: Api, vm: VMInfo, fmt: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    response = await api.call(
        "compute",
        "POST",
        f"/servers/{vm.id}/action",
        operation=_OPERATION,
        json={
            "createImage": {
                "name": f"hypersdk-export-{vm.name[:200]}-{stamp}",
                # Lets an operator see where a stray temporary image came from.
                "metadata": {"hypersdk_export_of": vm.id, "hypersdk_export_format": fmt},
            }
        },
    )
    json_ok = response.status_code in (200, 202)
    if not json_ok:
        json_body(response, provider=PROVIDER, operation=_OPERATION)  # raises the error
        raise ProviderAPIError(
            f"{PROVIDER} createImage: unexpected HTTP {response.status_code}",
            provider=PROVIDER,
            operation=_OPERATION,
            status=response.status_code,
        )
    return _image_id(response)


async def _wait_active(api: Api, image_id: str, tracker: ProgressReporter) -> dict[str, object]:
    settings = api.settings
    started = time.monotonic()
    polls = 0
    while True:
        image = await api.get_json("image", f"/v2/images/{image_id}", operation=_OPERATION)
        status = image.get("status")
        if status == "active":
            return image
        if status in ("killed", "deleted", "pending_delete", "deactivated"):
            raise ExportError(
                f"{PROVIDER} export: the snapshot image {image_id} went {status!r} instead "
                "of active; check the server's state and the Glance/Nova logs, then retry",
                provider=PROVIDER,
                operation=_OPERATION,
            )
        elapsed = time.monotonic() - started
        if elapsed > settings.image_timeout:
            raise ExportError(
                f"{PROVIDER} export: the snapshot image {image_id} is still {status!r} after "
                f"{settings.image_timeout:g} s; raise metadata['image_timeout'] or retry later",
                provider=PROVIDER,
                operation=_OPERATION,
            )
        polls += 1
        # Glance says nothing about progress: an estimate that approaches the end.
        tracker.update("snapshotting", 100.0 * polls / (polls + 3), f"image {status}")
        await anyio.sleep(settings.poll_interval)


async def _delete_image(api: Api, image_id: str) -> None:
    """Delete the temporary image, also when cancelled; a failure is logged with its id."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(_DELETE_TIMEOUT) as scope:
        try:
            response = await api.call(
                "image", "DELETE", f"/v2/images/{image_id}", operation="delete image"
            )
        except HyperSDKError as exc:
            api.logger.warning(
                "%s: could not delete the temporary image %s (%s); delete it yourself",
                PROVIDER,
                image_id,
                exc,
            )
            return
        if response.status_code not in (204, 404):
            api.logger.warning(
                "%s: deleting the temporary image %s answered HTTP %d; delete it yourself",
                PROVIDER,
                image_id,
                response.status_code,
            )
    if scope.cancelled_caught:
        api.logger.warning(
            "%s: deleting the temporary image %s timed out; delete it yourself",
            PROVIDER,
            image_id,
        )


def _expected(image: dict[str, object]) -> tuple[str | None, str | None]:
    """(hash algorithm, hex digest) Glance promises: os_hash_* when set, else MD5."""
    algorithm, value = image.get("os_hash_algo"), image.get("os_hash_value")
    if isinstance(algorithm, str) and isinstance(value, str) and algorithm and value:
        if algorithm.casefold() in hashlib.algorithms_available:
            return algorithm.casefold(), value.lower()
        logger.warning("Glance hash algorithm %r is unknown here; using its MD5", algorithm)
    checksum = image.get("checksum")
    if isinstance(checksum, str) and checksum:
        return "md5", checksum.lower()
    return None, None


def _is_volume_snapshot(image: dict[str, object]) -> bool:
    """What createImage makes of a server whose root disk is a Cinder volume.

    Nova records the volume snapshots in the image's ``block_device_mapping`` property
    (with ``bdm_v2``) and uploads nothing: ``size`` 0, often no ``disk_format``.
    """
    size = image.get("size")
    return bool(image.get("block_device_mapping") or image.get("bdm_v2")) and not (
        type(size) is int and size > 0
    )


def _volume_backed(vm: VMInfo, image_id: str, what: str) -> ExportError:
    return ExportError(
        f"{PROVIDER} export: server {vm.id} is volume-backed; its snapshot image "
        f"{image_id} is {what}. Export the Cinder volume instead",
        provider=PROVIDER,
        operation=_OPERATION,
    )


def _hash_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _publish(source: Path, target: Path) -> None:
    """Give the verified file its final name without replacing anything there."""
    try:
        os.link(source, target)
    except FileExistsError:
        raise ExportError(
            f"{str(target)!r} appeared while exporting; choose another output_path",
            provider=PROVIDER,
            operation=_OPERATION,
        ) from None
    os.unlink(source)


async def export_server(
    api: Api,
    vm: VMInfo,
    options: ExportOptions,
    fmt: str,
    *,
    progress: ProgressReporter | None,
) -> ExportResult:
    """The whole export of one server (see the module docstring)."""
    started = time.monotonic()
    tracker = ProgressTracker(progress)
    tracker.update("preparing", 0.0, f"creating a snapshot image of {vm.name}")
    image_id = await _create_image(api, vm, fmt)
    api.logger.info("%s: snapshot image %s of server %s", PROVIDER, image_id, vm.id)
    try:
        image = await _wait_active(api, image_id, tracker.section(0.0, 20.0))
        if _is_volume_snapshot(image):
            raise _volume_backed(vm, image_id, "a volume snapshot with no data")
        actual = str(image.get("disk_format") or "").casefold()
        if actual != fmt:
            raise UnsupportedFormatError(
                f"{PROVIDER} export: this cloud snapshots server {vm.id} as "
                f"{actual or 'an unknown format'!r}, not {fmt!r}; export with "
                f"format={actual!r} (Nova picks the format, it cannot be chosen)",
                provider=PROVIDER,
                operation=_OPERATION,
            )
        return await _fetch(
            api,
            vm=vm,
            options=options,
            fmt=fmt,
            image=image,
            image_id=image_id,
            tracker=tracker,
            started=started,
        )
    finally:
        if api.settings.keep_image:
            api.logger.info("%s: keeping image %s as asked", PROVIDER, image_id)
        else:
            await _delete_image(api, image_id)


async def _download(
    api: Api,
    *,
    url: str,
    fetched: Path,
    fmt: str,
    options: ExportOptions,
    body: _BodyDigest | None,
    tracker: ProgressTracker,
    expected_sha256: str | None,
    expected_size: int | None,
) -> DownloadResult:
    """The toolkit's download, with Glance's own hash computed beside it when needed."""
    hooks = {"response": [body.on_response]} if body else {}
    failure: Exception | None = None
    async with api.client(event_hooks=hooks) as client, anyio.create_task_group() as tasks:
        if body is not None:
            tasks.start_soon(body.run)
        try:
            result = await download(
                client,
                url,
                fetched,
                expected_sha256=expected_sha256,
                expected_size=expected_size,
                expected_format=fmt if fmt in DISK_FORMATS else None,
                resume=False,  # a part file left by another export is another image
                progress=tracker.section(20.0, 60.0 if options.compress else 97.0),
                provider=PROVIDER,
            )
        except Exception as exc:
            failure = exc  # raised below as itself, not inside an ExceptionGroup
        finally:
            if body is not None:
                body.close()
    if failure is not None:
        raise failure
    return result


async def _fetch(
    api: Api,
    *,
    vm: VMInfo,
    options: ExportOptions,
    fmt: str,
    image: dict[str, object],
    image_id: str,
    tracker: ProgressTracker,
    started: float,
) -> ExportResult:
    algorithm, expected = _expected(image)
    size = image.get("size")
    expected_size = size if type(size) is int and size > 0 else None
    suffix = f"{fmt}.{compression_suffix(_COMPRESSION)}" if options.compress else fmt
    main = export_file_path(options.output_path, vm.name, suffix=suffix)
    fetched = main.with_name(main.name + ".download")
    body = _BodyDigest(algorithm) if algorithm not in (None, "sha256") else None
    url = f"{api.endpoint('image')}/v2/images/{image_id}/file"
    try:
        result = await _download(
            api,
            url=url,
            fetched=fetched,
            fmt=fmt,
            options=options,
            body=body,
            tracker=tracker,
            expected_sha256=expected if algorithm == "sha256" else None,
            expected_size=expected_size,
        )
    except ProviderAPIError as exc:
        fetched.unlink(missing_ok=True)
        if exc.status == 204:
            raise _volume_backed(vm, image_id, "no data (HTTP 204)") from None
        raise
    except BaseException:
        fetched.unlink(missing_ok=True)
        raise
    published = False
    try:
        verified = "sha256" if algorithm == "sha256" else "none"
        if body is not None and algorithm is not None and expected is not None:
            tracker.update("verifying", tracker.percent, f"checking the {algorithm} digest")
            if body.usable:
                digest = body.digest.hexdigest()
            else:
                api.logger.info("%s: hashing %s again for %s", PROVIDER, fetched.name, algorithm)
                digest = await anyio.to_thread.run_sync(_hash_file, fetched, algorithm)
            if digest != expected:
                raise ChecksumMismatchError(
                    f"{PROVIDER} export of {vm.name!r}: the {algorithm} of the image is "
                    f"{digest}, Glance says {expected}; the file was removed, retry the export",
                    provider=PROVIDER,
                    operation=_OPERATION,
                )
            verified = algorithm
        metadata = {
            "image_id": image_id,
            "disk_format": fmt,
            "container_format": str(image.get("container_format") or ""),
            "verified": verified,
            "image_sha256": result.sha256,
        }
        checksum = result.sha256
        if options.compress:
            packed = await compress_file(
                fetched,
                main,
                algorithm=_COMPRESSION,
                level=options.compression_level,
                progress=tracker.section(60.0, 97.0),
            )
            published = True
            checksum = packed.sha256
            metadata |= {"compression": packed.algorithm, "compression_level": str(packed.level)}
            fetched.unlink(missing_ok=True)
        else:
            await anyio.to_thread.run_sync(_publish, fetched, main)
    except BaseException:
        fetched.unlink(missing_ok=True)
        if published:
            main.unlink(missing_ok=True)
        raise
    export = build_export_result(
        provider=PROVIDER,
        vm_id=vm.id,
        vm_name=vm.name,
        format=options.format,
        output_path=options.output_path,
        files=[main],
        duration=time.monotonic() - started,
        size=result.size,
        compressed=options.compress,
        checksum=checksum,
        metadata=metadata,
    )
    tracker.update("done", 100.0, f"exported {vm.name} to {main.name} ({verified} verified)")
    return export
