"""Rate limits: 429 with retry-after, the retry budget, and pacing by ratelimit-remaining."""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest
from do_fakes import DropletsApi, connected, droplet, load, serve
from hypersdk_digitalocean._client import RateLimiter

from hypersdk import RateLimitError

if TYPE_CHECKING:
    from collections.abc import Callable

    import respx

EMPTY = {"droplets": [], "links": {}, "meta": {"total": 0}}


def too_many(retry_after: str | None = None, **headers: str) -> httpx.Response:
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return httpx.Response(429, json=load("error_429"), headers=headers)


@pytest.mark.anyio
async def test_429_waits_for_retry_after_then_succeeds(router: respx.MockRouter) -> None:
    route = router.get("/droplets").mock(
        side_effect=[too_many("0.1"), httpx.Response(200, json=load("droplets_list"))]
    )
    async with connected(include_gpus="false") as provider:
        started = time.monotonic()
        assert len(await provider.list_vms()) == 3
        waited = time.monotonic() - started
    assert route.call_count == 2
    assert waited >= 0.1


@pytest.mark.anyio
async def test_429_beyond_the_retry_budget_is_a_rate_limit_error(
    router: respx.MockRouter,
) -> None:
    route = router.get("/droplets").mock(return_value=too_many("0.01"))
    async with connected(include_gpus="false", max_retries="2") as provider:
        with pytest.raises(RateLimitError, match="API rate limit exceeded") as caught:
            await provider.list_vms()
    assert caught.value.retry_after == 0.01
    assert caught.value.status == 429
    assert route.call_count == 3


@pytest.mark.anyio
async def test_a_retry_after_longer_than_max_retry_wait_is_not_slept(
    router: respx.MockRouter,
) -> None:
    route = router.get("/droplets/7").mock(return_value=too_many("120"))
    async with connected(max_retry_wait="5") as provider:
        started = time.monotonic()
        with pytest.raises(RateLimitError) as caught:
            await provider.get_vm("7")
        assert time.monotonic() - started < 1
    assert caught.value.retry_after == 120
    assert route.call_count == 1


@pytest.mark.anyio
async def test_a_429_without_retry_after_uses_ratelimit_reset(router: respx.MockRouter) -> None:
    reset = str(int(time.time()) + 600)
    router.get("/droplets/7").mock(return_value=too_many(None, **{"ratelimit-reset": reset}))
    async with connected(max_retry_wait="1") as provider:
        with pytest.raises(RateLimitError) as caught:
            await provider.get_vm("7")
    assert caught.value.retry_after is not None
    assert 590 < caught.value.retry_after <= 600


@pytest.mark.anyio
async def test_a_429_pauses_the_other_pages_too(router: respx.MockRouter) -> None:
    api = DropletsApi([droplet(i + 1, f"vm-{i}") for i in range(40)], page_size=5, delay=0.03)
    limited_at: list[float] = []

    async def page_two_is_limited_once(request: httpx.Request) -> httpx.Response:
        if request.url.params["page"] == "2" and not limited_at:
            limited_at.append(time.monotonic())
            return too_many("0.2")
        return await api(request)

    router.get("/droplets").mock(side_effect=page_two_is_limited_once)
    async with connected(include_gpus="false", max_concurrency="3") as provider:
        vms = await provider.list_vms()
    assert [vm.name for vm in vms] == [f"vm-{i}" for i in range(40)]
    # Pages 3 and 4 were already in flight; nothing new went out during the pause.
    during_pause = [t for t in api.started if limited_at[0] + 0.01 < t < limited_at[0] + 0.19]
    assert during_pause == []
    assert len(api.queries) == 8


@pytest.mark.anyio
async def test_the_first_page_goes_alone_so_its_429_holds_everything_back(
    router: respx.MockRouter,
) -> None:
    api = DropletsApi([droplet(1, "a")], gpus=[droplet(2, "gpu")])
    limited_at: list[float] = []

    async def first_request_is_limited(request: httpx.Request) -> httpx.Response:
        if not limited_at:
            limited_at.append(time.monotonic())
            await anyio.sleep(0.05)  # a real round trip: anything concurrent would go now
            return too_many("0.1")
        return await api(request)

    router.get("/droplets").mock(side_effect=first_request_is_limited)
    async with connected() as provider:
        assert [vm.name for vm in await provider.list_vms()] == ["a", "gpu"]
    assert len(api.started) == 2
    assert min(api.started) - limited_at[0] >= 0.1


