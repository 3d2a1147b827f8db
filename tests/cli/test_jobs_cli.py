"""``hypersdk export --all`` and ``hypersdk jobs``: the real console script in a subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from .conftest import DISK, CliEnv, hypersdk_script


def exported_files(output: Path) -> list[Path]:
    return sorted(path for path in output.rglob("*.raw") if path.is_file())


def leftovers(output: Path) -> list[Path]:
    return [path for path in output.rglob("*") if path.name.endswith((".part", ".download"))]


def test_export_all_exports_each_vm_into_its_own_folder(cli_env: CliEnv) -> None:
    out = cli_env.root / "fleet"
    done = cli_env.run(
        "export",
        "--all",
        "--provider",
        "clisample",
        "--output",
        str(out),
        "--format",
        "raw",
        "--jobs",
        "2",
    )
    assert done.returncode == 0, done.stderr
    assert "3/3 exported" in done.stderr
    files = exported_files(out)
    assert [path.parent.name for path in files] == ["1", "2", "3"]
    assert all(path.read_bytes() == DISK for path in files)
    status = cli_env.run("jobs", "status", str(out / "hypersdk-plan.journal"), "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["counts"]["done"] == 3
    assert {job["state"] for job in report["jobs"]} == {"done"}
    assert cli_env.env["CLISAMPLE_TOKEN"] not in status.stdout
    assert cli_env.env["CLISAMPLE_TOKEN"] not in (
        out / "hypersdk-plan.journal"
    ).read_bytes().decode("latin-1")
    again = cli_env.run(
        "export", "--all", "--provider", "clisample", "--output", str(out), "--format", "raw"
    )
    assert again.returncode == 0, again.stderr
    assert "0 in this run" in again.stderr
    assert len(exported_files(out)) == 3


def test_filters_select_the_plan_and_failures_set_the_exit_code(cli_env: CliEnv) -> None:
    out = cli_env.root / "prod"
    done = cli_env.run(
        "export",
        "--all",
        "--tag",
        "env=prod",
        "--provider",
        "clisample",
        "--output",
        str(out),
        "--format",
        "raw",
        "--journal",
        str(cli_env.root / "p.j"),
    )
    assert done.returncode == 0, done.stderr
    assert [path.parent.name for path in exported_files(out)] == ["1", "2"]
    bad = cli_env.run(
        "export",
        "--all",
        "--provider",
        "clisample",
        "--output",
        str(cli_env.root / "qcow"),
        "--format",
        "qcow2",
    )
    assert bad.returncode == 13, bad.stderr
    status = cli_env.run(
        "jobs", "status", str(cli_env.root / "qcow" / "hypersdk-plan.journal"), "--json"
    )
    assert status.returncode == 13
    families = {job["error_family"] for job in json.loads(status.stdout)["jobs"]}
    assert families == {"UnsupportedFormatError"}
    retry = cli_env.run("jobs", "retry", str(cli_env.root / "qcow" / "hypersdk-plan.journal"))
    assert retry.returncode == 3
    assert "--failed" in retry.stderr


def test_usage_errors_name_the_option(cli_env: CliEnv) -> None:
    both = cli_env.run(
        "export", "1", "--all", "--provider", "clisample", "--output", "o", "--format", "raw"
    )
    assert both.returncode == 3
    assert "not both" in both.stderr
    neither = cli_env.run("export", "--provider", "clisample", "--output", "o", "--format", "raw")
    assert neither.returncode == 3
    assert "--all" in neither.stderr
    zero = cli_env.run(
        "export",
        "--all",
        "--jobs",
        "0",
        "--provider",
        "clisample",
        "--output",
        "o",
        "--format",
        "raw",
    )
    assert zero.returncode == 3
    assert "concurrency" in zero.stderr
    missing = cli_env.run("jobs", "status", str(cli_env.root / "nope.journal"))
    assert missing.returncode == 3
    assert "no journal" in missing.stderr


def test_ctrl_c_in_the_middle_then_resume_exports_each_vm_once(cli_env: CliEnv) -> None:
    cli_env.handler.delay = 0.04  # ~0.7 s per VM, one at a time
    out = cli_env.root / "fleet"
    journal = out / "hypersdk-plan.journal"
    process = subprocess.Popen(
        [
            str(hypersdk_script()),
            "export",
            "--all",
            "--provider",
            "clisample",
            "--output",
            str(out),
            "--format",
            "raw",
            "--jobs",
            "1",
        ],
        env=cli_env.env,
        cwd=cli_env.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while len(exported_files(out)) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the second VM is half way
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert leftovers(out) == []
    interrupted = json.loads(cli_env.run("jobs", "status", str(journal), "--json").stdout)
    assert 1 <= interrupted["counts"]["done"] < 3
    assert interrupted["counts"]["cancelled"] == 1
    cli_env.handler.delay = 0.0
    resumed = cli_env.run("jobs", "resume", str(journal))
    assert resumed.returncode == 0, resumed.stderr
    files = exported_files(out)
    assert [path.parent.name for path in files] == ["1", "2", "3"]  # each exactly once
    assert all(path.read_bytes() == DISK for path in files)
    assert leftovers(out) == []
