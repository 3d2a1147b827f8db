"""Turning models into plain data and back, through one preconfigured cattrs converter.

The wire form is JSON-friendly: datetimes are ISO 8601 strings with an offset, paths are
strings, durations (``ExportResult.duration``) are seconds as a float, tuples become
lists and read-only mappings become dicts.

Secrets (``ProviderConfig.password`` and secret-looking ``metadata`` keys such as
``token``) are written as ``"**********"`` unless you ask for
``reveal_secrets=True``; reading the mask back in is refused rather than silently
storing ``**********`` as a password.

cattrs is imported on first use so ``import hypersdk`` stays cheap.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hypersdk.errors import ConfigurationError
from hypersdk.models import _MASK, ProviderConfig, Secret, _looks_secret

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


def _structure_path(value: object, _: type) -> Path:
    if not isinstance(value, str):
        raise TypeError(f"expected a path string, got {type(value).__name__}")
    return Path(value)


def _structure_secret(value: object, _: type) -> Secret:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    if value == _MASK:
        raise ValueError(
            "this is a masked secret written by to_dict(); "
            "supply the real value (to_dict(..., reveal_secrets=True) keeps it)"
        )
    return Secret(value)


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
    return float(value)


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
    converter.register_unstructure_hook(Secret, lambda _secret: _MASK)
    plain_config = converter.get_unstructure_hook(ProviderConfig)

    def masked_config(config: ProviderConfig) -> dict[str, Any]:
        data: dict[str, Any] = plain_config(config)
        data["metadata"] = {
            key: _MASK if _looks_secret(key) else value for key, value in data["metadata"].items()
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
    import cattrs

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
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigurationError(f"{cls.__name__}: invalid data: {exc}") from None
    if isinstance(result, ProviderConfig):
        masked = sorted(key for key, value in result.metadata.items() if value == _MASK)
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
        return f"unknown field(s) {', '.join(sorted(exc.extra_fields))}"
    if isinstance(exc, ConfigurationError):
        return str(exc)
    return str(exc) or type(exc).__name__


def to_json(model: object, *, indent: int | None = None, reveal_secrets: bool = False) -> str:
    """Return :func:`to_dict` of ``model`` as a JSON string."""
    import json

    return json.dumps(
        to_dict(model, reveal_secrets=reveal_secrets), indent=indent, ensure_ascii=False
    )


def from_json(cls: type[_T], text: str | bytes) -> _T:
    """Build a ``cls`` model from a JSON document.

    Raises:
        ConfigurationError: the text is not JSON, or the data does not fit ``cls``.
    """
    import json

    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{cls.__name__}: not valid JSON: {exc}") from None
    return from_dict(cls, data)
