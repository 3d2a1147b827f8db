"""VMInfo's one-pass validation accepts and refuses exactly what its field validators do.

``VMInfo`` runs its field validators once per VM, behind a fast path for the common case
(``hypersdk.models._plain_vminfo``). Two references, each a class where attrs runs one
validator per field (how ``VMInfo`` was built before):

- a frozen copy, in this file, of the validators as they were when the fast path came:
  the fast path changed nothing;
- the validators ``VMInfo`` keeps today: whoever changes a validator and not the fast
  path (or the reverse) is told here.

For every input, hostile ones included, both must give the same values or the same
exception with the same message.
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
import types
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hypersdk import ConfigurationError, ProviderType, VMInfo
from hypersdk._validation import looks_secret, shown
from hypersdk.models import _VMINFO_CHECKS, _plain_vminfo

# --- The frozen reference: the validators as they were (hypersdk/_validation.py, models.py)
# Their decisions are copied; the message helpers (the bounded repr, the secret-looking
# key test) are hypersdk's own, as the fast path never words a message.

INT64_MAX = 2**63 - 1


def _where(instance: object, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def _fail(instance: object, attribute: attrs.Attribute[Any], allowed: str, value: object) -> None:
    raise ConfigurationError(
        f"{_where(instance, attribute)}: must be {allowed}, got {shown(value)}"
    )


def _string(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        _fail(instance, attribute, "a string", value)


def _non_empty_string(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        _fail(instance, attribute, "a non-empty string", value)


def _count(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > INT64_MAX:
        _fail(instance, attribute, "an integer >= 0", value)


def _aware(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, datetime):
        _fail(instance, attribute, "a timezone-aware datetime or None", value)
    elif value.tzinfo is None or value.utcoffset() is None:
        _fail(
            instance,
            attribute,
            "a timezone-aware datetime (naive datetimes are ambiguous; "
            "use datetime.now(timezone.utc) or .replace(tzinfo=...))",
            value,
        )


def _ip(text: str) -> bool:
    octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    if re.fullmatch(rf"{octet}(?:\.{octet}){{3}}", text):
        return True
    if ":" not in text:
        return False
    try:
        socket.inet_pton(socket.AF_INET6, text)
    except (OSError, ValueError):
        pass
    else:
        return True
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _ip_addresses(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple):
        _fail(instance, attribute, "a sequence of strings", value)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigurationError(
                f"{_where(instance, attribute)}[{index}]: must be a string, got {shown(item)}"
            )
    for item in value:
        if not _ip(item):
            _fail(instance, attribute, "a sequence of IPv4/IPv6 addresses", item)


def _string_mapping(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Mapping):
        _fail(instance, attribute, "a mapping of strings", value)
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ConfigurationError(
                f"{_where(instance, attribute)}: keys must be non-empty strings, got {shown(key)}"
            )
        if not isinstance(item, str):
            masked = f"a value of type {type(item).__name__}" if looks_secret(key) else shown(item)
            raise ConfigurationError(
                f"{_where(instance, attribute)}[{shown(key)}]: must be a string, got {masked}"
            )


def _to_tuple(value: Any) -> Any:
    # Unconvertible values are handed on unchanged, for the validator to name the field.
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Mapping):
        return value
    try:
        return tuple(value)
    except Exception:
        return value


def _to_mapping(value: Any) -> Any:
    if isinstance(value, types.MappingProxyType):
        return value
    try:
        return types.MappingProxyType(dict(value))
    except Exception:
        return value


def _frozen_reference() -> type[Any]:
    def text(validator: Any, **extra: Any) -> Any:
        return attrs.field(validator=validator, **extra)

    fields = {
        "provider": text(_non_empty_string, converter=ProviderType),  # NewType: identity
        "id": text(_non_empty_string),
        "name": text(_non_empty_string),
        "state": text(_string, default=""),
        "location": text(_string, default=""),
        "power_state": text(_string, default=""),
        "guest_os": text(_string, default=""),
        "memory_mb": attrs.field(default=0, validator=_count),
        "num_cpus": attrs.field(default=0, validator=_count),
        "storage_gb": attrs.field(default=0, validator=_count),
        "ip_addresses": attrs.field(factory=tuple, converter=_to_tuple, validator=_ip_addresses),
        "tags": attrs.field(factory=dict, converter=_to_mapping, validator=_string_mapping),
        "metadata": attrs.field(factory=dict, converter=_to_mapping, validator=_string_mapping),
        "created_at": attrs.field(default=None, validator=_aware),
        "updated_at": attrs.field(default=None, validator=_aware),
    }
    return attrs.make_class("VMInfo", fields, frozen=True, kw_only=True)


def _live_reference() -> type[Any]:
    # VMInfo's own fields, converters and (kept) validators, run by attrs one per field.
    kept = {attribute.name: validator for attribute, validator in _VMINFO_CHECKS._checks}
    fields = {
        field.name: attrs.field(
            default=field.default, validator=kept.get(field.name), converter=field.converter
        )
        for field in attrs.fields(VMInfo)
    }
    return attrs.make_class("VMInfo", fields, frozen=True, kw_only=True)


FROZEN = _frozen_reference()
LIVE = _live_reference()
NAMES = [field.name for field in attrs.fields(VMInfo)]


def outcome(cls: type[Any], fields: dict[str, Any]) -> tuple[Any, ...]:
    """What building ``cls(**fields)`` gives: its values, or its error's type and text."""
    try:
        built = cls(**fields)
    except Exception as error:  # hostile values may raise anything
        return ("error", type(error), str(error))
    return ("ok", *(_plain(getattr(built, name)) for name in NAMES))


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