@pytest.mark.anyio
async def test_the_pager_slows_down_when_few_requests_remain(router: respx.MockRouter) -> None:
    reset = str(time.time() + 0.5)
    headers = {"ratelimit-limit": "5000", "ratelimit-remaining": "20", "ratelimit-reset": reset}
    api = DropletsApi([droplet(i + 1, f"vm-{i}") for i in range(30)], page_size=5, headers=headers)
    serve(router, api)
    async with connected(include_gpus="false") as provider:
        vms = await provider.list_vms()
    assert len(vms) == 30
    gaps = [later - earlier for earlier, later in zip(api.started, api.started[1:], strict=False)]
    # 20 left with ~0.5 s to the reset: about 0.025 s between requests, one at a time.
    assert min(gaps[1:]) >= 0.015
    assert api.max_in_flight == 1


@pytest.mark.anyio
async def test_the_pager_runs_free_when_plenty_remain(router: respx.MockRouter) -> None:
    headers = {"ratelimit-remaining": "4000", "ratelimit-reset": str(time.time() + 3600)}
    api = DropletsApi(
        [droplet(i + 1, f"vm-{i}") for i in range(30)], page_size=5, headers=headers, delay=0.05
    )
    serve(router, api)
    async with connected(include_gpus="false") as provider:
        await provider.list_vms()
    assert api.max_in_flight == 5


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter_after(remaining: str, reset_in: float, fake: FakeTime, **kwargs: float) -> RateLimiter:
    limiter = RateLimiter(
        reserve=int(kwargs.get("reserve", 25)),
        max_wait=kwargs.get("max_wait", 60.0),
        sleep=fake.sleep,
        clock=fake.clock,
    )
    headers = {"ratelimit-remaining": remaining, "ratelimit-reset": str(fake.now + reset_in)}
    limiter.observe(httpx.Response(200, headers=headers))
    return limiter


@pytest.mark.anyio
async def test_limiter_spreads_the_remainder_until_the_reset() -> None:
    fake = FakeTime()
    limiter = limiter_after("10", 20.0, fake)
    await limiter.acquire("list_vms")
    await limiter.acquire("list_vms")
    assert fake.slept == pytest.approx([2.0, (20.0 - 2.0) / 9])
    assert limiter.in_flight == 2


@pytest.mark.anyio
async def test_limiter_waits_for_the_reset_when_nothing_remains() -> None:
    fake = FakeTime()
    limiter = limiter_after("0", 7.5, fake)
    await limiter.acquire("list_vms")
    assert fake.slept == [7.5]


@pytest.mark.anyio
async def test_limiter_refuses_to_wait_longer_than_max_wait() -> None:
    fake = FakeTime()
    limiter = limiter_after("0", 1800.0, fake, max_wait=60.0)
    with pytest.raises(RateLimitError, match="raise max_retry_wait") as caught:
        await limiter.acquire("list_vms")
    assert caught.value.retry_after == 1800.0
    assert fake.slept == []


@pytest.mark.anyio
async def test_limiter_ignores_garbage_headers_and_plenty() -> None:
    fake = FakeTime()
    limiter = limiter_after("4999", 3600.0, fake)
    limiter.observe(httpx.Response(200, headers={"ratelimit-remaining": "lots"}))
    await limiter.acquire("list_vms")
    assert fake.slept == []
    assert limiter.remaining == 4999
    assert limiter.in_flight == 1


@pytest.mark.anyio
async def test_limiter_pause_holds_everyone_back() -> None:
    fake = FakeTime()
    limiter = limiter_after("4999", 3600.0, fake)
    limiter.pause(3.0)
    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(limiter.acquire, "list_vms")
    assert fake.slept[0] == 3.0


# -- issue 16: 429s whose headers give no usable wait --------------------------------------


def timed(
    route_responses: list[httpx.Response],
) -> tuple[list[float], Callable[[httpx.Request], httpx.Response]]:
    """A side effect returning ``route_responses`` in turn, recording when each was asked."""
    times: list[float] = []
    queue = list(route_responses)

    def respond(request: httpx.Request) -> httpx.Response:
        times.append(time.monotonic())
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return times, respond


def stale_reset(**extra: str) -> dict[str, str]:
    # The real API has been seen sending a ratelimit-reset that already passed.
    return {
        "ratelimit-limit": "5000",
        "ratelimit-remaining": "0",
        "ratelimit-reset": str(int(time.time()) - 30),
        **extra,
    }


def burst(**extra: str) -> dict[str, str]:
    # Over 250 requests in a minute while the hourly budget has thousands left.
    return {
        "ratelimit-limit": "5000",
        "ratelimit-remaining": "4210",
        "ratelimit-reset": str(int(time.time()) + 3000),
        **extra,
    }


