"""Fleet export: one plan at --jobs N against the same VMs exported one by one.

A loopback fleet server (tests/jobs/fleet.py) serves N VMs with a disk image each; the
fleet provider is installed as a directory plugin. Timed, as whole processes:

- ``plan``: ``hypersdk export --all --provider fleet --output DIR --format raw --jobs J``
- ``loop``: ``for id in ...; do hypersdk export $id --provider fleet ...; done`` (the
  baseline: what a shell script does without the jobs layer)

Both write and verify every disk. Run from the repository root::

    python benchmarks/bench_jobs.py --vms 200 --jobs 8 --disk-kib 1024
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.jobs.fleet import FleetServer  # noqa: E402


def script() -> str:
    found = Path(sys.executable).parent / "hypersdk"
    if not found.exists():
        sys.exit("the hypersdk console script is not installed: pip install -e '.[cli]'")
    return str(found)


def verify(server: FleetServer, output: Path) -> int:
    count = 0
    for vm in server.vms:
        files = [
            p for p in output.rglob("*.raw") if p.parent.name == vm["id"] or p.stem == vm["name"]
        ]
        digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
        if server.sha256(vm["id"]) in digests:
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vms", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--disk-kib", type=int, default=1024)
    parser.add_argument("--skip-loop", action="store_true", help="time only the plan")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    try:
        plugins = work / "plugins"
        plugins.mkdir(mode=0o755)
        shutil.copy(ROOT / "tests" / "jobs" / "fleet_plugin.py", plugins / "fleet_plugin.py")
        with FleetServer(args.vms, disk_size=args.disk_kib * 1024) as server:
            config = work / "config.toml"
            config.write_text(
                f'[plugins]\ndirectories = ["{plugins}"]\n\n'
                f'[providers.fleet]\nendpoint = "{server.url}"\n'
            )
            env = {**os.environ, "HYPERSDK_CONFIG": str(config), "HOME": str(work)}
            hypersdk = script()
            out = work / "plan"
            started = time.perf_counter()
            plan = subprocess.run(
                [
                    hypersdk,
                    "export",
                    "--all",
                    "--provider",
                    "fleet",
                    "--output",
                    str(out),
                    "--format",
                    "raw",
                    "--jobs",
                    str(args.jobs),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            plan_seconds = time.perf_counter() - started
            if plan.returncode != 0:
                sys.exit(f"plan failed ({plan.returncode}): {plan.stderr[-2000:]}")
            plan_ok = verify(server, out)
            print(
                f"plan  --jobs {args.jobs}: {plan_seconds:8.2f} s  ({plan_ok}/{args.vms} verified)"
            )
            if args.skip_loop:
                return
            loop_out = work / "loop"
            started = time.perf_counter()
            for vm in server.vms:
                one = subprocess.run(
                    [
                        hypersdk,
                        "export",
                        vm["id"],
                        "--provider",
                        "fleet",
                        "--output",
                        str(loop_out),
                        "--format",
                        "raw",
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if one.returncode != 0:
                    sys.exit(f"export {vm['id']} failed: {one.stderr[-2000:]}")
            loop_seconds = time.perf_counter() - started
            loop_ok = verify(server, loop_out)
            print(f"loop  one by one: {loop_seconds:8.2f} s  ({loop_ok}/{args.vms} verified)")
            print(f"ratio plan/loop: {plan_seconds / loop_seconds:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
