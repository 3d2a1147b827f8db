"""Which formats an export can produce, checked before any request (no export code loaded).

Kept apart from ``_export`` so that loading the plugin does not load the export toolkit:
an application that only lists servers never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from hypersdk import UnsupportedFormatError
from hypersdk_openstack._settings import PROVIDER

if TYPE_CHECKING:
    from hypersdk import ExportOptions

__all__ = ["GLANCE_FORMATS", "check_format"]

GLANCE_FORMATS: Final = ("raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso", "ploop")
"""Glance ``disk_format`` values a snapshot can have and the plugin writes as they are."""

_COMPRESSION: Final = "zstd"


def check_format(options: ExportOptions) -> str:
    """The requested format, folded; anything Glance cannot hold is refused up front."""
    fmt = options.format.casefold()
    if fmt not in GLANCE_FORMATS:
        raise UnsupportedFormatError(
            f"{PROVIDER} export: format {options.format!r} is not a Glance disk format; "
            f"a server exports as its snapshot image, one of {', '.join(GLANCE_FORMATS)}",
            provider=PROVIDER,
            operation="export",
        )
    if options.compress:
        from hypersdk.export import compression_level

        compression_level(_COMPRESSION, options.compression_level)  # ConfigurationError
    return fmt
