"""What contract 2 part 2 made stricter: each new rule fails its variant, and only warns
for a plugin pinned to contract 1."""

from __future__ import annotations

import pytest

from tests.conformance.test_variants import run_check

pytest_plugins = ["pytester"]

TIGHTENED = [
    ("auth_error_as_api_error", "FAULT-ERROR-TYPES", "AuthenticationError given HTTP 401"),
    ("retries_client_errors", "FAULT-ERROR-TYPES", "no retry of HTTP 400"),
    ("retry_after_seconds_only", "FAULT-RATE-LIMIT-BUDGET", "an HTTP-date"),
    ("prefix_matching_get", "GET-NOT-FOUND", "existing ids"),
    ("export_writes_before_lookup", "GET-NOT-FOUND", "in output_path"),
    ("case_sensitive_state_filter", "LIST-FILTER", "state="),
    ("any_tag_filter", "LIST-FILTER", "'team': 'web'"),
    ("tag_key_only_filter", "LIST-FILTER", "tags="),
    ("empty_tag_value_means_any", "LIST-FILTER", "'env': ''"),
    ("case_insensitive_tag_values", "LIST-FILTER", "tags={'team': 'web'}"),
    ("substring_glob", "LIST-FILTER", "name_pattern='web-0'"),
    ("any_term_search", "SEARCH-SEMANTICS", "'web prod'"),
    ("token_in_rate_limit_error", "SECRET-REPR", "throttled for token <redacted>"),
    ("token_in_export_error", "SECRET-REPR", "Authorization: Bearer <redacted>"),
    ("progress_restarts_on_retry", "EXPORT-PROGRESS", "it went down"),
    ("progress_floor_chunk_count", "EXPORT-PROGRESS", "outside [0, 100]"),
    ("leaves_part_on_failure", "EXPORT-CANCEL", "failed (every disk download dropped)"),
    ("temp_file_left_behind", "EXPORT-CANCEL", "the system temp dir"),
    ("export_leaks_client", "LIFECYCLE-DISCONNECT", "export_vm"),
    ("get_wraps_outages", "FAULT-UNAVAILABLE", "ProviderUnavailableError from get_vm"),
    ("result_path_is_the_file", "EXPORT-RESULT", "expected options.output_path"),
]


@pytest.mark.parametrize(("variant", "check_id", "says"), TIGHTENED)
def test_the_new_rule_fails_and_says_why(
    pytester: pytest.Pytester, variant: str, check_id: str, says: str
) -> None:
    outcome = run_check(pytester, variant, check_id)[check_id]
    assert outcome["status"] == "failed", outcome
    assert says in str(outcome["reason"]), outcome["reason"]


@pytest.mark.parametrize(("variant", "check_id", "says"), TIGHTENED)
def test_a_plugin_pinned_to_contract_1_gets_a_warning(
    pytester: pytest.Pytester, variant: str, check_id: str, says: str
) -> None:
    outcome = run_check(pytester, variant, check_id, knobs="contract_version=1")[check_id]
    assert outcome["status"] == "warning", outcome
    assert says in str(outcome["reason"])
