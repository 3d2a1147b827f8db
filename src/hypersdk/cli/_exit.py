"""Exit codes: one per error family, so scripts can branch without parsing text.

====  =========================================================
code  meaning
====  =========================================================
0     success
1     a check failed (``plugins validate`` found a problem)
2     usage error: unknown command, missing or malformed option
3     ConfigurationError: bad config file, option or environment
4     AuthenticationError: the provider rejected the credentials
5     VMNotFoundError
6     RateLimitError: the provider throttled us; retry later
7     ProviderUnavailableError: API down, timeout, network
8     ProviderAPIError: the API answered something unusable
9     ExportError (incl. UnsupportedFormatError, ChecksumMismatchError)
10    PluginError: a plugin failed to load or is invalid
11    NotConnectedError (a provider bug: it was used unconnected)
12    any other HyperSDKError
13    a fleet plan is not complete: some VMs failed or are still pending
70    an unexpected internal error (a bug: run with --debug)
130   interrupted by Ctrl-C (the operation was cancelled cleanly)
====  =========================================================
"""

from __future__ import annotations

from typing import Final

from hypersdk.errors import (
    AuthenticationError,
    ConfigurationError,
    ExportError,
    HyperSDKError,
    NotConnectedError,
    PluginError,
    ProviderAPIError,
    ProviderUnavailableError,
    RateLimitError,
    VMNotFoundError,
)

OK: Final = 0
CHECK_FAILED: Final = 1
USAGE: Final = 2
PLAN_INCOMPLETE: Final = 13
INTERNAL: Final = 70
INTERRUPTED: Final = 130

# Most specific first: the first matching family decides the code.
FAMILIES: Final[tuple[tuple[type[HyperSDKError], int], ...]] = (
    (ConfigurationError, 3),
    (AuthenticationError, 4),
    (VMNotFoundError, 5),
    (RateLimitError, 6),
    (ProviderUnavailableError, 7),
    (ProviderAPIError, 8),
    (ExportError, 9),
    (PluginError, 10),
    (NotConnectedError, 11),
    (HyperSDKError, 12),
)


def exit_code_for(error: BaseException) -> int:
    """Return the documented exit code for ``error``."""
    for family, code in FAMILIES:
        if isinstance(error, family):
            return code
    return INTERNAL
