"""Keystone v3 authentication and one retrying request path for Nova and Glance.

A token lives in a :class:`~hypersdk.Secret` and is added to requests by
:class:`TokenAuth` at send time. A 401 from Nova or Glance re-authenticates once and
repeats the request (the token may simply have expired); a second 401 is the answer.
Responses become hypersdk errors through :mod:`hypersdk.http`.
"""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal

import anyio
import attrs
import httpx

import hypersdk
from hypersdk import ConfigurationError, NotConnectedError, ProviderAPIError, RateLimitError, Secret
from hypersdk.http import (
    error_for_exception,
    error_for_response,
    json_body,
    parse_retry_after,
    raise_for_response,
)
from hypersdk_openstack._settings import PROVIDER
from hypersdk_openstack._version import __version__

if TYPE_CHECKING:
    import logging
    import ssl
    from collections.abc import AsyncGenerator, Generator, Mapping

    from hypersdk_openstack._settings import Settings

__all__ = ["Api", "TokenAuth", "COMPUTE_MICROVERSION", "user_agent"]

COMPUTE_MICROVERSION: Final = "2.47"
"""The Nova microversion requested: 2.47 embeds the flavor (vcpus, ram, disk) in servers,
and 2.45+ returns a createImage's image id in the body. A cloud older than 2.47 answers
406; the client then falls back to the base 2.1 (flavors looked up, id from Location)."""

_RETRYABLE: Final = frozenset({500, 502, 503, 504})
# Re-authenticate this long before Keystone's expires_at, so no request races the expiry.
_EXPIRY_MARGIN: Final = timedelta(seconds=30)

Service = Literal["compute", "image"]


def user_agent() -> str:
    """``hypersdk-openstack/X hypersdk/Y python-httpx/Z``."""
    return (
        f"hypersdk-openstack/{__version__} hypersdk/{hypersdk.__version__} "
        f"python-httpx/{httpx.__version__}"
    )


@functools.cache
def _verified_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()  # loading the CA bundle once is enough


def tls(settings: Settings) -> ssl.SSLContext | bool:
    """What ``verify=`` gets: no CA bundle for plain http, none at all when insecure."""
    if not settings.auth_url.startswith("https:") or not settings.verify:
        return False
    return _verified_ssl_context()


@attrs.frozen(kw_only=True)
class _Token:
    value: Secret
    expires_at: datetime | None
    compute_url: str
    image_url: str


