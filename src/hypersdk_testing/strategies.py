"""Hypothesis strategies for every hypersdk model.

Each strategy draws only valid models (they construct without error), with the awkward
corners real clouds produce: unicode and hostile names, every state, empty and full
optional fields, timezone-aware datetimes in assorted offsets.

>>> from hypothesis import given
>>> @given(vm_infos())
... def test_round_trip(vm: VMInfo) -> None:
...     assert from_dict(VMInfo, to_dict(vm)) == vm
"""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Final

from hypothesis import strategies as st

from hypersdk import (
    ExportCapabilities,
    ExportOptions,
    ExportResult,
    PluginMetadata,
    ProviderConfig,
    ProviderType,
    Secret,
    VMFilter,
    VMInfo,
)

__all__ = [
    "VM_STATES",
    "POWER_STATES",
    "HOSTILE_NAMES",
    "provider_types",
    "secrets",
    "provider_configs",
    "vm_names",
    "aware_datetimes",
    "ip_addresses",
    "tag_mappings",
    "vm_infos",
    "vm_filters",
    "filters_for",
    "export_options",
    "export_results",
    "export_capabilities",
    "plugin_metadata",
    "vm_worlds",
    "worlds_of_size",
]

VM_STATES: Final = ("new", "active", "running", "stopped", "off", "suspended", "archive", "error")
"""States a generated VM may be in (the words providers commonly use)."""

POWER_STATES: Final = ("on", "off", "suspended", "unknown")
"""Power states a generated VM may be in."""

HOSTILE_NAMES: Final = (
    "../../etc/passwd",
    "/absolute/name",
    "..",
    "a/b\\c",
    "CON",
    "nul.txt",
    "name\x00with-nul",
    "tab\tand\nnewline",
    "x" * 300,
    "\uff46\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48",  # fullwidth letters
    "e\u0301te\u0301",  # decomposed accents: NFC normalisation changes it
    "emoji-🚀-vm",
    " leading and trailing ",
    "-starts-with-dash",
    "*glob?[chars]",
)
"""VM names that try to escape a directory, confuse a shell or a filesystem."""

_SLUG: Final = string.ascii_lowercase + string.digits + "-"

provider_types = st.text(_SLUG, min_size=1, max_size=20).map(ProviderType)
"""Provider type identifiers such as ``"digitalocean"``."""

secrets = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=40).map(Secret)
"""Credentials (never empty)."""

_words = st.text(string.ascii_letters + string.digits + "-_.", max_size=20)
_printable = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30
)

vm_names = st.one_of(
    st.text(_SLUG, min_size=1, max_size=30),
    st.sampled_from(HOSTILE_NAMES),
    _printable,
).filter(lambda name: bool(name.strip()))
"""VM names: ordinary slugs, arbitrary unicode and the :data:`HOSTILE_NAMES`."""

_offsets = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])

aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_offsets
)
"""Timezone-aware datetimes in UTC and two other offsets."""

ip_addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)
"""IPv4 and IPv6 addresses as strings."""

tag_mappings = st.dictionaries(
    st.text(_SLUG, min_size=1, max_size=12), st.text(_SLUG, max_size=12), max_size=4
)
"""Tags: short keys, values possibly empty (bare tags)."""

_string_maps = st.dictionaries(st.text(_SLUG, min_size=1, max_size=12), _words, max_size=3)


def provider_configs(
    provider_type: st.SearchStrategy[ProviderType] = provider_types,
) -> st.SearchStrategy[ProviderConfig]:
    """Valid :class:`ProviderConfig` values, with and without a password."""
    return st.builds(
        ProviderConfig,
        type=provider_type,
        endpoint=st.sampled_from(["", "https://api.example.test/v2", "http://127.0.0.1:8080"]),
        host=_words,
        port=st.integers(0, 65535),
        username=_words,
        password=st.none() | secrets,
        region=_words,
        insecure=st.booleans(),
        timeout=st.floats(0, 3600, allow_nan=False),
        metadata=_string_maps,
    )


