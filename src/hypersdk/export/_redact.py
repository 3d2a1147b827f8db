"""Keep query strings and credential headers out of the HTTP libraries' log records.

The toolkit's own messages name a URL by scheme, host and path only. The HTTP clients
it drives are less careful: httpx logs every request's full URL at ``INFO`` (a
pre-signed URL's signature is in its query string) and httpcore logs response headers
(``Set-Cookie``, ``X-Subject-Token``) at ``DEBUG``. A filter on those loggers rewrites
each record's text before any handler sees it. Filters on a logger apply only to records
created on that very logger, not to its children, so each module logger gets one.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Final

__all__ = ["install_log_redaction", "redact"]

# The loggers of the HTTP stacks a provider may hand us, by the module names they log as.
_LOGGER_PREFIXES: Final = ("httpx", "httpcore", "urllib3", "requests")

# scheme://[userinfo@]host/path?query#fragment: keep scheme, host and path.
_URL: Final = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?:[^/\s@'\"<>]*@)?(?P<rest>[^\s?#'\"<>]*)"
    r"(?:\?[^\s#'\"<>]*)?(?:#[^\s'\"<>]*)?"
)
# A request line or path with a query but no scheme (urllib3: '"GET /p?X-Amz-... HTTP/1.1"').
_PATH_QUERY: Final = re.compile(r"(?P<path>(?:^|(?<=[\s\"']))/[^\s?#'\"<>]*)\?[^\s#'\"<>]*")
_SENSITIVE: Final = (
    r"authorization|proxy-authorization|cookie|set-cookie|x-subject-token|x-auth-token"
    r"|x-amz-security-token|x-api-key|api-key|x-goog-[a-z-]*token|[a-z-]*(?:token|secret|"
    r"password|signature|session)[a-z-]*"
)
# httpcore prints headers as a list of byte-string pairs: (b'Set-Cookie', b'sid=...').
_HEADER_PAIR: Final = re.compile(
    rf"(\(b?['\"](?:{_SENSITIVE})['\"],\s*)b?(['\"]).*?\2(\))", re.IGNORECASE
)
# And sometimes as "Name: value" text.
_HEADER_LINE: Final = re.compile(rf"(?im)^(\s*(?:{_SENSITIVE})\s*:\s*).+$")
_HIDDEN: Final = "[redacted]"


def redact(text: str) -> str:
    """``text`` with URL queries, userinfo and credential header values removed."""
    text = _URL.sub(lambda m: m["scheme"] + m["rest"], text)
    text = _PATH_QUERY.sub(lambda m: m["path"], text)
    text = _HEADER_PAIR.sub(rf"\1'{_HIDDEN}'\3", text)
    return _HEADER_LINE.sub(rf"\1{_HIDDEN}", text)


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging module's to report
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER: Final = _RedactingFilter()
_lock = threading.Lock()


def install_log_redaction() -> None:
    """Attach the filter to every HTTP library logger that exists now (idempotent).

    Called by each download, when the client's modules (and so their loggers) are
    already imported.
    """
    with _lock:
        names = [
            name
            for name in list(logging.Logger.manager.loggerDict)
            if name.split(".", 1)[0] in _LOGGER_PREFIXES
        ]
        for name in names:
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)
