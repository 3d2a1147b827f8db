"""DiskImage: the image export_disk_image fetches, named as one value."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from hypersdk import ConfigurationError, ExportError, ExportOptions
from hypersdk.export import DiskImage, export_disk_image

from .conftest import FAST_RETRY, DiskServer

if TYPE_CHECKING:
    from pathlib import Path

    from hypersdk._http import httpx

_BODY = b"QFI\xfb\x00\x00\x00\x03" + bytes(4088) + bytes(range(256)) * 64


@pytest.mark.anyio
async def test_a_disk_image_exports_as_the_loose_keywords_do(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    disk_server.body = _BODY
    image = DiskImage(
        disk_server.url(),
        headers={"X-Auth-Token": "s3cret"},
        expected_size=len(_BODY),
        expected_sha256=disk_server.sha256.upper(),
    )
    options = ExportOptions(output_path=tmp_path, format="qcow2")
    result = await export_disk_image(
        client, image, options, provider="test", vm_id="vm-1", vm_name="web", retry=FAST_RETRY
    )
    assert (tmp_path / "web.qcow2").read_bytes() == _BODY
    assert result.checksum == disk_server.sha256
    assert all(r.headers.get("x-auth-token") == "s3cret" for r in disk_server.requests)


@pytest.mark.anyio
async def test_what_the_image_must_be_is_checked(
    disk_server: DiskServer, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    disk_server.body = _BODY
    image = DiskImage(disk_server.url(), expected_sha256="0" * 64)
    options = ExportOptions(output_path=tmp_path, format="qcow2")
    with pytest.raises(ExportError):
        await export_disk_image(
            client, image, options, provider="test", vm_id="vm-1", vm_name="web", retry=FAST_RETRY
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    "loose",
    [{"headers": {"A": "b"}}, {"expected_size": 1}, {"expected_sha256": "a" * 64}],
)
async def test_a_disk_image_with_the_same_keyword_beside_it_is_refused(
    client: httpx.AsyncClient, tmp_path: Path, loose: dict[str, Any]
) -> None:
    (name,) = loose
    with pytest.raises(ConfigurationError, match=rf"^{name}: the DiskImage already says it"):
        await export_disk_image(
            client,
            DiskImage("http://127.0.0.1:9/disk.img"),
            ExportOptions(output_path=tmp_path, format="qcow2"),
            provider="test",
            vm_id="vm-1",
            vm_name="web",
            **loose,
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"url": 5}, "url"),
        ({"url": "http://[::1"}, "url"),
        ({"url": "http://h/x", "headers": {"A": 1}}, "headers"),
        ({"url": "http://h/x", "expected_size": -1}, "expected_size"),
        ({"url": "http://h/x", "expected_sha256": "xyz"}, "expected_sha256"),
    ],
)
def test_a_bad_field_is_refused_by_name(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{named}: "):
        DiskImage(**fields)


def test_the_repr_shows_no_secret() -> None:
    image = DiskImage(
        "https://storage.example/bucket/disk.img?X-Amz-Signature=deadbeef",
        headers={"Authorization": "Bearer tok-123"},
    )
    shown = repr(image)
    assert "storage.example" in shown
    for secret in ("deadbeef", "tok-123", "Authorization", "bucket"):
        assert secret not in shown
    assert image.headers == {"Authorization": "Bearer tok-123"}
    assert hash(image) == hash(DiskImage(image.url, headers={"Other": "x"}))
