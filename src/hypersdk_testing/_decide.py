"""Whether a contract check runs, and why not: one pure function, :func:`decide`."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from hypersdk_testing import _contract

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hypersdk import ExportCapabilities
    from hypersdk_testing._contract import ContractCheck

__all__ = ["Action", "decide", "claims"]


class Action(enum.Enum):
    """What the suite does with one check for one plugin."""

    RUN = "run"
    """Run it; a violation fails the test."""
    WARN = "warn"
    """Run it; a violation is reported as a warning (the check is newer than the pin)."""
    SKIP = "skip"
    """Do not run it: the plugin does not claim the capability it needs."""
    EXCLUDE = "exclude"
    """Do not run it: the author excluded it, with a reason."""
    ERROR = "error"
    """Fail without running: the configuration makes the check meaningless."""


def claims(capabilities: ExportCapabilities, capability: str) -> bool:
    """Return whether ``capabilities`` claim ``capability`` (see ``Capability``)."""
    if capability == "export":
        return bool(capabilities.supported_formats)
    return bool(getattr(capabilities, capability))


def decide(
    check: ContractCheck,
    *,
    capabilities: ExportCapabilities | None,
    exclusions: Mapping[str, object],
    pinned_version: object = None,
    current_version: int | None = None,
) -> tuple[Action, str]:
    """Return what to do with ``check`` for a plugin, and the reason in words.

    The rules, first match wins:

    ``current_version`` defaults to :data:`~hypersdk_testing.CONTRACT_VERSION`.

    1. A ``pinned_version`` that is not an integer from 1 to ``current_version``: ERROR.
    2. The check is in ``exclusions`` with an empty or non-string reason: ERROR.
    3. The check is in ``exclusions`` with a reason: EXCLUDE, with that reason.
    4. The check needs a capability and ``capabilities`` is ``None`` (PLUGIN_INFO is
       unusable): ERROR, pointing at IDENTITY-LOADS.
    5. The check needs a capability the plugin does not claim: SKIP, naming it.
    6. The check is newer than ``pinned_version``: WARN.
    7. Otherwise: RUN.

    >>> from hypersdk import ExportCapabilities
    >>> from hypersdk_testing._contract import check_by_id
    >>> decide(check_by_id("EXPORT-COMPRESSION"), capabilities=ExportCapabilities(
    ...     supported_formats=("raw",)), exclusions={})
    (<Action.SKIP: 'skip'>, 'not claimed: PLUGIN_INFO.capabilities.supports_compression is False')
    """
    if current_version is None:
        current_version = _contract.CONTRACT_VERSION
    if pinned_version is not None and (
        type(pinned_version) is not int or not 1 <= pinned_version <= current_version
    ):
        return (
            Action.ERROR,
            f"contract_version = {pinned_version!r} is not a contract this hypersdk knows "
            f"(1 to {current_version}); pin an integer in that range or remove the pin",
        )
    if check.id in exclusions:
        reason = exclusions[check.id]
        if not isinstance(reason, str) or not reason.strip():
            return (
                Action.ERROR,
                f"{check.id} is excluded without a reason; write why in "
                f'exclusions = {{"{check.id}": "<why this check cannot apply>"}}',
            )
        return Action.EXCLUDE, f"excluded by the plugin author: {reason.strip()}"
    if check.requires is not None:
        if capabilities is None:
            return (
                Action.ERROR,
                f"{check.id} depends on PLUGIN_INFO.capabilities, which could not be read; "
                "see IDENTITY-LOADS",
            )
        if not claims(capabilities, check.requires):
            if check.requires == "export":
                return (
                    Action.SKIP,
                    "not claimed: PLUGIN_INFO.capabilities.supported_formats is empty",
                )
            return (
                Action.SKIP,
                f"not claimed: PLUGIN_INFO.capabilities.{check.requires} is False",
            )
    if pinned_version is not None and check.since > pinned_version:
        return (
            Action.WARN,
            f"{check.id} was added in contract {check.since}; this plugin is pinned to "
            f"contract {pinned_version}, so a violation is a warning until it opts in",
        )
    return Action.RUN, "required by the contract"
