"""Every broken variant fails the contract check meant to catch it, with a useful message."""

from __future__ import annotations

import json

import pytest

from hypersdk_testing import check_by_id
from tests.conformance.variants import VARIANTS

pytest_plugins = ["pytester"]


def run_check(
    pytester: pytest.Pytester, variant: str, *check_ids: str, knobs: str = ""
) -> dict[str, dict[str, object]]:
    pytester.makepyfile(
        test_variant=(
            "from tests.conformance.variants import conformance_class\n"
            f"TestVariant = conformance_class({variant!r}{', ' + knobs if knobs else ''})\n"
        )
    )
    args = [f"--hypersdk-check={check_id}" for check_id in check_ids]
    result = pytester.runpytest("-p", "no:cacheprovider", "--hypersdk-report=report", *args)
    assert result.ret in (0, 1), result.stdout.str()
    document = json.loads((pytester.path / "report.json").read_text())
    (plugin,) = document["plugins"]
    return {check["id"]: check for check in plugin["checks"]}


@pytest.mark.parametrize(
    ("variant", "check_id"), [(name, check) for name, (_, check) in VARIANTS.items()]
)
def test_variant_fails_its_check(pytester: pytest.Pytester, variant: str, check_id: str) -> None:
    outcome = run_check(pytester, variant, check_id)[check_id]
    assert outcome["status"] == "failed", outcome
    reason = str(outcome["reason"])
    check = check_by_id(check_id)
    assert reason.startswith(f"[{check_id}] {check.rule}")
    assert "\nexpected: " in reason
    assert "\nactual:   " in reason
    assert f"\nfix: {check.fix}" in reason


def test_every_check_has_a_variant_that_must_fail_it() -> None:
    from hypersdk_testing import CONTRACT

    # IDENTITY-LOADS and SUITE-CONFIG are broken through PLUGIN_INFO and the class
    # itself, not the provider: test_plugin.py covers them.
    caught = {check for _, check in VARIANTS.values()} | {"IDENTITY-LOADS", "SUITE-CONFIG"}
    assert caught == {check.id for check in CONTRACT}
