"""Nova servers as :class:`~hypersdk.VMInfo`, and what can be pushed down to Nova."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from hypersdk import HyperSDKError, ProviderAPIError, ProviderType, VMFilter, VMInfo

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["PROVIDER_TYPE", "POWER_STATES", "server_to_vm", "server_filters", "Flavor"]

PROVIDER_TYPE: Final = ProviderType("openstack")

POWER_STATES: Final = {0: "unknown", 1: "on", 3: "paused", 4: "off", 6: "crashed", 7: "suspended"}
"""Nova's ``OS-EXT-STS:power_state`` codes as hypersdk power states."""

# Nova filters `status` by the vm_state behind each of these, which is exactly the
# status it then shows; other words (or unknown ones) are filtered locally only.
_NOVA_STATUSES: Final = frozenset(
    {
        "ACTIVE", "BUILD", "DELETED", "ERROR", "PAUSED", "RESCUE", "RESIZED",
        "SHELVED", "SHELVED_OFFLOADED", "SHUTOFF", "SOFT_DELETED", "SUSPENDED",
    }
)  # fmt: skip
# A literal run of a glob that is safe to send as a regex in every Nova database
# dialect (MySQL REGEXP, PostgreSQL ~, SQLite's Python re): no metacharacters at all.
_SAFE_RUN: Final = re.compile(r"[A-Za-z0-9_ -]+")

Flavor = tuple[int, int, int]  # vcpus, ram (MiB), disk (GiB)


def server_filters(wanted: VMFilter | None) -> dict[str, str]:
    """Query parameters that make Nova return a superset of what ``wanted`` matches.

    ``name`` is a regex Nova applies with ``re.search`` semantics, case-sensitively on
    some databases: we send the longest literal run of the glob with each letter as
    ``[xX]``, which every name the glob matches contains. ``status`` goes as is when it
    is a status Nova knows. ``VMFilter.matches`` then decides exactly.
    """
    params: dict[str, str] = {}
    if wanted is None:
        return params
    pattern = wanted.name_pattern
    if pattern and pattern.isascii() and "[" not in pattern:
        runs = _SAFE_RUN.findall(pattern)
        longest = max(runs, key=len, default="")
        if longest.strip():
            params["name"] = "".join(
                f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in longest
            )
    if wanted.state and wanted.state.upper() in _NOVA_STATUSES:
        params["status"] = wanted.state.upper()
    return params


def _text(server: Mapping[str, object], key: str) -> str:
    value = server.get(key)
    return value if isinstance(value, str) else ""


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Nova writes UTC, sometimes without a zone ("2017-02-14T19:24:43.891568").
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _addresses(server: Mapping[str, object]) -> tuple[str, ...]:
    found: list[str] = []
    networks = server.get("addresses")
    if isinstance(networks, dict):
        for entries in networks.values():
            for entry in entries if isinstance(entries, list) else ():
                if isinstance(entry, dict) and isinstance(entry.get("addr"), str):
                    found.append(entry["addr"])
    found += [ip for ip in (_text(server, "accessIPv4"), _text(server, "accessIPv6")) if ip]
    return tuple(dict.fromkeys(found))


def _tags(server: Mapping[str, object]) -> dict[str, str]:
    """Nova's server tags (2.26+, values ``""``) and its metadata (key: value) together.

    Both are how people label servers: each must be filterable and searchable. A
    metadata key that is also a tag keeps its metadata value.
    """
    found: dict[str, str] = {}
    nova_tags = server.get("tags")
    for tag in nova_tags if isinstance(nova_tags, list) else ():
        if isinstance(tag, str) and tag:
            found[tag] = ""
    metadata = server.get("metadata")
    if isinstance(metadata, dict):
        for key, value in metadata.items():
            # Nova keeps strings; a proxy or an old cloud may not: keep the JSON text.
            found[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return found


def embedded_flavor(server: Mapping[str, object]) -> Flavor | None:
    """The flavor's (vcpus, ram, disk) when embedded (microversion 2.47+), else ``None``."""
    flavor = server.get("flavor")
    if not isinstance(flavor, dict):
        return None
    sizes = (flavor.get("vcpus"), flavor.get("ram"), flavor.get("disk"))
    if all(type(size) is int and size >= 0 for size in sizes):
        return (int(flavor["vcpus"]), int(flavor["ram"]), int(flavor["disk"]))
    return None


def is_volume_backed(server: Mapping[str, object]) -> bool:
    """Nova shows ``"image": ""`` for a server that boots from a Cinder volume."""
    return server.get("image") in ("", None) and "image" in server


def flavor_id(server: Mapping[str, object]) -> str | None:
    """The flavor id of a server listed below microversion 2.47."""
    flavor = server.get("flavor")
    value = flavor.get("id") if isinstance(flavor, dict) else None
    return value if isinstance(value, str) and value else None


def server_to_vm(
    server: object, *, flavors: Mapping[str, Flavor] | None = None, operation: str
) -> VMInfo:
    """Map one Nova server object; a malformed one is a :class:`ProviderAPIError`."""
    if not isinstance(server, dict) or not isinstance(server.get("id"), str):
        raise ProviderAPIError(
            f"openstack {operation}: a server object without a string id",
            provider="openstack",
            operation=operation,
        )
    sizes = embedded_flavor(server)
    if sizes is None:
        sizes = (flavors or {}).get(flavor_id(server) or "", (0, 0, 0))
    vcpus, ram, disk = sizes
    tags = _tags(server)
    power = server.get("OS-EXT-STS:power_state")
    flavor = server.get("flavor")
    image = server.get("image")
    extra = {
        "flavor": _text(flavor, "original_name") if isinstance(flavor, dict) else "",
        "flavor_id": flavor_id(server) or "",
        "image_id": _text(image, "id") if isinstance(image, dict) else "",
        "vm_state": _text(server, "OS-EXT-STS:vm_state"),
        "task_state": _text(server, "OS-EXT-STS:task_state"),
        "host_id": _text(server, "hostId"),
        "project_id": _text(server, "tenant_id"),
        "key_name": _text(server, "key_name"),
        "nova_tags": ",".join(str(t) for t in server.get("tags") or () if isinstance(t, str)),
    }
    try:
        return VMInfo(
            provider=PROVIDER_TYPE,
            id=server["id"],
            name=_text(server, "name"),
            state=_text(server, "status").lower(),
            power_state=POWER_STATES.get(power, "") if type(power) is int else "",
            location=_text(server, "OS-EXT-AZ:availability_zone"),
            memory_mb=ram,
            num_cpus=vcpus,
            storage_gb=disk,
            ip_addresses=_addresses(server),
            tags=tags,
            metadata={key: value for key, value in extra.items() if value},
            created_at=_time(server.get("created")),
            updated_at=_time(server.get("updated")),
        )
    except HyperSDKError as exc:
        raise ProviderAPIError(
            f"openstack {operation}: server {server['id']!r} cannot be represented: {exc}",
            provider="openstack",
            operation=operation,
        ) from None