class TokenAuth(httpx.Auth):
    """``X-Auth-Token`` from the :class:`Api`'s current token; one re-auth on a 401."""

    def __init__(self, api: Api) -> None:
        self._api = api

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("TokenAuth is for httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._api.token()
        request.headers["X-Auth-Token"] = token.reveal()
        response = yield request
        if response.status_code == 401:
            fresh = await self._api.reauthenticate(stale=token)
            request.headers["X-Auth-Token"] = fresh.reveal()
            yield request

    def __repr__(self) -> str:
        return "TokenAuth(X-Auth-Token=Secret('**********'))"


class Api:
    """One authenticated session with Keystone, Nova and Glance."""

    def __init__(
        self,
        settings: Settings,
        logger: logging.Logger,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.logger = logger
        self.microversion: str | None = COMPUTE_MICROVERSION
        self._transport = transport
        self._token: _Token | None = None
        self._auth_lock = anyio.Lock()
        self.http = self.client()

    def client(self, **extra: object) -> httpx.AsyncClient:
        """A client with this session's auth, TLS, timeouts and User-Agent."""
        settings = self.settings
        return httpx.AsyncClient(
            auth=TokenAuth(self),
            headers={"User-Agent": user_agent(), "Accept": "application/json"},
            timeout=settings.http_timeout(),
            verify=tls(settings),
            follow_redirects=False,
            transport=self._transport,
            **extra,  # type: ignore[arg-type]
        )

    async def aclose(self) -> None:
        """Close the HTTP client (idempotent)."""
        await self.http.aclose()

    def __repr__(self) -> str:
        return f"Api(auth_url={self.settings.auth_url!r}, microversion={self.microversion!r})"

    # -- Keystone --------------------------------------------------------------------

    async def token(self) -> Secret:
        """The current token, re-authenticating first when it is about to expire."""
        current = self._token
        if current is None:
            raise NotConnectedError(
                f"{PROVIDER}: not authenticated; call connect() first", provider=PROVIDER
            )
        if current.expires_at is not None and datetime.now(UTC) >= (
            current.expires_at - _EXPIRY_MARGIN
        ):
            return await self.reauthenticate(stale=current.value)
        return current.value

    async def reauthenticate(self, *, stale: Secret | None) -> Secret:
        """A new token, unless another task already replaced ``stale``."""
        async with self._auth_lock:
            current = self._token
            if current is not None and stale is not None and current.value is not stale:
                return current.value
            self.logger.info("%s: authenticating with Keystone at %s", PROVIDER, self._where())
            self._token = await self._authenticate()
            return self._token.value

    async def authenticate(self) -> None:
        """Authenticate (``connect`` and ``validate_credentials``) and read the catalog."""
        await self.reauthenticate(stale=None)

    def endpoint(self, service: Service) -> str:
        """The catalog URL of ``service`` chosen at authentication."""
        if self._token is None:
            raise NotConnectedError(
                f"{PROVIDER}: not authenticated; call connect() first", provider=PROVIDER
            )
        return self._token.compute_url if service == "compute" else self._token.image_url

    def _where(self) -> str:
        url = httpx.URL(self.settings.auth_url)
        return f"{url.host}{url.path}"

    async def _authenticate(self) -> _Token:
        operation = "authenticate"
        response = await self.send(
            "POST",
            f"{self.settings.auth_url}/auth/tokens",
            operation=operation,
            json=self.settings.auth_body(),
            idempotent=True,  # a token request changes nothing: safe to repeat
            authenticated=False,
        )
        body = json_body(response, provider=PROVIDER, operation=operation, require=("token",))
        value = response.headers.get("x-subject-token", "").strip()
        token = body["token"]
        if not value or not isinstance(token, dict):
            raise ProviderAPIError(
                f"{PROVIDER} {operation}: Keystone answered without X-Subject-Token or a "
                "token object; is the endpoint a Keystone v3 URL?",
                provider=PROVIDER,
                operation=operation,
                status=response.status_code,
            )
        catalog = token.get("catalog")
        if not isinstance(catalog, list):
            raise ProviderAPIError(
                f"{PROVIDER} {operation}: the token has no service catalog; scope it to a "
                "project (metadata['project_name'] or ['project_id'])",
                provider=PROVIDER,
                operation=operation,
            )
        if not any(isinstance(entry, dict) and entry.get("type") == "compute" for entry in catalog):
            raise ConfigurationError(
                f"{PROVIDER} connect: the token's service catalog has no compute service"
                f" ({'it is empty' if not catalog else 'a domain-scoped token?'}); scope it "
                "to a project the user has a role on (metadata['project_name'] or "
                "['project_id'], or an application credential made in that project)",
                provider=PROVIDER,
                operation="connect",
            )
        compute, region = self._pick(catalog, "compute", self.settings.region)
        # Without a configured region, Glance must be in the region Nova was found in:
        # a catalog lists its endpoints in no particular order.
        image, _ = self._pick(catalog, "image", self.settings.region or region)
        compute = compute.rstrip("/")
        image = image.rstrip("/").removesuffix("/v2")
        return _Token(
            value=Secret(value),
            expires_at=_expiry(token.get("expires_at")),
            compute_url=compute,
            image_url=image,
        )

    def _pick(self, catalog: list[object], service: str, wanted_region: str) -> tuple[str, str]:
        """The URL of ``service`` for the configured interface and ``wanted_region``."""
        settings = self.settings
        seen: list[str] = []
        for entry in catalog:
            if not isinstance(entry, dict) or entry.get("type") != service:
                continue
            for endpoint in entry.get("endpoints") or ():
                if not isinstance(endpoint, dict) or not isinstance(endpoint.get("url"), str):
                    continue
                region = str(endpoint.get("region_id") or endpoint.get("region") or "")
                seen.append(f"{endpoint.get('interface')}@{region or '-'}")
                if endpoint.get("interface") == settings.interface and (
                    not wanted_region or wanted_region in (region, endpoint.get("region"))
                ):
                    return str(endpoint["url"]), region
        wanted = settings.interface + (f" in region {wanted_region!r}" if wanted_region else "")
        raise ConfigurationError(
            f"{PROVIDER} connect: the service catalog has no {wanted} {service} endpoint"
            + (f" (it has {', '.join(sorted(set(seen)))})" if seen else "")
            + "; set ProviderConfig.region and metadata['interface'] to one it has",
            provider=PROVIDER,
            operation="connect",
        )

    # -- requests --------------------------------------------------------------------

    async def get_json(
        self,
        service: Service,
        path: str,
        *,
        operation: str,
        params: Mapping[str, str] | None = None,
        resource: Literal["vm"] | None = None,
        identifier: str | None = None,
        require: tuple[str, ...] = (),
    ) -> dict[str, object]:
        """GET a JSON object from Nova or Glance; errors raised as hypersdk errors."""
        response = await self.call(service, "GET", path, operation=operation, params=params)
        raise_for_response(
            response,
            provider=PROVIDER,
            operation=operation,
            resource=resource,
            identifier=identifier,
        )
        return json_body(response, provider=PROVIDER, operation=operation, require=require)

    async def call(
        self,
        service: Service,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, object] | None = None,
    ) -> httpx.Response:
        """One Nova or Glance request (``path`` relative to the catalog endpoint)."""
        headers = {}
        if service == "compute" and self.microversion is not None:
            headers["OpenStack-API-Version"] = f"compute {self.microversion}"
            headers["X-OpenStack-Nova-API-Version"] = self.microversion
        response = await self.send(
            method,
            self.endpoint(service) + path,
            operation=operation,
            params=params,
            json=json,
            headers=headers,
            idempotent=method in ("GET", "HEAD", "DELETE"),
        )
        if response.status_code == 406 and headers:
            # Older than our microversion: use the base API from now on.
            self.logger.warning(
                "%s: Nova refused microversion %s (HTTP 406); using 2.1",
                PROVIDER,
                self.microversion,
            )
            self.microversion = None
            return await self.call(
                service, method, path, operation=operation, params=params, json=json
            )
        return response

    async def send(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
        authenticated: bool = True,
    ) -> httpx.Response:
        """Send with bounded retries: 429 always, 5xx and network errors when idempotent."""
        settings = self.settings
        retries, waited = 0, 0.0
        while True:
            delay: float | None = None
            try:
                response = await self.http.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers=headers,
                    **({} if authenticated else {"auth": None}),  # type: ignore[arg-type]
                )
            except RuntimeError:
                if not self.http.is_closed:
                    raise
                raise NotConnectedError(
                    f"{PROVIDER} {operation}: the provider was disconnected during the call",
                    provider=PROVIDER,
                    operation=operation,
                ) from None
            except httpx.HTTPError as exc:
                error = error_for_exception(exc, provider=PROVIDER, operation=operation)
                if idempotent and isinstance(exc, httpx.TransportError):
                    delay = self._backoff(retries)
                    reason = type(exc).__name__
                if delay is None or not self._may_retry(retries, waited, delay):
                    raise error from None
            else:
                status = response.status_code
                self.logger.debug("%s %s -> HTTP %d", method, response.request.url.path, status)
                limited = _rate_limit(response, operation)
                if limited is not None:
                    asked = limited.retry_after
                    delay = asked if asked else self._backoff(retries)
                    if not self._may_retry(retries, waited, delay):
                        raise limited
                    reason = f"HTTP {status}"
                elif status in _RETRYABLE and idempotent:
                    asked = parse_retry_after(response.headers.get("retry-after"))
                    delay = max(self._backoff(retries), asked or 0.0)
                    if not self._may_retry(retries, waited, delay):
                        return response
                    reason = f"HTTP {status}"
                else:
                    return response
            retries += 1
            waited += delay
            self.logger.warning(
                "%s %s: %s; retry %d/%d in %.2f s",
                PROVIDER,
                operation,
                reason,
                retries,
                settings.max_retries,
                delay,
            )
            await anyio.sleep(delay)

    def _may_retry(self, retries: int, waited: float, delay: float) -> bool:
        settings = self.settings
        return retries < settings.max_retries and waited + delay <= settings.max_retry_wait

    def _backoff(self, retries: int) -> float:
        base = self.settings.retry_backoff * 2.0**retries
        return base * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography


