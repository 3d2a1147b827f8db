"""The reference provider passes every check of the contract."""

from __future__ import annotations

from hypersdk_testing import CONTRACT
from tests.conformance import blocking_provider, reference_provider
from tests.conformance.reference_suite import RefcloudConformance
from tests.conformance.variants import plugin_module


class TestReferenceProvider(RefcloudConformance):
    """The whole contract against the reference provider."""


class TestBlockingReferenceProvider(RefcloudConformance):
    """The same contract against a BlockingProvider, driven through worker threads."""

    plugin = blocking_provider


class TestToolkitExports(RefcloudConformance):
    """The export checks against export_vm written with hypersdk.export.export_disk_image."""

    plugin = plugin_module("toolkit", reference_provider.ToolkitRefcloudProvider)


# The other areas are the reference provider's own; only the export path differs here.
for _check in CONTRACT:
    if _check.area != "export":
        setattr(TestToolkitExports, _check.test_name, None)
