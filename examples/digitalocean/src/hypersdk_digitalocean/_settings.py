"""The plugin's settings, read once from a :class:`~hypersdk.ProviderConfig` without I/O."""

from __future__ import annotations

import ipaddress
import math
from typing import TYPE_CHECKING, Final, TypeVar

import attrs
import httpx

from hypersdk import ConfigurationError, ProviderConfig, Secret

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["DEFAULT_ENDPOINT", "Settings", "settings_from_config", "parse_bool"]

DEFAULT_ENDPOINT: Final = "https://api.digitalocean.com"
DEFAULT_TIMEOUT: Final = 30.0
_CONNECT_TIMEOUT: Final = 10.0

_T = TypeVar("_T")


@attrs.frozen(kw_only=True)
class Settings:
    """Everything ``connect`` needs, validated. ``repr`` never shows the token."""

    token: Secret
    base_url: str  # ends in "/v2/"
    timeout: float
    verify: bool
    # A 10,000-droplet account is 50 pages of 200: with 20 in flight, the page-1 guard and
    # then waves of 20, each mapped while the next is on the wire (mapping is the slower,
    # so more in flight gains nothing at 50 ms a request). 20 is well inside the API's
    # 250-a-minute burst limit (the hourly 5,000 is guarded by RateLimiter, which counts
    # requests in flight), and it is httpx's keep-alive pool: more connections than that
    # and httpcore closes idle ones mid-listing only to open new ones (a TLS handshake each).
    max_concurrency: int = 20
    max_retries: int = 3
    max_retry_wait: float = 60.0
    retry_backoff: float = 0.5
    poll_interval: float = 5.0
    rate_limit_reserve: int = 25
    include_gpus: bool = True

    def http_timeout(self) -> httpx.Timeout:
        """Finite timeouts: ``timeout`` for reads, writes and the pool, at most 10 s to connect."""
        return httpx.Timeout(self.timeout, connect=min(self.timeout, _CONNECT_TIMEOUT))


def _fail(key: str, allowed: str, got: object) -> ConfigurationError:
    return ConfigurationError(
        f"digitalocean connect: ProviderConfig.metadata[{key!r}] must be {allowed}, got {got!r}",
        provider="digitalocean",
        operation="connect",
    )


def parse_bool(value: str, *, key: str, where: str = "ProviderConfig.metadata") -> bool:
    """Read ``true/false/yes/no/1/0/on/off`` (any case) or raise ConfigurationError."""
    folded = value.strip().casefold()
    if folded in {"true", "yes", "1", "on"}:
        return True
    if folded in {"false", "no", "0", "off", ""}:
        return False
    raise ConfigurationError(f"{where}[{key!r}] must be true or false, got {value!r}")


def _number(
    metadata: Mapping[str, str],
    key: str,
    default: _T,
    parse: Callable[[str], _T],
    *,
    low: float,
    high: float,
) -> _T:
    raw = metadata.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise _fail(key, f"a number in {low:g}-{high:g}", raw) from None
    if not isinstance(value, int | float) or not math.isfinite(value) or not low <= value <= high:
        raise _fail(key, f"a number in {low:g}-{high:g}", raw)
    return value


def _token(config: ProviderConfig) -> Secret:
    token = config.secret("token") or config.password
    if token is None or not token.reveal().strip():
        raise ConfigurationError(
            "digitalocean connect: no API token; set ProviderConfig.metadata['token'] "
            "or ProviderConfig.password to a DigitalOcean personal access token",
            provider="digitalocean",
            operation="connect",
        )
    text = token.reveal()
    if not text.isascii() or not text.isprintable() or " " in text:
        raise ConfigurationError(
            "digitalocean connect: the API token contains spaces or characters that "
            "cannot be sent in an HTTP header; paste the token exactly as issued",
            provider="digitalocean",
            operation="connect",
        )
    return token


def _base_url(config: ProviderConfig) -> str:
    raw = config.endpoint.strip()
    if not raw and config.host:
        raw = f"https://{config.host}" + (f":{config.port}" if config.port else "")
    raw = raw or DEFAULT_ENDPOINT
    problem = "an http(s) URL such as 'https://api.digitalocean.com'"
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL:
        raise ConfigurationError(
            f"digitalocean connect: ProviderConfig.endpoint must be {problem}",
            provider="digitalocean",
            operation="connect",
        ) from None
    if url.scheme not in {"http", "https"} or not url.host:
        raise ConfigurationError(
            f"digitalocean connect: ProviderConfig.endpoint must be {problem}, "
            f"got scheme {url.scheme!r}",
            provider="digitalocean",
            operation="connect",
        )
    if url.userinfo or url.query or url.fragment:
        # Not echoed: user info in a URL is a credential.
        raise ConfigurationError(
            "digitalocean connect: ProviderConfig.endpoint must not carry user info, a query "
            "or a fragment; put the token in metadata['token'] or password",
            provider="digitalocean",
            operation="connect",
        )
    if url.scheme == "http" and not config.insecure and not _is_loopback(url.host):
        raise ConfigurationError(
            f"digitalocean connect: refusing to send the API token over plain http to "
            f"{url.host!r}; use https, or set ProviderConfig.insecure=True if you mean it",
            provider="digitalocean",
            operation="connect",
        )
    path = url.path.rstrip("/")
    path = path.removesuffix("/v2")
    port = f":{url.port}" if url.port else ""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}{port}{path}/v2/"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settings_from_config(config: ProviderConfig) -> Settings:
    """Validate ``config`` into :class:`Settings`; makes no request.

    Raises:
        ConfigurationError: the token is missing, the endpoint unusable, or a metadata
            setting out of range (the message names the field).
    """
    metadata = config.metadata
    include_gpus = parse_bool(metadata.get("include_gpus", "true"), key="include_gpus")
    return Settings(
        token=_token(config),
        base_url=_base_url(config),
        timeout=config.timeout or DEFAULT_TIMEOUT,
        verify=not config.insecure,
        max_concurrency=_number(metadata, "max_concurrency", 20, int, low=1, high=64),
        max_retries=_number(metadata, "max_retries", 3, int, low=0, high=20),
        max_retry_wait=_number(metadata, "max_retry_wait", 60.0, float, low=0, high=3600),
        retry_backoff=_number(metadata, "retry_backoff", 0.5, float, low=0, high=60),
        poll_interval=_number(metadata, "poll_interval", 5.0, float, low=0, high=600),
        rate_limit_reserve=_number(metadata, "rate_limit_reserve", 25, int, low=0, high=5000),
        include_gpus=include_gpus,
    )
