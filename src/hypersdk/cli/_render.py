"""What the commands print: rich tables for people, JSON (the converter's output) for scripts."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from hypersdk.serialization import to_dict

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hypersdk.models import ExportCapabilities, ExportResult, VMInfo


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def models_json(models: Sequence[object]) -> list[dict[str, Any]]:
    """Return models as the converter's plain data."""
    return [to_dict(model) for model in models]


def _console() -> Any:
    from rich.console import Console

    return Console(soft_wrap=False)


def vm_table(vms: Sequence[VMInfo]) -> None:
    """Print VMs as a table."""
    from rich.table import Table

    table = Table(show_lines=False, title=f"{len(vms)} VM{'s' if len(vms) != 1 else ''}")
    for column in ("ID", "Name", "State", "Power", "Location", "vCPU", "Memory MB", "IPs", "Tags"):
        table.add_column(column, overflow="fold")
    for vm in vms:
        tags = ", ".join(f"{k}={v}" if v else k for k, v in sorted(vm.tags.items()))
        table.add_row(
            vm.id,
            vm.name,
            vm.state,
            vm.power_state,
            vm.location,
            str(vm.num_cpus),
            str(vm.memory_mb),
            " ".join(vm.ip_addresses),
            tags,
        )
    _console().print(table)


def vm_detail(vm: VMInfo) -> None:
    """Print one VM, a field per line."""
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for key, value in to_dict(vm).items():
        if isinstance(value, dict):
            shown = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            shown = " ".join(map(str, value))
        else:
            shown = "" if value is None else str(value)
        table.add_row(f"[bold]{key}", shown)
    _console().print(table)


def capabilities_text(capabilities: ExportCapabilities) -> str:
    """Summarise what a provider can export in one line."""
    parts = [", ".join(capabilities.supported_formats) or "no export"]
    for flag, label in (
        (capabilities.supports_compression, "compression"),
        (capabilities.supports_streaming, "streaming"),
        (capabilities.supports_snapshots, "snapshots"),
    ):
        if flag:
            parts.append(label)
    if capabilities.max_vm_size_gb:
        parts.append(f"max {capabilities.max_vm_size_gb} GB")
    return "; ".join(parts)


def export_summary(result: ExportResult) -> None:
    """Print an export's outcome."""
    from rich.table import Table

    table = Table(show_header=False, box=None, title="Export complete")
    rows = [
        ("VM", f"{result.vm_name} ({result.vm_id})"),
        ("Format", result.format),
        ("Directory", str(result.output_path)),
        ("Files", "\n".join(result.files)),
        ("Size", f"{result.size:,} bytes"),
    ]
    if result.compressed_size:
        rows.append(("Compressed", f"{result.compressed_size:,} bytes"))
    rows += [
        ("SHA-256", result.checksum or "-"),
        ("Duration", f"{result.duration.total_seconds():.1f} s"),
    ]
    for key, value in rows:
        table.add_row(f"[bold]{key}", value)
    _console().print(table)
