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
from typing import TYPE_CHECKING, Final

from hypersdk import ConfigurationError, ProviderAPIError, ProviderType, VMInfo

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["PROVIDER_TYPE", "parse_tags", "tag_for", "droplet_to_vm", "DropletShapeError"]

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


def droplet_to_vm(droplet: object) -> VMInfo:
    """Map one droplet object of ``GET /v2/droplets`` to a :class:`~hypersdk.VMInfo`.

    ``state`` is DigitalOcean's status (``new``, ``active``, ``off``, ``archive``);
    ``power_state`` is ``on``, ``off`` or ``starting``; ``location`` the region slug;
    ``guest_os`` the image's distribution and name; ``ip_addresses`` the public IPv4,
    private IPv4 and IPv6 addresses in the API's order. ``metadata`` keeps the size and
    image slugs, the VPC, the raw tags and the volume ids.

    Raises:
        DropletShapeError: a documented field is missing or has the wrong type.
    """
    d = _obj(droplet, "droplet")
    droplet_id = d.get("id")
    if not isinstance(droplet_id, int) or isinstance(droplet_id, bool) or droplet_id < 0:
        raise DropletShapeError(
            f"digitalocean list_vms: a droplet has no valid 'id' (got {droplet_id!r})",
            provider=PROVIDER_TYPE,
        )
    where = f"droplet {droplet_id}"
    status = _str(d, "status", where)
    region = _obj(d.get("region") or {}, f"{where}.region")
    image = _obj(d.get("image") or {}, f"{where}.image")
    tags = [_as_str(tag, f"{where}.tags[]") for tag in _list(d, "tags", where)]
    guest_os = " ".join(
        part for part in (_str(image, "distribution", where), _str(image, "name", where)) if part
    )
    metadata = {
        "size_slug": _str(d, "size_slug", where),
        "region_name": _str(region, "name", where),
        "image_slug": _str(image, "slug", where),
        "image_id": str(_int(image, "id", where)) if image.get("id") is not None else "",
        "vpc_uuid": _str(d, "vpc_uuid", where),
        "do_tags": ",".join(tags),
        "volume_ids": ",".join(
            _as_str(volume, f"{where}.volume_ids[]") for volume in _list(d, "volume_ids", where)
        ),
        "locked": "true" if d.get("locked") is True else "false",
    }
    try:
        return VMInfo(
            provider=PROVIDER_TYPE,
            id=str(droplet_id),
            name=_str(d, "name", where, required=True),
            state=status,
            power_state=_POWER_STATES.get(status, ""),
            location=_str(region, "slug", where) or _str(d, "region_slug", where),
            guest_os=guest_os,
            memory_mb=_int(d, "memory", where),
            num_cpus=_int(d, "vcpus", where),
            storage_gb=_int(d, "disk", where),
            ip_addresses=_addresses(d.get("networks"), where),
            tags=parse_tags(tags),
            metadata={key: value for key, value in metadata.items() if value},
            created_at=_timestamp(d.get("created_at"), where),
        )
    except ConfigurationError as exc:
        raise DropletShapeError(
            f"digitalocean list_vms: {where} cannot be represented: {exc}",
            provider=PROVIDER_TYPE,
        ) from None


def _shape_error(where: str, key: str, expected: str, value: object) -> DropletShapeError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return DropletShapeError(
        f"digitalocean: {where}: {key!r} must be {expected}, got {shown}; "
        "the API answered in a shape this plugin does not know",
        provider=PROVIDER_TYPE,
    )


def _obj(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise _shape_error(where, "value", "a JSON object", value)
    return value


def _as_str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _shape_error(where, "value", "a string", value)
    return value


def _str(d: Mapping[str, object], key: str, where: str, *, required: bool = False) -> str:
    value = d.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _shape_error(where, key, "a non-empty string" if required else "a string", value)
    return value


def _int(d: Mapping[str, object], key: str, where: str) -> int:
    value = d.get(key)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _shape_error(where, key, "a non-negative integer", value)
    return value


def _list(d: Mapping[str, object], key: str, where: str) -> list[object]:
    value = d.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _shape_error(where, key, "a list", value)
    return value


def _addresses(networks: object, where: str) -> list[str]:
    if networks is None:
        return []
    nets = _obj(networks, f"{where}.networks")
    v4 = [_obj(entry, f"{where}.networks.v4[]") for entry in _list(nets, "v4", where)]
    v6 = [_obj(entry, f"{where}.networks.v6[]") for entry in _list(nets, "v6", where)]
    ordered = [
        *(entry for entry in v4 if entry.get("type") == "public"),
        *(entry for entry in v4 if entry.get("type") != "public"),
        *v6,
    ]
    addresses: list[str] = []
    for entry in ordered:
        # VMInfo checks that each is an IP address (a bad one is a DropletShapeError).
        address = _str(entry, "ip_address", f"{where}.networks")
        if address and address not in addresses:
            addresses.append(address)
    return addresses


def _timestamp(value: object, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _shape_error(where, "created_at", "an ISO 8601 timestamp", value)
    try:
        # Python 3.11 reads both "2020-07-21T18:37:44Z" and "2024-09-30 15:23:36+00:00".
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _shape_error(where, "created_at", "an ISO 8601 timestamp", value) from None
    # DigitalOcean's timestamps are UTC; a zone-less one still means UTC.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
