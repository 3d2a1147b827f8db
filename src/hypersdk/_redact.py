"""Taking credentials out of text before anyone sees it: URLs, headers, log records.

Query strings are secrets (pre-signed URLs carry ``X-Amz-Signature``, SAS tokens and
``access_token`` there), so is a URL's userinfo (``https://admin:pw@host``), and so is
the value of any header or ``key=value`` pair whose name looks like a credential
(``Authorization``, ``Cookie``, ``Set-Cookie``, ``X-Subject-Token``, ``X-Api-Key``...).
:func:`redact_text` replaces all of them with ``**********``; :class:`RedactingFilter`
applies it to every log record a handler emits, arguments and tracebacks included.
:func:`install_log_redaction` puts the same filter on the loggers of the HTTP libraries a
download drives, whose records carry full URLs (httpx, at ``INFO``) and response headers
(httpcore, at ``DEBUG``). This is the one redactor of the SDK: the CLI, the models' reprs
and the export toolkit all use it.

Only ``re``, ``logging``, ``threading`` and ``collections.abc`` are imported: the models
use :func:`mask_url` for their repr.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Final

from hypersdk._validation import looks_secret

__all__ = [
    "MASK",
    "mask_url",
    "redact_urls",
    "redact_text",
    "RedactingFilter",
    "install_log_redaction",
]

MASK: Final = "**********"

# A URL with a scheme, up to whitespace, a quote or a bracket that ends it in prose.
_URL: Final = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>\\`]+")
# An absolute path with a query, without a scheme ("GET /v1/file?sig=...").
_PATH_QUERY: Final = re.compile(r"(?<![\w/:.])(/[^\s?'\"<>#]*)[?#][^\s'\"<>]+")
# ("name", "value") and (b'name', b'value'): header tuples as httpcore logs them.
_HEADER_TUPLE: Final = re.compile(
    r"\(\s*b?(['\"])(?P<name>[^'\"]+)\1\s*,\s*b?(['\"])(?P<value>(?:\\.|(?!\3).)*)\3\s*\)"
)
# 'name': 'value' in a dict repr.
_QUOTED_PAIR: Final = re.compile(
    r"(['\"])(?P<name>[\w.-]+)\1\s*:\s*b?(['\"])(?P<value>(?:\\.|(?!\3).)*)\3"
)
# name=value, name='value' (query parameters, keyword reprs, cookies).
_ASSIGNMENT: Final = re.compile(
    r"(?P<name>\b[A-Za-z_][\w.-]*)=(?P<value>'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|[^\s&,;)]+)"
)
# Name: value, a header line; the value runs to the end of the line.
_HEADER_LINE: Final = re.compile(r"(?P<name>\b[A-Za-z][\w-]*)[ \t]*:[ \t]+(?P<value>[^\r\n]+)")
# name%3A%20value and name%3Dvalue: a header or pair inside a URL-encoded body.
_ENCODED_PAIR: Final = re.compile(
    r"(?P<name>(?:(?<=%26)|(?<=%3[Bb])|\b)[A-Za-z_][\w.-]*)(?:%3[Aa](?:%20|\+)*|%3[Dd])(?P<value>[^\s&,;)'\"%]+(?:%(?!26|3[Bb]|2[Cc])[0-9A-Fa-f]{2}[^\s&,;)'\"%]*)*)"
)
# "name": 5, "name": true: a secret-named JSON scalar that is not a string.
_SCALAR_PAIR: Final = re.compile(
    r"(['\"])(?P<name>[\w.-]+)\1\s*:\s*(?P<value>-?\d[\w.+-]*|true|false)"
)
# "name": {: a secret-named JSON object (``{"token": {"id": "..."}}``, Keystone v2).
_OBJECT_START: Final = re.compile(r"(['\"])(?P<name>[\w.-]+)\1\s*:\s*\{")
_STRING_VALUE: Final = re.compile(r"(:\s*)(['\"])(?:\\.|(?!\2).)*\2")
_SCHEME_TOKEN: Final = re.compile(r"(?i)\b(bearer|basic|digest|token)\s+[A-Za-z0-9._~+/=-]{8,}")


def mask_url(url: str) -> str:
    """``url`` with its userinfo, query and fragment replaced by the mask.

    >>> mask_url("https://admin:pw@host/path?X-Amz-Signature=abc")
    'https://**********@host/path?**********'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=-1)
    authority, tail = (rest, "") if cut < 0 else (rest[:cut], rest[cut:])
    if "@" in authority:
        authority = MASK + "@" + authority.rpartition("@")[2]
    for mark in ("?", "#"):
        if mark in tail:
            tail = tail[: tail.index(mark)] + mark + MASK
            break
    return f"{scheme}{sep}{authority}{tail}"


