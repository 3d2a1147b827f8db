"""IDENTITY-LOADS: whether the plugin module passes the loader's validation."""

from __future__ import annotations

import inspect
import logging
import platform
from typing import TYPE_CHECKING

from hypersdk import (
    BlockingProvider,
    HyperSDKError,
    PluginMetadata,
    Provider,
    ProviderConfig,
    __version__,
)

if TYPE_CHECKING:
    import types
    from collections.abc import Callable

__all__ = ["plugin_problems"]


def plugin_problems(
    module: types.ModuleType,
    make_config: Callable[[], ProviderConfig],
) -> list[str]:
    """Every way ``module`` breaks the plugin module contract (empty when it loads).

    The module contract of DESIGN.md: ``PLUGIN_INFO`` is a valid PluginMetadata whose
    ``min_sdk_version`` and ``python_requires`` this interpreter satisfies, and
    ``new_provider(config, logger)`` builds a Provider or BlockingProvider of that type.
    """
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    problems: list[str] = []
    info = getattr(module, "PLUGIN_INFO", None)
    if info is None:
        problems.append("the module has no PLUGIN_INFO; define PLUGIN_INFO = PluginMetadata(...)")
    elif not isinstance(info, PluginMetadata):
        problems.append(f"PLUGIN_INFO is a {type(info).__name__}, not a hypersdk.PluginMetadata")
    else:
        if info.min_sdk_version and Version(__version__) < Version(info.min_sdk_version):
            problems.append(
                f"PLUGIN_INFO.min_sdk_version is {info.min_sdk_version} but this hypersdk is "
                f"{__version__}; lower the requirement or upgrade hypersdk"
            )
        python = platform.python_version()
        if info.python_requires and python not in SpecifierSet(info.python_requires):
            problems.append(
                f"PLUGIN_INFO.python_requires is {info.python_requires!r} but this Python "
                f"is {python}"
            )
    factory = getattr(module, "new_provider", None)
    if factory is None:
        problems.append("the module has no new_provider(config, logger) function")
        return problems
    if not callable(factory):
        problems.append(f"new_provider is a {type(factory).__name__}, not a function")
        return problems
    try:
        inspect.signature(factory).bind(object(), object())
    except TypeError:
        problems.append(
            f"new_provider{inspect.signature(factory)} cannot be called as "
            "new_provider(config, logger)"
        )
        return problems
    except ValueError:  # no signature available (a builtin): let the call below decide
        pass
    try:
        built = factory(make_config(), logging.getLogger("hypersdk.conformance.loader"))
    except HyperSDKError as exc:
        problems.append(f"new_provider(config, logger) raised {type(exc).__name__}: {exc}")
        return problems
    except Exception as exc:
        problems.append(
            f"new_provider(config, logger) raised {type(exc).__module__}."
            f"{type(exc).__qualname__}: {exc}"
        )
        return problems
    if not isinstance(built, Provider | BlockingProvider):
        problems.append(
            f"new_provider() returned {type(built).__name__}, not a hypersdk.Provider or "
            "hypersdk.BlockingProvider"
        )
    elif isinstance(info, PluginMetadata) and built.type != info.provider_type:
        problems.append(
            f"the provider's type {built.type!r} differs from PLUGIN_INFO.provider_type "
            f"{info.provider_type!r}"
        )
    return problems
