"""Deterministic worlds for the checks that need a fixed cloud rather than a generated one."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Final

from hypersdk import VMInfo
from hypersdk_testing.strategies import HOSTILE_NAMES, POWER_STATES, VM_STATES

if TYPE_CHECKING:
    from hypersdk import ProviderType

__all__ = ["standard_world", "default_world_sizes", "UNKNOWN_VM_ID", "PLAIN_NAMES"]

UNKNOWN_VM_ID: Final = "987654321012"
"""An id no generated world contains (generated ids have at most 10 digits)."""

_LOCATIONS: Final = ("nyc1", "fra1", "sfo3", "ams3", "")
_OSES: Final = ("Ubuntu 24.04 x64", "Debian 12 x64", "Windows", "")
_OFFSETS: Final = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5)))
PLAIN_NAMES: Final = ("web-1", "db-primary", "Cache", "worker-07", "ünïcode-vm", "日本語")


def standard_world(provider: ProviderType, size: int, *, seed: int = 0) -> list[VMInfo]:
    """``size`` VMs of ``provider``: every state, hostile and unicode names, aware datetimes.

    The same arguments always give the same world, so a failure reproduces exactly.
    """
    rng = random.Random(f"{provider}:{size}:{seed}")  # noqa: S311  (reproducible, not secret)
    names = (*PLAIN_NAMES, *HOSTILE_NAMES)
    vms = []
    for index in range(size):
        created = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(10**6))
        tz = _OFFSETS[index % len(_OFFSETS)]
        vms.append(
            VMInfo(
                provider=provider,
                id=str(1000 + index * 7 + rng.randrange(7)),
                name=names[index % len(names)] if index < len(names) else f"vm-{index}",
                state=VM_STATES[index % len(VM_STATES)],
                power_state=POWER_STATES[index % len(POWER_STATES)],
                location=rng.choice(_LOCATIONS),
                guest_os=rng.choice(_OSES),
                memory_mb=rng.choice((512, 1024, 2048, 8192)),
                num_cpus=rng.choice((1, 2, 4, 8)),
                storage_gb=rng.choice((10, 25, 80)),
                ip_addresses=(f"10.0.{index // 250}.{index % 250 + 1}",) if index % 3 else (),
                tags={"env": rng.choice(("prod", "dev"))} if index % 2 else {"team": ""},
                metadata={},
                created_at=created.astimezone(tz),
                updated_at=None if index % 4 == 0 else (created + timedelta(days=1)).astimezone(tz),
            )
        )
    return vms


def default_world_sizes(page_size: int) -> tuple[int, ...]:
    """Empty, one VM, the page boundaries around ``page_size``, and several hundred."""
    sizes = (0, 1, page_size - 1, page_size, page_size + 1, 2 * page_size + 1, 250)
    return tuple(sorted({size for size in sizes if size >= 0}))
