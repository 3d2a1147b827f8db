"""The hypersdk exception tree.

Catch :class:`HyperSDKError` to handle everything the SDK or a provider raises on purpose.
The tree, so a reader knows what to catch::

    HyperSDKError
    ├── ConfigurationError            (also a ValueError) bad config, bad model field, bad data
    ├── NotConnectedError             a call before connect() or after disconnect()
    ├── AuthenticationError           401/403, a wrong or expired credential
    ├── VMNotFoundError               (also a LookupError) no VM with that identifier
    ├── RateLimitError                429; ``retry_after`` says when to come back
    ├── ProviderAPIError              the API answered something we cannot use
    ├── ProviderUnavailableError      5xx, timeouts, connection failures
    ├── ExportError
    │   ├── UnsupportedFormatError    the provider cannot produce that format
    │   └── ChecksumMismatchError     what arrived is not what was promised
    └── PluginError
        ├── PluginLoadError           the plugin module failed to import or build
        ├── InvalidPluginMetadataError  PLUGIN_INFO or new_provider is wrong
        └── IncompatiblePluginError   min_sdk_version / python_requires not satisfied

Every error can be raised with only a message (``VMNotFoundError("no droplet 42")``).
Structured context is optional and keyword-only: ``provider``, ``operation``, ``status``
(the HTTP status, when there was one), ``request_id`` (the provider's id of the failed
request, for its support desk) and, on :class:`RateLimitError`, ``retry_after``.
Messages name the provider, the operation and the fix; they never contain a secret.
"""

from __future__ import annotations

__all__ = [
    "HyperSDKError",
    "ConfigurationError",
    "NotConnectedError",
    "AuthenticationError",
    "VMNotFoundError",
    "RateLimitError",
    "ProviderAPIError",
    "ProviderUnavailableError",
    "ExportError",
    "UnsupportedFormatError",
    "ChecksumMismatchError",
    "PluginError",
    "PluginLoadError",
    "InvalidPluginMetadataError",
    "IncompatiblePluginError",
]


class HyperSDKError(Exception):
    """Base of every error hypersdk and well-behaved providers raise.

    Args:
        message: What went wrong and what to do about it.
        provider: The provider type or name involved, if any.
        operation: The public operation that failed (``"list_vms"``, ``"connect"``, ...).
        status: The HTTP status code behind the error, if there was a response.
        request_id: The provider's id of the failed request (its ``x-request-id`` or
            similar), which its support asks for.

    ``str(error)`` is the message, followed by ``(request id ...)`` when there is one;
    the context is also available as attributes so an application can branch on it
    without parsing text.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        operation: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.operation = operation
        self.status = status
        self.request_id = request_id

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} (request id {self.request_id})"
        return self.message

    def __repr__(self) -> str:
        parts = [repr(self.message)]
        for name in ("provider", "operation", "status", "request_id"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only context would be lost by Exception's default pickling.
        return (_rebuild, (type(self), self.message, self._context()))

    def _context(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "operation": self.operation,
            "status": self.status,
            "request_id": self.request_id,
        }


def _rebuild(cls: type[HyperSDKError], message: str, context: dict[str, object]) -> HyperSDKError:
    return cls(message, **context)  # type: ignore[arg-type]


class ConfigurationError(HyperSDKError, ValueError):
    """A configuration value, model field or serialized document is invalid.

    The message names the field (with its path for nested data) and what is allowed.
    """


class NotConnectedError(HyperSDKError):
    """A provider method was called before ``connect()`` or after ``disconnect()``."""


class AuthenticationError(HyperSDKError):
    """The provider rejected the credentials (HTTP 401/403 or an equivalent)."""


class VMNotFoundError(HyperSDKError, LookupError):
    """No virtual machine matches the identifier."""


class RateLimitError(HyperSDKError):
    """The provider's API is throttling us.

    Args:
        retry_after: Seconds the API asked us to wait before retrying, or ``None`` when
            it did not say.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        operation: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, provider=provider, operation=operation, status=status, request_id=request_id
        )
        self.retry_after = retry_after

    def __repr__(self) -> str:
        base = super().__repr__()
        if self.retry_after is None:
            return base
        return f"{base[:-1]}, retry_after={self.retry_after!r})"

    def _context(self) -> dict[str, object]:
        return {**super()._context(), "retry_after": self.retry_after}


class ProviderAPIError(HyperSDKError):
    """The API answered with an error we do not map, or a body we cannot use."""


class ProviderUnavailableError(HyperSDKError):
    """The provider's API is down or unreachable (5xx, timeout, connection failure)."""


class ExportError(HyperSDKError):
    """Exporting a VM failed."""


class UnsupportedFormatError(ExportError):
    """The provider cannot export to the requested format."""


class ChecksumMismatchError(ExportError):
    """Downloaded or written data does not match its expected checksum or size."""


class PluginError(HyperSDKError):
    """Base of the errors about plugins (discovery, loading, validation)."""


class PluginLoadError(PluginError):
    """A plugin could not be imported or its provider could not be built."""


class InvalidPluginMetadataError(PluginError):
    """A plugin's ``PLUGIN_INFO`` or ``new_provider`` does not follow the module contract."""


class IncompatiblePluginError(PluginError):
    """A plugin needs a newer hypersdk or a different Python than the one running."""
