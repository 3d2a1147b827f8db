"""Checking a plugin against the module contract, with messages that say what to fix.

The contract: a module exposing ``PLUGIN_INFO: PluginMetadata`` and
``new_provider(config: ProviderConfig, logger: logging.Logger) -> Provider |
BlockingProvider``. Each check raises the :class:`~hypersdk.PluginError` subclass a
caller can act on: :class:`~hypersdk.InvalidPluginMetadataError` for a broken contract,
:class:`~hypersdk.IncompatiblePluginError` for a version mismatch,
:class:`~hypersdk.PluginLoadError` for a provider that cannot be built.
"""

from __future__ import annotations

import inspect
import logging
import platform
from collections.abc import Callable

import attrs

from hypersdk._validation import shown
from hypersdk._version import __version__
from hypersdk.errors import (
    ConfigurationError,
    IncompatiblePluginError,
    InvalidPluginMetadataError,
    PluginLoadError,
)
from hypersdk.models import ExportCapabilities, PluginMetadata, ProviderConfig
from hypersdk.providers import BlockingProvider, Provider

__all__ = ["NewProvider", "check_compatible", "check_contract", "check_provider", "describe"]

NewProvider = Callable[[ProviderConfig, logging.Logger], Provider | BlockingProvider]

_CONTRACT = (
    "define PLUGIN_INFO = hypersdk.PluginMetadata(name=..., version=..., provider_type=...) "
    "and def new_provider(config: hypersdk.ProviderConfig, logger: logging.Logger) -> "
    "hypersdk.Provider at module level"
)


