"""Attacks on ``hypersdk.jobs``: a hostile neighbour in the journal's folder, a lying provider.

Planting another user's file needs root to ``lchown`` it to a uid that owns nothing (CI
runs as root); those tests are skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import unicodedata
from pathlib import Path
from typing import Any

import anyio
import pytest

import hypersdk
from hypersdk import ExportOptions, ExportResult, VMInfo
from hypersdk.jobs import ExportPlan, JobState, Journal, run_plan, vm_folder
from hypersdk.jobs._plan import check_distinct_folders
from hypersdk.providers import Provider
from hypersdk.serialization import to_json

OTHER_UID = 54321
needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="planting another user's file needs root to chown it (CI runs as root)",
)


def plan_for(root: Path | str, *, vm_ids: tuple[str, ...] = ("a",)) -> ExportPlan:
    return ExportPlan(
        provider_type="liar",
        options=ExportOptions(output_path=root, format="raw"),
        vm_ids=vm_ids,
    )


# -- the journal's folder ------------------------------------------------------------------


@needs_root
def test_a_planted_wal_cannot_swap_the_plan(tmp_path: Path) -> None:
    # Another user plants a valid WAL, taken from a copy of our journal whose plan exports
    # into /etc: SQLite would replay it on open and the journal would read the other plan.
    with Journal(tmp_path / "v.journal", plan_for(tmp_path / "mine")):
        pass
    shutil.copy(tmp_path / "v.journal", tmp_path / "x.journal")
    db = sqlite3.connect(tmp_path / "x.journal")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("UPDATE meta SET value=? WHERE key='plan'", (to_json(plan_for("/etc/evil")),))
    db.commit()
    planted = Path(f"{tmp_path / 'v.journal'}-wal")
    shutil.copy(f"{tmp_path / 'x.journal'}-wal", planted)
    db.close()
    os.lchown(planted, OTHER_UID, OTHER_UID)
    with pytest.raises(hypersdk.ConfigurationError, match="-wal.*not a regular file of this user"):
        Journal(tmp_path / "v.journal")
    assert planted.stat().st_uid == OTHER_UID  # left alone, not "fixed" by deleting it


@needs_root
@pytest.mark.parametrize("side", ["-wal", "-shm", "-journal"])
def test_side_files_of_another_user_are_refused(tmp_path: Path, side: str) -> None:
    planted = Path(f"{tmp_path / 'j'}{side}")
    planted.write_bytes(b"")
    os.lchown(planted, OTHER_UID, OTHER_UID)
    with pytest.raises(hypersdk.ConfigurationError, match=f"{side}.*not a regular file"):
        Journal(tmp_path / "j", plan_for(tmp_path / "out"))


def test_side_files_are_ours_and_private_before_sqlite_opens_them(tmp_path: Path) -> None:
    # Created exclusively by us, so a neighbour in a sticky folder cannot slip one in
    # between the check and SQLite's own open.
    with Journal(tmp_path / "j", plan_for(tmp_path / "out")) as journal:
        journal.add_jobs([("a", "A")])
        for side in ("-wal", "-shm"):
            info = os.lstat(f"{tmp_path / 'j'}{side}")
            assert info.st_uid == os.geteuid()
            assert info.st_mode & 0o777 == 0o600


def test_a_hard_link_at_the_journal_name_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"")
    os.link(victim, tmp_path / "j")
    with pytest.raises(hypersdk.ConfigurationError, match="not a regular file"):
        Journal(tmp_path / "j", plan_for(tmp_path / "out"))
    assert victim.read_bytes() == b""


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE jobs SET state = 'bogus'",
        "UPDATE jobs SET created_at = 'yesterday'",
        "UPDATE jobs SET attempts = 'many'",
        "UPDATE jobs SET started_at = 'soon'",
        "UPDATE jobs SET result = '{\"vm_id\": 1}'",
    ],
)
def test_a_damaged_journal_is_a_configuration_error(tmp_path: Path, damage: str) -> None:
    with Journal(tmp_path / "j", plan_for(tmp_path / "out")) as journal:
        journal.add_jobs([("a", "A")])
    db = sqlite3.connect(tmp_path / "j")
    db.execute(damage)
    db.commit()
    db.close()
    with Journal(tmp_path / "j") as journal:
        for read in (journal.jobs, lambda: journal.job("a"), journal.counts):
            try:
                read()
            except hypersdk.ConfigurationError as exc:
                assert "damaged" in str(exc)


# -- per-VM folders ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pair",
    [
        ("Web", "web"),
        ("ǅ", "ǆ"),  # titlecase and lowercase dz
        ("K", "\u212a"),  # KELVIN SIGN folds to k
        ("STRASSE", "straße"),
        (unicodedata.normalize("NFC", "é"), unicodedata.normalize("NFD", "é")),
    ],
)
def test_ids_differing_by_case_or_normal_form_never_share_a_folder(pair: tuple[str, str]) -> None:
    # macOS and Windows file systems fold case (and APFS Unicode normal forms): two
    # VMs whose folders differ only so would be exported into one folder there.
    folders = [vm_folder(vm_id) for vm_id in pair]
    keys = {unicodedata.normalize("NFC", folder).casefold() for folder in folders}
    assert len(keys) == 2, folders
    check_distinct_folders(pair)


def test_an_id_crafted_to_equal_another_folder_is_refused() -> None:
    crafted = vm_folder("Web").lower()
    with pytest.raises(hypersdk.ConfigurationError, match="would share"):
        check_distinct_folders(["Web", crafted])


# -- a lying provider ----------------------------------------------------------------------


class Liar(Provider):
    """Answers whatever ``mode`` says, as a buggy or hostile plugin would."""

    def __init__(self, mode: str, tmp: Path | None = None) -> None:
        self.mode = mode
        self.tmp = tmp

    @property
    def name(self) -> str:
        return "liar"

    @property
    def type(self) -> hypersdk.ProviderType:
        return hypersdk.ProviderType("liar")

    async def connect(self, config: hypersdk.ProviderConfig) -> None:
        return None

    async def disconnect(self) -> None:
        return None

    async def validate_credentials(self) -> None:
        return None

    async def list_vms(self, filter: hypersdk.VMFilter | None = None) -> list[VMInfo]:
        answers: dict[str, Any] = {
            "dicts": [{"id": "x"}],
            "none": None,
            "text": "abc",
            "raise": KeyError("token=s3cr3t"),
        }
        answer = answers.get(self.mode, [VMInfo(id="a", name="A", provider="liar")])
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[no-any-return]

    async def get_vm(self, identifier: str) -> VMInfo:
        if self.mode == "other-id":
            return VMInfo(id="someone-else", name="Z", provider="liar")
        if self.mode == "raise":
            raise KeyError("token=s3cr3t")
        if self.mode in ("dicts", "none", "text"):
            return {"id": identifier}  # type: ignore[return-value]
        return VMInfo(id=identifier, name="A", provider="liar")

    async def export_vm(
        self,
        vm_id: str,
        options: ExportOptions,
        progress: hypersdk.ProgressReporter | None = None,
    ) -> ExportResult:
        assert self.tmp is not None
        (options.output_path / "disk.raw").write_bytes(b"x")
        if self.mode == "wrong-result":
            return "done"  # type: ignore[return-value]
        return ExportResult(
            provider="liar",
            vm_name="Z",
            vm_id="someone-else" if self.mode == "result-of-another-vm" else vm_id,
            format="raw",
            output_path=options.output_path,
            files=("disk.raw",),
            size=1,
        )

    def get_export_capabilities(self) -> hypersdk.ExportCapabilities:
        return hypersdk.ExportCapabilities(supported_formats=("raw",))


@pytest.mark.parametrize("mode", ["dicts", "none", "text", "raise", "other-id"])
@pytest.mark.parametrize("by_ids", [True, False])
def test_a_lying_provider_fails_the_plan_with_a_hypersdk_error(
    tmp_path: Path, mode: str, by_ids: bool
) -> None:
    plan = plan_for(tmp_path / "out", vm_ids=("a",) if by_ids else ())
    with Journal(tmp_path / "j", plan) as journal:
        if mode == "other-id" and not by_ids:
            return  # listing may return any id: that is what a filter plan asks for
        with pytest.raises(hypersdk.HyperSDKError) as caught:
            anyio.run(run_plan, plan, journal, Liar(mode, tmp_path))
        assert "s3cr3t" not in str(caught.value)
        assert journal.jobs() == []  # nothing recorded when the plan cannot be resolved


@pytest.mark.parametrize("mode", ["wrong-result", "result-of-another-vm"])
def test_an_export_that_answers_wrongly_fails_its_job(tmp_path: Path, mode: str) -> None:
    plan = plan_for(tmp_path / "out")
    with Journal(tmp_path / "j", plan) as journal:
        summary = anyio.run(run_plan, plan, journal, Liar(mode, tmp_path))
        assert summary.failed == 1
        (job,) = journal.jobs()
        assert job.state is JobState.FAILED
        assert "export_vm" in job.error_message, job.error_message
    # No marker: a second run must not take the wrong answer for a finished export.
    assert not (tmp_path / "out" / "a" / ".hypersdk-export.json").exists()


# -- a forged Celery message ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("vm_ids", "vm_id", "reason"),
    [
        (("a",), "b", "not one of the plan's VMs"),
        (("a",), "../../etc", "not one of the plan's VMs"),
        (("a",), ["a"], "must be a string"),
        ((), "not-matching", "does not match the plan's filter"),
    ],
)
def test_a_worker_refuses_a_forged_task_for_a_vm_outside_the_plan(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    vm_ids: tuple[str, ...],
    vm_id: Any,
    reason: str,
) -> None:
    pytest.importorskip("celery", reason="the celery extra is not installed")
    from hypersdk.jobs import celery as jobs_celery

    plan = ExportPlan(
        provider_type="liar",
        options=ExportOptions(output_path=tmp_path / "out", format="raw"),
        vm_ids=vm_ids,
        filter=None if vm_ids else hypersdk.VMFilter(name_pattern="only-this"),
    )

    def connected_run(_plan: ExportPlan, work: Any) -> Any:
        return anyio.run(work, Liar("ok", tmp_path))

    monkeypatch.setattr(jobs_celery, "_connected_run", connected_run)
    answer = jobs_celery._export_task(to_json(plan), vm_id)
    assert answer["ok"] is False
    assert answer["family"] == "ConfigurationError"
    assert reason in answer["message"]
    assert not (tmp_path / "out").exists()  # nothing written anywhere


def test_a_garbled_resolve_answer_is_a_hypersdk_error(tmp_path: Path) -> None:
    pytest.importorskip("celery", reason="the celery extra is not installed")
    from hypersdk.jobs.celery import _resolved

    for answer in (None, "abc", [["a"]], [[1, "x"]], [["a", "A"], {"id": "b"}]):
        with pytest.raises(hypersdk.ProviderAPIError, match="not a list of VMs"):
            _resolved(answer)
    assert _resolved([["a", "A"]]) == [("a", "A")]


@pytest.mark.parametrize(
    ("root", "exported"),
    [
        ("allowed/fleet", True),
        ("allowed", True),
        ("elsewhere", False),
        ("allowed/../elsewhere", False),
        ("allowed-but-not/fleet", False),  # a prefix of the name is not the folder
        ("link-out/fleet", False),  # a link inside the allowed folder pointing outside
    ],
)
def test_a_worker_writes_only_below_its_export_roots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root: str, exported: bool
) -> None:
    pytest.importorskip("celery", reason="the celery extra is not installed")
    from hypersdk.jobs import celery as jobs_celery

    (tmp_path / "allowed").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "allowed" / "link-out").symlink_to(tmp_path / "elsewhere")
    target = tmp_path / ("allowed/" + root if root.startswith("link-out") else root)
    plan = ExportPlan(
        provider_type="liar",
        options=ExportOptions(output_path=target, format="raw"),
        vm_ids=("ok",),
    )
    calls: list[str] = []

    def connected_run(_plan: ExportPlan, work: Any) -> Any:
        calls.append("connected")
        return anyio.run(work, Liar("ok", tmp_path))

    monkeypatch.setattr(jobs_celery, "_connected_run", connected_run)
    monkeypatch.setenv(jobs_celery.EXPORT_ROOTS_VAR, str(tmp_path / "allowed"))
    answer = jobs_celery._export_task(to_json(plan), "ok")
    if exported:
        assert calls == ["connected"]
    else:
        assert answer["ok"] is False
        assert answer["family"] == "ConfigurationError"
        assert jobs_celery.EXPORT_ROOTS_VAR in answer["message"]
        assert calls == []  # refused before connecting or writing anything
        assert not (tmp_path / "elsewhere" / "fleet").exists()
