"""The public API's types, checked by running mypy --strict on user-style code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

HERE = Path(__file__).parent / "typing"
ROOT = Path(__file__).parent.parent
_ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$")


def run_mypy(*files: Path) -> list[str]:
    stdout, stderr, _status = api.run(
        [
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--no-error-summary",
            "--show-error-codes",
            "--hide-error-context",
            "--no-pretty",
            "--warn-unused-ignores",
            *map(str, files),
        ]
    )
    assert not stderr, stderr
    return [line for line in stdout.splitlines() if ": error:" in line]


@pytest.fixture(scope="module")
def results() -> dict[str, list[str]]:
    errors = run_mypy(HERE / "good_usage.py", HERE / "bad_usage.py")
    grouped: dict[str, list[str]] = {"good": [], "bad": []}
    for line in errors:
        grouped["bad" if "bad_usage.py" in line else "good"].append(line)
    return grouped


def test_realistic_usage_type_checks(results: dict[str, list[str]]) -> None:
    assert results["good"] == []


def test_wrong_usage_is_rejected(results: dict[str, list[str]]) -> None:
    expected: dict[int, str] = {}
    for number, text in enumerate((HERE / "bad_usage.py").read_text().splitlines(), start=1):
        mark = re.search(r"# E: ([a-z-]+)$", text)
        if mark:
            expected[number] = mark.group(1)
    assert len(expected) >= 15
    found: dict[int, set[str]] = {}
    for line in results["bad"]:
        match = _ERROR.match(line)
        assert match, line
        found.setdefault(int(match["line"]), set()).add(match["code"])
    missing = {line: code for line, code in expected.items() if code not in found.get(line, set())}
    unexpected = {line: codes for line, codes in found.items() if line not in expected}
    assert missing == {}, f"mypy accepted lines it must reject: {missing}"
    assert unexpected == {}, f"mypy rejected unmarked lines: {unexpected}"
