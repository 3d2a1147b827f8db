"""The one family of value checks: every run-time check of a value in hypersdk is here.

Two kinds, one definition of each rule:

- **predicates**, ``is_*(value, ...) -> bool``, for a function's arguments: the caller
  raises, naming its own argument (``"chunk_size: must be an integer from 4096 to ..."``);
- **field validators** (``int_between``, ``non_negative_seconds``, ``seconds_between``, ...),
  attrs validators built on the predicates, which raise
  :class:`~hypersdk.errors.ConfigurationError` with a message of the form
  ``"VMInfo.memory_mb: must be an integer >= 0, got -1"`` so the reader sees the class, the
  field and what is allowed.

(The contract checks of the conformance suite, ``hypersdk_testing._checks``, are another
thing: they judge a plugin's behaviour, not a value.)
"""

from __future__ import annotations

import functools
import math
import os
import re
import reprlib
import types
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from hypersdk.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable

    import attrs

    Validator = Callable[[Any, attrs.Attribute[Any], Any], None]

# Go's counterparts of the integer fields are int64; a bigger number is a mistake, and
# one of more than 4,300 digits could not even be written as JSON.
INT64_MAX: Final = 2**63 - 1

# Longer than any real timeout, and short enough for every clock and socket API
# (threading.TIMEOUT_MAX, select, SO_RCVTIMEO) to accept.
MAX_SECONDS: Final = 366 * 24 * 3600.0

# Words that make a key or field name look like it holds a credential. Substrings for
# the unambiguous words; whole words (split on punctuation and camelCase) for short
# ones that occur inside innocent words ("sas" in "kansas").
_SECRET_SUBSTRINGS: Final = (
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "credential",
    "auth",
    "bearer",
    "cookie",
    "signature",
    "jwt",
)
_SECRET_WORDS: Final = frozenset({"sas", "sig", "pwd", "pass", "otp", "session"})
# Split on punctuation in either case ("X-SAS", "Session"), and between camelCase words.
_WORD_SPLIT: Final = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


@functools.lru_cache(maxsize=1024)
def looks_secret(name: str) -> bool:
    """Whether a key or field called ``name`` probably holds a credential."""
    lowered = name.lower()
    if any(word in lowered for word in _SECRET_SUBSTRINGS):
        return True
    return any(word.lower() in _SECRET_WORDS for word in _WORD_SPLIT.split(name))


