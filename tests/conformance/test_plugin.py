"""The pytest plugin: options, markers, exclusions, capabilities, versioning, the report."""

from __future__ import annotations

import json
import subprocess
import sys

import attrs
import pytest

from hypersdk_testing import CONTRACT, _contract, check_by_id
from tests.conformance import reference_provider

pytest_plugins = ["pytester"]


def write_suite(pytester: pytest.Pytester, variant: str = "reference", **knobs: str) -> None:
    arguments = "".join(f", {name}={value}" for name, value in knobs.items())
    pytester.makepyfile(
        test_suite=(
            "from hypersdk import ExportCapabilities, PluginMetadata\n"
            "from tests.conformance.variants import conformance_class\n"
            f"TestSuite = conformance_class({variant!r}{arguments})\n"
        )
    )


def report(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    document = json.loads((pytester.path / "report.json").read_text())
    (plugin,) = document["plugins"]
    return {check["id"]: check for check in plugin["checks"]}


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "--hypersdk-report=report", *args)


def test_list_contract_prints_every_check_and_exits(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--hypersdk-list-contract")
    assert result.ret == 0
    for check in CONTRACT:
        result.stdout.fnmatch_lines([f"*{check.id}*{check.rule[:40]}*"])


def test_an_unknown_check_id_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--hypersdk-check=LIST-EVERYTHING")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown contract check 'LIST-EVERYTHING'*"])


def test_checks_are_marked_and_selectable(pytester: pytest.Pytester) -> None:
    write_suite(pytester)
    result = pytester.runpytest("--collect-only", "-q", "-m", "hypersdk")
    result.stdout.fnmatch_lines([f"*::TestSuite::{check.test_name}" for check in CONTRACT])


def test_an_exclusion_with_a_reason_is_reported_as_excluded(pytester: pytest.Pytester) -> None:
    write_suite(pytester, exclusions='{"EXPORT-RESUME": "our API has no Range requests"}')
    result = run(pytester, "--hypersdk-check=EXPORT-RESUME", "--hypersdk-check=SUITE-CONFIG")
    assert result.ret == 0
    outcomes = report(pytester)
    assert outcomes["EXPORT-RESUME"]["status"] == "excluded"
    assert "our API has no Range requests" in str(outcomes["EXPORT-RESUME"]["reason"])
    assert outcomes["SUITE-CONFIG"]["status"] == "passed"


def test_an_exclusion_without_a_reason_is_an_error(pytester: pytest.Pytester) -> None:
    write_suite(pytester, exclusions='{"EXPORT-RESUME": ""}')
    result = run(pytester, "--hypersdk-check=EXPORT-RESUME", "--hypersdk-check=SUITE-CONFIG")
    assert result.ret == 1
    outcomes = report(pytester)
    assert outcomes["EXPORT-RESUME"]["status"] == "error"
    assert "without a reason" in str(outcomes["EXPORT-RESUME"]["reason"])
    assert outcomes["SUITE-CONFIG"]["status"] == "failed"


def test_an_exclusion_of_an_unknown_check_fails_suite_config(pytester: pytest.Pytester) -> None:
    write_suite(pytester, exclusions='{"LIST-EVRYTHING": "typo"}')
    run(pytester, "--hypersdk-check=SUITE-CONFIG")
    outcome = report(pytester)["SUITE-CONFIG"]
    assert outcome["status"] == "failed"
    assert "'LIST-EVRYTHING', which is not a contract check ID" in str(outcome["reason"])


def test_an_unclaimed_capability_is_skipped_with_its_name(pytester: pytest.Pytester) -> None:
    info = attrs.evolve(
        reference_provider.PLUGIN_INFO,
        capabilities=attrs.evolve(
            reference_provider.PLUGIN_INFO.capabilities, supports_compression=False
        ),
    )
    write_suite(
        pytester,
        info=f"PluginMetadata(name={info.name!r}, version='1.0.0', provider_type='refcloud', capabilities=ExportCapabilities(supported_formats=('raw',), supports_streaming=True))",
    )
    result = run(pytester, "--hypersdk-check=EXPORT-COMPRESSION", "--hypersdk-check=EXPORT-RESUME")
    assert result.ret == 0
    outcomes = report(pytester)
    assert outcomes["EXPORT-COMPRESSION"]["status"] == "skipped"
    assert "supports_compression" in str(outcomes["EXPORT-COMPRESSION"]["reason"])
    assert outcomes["EXPORT-RESUME"]["status"] == "passed"


def test_a_claimed_capability_that_does_not_work_fails(pytester: pytest.Pytester) -> None:
    write_suite(pytester, "fake_compression")
    run(pytester, "--hypersdk-check=EXPORT-COMPRESSION")
    assert report(pytester)["EXPORT-COMPRESSION"]["status"] == "failed"


