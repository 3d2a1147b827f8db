"""What does building a ``VMInfo`` cost? The one-pass check next to attrs's per-field path.

Builds 100,000 realistic VMs (ids and names as providers return them, a handful of states
and regions, one or two IPv4 addresses, an IPv6 address for about a third, 2-5 tags,
``created_at`` in UTC) from keyword dicts made before the clock starts, three ways, in
alternating rounds:

- ``VMInfo``: hypersdk's path (the field validators run once per VM, with a fast path
  for the common case);
- baseline: the same fields, converters and validators as ``VMInfo`` in a class where
  attrs runs each validator per field (``VMInfo`` as it was before the one-pass check);
- floor: ``VMInfo`` with attrs's validators switched off (``attrs.validators.disabled``):
  what the class costs with no checking at all (converters still run).

Prints microseconds per VM (median of the rounds) and the ratios. Times are the
process's CPU time (``time.process_time``): on a shared machine, wall time also counts
the moments another process had the core; ``--wall`` measures wall time instead.

    python benchmarks/bench_models.py [--vms 100000] [--rounds 7] [--wall]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from hypersdk import VMInfo
from hypersdk.models import _VMINFO_CHECKS

if TYPE_CHECKING:
    from collections.abc import Callable

STATES = ("active", "active", "active", "off", "new", "archive")
REGIONS = ("fra1", "nyc3", "ams3", "sgp1", "lon1", "sfo3", "tor1", "blr1")
IMAGES = ("Ubuntu 24.04 (LTS) x64", "Debian 12 x64", "Rocky Linux 9 x64", "Fedora 40 x64")
TAGS = ("env", "team", "role", "tier", "owner", "cost-center", "app", "backup")
VALUES = ("prod", "staging", "web", "db", "api", "platform", "payments", "nightly", "gold")


def realistic_vms(count: int, seed: int = 14) -> list[dict[str, Any]]:
    """Keyword dicts for ``count`` VMs, the shapes a cloud listing returns."""
    rng = random.Random(seed)
    epoch = datetime(2023, 1, 1, tzinfo=UTC)
    vms = []
    for index in range(count):
        addresses = [f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}"]
        if rng.random() < 0.8:
            addresses.append(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}")
        if rng.random() < 0.3:
            addresses.append(f"2a03:b0c0:3:d0::{rng.randrange(65536):x}:{rng.randrange(65536):x}")
        state = rng.choice(STATES)
        vms.append(
            {
                "provider": "digitalocean",
                "id": str(300_000_000 + index),
                "name": f"{rng.choice(VALUES)}-{index:06d}",
                "state": state,
                "location": rng.choice(REGIONS),
                "power_state": "on" if state == "active" else "off",
                "guest_os": rng.choice(IMAGES),
                "memory_mb": rng.choice((512, 1024, 2048, 4096, 8192, 16384)),
                "num_cpus": rng.choice((1, 2, 4, 8)),
                "storage_gb": rng.choice((10, 25, 50, 80, 160)),
                "ip_addresses": addresses,
                "tags": {key: rng.choice(VALUES) for key in rng.sample(TAGS, rng.randint(2, 5))},
                "created_at": epoch + timedelta(seconds=rng.randrange(90_000_000)),
            }
        )
    return vms


def per_field_class() -> type[Any]:
    """``VMInfo``'s fields with its validators back on them: attrs's per-field path."""
    kept = {attribute.name: validator for attribute, validator in _VMINFO_CHECKS._checks}
    fields = {
        field.name: attrs.field(
            default=field.default,
            validator=kept.get(field.name),
            converter=field.converter,
            hash=field.hash,
        )
        for field in attrs.fields(VMInfo)
    }
    return attrs.make_class("VMInfo", fields, frozen=True, kw_only=True)


def seconds(
    build: Callable[..., object], vms: list[dict[str, Any]], clock: Callable[[], float]
) -> float:
    start = clock()
    for fields in vms:
        build(**fields)
    return clock() - start


def floor(vms: list[dict[str, Any]], clock: Callable[[], float]) -> float:
    with attrs.validators.disabled():
        return seconds(VMInfo, vms, clock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--wall", action="store_true", help="wall time, not CPU time")
    args = parser.parse_args()
    clock = time.perf_counter if args.wall else time.process_time

    vms = realistic_vms(args.vms)
    baseline_class = per_field_class()
    # The same VMs are valid both ways (and the classes agree) before anything is timed.
    for fields in vms[:1000]:
        assert attrs.astuple(VMInfo(**fields)) == attrs.astuple(baseline_class(**fields))

    runs: dict[str, list[float]] = {"VMInfo": [], "baseline (per field)": [], "floor": []}
    for _ in range(args.rounds):
        runs["baseline (per field)"].append(seconds(baseline_class, vms, clock))
        runs["VMInfo"].append(seconds(VMInfo, vms, clock))
        runs["floor"].append(floor(vms, clock))

    micro = {name: statistics.median(times) / args.vms * 1e6 for name, times in runs.items()}
    kind = "wall" if args.wall else "CPU"
    print(f"{args.vms:,} VMs, median of {args.rounds} alternating rounds, {kind} us per VM:")
    for name, value in micro.items():
        print(f"  {name:<22} {value:6.2f}")
    baseline, new, bare = micro["baseline (per field)"], micro["VMInfo"], micro["floor"]
    print(f"VMInfo is {baseline / new:.2f}x faster than the per-field baseline")
    print(
        f"validation: {baseline - bare:.2f} -> {new - bare:.2f} us per VM "
        f"({(baseline - bare) / (new - bare):.1f}x less)"
    )


if __name__ == "__main__":
    main()
