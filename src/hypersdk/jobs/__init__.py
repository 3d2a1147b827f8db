"""Export a fleet: many VMs as one *plan*, every job recorded in a *journal*.

A plan names one provider type, which VMs (ids, or a :class:`~hypersdk.VMFilter`), and
the :class:`~hypersdk.ExportOptions` each gets (each VM in its own folder). The journal is
a SQLite file that records every VM's job as it moves through ``pending``, ``running``,
``done``, ``failed`` or ``cancelled``; running the same plan again resumes it::

    from hypersdk.jobs import ExportPlan, Journal, run_plan

    plan = ExportPlan(provider_type="openstack",
                      options=ExportOptions(output_path="fleet", format="qcow2"))
    with Journal("fleet.journal", plan) as journal:
        summary = await run_plan(plan, journal, provider, concurrency=8)

Neither a plan nor the journal ever holds a credential: whoever runs the plan supplies a
connected provider built from their own configuration.
"""

from __future__ import annotations

from hypersdk.jobs._journal import JobRecord, JobState, Journal
from hypersdk.jobs._plan import ExportPlan, vm_folder
from hypersdk.jobs._runner import PlanProgress, PlanSummary, is_transient, run_plan

__all__ = [
    "ExportPlan",
    "vm_folder",
    "Journal",
    "JobRecord",
    "JobState",
    "run_plan",
    "PlanProgress",
    "PlanSummary",
    "is_transient",
]