def _masked_group(match: re.Match[str], name_group: str = "name") -> str:
    if not looks_secret(match.group(name_group)):
        return match.group(0)
    start, end = match.span("value")
    offset = match.start(0)
    text = match.group(0)
    return text[: start - offset] + MASK + text[end - offset :]


def _masked_assignment(match: re.Match[str]) -> str:
    if not looks_secret(match.group("name")):
        return match.group(0)
    value = match.group("value")
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('name')}={quote}{MASK}{quote}"


def redact_urls(text: str) -> str:
    """``text`` with the userinfo and query of every URL (and ``/path?query``) masked.

    The light form of :func:`redact_text` for prose written to be read, such as an
    error message, where ``KEY=VALUE`` is more likely an example than a credential.
    """
    if "://" in text:
        text = _URL.sub(lambda match: mask_url(match.group(0)), text)
    if "?" in text or "#" in text:
        text = _PATH_QUERY.sub(lambda match: match.group(1) + "?" + MASK, text)
    return text


def _masked_objects(text: str) -> str:
    """Mask every string value inside a JSON object whose key looks like a credential."""
    pieces: list[str] = []
    done = 0
    for match in _OBJECT_START.finditer(text):
        if match.start() < done or not looks_secret(match.group("name")):
            continue
        end = _closing_brace(text, match.end() - 1)
        pieces.append(text[done : match.end()])
        pieces.append(
            _STRING_VALUE.sub(
                lambda m: f"{m.group(1)}{m.group(2)}{MASK}{m.group(2)}", text[match.end() : end]
            )
        )
        done = end
    return "".join(pieces) + text[done:] if pieces else text


def _closing_brace(text: str, start: int) -> int:
    """The index of the brace closing the one at ``start`` (the end of text if none)."""
    depth, quote, index = 0, "", start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return len(text)


def redact_text(text: str) -> str:
    """``text`` with every credential this module recognises replaced by the mask."""
    text = redact_urls(text)
    if "(" in text:
        text = _HEADER_TUPLE.sub(_masked_group, text)
    if ":" in text:
        if "{" in text:
            text = _masked_objects(text)
        text = _QUOTED_PAIR.sub(_masked_group, text)
        text = _SCALAR_PAIR.sub(_masked_group, text)
        text = _HEADER_LINE.sub(_masked_group, text)
    if "=" in text:
        text = _ASSIGNMENT.sub(_masked_assignment, text)
    if "%3" in text:
        text = _ENCODED_PAIR.sub(_masked_group, text)
    return _SCHEME_TOKEN.sub(lambda match: f"{match.group(1)} {MASK}", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts credentials from every record it sees.

    The record's message is formatted once (so ``%s`` arguments such as an
    ``httpx.URL`` are covered), redacted, and stored back with no arguments; an attached
    traceback or stack is formatted and redacted the same way. Install it on handlers:
    a filter on a logger only sees records logged on that very logger.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; never drop it."""
        if isinstance(record.args, Mapping):
            # "%(token)s" formats a bare value that no pattern can recognise afterwards.
            record.args = {
                key: MASK if looks_secret(str(key)) else value for key, value in record.args.items()
            }
        for name, value in list(vars(record).items()):
            # ``extra=`` fields: a formatter (a JSON one, say) may print any of them.
            if name in _RECORD_FIELDS:
                continue
            if looks_secret(name):
                setattr(record, name, MASK)
            elif isinstance(value, str):
                setattr(record, name, redact_text(value))
        try:
            message = record.getMessage()
        except Exception:  # a broken format: handleError would print the raw arguments
            message = f"{record.msg!s} (unformattable log arguments dropped)"
        record.msg = redact_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


# What every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_FIELDS: Final = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

# The loggers of the HTTP stacks a provider may hand us, by the module names they log as.
_LIBRARY_LOGGERS: Final = ("httpx", "httpcore", "urllib3", "requests")
_LIBRARY_FILTER: Final = RedactingFilter()
_install_lock = threading.Lock()


def install_log_redaction() -> None:
    """Put :class:`RedactingFilter` on every HTTP library logger that exists now.

    Idempotent; called by each download, when the client's modules (and so their
    loggers) are imported. A filter on a logger sees only the records created on that
    very logger, not its children's, so each module logger gets it.
    """
    with _install_lock:
        names = [
            name
            for name in list(logging.Logger.manager.loggerDict)
            if name.split(".", 1)[0] in _LIBRARY_LOGGERS
        ]
        for name in names:
            logger = logging.getLogger(name)
            if _LIBRARY_FILTER not in logger.filters:
                logger.addFilter(_LIBRARY_FILTER)
