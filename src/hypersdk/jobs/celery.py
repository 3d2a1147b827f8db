"""Run a plan's jobs on a Celery cluster (``pip install "hypersdk[celery]"``).

The coordinator (:func:`submit_plan`) keeps the journal on its own machine and sends one
task per VM; workers export and answer with the result. Workers resolve credentials from
their own configuration — the ``hypersdk`` CLI's TOML file and environment variables —
never from the message, which carries only the plan (no secret) and a VM id.

Start a worker on each machine (Redis as broker and result backend)::

    export HYPERSDK_CELERY_BROKER=redis://broker.internal:6379/0
    celery -A hypersdk.jobs.celery worker --concurrency 1 --prefetch-multiplier 1

The sharp edges, set here so nobody has to remember them:

- **Late acknowledgement** (``task_acks_late``, ``task_reject_on_worker_lost``): a task is
  acknowledged when its export has finished, so a worker that dies mid-export gives the
  job back and another worker takes it.
- **Visibility timeout** longer than the longest export: Redis hands an unacknowledged
  task to another worker after it (Celery's default is one hour; ours is
  ``HYPERSDK_CELERY_VISIBILITY_TIMEOUT``, default 12 hours). Too short and a healthy slow
  export runs twice at once; too long and a dead worker's job waits that long.
- **Prefetch of one** (``worker_prefetch_multiplier = 1``): a worker never holds tasks it
  cannot start while it spends hours on one export.
- **Idempotent exports**: each VM has its own folder, the toolkit's part files resume and
  a finished export leaves a marker (:func:`hypersdk.jobs.export_once`), so a redelivered
  task finishes the job or returns the result already on disk; it never writes twice.
"""

from __future__ import annotations

import functools
import os
import time
from typing import TYPE_CHECKING, Any, Final

from celery import Celery

from hypersdk._validation import is_int_between, shown
from hypersdk.errors import ConfigurationError, HyperSDKError, ProviderAPIError
from hypersdk.jobs._journal import JobState, Journal
from hypersdk.jobs._plan import ExportPlan, check_distinct_folders
from hypersdk.jobs._runner import PlanSummary, is_transient

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from celery.result import AsyncResult

    from hypersdk.plugins import PluginManager

__all__ = ["app", "create_app", "submit_plan", "EXPORT_TASK", "RESOLVE_TASK"]

EXPORT_TASK: Final = "hypersdk.jobs.export_vm"
RESOLVE_TASK: Final = "hypersdk.jobs.resolve_plan"
DEFAULT_BROKER: Final = "redis://127.0.0.1:6379/0"
DEFAULT_VISIBILITY_TIMEOUT: Final = 12 * 3600


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name, "")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 10**7:
        raise ConfigurationError(f"{name}: must be a number of seconds > 0, got {shown(text)}")
    return value


