"""Failure messages: the rule, expected vs actual, the HTTP exchange, the fix; no secret."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import httpx

    from hypersdk_testing._contract import ContractCheck

__all__ = ["ContractViolation", "SuiteError", "format_exchange", "redact", "violation_message"]

_REDACTED: Final = "<redacted>"
_SHOWN_EXCHANGES: Final = 12
_BODY_PREVIEW: Final = 160
_SMALL_BODY: Final = 80  # bodies this short are shown whatever the status


class ContractViolation(AssertionError):
    """A provider broke a contract rule; the message says which, how, and how to fix it.

    ``check_id`` is the contract ID (``"LIST-COMPLETE"``), so tools can group failures;
    ``since`` is the contract version whose rule was broken: for a plugin pinned to an
    older contract the violation is a warning.
    """

    def __init__(self, check_id: str, message: str, *, since: int = 1) -> None:
        super().__init__(message)
        self.check_id = check_id
        self.since = since


class SuiteError(Exception):
    """The conformance suite itself failed (a bug in hypersdk_testing, not in the plugin).

    Reported with status ``error`` and never as a contract failure: an input the suite
    generated or a step it took broke before the plugin was even asked.
    """

    def __init__(self, check_id: str, message: str) -> None:
        super().__init__(
            f"[{check_id}] hypersdk_testing failed while running this check; this is a bug "
            f"in the suite, not in your plugin (please report it): {message}"
        )
        self.check_id = check_id


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced by ``<redacted>``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


def _describe_response(response: httpx.Response | None) -> str:
    if response is None:
        return "no response (the transport raised)"
    try:
        body = response.content
    except Exception:  # a streamed body the provider has not read, or that broke
        return f"{response.status_code}, streamed body"
    text = f"{response.status_code}, {len(body)} bytes"
    small = len(body) <= _SMALL_BODY
    if small or response.status_code >= 400 or response.headers.get("retry-after"):
        preview = body[:_BODY_PREVIEW].decode("utf-8", "replace").replace("\n", " ")
        retry = response.headers.get("retry-after")
        text += f", Retry-After: {retry}" if retry else ""
        text += f": {preview}" if preview else ""
    return text


def format_exchange(
    calls: Sequence[tuple[httpx.Request, httpx.Response | None]],
    secrets: Iterable[str],
    *,
    limit: int = _SHOWN_EXCHANGES,
) -> str:
    """The last ``limit`` request/response pairs, one per line, with credentials redacted."""
    secret_list = [secret for secret in secrets if secret]
    if not calls:
        return "  (no HTTP request was made)"
    shown = calls[-limit:]
    lines: list[str] = []
    if len(calls) > len(shown):
        lines.append(f"  ... {len(calls) - len(shown)} earlier requests not shown")
    repeats = 0
    for request, response in shown:
        auth = request.headers.get("authorization")
        auth_note = ""
        if auth is not None:
            scheme = auth.split(" ", 1)[0] if " " in auth else ""
            auth_note = f" [Authorization: {scheme + ' ' if scheme else ''}{_REDACTED}]"
        via = " [socket]" if request.extensions.get("hypersdk_testing.socket") else ""
        line = f"  {request.method} {request.url}{auth_note}{via} -> {_describe_response(response)}"
        line = redact(line, secret_list)
        if lines and line == lines[-1]:
            repeats += 1
            continue
        if repeats:
            lines.append(f"  (the same again, {repeats} more time{'s' if repeats > 1 else ''})")
            repeats = 0
        lines.append(line)
    if repeats:
        lines.append(f"  (the same again, {repeats} more time{'s' if repeats > 1 else ''})")
    return "\n".join(lines)


def violation_message(
    check: ContractCheck,
    *,
    expected: str,
    actual: str,
    exchange: str | None,
    context: str | None = None,
    secrets: Iterable[str] = (),
) -> str:
    """The text of a :class:`ContractViolation` (secrets are redacted from all of it)."""
    parts = [
        f"[{check.id}] {check.rule}",
        f"expected: {expected}",
        f"actual:   {actual}",
    ]
    if context:
        parts.append(f"context:  {context}")
    if exchange is not None:
        parts.append("HTTP exchange that led here (oldest first):")
        parts.append(exchange)
    parts.append(f"fix: {check.fix}")
    parts.append(f"docs: docs/conformance.md#{check.id.lower()}")
    return redact("\n".join(parts), list(secrets))
