"""The provider contract as data: one :class:`ContractCheck` per rule, with a stable ID.

This module is plain data on purpose: the pytest plugin imports it to list the contract and
to decide what runs, without importing Hypothesis, respx or httpx. ``docs/conformance.md``
is the long form of this table; a test keeps the two in step.
"""

from __future__ import annotations

from typing import Final, Literal

import attrs

__all__ = [
    "CONTRACT",
    "CONTRACT_VERSION",
    "COMPARED_FIELDS",
    "AREAS",
    "Area",
    "Capability",
    "ContractCheck",
    "check_by_id",
]

CONTRACT_VERSION: Final = 2
"""The newest contract version this hypersdk checks.

A check records the version that introduced it (:attr:`ContractCheck.since`) and those
that made it stricter (:attr:`ContractCheck.tightened_in`). A plugin that pins
``contract_version`` sees what is newer than its pin as warnings until it opts in.

Contract 2 serves ``mock_api`` on 127.0.0.1 for plugins whose HTTP is not httpx, blocks
the network outside loopback (HTTP-MOCKED), and gives HTTP-TIMEOUTS and
LIFECYCLE-DISCONNECT a form proven over the socket.
"""

COMPARED_FIELDS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        "provider", "id", "name", "state", "location", "power_state", "guest_os",
        "memory_mb", "num_cpus", "storage_gb", "ip_addresses", "tags", "metadata",
        "created_at", "updated_at",
    ),
}  # fmt: skip
"""The VMInfo fields compared by default, per contract version.

Written out rather than read from ``attrs.fields(VMInfo)``: a field added to the model
joins the checks only when a contract version names it, never silently.
"""
COMPARED_FIELDS[2] = COMPARED_FIELDS[1]

Area = Literal["suite", "identity", "lifecycle", "discovery", "faults", "export", "hygiene"]
AREAS: Final[tuple[Area, ...]] = (
    "suite",
    "identity",
    "lifecycle",
    "discovery",
    "faults",
    "export",
    "hygiene",
)

Capability = Literal["export", "supports_compression", "supports_streaming"]
"""What a check needs the plugin to claim in ``PLUGIN_INFO.capabilities``.

``export`` means a non-empty ``supported_formats``; the others are the boolean fields of
:class:`~hypersdk.ExportCapabilities` of the same name.
"""


@attrs.frozen(kw_only=True)
class ContractCheck:
    """One rule of the provider contract.

    ``rule`` is the one sentence a failure quotes; ``fix`` says what usually repairs it;
    ``requires`` names the capability without which the check is skipped; ``since`` is the
    contract version that introduced it; ``tightened_in`` the later versions that made it
    stricter (a plugin pinned below one sees what it added as warnings).
    """

    id: str
    area: Area
    rule: str
    fix: str
    requires: Capability | None = None
    since: int = 1
    tightened_in: tuple[int, ...] = ()

    @property
    def test_name(self) -> str:
        """The name of the test method that runs this check (``test_list_complete``)."""
        return "test_" + self.id.lower().replace("-", "_")


def _check(
    id: str,
    area: Area,
    rule: str,
    fix: str,
    *,
    requires: Capability | None = None,
    since: int = 1,
    tightened_in: tuple[int, ...] = (),
) -> ContractCheck:
    return ContractCheck(
        id=id,
        area=area,
        rule=rule,
        fix=fix,
        requires=requires,
        since=since,
        tightened_in=tightened_in,
    )


