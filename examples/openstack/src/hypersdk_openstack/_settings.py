"""The plugin's settings, read once from a :class:`~hypersdk.ProviderConfig` without I/O."""

from __future__ import annotations

import ipaddress
import math
from typing import TYPE_CHECKING, Final, Literal

import attrs
import httpx

from hypersdk import ConfigurationError, ProviderConfig, Secret

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Settings", "settings_from_config", "INTERFACES"]

PROVIDER: Final = "openstack"
INTERFACES: Final = ("public", "internal", "admin")
_DEFAULT_TIMEOUT: Final = 30.0
_CONNECT_TIMEOUT: Final = 10.0


@attrs.frozen(kw_only=True)
class Settings:
    """Everything ``connect`` needs, validated. ``repr`` never shows a secret."""

    auth_url: str  # the Keystone v3 root, ending in "/v3"
    method: Literal["password", "application_credential"]
    secret: Secret  # the password or the application credential's secret
    username: str = ""
    user_domain: tuple[str, str] = ("name", "Default")  # ("id" | "name", value)
    project: tuple[str, str] | None = None
    project_domain: tuple[str, str] = ("name", "Default")
    credential: tuple[str, str] = ("id", "")  # the application credential: id or name
    region: str = ""
    interface: str = "public"
    timeout: float = _DEFAULT_TIMEOUT
    verify: bool = True
    max_retries: int = 3
    max_retry_wait: float = 60.0
    retry_backoff: float = 0.5
    poll_interval: float = 2.0
    image_timeout: float = 3600.0
    page_size: int = 1000
    keep_image: bool = False

    def http_timeout(self) -> httpx.Timeout:
        """Finite timeouts: ``timeout`` for reads, writes and the pool, at most 10 s to connect."""
        return httpx.Timeout(self.timeout, connect=min(self.timeout, _CONNECT_TIMEOUT))

    def auth_body(self) -> dict[str, object]:
        """The body of ``POST /v3/auth/tokens`` (holds the secret: never log it)."""
        if self.method == "application_credential":
            kind, value = self.credential
            credential: dict[str, object] = {kind: value, "secret": self.secret.reveal()}
            if kind == "name":
                credential["user"] = {
                    "name": self.username,
                    "domain": {self.user_domain[0]: self.user_domain[1]},
                }
            return {
                "auth": {
                    "identity": {
                        "methods": ["application_credential"],
                        "application_credential": credential,
                    }
                }
            }
        auth: dict[str, object] = {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": self.username,
                        "domain": {self.user_domain[0]: self.user_domain[1]},
                        "password": self.secret.reveal(),
                    }
                },
            }
        }
        if self.project is not None:
            kind, value = self.project
            project: dict[str, object] = {kind: value}
            if kind == "name":
                project["domain"] = {self.project_domain[0]: self.project_domain[1]}
            auth["scope"] = {"project": project}
        return {"auth": auth}


def _fail(field: str, allowed: str, got: object | None = None) -> ConfigurationError:
    shown = "" if got is None else f", got {got!r}"
    return ConfigurationError(
        f"openstack connect: {field} must be {allowed}{shown}",
        provider=PROVIDER,
        operation="connect",
    )


def _number(
    metadata: Mapping[str, str], key: str, default: float, *, low: float, high: float
) -> float:
    raw = metadata.get(key, "")
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise _fail(f"ProviderConfig.metadata[{key!r}]", f"a number from {low:g} to {high:g}", raw)
    return value