def vm_infos(
    provider: st.SearchStrategy[ProviderType] = provider_types,
    ids: st.SearchStrategy[str] | None = None,
    names: st.SearchStrategy[str] = vm_names,
) -> st.SearchStrategy[VMInfo]:
    """Valid :class:`VMInfo` values in every state, with hostile names among the rest."""
    return st.builds(
        VMInfo,
        provider=provider,
        id=ids if ids is not None else st.text(string.digits, min_size=1, max_size=10),
        name=names,
        state=st.sampled_from(VM_STATES),
        location=st.sampled_from(["", "nyc1", "fra1", "sfo3", "ams3"]),
        power_state=st.sampled_from(POWER_STATES),
        guest_os=st.sampled_from(["", "Ubuntu 24.04 x64", "Debian 12 x64", "Windows"]),
        memory_mb=st.integers(0, 1 << 20),
        num_cpus=st.integers(0, 256),
        storage_gb=st.integers(0, 1 << 16),
        # A VM lists each address once: clouds that de-duplicate are right to.
        ip_addresses=st.lists(ip_addresses, max_size=3, unique=True).map(tuple),
        tags=tag_mappings,
        metadata=_string_maps,
        created_at=st.none() | aware_datetimes,
        updated_at=st.none() | aware_datetimes,
    )


_globs = st.one_of(
    st.just(""),
    st.text(_SLUG + "*?", min_size=1, max_size=10),
    st.sampled_from(["*", "web-*", "*-1", "?b*", "[a-m]*", "[!a]*"]),
)

vm_filters = st.builds(
    VMFilter,
    name_pattern=_globs,
    state=st.just("") | st.sampled_from(VM_STATES),
    power_state=st.just("") | st.sampled_from(POWER_STATES),
    tags=st.dictionaries(
        st.text(_SLUG, min_size=1, max_size=6), st.text(_SLUG, max_size=6), max_size=2
    ),
    location=st.sampled_from(["", "nyc1", "fra1"]),
    min_memory_mb=st.sampled_from([0, 512, 1024, 4096]),
    min_cpus=st.sampled_from([0, 1, 2, 8]),
)
"""Arbitrary filters (most match few VMs of a random world)."""


def filters_for(vms: list[VMInfo]) -> st.SearchStrategy[VMFilter]:
    """Filters built from the given VMs' own values, so they match some of them.

    Use it to test ``list_vms(filter)`` on a world: a filter drawn from the world's own
    names, states, tags and sizes exercises every constraint with non-trivial results.
    """
    if not vms:
        return vm_filters

    @st.composite
    def build(draw: st.DrawFn) -> VMFilter:
        vm = draw(st.sampled_from(vms))
        tags: dict[str, str] = {}
        use_tag: bool = draw(st.booleans())
        if vm.tags and use_tag:
            key = draw(st.sampled_from(sorted(vm.tags)))
            tags[key] = vm.tags[key]
        exact = _glob_escape(vm.name).upper()  # the reference semantics ignore case
        prefix = _glob_escape(vm.name[:1]) + "*"
        pattern = draw(st.sampled_from(["", "*", prefix, exact]))
        return VMFilter(
            name_pattern=pattern,
            state=draw(st.sampled_from(["", vm.state])),
            power_state=draw(st.sampled_from(["", vm.power_state.upper()])),
            tags=tags,
            location=draw(st.sampled_from(["", vm.location])),
            min_memory_mb=draw(st.sampled_from([0, vm.memory_mb])),
            min_cpus=draw(st.sampled_from([0, vm.num_cpus, vm.num_cpus + 1])),
        )

    return build()


def _glob_escape(text: str) -> str:
    # fnmatch has no escape function; a one-character class matches the character itself.
    # A VMFilter refuses NUL in its glob (it could never come from a user), so a NUL in a
    # hostile name is matched by "?": the pattern still selects that VM and stays valid.
    return "".join(
        "?" if char == "\x00" else f"[{char}]" if char in "*?[" else char for char in text
    )


_formats = st.sampled_from(["qcow2", "raw", "vmdk", "vhd", "vhdx", "ova", "snapshot"])


def export_options(root: Path = Path("hypersdk-export")) -> st.SearchStrategy[ExportOptions]:
    """Valid :class:`ExportOptions` writing below ``root``."""
    return st.builds(
        ExportOptions,
        output_path=st.sampled_from([root, root / "nested", root / "ünïcode dir"]),
        format=_formats,
        compress=st.booleans(),
        compression_level=st.integers(0, 22),
        include_snapshots=st.booleans(),
        remove_cdrom=st.booleans(),
        metadata=_string_maps,
    )


