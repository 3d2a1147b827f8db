"""The conformance report never contains a token (issue #10 item 11).

The attack: run the secret checks one at a time, so the check that reports a leak is
not the one whose session handed out the token, and read the report files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hypersdk_testing._report import (
    CheckOutcome,
    PluginReport,
    Report,
    redact_report_text,
    remember_secret,
)

pytest_plugins = ["pytester"]

_TOKEN = re.compile(r"hsdk-test-[0-9a-f]{8,}")


@pytest.mark.parametrize(
    ("variant", "checks", "quoting"),
    [
        # The second check reports a leak whose text quotes the token.
        ("token_in_error_message", ("SECRET-LOGS", "SECRET-REPR"), "SECRET-REPR"),
        ("leaks_token_in_log", ("SECRET-REPR", "SECRET-LOGS"), "SECRET-LOGS"),
        ("token_in_url", ("SECRET-LOGS", "SECRET-URL"), None),
    ],
)
def test_report_redacts_tokens_when_checks_run_one_at_a_time(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    variant: str,
    checks: tuple[str, ...],
    quoting: str | None,
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[2]))
    pytester.makepyfile(
        test_variant=(
            "from tests.conformance.variants import conformance_class\n"
            f"TestVariant = conformance_class({variant!r})\n"
        )
    )
    args = [f"--hypersdk-check={check}" for check in checks]
    # In a subprocess: two in-process runs in a row re-import the plugin module under
    # classes of the first run, which is pytester's problem, not the report's.
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--hypersdk-report=report", *args
    )
    assert result.ret == 1, result.stdout.str()
    # pytest's own failure text too: the reporting check adopts the tour's token.
    assert not _TOKEN.search(result.stdout.str()), result.stdout.str()
    for name in ("report.json", "report.md"):
        text = (pytester.path / name).read_text(encoding="utf-8")
        assert not _TOKEN.search(text), f"{name} holds a token:\n{text}"
    (plugin,) = json.loads((pytester.path / "report.json").read_text())["plugins"]
    outcomes = {check["id"]: check for check in plugin["checks"]}
    assert outcomes[checks[1]]["status"] == "failed", outcomes
    if quoting is not None:
        assert "<redacted>" in outcomes[quoting]["reason"]


def test_remembered_secrets_are_redacted_in_every_report_path() -> None:
    secret = 'author"chosen\\token-0042'
    remember_secret(secret)
    plugin = PluginReport(
        test_class="t::T",
        plugin="p",
        provider_type="p",
        plugin_version="1",
        pinned_contract_version=None,
    )
    plugin.add(
        CheckOutcome(id="SECRET-REPR", area="a", status="failed", reason=f"actual: {secret}")
    )
    report = Report(plugins={"t::T": plugin})
    # An outcome changed after it was recorded is still redacted when written.
    plugin.checks["SECRET-REPR"].reason = f"actual: {secret} hsdk-test-0123456789abcdef01234567"
    for text in (report.to_json(), report.to_markdown()):
        assert "author" not in text
        assert "hsdk-test-0123" not in text
        assert "<redacted>" in text
    assert redact_report_text("nothing here") == "nothing here"