def _flag(metadata: Mapping[str, str], key: str) -> bool:
    raw = metadata.get(key, "").strip().casefold()
    if raw in {"", "false", "no", "0", "off"}:
        return False
    if raw in {"true", "yes", "1", "on"}:
        return True
    raise _fail(f"ProviderConfig.metadata[{key!r}]", "true or false", metadata[key])


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _auth_url(config: ProviderConfig) -> str:
    raw = config.endpoint.strip()
    if not raw and config.host:
        raw = f"https://{config.host}" + (f":{config.port}" if config.port else "")
    allowed = "the Keystone URL, such as 'https://keystone.example.com:5000/v3'"
    if not raw:
        raise _fail("ProviderConfig.endpoint", allowed)
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL:
        raise _fail("ProviderConfig.endpoint", allowed) from None
    if url.scheme not in {"http", "https"} or not url.host:
        raise _fail("ProviderConfig.endpoint", allowed, f"scheme {url.scheme!r}")
    if url.userinfo or url.query or url.fragment:
        # Not echoed: user info or a query in a URL may be a credential.
        raise _fail("ProviderConfig.endpoint", "a URL without user info, query or fragment")
    if url.scheme == "http" and not config.insecure and not _is_loopback(url.host):
        raise _fail(
            "ProviderConfig.endpoint",
            f"https to send credentials to {url.host!r} (or set ProviderConfig.insecure=True "
            "if you mean plain http)",
        )
    path = url.path.rstrip("/").removesuffix("/v3")
    port = f":{url.port}" if url.port else ""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}{port}{path}/v3"


def _id_or_name(metadata: Mapping[str, str], prefix: str) -> tuple[str, str] | None:
    for kind in ("id", "name"):
        value = metadata.get(f"{prefix}_{kind}", "").strip()
        if value:
            return (kind, value)
    return None


def settings_from_config(config: ProviderConfig) -> Settings:
    """Validate ``config`` into :class:`Settings`; makes no request.

    Password auth needs ``username`` and ``password`` (plus a project to scope to, from
    ``metadata["project_name"]`` or ``["project_id"]``); application-credential auth
    needs ``metadata["application_credential_id"]`` (or ``_name`` with ``username``) and
    the secret in ``password`` or ``metadata["application_credential_secret"]``.

    Raises:
        ConfigurationError: a setting is missing or invalid (the message names it).
    """
    metadata = config.metadata
    auth_url = _auth_url(config)
    credential = _id_or_name(metadata, "application_credential")
    secret = config.password
    if credential is not None:
        secret = config.secret("application_credential_secret") or secret
        method: Literal["password", "application_credential"] = "application_credential"
    else:
        method = "password"
    if secret is None or not secret.reveal():
        what = "application credential secret" if credential else "password"
        raise _fail(
            "ProviderConfig.password",
            f"set: it holds the Keystone {what}"
            + (" (or use metadata['application_credential_secret'])" if credential else ""),
        )
    needs_user = credential is None or credential[0] == "name"
    if needs_user and not config.username.strip():
        raise _fail("ProviderConfig.username", "the Keystone user name (it is empty)")
    interface = metadata.get("interface", "public").strip().casefold() or "public"
    if interface not in INTERFACES:
        raise _fail("ProviderConfig.metadata['interface']", " or ".join(INTERFACES), interface)
    return Settings(
        auth_url=auth_url,
        method=method,
        secret=secret,
        username=config.username.strip(),
        user_domain=_id_or_name(metadata, "user_domain") or ("name", "Default"),
        project=_id_or_name(metadata, "project"),
        project_domain=_id_or_name(metadata, "project_domain") or ("name", "Default"),
        credential=credential or ("id", ""),
        region=config.region.strip(),
        interface=interface,
        timeout=config.timeout or _DEFAULT_TIMEOUT,
        verify=not config.insecure,
        max_retries=int(_number(metadata, "max_retries", 3, low=0, high=20)),
        max_retry_wait=_number(metadata, "max_retry_wait", 60.0, low=0, high=3600),
        retry_backoff=_number(metadata, "retry_backoff", 0.5, low=0, high=60),
        poll_interval=_number(metadata, "poll_interval", 2.0, low=0, high=600),
        image_timeout=_number(metadata, "image_timeout", 3600.0, low=0, high=7 * 86400),
        page_size=int(_number(metadata, "page_size", 1000, low=1, high=10000)),
        keep_image=_flag(metadata, "keep_image"),
    )
