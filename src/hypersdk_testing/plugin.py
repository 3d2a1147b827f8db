"""The pytest plugin behind ``hypersdk_testing`` (loaded through the ``pytest11`` entry point).

It stays import-light: no Hypothesis, respx or httpx until a conformance check runs, no
autouse fixture, no I/O at collection. It adds:

``--hypersdk-list-contract``
    print every contract check (ID, area, rule) and exit.
``--hypersdk-check=ID``
    run only this check (repeatable), e.g. ``--hypersdk-check=LIST-FILTER``.
``--hypersdk-report=PATH``
    write the conformance report as ``PATH.json`` and ``PATH.md`` (a ``.json`` or
    ``.md`` suffix on PATH is replaced).
``--hypersdk-max-examples=N``
    generated examples per property check and world size.

and the markers ``hypersdk`` (every conformance check) and ``hypersdk_contract(ID)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from hypersdk_testing._contract import CONTRACT, CONTRACT_VERSION, ContractCheck, check_by_id
from hypersdk_testing._decide import Action, decide

if TYPE_CHECKING:
    from collections.abc import Generator

    from hypersdk_testing._report import CheckOutcome, PluginReport, Report, Status

pytest.register_assert_rewrite("hypersdk_testing._checks", "hypersdk_testing._harness")

_DECISION: Final = pytest.StashKey[tuple[Action, str]]()
_WARNING: Final = pytest.StashKey[str]()
_SUITE_ERROR: Final = pytest.StashKey[bool]()
_REPORT: Final = pytest.StashKey["Report"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``--hypersdk-*`` options."""
    group = parser.getgroup("hypersdk", "hypersdk provider conformance")
    group.addoption(
        "--hypersdk-list-contract",
        action="store_true",
        default=False,
        help="print the provider contract (check IDs and rules) and exit",
    )
    group.addoption(
        "--hypersdk-check",
        action="append",
        default=[],
        metavar="ID",
        help="run only this contract check (repeatable), e.g. LIST-FILTER",
    )
    group.addoption(
        "--hypersdk-report",
        default=None,
        metavar="PATH",
        help="write the conformance report to PATH.json and PATH.md",
    )
    group.addoption(
        "--hypersdk-max-examples",
        type=int,
        default=None,
        metavar="N",
        help="generated examples per property check and world size (default 2)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers, and start a report when one was asked for."""
    config.addinivalue_line(
        "markers", "hypersdk: a hypersdk provider conformance check (select with -m hypersdk)"
    )
    config.addinivalue_line(
        "markers", "hypersdk_contract(check_id): the contract check this test runs"
    )
    max_examples = config.getoption("--hypersdk-max-examples", None)
    if max_examples is not None:
        if max_examples < 1:
            raise pytest.UsageError("--hypersdk-max-examples must be at least 1")
        from hypersdk_testing._suite import set_cli_max_examples

        set_cli_max_examples(max_examples)
    for check_id in config.getoption("--hypersdk-check", None) or []:
        try:
            check_by_id(check_id)
        except KeyError as exc:
            raise pytest.UsageError(f"--hypersdk-check: {exc.args[0]}") from None
    if config.getoption("--hypersdk-report", None):
        from hypersdk_testing._report import Report

        config.stash[_REPORT] = Report()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Undo process-wide settings (pytester runs pytest many times in one process)."""
    if config.getoption("--hypersdk-max-examples", None) is not None:
        from hypersdk_testing._suite import set_cli_max_examples

        set_cli_max_examples(None)


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--hypersdk-list-contract``: print the contract and stop."""
    if not config.getoption("--hypersdk-list-contract"):
        return None
    print(f"hypersdk provider contract, version {CONTRACT_VERSION}")
    area = ""
    for check in CONTRACT:
        if check.area != area:
            area = check.area
            print(f"\n[{area}]")
        needs = f" (needs {check.requires})" if check.requires else ""
        changed = [check.since] if check.since > 1 else []
        changed += list(check.tightened_in)
        since = f" [contract {', '.join(map(str, changed))}]" if changed else ""
        print(f"  {check.id:<26} {check.rule}{needs}{since}")
    print("\nDetails and fixes: docs/conformance.md")
    return 0


def _check_of(item: pytest.Item) -> ContractCheck | None:
    marker = item.get_closest_marker("hypersdk_contract")
    if marker is None or not marker.args:
        return None
    return check_by_id(str(marker.args[0]))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark conformance checks ``hypersdk`` and apply ``--hypersdk-check``."""
    wanted = set(config.getoption("--hypersdk-check", None) or [])
    kept, dropped = [], []
    for item in items:
        check = _check_of(item)
        if check is not None:
            item.add_marker(pytest.mark.hypersdk)
            if wanted and check.id not in wanted:
                dropped.append(item)
                continue
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def decision_for(item: pytest.Item, check: ContractCheck) -> tuple[Action, str]:
    """Apply :func:`decide` to the conformance class ``item`` belongs to."""
    from hypersdk import PluginMetadata

    cls = getattr(item, "cls", None)
    info = getattr(getattr(cls, "plugin", None), "PLUGIN_INFO", None)
    return decide(
        check,
        capabilities=info.capabilities if isinstance(info, PluginMetadata) else None,
        exclusions=getattr(cls, "exclusions", {}) or {},
        pinned_version=getattr(cls, "contract_version", None),
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip, exclude or error a check before it runs, as :func:`decide` says."""
    check = _check_of(item)
    if check is None:
        return
    action, reason = decision_for(item, check)
    item.stash[_DECISION] = (action, reason)
    item.user_properties.append(("hypersdk_contract", check.id))
    if action in (Action.SKIP, Action.EXCLUDE):
        pytest.skip(f"{check.id}: {reason}")
    if action is Action.ERROR:
        pytest.fail(f"{check.id}: {reason}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Turn a violation newer than the plugin's pin into a warning.

    Newer either as a whole check (``ContractCheck.since``, decided before the run) or as
    a rule a later contract tightened (``ContractViolation.since``).
    """
    from hypersdk_testing._failure import ContractViolation

    action = item.stash.get(_DECISION, (Action.RUN, ""))[0]
    pinned = getattr(getattr(item, "cls", None), "contract_version", None)
    try:
        return (yield)
    except ContractViolation as exc:
        newer = type(pinned) is int and exc.since > pinned
        if action is not Action.WARN and not newer:
            raise
        item.stash[_WARNING] = str(exc)
        return None
    except AssertionError as exc:
        if action is not Action.WARN:
            raise
        item.stash[_WARNING] = str(exc)
        return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Record each check's outcome for the report and the warnings summary."""
    from hypersdk_testing._failure import SuiteError

    report = yield
    check = _check_of(item)
    if check is None:
        return report
    if call.excinfo is not None and call.excinfo.errisinstance(SuiteError):
        item.stash[_SUITE_ERROR] = True  # the suite's own failure, never the plugin's
    if report.when == "call" and _WARNING in item.stash:
        report.sections.append(("hypersdk contract warning", item.stash[_WARNING]))
    store = item.config.stash.get(_REPORT, None)
    if store is not None and (report.when == "call" or not report.passed):
        _plugin_report(store, item).add(_outcome(item, check, report))
    _redact(report)
    return report


def _redact(report: pytest.TestReport) -> None:
    """No token in pytest's own failure text: its captured logs and output, the traceback.

    A leaking plugin logs its token, and pytest prints captured log records on failure.
    """
    from hypersdk_testing._report import redact_report_text

    report.sections = [(title, redact_report_text(text)) for title, text in report.sections]
    if report.longrepr is not None and not isinstance(report.longrepr, tuple):
        shown = str(report.longrepr)
        redacted = redact_report_text(shown)
        if redacted != shown:
            report.longrepr = redacted


def _plugin_report(store: Report, item: pytest.Item) -> PluginReport:
    from hypersdk import PluginMetadata
    from hypersdk_testing._report import PluginReport

    cls = getattr(item, "cls", None)
    key = item.nodeid.rsplit("::", 1)[0]
    if key not in store.plugins:
        module = getattr(cls, "plugin", None)
        info = getattr(module, "PLUGIN_INFO", None)
        if not isinstance(info, PluginMetadata):  # IDENTITY-LOADS reports why
            info = PluginMetadata(
                name=getattr(module, "__name__", "?"), version="0", provider_type="?"
            )
        store.plugins[key] = PluginReport(
            test_class=key,
            plugin=info.name,
            provider_type=str(info.provider_type),
            plugin_version=info.version,
            pinned_contract_version=getattr(cls, "contract_version", None),
        )
    return store.plugins[key]


def _outcome(item: pytest.Item, check: ContractCheck, report: pytest.TestReport) -> CheckOutcome:
    from hypersdk_testing._report import CheckOutcome

    action, reason = item.stash.get(_DECISION, (Action.RUN, ""))
    status: Status
    if report.skipped:
        status = "excluded" if action is Action.EXCLUDE else "skipped"
        longrepr = report.longrepr
        text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        text = text.removeprefix("Skipped: ")
    elif report.failed:
        suite_error = item.stash.get(_SUITE_ERROR, False)
        errored = action is Action.ERROR or report.when != "call" or suite_error
        status = "error" if errored else "failed"
        text = reason if action is Action.ERROR else _failure_text(report)
    elif _WARNING in item.stash:
        status, text = "warning", item.stash[_WARNING]
    else:
        status, text = "passed", ""
    return CheckOutcome(
        id=check.id, area=check.area, status=status, reason=text, duration=report.duration
    )


def _failure_text(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    crash = getattr(getattr(longrepr, "reprcrash", None), "message", None)
    text = str(crash) if crash else str(longrepr)
    # "AssertionError: [ID] ..." / "hypersdk_testing._failure.ContractViolation: ..."
    head, sep, rest = text.partition(": ")
    return (
        rest
        if sep and head.rsplit(".", 1)[-1] in ("ContractViolation", "AssertionError", "SuiteError")
        else text
    )


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Show contract warnings, and write the report files."""
    store = config.stash.get(_REPORT, None)
    warned = [
        report
        for report in terminalreporter.stats.get("passed", [])
        if any(name == "hypersdk contract warning" for name, _ in report.sections)
    ]
    if warned:
        terminalreporter.section("hypersdk contract warnings", yellow=True)
        for report in warned:
            text = next(
                content for name, content in report.sections if name == "hypersdk contract warning"
            )
            terminalreporter.line(f"{report.nodeid}: {text.splitlines()[0]}")
        terminalreporter.line(
            "These checks are newer than the plugin's contract_version pin; "
            "raise the pin once they pass."
        )
    if store is not None:
        path = Path(config.getoption("--hypersdk-report"))
        stem = path.with_suffix("") if path.suffix in (".json", ".md") else path
        stem.parent.mkdir(parents=True, exist_ok=True)
        json_path, md_path = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".md")
        json_path.write_text(store.to_json(), encoding="utf-8")
        md_path.write_text(store.to_markdown(), encoding="utf-8")
        terminalreporter.line(f"hypersdk conformance report: {json_path} and {md_path}")