def create_app(
    broker: str | None = None,
    backend: str | None = None,
    *,
    visibility_timeout: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> Celery:
    """A Celery app configured for long, idempotent exports, with the two tasks registered.

    ``broker`` and ``backend`` default to ``$HYPERSDK_CELERY_BROKER`` (else
    ``redis://127.0.0.1:6379/0``) and ``$HYPERSDK_CELERY_BACKEND`` (else the broker);
    ``visibility_timeout`` to ``$HYPERSDK_CELERY_VISIBILITY_TIMEOUT`` (else 12 hours).
    """
    env = os.environ if environ is None else environ
    broker = broker or env.get("HYPERSDK_CELERY_BROKER") or DEFAULT_BROKER
    backend = backend or env.get("HYPERSDK_CELERY_BACKEND") or broker
    timeout = (
        visibility_timeout
        if visibility_timeout is not None
        else _seconds(env, "HYPERSDK_CELERY_VISIBILITY_TIMEOUT", DEFAULT_VISIBILITY_TIMEOUT)
    )
    celery_app = Celery("hypersdk", broker=broker, backend=backend)
    transport = {
        "visibility_timeout": timeout,
        # kombu looks for expired unacknowledged tasks only every 10 x 10 s by default;
        # sweeping a few times per visibility timeout (at most every minute) is cheap
        # and hands a dead worker's job on soon after the timeout.
        "unacked_restore_interval": max(0.5, min(60.0, timeout / 4)),
        "unacked_restore_throttle": 1,
    }
    celery_app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport,
        result_backend_transport_options={"visibility_timeout": timeout},
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=7 * 24 * 3600,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    celery_app.task(name=EXPORT_TASK)(_export_task)
    celery_app.task(name=RESOLVE_TASK)(_resolve_task)
    return celery_app


# -- what workers run ------------------------------------------------------------------


@functools.cache
def _worker_manager() -> PluginManager:
    """Load the worker process's plugins once, from its own configuration."""
    from hypersdk._settings import load_settings
    from hypersdk.plugins import PluginManager

    manager = PluginManager(load_settings(None).plugins)
    manager.load_all()
    return manager


def _connected_run(plan: ExportPlan, work: Callable[[Any], Any]) -> Any:
    """Connect the plan's provider with this worker's own config (env secrets), run ``work``."""
    import anyio

    from hypersdk._settings import load_settings

    config = load_settings(None).provider_config(plan.provider_type)
    manager = _worker_manager()
    if not manager.registry.is_registered(plan.provider_type):
        failed = [info.name for info in manager.list_plugins() if info.status == "failed"]
        hint = f"; plugins that failed to load: {', '.join(failed)}" if failed else ""
        raise ConfigurationError(
            f"this worker has no provider of type {shown(plan.provider_type)} installed{hint} "
            "(check with `hypersdk plugins list` on the worker)"
        )

    async def run() -> Any:
        provider = manager.registry.create(plan.provider_type, config)
        async with provider:
            await provider.connect(config)
            return await work(provider)

    return anyio.run(run)


def _failure(error: BaseException) -> dict[str, Any]:
    from hypersdk.jobs._journal import _error_message

    return {
        "ok": False,
        "family": type(error).__name__,
        "message": _error_message(error),
        "transient": is_transient(error),
    }


def _export_task(plan_json: str, vm_id: str) -> dict[str, Any]:
    """Export one VM of a plan; answer ``{"ok": True, "result": ...}`` or the failure."""
    from hypersdk.jobs._runner import export_once
    from hypersdk.serialization import from_json, to_dict

    try:
        plan = from_json(ExportPlan, plan_json)
        _check_root(plan)
        _check_member(plan, vm_id)

        async def work(provider: Any) -> Any:
            if not plan.vm_ids and plan.filter is not None:
                # A message is not proof the coordinator resolved this VM for this plan.
                vm = await provider.get_vm(vm_id)
                if not plan.filter.matches(vm):
                    raise ConfigurationError(
                        f"vm_id: {shown(vm_id)} does not match the plan's filter; not exported"
                    )
            return await export_once(provider, plan, vm_id)

        result = _connected_run(plan, work)
    except Exception as exc:  # the coordinator records it; the task itself succeeded
        return _failure(exc)
    return {"ok": True, "result": to_dict(result)}


EXPORT_ROOTS_VAR: Final = "HYPERSDK_CELERY_EXPORT_ROOTS"
"""Where this worker may write: folders separated by ``os.pathsep``; unset means anywhere."""


def _check_root(plan: ExportPlan, environ: Mapping[str, str] | None = None) -> None:
    """Refuse a plan whose output lies outside the folders this worker may write to.

    Whoever can write to the broker can send a worker a plan; a worker that sets
    ``HYPERSDK_CELERY_EXPORT_ROOTS`` writes only below those folders, whatever the message
    says (the comparison is on resolved paths, so ``..`` and links do not get out).
    """
    env = os.environ if environ is None else environ
    allowed = [entry for entry in env.get(EXPORT_ROOTS_VAR, "").split(os.pathsep) if entry]
    if not allowed:
        return
    root = os.path.realpath(plan.root)
    for entry in allowed:
        base = os.path.realpath(entry)
        if root == base or root.startswith(base.rstrip(os.sep) + os.sep):
            return
    raise ConfigurationError(
        f"plan: its output folder is outside {EXPORT_ROOTS_VAR} on this worker; not exported"
    )


def _check_member(plan: ExportPlan, vm_id: object) -> None:
    """Refuse a task for a VM its plan does not name (a forged or garbled message)."""
    if not isinstance(vm_id, str):
        raise ConfigurationError(f"vm_id: must be a string, got {type(vm_id).__name__}")
    if plan.vm_ids and vm_id not in plan.vm_ids:
        raise ConfigurationError(f"vm_id: {shown(vm_id)} is not one of the plan's VMs")


def _resolve_task(plan_json: str) -> dict[str, Any]:
    """List the VMs a plan names (on a worker: the coordinator needs no credentials)."""
    from hypersdk.jobs._runner import resolve_vms
    from hypersdk.serialization import from_json

    try:
        plan = from_json(ExportPlan, plan_json)

        async def work(provider: Any) -> list[list[str]]:
            return [[vm_id, name] for vm_id, name in await resolve_vms(plan, provider)]

        return {"ok": True, "vms": _connected_run(plan, work)}
    except Exception as exc:
        return _failure(exc)


# -- the coordinator -------------------------------------------------------------------


def _reported(answer: object) -> tuple[str, HyperSDKError]:
    """The family name and an error of that family for a worker's failure answer."""
    import hypersdk.errors

    if not isinstance(answer, dict):
        # The task itself raised (the worker could not even run it): keep only the type.
        family = type(answer).__name__
        return family, HyperSDKError(f"the task failed on the worker: {family}")
    family = str(answer.get("family", "HyperSDKError"))
    found = getattr(hypersdk.errors, family, None)
    cls = found if isinstance(found, type) and issubclass(found, HyperSDKError) else HyperSDKError
    return family, cls(str(answer.get("message", "")))


def _resolved(vms: object) -> list[tuple[str, str]]:
    """A worker's list of ``[vm_id, name]`` pairs, checked (a result backend is input too)."""
    if isinstance(vms, list) and all(
        isinstance(pair, list | tuple)
        and len(pair) == 2
        and all(isinstance(item, str) and item for item in pair)
        for pair in vms
    ):
        return [(str(vm_id), str(name)) for vm_id, name in vms]
    raise ProviderAPIError("resolving the plan on a worker: the answer is not a list of VMs")


def _check_arguments(plan: object, journal: object, celery_app: object, attempts: object) -> None:
    if not isinstance(plan, ExportPlan):
        raise ConfigurationError(f"plan: must be an ExportPlan, got {type(plan).__name__}")
    if not isinstance(journal, Journal) or journal.plan != plan:
        raise ConfigurationError("journal: must be the Journal of this plan")
    if not isinstance(celery_app, Celery):
        raise ConfigurationError(f"celery_app: must be a Celery app, got {shown(celery_app)}")
    if not is_int_between(attempts, 1, 100):
        raise ConfigurationError(
            f"max_attempts: must be an integer from 1 to 100, got {shown(attempts)}"
        )


def submit_plan(
    plan: ExportPlan,
    journal: Journal,
    celery_app: Celery,
    *,
    max_attempts: int = 3,
    poll_interval: float = 0.5,
    timeout: float | None = None,
) -> PlanSummary:
    """Send every pending job of ``plan`` to ``celery_app``'s workers and journal the answers.

    Blocks until every job has an outcome (or ``timeout`` seconds pass). As in
    :func:`~hypersdk.jobs.run_plan`, done jobs are skipped, running and cancelled ones are
    sent again, and a transient failure is retried up to ``max_attempts`` times. With
    Celery, at most one job per VM is in flight: a task a dead worker gave back is
    redelivered by the broker, not resubmitted. Ctrl-C revokes the queued tasks and marks
    their jobs cancelled.

    Raises:
        ConfigurationError: a wrong argument, or a journal of another plan.
        HyperSDKError: resolving the plan's VMs failed on the worker.
    """
    from hypersdk.models import ExportResult
    from hypersdk.serialization import from_dict, to_json

    _check_arguments(plan, journal, celery_app, max_attempts)
    plan_json = to_json(plan)
    deadline = None if timeout is None else time.monotonic() + timeout
    if not journal.expanded:
        answer = celery_app.send_task(RESOLVE_TASK, (plan_json,)).get(timeout=timeout)
        if not answer.get("ok"):
            _, error = _reported(answer)
            error.message = f"resolving the plan on a worker: {error.message}"
            raise error
        vms = _resolved(answer.get("vms"))
        check_distinct_folders(vm_id for vm_id, _ in vms)
        journal.add_jobs(vms)
    journal.requeue(JobState.RUNNING, JobState.CANCELLED)
    in_flight: dict[str, AsyncResult[Any]] = {}
    exported_now = 0

    def send(vm_id: str) -> None:
        if journal.start(vm_id):
            in_flight[vm_id] = celery_app.send_task(EXPORT_TASK, (plan_json, vm_id))

    try:
        for job in journal.jobs(JobState.PENDING):
            send(job.vm_id)
        while in_flight:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError
            for vm_id, pending in list(in_flight.items()):
                if not pending.ready():
                    continue
                del in_flight[vm_id]
                answer = pending.get(propagate=False)
                if isinstance(answer, dict) and answer.get("ok"):
                    journal.finish(vm_id, from_dict(ExportResult, answer["result"]))
                    exported_now += 1
                    continue
                family, error = _reported(answer)
                transient = isinstance(answer, dict) and answer.get("transient")
                if transient and journal.job(vm_id).attempts < max_attempts:
                    journal.retry_later(vm_id, error, family=family)
                    send(vm_id)
                    continue
                journal.fail(vm_id, error, family=family)
            time.sleep(poll_interval)
    except (KeyboardInterrupt, TimeoutError):
        for vm_id, pending in in_flight.items():
            pending.revoke()
            journal.cancel(vm_id)
        if deadline is None:
            raise
    counts = journal.counts()
    return PlanSummary(
        total=sum(counts.values()),
        done=counts[JobState.DONE],
        failed=counts[JobState.FAILED],
        cancelled=counts[JobState.CANCELLED],
        pending=counts[JobState.PENDING] + counts[JobState.RUNNING],
        exported_now=exported_now,
    )


app: Final = create_app()
"""The app ``celery -A hypersdk.jobs.celery worker`` runs (configured from the environment)."""
