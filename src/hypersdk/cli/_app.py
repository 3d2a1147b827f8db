"""The ``hypersdk`` command: plugins, providers, VMs and exports from a terminal."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import attrs
import cyclopts
from cyclopts import App, Parameter

from hypersdk._redact import redact_text, redact_urls
from hypersdk._settings import Settings, load_settings
from hypersdk._version import __version__
from hypersdk.cli import _exit, _jobs, _render
from hypersdk.cli._logging import configured_logging
from hypersdk.cli._new_plugin import new_plugin
from hypersdk.cli._runner import Interrupted, run_interruptible
from hypersdk.errors import ConfigurationError, HyperSDKError
from hypersdk.models import ExportOptions, ExportResult, VMFilter, VMInfo
from hypersdk.plugins import PluginConfig, PluginInfo, PluginManager
from hypersdk.serialization import to_dict

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from hypersdk.jobs import ExportPlan, PlanSummary
    from hypersdk.providers import Provider

_T = TypeVar("_T")

app = App(
    name="hypersdk",
    help="Discover provider plugins and list, find and export virtual machines.",
    version=__version__,
)
plugins_app = App(name="plugins", help="Installed provider plugins: list, inspect, validate.")
vms_app = App(name="vms", help="List, get and search the VMs of one provider.")
jobs_app = App(name="jobs", help="Fleet export plans: status, resume, retry.")
app.command(plugins_app)
app.command(vms_app)
app.command(jobs_app)
app.command(new_plugin, name="new-plugin")


@Parameter(name="*")
@attrs.define
class Common:
    """Options every command takes."""

    config: Path | None = None
    "Configuration file (default: $HYPERSDK_CONFIG, then the platform config directory)."
    debug: bool = False
    "On error, show the traceback; log at DEBUG to stderr."


_DEFAULT_COMMON = Common()


def _settings(common: Common) -> Settings:
    # --debug logging is configured by main() for the whole run (redacted, see _logging).
    return load_settings(common.config)


def _manager(settings: Settings) -> PluginManager:
    manager = PluginManager(settings.plugins)
    manager.load_all()
    return manager


def _with_provider(
    common: Common, provider_type: str, work: Callable[[Provider], Awaitable[_T]]
) -> _T:
    """Load plugins, connect ``provider_type`` and run ``work`` with Ctrl-C handling."""
    settings = _settings(common)
    config = settings.provider_config(provider_type)
    manager = _manager(settings)
    if not manager.registry.is_registered(provider_type):
        failed = [info.name for info in manager.list_plugins() if info.status == "failed"]
        known = ", ".join(manager.registry.list_providers()) or "none"
        hint = (
            f"; plugins that failed to load: {', '.join(failed)} (see `hypersdk plugins list`)"
            if failed
            else ""
        )
        raise ConfigurationError(
            f"no provider of type {provider_type!r} is installed; available: {known}{hint}"
        )

    async def run() -> _T:
        provider = manager.registry.create(provider_type, config)
        async with provider:
            await provider.connect(config)
            return await work(provider)

    return run_interruptible(run)


def _parse_tags(tags: Sequence[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not key or not sep:
            raise ConfigurationError(f"--tag: expected KEY=VALUE (VALUE may be empty), got {tag!r}")
        parsed[key] = value
    return parsed


# ---------------------------------------------------------------------------- plugins


@plugins_app.command(name="list")
def plugins_list(*, json: bool = False, common: Common = _DEFAULT_COMMON) -> int:
    """List every plugin found, loaded or not, with why it failed.

    Parameters
    ----------
    json
        Print JSON instead of a table.
    """
    manager = _manager(_settings(common))
    infos = manager.list_plugins()
    if json:
        _render.print_json([_plugin_dict(info) for info in infos])
        return _exit.OK
    _render.plugin_table(infos)
    return _exit.OK


def _plugin_dict(info: PluginInfo) -> dict[str, object]:
    return {
        "name": info.name,
        "source": info.source,
        "kind": str(info.kind),
        "status": str(info.status),
        "metadata": to_dict(info.metadata) if info.metadata else None,
        "loaded_at": info.loaded_at.isoformat() if info.loaded_at else None,
        "error": str(info.error) if info.error else None,
        "digest": info.digest,
    }


@plugins_app.command(name="info")
def plugins_info(name: str, /, *, json: bool = False, common: Common = _DEFAULT_COMMON) -> int:
    """Show one plugin's metadata and status.

    Parameters
    ----------
    name
        The plugin's name (as `hypersdk plugins list` shows it) or its provider type.
    json
        Print JSON.
    """
    manager = _manager(_settings(common))
    info = manager.get_plugin(name) or next(
        (
            item
            for item in manager.list_plugins()
            if item.metadata is not None and item.metadata.provider_type == name
        ),
        None,
    )
    if info is None:
        known = ", ".join(item.name for item in manager.list_plugins()) or "none"
        raise ConfigurationError(f"no plugin named {name!r}; found: {known}")
    data = _plugin_dict(info)
    if json:
        _render.print_json(data)
        return _exit.OK
    flat = dict(data)
    meta = flat.pop("metadata")
    if isinstance(meta, dict) and info.metadata is not None:
        flat.update(meta)
        flat["capabilities"] = _render.capabilities_text(info.metadata.capabilities)
    _render.plugin_detail(info.name, flat)
    return _exit.OK


@plugins_app.command(name="validate")
def plugins_validate(
    target: str, /, *, json: bool = False, common: Common = _DEFAULT_COMMON
) -> int:
    """Load one plugin in isolation and report every loading check (exit 1 on a failure).

    Parameters
    ----------
    target
        A plugin file, a package folder, or an installed module name.
    json
        Print the checks as JSON.
    """
    _settings(common)  # --debug logging; the configuration is not needed to check a plugin
    path = Path(target).expanduser()
    checks = PluginManager(PluginConfig(entry_points=False)).check_plugin(
        path if path.exists() else target
    )
    failed = any(check.outcome == "fail" for check in checks)
    if json:
        _render.print_json(
            {
                "target": target,
                "ok": not failed,
                "checks": [attrs.asdict(check) for check in checks],
            }
        )
    else:
        _render.check_report(target, checks)
    return _exit.CHECK_FAILED if failed else _exit.OK


# -------------------------------------------------------------------------- providers


@app.command(name="providers")
def providers(*, json: bool = False, common: Common = _DEFAULT_COMMON) -> int:
    """List the provider types the loaded plugins offer, with their capabilities.

    Parameters
    ----------
    json
        Print JSON.
    """
    manager = _manager(_settings(common))
    registry = manager.registry
    rows = [(name, registry.get_capabilities(name)) for name in registry.list_providers()]
    if json:
        _render.print_json({name: to_dict(caps) for name, caps in rows})
        return _exit.OK
    _render.provider_table(rows)
    return _exit.OK


# -------------------------------------------------------------------------------- vms

ProviderOption = Annotated[str, Parameter(help="The provider type, e.g. digitalocean.")]


@vms_app.command(name="list")
def vms_list(
    *,
    provider: ProviderOption,
    name: Annotated[str, Parameter(help="Glob on the VM name, ignoring case.")] = "",
    state: str = "",
    power_state: str = "",
    tag: Annotated[
        tuple[str, ...], Parameter(help="KEY=VALUE a VM must carry; repeatable.", negative="")
    ] = (),
    location: str = "",
    min_memory: Annotated[int, Parameter(help="Minimum memory in MB (inclusive).")] = 0,
    min_cpus: Annotated[int, Parameter(help="Minimum vCPUs (inclusive).")] = 0,
    json: bool = False,
    common: Common = _DEFAULT_COMMON,
) -> int:
    """List the VMs that match every given filter.

    Parameters
    ----------
    state
        Equal to the VM's state, ignoring case.
    power_state
        Equal to the VM's power state, ignoring case.
    location
        Equal to the VM's location (region), ignoring case.
    json
        Print the VMs as JSON (hypersdk.to_dict of each).
    """
    flt = VMFilter(
        name_pattern=name,
        state=state,
        power_state=power_state,
        tags=_parse_tags(tag),
        location=location,
        min_memory_mb=min_memory,
        min_cpus=min_cpus,
    )

    async def work(connected: Provider) -> list[VMInfo]:
        return await connected.list_vms(None if flt.is_empty else flt)

    _print_vms(_with_provider(common, provider, work), json=json)
    return _exit.OK


@vms_app.command(name="get")
def vms_get(
    vm_id: str, /, *, provider: ProviderOption, json: bool = False, common: Common = _DEFAULT_COMMON
) -> int:
    """Show one VM.

    Parameters
    ----------
    vm_id
        The VM's id.
    json
        Print JSON.
    """

    async def work(connected: Provider) -> VMInfo:
        return await connected.get_vm(vm_id)

    vm = _with_provider(common, provider, work)
    if json:
        _render.print_json(to_dict(vm))
    else:
        _render.vm_detail(vm)
    return _exit.OK


@vms_app.command(name="search")
def vms_search(
    query: str, /, *, provider: ProviderOption, json: bool = False, common: Common = _DEFAULT_COMMON
) -> int:
    """Find VMs whose id, name, location, OS, state, IPs or tags contain every word.

    Parameters
    ----------
    query
        Words to look for, ignoring case.
    json
        Print JSON.
    """

    async def work(connected: Provider) -> list[VMInfo]:
        return await connected.search_vms(query)

    _print_vms(_with_provider(common, provider, work), json=json)
    return _exit.OK


def _print_vms(vms: list[VMInfo], *, json: bool) -> None:
    if json:
        _render.print_json(_render.models_json(vms))
    else:
        _render.vm_table(vms)


# ----------------------------------------------------------------------------- export


@app.command(name="export")
def export(
    vm_id: str = "",
    /,
    *,
    provider: ProviderOption,
    output: Annotated[Path, Parameter(help="Directory to write into (created if missing).")],
    format: Annotated[str, Parameter(help="Disk or export format, e.g. qcow2.")],
    compress: bool = False,
    level: Annotated[int, Parameter(help="Compression level; 0 = the algorithm's default.")] = 0,
    all: Annotated[
        bool, Parameter(help="Export every VM that matches the filters, as one plan.")
    ] = False,
    name: Annotated[str, Parameter(help="With --all: glob on the VM name.")] = "",
    state: Annotated[str, Parameter(help="With --all: the VM's state.")] = "",
    tag: Annotated[
        tuple[str, ...], Parameter(help="With --all: KEY=VALUE; repeatable.", negative="")
    ] = (),
    location: Annotated[str, Parameter(help="With --all: the VM's location.")] = "",
    min_memory: Annotated[int, Parameter(help="With --all: minimum memory in MB.")] = 0,
    min_cpus: Annotated[int, Parameter(help="With --all: minimum vCPUs.")] = 0,
    jobs: Annotated[int, Parameter(help="With --all: VMs exported at once.")] = 4,
    journal: Annotated[
        Path | None,
        Parameter(help=f"With --all: the plan's journal (default OUTPUT/{_jobs.JOURNAL_NAME})."),
    ] = None,
    json: bool = False,
    common: Common = _DEFAULT_COMMON,
) -> int:
    """Export one VM, or with --all a whole fleet; Ctrl-C cancels cleanly (exit 130).

    With --all the VMs are a plan recorded in a journal: each VM goes into its own folder
    under OUTPUT, and running the same command again (or `hypersdk jobs resume JOURNAL`)
    continues where it stopped. Exit 0 when every VM is exported, 13 when some failed.

    Parameters
    ----------
    vm_id
        The VM's id (leave out with --all).
    compress
        Compress the exported disk.
    json
        Print the ExportResult (with --all: the plan's status) as JSON; progress goes to
        stderr as plain lines.
    """
    options = ExportOptions(
        output_path=output, format=format, compress=compress, compression_level=level
    )
    if all:
        if vm_id:
            raise ConfigurationError("give a VM id or --all, not both")
        flt = VMFilter(
            name_pattern=name,
            state=state,
            tags=_parse_tags(tag),
            location=location,
            min_memory_mb=min_memory,
            min_cpus=min_cpus,
        )
        from hypersdk.jobs import ExportPlan

        plan = ExportPlan(
            provider_type=provider, options=options, filter=None if flt.is_empty else flt
        )
        return _run_plan(common, plan, journal or output / _jobs.JOURNAL_NAME, jobs, json=json)
    if not vm_id:
        raise ConfigurationError("give the id of the VM to export, or --all for every VM")
    if name or state or tag or location or min_memory or min_cpus:
        raise ConfigurationError("the VM filters (--name, --state, ...) need --all")
    from hypersdk.cli._progress import terminal_progress

    async def work(connected: Provider) -> ExportResult:
        with terminal_progress(json=json) as reporter:
            return await connected.export_vm(vm_id, options, progress=reporter)

    result = _with_provider(common, provider, work)
    if json:
        _render.print_json(to_dict(result))
    else:
        _render.export_summary(result)
    return _exit.OK


def _run_plan(
    common: Common, plan: ExportPlan | None, journal_path: Path, jobs: int, *, json: bool
) -> int:
    """Run (or resume) a plan with the live view; print its status at the end."""
    from hypersdk.jobs import Journal, run_plan

    with Journal(journal_path, plan) as journal:
        started = _jobs.now()

        async def work(connected: Provider) -> PlanSummary:
            with _jobs.plan_view(json=json) as view:
                return await run_plan(
                    journal.plan, journal, connected, concurrency=jobs, progress=view
                )

        summary = _with_provider(common, journal.plan.provider_type, work)
        sys.stderr.write(_jobs.summary_line(summary, _jobs.now() - started) + "\n")
        if json:
            return _jobs.print_status(journal, json=True)
        return _exit.OK if summary.ok else _exit.PLAN_INCOMPLETE


# ------------------------------------------------------------------------------- jobs


JournalArgument = Annotated[Path, Parameter(help="The plan's journal file.")]


@jobs_app.command(name="status")
def jobs_status(
    journal: JournalArgument, /, *, json: bool = False, common: Common = _DEFAULT_COMMON
) -> int:
    """Show every VM job of a plan; exit 0 when all are exported, 13 otherwise.

    Parameters
    ----------
    json
        Print the plan's counts and jobs as JSON.
    """
    from hypersdk.jobs import Journal

    _settings(common)
    with Journal(journal) as opened:
        return _jobs.print_status(opened, json=json)


@jobs_app.command(name="resume")
def jobs_resume(
    journal: JournalArgument,
    /,
    *,
    jobs: Annotated[int, Parameter(help="VMs exported at once.")] = 4,
    json: bool = False,
    common: Common = _DEFAULT_COMMON,
) -> int:
    """Continue a plan: skip what is done, resume what was running or cancelled.

    Parameters
    ----------
    json
        Print the plan's status as JSON at the end.
    """
    return _run_plan(common, None, journal, jobs, json=json)


@jobs_app.command(name="retry")
def jobs_retry(
    journal: JournalArgument,
    /,
    *,
    failed: Annotated[bool, Parameter(help="Put failed jobs back to pending first.")] = False,
    jobs: Annotated[int, Parameter(help="VMs exported at once.")] = 4,
    json: bool = False,
    common: Common = _DEFAULT_COMMON,
) -> int:
    """Run a plan's failed jobs again (with --failed), then whatever else is left.

    Parameters
    ----------
    json
        Print the plan's status as JSON at the end.
    """
    from hypersdk.jobs import JobState, Journal

    if not failed:
        raise ConfigurationError("retry: say which jobs to retry: --failed")
    with Journal(journal) as opened:
        moved = opened.requeue(JobState.FAILED)
    sys.stderr.write(f"plan: {moved} failed job(s) put back to pending\n")
    return _run_plan(common, None, journal, jobs, json=json)


# ------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hypersdk`` command; return its exit code (see ``hypersdk.cli._exit``)."""
    tokens = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in tokens
    with configured_logging(debug=debug):
        return _run(tokens, debug=debug)


def _run(tokens: list[str], *, debug: bool) -> int:
    try:
        result = app(tokens, result_action="return_value", exit_on_error=False, print_error=False)
    except cyclopts.CycloptsError as exc:
        sys.stderr.write(f"hypersdk: usage error: {exc}\nTry 'hypersdk --help'.\n")
        return _exit.USAGE
    except Interrupted:
        sys.stderr.write("hypersdk: interrupted; nothing was left half-written\n")
        return _exit.INTERRUPTED
    except KeyboardInterrupt:
        sys.stderr.write("hypersdk: interrupted\n")
        return _exit.INTERRUPTED
    except HyperSDKError as exc:
        if debug:
            _print_traceback()
        sys.stderr.write(f"hypersdk: error: {redact_urls(_one_line(str(exc)))}\n")
        return _exit.exit_code_for(exc)
    except Exception as exc:  # a bug: say so, briefly, unless asked for details
        if debug:
            _print_traceback()
        sys.stderr.write(
            f"hypersdk: internal error: {type(exc).__name__}: {redact_text(_one_line(str(exc)))} "
            "(run with --debug for the traceback)\n"
        )
        return _exit.INTERNAL
    return result if isinstance(result, int) else _exit.OK


def _print_traceback() -> None:
    # A traceback quotes exception messages, and httpx's carry the full URL.
    sys.stderr.write(redact_text(traceback.format_exc()))


def _one_line(text: str) -> str:
    return " ".join(text.split())