export_results = st.builds(
    ExportResult,
    provider=provider_types,
    vm_name=vm_names,
    vm_id=st.text(string.digits, min_size=1, max_size=10),
    format=_formats,
    output_path=st.sampled_from([Path("/srv/exports"), Path("relative/out")]),
    files=st.lists(
        st.text(_SLUG + ".", min_size=1, max_size=20).filter(lambda f: f not in (".", "..")),
        max_size=3,
    ).map(tuple),
    size=st.integers(0, 1 << 40),
    compressed_size=st.integers(0, 1 << 40),
    checksum=st.just("") | st.text("0123456789abcdef", min_size=64, max_size=64),
    duration=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)).map(
        # The wire form is float seconds: keep durations to the microsecond they survive.
        lambda value: timedelta(seconds=round(value.total_seconds(), 3))
    ),
    metadata=_string_maps,
)
"""Valid :class:`ExportResult` values."""

export_capabilities = st.builds(
    ExportCapabilities,
    supported_formats=st.lists(_formats, max_size=4, unique=True).map(tuple),
    supports_compression=st.booleans(),
    supports_streaming=st.booleans(),
    supports_snapshots=st.booleans(),
    max_vm_size_gb=st.integers(0, 1 << 16),
    supported_targets=st.lists(st.sampled_from(["local", "s3", "azure-blob"]), max_size=2).map(
        tuple
    ),
)
"""Valid :class:`ExportCapabilities` values."""

_versions = st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)).map(
    lambda parts: ".".join(map(str, parts))
)

plugin_metadata = st.builds(
    PluginMetadata,
    name=st.text(_SLUG, min_size=1, max_size=20),
    version=_versions,
    provider_type=provider_types,
    description=_words,
    author=_words,
    license=st.sampled_from(["", "MIT", "LGPL-3.0-or-later"]),
    capabilities=export_capabilities,
    min_sdk_version=st.just("") | _versions,
    dependencies=st.lists(st.sampled_from(["httpx>=0.28", "attrs", "boto3<2"]), max_size=2).map(
        tuple
    ),
    build_time=st.none() | aware_datetimes,
    python_requires=st.sampled_from(["", ">=3.11", ">=3.11,<4"]),
)
"""Valid :class:`PluginMetadata` values."""


def vm_worlds(
    provider: ProviderType, *, min_size: int = 0, max_size: int = 50
) -> st.SearchStrategy[list[VMInfo]]:
    """Lists of VMs of one provider with unique ids, as a cloud would hold them.

    Ids are distinct decimal strings; names may repeat (clouds allow that).
    """
    return st.lists(
        vm_infos(provider=st.just(provider)),
        min_size=min_size,
        max_size=max_size,
        unique_by=lambda vm: vm.id,
    )


def worlds_of_size(provider: ProviderType, size: int) -> st.SearchStrategy[list[VMInfo]]:
    """Worlds of exactly ``size`` VMs with unique ids, cheap to draw even for hundreds.

    Ids are canonical decimal integers. Up to eight VMs are drawn in full from
    :func:`vm_infos`; larger worlds repeat them
    under fresh consecutive ids, cycling through every state and power state, so a world of
    several hundred VMs costs no more to generate than one of eight.
    """
    if size < 0:
        raise ValueError(f"size: must be >= 0, got {size}")
    distinct = min(size, 8)
    # Canonical decimal ids (no leading zeros), so APIs with integer ids can carry them.
    vms = vm_infos(provider=st.just(provider), ids=st.integers(1, 10**9).map(str))

    @st.composite
    def build(draw: st.DrawFn) -> list[VMInfo]:
        import attrs

        bases = draw(
            st.lists(vms, min_size=distinct, max_size=distinct, unique_by=lambda vm: vm.id)
        )
        if size == distinct:
            return bases
        start = draw(st.integers(1, 10**8))
        return [
            attrs.evolve(
                bases[index % distinct],
                id=str(start + index),
                state=VM_STATES[index % len(VM_STATES)],
                power_state=POWER_STATES[index % len(POWER_STATES)],
            )
            for index in range(size)
        ]

    return build()
