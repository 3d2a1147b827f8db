"""decide(): the one pure function that says what happens to each check."""

from __future__ import annotations

import attrs
import pytest

from hypersdk import ExportCapabilities
from hypersdk_testing import CONTRACT, CONTRACT_VERSION, Action, check_by_id, decide

EXPORTING = ExportCapabilities(supported_formats=("raw",), supports_streaming=True)


def test_a_plain_check_runs() -> None:
    assert decide(check_by_id("LIST-COMPLETE"), capabilities=EXPORTING, exclusions={}) == (
        Action.RUN,
        "required by the contract",
    )


def test_an_unclaimed_capability_is_skipped_naming_it() -> None:
    action, reason = decide(
        check_by_id("EXPORT-COMPRESSION"), capabilities=EXPORTING, exclusions={}
    )
    assert action is Action.SKIP
    assert "supports_compression" in reason


def test_no_formats_skips_every_export_check_but_not_the_others() -> None:
    nothing = ExportCapabilities()
    for check in CONTRACT:
        action, reason = decide(check, capabilities=nothing, exclusions={})
        if check.requires is None:
            assert action is Action.RUN, check.id
        else:
            assert action is Action.SKIP, check.id
            assert "PLUGIN_INFO.capabilities" in reason


def test_a_claimed_capability_runs() -> None:
    claimed = attrs.evolve(EXPORTING, supports_compression=True)
    assert (
        decide(check_by_id("EXPORT-COMPRESSION"), capabilities=claimed, exclusions={})[0]
        is Action.RUN
    )


def test_an_exclusion_with_a_reason_is_excluded_with_that_reason() -> None:
    action, reason = decide(
        check_by_id("EXPORT-RESUME"),
        capabilities=EXPORTING,
        exclusions={"EXPORT-RESUME": "the API has no Range support"},
    )
    assert action is Action.EXCLUDE
    assert reason.endswith("the API has no Range support")


@pytest.mark.parametrize("reason", ["", "   ", None, 42])
def test_an_exclusion_without_a_reason_is_an_error(reason: object) -> None:
    action, message = decide(
        check_by_id("LIST-FILTER"), capabilities=EXPORTING, exclusions={"LIST-FILTER": reason}
    )
    assert action is Action.ERROR
    assert "without a reason" in message


def test_an_exclusion_wins_over_a_missing_capability() -> None:
    action, _ = decide(
        check_by_id("EXPORT-COMPRESSION"),
        capabilities=EXPORTING,
        exclusions={"EXPORT-COMPRESSION": "later"},
    )
    assert action is Action.EXCLUDE


def test_unreadable_plugin_info_errors_capability_checks_only() -> None:
    assert decide(check_by_id("EXPORT-RESULT"), capabilities=None, exclusions={})[0] is Action.ERROR
    assert decide(check_by_id("LIST-COMPLETE"), capabilities=None, exclusions={})[0] is Action.RUN


def test_a_check_newer_than_the_pin_warns() -> None:
    newer = attrs.evolve(check_by_id("CONCURRENT-CALLS"), since=3)
    action, reason = decide(
        newer, capabilities=EXPORTING, exclusions={}, pinned_version=2, current_version=3
    )
    assert action is Action.WARN
    assert "added in contract 3" in reason
    assert "pinned to contract 2" in reason
    assert (
        decide(newer, capabilities=EXPORTING, exclusions={}, pinned_version=3, current_version=3)[0]
        is Action.RUN
    )
    assert decide(newer, capabilities=EXPORTING, exclusions={}, current_version=3)[0] is Action.RUN


@pytest.mark.parametrize("pin", [0, CONTRACT_VERSION + 1, "1", 1.0, True])
def test_a_pin_this_hypersdk_does_not_know_is_an_error(pin: object) -> None:
    action, reason = decide(
        check_by_id("LIST-COMPLETE"), capabilities=EXPORTING, exclusions={}, pinned_version=pin
    )
    assert action is Action.ERROR
    assert "contract_version" in reason
