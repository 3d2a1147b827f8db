"""Check ID -> the function that checks it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hypersdk_testing._contract import check_by_id

if TYPE_CHECKING:
    from hypersdk_testing._harness import Harness

__all__ = ["CHECKS", "implements"]

CheckFunction = Callable[["Harness"], None]

CHECKS: dict[str, CheckFunction] = {}


def implements(check_id: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as the implementation of ``check_id``."""
    check_by_id(check_id)  # a typo is an import-time error, not a silently missing check

    def register(function: CheckFunction) -> CheckFunction:
        if check_id in CHECKS:
            raise RuntimeError(f"{check_id} is implemented twice")
        CHECKS[check_id] = function
        return function

    return register
