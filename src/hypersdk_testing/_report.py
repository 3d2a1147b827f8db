"""The conformance report: contract ID x outcome, as JSON and as Markdown.

No credential reaches a report file: every reason is redacted when it is recorded and
the finished documents once more, against every token the suite can know of — the
``hsdk-test-<hex>`` tokens :class:`~hypersdk_testing.FakeCloud` generates, and any value
given to :func:`remember_secret`. A check's own redaction is not relied on: a check run
alone (``--hypersdk-check=SECRET-REPR``) may not have seen the token it reports.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from typing import Final, Literal

import attrs

from hypersdk_testing._contract import CONTRACT, CONTRACT_VERSION

__all__ = [
    "CheckOutcome",
    "PluginReport",
    "Report",
    "Status",
    "redact_report_text",
    "remember_secret",
]

Status = Literal["passed", "failed", "warning", "skipped", "excluded", "error"]

_SYMBOL: Final[dict[str, str]] = {
    "passed": "pass",
    "failed": "FAIL",
    "warning": "warn",
    "skipped": "skip",
    "excluded": "excluded",
    "error": "ERROR",
}
_ORDER: Final = {check.id: index for index, check in enumerate(CONTRACT)}
_REASON_LIMIT: Final = 8000
_REDACTED: Final = "<redacted>"
# The form of every token FakeCloud makes ("hsdk-test-" + secrets.token_hex(12)).
_GENERATED_TOKEN: Final = re.compile(r"hsdk-test-[0-9a-f]{8,}")
_known_lock = threading.Lock()
_KNOWN_SECRETS: set[str] = set()


def remember_secret(value: str) -> None:
    """Have every report redact ``value`` (a token handed to a provider under test)."""
    checked: object = value  # callers may pass anything at run time
    if isinstance(checked, str) and checked:
        with _known_lock:
            _KNOWN_SECRETS.add(checked)


def redact_report_text(text: str) -> str:
    """``text`` with every known token replaced by ``<redacted>``."""
    with _known_lock:
        known = sorted(_KNOWN_SECRETS, key=len, reverse=True)  # longest first: no partial
    for secret in known:
        text = text.replace(secret, _REDACTED)
        escaped = json.dumps(secret)[1:-1]  # as it appears inside a JSON string
        if escaped != secret:
            text = text.replace(escaped, _REDACTED)
    return _GENERATED_TOKEN.sub(_REDACTED, text)


def _headline(outcome: CheckOutcome) -> str:
    """One line for a table: a violation's ``actual:`` line, else the reason's first line."""
    lines = outcome.reason.splitlines()
    for line in lines:
        if outcome.status in ("failed", "warning") and line.startswith("actual:"):
            return line.removeprefix("actual:").strip()
    return lines[0] if lines else ""


@attrs.define(kw_only=True)
class CheckOutcome:
    """What happened to one check of one plugin."""

    id: str
    area: str
    status: Status
    reason: str = ""
    duration: float = 0.0


@attrs.define(kw_only=True)
class PluginReport:
    """Every check's outcome for one conformance class."""

    test_class: str
    plugin: str
    provider_type: str
    plugin_version: str
    pinned_contract_version: int | None
    checks: dict[str, CheckOutcome] = attrs.Factory(dict)

    @property
    def contract_version(self) -> int:
        """The contract that ran: the plugin's pin, else the newest this hypersdk knows."""
        pinned = self.pinned_contract_version
        return pinned if type(pinned) is int else CONTRACT_VERSION

    def add(self, outcome: CheckOutcome) -> None:
        """Record ``outcome``; a later phase (call, teardown) overrides an earlier one."""
        outcome.reason = redact_report_text(outcome.reason)
        previous = self.checks.get(outcome.id)
        if previous is not None and previous.status in ("failed", "error"):
            return  # a teardown pass must not hide a failure
        if previous is not None:
            outcome.duration += previous.duration
        self.checks[outcome.id] = outcome

    def summary(self) -> dict[str, int]:
        """How many checks ended in each status."""
        counts = dict.fromkeys(_SYMBOL, 0)
        for outcome in self.checks.values():
            counts[outcome.status] += 1
        return counts

    def ordered(self) -> list[CheckOutcome]:
        """The outcomes in contract order."""
        return sorted(self.checks.values(), key=lambda o: _ORDER.get(o.id, len(_ORDER)))


@attrs.define
class Report:
    """The whole run: one :class:`PluginReport` per conformance class."""

    plugins: dict[str, PluginReport] = attrs.Factory(dict)

    def to_json(self) -> str:
        """The report as JSON (stable keys, contract order)."""
        from hypersdk import __version__

        document = {
            "hypersdk_version": __version__,
            "contract_version": CONTRACT_VERSION,
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "plugins": [
                {
                    "test_class": plugin.test_class,
                    "plugin": plugin.plugin,
                    "provider_type": plugin.provider_type,
                    "plugin_version": plugin.plugin_version,
                    "pinned_contract_version": plugin.pinned_contract_version,
                    "contract_version": plugin.contract_version,
                    "summary": plugin.summary(),
                    "checks": [
                        {
                            "id": outcome.id,
                            "area": outcome.area,
                            "status": outcome.status,
                            "reason": redact_report_text(outcome.reason)[:_REASON_LIMIT],
                            "duration": round(outcome.duration, 3),
                        }
                        for outcome in plugin.ordered()
                    ],
                }
                for plugin in self.plugins.values()
            ],
        }
        return redact_report_text(json.dumps(document, indent=2, ensure_ascii=False)) + "\n"

    def to_markdown(self) -> str:
        """The report as Markdown tables, one per plugin, for a README or a registry."""
        lines = [f"# hypersdk conformance report (contract {CONTRACT_VERSION})", ""]
        for plugin in self.plugins.values():
            summary = ", ".join(
                f"{count} {status}" for status, count in plugin.summary().items() if count
            )
            lines += [
                f"## {plugin.plugin} {plugin.plugin_version} (`{plugin.provider_type}`)",
                "",
                f"Tested by `{plugin.test_class}` against contract {plugin.contract_version}"
                + (
                    " (pinned; newer rules are warnings)"
                    if plugin.pinned_contract_version is not None
                    else ""
                )
                + f": {summary or 'no checks ran'}.",
                "",
                "| Check | Area | Result | Reason |",
                "|---|---|---|---|",
            ]
            for outcome in plugin.ordered():
                reason = redact_report_text(_headline(outcome))
                reason = reason.replace("|", "\\|")[:200]
                lines.append(
                    f"| `{outcome.id}` | {outcome.area} | {_SYMBOL[outcome.status]} | {reason} |"
                )
            lines.append("")
        return redact_report_text("\n".join(lines))
