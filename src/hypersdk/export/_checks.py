"""Run-time argument checks: callers without a type checker pass anything."""

from __future__ import annotations


def is_int_between(value: object, low: int, high: int | None = None) -> bool:
    """Whether ``value`` is an ``int`` (not ``bool``) in ``[low, high]``."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= low
        and (high is None or value <= high)
    )
