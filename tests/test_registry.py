from __future__ import annotations

import threading

import pytest

from hypersdk import (
    ConfigurationError,
    ExportCapabilities,
    PluginLoadError,
    Provider,
    ProviderConfig,
    ProviderType,
    Registry,
)
from tests.test_providers import Closing, MemoryBlocking


def test_register_create_and_list() -> None:
    registry = Registry()
    registry.register("memory", lambda config: MemoryBlocking())
    registry.register("closing", lambda config: Closing())
    assert registry.list_providers() == ["closing", "memory"]
    assert registry.is_registered("memory")
    assert "memory" in registry
    assert len(registry) == 2
    provider = registry.create("memory", ProviderConfig(type="memory"))
    assert isinstance(provider, Provider)  # blocking providers are wrapped
    assert registry.get_capabilities("memory").supported_formats == ("raw",)


def test_unknown_type_lists_registered_ones() -> None:
    registry = Registry()
    registry.register("aws", lambda config: Closing())
    registry.register("gcp", lambda config: Closing())
    with pytest.raises(
        ConfigurationError, match="unknown provider type 'azure'; registered types: aws, gcp"
    ):
        registry.create("azure", ProviderConfig(type="azure"))
    with pytest.raises(ConfigurationError, match="registered types: none"):
        Registry().get_capabilities("azure")


def test_duplicate_registration() -> None:
    registry = Registry()
    registry.register("x", lambda config: Closing())
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.register("x", lambda config: Closing())
    registry.register("x", lambda config: MemoryBlocking(), replace=True)
    assert registry.unregister("x")
    assert not registry.unregister("x")


def test_registered_capabilities_avoid_building() -> None:
    calls = []

    def factory(config: ProviderConfig) -> Provider:
        calls.append(config)
        return Closing()

    registry = Registry()
    caps = ExportCapabilities(supported_formats=["qcow2"])
    registry.register("x", factory, capabilities=caps)
    assert registry.get_capabilities("x") is caps
    assert calls == []


@pytest.mark.parametrize(
    ("provider_type", "factory", "message"),
    [
        ("", lambda config: Closing(), "provider_type: must be a non-empty string"),
        ("x", "not callable", "factory: must be callable"),
    ],
)
def test_register_rejects(provider_type: str, factory: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Registry().register(provider_type, factory)  # type: ignore[arg-type]


def test_factory_failures_are_plugin_errors() -> None:
    registry = Registry()

    def broken(config: ProviderConfig) -> Provider:
        raise RuntimeError("boom")

    registry.register("broken", broken)
    registry.register("wrong", lambda config: object())  # type: ignore[arg-type,return-value]
    with pytest.raises(
        PluginLoadError, match="factory of provider type 'broken' failed: RuntimeError: boom"
    ):
        registry.create("broken", ProviderConfig(type="broken"))
    with pytest.raises(PluginLoadError, match="returned object, not a hypersdk.Provider"):
        registry.create("wrong", ProviderConfig(type="wrong"))


def test_thread_safety() -> None:
    registry = Registry()
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for round_ in range(50):
                name = ProviderType(f"p{index}-{round_}")
                registry.register(name, lambda config: Closing())
                registry.list_providers()
                registry.create(name, ProviderConfig(type=name))
                registry.unregister(name)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(registry) == 0
