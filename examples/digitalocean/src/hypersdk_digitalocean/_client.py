"""The DigitalOcean API v2 over httpx: auth, rate limits, retries and the concurrent pager.

httpx is imported directly: this plugin is its own distribution and declares httpx as a
dependency, so it does not reach into hypersdk's private ``_http`` module. Responses are
turned into hypersdk errors with the public helpers (``hypersdk.raise_for_response``,
``error_for_exception``, ``json_body``, ``parse_retry_after``).
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Final, Generic, Literal, TypeVar

import anyio
import anyio.lowlevel
import attrs
import httpx

import hypersdk
from hypersdk import (
    HyperSDKError,
    NotConnectedError,
    ProviderAPIError,
    RateLimitError,
    Secret,
    error_for_exception,
    error_for_response,
    json_body,
    parse_retry_after,
)
from hypersdk_digitalocean._mapping import Droplet, decode_page
from hypersdk_digitalocean._version import __version__

if TYPE_CHECKING:
    import logging
    import ssl

    from hypersdk_digitalocean._settings import Settings

__all__ = ["PER_PAGE", "Api", "RateLimiter", "user_agent"]

PROVIDER: Final = "digitalocean"
PER_PAGE: Final = 200  # the API's maximum
_RETRYABLE_STATUS: Final = frozenset({500, 502, 503, 504})
# Droplets mapped between two checkpoints: a whole page of the API's (about 2 ms of CPU).
# Mapping a page in one go keeps one page's decoded droplets alive at a time and reuses
# their memory for the next; smaller slices let every page in flight decode before any
# is mapped, which costs memory and time. A server sending more than asked still yields.
_CONVERT_CHUNK: Final = PER_PAGE
# A 429 that says nothing usable about when to come back is backed off from at least this
# base (doubling, jittered), whatever retry_backoff says: retrying at once only earns more.
_MIN_RATE_LIMIT_BACKOFF: Final = 0.1
# The burst limit is 250 requests a minute: a burst 429 never needs a longer wait.
_BURST_WINDOW: Final = 60.0

_T = TypeVar("_T")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


def user_agent() -> str:
    """``hypersdk-digitalocean/X hypersdk/Y python-httpx/Z``."""
    return (
        f"hypersdk-digitalocean/{__version__} hypersdk/{hypersdk.__version__} "
        f"python-httpx/{httpx.__version__}"
    )


@functools.cache
def _verified_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes ~50 ms; one context serves every client (they are
    # safe to share), so reconnecting stays cheap.
    return httpx.create_ssl_context()


def _tls(settings: Settings) -> ssl.SSLContext | bool:
    # Plain http (a loopback endpoint) needs no CA bundle: do not pay for loading one.
    if not settings.base_url.startswith("https:"):
        return False
    return _verified_ssl_context() if settings.verify else False


class _BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer`` at send time; the token lives in a Secret until then."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(Secret('**********'))"


class RateLimiter:
    """Paces requests from DigitalOcean's ``ratelimit-remaining``/``ratelimit-reset`` headers.

    Requests in flight count against the remainder until their responses report it. While
    more than ``reserve`` requests would remain, requests go out freely. Below that, they
    go one at a time, spaced so the remainder lasts until the reset time: the pager slows
    down instead of running into 429s. With nothing left, everyone waits for the reset, or,
    when that is further away than ``max_wait``, gets a :class:`~hypersdk.RateLimitError`.
    A 429 pauses every request for its wait.
    """

    def __init__(
        self,
        *,
        reserve: int,
        max_wait: float,
        sleep: Sleep = anyio.sleep,
        clock: Clock = time.time,
    ) -> None:
        self.reserve = reserve
        self.max_wait = max_wait
        self.remaining: int | None = None
        self.reset_at: float | None = None  # Unix time
        self.in_flight = 0
        self._paused_until = 0.0
        self._sleep = sleep
        self._clock = clock
        self._pace = anyio.Lock()

    def observe(self, response: httpx.Response) -> None:
        """Read the rate-limit headers of a response (ignoring malformed values)."""
        remaining = response.headers.get("ratelimit-remaining")
        reset = response.headers.get("ratelimit-reset")
        try:
            self.remaining = int(remaining) if remaining is not None else self.remaining
            self.reset_at = float(reset) if reset is not None else self.reset_at
        except ValueError:
            return

    def pause(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` (after a 429)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def seconds_to_reset(self) -> float | None:
        """Seconds until ``ratelimit-reset``, or ``None`` when unknown."""
        if self.reset_at is None:
            return None
        return max(0.0, self.reset_at - self._clock())

    async def acquire(self, operation: str) -> None:
        """Wait until a request may be sent; call :meth:`release` once it is answered."""
        pause = self._paused_until - self._clock()
        if pause > 0:
            await self._sleep(pause)
        if self.remaining is None or self.remaining - self.in_flight > self.reserve:
            self.in_flight += 1
            return
        async with self._pace:
            remaining = (self.remaining or 0) - self.in_flight
            to_reset = self.seconds_to_reset() or 0.0
            if remaining <= 0:
                if to_reset > self.max_wait:
                    raise RateLimitError(
                        f"{PROVIDER} {operation}: the API rate limit is used up until "
                        f"{to_reset:.0f} s from now; retry after that or raise max_retry_wait",
                        provider=PROVIDER,
                        operation=operation,
                        retry_after=to_reset,
                    )
                delay = to_reset
            else:
                delay = min(to_reset / remaining, self.max_wait)
            if delay > 0:
                await self._sleep(delay)
            self.in_flight += 1

    def release(self) -> None:
        """A request acquired earlier was answered (or failed)."""
        self.in_flight = max(0, self.in_flight - 1)


class Api:
    """One authenticated session with the DigitalOcean API."""

    def __init__(
        self,
        settings: Settings,
        logger: logging.Logger,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Clock = time.time,
    ) -> None:
        self.settings = settings
        self._logger = logger
        self._sleep = sleep
        self.limiter = RateLimiter(
            reserve=settings.rate_limit_reserve,
            max_wait=settings.max_retry_wait,
            sleep=sleep,
            clock=clock,
        )
        self.http = httpx.AsyncClient(
            base_url=settings.base_url,
            auth=_BearerAuth(settings.token),
            headers={"User-Agent": user_agent(), "Accept": "application/json"},
            timeout=settings.http_timeout(),
            verify=_tls(settings),
            follow_redirects=False,
            # Keep every connection alive: httpx keeps 20 by default, and a listing with more
            # in flight would see httpcore close and reopen connections between pages.
            limits=httpx.Limits(
                max_connections=settings.max_concurrency + 4,
                max_keepalive_connections=settings.max_concurrency + 4,
            ),
            transport=transport,
        )

    async def aclose(self) -> None:
        """Close the HTTP client (idempotent)."""
        await self.http.aclose()

    async def get(
        self,
        path: str,
        *,
        operation: str,
        params: Mapping[str, str | int] | None = None,
        resource: Literal["vm"] | None = None,
        identifier: str | None = None,
        require: tuple[str, ...] = (),
    ) -> dict[str, object]:
        """GET a JSON object, retrying 429, 5xx and connection failures within the budget."""
        response = await self.send("GET", path, operation=operation, params=params, idempotent=True)
        return _checked_json(response, operation, resource, identifier, require)

    async def post(
        self,
        path: str,
        body: Mapping[str, object],
        *,
        operation: str,
        resource: Literal["vm"] | None = None,
        identifier: str | None = None,
        require: tuple[str, ...] = (),
    ) -> dict[str, object]:
        """POST JSON. Only a 429 is retried: a 5xx may have done the work already."""
        response = await self.send("POST", path, operation=operation, json=body, idempotent=False)
        return _checked_json(response, operation, resource, identifier, require)

    async def send(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, str | int] | None = None,
        json: Mapping[str, object] | None = None,
        idempotent: bool,
    ) -> httpx.Response:
        """Send one request; returns the final response (which may be an error status)."""
        settings = self.settings
        retries = 0
        waited = 0.0
        while True:
            await self.limiter.acquire(operation)
            try:
                response = await self.http.request(method, path, params=params, json=json)
                self.limiter.observe(response)
            except RuntimeError:
                if not self.http.is_closed:
                    raise
                # disconnect() ran while this call was waiting.
                raise NotConnectedError(
                    f"{PROVIDER} {operation}: the provider was disconnected during the call",
                    provider=PROVIDER,
                    operation=operation,
                ) from None
            except httpx.HTTPError as exc:
                error = error_for_exception(exc, provider=PROVIDER, operation=operation)
                delay = self._backoff(retries)
                if (
                    idempotent
                    and isinstance(exc, httpx.TransportError)
                    and retries < settings.max_retries
                    and waited + delay <= settings.max_retry_wait
                ):
                    self._logger.warning(
                        "%s %s: %s; retry %d/%d in %.2f s",
                        PROVIDER,
                        operation,
                        type(exc).__name__,
                        retries + 1,
                        settings.max_retries,
                        delay,
                    )
                    retries += 1
                    waited += delay
                    await self._sleep(delay)
                    continue
                raise error from None
            finally:
                # Counted against the budget until the response's headers tell the truth.
                self.limiter.release()
            status = response.status_code
            self._logger.debug("%s %s -> HTTP %d", method, response.request.url.path, status)
            if status == 429:
                error = self._rate_limit_error(response, operation, retries)
                delay = error.retry_after or 0.0  # never None nor 0 here
                if retries < settings.max_retries and waited + delay <= settings.max_retry_wait:
                    self._logger.warning(
                        "%s %s: rate limited (HTTP 429); waiting %.2f s, retry %d/%d",
                        PROVIDER,
                        operation,
                        delay,
                        retries + 1,
                        settings.max_retries,
                    )
                    retries += 1
                    waited += delay
                    self.limiter.pause(delay)
                    await self._sleep(delay)
                    continue
                raise error
            if status in _RETRYABLE_STATUS and idempotent:
                # A 503 may say when to come back; otherwise back off exponentially.
                asked = parse_retry_after(response.headers.get("retry-after"))
                delay = max(self._backoff(retries), asked or 0.0)
                if retries < settings.max_retries and waited + delay <= settings.max_retry_wait:
                    self._logger.warning(
                        "%s %s: HTTP %d; retry %d/%d in %.2f s",
                        PROVIDER,
                        operation,
                        status,
                        retries + 1,
                        settings.max_retries,
                        delay,
                    )
                    retries += 1
                    waited += delay
                    await self._sleep(delay)
                    continue
            return response

    def _backoff(self, retries: int, *, floor: float = 0.0) -> float:
        base = max(self.settings.retry_backoff, floor) * 2.0**retries
        return base * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography

    def _rate_limit_error(
        self, response: httpx.Response, operation: str, retries: int
    ) -> RateLimitError:
        """The RateLimitError of a 429, its ``retry_after`` the wait before the next try.

        ``retry-after`` wins when it asks for a wait. Otherwise DigitalOcean's headers tell
        the two limits apart: requests remaining in the hour means the per-minute burst
        limit, so back off for seconds (never the hourly reset); none remaining means the
        hour's budget, so wait for ``ratelimit-reset``. Whenever that leaves no wait (a
        reset in the past, no headers at all), back off exponentially with jitter.
        """
        error = error_for_response(response, provider=PROVIDER, operation=operation)
        if not isinstance(error, RateLimitError):  # pragma: no cover - 429 always maps so
            raise ProviderAPIError(f"{PROVIDER} {operation}: HTTP 429", provider=PROVIDER)
        backoff = self._backoff(retries, floor=_MIN_RATE_LIMIT_BACKOFF)
        remaining = _int_header(response, "ratelimit-remaining")
        if error.retry_after:
            wait, why = error.retry_after, "as the API asked"
        elif remaining is not None and remaining > 0:
            wait = min(backoff, _BURST_WINDOW)
            why = f"the per-minute burst limit ({remaining} requests left this hour)"
        else:
            to_reset = self.limiter.seconds_to_reset() or 0.0
            wait = max(backoff, to_reset)
            why = "until ratelimit-reset" if to_reset > backoff else "backing off"
        return RateLimitError(
            f"{PROVIDER} {operation}: rate limited (HTTP 429{_where(response)}"
            f"{_api_text(response)}), {why}; retry after {wait:.3g} s",
            provider=PROVIDER,
            operation=operation,
            status=429,
            request_id=error.request_id,
            retry_after=wait,
        )

    async def list_droplets(
        self,
        params: Mapping[str, str],
        *,
        operation: str,
        limiter: anyio.CapacityLimiter,
        convert: Callable[[list[Droplet]], list[_T]],
        on_first_page: Callable[[], object] | None = None,
    ) -> list[_T]:
        """Every droplet the query returns, in the API's order, each page run through ``convert``.

        The first page gives ``meta.total``; the other pages are then fetched
        concurrently (``limiter`` bounds how many are in flight, across listings) and
        put back in order. Each page is converted as soon as it arrives, so the raw JSON
        of at most a few pages is alive at once. A server that pages by fewer than
        ``per_page`` (the size of the full first page says so) is followed correctly, and
        so is a list that grew while we read it (``links.pages.next`` of the last page).
        ``on_first_page`` is called once the first page is in.
        """
        first = await self._page(params, 1, operation=operation, limiter=limiter, convert=convert)
        if on_first_page is not None:
            on_first_page()
        if not first.has_next:
            return first.items
        if first.total is None or first.count == 0:
            return first.items + await self._follow(
                params, 2, operation=operation, limiter=limiter, convert=convert
            )
        pages = max(1, math.ceil(first.total / first.count))
        results: list[list[_T]] = [first.items] + [[] for _ in range(pages - 1)]
        last_has_next = False
        failures: list[tuple[int, HyperSDKError]] = []

        async def fetch(page: int, scope: anyio.CancelScope) -> None:
            nonlocal last_has_next
            try:
                got = await self._page(
                    params, page, operation=operation, limiter=limiter, convert=convert
                )
            except HyperSDKError as exc:
                failures.append((page, exc))
                scope.cancel()
                return
            results[page - 1] = got.items
            if page == pages:
                last_has_next = got.has_next

        async with anyio.create_task_group() as group:
            for page in range(2, pages + 1):
                group.start_soon(fetch, page, group.cancel_scope)
        if failures:
            raise min(failures, key=lambda failure: failure[0])[1]
        everything = [item for page_items in results for item in page_items]
        if last_has_next:
            everything += await self._follow(
                params, pages + 1, operation=operation, limiter=limiter, convert=convert
            )
        return everything

    async def _follow(
        self,
        params: Mapping[str, str],
        page: int,
        *,
        operation: str,
        limiter: anyio.CapacityLimiter,
        convert: Callable[[list[Droplet]], list[_T]],
    ) -> list[_T]:
        collected: list[_T] = []
        while True:
            got = await self._page(
                params, page, operation=operation, limiter=limiter, convert=convert
            )
            collected += got.items
            page += 1
            if not got.has_next or got.count == 0:
                return collected

    async def _page(
        self,
        params: Mapping[str, str],
        page: int,
        *,
        operation: str,
        limiter: anyio.CapacityLimiter,
        convert: Callable[[list[Droplet]], list[_T]],
    ) -> _Page[_T]:
        async with limiter:
            response = await self.send(
                "GET",
                "/droplets",
                operation=operation,
                params={**params, "page": page, "per_page": PER_PAGE},
                idempotent=True,
            )
        hypersdk.raise_for_response(response, provider=PROVIDER, operation=operation)
        decoded = decode_page(response.content, operation=operation)
        del response  # the raw page can go before the droplets are mapped
        droplets = decoded.droplets
        items: list[_T] = []
        for start in range(0, len(droplets), _CONVERT_CHUNK):
            # Mapping a page is CPU work; in small chunks, with a checkpoint between them,
            # the other pages' requests go out and their responses come in meanwhile.
            if start:
                await anyio.lowlevel.checkpoint()
            items += convert(droplets[start : start + _CONVERT_CHUNK])
        return _Page(items, len(droplets), decoded.total, decoded.has_next)


@attrs.frozen
class _Page(Generic[_T]):
    items: list[_T]
    count: int  # droplets on the page, before conversion
    total: int | None
    has_next: bool


def _int_header(response: httpx.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


def _api_text(response: httpx.Response) -> str:
    """``: <message>`` from DigitalOcean's error body, on one line and clipped."""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip():
        return ""
    return ": " + " ".join(message.split())[:200].rstrip(".")


def _where(response: httpx.Response) -> str:
    # Method and path only: the query string is no one's business in a message.
    return f" {response.request.method} {response.request.url.path}"


def _checked_json(
    response: httpx.Response,
    operation: str,
    resource: Literal["vm"] | None,
    identifier: str | None,
    require: tuple[str, ...],
) -> dict[str, object]:
    """Raise the hypersdk error an error response stands for, else return its JSON object."""
    hypersdk.raise_for_response(
        response, provider=PROVIDER, operation=operation, resource=resource, identifier=identifier
    )
    return json_body(response, provider=PROVIDER, operation=operation, require=require)
