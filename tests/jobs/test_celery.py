"""The Celery path for real: a Redis server, two worker processes, one killed mid-export.

Needs ``redis-server`` on PATH (``.ci/run`` installs Debian's package when it is missing)
and the ``celery`` extra; the test says which is missing and skips otherwise.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hypersdk import ExportOptions
from hypersdk.jobs import ExportPlan, JobState, Journal

from .fleet import PROVIDER_TYPE, FleetServer, iter_parts

celery = pytest.importorskip("celery", reason="the celery extra is not installed")

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    server = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"redis-server did not start on 127.0.0.1:{port}")
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def start_worker(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "hypersdk.jobs.celery",
                "worker",
                "--concurrency",
                "1",
                "--prefetch-multiplier",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{name}@%h",
                "--loglevel",
                "INFO",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_a_killed_worker_loses_nothing_and_writes_nothing_twice(
    tmp_path: Path, redis_url: str
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    shutil.copy(HERE / "fleet_plugin.py", plugins / "fleet_plugin.py")
    (plugins / "fleet_plugin.py").chmod(0o644)
    with FleetServer(6, disk_size=4 << 20, delay=0.012) as server:  # ~0.8 s per VM
        config = tmp_path / "config.toml"
        config.write_text(
            f'[plugins]\ndirectories = ["{plugins}"]\n\n'
            f'[providers.{PROVIDER_TYPE}]\nendpoint = "{server.url}"\n',
            encoding="utf-8",
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HYPERSDK_")},
            "HYPERSDK_CONFIG": str(config),
            "HYPERSDK_CELERY_BROKER": redis_url,
            "HYPERSDK_CELERY_VISIBILITY_TIMEOUT": "2",
        }
        # The first worker starts alone, so the one killed is surely mid-export; the
        # second starts after the kill and must finish the plan, the lost job included.
        workers = [start_worker("w1", env, tmp_path / "w1.log")]
        try:
            from hypersdk.jobs.celery import create_app, submit_plan

            app = create_app(redis_url, visibility_timeout=2)
            plan = ExportPlan(
                provider_type=PROVIDER_TYPE,
                options=ExportOptions(output_path=tmp_path / "out", format="raw"),
            )

            def kill_the_first_mid_export_then_start_another() -> None:
                deadline = time.monotonic() + 60
                while server.in_flight < 1 and time.monotonic() < deadline:
                    time.sleep(0.02)
                time.sleep(0.45)  # half way through its first export
                os.killpg(workers[0].pid, signal.SIGKILL)
                workers.append(start_worker("w2", env, tmp_path / "w2.log"))

            killer = threading.Thread(
                target=kill_the_first_mid_export_then_start_another, daemon=True
            )
            killer.start()
            with Journal(tmp_path / "plan.journal", plan) as journal:
                summary = submit_plan(plan, journal, app, poll_interval=0.1, timeout=120)
                killer.join(timeout=5)
                assert workers[0].poll() is not None, "the first worker was not killed"
                assert summary.ok, (summary, journal.jobs(), (tmp_path / "w2.log").read_text())
                jobs = journal.jobs()
            assert [job.state for job in jobs] == [JobState.DONE] * 6
            for vm in server.vms:
                files = list((tmp_path / "out" / vm["id"]).glob("*.raw"))
                assert len(files) == 1, files  # no duplicates
                assert hashlib.sha256(files[0].read_bytes()).hexdigest() == server.sha256(vm["id"])
            assert list(iter_parts(tmp_path / "out")) == []
            # The killed worker's job was redelivered to the other one, which resumed its part.
            assert server.requested.total() == 7, server.requested
            assert server.ranged.total() == 1, server.ranged
        finally:
            for worker in workers:
                if worker.poll() is None:
                    os.killpg(worker.pid, signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
