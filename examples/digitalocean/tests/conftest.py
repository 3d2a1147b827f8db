"""Fixtures for the DigitalOcean plugin's tests (the fakes themselves are in do_fakes.py).

Async tests are marked ``@pytest.mark.anyio`` and run on asyncio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
import respx
from do_fakes import BASE, TOKEN, load

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    """respx routes for the API, with ``GET /v2/account`` accepting only the test token."""
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.get("/account", name="account").mock(side_effect=account)
        yield mock


def account(request: httpx.Request) -> httpx.Response:
    """``GET /v2/account``: the account for the test token, DigitalOcean's 401 otherwise."""
    if request.headers.get("Authorization") != f"Bearer {TOKEN}":
        return httpx.Response(401, json=load("error_401"))
    return httpx.Response(200, json=load("account"))
