"""The requests-based reference provider passes every check of the contract, over the socket."""

from __future__ import annotations

from tests.conformance.reference_suite import RequestsRefcloudConformance


class TestRequestsReferenceProvider(RequestsRefcloudConformance):
    """The whole contract against a BlockingProvider over requests, through the socket path."""