CONTRACT: Final[tuple[ContractCheck, ...]] = (
    # suite ------------------------------------------------------------------------------
    _check(
        "SUITE-CONFIG",
        "suite",
        "The conformance class is well formed: `plugin`, `configure` and `mock_api` are "
        "defined, every exclusion names a known check and gives a reason, and "
        "`contract_version` is a version this hypersdk knows.",
        "Fix the class attributes the message names (see docs/conformance.md, 'Knobs').",
    ),
    # identity ---------------------------------------------------------------------------
    _check(
        "IDENTITY-LOADS",
        "identity",
        "The plugin module passes the plugin loader's validation: PLUGIN_INFO is a valid "
        "PluginMetadata, new_provider(config, logger) builds a Provider or BlockingProvider, "
        "and the SDK and Python version requirements are satisfied.",
        "Export PLUGIN_INFO = PluginMetadata(...) and a new_provider(config, logger) "
        "function from the plugin module, with a min_sdk_version this hypersdk satisfies.",
    ),
    _check(
        "IDENTITY-NAME",
        "identity",
        "Provider.name is a non-empty string.",
        "Return a human-readable name such as 'DigitalOcean' from the name property.",
    ),
    _check(
        "IDENTITY-TYPE",
        "identity",
        "Provider.type equals PLUGIN_INFO.provider_type.",
        "Return PLUGIN_INFO.provider_type from the type property (one source of truth).",
    ),
    _check(
        "IDENTITY-CAPABILITIES",
        "identity",
        "get_export_capabilities() equals PLUGIN_INFO.capabilities, before connect and "
        "without any request.",
        "Return PLUGIN_INFO.capabilities from get_export_capabilities().",
    ),
    # lifecycle --------------------------------------------------------------------------
    _check(
        "LIFECYCLE-CONNECT",
        "lifecycle",
        "connect() with a good config succeeds and validate_credentials() then passes.",
        "Make connect() build the HTTP client from the config and check the token once.",
    ),
    _check(
        "LIFECYCLE-MISSING-CONFIG",
        "lifecycle",
        "A config missing a required setting raises ConfigurationError naming the setting, "
        "from new_provider() or connect(), before any request.",
        "Validate the config at the top of connect() and raise "
        "ConfigurationError('<field>: ...') before building the client.",
    ),
    _check(
        "LIFECYCLE-BAD-TOKEN",
        "lifecycle",
        "A rejected credential raises AuthenticationError from connect() or "
        "validate_credentials().",
        "Map HTTP 401/403 to AuthenticationError (hypersdk.raise_for_response does it).",
    ),
    _check(
        "LIFECYCLE-NOT-CONNECTED",
        "lifecycle",
        "Every operation called before connect() or after disconnect() raises "
        "NotConnectedError without making a request.",
        "Keep the client in an attribute that is None when disconnected and raise "
        "NotConnectedError from one guard every operation calls first.",
    ),
    _check(
        "LIFECYCLE-DISCONNECT",
        "lifecycle",
        "disconnect() is idempotent, never raises, and closes every HTTP client (and every "
        "connection) the provider opened.",
        "await client.aclose() (or client.close(), requests.Session.close()) in disconnect() "
        "and set the client to None; return early when it already is.",
        tightened_in=(2,),
    ),
    # discovery --------------------------------------------------------------------------
    _check(
        "LIST-COMPLETE",
        "discovery",
        "list_vms() returns exactly the world's VMs, in the API's order, across every page, "
        "for every world size.",
        "Follow the API's pagination to the last page, and map every field of the API's VM "
        "object onto VMInfo (timezone-aware datetimes included).",
    ),
    _check(
        "LIST-STABLE",
        "discovery",
        "Two list_vms() calls on an unchanged world return the same result.",
        "Do not keep pagination state between calls; start every listing from page one.",
    ),
    _check(
        "LIST-PROVIDER-TYPE",
        "discovery",
        "Every VMInfo.provider equals Provider.type.",
        "Set VMInfo(provider=self.type, ...) when mapping API objects.",
    ),
    _check(
        "LIST-FILTER",
        "discovery",
        "list_vms(filter) equals [vm for vm in list_vms() if filter.matches(vm)] for "
        "generated filters.",
        "Apply VMFilter.matches to every VM (server-side filters may narrow the request, "
        "but the result must equal the reference semantics).",
        tightened_in=(2,),
    ),
    _check(
        "GET-AGREES",
        "discovery",
        "get_vm(id) equals the VM list_vms() returns for that id, for every id.",
        "Map the single-VM endpoint with the same function as the list endpoint.",
    ),
    _check(
        "GET-NOT-FOUND",
        "discovery",
        "get_vm() of an unknown id raises VMNotFoundError (never returns None), also for "
        "prefixes, suffixes and case variants of existing ids; export_vm() of an unknown "
        "id raises it too and writes nothing.",
        "Map HTTP 404 to VMNotFoundError (raise_for_response(..., resource='vm')); look "
        "VMs up by their exact id, and look the VM up before writing anything.",
        tightened_in=(2,),
    ),
    _check(
        "SEARCH-SEMANTICS",
        "discovery",
        "search_vms(query) returns the VMs hypersdk.search_matches accepts, in list order.",
        "Use the default Provider.search_vms, or filter with hypersdk.search_matches.",
        tightened_in=(2,),
    ),
    # faults -----------------------------------------------------------------------------
    _check(
        "FAULT-RATE-LIMIT",
        "faults",
        "After a 429 with Retry-After the provider waits at least that long and then "
        "succeeds, or raises RateLimitError carrying retry_after.",
        "On 429, sleep parse_retry_after(response.headers['retry-after']) with anyio.sleep "
        "before retrying, or raise RateLimitError(retry_after=...).",
    ),
    _check(
        "FAULT-RATE-LIMIT-BUDGET",
        "faults",
        "Under persistent 429s the provider gives up within the retry budget with "
        "RateLimitError carrying retry_after, in seconds, as the Retry-After header says "
        "(delay-seconds or HTTP-date).",
        "Bound the number of retries (or their total wait) and raise the last "
        "RateLimitError when the budget runs out.",
        tightened_in=(2,),
    ),
    _check(
        "FAULT-TRANSIENT",
        "faults",
        "A single 500, 502 or 503 is retried and the call succeeds within the retry budget.",
        "Retry idempotent requests on 5xx a few times with a short backoff (anyio.sleep).",
    ),
    _check(
        "FAULT-UNAVAILABLE",
        "faults",
        "Persistent 5xx, timeouts and connection resets raise ProviderUnavailableError "
        "from every operation within the retry budget.",
        "Bound retries; map 5xx with raise_for_response and httpx transport errors with "
        "hypersdk.error_for_exception.",
        tightened_in=(2,),
    ),
    _check(
        "FAULT-BAD-BODY",
        "faults",
        "A malformed or wrongly shaped JSON body raises ProviderAPIError.",
        "Parse bodies with hypersdk.json_body(require=...) and check the shape of what you "
        "read before using it.",
    ),
    _check(
        "FAULT-ERROR-TYPES",
        "faults",
        "No fault (401, 403, 404, 429, 5xx, timeout, reset, bad body) lets anything but a "
        "HyperSDKError escape a public method; 401 after connect raises "
        "AuthenticationError, 400 and 422 ProviderAPIError without a retry.",
        "Catch httpx.HTTPError, ValueError, KeyError and TypeError at the edge of each "
        "operation and map them to hypersdk errors (hypersdk.error_for_response maps each "
        "status to its family).",
        tightened_in=(2,),
    ),
    _check(
        "FAULT-DEADLINE",
        "faults",
        "An anyio deadline around a call is respected even while the provider retries or "
        "the API hangs.",
        "Wait with anyio.sleep (never time.sleep) and let cancellation propagate; in a "
        "BlockingProvider call hypersdk.check_cancelled() between attempts and size each "
        "request's timeout with hypersdk.time_remaining().",
    ),
    # export -----------------------------------------------------------------------------
    _check(
        "EXPORT-RESULT",
        "export",
        "Each supported format writes files that exist inside output_path and match the "
        "ExportResult: format, vm id and name, size, checksum = SHA-256 of the main file, and "
        "output_path = options.output_path.",
        "Compute the checksum and size from the bytes actually written, and list files "
        "relative to output_path with the main file first.",
        requires="export",
        tightened_in=(2,),
    ),
    _check(
        "EXPORT-UNSUPPORTED",
        "export",
        "An unsupported format raises UnsupportedFormatError before any API mutation or "
        "file is made.",
        "Check options.format against get_export_capabilities() first thing in export_vm.",
        requires="export",
    ),
    _check(
        "EXPORT-CONFINED",
        "export",
        "No VM name, however hostile, makes an export write outside output_path.",
        "Build file names from a sanitised name (or the VM id), never from the raw name.",
        requires="export",
    ),
    _check(
        "EXPORT-PROGRESS",
        "export",
        "Progress percentages stay within [0, 100], never decrease (across resumed or "
        "retried downloads too) and end at 100.",
        "Report progress from one place that clamps and keeps the maximum, and report 100 "
        "once the files are final.",
        requires="export",
        tightened_in=(2,),
    ),
    _check(
        "EXPORT-CANCEL",
        "export",
        "A cancelled or failed export leaves no file behind (in output_path or the system "
        "temp dir) and undoes (or logs at WARNING) every provider-side change it made.",
        "Write to a temporary name and delete it in a finally block; undo snapshots in a "
        "shielded cancel scope (anyio.CancelScope(shield=True)).",
        requires="export",
        tightened_in=(2,),
    ),
    _check(
        "EXPORT-RESUME",
        "export",
        "A connection dropped during a disk download is resumed or retried to a file with "
        "the right checksum.",
        "Catch the transport error mid-body and continue with a Range request (or restart "
        "the download), then verify size and checksum.",
        requires="supports_streaming",
        tightened_in=(2,),
    ),
    _check(
        "EXPORT-COMPRESSION",
        "export",
        "With compress=True the main file decompresses (gzip, bzip2, xz or zstd) to data "
        "whose length is ExportResult.size and, for disk image formats, to the disk itself.",
        "Compress the downloaded bytes as a stream and record the uncompressed size.",
        requires="supports_compression",
    ),
    # hygiene ----------------------------------------------------------------------------
    _check(
        "SECRET-LOGS",
        "hygiene",
        "The token never appears in any log record, captured at DEBUG.",
        "Log method and path only; never headers, configs with revealed secrets or URLs "
        "with credentials.",
        tightened_in=(2,),
    ),
    _check(
        "SECRET-REPR",
        "hygiene",
        "The token never appears in the provider's repr or str, nor in the str or repr of "
        "any error it raises.",
        "Keep the token in a hypersdk.Secret and reveal it only into the request header.",
        tightened_in=(2,),
    ),
    _check(
        "SECRET-URL",
        "hygiene",
        "The token never appears in a request URL.",
        "Send the token in the Authorization header, not in the query string.",
        tightened_in=(2,),
    ),
    _check(
        "HTTP-MOCKED",
        "hygiene",
        "Every request the provider makes is served by a route of mock_api, and no "
        "connection leaves 127.0.0.1.",
        "Point the provider at the config's endpoint only (cloud.loopback_url(...) for a "
        "client that is not httpx), and mock every endpoint it calls in mock_api.",
        tightened_in=(2,),
    ),
    _check(
        "HTTP-TIMEOUTS",
        "hygiene",
        "Every request carries finite connect, read, write and pool timeouts; over the "
        "socket, a silent server is given up on within ProviderConfig.timeout.",
        "Create the client with httpx.Timeout(config.timeout or a default), never None; "
        "with another client pass timeout=config.timeout to every request.",
        tightened_in=(2,),
    ),
    _check(
        "CONCURRENT-CALLS",
        "hygiene",
        "Twenty tasks calling list_vms and get_vm at once on one provider all get correct results.",
        "Keep per-call state in local variables, not on self; share only the client.",
    ),
)
"""Every check, in the order the suite runs them."""

_BY_ID: Final = {check.id: check for check in CONTRACT}


def check_by_id(check_id: str) -> ContractCheck:
    """Return the check with this ID.

    Raises:
        KeyError: no check has this ID (the message lists the known IDs).
    """
    try:
        return _BY_ID[check_id]
    except KeyError:
        known = ", ".join(_BY_ID)
        raise KeyError(f"unknown contract check {check_id!r}; known checks: {known}") from None
