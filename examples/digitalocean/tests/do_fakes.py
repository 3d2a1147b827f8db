"""Fakes for the DigitalOcean plugin's tests: respx routes built from real API shapes.

Every test runs offline. The world is built from ``fixtures/*.json`` (DigitalOcean's own
OpenAPI examples): :func:`droplet` clones the example droplet with a new id, name, tags
and status; :class:`DropletsApi` serves any list of them the way the real API pages and
filters (``page``/``per_page`` up to 200, ``meta.total``, absolute ``links.pages.next``,
``tag_name``, case-insensitive exact ``name``, GPU droplets only with ``type=gpus``).
"""

from __future__ import annotations

import copy
import json
import math
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from hypersdk_digitalocean import DigitalOceanProvider

from hypersdk import ProviderConfig

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import respx

FIXTURES = Path(__file__).parent / "fixtures"
ENDPOINT = "https://api.digitalocean.com"
BASE = f"{ENDPOINT}/v2"
TOKEN = "dop_v1_0123456789abcdef-test-token"

# Keep retries and polls instant in tests; each test that measures waiting sets its own.
FAST = {"token": TOKEN, "poll_interval": "0", "retry_backoff": "0"}


def load(name: str) -> Any:
    """A fresh copy of ``fixtures/<name>.json``."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def droplet(
    droplet_id: int,
    name: str,
    *,
    tags: list[str] | None = None,
    status: str = "active",
    region: str = "nyc3",
    memory: int = 1024,
    vcpus: int = 1,
) -> dict[str, Any]:
    """The fixture droplet of ``droplet_get.json`` with another identity."""
    item: dict[str, Any] = copy.deepcopy(_TEMPLATE)
    item.update(id=droplet_id, name=name, status=status, memory=memory, vcpus=vcpus)
    item["tags"] = list(tags or [])
    item["region"]["slug"] = region
    return item


_TEMPLATE: dict[str, Any] = load("droplet_get")["droplet"]


def make_config(**metadata: str) -> ProviderConfig:
    return ProviderConfig(type="digitalocean", metadata={**FAST, **metadata})


class DropletsApi:
    """A faithful fake of ``GET /v2/droplets`` over a list of droplets.

    ``page_size`` makes it page by its own size whatever ``per_page`` asks; ``delay``
    holds every response that long; ``headers`` are added to every response. It records
    each request's query and the most requests it had in flight at once.
    """

    def __init__(
        self,
        droplets: list[dict[str, Any]],
        *,
        gpus: list[dict[str, Any]] | None = None,
        page_size: int | None = None,
        delay: float = 0.0,
        headers: dict[str, str] | None = None,
        with_total: bool = True,
    ) -> None:
        self.droplets = droplets
        self.gpus = gpus or []
        self.page_size = page_size
        self.delay = delay
        self.headers = headers or {}
        self.with_total = with_total
        self.queries: list[dict[str, str]] = []
        self.started: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def select(self, query: dict[str, str]) -> list[dict[str, Any]]:
        if query.get("type") == "gpus":
            return self.gpus
        selected = self.droplets
        if "tag_name" in query:
            selected = [d for d in selected if query["tag_name"] in d["tags"]]
        if "name" in query:
            selected = [d for d in selected if d["name"].lower() == query["name"].lower()]
        return selected

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params)
        self.queries.append(query)
        self.started.append(time.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await anyio.sleep(self.delay)
            selected = self.select(query)
            page = int(query.get("page", "1"))
            size = self.page_size or min(int(query.get("per_page", "20")), 200)
            chunk = selected[(page - 1) * size : page * size]
            pages: dict[str, str] = {}
            if page * size < len(selected):
                pages["next"] = str(request.url.copy_merge_params({"page": str(page + 1)}))
                last = math.ceil(len(selected) / size)
                pages["last"] = str(request.url.copy_merge_params({"page": str(last)}))
            body: dict[str, Any] = {"droplets": chunk, "links": {"pages": pages}}
            if self.with_total:
                body["meta"] = {"total": len(selected)}
            return httpx.Response(200, json=body, headers=self.headers)
        finally:
            self.in_flight -= 1

    @property
    def regular_queries(self) -> list[dict[str, str]]:
        return [query for query in self.queries if query.get("type") != "gpus"]


def serve(router: respx.MockRouter, api: DropletsApi) -> respx.Route:
    """Route ``GET /v2/droplets`` to ``api``."""
    return router.get("/droplets", name="droplets").mock(side_effect=api)


@asynccontextmanager
async def connected(
    config: ProviderConfig | None = None, **metadata: str
) -> AsyncIterator[DigitalOceanProvider]:
    """A provider connected with ``config`` (default: the test token, instant retries)."""
    async with DigitalOceanProvider() as provider:
        await provider.connect(config or make_config(**metadata))
        yield provider
