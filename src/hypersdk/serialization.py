"""Turning models into plain data and back, through one preconfigured cattrs converter.

The wire form is JSON-friendly: datetimes are ISO 8601 strings with an offset, paths are
strings, durations (``ExportResult.duration``) are seconds as a float, tuples become
lists and read-only mappings become dicts.

Secrets (``ProviderConfig.password``, secret-looking ``metadata`` keys such as
``token``, and the userinfo and query of ``endpoint``) are written as ``"**********"``
unless you ask for ``reveal_secrets=True``; reading the mask back in is refused rather
than silently storing ``**********`` as a password.

Reading goes through each model's constructor with the document's own values, so a
document is held to exactly the validators a caller is: the structure hooks below only
check the JSON type and leave conversion (``str`` to ``Path``, ``str`` to ``Secret``) to
the model. Hostile documents (nesting deeper than the interpreter's stack, integers of
thousands of digits) are a :class:`~hypersdk.ConfigurationError` like any other.

cattrs is imported on first use so ``import hypersdk`` stays cheap.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hypersdk import _validation as v
from hypersdk._redact import MASK, mask_url
from hypersdk.errors import ConfigurationError
from hypersdk.models import ProviderConfig, Secret

if TYPE_CHECKING:
    import cattrs

__all__ = ["to_dict", "from_dict", "to_json", "from_json"]

_T = TypeVar("_T")


def _structure_datetime(value: object, _: type) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value)
    else:
        raise TypeError(f"expected an ISO 8601 string, got {type(value).__name__}")
    if parsed.tzinfo is None:
        raise ValueError(f"datetime {value!r} has no UTC offset; add one such as +00:00 or Z")
    return parsed


def _structure_duration(value: object, _: type) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number of seconds, got {type(value).__name__}")
    return timedelta(seconds=value)


def _structure_path(value: object, _: type) -> Any:
    if not isinstance(value, str):
        raise TypeError(f"expected a path string, got {type(value).__name__}")
    return value  # the model's converter turns it into a Path, refusing "" and NUL


def _structure_secret(value: object, _: type) -> Any:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    if value == MASK:
        raise ValueError(
            "this is a masked secret written by to_dict(); "
            "supply the real value (to_dict(..., reveal_secrets=True) keeps it)"
        )
    return value  # the model's converter wraps it ("" means no secret, as in the constructor)


def _structure_str(value: object, _: type) -> str:
    # cattrs would otherwise turn 42 into "42"; a wrong type in a document is a mistake.
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _structure_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return value  # float(10**400) would raise OverflowError; the validator bounds it


def _structure_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {type(value).__name__}")
    return value


@functools.cache
def _converters() -> tuple[cattrs.Converter, cattrs.Converter]:
    """Build (masking, revealing) converters once, on first use."""
    import cattrs

    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_unstructure_hook(datetime, datetime.isoformat)
    converter.register_structure_hook(datetime, _structure_datetime)
    converter.register_unstructure_hook(timedelta, timedelta.total_seconds)
    converter.register_structure_hook(timedelta, _structure_duration)
    converter.register_unstructure_hook(Path, str)
    converter.register_structure_hook(Path, _structure_path)
    converter.register_structure_hook(Secret, _structure_secret)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(bool, _structure_bool)
    revealing = converter.copy()
    revealing.register_unstructure_hook(Secret, Secret.reveal)
    converter.register_unstructure_hook(Secret, lambda _secret: MASK)
    plain_config = converter.get_unstructure_hook(ProviderConfig)

    def masked_config(config: ProviderConfig) -> dict[str, Any]:
        data: dict[str, Any] = plain_config(config)
        data["endpoint"] = mask_url(data["endpoint"])
        data["metadata"] = {
            key: MASK if v.looks_secret(key) else value for key, value in data["metadata"].items()
        }
        return data

    converter.register_unstructure_hook(ProviderConfig, masked_config)
    return converter, revealing


def to_dict(model: object, *, reveal_secrets: bool = False) -> dict[str, Any]:
    """Return a model as a JSON-friendly ``dict``.

    >>> from hypersdk import VMFilter
    >>> to_dict(VMFilter(min_cpus=2))["min_cpus"]
    2

    Args:
        model: An instance of any hypersdk model.
        reveal_secrets: Write :class:`~hypersdk.Secret` values in clear text (for storing
            a config you will read back); by default they are masked.

    Raises:
        ConfigurationError: ``model`` is not an attrs model instance.
    """
    import attrs

    if not attrs.has(type(model)):
        raise ConfigurationError(
            f"to_dict: expected a hypersdk model instance, got {type(model).__name__}"
        )
    masking, revealing = _converters()
    result: dict[str, Any] = (revealing if reveal_secrets else masking).unstructure(model)
    return result


def from_dict(cls: type[_T], data: object) -> _T:
    """Build a ``cls`` model from plain data (as :func:`to_dict` or JSON gives it).

    Raises:
        ConfigurationError: listing every bad field with its path, for example
            ``"VMInfo: 2 invalid fields: $.memory_mb: expected an integer, got str; ..."``.
    """
    import attrs
    import cattrs

    checked: object = cls  # callers may pass anything at run time
    if not (isinstance(checked, type) and attrs.has(checked)):
        raise ConfigurationError(
            f"from_dict: cls must be a hypersdk model class, got {v.shown(cls)}"
        )
    if not isinstance(data, Mapping):
        raise ConfigurationError(
            f"{cls.__name__}: expected a mapping of fields, got {type(data).__name__}"
        )
    masking, _ = _converters()
    try:
        result = masking.structure(data, cls)
    except cattrs.BaseValidationError as exc:
        problems = cattrs.transform_error(exc, path="$", format_exception=_describe)
        count = len(problems)
        plural = "field" if count == 1 else "fields"
        raise ConfigurationError(
            f"{cls.__name__}: {count} invalid {plural}: " + "; ".join(problems)
        ) from None
    except ConfigurationError as exc:
        # A model validator rejected a value after every field had the right type.
        raise ConfigurationError(f"{cls.__name__}: {exc}") from None
    except RecursionError:
        raise ConfigurationError(
            f"{cls.__name__}: invalid data: nested too deeply to read"
        ) from None
    except (TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise ConfigurationError(f"{cls.__name__}: invalid data: {exc}") from None
    except Exception as exc:  # a hostile object inside the data raised on being read
        raise ConfigurationError(
            f"{cls.__name__}: invalid data: reading it raised {type(exc).__name__}"
        ) from None
    if isinstance(result, ProviderConfig):
        masked = sorted(key for key, value in result.metadata.items() if value == MASK)
        if MASK in result.endpoint:
            raise ConfigurationError(
                "ProviderConfig: 1 invalid field: $.endpoint: its credentials or query were "
                "masked by to_dict(); supply the real endpoint "
                "(to_dict(..., reveal_secrets=True) keeps it)"
            )
        if masked:
            raise ConfigurationError(
                f"ProviderConfig: 1 invalid field: $.metadata.{masked[0]}: this is a masked "
                "secret written by to_dict(); supply the real value "
                "(to_dict(..., reveal_secrets=True) keeps it)"
            )
    return result


def _describe(exc: BaseException, type_: type | None) -> str:
    import cattrs

    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        # Keys of a hostile document need not be strings (or sortable with each other).
        return f"unknown field(s) {', '.join(sorted(v.shown(key) for key in exc.extra_fields))}"
    if isinstance(exc, ConfigurationError):
        return str(exc)
    return str(exc) or type(exc).__name__


def to_json(model: object, *, indent: int | None = None, reveal_secrets: bool = False) -> str:
    """Return :func:`to_dict` of ``model`` as a JSON string.

    Raises:
        ConfigurationError: ``model`` is not a model, or ``indent`` is not None or 0-16.
    """
    import json

    checked: object = indent
    if checked is not None and not v.is_int_between(checked, 0, 16):
        raise ConfigurationError(f"to_json: indent must be None or 0-16, got {v.shown(checked)}")
    return json.dumps(
        to_dict(model, reveal_secrets=reveal_secrets), indent=indent, ensure_ascii=False
    )


def from_json(cls: type[_T], text: str | bytes) -> _T:
    """Build a ``cls`` model from a JSON document.

    Raises:
        ConfigurationError: the text is not JSON, or the data does not fit ``cls``.
    """
    import json

    name = getattr(cls, "__name__", "from_json")
    checked: object = text
    if not isinstance(checked, str | bytes | bytearray):
        raise ConfigurationError(
            f"{name}: from_json needs a str or bytes document, got {type(checked).__name__}"
        )
    try:
        data = json.loads(text)
    except RecursionError:
        raise ConfigurationError(f"{name}: not valid JSON: nested too deeply to read") from None
    except ValueError as exc:
        # JSONDecodeError, UnicodeDecodeError, and an integer of more than 4,300 digits.
        raise ConfigurationError(f"{name}: not valid JSON: {str(exc)[:200]}") from None
    return from_dict(cls, data)
