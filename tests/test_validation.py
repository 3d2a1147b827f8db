"""The one family of value checks (``hypersdk/_validation.py``), seen through its users."""

from __future__ import annotations

from typing import Any

import pytest

from hypersdk import ConfigurationError, PluginConfig, ProviderConfig
from hypersdk.export import ProgressTracker, UrllibSource

_HUGE = 10**400  # float(_HUGE) raises OverflowError: every check must compare it first
_TWO_YEARS = 2 * 366 * 24 * 3600.0


@pytest.mark.parametrize(
    "value",
    [_HUGE, _TWO_YEARS, float("inf"), float("nan"), -1, True],
    ids=["10**400", "two-years", "inf", "nan", "negative", "bool"],
)
@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda value: UrllibSource("https://images.example/disk.img", timeout=value), "timeout"),
        (lambda value: ProgressTracker(None, min_interval=value), "min_interval"),
        (lambda value: PluginConfig(import_timeout=value), "import_timeout"),
        (lambda value: ProviderConfig(type="vsphere", timeout=value), "timeout"),
    ],
)
def test_seconds_are_bounded_the_same_everywhere(build: Any, argument: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=argument):
        build(value)