def test_a_plugin_needing_a_newer_sdk_fails_identity_loads(pytester: pytest.Pytester) -> None:
    write_suite(
        pytester,
        info="PluginMetadata(name='refcloud', version='1.0.0', provider_type='refcloud', min_sdk_version='99.0')",
    )
    run(pytester, "--hypersdk-check=IDENTITY-LOADS")
    outcome = report(pytester)["IDENTITY-LOADS"]
    assert outcome["status"] == "failed"
    assert (
        "IncompatiblePluginError: plugin module refcloud_variant_reference needs hypersdk >= 99.0"
        in str(outcome["reason"])
    )


def test_checks_newer_than_the_pin_only_warn(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pretend a later hypersdk added CONCURRENT-CALLS in contract 2.
    monkeypatch.setattr(_contract, "CONTRACT_VERSION", 2)
    monkeypatch.setitem(
        _contract._BY_ID, "CONCURRENT-CALLS", attrs.evolve(check_by_id("CONCURRENT-CALLS"), since=2)
    )
    write_suite(pytester, "shared_pagination_state", contract_version="1")
    result = run(pytester, "--hypersdk-check=CONCURRENT-CALLS", "--hypersdk-check=LIST-COMPLETE")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["*hypersdk contract warnings*", "*test_concurrent_calls: [[]CONCURRENT-CALLS[]]*"]
    )
    outcomes = report(pytester)
    assert outcomes["CONCURRENT-CALLS"]["status"] == "warning"
    assert outcomes["LIST-COMPLETE"]["status"] == "passed"

    write_suite(pytester, "shared_pagination_state", contract_version="2")
    assert run(pytester, "--hypersdk-check=CONCURRENT-CALLS").ret == 1
    assert report(pytester)["CONCURRENT-CALLS"]["status"] == "failed"


def test_the_report_has_json_and_markdown(pytester: pytest.Pytester) -> None:
    write_suite(pytester, "swallows_404")
    run(pytester, "--hypersdk-check=GET-NOT-FOUND", "--hypersdk-check=GET-AGREES")
    document = json.loads((pytester.path / "report.json").read_text())
    (plugin,) = document["plugins"]
    assert plugin["plugin"] == "refcloud"
    assert plugin["provider_type"] == "refcloud"
    assert plugin["summary"]["failed"] == 1
    assert plugin["summary"]["passed"] == 1
    markdown = (pytester.path / "report.md").read_text()
    assert "| `GET-NOT-FOUND` | discovery | FAIL | it returned None |" in markdown
    assert "| `GET-AGREES` | discovery | pass |" in markdown


def test_failure_messages_show_the_exchange_without_the_token(pytester: pytest.Pytester) -> None:
    write_suite(pytester, "token_in_url")
    run(pytester, "--hypersdk-check=SECRET-URL")
    reason = str(report(pytester)["SECRET-URL"]["reason"])
    assert "HTTP exchange that led here" in reason
    assert "[Authorization: Bearer <redacted>]" in reason
    assert "access_token=<redacted>" in reason
    assert "hsdk-test-" not in reason  # the generated token's prefix


def test_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, hypersdk_testing.plugin, hypersdk\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('hypothesis', 'respx', 'httpx', 'cattrs'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_hypersdk_does_not_import_hypersdk_testing() -> None:
    code = (
        "import sys, hypersdk\nprint([m for m in sys.modules if m.startswith('hypersdk_testing')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_an_importable_plugin_goes_through_check_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    from hypersdk.plugins import PluginManager
    from hypersdk_testing._loader import plugin_problems

    seen: list[str] = []
    original = PluginManager.check_plugin

    def spy(self: PluginManager, target: str) -> object:
        seen.append(target)
        return original(self, target)

    monkeypatch.setattr(PluginManager, "check_plugin", spy)
    assert plugin_problems(reference_provider) == []
    assert seen == ["tests.conformance.reference_provider"]

    monkeypatch.setattr(reference_provider, "PLUGIN_INFO", {"name": "refcloud"})
    (problem,) = plugin_problems(reference_provider)
    assert "PLUGIN_INFO must be a hypersdk.PluginMetadata, got dict" in problem


def test_hypothesis_settings_follow_the_class_and_the_command_line() -> None:
    from hypersdk_testing._suite import DEFAULT_MAX_EXAMPLES, set_cli_max_examples
    from tests.conformance.variants import conformance_class

    assert (
        conformance_class("reference")().hypothesis_settings().max_examples == DEFAULT_MAX_EXAMPLES
    )
    assert conformance_class("reference", max_examples=7)().hypothesis_settings().max_examples == 7
    set_cli_max_examples(3)
    try:
        assert (
            conformance_class("reference", max_examples=7)().hypothesis_settings().max_examples == 3
        )
    finally:
        set_cli_max_examples(None)


def test_max_examples_on_the_command_line_must_be_positive(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--hypersdk-max-examples=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_collection_runs_nothing_of_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_lazy="""
        from hypersdk_testing import ProviderConformance
        from tests.conformance import reference_provider

        class TestLazy(ProviderConformance):
            plugin = reference_provider

            def configure(self, cloud):
                raise RuntimeError("configure ran at collection")

            def mock_api(self, router, cloud):
                raise RuntimeError("mock_api ran at collection")
        """
    )
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"*{len(CONTRACT)} tests collected*"])