def _rate_limit(response: httpx.Response, operation: str) -> RateLimitError | None:
    """The RateLimitError a 429, or Nova's 413 ``overLimit`` with a wait, stands for.

    Nova wraps both in ``{"overLimit": {"message", "retryAfter"}}``, the wait copied from
    ``Retry-After`` when it had one; a 413 without a wait is a quota, not a rate limit.
    """
    status = response.status_code
    if status not in (413, 429):
        return None
    header = parse_retry_after(response.headers.get("retry-after"))
    asked = header if header is not None else _body_retry_after(response)
    if status == 413 and asked is None:
        return None
    error = error_for_response(response, provider=PROVIDER, operation=operation)
    text = error.message if error is not None else f"{PROVIDER} {operation}: HTTP {status}"
    # error_for_response words a 413 as a plain API error and a 429 with its own hint:
    # one wording for both, with the wait actually used.
    text = text.split(". Rate limited:", 1)[0].rstrip(".")
    hint = f"retry after {asked:g} s" if asked is not None else "slow down"
    return RateLimitError(
        f"{text}. Rate limited: {hint}",
        provider=PROVIDER,
        operation=operation,
        status=status,
        request_id=error.request_id if error is not None else None,
        retry_after=asked,
    )


def _body_retry_after(response: httpx.Response) -> float | None:
    """``retryAfter`` of a Nova ``overLimit`` body: seconds, or a date."""
    try:
        body = response.json()
    except ValueError:
        return None
    fault = body.get("overLimit") if isinstance(body, dict) else None
    value = fault.get("retryAfter") if isinstance(fault, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    seconds = parse_retry_after(value)
    if seconds is None:  # old Nova wrote an ISO 8601 time
        when = _expiry(value)
        seconds = None if when is None else max(0.0, (when - datetime.now(UTC)).total_seconds())
    return seconds


def _expiry(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
