"""An export plan: which VMs of which provider to export, how, and where."""

from __future__ import annotations

import hashlib
import unicodedata
from typing import TYPE_CHECKING, Any

import attrs

from hypersdk import _validation as v
from hypersdk.errors import ConfigurationError
from hypersdk.models import ExportOptions, ProviderType, VMFilter

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

__all__ = ["ExportPlan", "vm_folder"]

# The words that make a key look like it holds a credential; a plan must never carry one.
_SECRET_WORDS = (
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "credential",
    "auth",
    "bearer",
    "cookie",
    "sas",
    "signature",
)


def _vm_ids(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    v.string_items(instance, attribute, value)
    seen: set[str] = set()
    for item in value:
        if not item.strip():
            v.fail(instance, attribute, "non-empty VM identifiers", item)
        if item in seen:
            v.fail(instance, attribute, "distinct VM identifiers (each VM once)", item)
        seen.add(item)


def _filter_or_none(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, VMFilter):
        v.fail(instance, attribute, "a VMFilter or None", type(value).__name__)


def _options(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, ExportOptions):
        v.fail(instance, attribute, "an ExportOptions", type(value).__name__)
        return
    for key in value.metadata:
        lowered = key.lower()
        if any(word in lowered for word in _SECRET_WORDS):
            # Plans are written to disk and sent to workers: credentials stay with whoever
            # runs the job, so refuse rather than store one by accident. The value is not shown.
            raise ConfigurationError(
                f"ExportPlan.options.metadata[{v.shown(key)}]: looks like a credential; "
                "a plan must "
                "not hold secrets (the runner's provider configuration supplies them)"
            )


def _config_name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    v.string(instance, attribute, value)
    assert isinstance(value, str)
    if value != value.strip() or any(not (c.isalnum() or c in "-_.") for c in value):
        v.fail(instance, attribute, "'' or a configuration name of letters, digits, '-_.'", value)


def _to_provider_type(value: str) -> ProviderType:
    return ProviderType(value)


@attrs.frozen(kw_only=True)
class ExportPlan:
    """Which VMs of one provider to export, and how.

    ``vm_ids`` names the VMs; when it is empty, every VM that ``filter`` matches is
    exported (``filter=None``: every VM). ``options`` is the template for each VM's
    :class:`~hypersdk.ExportOptions`: its ``output_path`` is the plan's root, and each VM is
    exported into its own folder below it (:func:`vm_folder`), so two VMs never share a
    destination. ``config_name`` names the provider configuration the runner should use
    (for example a section of the CLI's configuration file); a plan never holds a secret.

    >>> plan = ExportPlan(
    ...     provider_type="digitalocean",
    ...     options=ExportOptions(output_path="exports", format="json"),
    ...     vm_ids=("101", "102"),
    ... )
    >>> plan.options_for("101").output_path.as_posix()
    'exports/101'
    """

    provider_type: ProviderType = attrs.field(
        converter=_to_provider_type, validator=v.non_empty_string
    )
    options: ExportOptions = attrs.field(validator=_options)
    vm_ids: tuple[str, ...] = attrs.field(factory=tuple, converter=v.to_tuple, validator=_vm_ids)
    filter: VMFilter | None = attrs.field(default=None, validator=_filter_or_none)
    config_name: str = attrs.field(default="", validator=_config_name)

    def __attrs_post_init__(self) -> None:
        if self.vm_ids and self.filter is not None:
            raise ConfigurationError(
                "ExportPlan: give vm_ids or filter, not both (vm_ids names the VMs exactly)"
            )

    @property
    def root(self) -> Path:
        """The directory every VM's folder is created in."""
        return self.options.output_path

    def options_for(self, vm_id: str) -> ExportOptions:
        """The :class:`~hypersdk.ExportOptions` for one VM: the template, in its own folder."""
        return attrs.evolve(self.options, output_path=self.root / vm_folder(vm_id))


def vm_folder(vm_id: str) -> str:
    """The folder name a VM's export goes into: its id, made safe, and unique per id.

    An id that :func:`~hypersdk.export.safe_filename` had to change, or that is not in
    lowercase normal form, gets a short digest of the raw id appended, so ``"a/b"`` and
    ``"a_b"`` never share a folder, nor do ``"Web"`` and ``"web"`` on a file system that
    folds case (macOS, Windows) or Unicode normal forms (APFS).

    >>> vm_folder("101")
    '101'
    >>> vm_folder("a/b") != vm_folder("a_b")
    True
    """
    from hypersdk.export import safe_filename

    checked: object = vm_id  # callers may pass anything at run time
    if not isinstance(checked, str) or not checked.strip():
        raise ConfigurationError(f"vm_id: must be a non-empty string, got {v.shown(checked)}")
    safe = safe_filename(vm_id, max_bytes=120)
    if safe == vm_id and _folded(safe) == safe:
        return safe
    digest = hashlib.sha256(vm_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{safe}-{digest}"


def _folded(name: str) -> str:
    # The name as a case- and normalisation-insensitive file system compares it.
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def check_distinct_folders(vm_ids: Iterable[str]) -> None:
    """Refuse a set of ids two of which would share a folder, on any file system.

    Folders are compared as a case-folding file system would: a provider that lists an
    id crafted to equal another VM's folder (``"web-<digest>"`` beside ``"Web"``) is refused.
    """
    seen: dict[str, str] = {}
    for vm_id in vm_ids:
        folder = _folded(vm_folder(vm_id))
        if folder in seen and seen[folder] != vm_id:
            raise ConfigurationError(
                f"VMs {v.shown(seen[folder])} and {v.shown(vm_id)} would share "
                f"the folder {v.shown(folder)}"
            )
        seen[folder] = vm_id
