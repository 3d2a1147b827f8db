"""The embedded runner against a real loopback fleet: resume, retries, cancellation."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import anyio
import pytest

import hypersdk
from hypersdk import ExportOptions, ProviderConfig, VMFilter
from hypersdk.jobs import ExportPlan, JobState, Journal, PlanProgress, run_plan, vm_folder

from .fleet import PROVIDER_TYPE, FleetProvider, FleetServer, iter_parts

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_plan(root: Path, **kwargs: object) -> ExportPlan:
    return ExportPlan(
        provider_type=PROVIDER_TYPE,
        options=ExportOptions(output_path=root / "out", format="raw"),
        **kwargs,  # type: ignore[arg-type]
    )


async def connected(server: FleetServer) -> FleetProvider:
    provider = FleetProvider(ProviderConfig(type=PROVIDER_TYPE, endpoint=server.url))
    await provider.connect(ProviderConfig(type=PROVIDER_TYPE, endpoint=server.url))
    return provider


def assert_exported(server: FleetServer, journal: Journal, root: Path) -> None:
    jobs = journal.jobs()
    assert [job.state for job in jobs] == [JobState.DONE] * len(server.vms)
    for job in jobs:
        assert job.result is not None
        path = job.result.output_path / job.result.files[0]
        assert path.parent == root / "out" / vm_folder(job.vm_id)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == server.sha256(job.vm_id)
        assert job.result.checksum == server.sha256(job.vm_id)
    assert list(iter_parts(root)) == []


async def test_exports_every_vm_within_the_concurrency_limit(tmp_path: Path) -> None:
    events: list[PlanProgress] = []
    with FleetServer(12, delay=0.002) as server:
        provider = await connected(server)
        plan = make_plan(tmp_path)
        with Journal(tmp_path / "plan.journal", plan) as journal:
            summary = await run_plan(plan, journal, provider, concurrency=3, progress=events.append)
            assert summary.ok
            assert summary.exported_now == 12
            assert_exported(server, journal, tmp_path)
        await provider.disconnect()
    assert 1 < server.max_in_flight <= 3
    assert max(len(event.running) for event in events) <= 3
    assert events[-1].done == 12
    assert events[-1].bytes_done == sum(map(len, server.disks.values()))
    assert all(0 <= p <= 100 for event in events for p in event.running.values())
    # The counts add up at every step: a running job is no longer counted as pending.
    assert all(e.done + e.failed + e.cancelled + e.pending + len(e.running) == 12 for e in events)


async def test_a_second_run_skips_what_is_done(tmp_path: Path) -> None:
    with FleetServer(4) as server:
        provider = await connected(server)
        plan = make_plan(tmp_path)
        with Journal(tmp_path / "j", plan) as journal:
            await run_plan(plan, journal, provider)
        with Journal(tmp_path / "j") as journal:  # reopened without the plan: resumes it
            again = await run_plan(journal.plan, journal, provider)
        assert again.ok
        assert again.exported_now == 0
        assert set(provider.exports.values()) == {1}
        await provider.disconnect()


async def test_cancel_in_the_middle_then_resume_exports_each_vm_once(tmp_path: Path) -> None:
    with FleetServer(10, disk_size=1024 * 1024, delay=0.005) as server:
        provider = await connected(server)
        plan = make_plan(tmp_path)
        with Journal(tmp_path / "j", plan) as journal:
            with anyio.move_on_after(0.6):
                await run_plan(plan, journal, provider, concurrency=2)
            counts = journal.counts()
            assert 0 < counts[JobState.DONE] < 10, counts
            assert counts[JobState.CANCELLED] >= 1
            assert counts[JobState.RUNNING] == 0
            assert list(iter_parts(tmp_path)) == []  # cancellation leaves nothing half-written
            done_before = counts[JobState.DONE]
            summary = await run_plan(plan, journal, provider, concurrency=2)
        assert summary.ok
        assert summary.exported_now == 10 - done_before
        with Journal(tmp_path / "j") as journal:
            assert_exported(server, journal, tmp_path)
        await provider.disconnect()


async def test_transient_errors_are_retried_and_others_are_not(tmp_path: Path) -> None:
    with FleetServer(3) as server:
        server.faults = {"vm-0000": [503, 503], "vm-0001": [401], "vm-0002": [503] * 50}
        provider = await connected(server)
        plan = make_plan(tmp_path)
        with Journal(tmp_path / "j", plan) as journal:
            summary = await run_plan(plan, journal, provider, max_attempts=3, backoff=0)
            first, second, third = journal.jobs()
        assert not summary.ok
        assert summary.done == 1
        assert summary.failed == 2
        assert first.state is JobState.DONE
        assert first.attempts >= 1
        assert second.state is JobState.FAILED
        assert second.attempts == 1
        assert second.error_family == "AuthenticationError"
        assert third.state is JobState.FAILED
        assert third.attempts == 3
        assert third.error_family == "ProviderUnavailableError"
        assert list(iter_parts(tmp_path)) == []
        await provider.disconnect()


async def test_requeue_failed_then_run_again(tmp_path: Path) -> None:
    with FleetServer(2) as server:
        server.faults = {"vm-0001": [401]}
        provider = await connected(server)
        plan = make_plan(tmp_path)
        with Journal(tmp_path / "j", plan) as journal:
            assert not (await run_plan(plan, journal, provider)).ok
            assert journal.requeue(JobState.FAILED) == 1
            assert (await run_plan(plan, journal, provider)).ok
        await provider.disconnect()


async def test_plan_by_ids_and_by_filter(tmp_path: Path) -> None:
    with FleetServer(5) as server:
        provider = await connected(server)
        by_ids = make_plan(tmp_path / "a", vm_ids=("vm-0003", "vm-0001"))
        with Journal(tmp_path / "a.j", by_ids) as journal:
            assert (await run_plan(by_ids, journal, provider)).total == 2
            assert [job.vm_id for job in journal.jobs()] == ["vm-0003", "vm-0001"]
        by_filter = make_plan(tmp_path / "b", filter=VMFilter(name_pattern="web-[12]"))
        with Journal(tmp_path / "b.j", by_filter) as journal:
            await run_plan(by_filter, journal, provider)
            assert [job.vm_name for job in journal.jobs()] == ["web-1", "web-2"]
        missing = make_plan(tmp_path / "c", vm_ids=("nope",))
        with Journal(tmp_path / "c.j", missing) as journal, pytest.raises(hypersdk.VMNotFoundError):
            await run_plan(missing, journal, provider)
        await provider.disconnect()


async def test_bad_arguments_are_refused_by_name(tmp_path: Path) -> None:
    with FleetServer(1) as server:
        provider = await connected(server)
        plan = make_plan(tmp_path)
        other = make_plan(tmp_path, vm_ids=("x",))
        with Journal(tmp_path / "j", plan) as journal:
            for kwargs, name in (
                ({"concurrency": 0}, "concurrency"),
                ({"concurrency": 2**100}, "concurrency"),
                ({"max_attempts": True}, "max_attempts"),
                ({"backoff": float("nan")}, "backoff"),
                ({"progress": 5}, "progress"),
            ):
                with pytest.raises(hypersdk.ConfigurationError, match=name):
                    await run_plan(plan, journal, provider, **kwargs)
            with pytest.raises(hypersdk.ConfigurationError, match="journal"):
                await run_plan(other, journal, provider)
            with pytest.raises(hypersdk.ConfigurationError, match="provider"):
                await run_plan(plan, journal, object())  # type: ignore[arg-type]
        await provider.disconnect()


def test_plan_refuses_secrets_and_ambiguity(tmp_path: Path) -> None:
    options = ExportOptions(output_path=tmp_path, format="raw", metadata={"api_token": "s3cr3t"})
    with pytest.raises(hypersdk.ConfigurationError, match="credential") as caught:
        ExportPlan(provider_type=PROVIDER_TYPE, options=options)
    assert "s3cr3t" not in str(caught.value)
    with pytest.raises(hypersdk.ConfigurationError, match="not both"):
        make_plan(tmp_path, vm_ids=("a",), filter=VMFilter())
    with pytest.raises(hypersdk.ConfigurationError, match="distinct"):
        make_plan(tmp_path, vm_ids=("a", "a"))
    with pytest.raises(hypersdk.ConfigurationError, match="config_name"):
        make_plan(tmp_path, config_name="../etc")


def test_vm_folders_never_collide() -> None:
    ids = ["a/b", "a_b", "..", ".", "CON", "a b", "x" * 300, "x" * 301]
    folders = [vm_folder(vm_id) for vm_id in ids]
    assert len(set(folders)) == len(ids)
    assert all("/" not in folder and folder not in {".", ".."} for folder in folders)


def test_journal_never_opens_a_planted_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "j").symlink_to(victim)
    with pytest.raises(hypersdk.ConfigurationError, match="symbolic link"):
        Journal(tmp_path / "j", make_plan(tmp_path))
    assert victim.read_text() == "precious"
    (tmp_path / "k-wal").symlink_to(victim)
    with pytest.raises(hypersdk.ConfigurationError, match="symbolic link"):
        Journal(tmp_path / "k", make_plan(tmp_path))
    assert victim.read_text() == "precious"


def test_journal_file_is_private_and_holds_no_secret(tmp_path: Path) -> None:
    plan = make_plan(tmp_path)
    with Journal(tmp_path / "j", plan) as journal:
        journal.add_jobs([("1", "one")])
        journal.start("1")
        journal.fail("1", hypersdk.AuthenticationError("token rejected"))
    assert os.stat(tmp_path / "j").st_mode & 0o777 == 0o600
    with pytest.raises(hypersdk.ConfigurationError, match="different|differs"):
        Journal(tmp_path / "j", make_plan(tmp_path, vm_ids=("z",)))
    with pytest.raises(hypersdk.ConfigurationError, match="no journal"):
        Journal(tmp_path / "missing")
    (tmp_path / "junk").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(hypersdk.ConfigurationError, match="not a hypersdk journal"):
        Journal(tmp_path / "junk")


def test_a_plugin_bug_is_recorded_by_type_only(tmp_path: Path) -> None:
    with Journal(tmp_path / "j", make_plan(tmp_path)) as journal:
        journal.add_jobs([("1", "one")])
        journal.start("1")
        journal.fail("1", KeyError("Bearer s3cr3t"))
        record = journal.job("1")
    assert record.error_family == "KeyError"
    assert "s3cr3t" not in record.error_message
    rows = sqlite3.connect(tmp_path / "j").execute("SELECT * FROM jobs").fetchall()
    assert "s3cr3t" not in repr(rows)


async def test_an_export_finished_but_not_journaled_is_not_written_twice(tmp_path: Path) -> None:
    # The crash window: the file is in place but the process died before the journal said so.
    from hypersdk.jobs._runner import MARKER_NAME, export_once

    with FleetServer(2) as server:
        provider = await connected(server)
        plan = make_plan(tmp_path)
        first = await export_once(provider, plan, "vm-0000")
        with Journal(tmp_path / "j", plan) as journal:
            summary = await run_plan(plan, journal, provider)
            assert summary.ok
            assert journal.job("vm-0000").result == first
        assert provider.exports["vm-0000"] == 1
        assert len(list((tmp_path / "out" / "vm-0000").glob("*.raw"))) == 1
        # A marker whose file has gone (deleted, or truncated) does not count as done.
        folder = tmp_path / "out" / "vm-0001"
        next(folder.glob("*.raw")).write_bytes(b"short")
        await export_once(provider, plan, "vm-0001")
        assert provider.exports["vm-0001"] == 2
        assert (folder / MARKER_NAME).stat().st_mode & 0o777 == 0o600
        await provider.disconnect()
