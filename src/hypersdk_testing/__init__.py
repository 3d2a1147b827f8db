"""hypersdk_testing: the conformance suite and test helpers for hypersdk provider plugins.

``hypersdk_testing.strategies`` holds Hypothesis strategies for every hypersdk model.
The conformance suite (``ProviderConformance``, ``FakeCloud``) arrives in a later release.
"""

from __future__ import annotations

__all__: list[str] = []
