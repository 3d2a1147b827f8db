"""DigitalOcean droplets as hypersdk :class:`~hypersdk.VMInfo`, and tags both ways.

DigitalOcean tags are plain strings; hypersdk tags are ``key -> value``. The mapping:

* ``"env:prod"`` becomes ``{"env": "prod"}``: split at the *first* colon when both sides
  are non-empty (``"a:b:c"`` -> ``{"a": "b:c"}``);
* every other tag (``"web"``, ``":x"``, ``"x:"``) becomes itself with an empty value:
  ``{"web": ""}``.

The mapping is one-to-one, so :func:`tag_for` turns a pair back into the exact tag string
(the list filter sends it as ``tag_name``). When two tags share a key (``env:prod`` and
``env:stage``) the first one wins; the droplet's raw tags are always kept, comma-joined,
in ``VMInfo.metadata["do_tags"]`` (DigitalOcean tags cannot contain commas).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Final

import msgspec

from hypersdk import ConfigurationError, ProviderAPIError, ProviderType, VMInfo

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "PROVIDER_TYPE",
    "parse_tags",
    "tag_for",
    "droplet_to_vm",
    "Droplet",
    "DropletPage",
    "decode_page",
    "DropletShapeError",
]

PROVIDER_TYPE: Final = ProviderType("digitalocean")

# DigitalOcean's droplet status -> the power state hypersdk users filter on.
_POWER_STATES: Final = {"active": "on", "off": "off", "archive": "off", "new": "starting"}


class DropletShapeError(ProviderAPIError):
    """A droplet object does not have the shape DigitalOcean documents."""


def parse_tags(tags: Sequence[str]) -> dict[str, str]:
    """Map DigitalOcean tag strings to hypersdk ``key -> value`` pairs (first key wins).

    >>> parse_tags(["web", "env:prod", "env:stage"])
    {'web': '', 'env': 'prod'}
    """
    result: dict[str, str] = {}
    for tag in tags:
        key, value = _split_tag(tag)
        result.setdefault(key, value)
    return result


def _split_tag(tag: str) -> tuple[str, str]:
    key, colon, value = tag.partition(":")
    if colon and key and value:
        return key, value
    return tag, ""


def tag_for(key: str, value: str) -> str | None:
    """Return the DigitalOcean tag that maps to ``key: value``, or ``None`` if none can.

    >>> tag_for("env", "prod"), tag_for("web", ""), tag_for("a:b", "c")
    ('env:prod', 'web', None)
    """
    tag = f"{key}:{value}" if value else key
    return tag if key and _split_tag(tag) == (key, value) else None


# The fields of a droplet this plugin reads, as msgspec structs: decoding a page straight
# into them skips the large parts it does not need (region and size lists) and checks
# every type in C, several times faster than json.loads plus checks in Python.
_Count = Annotated[int, msgspec.Meta(ge=0)]


class _Address(msgspec.Struct, frozen=True):
    ip_address: str = ""
    type: str = ""


class _Networks(msgspec.Struct, frozen=True):
    v4: list[_Address] = []
    v6: list[_Address] = []


class _Region(msgspec.Struct, frozen=True):
    slug: str = ""
    name: str = ""


class _Image(msgspec.Struct, frozen=True):
    id: int | None = None
    slug: str | None = None
    name: str | None = None
    distribution: str | None = None


class Droplet(msgspec.Struct, frozen=True):
    """The parts of a DigitalOcean droplet object that become a VMInfo."""

    id: _Count
    name: str
    status: str = ""
    memory: _Count = 0
    vcpus: _Count = 0
    disk: _Count = 0
    created_at: str | None = None
    tags: list[str] = []
    region: _Region | None = None
    region_slug: str | None = None
    image: _Image | None = None
    networks: _Networks | None = None
    size_slug: str | None = None
    vpc_uuid: str | None = None
    volume_ids: list[str] = []
    locked: bool = False


class _PageLinks(msgspec.Struct, frozen=True):
    next: str | None = None


class _Links(msgspec.Struct, frozen=True):
    pages: _PageLinks | None = None


class _Meta(msgspec.Struct, frozen=True):
    total: int | None = None


class DropletPage(msgspec.Struct, frozen=True):
    """One page of ``GET /v2/droplets``."""

    droplets: list[Droplet]
    links: _Links | None = None
    meta: _Meta | None = None

    @property
    def has_next(self) -> bool:
        """Whether ``links.pages.next`` names another page."""
        return bool(self.links and self.links.pages and self.links.pages.next)

    @property
    def total(self) -> int | None:
        """``meta.total``, when the API sent a usable one."""
        total = self.meta.total if self.meta else None
        return total if total is not None and total >= 0 else None


_PAGE_DECODER: Final = msgspec.json.Decoder(DropletPage)


def decode_page(content: bytes, *, operation: str) -> DropletPage:
    """Decode a ``GET /v2/droplets`` body.

    Raises:
        DropletShapeError: it is not JSON or not shaped like a droplet page.
    """
    try:
        return _PAGE_DECODER.decode(content)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise DropletShapeError(
            f"digitalocean {operation}: the droplet list is not what the API documents: {exc}",
            provider=PROVIDER_TYPE,
            operation=operation,
        ) from None


def droplet_to_vm(droplet: Droplet | object) -> VMInfo:
    """Map one droplet (a decoded :class:`Droplet` or the API's JSON object) to a VMInfo.

    ``state`` is DigitalOcean's status (``new``, ``active``, ``off``, ``archive``);
    ``power_state`` is ``on``, ``off`` or ``starting``; ``location`` the region slug;
    ``guest_os`` the image's distribution and name; ``ip_addresses`` the public IPv4,
    private IPv4 and IPv6 addresses in the API's order. ``metadata`` keeps the size and
    image slugs, the VPC, the raw tags and the volume ids.

    Raises:
        DropletShapeError: a documented field is missing or has the wrong type.
    """
    if isinstance(droplet, Droplet):
        d = droplet
    else:
        try:
            d = msgspec.convert(droplet, Droplet)
        except msgspec.ValidationError as exc:
            raise DropletShapeError(
                f"digitalocean: a droplet is not what the API documents: {exc}",
                provider=PROVIDER_TYPE,
            ) from None
    image = d.image or _Image()
    region = d.region or _Region()
    metadata = {
        "size_slug": d.size_slug or "",
        "region_name": region.name,
        "image_slug": image.slug or "",
        "image_id": str(image.id) if image.id is not None else "",
        "vpc_uuid": d.vpc_uuid or "",
        "do_tags": ",".join(d.tags),
        "volume_ids": ",".join(d.volume_ids),
        "locked": "true" if d.locked else "false",
    }
    try:
        return VMInfo(
            provider=PROVIDER_TYPE,
            id=str(d.id),
            name=d.name,
            state=d.status,
            power_state=_POWER_STATES.get(d.status, ""),
            location=region.slug or d.region_slug or "",
            guest_os=" ".join(part for part in (image.distribution, image.name) if part),
            memory_mb=d.memory,
            num_cpus=d.vcpus,
            storage_gb=d.disk,
            ip_addresses=_addresses(d.networks),
            tags=parse_tags(d.tags),
            metadata={key: value for key, value in metadata.items() if value},
            created_at=_timestamp(d.created_at, d.id),
        )
    except ConfigurationError as exc:
        raise DropletShapeError(
            f"digitalocean: droplet {d.id} cannot be represented: {exc}",
            provider=PROVIDER_TYPE,
        ) from None


def _addresses(networks: _Networks | None) -> list[str]:
    if networks is None:
        return []
    ordered = [
        *(entry for entry in networks.v4 if entry.type == "public"),
        *(entry for entry in networks.v4 if entry.type != "public"),
        *networks.v6,
    ]
    addresses: list[str] = []
    for entry in ordered:
        # VMInfo checks that each is an IP address (a bad one is a DropletShapeError).
        if entry.ip_address and entry.ip_address not in addresses:
            addresses.append(entry.ip_address)
    return addresses


def _timestamp(value: str | None, droplet_id: int) -> datetime | None:
    if not value:
        return None
    try:
        # Python 3.11 reads both "2020-07-21T18:37:44Z" and "2024-09-30 15:23:36+00:00".
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise DropletShapeError(
            f"digitalocean: droplet {droplet_id}: created_at must be an ISO 8601 timestamp, "
            f"got {value[:40]!r}",
            provider=PROVIDER_TYPE,
        ) from None
    # DigitalOcean's timestamps are UTC; a zone-less one still means UTC.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
