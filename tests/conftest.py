"""Shared fixtures for hypersdk's own tests.

Async tests use anyio's pytest plugin: mark them ``@pytest.mark.anyio``; they run on
asyncio (trio is not a dependency).
"""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
