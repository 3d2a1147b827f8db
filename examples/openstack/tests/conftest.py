"""Fixtures for the OpenStack plugin's tests (the fake cloud itself is in os_fakes.py).

Async tests are marked ``@pytest.mark.anyio`` and run on asyncio.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
