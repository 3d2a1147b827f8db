"""The registry: provider types mapped to the factories that build them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeAlias

import attrs

from hypersdk._validation import shown
from hypersdk.errors import ConfigurationError, PluginLoadError
from hypersdk.models import ExportCapabilities, ProviderConfig, ProviderType
from hypersdk.providers import BlockingProvider, Provider, as_async_provider

__all__ = ["Registry", "ProviderFactory"]

_log = logging.getLogger("hypersdk.registry")

ProviderFactory: TypeAlias = Callable[[ProviderConfig], Provider | BlockingProvider]
"""Builds a provider from its config (no I/O: ``connect`` does that)."""


@attrs.frozen
class _Entry:
    factory: ProviderFactory
    capabilities: ExportCapabilities | None


class Registry:
    """A thread-safe map of provider types to factories.

    >>> registry = Registry()
    >>> registry.register("demo", DemoProvider)  # doctest: +SKIP
    >>> provider = registry.create("demo", ProviderConfig(type="demo"))  # doctest: +SKIP

    :meth:`create` always returns an async :class:`~hypersdk.Provider`; a factory that
    builds a :class:`~hypersdk.BlockingProvider` is wrapped for you.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._entries: dict[ProviderType, _Entry] = {}

    def register(
        self,
        provider_type: ProviderType | str,
        factory: ProviderFactory,
        *,
        capabilities: ExportCapabilities | None = None,
        replace: bool = False,
    ) -> None:
        """Register ``factory`` under ``provider_type``.

        ``capabilities``, when given, answers :meth:`get_capabilities` without building a
        provider (the plugin manager passes ``PLUGIN_INFO.capabilities``).

        Raises:
            ConfigurationError: the type is empty, the factory is not callable, or the
                type is already registered and ``replace`` is false.
        """
        key = _checked_type(provider_type)
        if not callable(factory):
            raise ConfigurationError(
                f"factory: must be callable as factory(config) -> Provider, "
                f"got {type(factory).__name__}"
            )
        if capabilities is not None and not isinstance(capabilities, ExportCapabilities):
            raise ConfigurationError(
                f"capabilities: must be an ExportCapabilities or None, "
                f"got {type(capabilities).__name__}"
            )
        with self._lock:
            if key in self._entries and not replace:
                raise ConfigurationError(
                    f"provider type {shown(key)} is already registered; "
                    "unregister it first or pass replace=True"
                )
            self._entries[key] = _Entry(factory, capabilities)
        _log.debug("registered provider type %r", key)

    def unregister(self, provider_type: ProviderType | str) -> bool:
        """Remove ``provider_type``; return whether it was registered."""
        key = _checked_type(provider_type)
        with self._lock:
            removed = self._entries.pop(key, None) is not None
        if removed:
            _log.debug("unregistered provider type %r", provider_type)
        return removed

    def is_registered(self, provider_type: ProviderType | str) -> bool:
        """Return whether ``provider_type`` has a factory."""
        key = _checked_type(provider_type)
        with self._lock:
            return key in self._entries

    def list_providers(self) -> list[ProviderType]:
        """Return the registered types, sorted."""
        with self._lock:
            return sorted(self._entries)

    def create(self, provider_type: ProviderType | str, config: ProviderConfig) -> Provider:
        """Build a provider of ``provider_type`` from ``config`` (not yet connected).

        Raises:
            ConfigurationError: the type is not registered (the message lists those that
                are), or ``config`` is not a ProviderConfig.
            PluginLoadError: the factory raised or returned something that is not a
                provider.
        """
        key = _checked_type(provider_type)
        if not isinstance(config, ProviderConfig):
            raise ConfigurationError(
                f"config: must be a ProviderConfig, got {type(config).__name__}"
            )
        entry = self._entry(key)
        try:
            built = entry.factory(config)
        except ConfigurationError:
            raise
        except Exception as exc:
            raise PluginLoadError(
                f"the factory of provider type {shown(key)} failed: {type(exc).__name__}: {exc}",
                provider=key,
                operation="create",
            ) from exc
        if not isinstance(built, Provider | BlockingProvider):
            raise PluginLoadError(
                f"the factory of provider type {shown(key)} returned {type(built).__name__}, "
                "not a hypersdk.Provider or hypersdk.BlockingProvider",
                provider=key,
                operation="create",
            )
        return as_async_provider(built)

    def get_capabilities(self, provider_type: ProviderType | str) -> ExportCapabilities:
        """Return what ``provider_type`` can export.

        Uses the capabilities given at registration, else builds a provider with a
        default config and asks it.

        Raises:
            ConfigurationError: the type is not registered.
        """
        key = _checked_type(provider_type)
        entry = self._entry(key)
        if entry.capabilities is not None:
            return entry.capabilities
        return self.create(key, ProviderConfig(type=key)).get_export_capabilities()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, provider_type: object) -> bool:
        return (
            isinstance(provider_type, str)
            and bool(provider_type.strip())
            and self.is_registered(provider_type)
        )

    def __repr__(self) -> str:
        return f"Registry({self.list_providers()!r})"

    def _entry(self, key: ProviderType) -> _Entry:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                return entry
            known = ", ".join(sorted(self._entries)) or "none"
        raise ConfigurationError(
            f"unknown provider type {shown(key)}; registered types: {known}. "
            "Install or load the plugin that provides it."
        )


def _checked_type(provider_type: object) -> ProviderType:
    if not isinstance(provider_type, str) or not provider_type.strip():
        raise ConfigurationError(
            f"provider_type: must be a non-empty string, got {shown(provider_type)}"
        )
    return ProviderType(provider_type)
