"""``DiskImage``: where a disk image's bytes come from and what they must be."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

import attrs

from hypersdk._http import httpx
from hypersdk.export import _arguments as arg
from hypersdk.export._download import _url_argument

__all__ = ["DiskImage"]


def _url(value: object) -> httpx.URL:
    return _url_argument(value)


def _headers(value: object) -> Mapping[str, str]:
    return types.MappingProxyType(arg.headers_or_none("headers", value))


def _sha256(value: object) -> str | None:
    sha = arg.sha256_or_none("expected_sha256", value)
    return sha.lower() if sha else None


def _size(value: object) -> int | None:
    return arg.size_or_none("expected_size", value)


# A signed URL carries its token in the path or query and headers carry credentials:
# the repr shows where the bytes come from, never how they are unlocked.
def _where(url: httpx.URL) -> str:
    return f"'{url.scheme}://{url.host}/…'"


def _header_names(headers: Mapping[str, Any]) -> str:
    return f"<{len(headers)} header(s) hidden>"


@attrs.frozen
class DiskImage:
    """A disk image to fetch: its ``url``, the ``headers`` it needs, and what it must be.

    ``expected_size`` (bytes) and ``expected_sha256`` (hex) are checked as the image
    arrives; ``None`` skips that check. Every field is validated when the value is made
    (a bad one raises :class:`~hypersdk.ConfigurationError` naming it), and the repr
    shows neither the URL's path and query nor the headers, which often hold secrets.

    >>> image = DiskImage(signed_url, headers={"X-Auth-Token": token},  # doctest: +SKIP
    ...                   expected_size=vm.disk_bytes)
    >>> await export_disk_image(client, image, options, provider=self.type,  # doctest: +SKIP
    ...                         vm_id=vm.id, vm_name=vm.name)
    """

    url: httpx.URL = attrs.field(converter=_url, repr=_where)
    headers: Mapping[str, str] = attrs.field(
        default=None, converter=_headers, repr=_header_names, hash=False, kw_only=True
    )
    expected_size: int | None = attrs.field(default=None, converter=_size, kw_only=True)
    expected_sha256: str | None = attrs.field(default=None, converter=_sha256, kw_only=True)