@pytest.mark.anyio
@pytest.mark.parametrize("headers", [stale_reset(), stale_reset(**{"retry-after": "0"}), {}])
async def test_a_429_with_no_usable_wait_backs_off_exponentially(
    router: respx.MockRouter, headers: dict[str, str]
) -> None:
    times, respond = timed(
        [too_many(None, **headers), too_many(None, **headers), httpx.Response(200, json=EMPTY)]
    )
    router.get("/droplets").mock(side_effect=respond)
    async with connected(include_gpus="false", retry_backoff="0.05") as provider:
        assert await provider.list_vms() == []
    first, second = times[1] - times[0], times[2] - times[1]
    assert first >= 0.025  # half the base at least: jitter, never zero
    assert second >= 0.05  # and doubling
    assert len(times) == 3


@pytest.mark.anyio
@pytest.mark.parametrize("backoff", ["0", "0.01"])
async def test_a_429_with_no_usable_wait_never_reports_retry_after_zero(
    router: respx.MockRouter, backoff: str
) -> None:
    times, respond = timed([too_many(None, **stale_reset())])
    router.get("/droplets").mock(side_effect=respond)
    async with connected(include_gpus="false", retry_backoff=backoff, max_retries="2") as provider:
        with pytest.raises(RateLimitError) as caught:
            await provider.list_vms()
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 0
    assert len(times) == 3
    assert min(later - earlier for earlier, later in itertools.pairwise(times)) > 0.01


@pytest.mark.anyio
async def test_a_burst_429_waits_seconds_not_the_hourly_reset(router: respx.MockRouter) -> None:
    times, respond = timed([too_many(None, **burst()), httpx.Response(200, json=EMPTY)])
    router.get("/droplets").mock(side_effect=respond)
    async with connected(include_gpus="false", retry_backoff="0.05") as provider:
        assert await provider.list_vms() == []
    assert len(times) == 2
    assert 0.025 <= times[1] - times[0] < 5


@pytest.mark.anyio
async def test_a_persistent_burst_429_reports_the_burst_wait(router: respx.MockRouter) -> None:
    router.get("/droplets").mock(return_value=too_many(None, **burst()))
    async with connected(include_gpus="false", retry_backoff="0.01", max_retries="1") as provider:
        with pytest.raises(RateLimitError, match="per-minute") as caught:
            await provider.list_vms()
    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 60


@pytest.mark.anyio
async def test_a_burst_429_with_retry_after_honours_it(router: respx.MockRouter) -> None:
    times, respond = timed(
        [too_many(None, **burst(**{"retry-after": "0.2"})), httpx.Response(200, json=EMPTY)]
    )
    router.get("/droplets").mock(side_effect=respond)
    async with connected(include_gpus="false") as provider:
        assert await provider.list_vms() == []
    assert times[1] - times[0] >= 0.2


# -- issue 16, item 7: one wave of pages, within the budget --------------------------------


@pytest.mark.anyio
async def test_by_default_20_pages_after_the_first_go_out_at_once(
    router: respx.MockRouter,
) -> None:
    headers = {"ratelimit-remaining": "4900", "ratelimit-reset": str(time.time() + 3600)}
    api = DropletsApi(
        [droplet(i + 1, f"vm-{i}") for i in range(30)], page_size=1, headers=headers, delay=0.05
    )
    serve(router, api)
    async with connected() as provider:
        assert len(await provider.list_vms()) == 30
    # Page 1 alone (the guard), then pages 2..30 and the GPU listing, 20 at once.
    assert api.started[1] - api.started[0] >= 0.05
    # 20 in flight at once is the wave; counting by start time instead would depend on
    # how busy the machine is.
    assert api.max_in_flight == 20


@pytest.mark.anyio
async def test_requests_in_flight_count_against_the_hourly_budget(
    router: respx.MockRouter,
) -> None:
    # 30 left with a reserve of 25: 5 go at once, the rest is paced (3 s / 25 apart).
    headers = {"ratelimit-remaining": "30", "ratelimit-reset": str(time.time() + 3)}
    api = DropletsApi(
        [droplet(i + 1, f"vm-{i}") for i in range(8)], page_size=1, headers=headers, delay=0.05
    )
    serve(router, api)
    async with connected(include_gpus="false") as provider:
        assert len(await provider.list_vms()) == 8
    wave = [t for t in api.started[1:] if t < api.started[0] + 0.05 + 0.08]
    assert len(wave) == 5


@pytest.mark.anyio
async def test_limiter_counts_requests_in_flight() -> None:
    fake = FakeTime()
    limiter = limiter_after("30", 60.0, fake, reserve=25)
    for _ in range(5):
        await limiter.acquire("list_vms")
    assert fake.slept == []
    await limiter.acquire("list_vms")  # 30 - 5 in flight = 25: down to the reserve, paced
    assert fake.slept == [pytest.approx(60.0 / 25)]
    for _ in range(6):
        limiter.release()
    assert limiter.in_flight == 0