# --- Inputs: realistic values next to hostile ones


class Text(str):
    """A str subclass: isinstance says str, the fast path's exact type checks do not."""

    __slots__ = ()


class NotIterable:
    """Iterating raises (the same way every time: the references see what VMInfo saw)."""

    def __iter__(self) -> Any:
        raise RuntimeError("boom")

    def keys(self) -> Any:
        raise RuntimeError("boom")


class NoOffset(tzinfo):
    """A tzinfo whose utcoffset is None: such a datetime is naive."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


class Boom(tzinfo):
    """A hostile tzinfo."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        raise RuntimeError("boom")

    def dst(self, dt: datetime | None) -> timedelta | None:
        raise RuntimeError("boom")

    def tzname(self, dt: datetime | None) -> str | None:
        raise RuntimeError("boom")


hostile_text = st.sampled_from(
    ["", " ", "\t\n", "\x00", "a\x00b", "\ud800", "web\udfff", "\u00a0", "\u3000x", "\U0001f600"]
)
texts = st.one_of(
    st.sampled_from(["web-1", "digitalocean", "active", "fra1", "Ubuntu 24.04"]),
    hostile_text,
    st.text(max_size=12),
    st.text(max_size=5).map(Text),
)
wrong_types = st.sampled_from(
    [None, 0, 1, True, False, 1.5, math.nan, b"web", ["web"], ("a",), {"a": "b"}, object()]
)
counts = st.one_of(
    st.integers(-3, 5000),
    st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**30, -(10**30), True, False]),
    st.sampled_from([1.0, 2.5, "4", None, math.inf]),
)
addresses = st.one_of(
    st.ip_addresses().map(str),
    st.sampled_from(
        [
            "203.0.113.7",
            "256.1.1.1",
            "1.2.3.04",
            "1.2.3.4\n",
            " 1.2.3.4",
            "\uff11.2.3.4",
            "::ffff:1.2.3.4",
            "fe80::1%eth0",
            "fe80::1%",
            "1::2::3",
            ":",
            "",
            "\x00",
            "\ud800",
            "2a03:b0c0:3:d0::1:2",
        ]
    ),
    st.text(alphabet="0123456789abcdef.:%", max_size=20),
    st.sampled_from([1, None, b"1.2.3.4", Text("1.2.3.4"), Text("::1")]),
)
address_lists = st.one_of(
    st.lists(addresses, max_size=4),
    st.lists(addresses, max_size=3).map(tuple),
    addresses,  # a bare value: a str is one address, anything else is refused or iterated
    st.sampled_from([{"a": "b"}, 5, None, NotIterable()]),
)
keys = st.one_of(
    st.sampled_from(["env", "team", "", " ", "\x00", "\ud800"]),
    st.text(max_size=6),
    st.sampled_from([1, None, b"k", (1, 2), Text("k")]),
)
values = st.one_of(
    st.sampled_from(["prod", "", "\x00", "\ud800"]),
    st.text(max_size=6),
    st.sampled_from([1, None, True, b"v", ["v"], Text("v")]),
)
plain_mappings = st.dictionaries(keys, values, max_size=5)
mappings = st.one_of(
    plain_mappings,
    plain_mappings.map(types.MappingProxyType),
    plain_mappings.map(lambda mapping: list(mapping.items())),
    st.sampled_from([None, 5, "ab", ["ab", "cd"], [("a",)], [1, 2], object(), NotIterable()]),
)
moments = st.one_of(
    st.none(),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])),
    st.datetimes(),  # naive
    st.datetimes().map(lambda moment: moment.replace(tzinfo=NoOffset())),
    st.datetimes().map(lambda moment: moment.replace(tzinfo=Boom())),
    st.sampled_from(["2025-01-01T00:00:00Z", 0, 1.7e9, datetime(2025, 1, 1, tzinfo=UTC).date()]),
)

FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "provider": st.one_of(texts, wrong_types),
    "id": st.one_of(texts, wrong_types),
    "name": st.one_of(texts, wrong_types),
    "state": st.one_of(texts, wrong_types),
    "location": st.one_of(texts, wrong_types),
    "power_state": st.one_of(texts, wrong_types),
    "guest_os": st.one_of(texts, wrong_types),
    "memory_mb": counts,
    "num_cpus": counts,
    "storage_gb": counts,
    "ip_addresses": address_lists,
    "tags": mappings,
    "metadata": mappings,
    "created_at": moments,
    "updated_at": moments,
}


@st.composite
def vm_fields(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for VMInfo: usually valid, each field hostile now and then."""
    fields: dict[str, Any] = {"provider": "digitalocean", "id": "42", "name": "web-1"}
    hostile = draw(st.sets(st.sampled_from(NAMES), max_size=3))
    for name in NAMES:
        if name in hostile:
            fields[name] = draw(FIELD_VALUES[name])
        elif name not in fields and draw(st.booleans()):
            fields[name] = draw(VALID[name])
    if draw(st.integers(0, 20)) == 0:
        del fields[draw(st.sampled_from(["provider", "id", "name"]))]  # a required one missing
    return fields


VALID: dict[str, st.SearchStrategy[Any]] = {
    "state": st.sampled_from(["active", "off", ""]),
    "location": st.sampled_from(["fra1", "nyc3", ""]),
    "power_state": st.sampled_from(["on", "off", ""]),
    "guest_os": st.sampled_from(["Ubuntu 24.04 (LTS) x64", ""]),
    "memory_mb": st.integers(0, 2**20),
    "num_cpus": st.integers(0, 64),
    "storage_gb": st.integers(0, 10**5),
    "ip_addresses": st.lists(st.ip_addresses().map(str), max_size=3),
    "tags": st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=5),
    "metadata": st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=2),
    "created_at": st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
    "updated_at": st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
}


def one_hostile_field() -> st.SearchStrategy[dict[str, Any]]:
    """A realistic VM with exactly one field drawn from the hostile values."""
    return st.sampled_from(NAMES).flatmap(
        lambda name: FIELD_VALUES[name].map(lambda value: {**REALISTIC, name: value})
    )


REALISTIC: dict[str, Any] = {
    "provider": "digitalocean",
    "id": "300000042",
    "name": "web-000042",
    "state": "active",
    "location": "fra1",
    "power_state": "on",
    "guest_os": "Ubuntu 24.04 (LTS) x64",
    "memory_mb": 2048,
    "num_cpus": 2,
    "storage_gb": 50,
    "ip_addresses": ["203.0.113.7", "10.110.0.7", "2a03:b0c0:3:d0::1:2"],
    "tags": {"env": "prod", "team": "web"},
    "created_at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
}


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(vm_fields(), st.deferred(one_hostile_field)))
@example(REALISTIC)
@example({**REALISTIC, "memory_mb": True})
@example({**REALISTIC, "num_cpus": 2**63})
@example({**REALISTIC, "name": "\x00", "tags": {"k": 1}})
@example({**REALISTIC, "id": "\ud800", "ip_addresses": ["1.2.3.04"]})
@example({**REALISTIC, "created_at": datetime(2025, 1, 1)})
@example({**REALISTIC, "tags": {"env": None}, "metadata": {"": "x"}})
@example({**REALISTIC, "state": 3, "memory_mb": -1})  # two bad fields: the first is named
@example({**REALISTIC, "ip_addresses": {"1.2.3.4": "x"}})
@example({**REALISTIC, "tags": {"": "x"}})
@example({**REALISTIC, "metadata": {"": "x"}})
@example({**REALISTIC, "tags": {Text("k"): Text("v")}})
@example({**REALISTIC, "ip_addresses": ["1.2.3.4", "1::2::3"]})
@example({**REALISTIC, "ip_addresses": ["fe80::1%eth0"]})
@example({**REALISTIC, "ip_addresses": [Text("10.0.0.1")]})
@example({**REALISTIC, "updated_at": datetime(2025, 1, 1, tzinfo=NoOffset())})
@example({**REALISTIC, "updated_at": datetime(2025, 1, 1, tzinfo=Boom())})
@example({**REALISTIC, "guest_os": None})
@example({**REALISTIC, "provider": " "})
@example({**REALISTIC, "storage_gb": 2**31})
@example({**REALISTIC, "storage_gb": 2**63})
@example({**REALISTIC, "tags": {"api_token": 5}})
@example({**REALISTIC, "ip_addresses": NotIterable()})
def test_same_values_and_errors_as_the_validators(fields: dict[str, Any]) -> None:
    got = outcome(VMInfo, fields)
    assert got == outcome(FROZEN, fields)
    assert got == outcome(LIVE, fields)


@settings(max_examples=200)
@given(vm_fields())
def test_the_fast_path_accepts_only_what_the_validators_accept(fields: dict[str, Any]) -> None:
    # Stronger than equal outcomes: whatever the fast path calls plain, every kept
    # validator passes (so the fallback is never what makes a plain VM valid).
    with attrs.validators.disabled():
        try:
            built = VMInfo(**fields)
        except Exception:  # a converter refused it: not the fast path's case
            return
    try:
        plain = _plain_vminfo(built)
    except Exception:  # raising sends the VM to the validators
        plain = False
    if plain:
        _VMINFO_CHECKS.reference(built)


def test_realistic_vms_take_the_fast_path() -> None:
    # The point of the fast path: what providers build must not fall back.
    with attrs.validators.disabled():
        built = VMInfo(**REALISTIC)
        naive = attrs.evolve(built, created_at=datetime(2025, 1, 1))
    assert _plain_vminfo(built)
    assert not _plain_vminfo(naive)


def test_every_field_validator_is_kept_in_field_order() -> None:
    assert [attribute.name for attribute, _ in _VMINFO_CHECKS._checks] == NAMES
    assert all(field.validator is None for field in attrs.fields(VMInfo))


def test_validators_can_still_be_switched_off() -> None:
    with attrs.validators.disabled():
        assert VMInfo(provider="p", id="1", name="n", memory_mb=-1).memory_mb == -1
    with pytest.raises(ConfigurationError, match=r"VMInfo\.memory_mb: must be an integer >= 0"):
        VMInfo(provider="p", id="1", name="n", memory_mb=-1)


def test_evolve_validates() -> None:
    vm = VMInfo(provider="p", id="1", name="n")
    with pytest.raises(ConfigurationError, match=r"VMInfo\.name: must be a non-empty string"):
        attrs.evolve(vm, name=" ")


def test_a_subclass_still_validates_the_inherited_fields() -> None:
    @attrs.frozen(kw_only=True)
    class Tagged(VMInfo):
        extra: str = attrs.field(default="", validator=attrs.validators.instance_of(str))

    with pytest.raises(ConfigurationError, match=r"Tagged\.memory_mb: must be an integer >= 0"):
        Tagged(provider="p", id="1", name="n", memory_mb=-1)
    with pytest.raises(TypeError, match="extra"):
        Tagged(provider="p", id="1", name="n", extra=1)  # type: ignore[arg-type]
    assert Tagged(provider="p", id="1", name="n", extra="x").extra == "x"
