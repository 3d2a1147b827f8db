"""The reference provider passes every check of the contract."""

from __future__ import annotations

from tests.conformance.reference_suite import RefcloudConformance


class TestReferenceProvider(RefcloudConformance):
    """The whole contract against the reference provider."""
