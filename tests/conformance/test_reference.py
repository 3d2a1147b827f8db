"""The reference provider passes every check of the contract."""

from __future__ import annotations

import types
from typing import ClassVar

from tests.conformance import blocking_provider
from tests.conformance.reference_suite import RefcloudConformance


class TestReferenceProvider(RefcloudConformance):
    """The whole contract against the reference provider."""


class TestBlockingReferenceProvider(RefcloudConformance):
    """The same contract against a BlockingProvider, driven through worker threads."""

    plugin: ClassVar[types.ModuleType] = blocking_provider