def _where(instance: object, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def _repr_limits() -> reprlib.Repr:
    limits = reprlib.Repr()
    limits.maxlevel = 3  # deeply nested values must not recurse (RecursionError)
    limits.maxstring = 60
    limits.maxother = 60
    limits.maxlong = 40
    return limits


_REPR: Final = _repr_limits()


def shown(value: object) -> str:
    """A short, safe ``repr`` for an error message: bounded in depth and length.

    Never raises: a value whose repr fails (a hostile ``__repr__``, an int too long to
    print) is shown by its type.
    """
    try:
        text = _REPR.repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def path_argument(name: str, value: object) -> Path:
    """``value`` as a :class:`~pathlib.Path`, or a ConfigurationError naming ``name``.

    Allowed: a ``str`` or ``os.PathLike`` whose ``__fspath__`` gives a ``str`` that is not
    empty and holds no NUL and no unpaired surrogate (neither can name a file). The
    object's ``__fspath__`` is called once, and whatever it raises becomes the error.
    """
    if not isinstance(value, str | os.PathLike):
        raise ConfigurationError(
            f"{name}: must be a path (str or os.PathLike), got {type(value).__name__}"
        )
    try:
        text = os.fspath(value)
    except Exception as exc:  # a broken PathLike is the caller's bug, not ours
        raise ConfigurationError(
            f"{name}: {type(value).__name__}.__fspath__ failed ({type(exc).__name__})"
        ) from None
    if isinstance(text, str) and text and "\0" not in text:
        try:
            os.fsencode(text)  # a lone surrogate cannot name a file
        except UnicodeError:
            pass
        else:
            return Path(text)
    raise ConfigurationError(
        f"{name}: must be a non-empty text path without NUL characters or unpaired "
        f"surrogates, got {shown(text)}"
    )


def _shown_for(attribute: attrs.Attribute[Any], value: object, key: object = None) -> str:
    # The value of a credential is never echoed, only its type.
    if attribute.metadata.get("sensitive") or (isinstance(key, str) and looks_secret(key)):
        return f"a value of type {type(value).__name__}"
    return shown(value)


def fail(instance: object, attribute: attrs.Attribute[Any], allowed: str, value: object) -> None:
    """Raise the one error shape every model validator uses."""
    raise ConfigurationError(
        f"{_where(instance, attribute)}: must be {allowed}, got {_shown_for(attribute, value)}"
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


# --- predicates: for a function's arguments; the caller names the argument -------------


def is_int_between(value: object, low: int, high: int | None = None) -> bool:
    """Whether ``value`` is an ``int`` (not ``bool``) in ``[low, high]`` (``None``: no top)."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= low
        and (high is None or value <= high)
    )


def is_seconds(value: object, *, at_most: float = MAX_SECONDS, above_zero: bool = False) -> bool:
    """Whether ``value`` is a finite number of seconds from 0 (or above 0) to ``at_most``.

    ``at_most`` defaults to :data:`MAX_SECONDS` (a year): any bound a clock or socket API
    accepts.
    """
    # Compare before math.isfinite: it raises OverflowError for an int like 10**400.
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 <= value <= at_most
        and not (above_zero and value == 0)
        and math.isfinite(value)
    )


# --- field validators: attrs validators that name the class and field -------------------


def int_between(low: int, high: int | None = None) -> Validator:
    """An ``int`` (not ``bool``) in ``[low, high]``; ``high=None`` means no upper bound."""
    if high is None:
        high = INT64_MAX
    allowed = f"an integer >= {low}" if high == INT64_MAX else f"an integer from {low} to {high}"

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not is_int_between(value, low, high):
            fail(instance, attribute, allowed, value)

    return check


def non_negative_seconds(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A finite number of seconds from 0 to :data:`MAX_SECONDS` (a year)."""
    if not is_seconds(value):
        fail(instance, attribute, "a finite number of seconds >= 0, at most a year", value)


def seconds_between(high: float, *, above_zero: bool = False) -> Validator:
    """A finite number of seconds from 0 (or above 0, with ``above_zero``) to ``high``."""
    allowed = f"a number of seconds {'>' if above_zero else '>='} 0 and <= {high:g}"

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not is_seconds(value, at_most=high, above_zero=above_zero):
            fail(instance, attribute, allowed, value)

    return check


def non_negative_duration(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A :class:`datetime.timedelta` that is not negative."""
    if not isinstance(value, timedelta) or value < timedelta(0):
        fail(instance, attribute, "a datetime.timedelta >= 0", value)


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

    __slots__ = ("_checks", "_disabled", "_fast")

    def __init__(self, fast: Callable[[Any], bool]) -> None:
        import attrs  # the models import it anyway; here only where a class is built

        self._fast = fast
        self._disabled = attrs.validators.get_disabled  # set_disabled() / disabled()
        self._checks: tuple[tuple[attrs.Attribute[Any], Validator], ...] = ()

    def __call__(self, cls: type, fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
        """The ``field_transformer``: keep each field's validator, leave the field none."""
        self._checks = tuple(
            (field, field.validator) for field in fields if field.validator is not None
        )
        return [field.evolve(validator=None) for field in fields]

    def run(self, instance: object) -> None:
        """Validate ``instance`` as attrs would have (nothing while validators are off)."""
        if self._disabled():
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
    """A tuple whose every item is a ``str``."""
    if not isinstance(value, tuple):  # what freeze_tuple could not convert
        fail(instance, attribute, "a sequence of strings", value)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigurationError(
                f"{_where(instance, attribute)}[{index}]: must be a string, "
                f"got {_shown_for(attribute, item)}"
            )


def string_mapping(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A mapping whose every key and value is a ``str`` (keys non-empty)."""
    if not isinstance(value, Mapping):  # what freeze_mapping could not convert
        fail(instance, attribute, "a mapping of strings", value)
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ConfigurationError(
                f"{_where(instance, attribute)}: keys must be non-empty strings, got {shown(key)}"
            )
        if not isinstance(item, str):
            raise ConfigurationError(
                f"{_where(instance, attribute)}[{shown(key)}]: must be a string, "
                f"got {_shown_for(attribute, item, key)}"
            )


def to_tuple(value: Iterable[str]) -> tuple[str, ...]:
    """Freeze any iterable of strings (a bare ``str`` is one item, not its characters).

    Raises:
        ConfigurationError: ``value`` is a mapping or not iterable.
    """
    # Exact tuples and lists first: models build thousands of these in a listing, and the
    # Mapping test below is an ABC check, slow next to these.
    if type(value) is tuple:
        return value
    if type(value) is list:
        return tuple(value)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Mapping):
        raise ConfigurationError(f"expected a sequence of strings, got a mapping {shown(value)}")
    try:
        return tuple(value)
    except Exception:  # TypeError, or whatever a hostile iterator raises
        raise ConfigurationError(f"expected a sequence of strings, got {shown(value)}") from None


def to_mapping(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> Mapping[str, str]:
    """Freeze a mapping into a read-only view of a private copy.

    Raises:
        ConfigurationError: ``value`` cannot be made into a mapping.
    """
    if isinstance(value, types.MappingProxyType):
        return value
    try:
        return types.MappingProxyType(dict(value))
    except Exception:  # TypeError, ValueError, or an unhashable or hostile key
        raise ConfigurationError(f"expected a mapping of strings, got {shown(value)}") from None


# The model converters below never raise: a converter is not told which class and field
# it converts, so what it cannot convert is handed on unchanged and the field's
# validator (string_items, string_mapping) reports it as "Class.field: must be ...".


def freeze_tuple(value: Iterable[str]) -> tuple[str, ...]:
    """:func:`to_tuple` for a model field: an unconvertible value is left to the validator."""
    try:
        return to_tuple(value)
    except ConfigurationError:
        return value  # type: ignore[return-value]


def freeze_mapping(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> Mapping[str, str]:
    """:func:`to_mapping` for a model field: an unconvertible value is left to the validator."""
    try:
        return to_mapping(value)
    except ConfigurationError:
        return value  # type: ignore[return-value]
