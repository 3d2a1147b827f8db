"""The contract checks, one module per area; importing this package registers them all."""

from __future__ import annotations

from hypersdk_testing._checks import (  # noqa: F401  (imported to register their checks)
    discovery,
    export,
    faults,
    hygiene,
    identity,
    lifecycle,
    suite,
)
from hypersdk_testing._checks._registry import CHECKS

__all__ = ["CHECKS"]