def describe(error: BaseException) -> str:
    """``"ValueError: bad"``: the type makes SystemExit(0) and friends readable."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else repr(error)


def metadata_error(error: BaseException, label: str) -> InvalidPluginMetadataError | None:
    """The metadata error behind an import failure, when PLUGIN_INFO's construction failed.

    ``PluginMetadata`` validates itself, so a bad ``PLUGIN_INFO`` surfaces while the
    module is being imported, as a ConfigurationError naming the model field.
    """
    if isinstance(error, ConfigurationError) and str(error).startswith(
        ("PluginMetadata.", "ExportCapabilities.")
    ):
        return InvalidPluginMetadataError(
            f"plugin {label}: PLUGIN_INFO is invalid: {error}", operation="load"
        )
    return None


def check_contract(target: object, label: str) -> tuple[PluginMetadata, NewProvider]:
    """Return the plugin's ``PLUGIN_INFO`` and ``new_provider`` once both are well-formed.

    Raises:
        InvalidPluginMetadataError: either is missing, of the wrong kind, invalid, or
            ``new_provider`` cannot be called as ``new_provider(config, logger)``.
    """

    def fail(problem: str) -> InvalidPluginMetadataError:
        return InvalidPluginMetadataError(f"plugin {label}: {problem}", operation="load")

    metadata = getattr(target, "PLUGIN_INFO", None)
    if metadata is None:
        raise fail(f"it has no PLUGIN_INFO; {_CONTRACT}")
    if not isinstance(metadata, PluginMetadata):
        hint = " (wrap the dict: PluginMetadata(**...))" if isinstance(metadata, dict) else ""
        raise fail(
            f"PLUGIN_INFO must be a hypersdk.PluginMetadata, got {type(metadata).__name__}{hint}"
        )
    try:
        # Frozen is a convention, not a wall: re-run the validators on what we got.
        attrs.validate(metadata)
    except ConfigurationError as exc:
        raise fail(f"PLUGIN_INFO is invalid: {exc}") from exc

    factory = getattr(target, "new_provider", None)
    if factory is None:
        raise fail(f"it has no new_provider; {_CONTRACT}")
    if not callable(factory):
        raise fail(f"new_provider must be callable, got {type(factory).__name__}")
    if inspect.iscoroutinefunction(factory):
        raise fail(
            "new_provider must be a plain def (it only builds the provider; "
            "connect() does the I/O), not async def"
        )
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        signature = None  # some builtins have none; calling it will tell
    if signature is not None:
        try:
            signature.bind(object(), object())
        except TypeError as exc:
            raise fail(
                f"new_provider{signature} cannot be called as new_provider(config, logger) "
                f"({exc}); declare it as def new_provider(config: hypersdk.ProviderConfig, "
                "logger: logging.Logger) -> hypersdk.Provider"
            ) from None
    return metadata, factory


def check_compatible(metadata: PluginMetadata, label: str) -> None:
    """Check ``min_sdk_version`` and ``python_requires`` against what is running.

    A development or pre-release build of hypersdk X counts as X, so plugins written
    against the next release can be tried before it ships.

    Raises:
        IncompatiblePluginError: naming both the required and the running version.
    """
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    if metadata.min_sdk_version:
        running = Version(Version(__version__).base_version)
        if running < Version(metadata.min_sdk_version):
            raise IncompatiblePluginError(
                f"plugin {label} needs hypersdk >= {metadata.min_sdk_version} "
                f"(PLUGIN_INFO.min_sdk_version), but this is hypersdk {__version__}; "
                "upgrade hypersdk or install an older version of the plugin",
                operation="load",
            )
    if metadata.python_requires:
        python = platform.python_version()
        if not SpecifierSet(metadata.python_requires).contains(python, prereleases=True):
            raise IncompatiblePluginError(
                f"plugin {label} needs Python {metadata.python_requires} "
                f"(PLUGIN_INFO.python_requires), but this is Python {python}; "
                "install a version of the plugin that supports this Python",
                operation="load",
            )


def _capability_differences(declared: ExportCapabilities, actual: ExportCapabilities) -> str:
    return "; ".join(
        f"{field.name}: PLUGIN_INFO says {shown(getattr(declared, field.name))}, "
        f"the provider says {shown(getattr(actual, field.name))}"
        for field in attrs.fields(ExportCapabilities)
        if getattr(declared, field.name) != getattr(actual, field.name)
    )


def check_provider(
    factory: NewProvider, metadata: PluginMetadata, logger: logging.Logger, label: str
) -> None:
    """Build one provider with a blank config and check it agrees with ``PLUGIN_INFO``.

    The contract says ``new_provider`` does no I/O (``connect`` does), so this is cheap.

    Raises:
        PluginLoadError: the factory raised or returned something that is not a provider.
        InvalidPluginMetadataError: the provider's type or capabilities disagree with
            ``PLUGIN_INFO``.
    """
    config = ProviderConfig(type=metadata.provider_type)
    try:
        built: object = factory(config, logger)
    except BaseException as exc:
        raise PluginLoadError(
            f"plugin {label}: new_provider(config, logger) raised {describe(exc)}; it must "
            "build the provider without I/O (connect() does the I/O)",
            operation="load",
        ) from exc
    if inspect.isawaitable(built):
        close = getattr(built, "close", None)
        if callable(close):
            close()  # avoid "coroutine was never awaited"
        raise InvalidPluginMetadataError(
            f"plugin {label}: new_provider returned an awaitable; it must return the "
            "provider itself (make it a plain def)",
            operation="load",
        )
    if not isinstance(built, Provider | BlockingProvider):
        raise PluginLoadError(
            f"plugin {label}: new_provider returned {type(built).__name__}, not a "
            "hypersdk.Provider or hypersdk.BlockingProvider; subclass one of them",
            operation="load",
        )
    try:
        actual_type = built.type
        actual_capabilities = built.get_export_capabilities()
    except BaseException as exc:
        raise PluginLoadError(
            f"plugin {label}: the provider's type or get_export_capabilities() raised "
            f"{describe(exc)}; both must work before connect()",
            operation="load",
        ) from exc
    if actual_type != metadata.provider_type:
        raise InvalidPluginMetadataError(
            f"plugin {label}: the provider's type is {shown(actual_type)} but "
            f"PLUGIN_INFO.provider_type is {shown(metadata.provider_type)}; make them the same",
            operation="load",
        )
    if actual_capabilities != metadata.capabilities:
        differences = _capability_differences(metadata.capabilities, actual_capabilities)
        raise InvalidPluginMetadataError(
            f"plugin {label}: get_export_capabilities() disagrees with "
            f"PLUGIN_INFO.capabilities ({differences}); "
            "return PLUGIN_INFO.capabilities from get_export_capabilities()",
            operation="load",
        )
