"""Failure messages: credentials never shown, exchanges readable, author mistakes named."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx

from hypersdk_testing import check_by_id
from hypersdk_testing._failure import format_exchange, violation_message

if TYPE_CHECKING:
    import pytest

pytest_plugins = ["pytester"]

TOKEN = "hsdk-secret-token-123"


def test_the_token_is_redacted_from_urls_headers_and_bodies() -> None:
    request = httpx.Request(
        "GET",
        f"https://api.test/v1/machines?token={TOKEN}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    response = httpx.Response(401, json={"message": f"token {TOKEN} is revoked"})
    text = format_exchange([(request, response)], [TOKEN])
    assert TOKEN not in text
    assert "token=<redacted>" in text
    assert "[Authorization: Bearer <redacted>]" in text
    assert "token <redacted> is revoked" in text


def test_a_raised_transport_error_shows_no_response() -> None:
    request = httpx.Request("GET", "https://api.test/v1/account")
    assert "no response (the transport raised)" in format_exchange([(request, None)], [])
    assert format_exchange([], []) == "  (no HTTP request was made)"


def test_the_message_has_rule_expected_actual_exchange_and_fix() -> None:
    check = check_by_id("GET-NOT-FOUND")
    message = violation_message(
        check,
        expected="VMNotFoundError",
        actual=f"None ({TOKEN})",
        exchange="  GET ...",
        secrets=[TOKEN],
    )
    lines = message.splitlines()
    assert lines[0] == f"[GET-NOT-FOUND] {check.rule}"
    assert lines[1] == "expected: VMNotFoundError"
    assert lines[2] == "actual:   None (<redacted>)"
    assert "HTTP exchange that led here (oldest first):" in lines
    assert f"fix: {check.fix}" in lines
    assert lines[-1] == "docs: docs/conformance.md#get-not-found"


def test_a_route_that_skips_intercept_is_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_forgetful="""
        import httpx
        from tests.conformance.reference_provider import machine_json
        from tests.conformance.reference_suite import BASE, RefcloudConformance

        class TestForgetful(RefcloudConformance):
            def mock_api(self, router, cloud):
                router.get(f"{BASE}/account").mock(return_value=httpx.Response(200, json={}))
                router.get(f"{BASE}/machines").mock(side_effect=lambda request: cloud.json(
                    {"machines": [machine_json(vm) for vm in cloud.vms], "next_page": None}))
        """
    )
    pytester.runpytest(
        "-p", "no:cacheprovider", "--hypersdk-report=report", "--hypersdk-check=LIFECYCLE-BAD-TOKEN"
    )
    (plugin,) = json.loads((pytester.path / "report.json").read_text())["plugins"]
    (outcome,) = plugin["checks"]
    assert outcome["status"] == "failed"
    assert "served without cloud.intercept(request)" in outcome["reason"]


def test_suite_config_names_missing_methods(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_incomplete="""
        from hypersdk_testing import ProviderConformance
        from tests.conformance import reference_provider

        class TestIncomplete(ProviderConformance):
            plugin = reference_provider
        """
    )
    pytester.runpytest(
        "-p", "no:cacheprovider", "--hypersdk-report=report", "--hypersdk-check=SUITE-CONFIG"
    )
    (plugin,) = json.loads((pytester.path / "report.json").read_text())["plugins"]
    (outcome,) = plugin["checks"]
    assert outcome["status"] == "failed"
    assert "define configure()" in outcome["reason"]
    assert "define mock_api()" in outcome["reason"]
