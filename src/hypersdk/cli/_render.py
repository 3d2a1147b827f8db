"""What the commands print: rich tables for people, JSON (the converter's output) for scripts.

Every table and report the commands show is drawn here, so a command only gathers its
data; :func:`fitted_table` chooses the columns by the terminal's width. Text that comes
from plugins or providers is escaped, so a ``[`` in it is shown, not read as markup.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import attrs

from hypersdk.serialization import to_dict

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from hypersdk.models import ExportCapabilities, ExportResult, VMInfo
    from hypersdk.plugins import PluginCheck, PluginInfo


def escape(text: str) -> str:
    """``text`` shown as it is inside rich markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON to stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def models_json(models: Sequence[object]) -> list[dict[str, Any]]:
    """Return models as the converter's plain data."""
    return [to_dict(model) for model in models]


def _console() -> Any:
    from rich.console import Console

    return Console(soft_wrap=False)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"


@attrs.frozen
class Column:
    """One column of a :func:`fitted_table`.

    ``wide`` marks free text (paths, messages) that folds badly into a narrow column: when
    the terminal cannot give each wide column :data:`WIDE_MIN` cells beside the short
    ones, the wide values move under the table, one labelled line each, where they wrap
    across the whole width.
    """

    header: str
    wide: bool = False


WIDE_MIN = 30  # cells a wide column needs to read well; less and it folds every word


def _cells(markup: str) -> int:
    from rich.text import Text

    return max((Text.from_markup(line).cell_len for line in markup.split("\n")), default=0)


def fitted_table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` (rich markup) as a table that fits the terminal's width.

    Short columns never wrap. Wide columns stay in the table while they fit; otherwise
    their values are printed beneath it, keyed by each row's first cell, so nothing is
    lost or folded into a column a few letters wide.
    """
    from rich.table import Table

    console = _console()
    short = [index for index, column in enumerate(columns) if not column.wide]
    wide = [index for index, column in enumerate(columns) if column.wide]
    # Each column costs its content plus a cell of padding either side and a border.
    short_width = sum(
        max(_cells(columns[i].header), *(_cells(row[i]) for row in rows)) + 3 for i in short
    )
    inline = not wide or short_width + 1 + (WIDE_MIN + 3) * len(wide) <= console.width
    shown = range(len(columns)) if inline else short
    table = Table(title=title)
    for index in shown:
        column = columns[index]
        table.add_column(column.header, overflow="fold", no_wrap=not column.wide)
    for row in rows:
        table.add_row(*(row[index] for index in shown))
    console.print(table)
    if inline:
        return
    details = Table.grid(padding=(0, 1))
    details.add_column(no_wrap=True)
    details.add_column(no_wrap=True, style="dim")
    details.add_column(overflow="fold")
    for row in rows:
        for index in wide:
            if row[index]:
                details.add_row(row[0], f"{columns[index].header.lower()}:", row[index])
    if details.row_count:
        console.print(details)


def key_values(title: str | None, pairs: Iterable[tuple[str, str]]) -> None:
    """Print one record, a field per line."""
    from rich.table import Table

    table = Table(show_header=False, box=None, title=title)
    for key, value in pairs:
        table.add_row(f"[bold]{key}", value)
    _console().print(table)


def vm_table(vms: Sequence[VMInfo]) -> None:
    """Print VMs as a table."""
    columns = [
        *map(Column, ("ID", "Name", "State", "Power", "Location", "vCPU", "Memory MB")),
        Column("IPs", wide=True),
        Column("Tags", wide=True),
    ]
    rows = [
        tuple(
            escape(cell)
            for cell in (
                vm.id,
                vm.name,
                vm.state,
                vm.power_state,
                vm.location,
                str(vm.num_cpus),
                str(vm.memory_mb),
                " ".join(vm.ip_addresses),
                ", ".join(f"{k}={v}" if v else k for k, v in sorted(vm.tags.items())),
            )
        )
        for vm in vms
    ]
    fitted_table(_count(len(vms), "VM"), columns, rows)


def vm_detail(vm: VMInfo) -> None:
    """Print one VM, a field per line."""
    pairs = []
    for key, value in to_dict(vm).items():
        if isinstance(value, dict):
            shown = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            shown = " ".join(map(str, value))
        else:
            shown = "" if value is None else str(value)
        pairs.append((key, escape(shown)))
    key_values(None, pairs)


def plugin_table(infos: Sequence[PluginInfo]) -> None:
    """Print every plugin found, loaded or not, with why it failed."""
    columns = [
        *map(Column, ("Name", "Version", "Provider type", "Status")),
        Column("Source", wide=True),
        Column("Error", wide=True),
    ]
    rows = []
    for info in infos:
        meta = info.metadata
        style = {"loaded": "green", "failed": "red"}.get(str(info.status), "yellow")
        rows.append(
            (
                escape(info.name),
                escape(meta.version) if meta else "",
                escape(meta.provider_type) if meta else "",
                f"[{style}]{info.status}[/]",
                escape(info.source),
                escape(str(info.error)) if info.error else "",
            )
        )
    fitted_table(_count(len(infos), "plugin"), columns, rows)


def plugin_detail(name: str, fields: Mapping[str, object]) -> None:
    """Print one plugin's metadata and status, a field per line."""
    key_values(
        f"plugin {escape(name)}",
        (
            (key, "" if value in (None, "", [], ()) else escape(str(value)))
            for key, value in fields.items()
        ),
    )


def check_report(target: str, checks: Sequence[PluginCheck]) -> None:
    """Print ``plugins validate``'s checks, one line each, failures with their fix."""
    from rich.console import Console

    console = Console(highlight=False)
    marks = {"pass": "[green]PASS[/]", "fail": "[red]FAIL[/]", "skip": "[dim]SKIP[/]"}
    for check in checks:
        console.print(f"{marks[check.outcome]}  {escape(check.name)}")
        if check.outcome == "fail":
            console.print(f"      [red]{escape(check.detail)}[/]", soft_wrap=True)
    failed = any(check.outcome == "fail" for check in checks)
    verdict = "[red]invalid[/]" if failed else "[green]valid[/]"
    console.print(f"\n{escape(target)}: {verdict}")


def provider_table(rows: Sequence[tuple[str, ExportCapabilities]]) -> None:
    """Print the provider types and what each can export."""
    fitted_table(
        _count(len(rows), "provider type"),
        [Column("Type"), Column("Exports", wide=True)],
        [(escape(name), escape(capabilities_text(caps))) for name, caps in rows],
    )


def journal_table(title: str, rows: Sequence[Sequence[str]], totals: str) -> None:
    """Print a plan's jobs (VM, name, state, tries, detail) and the totals under them."""
    columns = [*map(Column, ("VM", "name", "state", "tries")), Column("detail", wide=True)]
    fitted_table(escape(title), columns, [tuple(map(escape, row)) for row in rows])
    _console().print(totals)


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
    key_values("Export complete", [(key, escape(value)) for key, value in rows])
