"""The contract table, its documentation page and the implemented checks agree."""

from __future__ import annotations

import re
from pathlib import Path

from hypersdk_testing import CONTRACT, ProviderConformance
from hypersdk_testing._checks import CHECKS

DOC = Path(__file__).parents[2] / "docs" / "conformance.md"


def test_every_check_is_implemented_and_becomes_one_test() -> None:
    assert set(CHECKS) == {check.id for check in CONTRACT}
    for check in CONTRACT:
        method = getattr(ProviderConformance, check.test_name)
        (marker,) = method.pytestmark
        assert marker.args == (check.id,)


def test_ids_are_stable_shaped_and_unique() -> None:
    ids = [check.id for check in CONTRACT]
    assert len(ids) == len(set(ids))
    for check_id in ids:
        assert re.fullmatch(r"[A-Z]+(-[A-Z0-9]+)+", check_id), check_id


def test_the_docs_page_lists_every_check_with_its_rule_and_fix() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = {
        match.group(1): match.group(0)
        for match in re.finditer(r"^\| <a id=\"[a-z0-9-]+\"></a>`([A-Z0-9-]+)` \|.*$", text, re.M)
    }
    assert set(rows) == {check.id for check in CONTRACT}
    for check in CONTRACT:
        row = rows[check.id]
        assert check.rule.replace("|", "\\|") in row, check.id
        assert check.fix.replace("|", "\\|") in row, check.id
        assert row.count(" | ") >= 3, check.id  # ID, rule, what a failure means, how to fix


def test_every_rule_is_one_sentence() -> None:
    for check in CONTRACT:
        assert check.rule.endswith("."), check.id
        assert check.fix.endswith("."), check.id
