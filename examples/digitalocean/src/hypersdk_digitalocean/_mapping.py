"""DigitalOcean droplets as hypersdk :class:`~hypersdk.VMInfo`, and tags both ways.

DigitalOcean tags are plain strings, and one droplet may carry several with one prefix (a
Kubernetes node has ``k8s``, ``k8s:<cluster-uuid>`` and ``k8s:worker``). hypersdk tags are
one value per key, so every raw tag gets an entry of its own:

* a tag without a usable colon (``"web"``, ``":x"``, ``"x:"``) becomes ``{tag: ""}``;
* ``"env:prod"`` becomes ``{"env": "prod"}``, split at the *first* colon
  (``"a:b:c"`` -> ``{"a": "b:c"}``), when its key is still free;
* when the key is taken (by a bare tag of that name, or an earlier tag with that key),
  the tag is kept whole: ``{"k8s:worker": ""}``.

So nothing is lost: ``f"{key}:{value}" if value else key`` over ``VMInfo.tags`` gives back
exactly the droplet's tags, which ``VMInfo.metadata["do_tags"]`` also keeps, in order.

A filter's tag ``key: value`` *names* the raw tag :func:`tag_for` spells (``k8s: worker``
and ``k8s:worker: ""`` both name ``k8s:worker``), which is what the API's ``tag_name``
selects; :func:`matches_filter` is that semantics. Where each key has one tag it is
exactly :meth:`VMFilter.matches`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Final

import attrs
import msgspec

from hypersdk import ConfigurationError, ProviderAPIError, ProviderType, VMFilter, VMInfo

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "PROVIDER_TYPE",
    "parse_tags",
    "tag_for",
    "is_tag_name",
    "matches_filter",
    "TagMatcher",
    "Mapper",
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
    """Map DigitalOcean tag strings to hypersdk ``key -> value`` pairs, losing none.

    >>> parse_tags(["web", "env:prod", "env:stage"])
    {'web': '', 'env': 'prod', 'env:stage': ''}
    >>> parse_tags(["k8s", "k8s:bd5f5959", "k8s:worker"])
    {'k8s': '', 'k8s:bd5f5959': '', 'k8s:worker': ''}
    """
    # A bare tag's key is the tag itself, and nothing else can stand for it: bare tags
    # claim their keys first, wherever they are in the list.
    bare = {tag for tag in tags if not _split_tag(tag)[1]}
    result: dict[str, str] = {}
    for tag in tags:
        key, value = _split_tag(tag)
        if value and key not in bare and key not in result:
            result[key] = value
        else:
            # A key with a colon never collides with a split key (those have none).
            result[tag] = ""
    return result


def _split_tag(tag: str) -> tuple[str, str]:
    key, colon, value = tag.partition(":")
    if colon and key and value:
        return key, value
    return tag, ""


def tag_for(key: str, value: str) -> str | None:
    """The DigitalOcean tag that a tag pair names, or ``None`` for an empty key.

    >>> tag_for("env", "prod"), tag_for("web", ""), tag_for("k8s:worker", ""), tag_for("", "x")
    ('env:prod', 'web', 'k8s:worker', None)
    """
    if not key:
        return None
    return f"{key}:{value}" if value else key


# The API's tag grammar: letters, numbers, colons, dashes and underscores, at most 255.
_TAG_NAME: Final = re.compile(r"[A-Za-z0-9:_-]{1,255}")


def is_tag_name(tag: str) -> bool:
    """Whether ``tag`` can be a DigitalOcean tag (and so be sent as ``tag_name``)."""
    return _TAG_NAME.fullmatch(tag) is not None


class TagMatcher:
    """:func:`matches_filter` for one filter, prepared once for a whole listing."""

    __slots__ = ("_impossible", "_rest", "_tags")

    def __init__(self, wanted: VMFilter) -> None:
        named = [tag_for(key, value) for key, value in wanted.tags.items()]
        self._impossible = None in named
        self._tags = frozenset(tag for tag in named if tag is not None)
        self._rest = attrs.evolve(wanted, tags={}) if wanted.tags else wanted

    def raw_tags(self, droplet: Droplet) -> bool:
        """Whether the droplet carries every tag the filter names."""
        return not self._impossible and self._tags.issubset(droplet.tags)

    def __call__(self, vm: VMInfo) -> bool:
        if self._tags or self._impossible:
            have = {tag_for(key, value) for key, value in vm.tags.items()}
            if self._impossible or not self._tags <= have:
                return False
        return self._rest.matches(vm)


def matches_filter(wanted: VMFilter, vm: VMInfo) -> bool:
    """Whether ``list_vms(wanted)`` returns ``vm``: :meth:`VMFilter.matches`, but a tag
    pair holds when the droplet carries the tag it names (what the API's ``tag_name``
    selects), so ``{"k8s": "worker"}`` holds for a node tagged ``k8s`` and ``k8s:worker``.
    """
    return TagMatcher(wanted)(vm)


# The fields of a droplet this plugin reads, as msgspec structs: decoding a page straight
# into them skips the large parts it does not need (region and size lists) and checks
# every type in C, several times faster than json.loads plus checks in Python. They are
# not tracked by the cyclic garbage collector (gc=False): decoded from JSON they hold only
# strings, numbers, lists and each other, so they can never be part of a cycle, and a
# listing of 10,000 droplets decodes some 100,000 of them that would otherwise trigger
# and lengthen collections while the VMInfo list grows.
_Count = Annotated[int, msgspec.Meta(ge=0)]


class _Address(msgspec.Struct, frozen=True, gc=False):
    ip_address: str = ""
    type: str = ""


class _Networks(msgspec.Struct, frozen=True, gc=False):
    v4: tuple[_Address, ...] = ()
    v6: tuple[_Address, ...] = ()


class _Region(msgspec.Struct, frozen=True, gc=False):
    slug: str = ""
    name: str = ""


class _Image(msgspec.Struct, frozen=True, gc=False):
    id: int | None = None
    slug: str | None = None
    name: str | None = None
    distribution: str | None = None


class Droplet(msgspec.Struct, frozen=True, gc=False):
    """The parts of a DigitalOcean droplet object that become a VMInfo."""

    id: _Count
    name: str
    status: str = ""
    memory: _Count = 0
    vcpus: _Count = 0
    disk: _Count = 0
    created_at: str | None = None
    tags: tuple[str, ...] = ()
    region: _Region | None = None
    region_slug: str | None = None
    image: _Image | None = None
    networks: _Networks | None = None
    size_slug: str | None = None
    vpc_uuid: str | None = None
    volume_ids: tuple[str, ...] = ()
    locked: bool = False


class _PageLinks(msgspec.Struct, frozen=True, gc=False):
    next: str | None = None


class _Links(msgspec.Struct, frozen=True, gc=False):
    pages: _PageLinks | None = None


class _Meta(msgspec.Struct, frozen=True, gc=False):
    total: int | None = None


class DropletPage(msgspec.Struct, frozen=True, gc=False):
    """One page of ``GET /v2/droplets``.

    The OpenAPI specification requires only ``meta``; the API leaves ``droplets`` out of
    an empty listing (``{}`` or ``{"meta": {"total": 0}}``), which is an empty page.
    """

    droplets: list[Droplet] = []
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
        page = _PAGE_DECODER.decode(content)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise DropletShapeError(
            f"digitalocean {operation}: the droplet list is not what the API documents: {exc}",
            provider=PROVIDER_TYPE,
            operation=operation,
        ) from None
    if not page.droplets:
        # An empty listing may leave "droplets" out; a body with none of a listing's
        # members but others is some other answer, not an empty page.
        members = set(msgspec.json.decode(content))
        if "droplets" not in members and members - _PAGE_MEMBERS:
            raise DropletShapeError(
                f"digitalocean {operation}: the droplet list is not what the API documents: "
                f"it has no 'droplets' but {', '.join(sorted(members)[:5])}",
                provider=PROVIDER_TYPE,
                operation=operation,
            )
    return page


_PAGE_MEMBERS: Final = frozenset({"droplets", "links", "meta"})


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
    return Mapper(limit=0)(d)


class Mapper:
    """:func:`droplet_to_vm` for one listing: what droplets share is worked out once.

    10,000 droplets of one account share a handful of statuses, sizes, regions, images,
    VPCs and tag sets. Everything of a VMInfo that comes from those (state, power state,
    location, guest OS, the read-only tag and metadata mappings) depends on them alone, so
    a listing works it out for the first droplet of each combination and reuses it (one
    copy of each string and mapping in memory, too). Only id, name, sizes, addresses and
    the creation time are read per droplet. At most ``limit`` combinations are kept, so
    hostile data cannot grow the cache without bound; past that, each is worked out anew.
    """

    __slots__ = ("_limit", "_shapes")

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._shapes: dict[tuple[object, ...], _Shape] = {}

    def __call__(self, droplet: Droplet) -> VMInfo:
        d = droplet
        image = d.image or _NO_IMAGE
        region = d.region or _NO_REGION
        # Every field a shape is made of.
        key = (
            d.status,
            region.slug,
            d.region_slug,
            region.name,
            image.id,
            image.slug,
            image.name,
            image.distribution,
            d.size_slug,
            d.vpc_uuid,
            d.locked,
            d.tags,
            d.volume_ids,
        )
        shape = self._shapes.get(key)
        if shape is None:
            shape = _shape(d, image, region)
            if len(self._shapes) < self._limit:
                self._shapes[key] = shape
        try:
            return VMInfo(
                provider=PROVIDER_TYPE,
                id=str(d.id),
                name=d.name,
                state=shape.state,
                power_state=shape.power_state,
                location=shape.location,
                guest_os=shape.guest_os,
                memory_mb=d.memory,
                num_cpus=d.vcpus,
                storage_gb=d.disk,
                ip_addresses=_addresses(d.networks),
                tags=shape.tags,
                metadata=shape.metadata,
                created_at=_timestamp(d.created_at, d.id),
            )
        except ConfigurationError as exc:
            raise DropletShapeError(
                f"digitalocean: droplet {d.id} cannot be represented: {exc}",
                provider=PROVIDER_TYPE,
            ) from None


@attrs.frozen
class _Shape:
    """The parts of a VMInfo that droplets alike share."""

    state: str
    power_state: str
    location: str
    guest_os: str
    tags: Mapping[str, str]  # read-only: one mapping serves every VM of the shape
    metadata: Mapping[str, str]


def _shape(d: Droplet, image: _Image, region: _Region) -> _Shape:
    metadata: dict[str, str] = {}
    # Only the fields that have a value, in a fixed order.
    for key, value in (
        ("size_slug", d.size_slug),
        ("region_name", region.name),
        ("image_slug", image.slug),
        ("image_id", str(image.id) if image.id is not None else ""),
        ("vpc_uuid", d.vpc_uuid),
        ("do_tags", ",".join(d.tags)),
        ("volume_ids", ",".join(d.volume_ids)),
    ):
        if value:
            metadata[key] = value
    metadata["locked"] = "true" if d.locked else "false"
    return _Shape(
        state=d.status,
        power_state=_POWER_STATES.get(d.status, ""),
        location=region.slug or d.region_slug or "",
        guest_os=" ".join(part for part in (image.distribution, image.name) if part),
        # VMInfo keeps a MappingProxyType as it is instead of copying it.
        tags=MappingProxyType(parse_tags(d.tags)),
        metadata=MappingProxyType(metadata),
    )


_NO_IMAGE: Final = _Image()
_NO_REGION: Final = _Region()


def _addresses(networks: _Networks | None) -> list[str]:
    # Public IPv4 first, then the other IPv4, then IPv6, each address once.
    if networks is None:
        return []
    public: list[str] = []
    other: list[str] = []
    for entry in networks.v4:
        (public if entry.type == "public" else other).append(entry.ip_address)
    addresses = public + other
    addresses += [entry.ip_address for entry in networks.v6]
    if "" in addresses or len(set(addresses)) < len(addresses):
        addresses = list(dict.fromkeys(address for address in addresses if address))
    # VMInfo checks that each is an IP address (a bad one is a DropletShapeError).
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
