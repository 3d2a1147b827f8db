"""The data hypersdk passes around: configs, VMs, filters, export options and results.

Every model is a frozen, slotted, keyword-only attrs class validated at construction:
a wrong value raises :class:`~hypersdk.errors.ConfigurationError` naming the field and
what is allowed. Collections are immutable (tuples and read-only mappings), so a model
can be shared between tasks and threads without copying.

Only the identifying fields are required; every other field has a neutral default
(empty string, 0, False, empty tuple or mapping, None), like Go's zero values.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import types
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final, NewType

import attrs

from hypersdk import _validation as v
from hypersdk._codecs import MAX_LEVEL
from hypersdk._redact import MASK, mask_url
from hypersdk.errors import ConfigurationError

__all__ = [
    "ProviderType",
    "Secret",
    "ProviderConfig",
    "VMInfo",
    "VMFilter",
    "ExportOptions",
    "ExportResult",
    "ExportCapabilities",
    "PluginMetadata",
    "search_matches",
]

ProviderType = NewType("ProviderType", str)
"""The identifier a provider registers under, such as ``"digitalocean"``."""

VSPHERE: Final = ProviderType("vsphere")
AWS: Final = ProviderType("aws")
AZURE: Final = ProviderType("azure")
GCP: Final = ProviderType("gcp")
HYPERV: Final = ProviderType("hyperv")
PROXMOX: Final = ProviderType("proxmox")
KUBEVIRT: Final = ProviderType("kubevirt")


def _to_provider_type(value: str) -> ProviderType:
    # Lets callers write ProviderConfig(type="aws") without wrapping in ProviderType.
    return ProviderType(value)


class Secret:
    """A credential that never shows itself by accident.

    ``repr``, ``str``, ``format`` and f-strings all print ``**********``; only
    :meth:`reveal` returns the value. Two secrets are equal when their values are
    (compared in constant time).

    >>> token = Secret("dop_v1_abc")
    >>> f"{token}"
    '**********'
    >>> token.reveal()
    'dop_v1_abc'
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise ConfigurationError(f"Secret: must wrap a string, got {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the wrapped credential; use it only where the credential is sent."""
        return self._value

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        return format(MASK, format_spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac  # pulls in OpenSSL: only when secrets are compared

        # surrogatepass: a lone surrogate is a legal str, and comparing must not raise.
        return hmac.compare_digest(
            self._value.encode("utf-8", "surrogatepass"),
            other._value.encode("utf-8", "surrogatepass"),
        )

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        return (Secret, (self._value,))


def _to_secret(value: Secret | str | None) -> Secret | None:
    checked: object = value  # callers may pass anything at run time
    if checked is None or isinstance(checked, Secret):
        return checked
    if isinstance(checked, str):
        return Secret(checked) if checked else None
    raise ConfigurationError(
        f"ProviderConfig.password: must be a Secret, a string or None, got {type(checked).__name__}"
    )


def _secret_or_none(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, Secret):
        v.fail(instance, attribute, "a Secret or None", type(value).__name__)


def _to_path(value: str | Path) -> Path:
    # What cannot become a Path is left to _path, which names the class and field.
    if isinstance(value, str) and value and "\x00" not in value:
        return Path(value)
    return value  # type: ignore[return-value]


def _path(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # A Path is checked too: Path("a\x00b") is constructible but no system call takes it.
    if not isinstance(value, Path) or "\x00" in str(value):
        v.fail(instance, attribute, "a non-empty path without NUL bytes", value)


def _mapping_field(*, sensitive: bool = False) -> Any:
    # Read-only mappings are not hashable: leave them out of __hash__, keep them in __eq__.
    return attrs.field(
        factory=dict,
        converter=v.freeze_mapping,
        validator=v.string_mapping,
        hash=False,
        repr=lambda mapping: repr(dict(mapping)),
        metadata={"sensitive": sensitive},
    )


@attrs.frozen(kw_only=True)
class ProviderConfig:
    """How to reach and authenticate to one provider.

    ``password`` accepts a :class:`Secret` or a plain string (wrapped for you).
    ``timeout`` is in seconds; ``0`` lets the provider choose its default.
    ``metadata`` carries provider-specific settings; values under keys that look secret
    (token, key, secret, password, bearer, cookie, sas, ...) are masked in ``repr`` and
    :func:`~hypersdk.to_dict`, and so are the userinfo and query of ``endpoint``
    (``https://admin:pw@host/?sig=...``). Validation errors never echo such a value.
    """

    type: ProviderType = attrs.field(converter=_to_provider_type, validator=v.non_empty_string)
    endpoint: str = attrs.field(default="", validator=v.string, metadata={"sensitive": True})
    host: str = attrs.field(default="", validator=v.string)
    port: int = attrs.field(default=0, validator=v.int_between(0, 65535))
    username: str = attrs.field(default="", validator=v.string)
    password: Secret | None = attrs.field(
        default=None, converter=_to_secret, validator=_secret_or_none
    )
    region: str = attrs.field(default="", validator=v.string)
    insecure: bool = attrs.field(default=False, validator=v.boolean)
    timeout: float = attrs.field(default=0.0, validator=v.non_negative_seconds)
    metadata: Mapping[str, str] = _mapping_field(sensitive=True)

    def __repr__(self) -> str:
        shown_metadata = {
            key: (MASK if v.looks_secret(key) else value) for key, value in self.metadata.items()
        }
        shown = {field.name: getattr(self, field.name) for field in attrs.fields(type(self))}
        shown["endpoint"] = mask_url(self.endpoint)
        shown["metadata"] = shown_metadata
        fields = ", ".join(f"{name}={value!r}" for name, value in shown.items())
        return f"ProviderConfig({fields})"

    def secret(self, key: str) -> Secret | None:
        """Return ``metadata[key]`` wrapped in a :class:`Secret`, or ``None`` if absent."""
        checked: object = key
        if not isinstance(checked, str):
            raise ConfigurationError(
                f"ProviderConfig.secret: key must be a string, got {type(checked).__name__}"
            )
        value = self.metadata.get(key)
        return Secret(value) if value else None


@functools.cache
def _dotted_quad() -> re.Pattern[str]:
    # Exactly the IPv4 strings ipaddress.IPv4Address accepts (0-255, no leading zeros).
    octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    return re.compile(rf"{octet}(?:\.{octet}){{3}}")


def _is_ipv6(text: str) -> bool:
    import ipaddress

    inet_pton, _, ipv6 = _inet_pton()
    try:
        # The C parser first: ipaddress's pure-Python one is most of VMInfo's cost when a
        # provider lists thousands of VMs.
        inet_pton(ipv6, text)
    except (OSError, ValueError):
        pass
    else:
        return True
    try:
        ipaddress.IPv6Address(text)  # what inet_pton refuses but ipaddress takes (fe80::1%eth0)
    except ValueError:
        return False
    return True


def _ip_addresses(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    v.string_items(instance, attribute, value)
    dotted_quad = _dotted_quad()
    for item in value:
        # Listing thousands of VMs builds thousands of VMInfo: the common dotted quad skips
        # ipaddress's slower parser, and a colon (never valid in IPv4) means IPv6. The
        # accepted strings are exactly ipaddress.ip_address's (tests/test_ip_validation.py).
        if not (dotted_quad.fullmatch(item) or (":" in item and _is_ipv6(item))):
            v.fail(instance, attribute, "a sequence of IPv4/IPv6 addresses", item)


# The largest count the fast path takes as plainly valid; a bigger one is left to the field
# validator (which has the last word on limits). Far above any real MiB, CPU or GiB figure.
_PLAIN_COUNT: Final = 2**31 - 1


def _plain_vminfo(vm: VMInfo) -> bool:
    # VMInfo's common case in one pass, without a call per field: True only for values
    # every field validator accepts, and stricter where that costs nothing (exact types,
    # stdlib time zones, counts below 2**31), so whatever is not plain goes to the
    # validators, which decide and word the error. tests/test_vminfo_fast_path.py fuzzes
    # this against the validators: change it with them.
    provider, id_, name = vm.provider, vm.id, vm.name
    if not (
        type(provider) is str
        and type(id_) is str
        and type(name) is str
        and type(vm.state) is str
        and type(vm.location) is str
        and type(vm.power_state) is str
        and type(vm.guest_os) is str
        and provider.strip()
        and id_.strip()
        and name.strip()
    ):
        return False
    memory_mb, num_cpus, storage_gb = vm.memory_mb, vm.num_cpus, vm.storage_gb
    if not (
        type(memory_mb) is int
        and type(num_cpus) is int
        and type(storage_gb) is int
        # For ints, the OR is negative if one is and below 2**31 only if all are.
        and 0 <= (memory_mb | num_cpus | storage_gb) <= _PLAIN_COUNT
    ):
        return False
    created_at, updated_at = vm.created_at, vm.updated_at
    if not (
        (
            created_at is None
            or (type(created_at) is datetime and type(created_at.tzinfo) is timezone)
        )
        and (
            updated_at is None
            or (type(updated_at) is datetime and type(updated_at.tzinfo) is timezone)
        )
    ):
        return False
    addresses = vm.ip_addresses
    if type(addresses) is not tuple:
        return False
    if addresses:
        # The C parser raises (then the validators decide) unless the address is IPv6 or
        # a dotted quad; for those, it accepts exactly what ipaddress does.
        inet_pton, ipv4, ipv6 = _inet_pton()
        for address in addresses:
            if type(address) is not str:
                return False
            inet_pton(ipv6 if ":" in address else ipv4, address)
    for mapping in (vm.tags, vm.metadata):
        if type(mapping) is not types.MappingProxyType:
            return False
        if mapping:
            for key, value in mapping.items():
                if type(key) is not str or not key or type(value) is not str:
                    return False
    return True


@functools.cache
def _inet_pton() -> tuple[Callable[[int, str], bytes], int, int]:
    # Looked up once: importing socket here on every address would cost more than the
    # parser (and ``import hypersdk`` alone does not need socket).
    import socket

    return socket.inet_pton, socket.AF_INET, socket.AF_INET6


_VMINFO_CHECKS: Final = v.ValidatedOnce(_plain_vminfo)


@attrs.frozen(kw_only=True, field_transformer=_VMINFO_CHECKS)
class VMInfo:
    """One virtual machine as a provider reports it.

    ``state`` and ``power_state`` are the provider's words (for example ``"active"`` and
    ``"on"``); ``memory_mb``, ``num_cpus`` and ``storage_gb`` are 0 when unknown.
    ``created_at``/``updated_at`` are timezone-aware or ``None``.
    """

    provider: ProviderType = attrs.field(converter=_to_provider_type, validator=v.non_empty_string)
    id: str = attrs.field(validator=v.non_empty_string)
    name: str = attrs.field(validator=v.non_empty_string)
    state: str = attrs.field(default="", validator=v.string)
    location: str = attrs.field(default="", validator=v.string)
    power_state: str = attrs.field(default="", validator=v.string)
    guest_os: str = attrs.field(default="", validator=v.string)
    memory_mb: int = attrs.field(default=0, validator=v.int_between(0))
    num_cpus: int = attrs.field(default=0, validator=v.int_between(0))
    storage_gb: int = attrs.field(default=0, validator=v.int_between(0))
    ip_addresses: tuple[str, ...] = attrs.field(
        factory=tuple, converter=v.freeze_tuple, validator=_ip_addresses
    )
    tags: Mapping[str, str] = _mapping_field()
    metadata: Mapping[str, str] = _mapping_field()
    created_at: datetime | None = attrs.field(default=None, validator=v.aware_datetime_or_none)
    updated_at: datetime | None = attrs.field(default=None, validator=v.aware_datetime_or_none)

    def __attrs_post_init__(self) -> None:
        # The field validators above, run once for the whole VM (a listing builds
        # thousands): same accepted values, same errors, about half the cost.
        _VMINFO_CHECKS.run(self)


def _glob(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    v.string(instance, attribute, value)
    if "\x00" in value:
        v.fail(instance, attribute, "a glob pattern without NUL bytes", value)


@attrs.frozen(kw_only=True)
class VMFilter:
    """Which VMs ``list_vms`` should return; :meth:`matches` is the reference semantics.

    An empty (default) field places no constraint. A VM matches when it meets every
    non-empty constraint:

    ``name_pattern``
        A shell-style glob (``*``, ``?``, ``[abc]``, ``[!abc]``) matched against the
        *whole* name, ignoring case (both sides are case-folded). ``"web-*"`` matches
        ``"Web-1"``; ``"web"`` matches only a VM named ``web`` (in any case).
    ``state``, ``power_state``, ``location``
        Equal to the VM's field, ignoring case.
    ``tags``
        Every ``key: value`` pair must be present on the VM exactly (keys and values
        compare case-sensitively; an empty value matches only an empty value).
    ``min_memory_mb``, ``min_cpus``
        Inclusive minimums: a VM with exactly ``min_cpus`` CPUs matches. ``0`` means none.
    """

    name_pattern: str = attrs.field(default="", validator=_glob)
    state: str = attrs.field(default="", validator=v.string)
    power_state: str = attrs.field(default="", validator=v.string)
    tags: Mapping[str, str] = _mapping_field()
    location: str = attrs.field(default="", validator=v.string)
    min_memory_mb: int = attrs.field(default=0, validator=v.int_between(0))
    min_cpus: int = attrs.field(default=0, validator=v.int_between(0))

    def matches(self, vm: VMInfo) -> bool:
        """Return whether ``vm`` satisfies every constraint of this filter."""
        _require_vm("VMFilter.matches", vm)
        if self.name_pattern and not fnmatch.fnmatchcase(
            vm.name.casefold(), self.name_pattern.casefold()
        ):
            return False
        for wanted, actual in (
            (self.state, vm.state),
            (self.power_state, vm.power_state),
            (self.location, vm.location),
        ):
            if wanted and wanted.casefold() != actual.casefold():
                return False
        if any(vm.tags.get(key) != value for key, value in self.tags.items()):
            return False
        return vm.memory_mb >= self.min_memory_mb and vm.num_cpus >= self.min_cpus

    @property
    def is_empty(self) -> bool:
        """``True`` when the filter places no constraint at all."""
        return self == VMFilter()


def _require_vm(where: str, vm: object) -> None:
    if not isinstance(vm, VMInfo):
        raise ConfigurationError(f"{where}: vm must be a VMInfo, got {type(vm).__name__}")


def search_matches(vm: VMInfo, query: str) -> bool:
    """The reference semantics of ``Provider.search_vms(query)``.

    The query is split on whitespace into terms; a VM matches when *every* term occurs,
    ignoring case, as a substring of at least one of: its id, name, location, guest OS,
    state, an IP address, a tag key or a tag value. An empty or all-space query matches
    every VM.

    >>> vm = VMInfo(provider=ProviderType("demo"), id="42", name="web-1", location="fra1")
    >>> search_matches(vm, "WEB fra")
    True
    """
    _require_vm("search_matches", vm)
    checked: object = query
    if not isinstance(checked, str):
        raise ConfigurationError(
            f"search_matches: query must be a string, got {type(checked).__name__}"
        )
    terms = query.casefold().split()
    if not terms:
        return True
    haystack = [vm.id, vm.name, vm.location, vm.guest_os, vm.state, *vm.ip_addresses]
    for key, value in vm.tags.items():
        haystack.extend((key, value))
    folded = [text.casefold() for text in haystack]
    return all(any(term in text for text in folded) for term in terms)


def _format_name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        v.fail(instance, attribute, "a non-empty format name such as 'qcow2'", value)


# 0 means "the algorithm's default"; the export toolkit checks the range per algorithm.
_MAX_COMPRESSION_LEVEL: Final = MAX_LEVEL


@attrs.frozen(kw_only=True)
class ExportOptions:
    """What ``export_vm`` should produce and where.

    ``output_path`` is the directory the export writes into (a ``str`` is converted).
    ``compression_level`` is 0 for the algorithm's default, else 1-22 (the export toolkit
    narrows it per algorithm, for example 1-9 for gzip). ``metadata`` carries
    provider-specific options.
    """

    output_path: Path = attrs.field(converter=_to_path, validator=_path)
    format: str = attrs.field(validator=_format_name)
    compress: bool = attrs.field(default=False, validator=v.boolean)
    compression_level: int = attrs.field(
        default=0, validator=v.int_between(0, _MAX_COMPRESSION_LEVEL)
    )
    include_snapshots: bool = attrs.field(default=False, validator=v.boolean)
    remove_cdrom: bool = attrs.field(default=False, validator=v.boolean)
    metadata: Mapping[str, str] = _mapping_field()


def _sha256_or_empty(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or (
        value and (len(value) != 64 or value.strip("0123456789abcdef"))
    ):
        v.fail(instance, attribute, "'' or a lowercase SHA-256 hex digest (64 characters)", value)


def _relative_files(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    v.string_items(instance, attribute, value)
    for item in value:
        path = Path(item)
        if not item or path.is_absolute() or ".." in path.parts:
            v.fail(instance, attribute, "paths relative to output_path, inside it", item)


@attrs.frozen(kw_only=True)
class ExportResult:
    """What an export wrote.

    ``files`` are relative to ``output_path``; the first is the main file, whose SHA-256
    hex digest is ``checksum``. ``size`` is the uncompressed size in bytes and
    ``compressed_size`` the size on disk when compressed (0 otherwise).
    """

    provider: ProviderType = attrs.field(converter=_to_provider_type, validator=v.non_empty_string)
    vm_name: str = attrs.field(validator=v.non_empty_string)
    vm_id: str = attrs.field(validator=v.non_empty_string)
    format: str = attrs.field(validator=_format_name)
    output_path: Path = attrs.field(converter=_to_path, validator=_path)
    files: tuple[str, ...] = attrs.field(
        factory=tuple, converter=v.freeze_tuple, validator=_relative_files
    )
    size: int = attrs.field(default=0, validator=v.int_between(0))
    compressed_size: int = attrs.field(default=0, validator=v.int_between(0))
    checksum: str = attrs.field(default="", validator=_sha256_or_empty)
    duration: timedelta = attrs.field(factory=timedelta, validator=v.non_negative_duration)
    metadata: Mapping[str, str] = _mapping_field()


def _format_names(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    v.string_items(instance, attribute, value)
    for item in value:
        if not item.strip() or item != item.strip():
            v.fail(instance, attribute, "non-empty names without surrounding spaces", item)


@attrs.frozen(kw_only=True)
class ExportCapabilities:
    """What a provider can export. ``max_vm_size_gb`` is 0 when there is no limit."""

    supported_formats: tuple[str, ...] = attrs.field(
        factory=tuple, converter=v.freeze_tuple, validator=_format_names
    )
    supports_compression: bool = attrs.field(default=False, validator=v.boolean)
    supports_streaming: bool = attrs.field(default=False, validator=v.boolean)
    supports_snapshots: bool = attrs.field(default=False, validator=v.boolean)
    max_vm_size_gb: int = attrs.field(default=0, validator=v.int_between(0))
    supported_targets: tuple[str, ...] = attrs.field(
        factory=tuple, converter=v.freeze_tuple, validator=v.string_items
    )

    def supports_format(self, format: str) -> bool:
        """Return whether ``format`` is one of ``supported_formats`` (ignoring case)."""
        checked: object = format
        if not isinstance(checked, str):
            raise ConfigurationError(
                "ExportCapabilities.supports_format: format must be a string, "
                f"got {type(checked).__name__}"
            )
        return format.casefold() in {name.casefold() for name in self.supported_formats}


def _pep440(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    from packaging.version import InvalidVersion, Version

    allow_empty = attribute.name == "min_sdk_version"
    if not isinstance(value, str) or (not value and not allow_empty):
        v.fail(instance, attribute, "a PEP 440 version such as '1.2.0'", value)
    if value:
        try:
            Version(value)
        except (InvalidVersion, RecursionError):
            v.fail(instance, attribute, "a PEP 440 version such as '1.2.0'", value)


def _specifier(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    v.string(instance, attribute, value)
    try:
        SpecifierSet(value)
    except (InvalidSpecifier, RecursionError):
        v.fail(instance, attribute, "'' or a version specifier such as '>=3.11'", value)


@functools.cache
def _plain_requirement() -> re.Pattern[str]:
    # A distribution name with, optionally, comma-joined specifiers of release numbers and
    # no spaces ("httpx>=0.28,<1", "msgspec"): always valid PEP 508. ~= needs two release
    # parts; a trailing .* only follows == and !=. tests/test_requirement_fast_path.py
    # holds that whatever this accepts, packaging accepts.
    release = r"[0-9]+(?:\.[0-9]+)*"
    one = rf"(?:~={release}\.[0-9]+|(?:==|!=){release}(?:\.\*)?|(?:<=|>=|<|>){release})"
    name = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
    return re.compile(rf"{name}(?:{one}(?:,{one})*)?", re.ASCII)


def _requirements(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    v.string_items(instance, attribute, value)
    plain = _plain_requirement().fullmatch
    for item in value:
        # Plain ones need no parse: packaging.requirements (with its markers, tags and
        # tokenizer) costs every application that loads a plugin ~15 ms of start-up.
        if type(item) is str and plain(item):
            continue
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            Requirement(item)
        except (InvalidRequirement, RecursionError):
            v.fail(instance, attribute, "PEP 508 requirements such as 'httpx>=0.28'", item)


def _default_capabilities(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, ExportCapabilities):
        v.fail(instance, attribute, "an ExportCapabilities", type(value).__name__)


@attrs.frozen(kw_only=True)
class PluginMetadata:
    """What a plugin module declares about itself as ``PLUGIN_INFO``.

    ``version`` is the plugin's own PEP 440 version; ``min_sdk_version`` the oldest
    hypersdk it works with (``""``: any); ``python_requires`` a specifier such as
    ``">=3.11"`` (``""``: any); ``dependencies`` PEP 508 requirement strings.
    """

    name: str = attrs.field(validator=v.non_empty_string)
    version: str = attrs.field(validator=_pep440)
    provider_type: ProviderType = attrs.field(
        converter=_to_provider_type, validator=v.non_empty_string
    )
    description: str = attrs.field(default="", validator=v.string)
    author: str = attrs.field(default="", validator=v.string)
    license: str = attrs.field(default="", validator=v.string)
    capabilities: ExportCapabilities = attrs.field(
        factory=ExportCapabilities, validator=_default_capabilities
    )
    min_sdk_version: str = attrs.field(default="", validator=_pep440)
    dependencies: tuple[str, ...] = attrs.field(
        factory=tuple, converter=v.freeze_tuple, validator=_requirements
    )
    build_time: datetime | None = attrs.field(default=None, validator=v.aware_datetime_or_none)
    python_requires: str = attrs.field(default="", validator=_specifier)
