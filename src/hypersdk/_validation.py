"""Validators and converters shared by the models.

Every check raises :class:`~hypersdk.errors.ConfigurationError` with a message of the form
``"VMInfo.memory_mb: must be an integer >= 0, got -1"`` so the reader sees the class, the
field and what is allowed.
"""

from __future__ import annotations

import math
import types
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs

from hypersdk.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable

    Validator = Callable[[Any, attrs.Attribute[Any], Any], None]


def _where(instance: object, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def fail(instance: object, attribute: attrs.Attribute[Any], allowed: str, value: object) -> None:
    """Raise the one error shape every model validator uses."""
    raise ConfigurationError(
        f"{_where(instance, attribute)}: must be {allowed}, got {_shown(value)}"
    )


def string(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Any ``str`` (empty allowed: the neutral default)."""
    if not isinstance(value, str):
        fail(instance, attribute, "a string", value)


def non_empty_string(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A ``str`` with at least one non-space character."""
    if not isinstance(value, str) or not value.strip():
        fail(instance, attribute, "a non-empty string", value)


def boolean(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Exactly ``True`` or ``False`` (``1`` and ``"yes"`` are not booleans)."""
    if not isinstance(value, bool):
        fail(instance, attribute, "True or False", value)


def int_between(low: int, high: int | None = None) -> Validator:
    """An ``int`` (not ``bool``) in ``[low, high]``; ``high=None`` means no upper bound."""
    allowed = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < low
            or (high is not None and value > high)
        ):
            fail(instance, attribute, allowed, value)

    return check


def non_negative_seconds(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A finite number of seconds >= 0."""
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
    ):
        fail(instance, attribute, "a finite number of seconds >= 0", value)


def non_negative_duration(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A :class:`datetime.timedelta` that is not negative."""
    if not isinstance(value, timedelta) or value < timedelta(0):
        fail(instance, attribute, "a datetime.timedelta >= 0", value)


def aware_datetime_or_none(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    """``None`` or a timezone-aware :class:`datetime.datetime`."""
    if value is None:
        return
    if not isinstance(value, datetime):
        fail(instance, attribute, "a timezone-aware datetime or None", value)
    elif value.tzinfo is None or value.utcoffset() is None:
        fail(
            instance,
            attribute,
            "a timezone-aware datetime (naive datetimes are ambiguous; "
            "use datetime.now(timezone.utc) or .replace(tzinfo=...))",
            value,
        )


def string_items(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Every item of a tuple is a ``str``."""
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigurationError(
                f"{_where(instance, attribute)}[{index}]: must be a string, got {_shown(item)}"
            )


def string_mapping(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Every key and value of a mapping is a ``str`` (keys non-empty)."""
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ConfigurationError(
                f"{_where(instance, attribute)}: keys must be non-empty strings, got {_shown(key)}"
            )
        if not isinstance(item, str):
            raise ConfigurationError(
                f"{_where(instance, attribute)}[{key!r}]: must be a string, got {_shown(item)}"
            )


def to_tuple(value: Iterable[str]) -> tuple[str, ...]:
    """Freeze any iterable of strings (a bare ``str`` is one item, not its characters)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Mapping):
        raise ConfigurationError(f"expected a sequence of strings, got a mapping {_shown(value)}")
    try:
        return tuple(value)
    except TypeError:
        raise ConfigurationError(f"expected a sequence of strings, got {_shown(value)}") from None


def to_mapping(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> Mapping[str, str]:
    """Freeze a mapping into a read-only view of a private copy."""
    if isinstance(value, types.MappingProxyType):
        return value
    try:
        return types.MappingProxyType(dict(value))
    except (TypeError, ValueError):
        raise ConfigurationError(f"expected a mapping of strings, got {_shown(value)}") from None


class ValidatedOnce:
    """Run a class's field validators as one check, with a fast path for the common case.

    attrs calls one validator per field, each through a Python call; for a model built by
    the ten thousand (``VMInfo`` from a listing) those calls cost more than the fields'
    own checks. Use an instance as the class's ``field_transformer`` (it takes the
    validators off the fields and keeps them, in field order) and call :meth:`run` from
    ``__attrs_post_init__``.

    ``fast`` must accept only instances that every kept validator accepts: anything it
    does not accept, or that makes it raise, goes through the kept validators in field
    order, so what is refused and every message are exactly the validators' own.
    """

    __slots__ = ("_checks", "_fast")

    def __init__(self, fast: Callable[[Any], bool]) -> None:
        self._fast = fast
        self._checks: tuple[tuple[attrs.Attribute[Any], Validator], ...] = ()

    def __call__(self, cls: type, fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
        """The ``field_transformer``: keep each field's validator, leave the field none."""
        self._checks = tuple(
            (field, field.validator) for field in fields if field.validator is not None
        )
        return [field.evolve(validator=None) for field in fields]

    def run(self, instance: object) -> None:
        """Validate ``instance`` as attrs would have (nothing while validators are off)."""
        if _validators_disabled():  # attrs.validators.set_disabled / disabled()
            return
        try:
            if self._fast(instance):
                return
        except Exception:  # noqa: S110  (a hostile value: the validators below decide)
            pass
        self.reference(instance)

    def reference(self, instance: object) -> None:
        """Run every kept validator in field order, as attrs's ``__init__`` would."""
        for attribute, validator in self._checks:
            validator(instance, attribute, getattr(instance, attribute.name))


_validators_disabled: Final = attrs.validators.get_disabled
