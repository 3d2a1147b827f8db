"""hypersdk_testing: prove a hypersdk provider plugin against the contract, offline.

One subclass runs every check of the provider contract against a mocked API::

    from hypersdk_testing import FakeCloud, ProviderConformance
    import my_plugin

    class TestMyProvider(ProviderConformance):
        plugin = my_plugin
        def configure(self, cloud: FakeCloud) -> ProviderConfig: ...
        def mock_api(self, router: respx.MockRouter, cloud: FakeCloud) -> None: ...

``hypersdk_testing.strategies`` holds Hypothesis strategies for every hypersdk model.
Importing this package is cheap (the pytest plugin imports it at start-up); the suite,
FakeCloud and their dependencies (Hypothesis, respx, httpx) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from hypersdk_testing import _contract
from hypersdk_testing._contract import (
    CONTRACT,
    ContractCheck,
    check_by_id,
)
from hypersdk_testing._decide import Action, decide

# Assigned here, not imported, so the API docs find this docstring instead of int's.
CONTRACT_VERSION: Final = _contract.CONTRACT_VERSION
"""The newest contract version this hypersdk checks (an int).

Each check records the version that introduced it (:attr:`ContractCheck.since`) and
those that made it stricter (:attr:`ContractCheck.tightened_in`); a plugin that pins
``contract_version`` below it sees what is newer as warnings until it opts in.
"""

if TYPE_CHECKING:
    from hypersdk_testing._failure import ContractViolation
    from hypersdk_testing._fakecloud import FakeCloud, Fault, Mutation, Page
    from hypersdk_testing._suite import ProviderConformance
    from hypersdk_testing._world import standard_world

__all__ = [
    # the suite
    "ProviderConformance",
    "ContractViolation",
    # the world
    "FakeCloud",
    "Fault",
    "Mutation",
    "Page",
    "standard_world",
    # the contract
    "CONTRACT",
    "CONTRACT_VERSION",
    "ContractCheck",
    "check_by_id",
    "Action",
    "decide",
]

_LAZY = {
    "ProviderConformance": "hypersdk_testing._suite",
    "ContractViolation": "hypersdk_testing._failure",
    "FakeCloud": "hypersdk_testing._fakecloud",
    "Fault": "hypersdk_testing._fakecloud",
    "Mutation": "hypersdk_testing._fakecloud",
    "Page": "hypersdk_testing._fakecloud",
    "standard_world": "hypersdk_testing._world",
}

if not TYPE_CHECKING:  # type checkers see the imports above

    def __getattr__(name: str) -> Any:
        module_name = _LAZY.get(name)
        if module_name is None:
            raise AttributeError(f"module 'hypersdk_testing' has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module_name), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
