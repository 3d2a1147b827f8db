"""The whole product in one run, with no cloud account (``nox -s demo`` runs this).

1. The SDK from Python: ``examples/quickstart.py`` registers a provider, lists, filters,
   searches and exports.
2. The command line: ``hypersdk plugins list``, ``hypersdk providers`` and
   ``hypersdk plugins validate`` on the installed DigitalOcean plugin.
3. The DigitalOcean plugin against a loopback fake of the droplets API (450 droplets,
   3 pages): ``hypersdk vms list --provider digitalocean --tag shard=3``.
4. The conformance suite on the DigitalOcean plugin, with its Markdown report.
5. The OpenStack plugin exports a server from a loopback fake of Keystone, Nova and
   Glance: a 64 MiB image really downloaded, with progress, verified (SHA-256 and Glance's
   sha512), the file on disk, the temporary snapshot image deleted.
6. A fleet: ``hypersdk export --all`` exports 12 VMs of a loopback fleet as one plan, 4 at
   a time, with the live view; ``hypersdk jobs status`` reads the journal.

Needs hypersdk with the ``cli`` and ``testing`` extras, ``examples/digitalocean`` and
``examples/openstack`` installed in the running interpreter's environment.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOKEN = "dop_v1_benchmark-token"  # what benchmarks/bench_digitalocean.py's fake accepts


def step(title: str) -> None:
    print(f"\n{'=' * 88}\n{title}\n{'=' * 88}", flush=True)


def run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    print(f"$ {' '.join(str(arg) for arg in args)}", flush=True)
    subprocess.run([str(arg) for arg in args], check=True, env=env, cwd=ROOT)


def main() -> None:
    env = {**os.environ, "COLUMNS": os.environ.get("COLUMNS", "160")}
    hypersdk = BIN / "hypersdk"

    step("1/6  The SDK from Python (examples/quickstart.py)")
    run(sys.executable, ROOT / "examples" / "quickstart.py", env=env)

    step("2/6  The hypersdk command: installed plugins and provider types")
    run(hypersdk, "plugins", "list", env=env)
    run(hypersdk, "providers", env=env)
    run(hypersdk, "plugins", "validate", "hypersdk_digitalocean", env=env)

    step("3/6  The DigitalOcean plugin against a loopback fake of its API")
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "bench_digitalocean.py"), "serve", "0", "450"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        endpoint = server.stdout.readline().strip()  # the fake prints its base URL
        with tempfile.TemporaryDirectory(prefix="hypersdk-demo-") as tmp:
            config = Path(tmp) / "config.toml"
            config.write_text(
                "[providers.digitalocean]\n"
                f'endpoint = "{endpoint}"\n'
                'token_env = "DIGITALOCEAN_TOKEN"  # secrets come from the environment\n',
                encoding="utf-8",
            )
            print(f"# {config}:\n{config.read_text(encoding='utf-8')}")
            run(
                hypersdk,
                "vms",
                "list",
                "--provider",
                "digitalocean",
                "--tag",
                "shard=3",
                "--name",
                "bench-001*",
                "--config",
                config,
                env={**env, "DIGITALOCEAN_TOKEN": TOKEN},
            )
    finally:
        server.terminate()
        server.wait(timeout=10)

    step("4/6  The conformance suite on the DigitalOcean plugin (offline, mocked HTTP)")
    with tempfile.TemporaryDirectory(prefix="hypersdk-conformance-") as tmp:
        report = Path(tmp) / "digitalocean-conformance"
        run(
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            ROOT / "examples" / "digitalocean" / "tests" / "test_digitalocean_conformance.py",
            f"--hypersdk-report={report}",
            env=env,
        )
        print(report.with_suffix(".md").read_text(encoding="utf-8"))

    step("5/6  The OpenStack plugin exports real bytes (loopback Keystone, Nova, Glance)")
    openstack_export()

    step("6/6  A fleet as one plan: hypersdk export --all, then hypersdk jobs status")
    fleet_plan(hypersdk, env)


def fleet_plan(hypersdk: Path, env: dict[str, str]) -> None:
    import shutil

    sys.path.insert(0, str(ROOT))
    from tests.jobs.fleet import FleetServer  # the jobs tests' loopback fleet

    with tempfile.TemporaryDirectory(prefix="hypersdk-fleet-") as tmp:
        plugins = Path(tmp) / "plugins"
        plugins.mkdir(mode=0o755)
        shutil.copy(ROOT / "tests" / "jobs" / "fleet_plugin.py", plugins / "fleet_plugin.py")
        (plugins / "fleet_plugin.py").chmod(0o644)
        # 12 VMs of 8 MiB, served at ~40 MiB/s each so the live view has something to show.
        with FleetServer(12, disk_size=8 << 20, delay=0.0015) as server:
            config = Path(tmp) / "config.toml"
            config.write_text(
                f'[plugins]\ndirectories = ["{plugins}"]\n\n'
                f'[providers.fleet]\nendpoint = "{server.url}"\n',
                encoding="utf-8",
            )
            out = Path(tmp) / "fleet"
            fleet_env = {**env, "HYPERSDK_CONFIG": str(config)}
            run(hypersdk, "export", "--all", "--provider", "fleet", "--output", out,
                "--format", "raw", "--jobs", "4", env=fleet_env)  # fmt: skip
            run(hypersdk, "jobs", "status", out / "hypersdk-plan.journal", env=fleet_env)


class _PrintedProgress:
    """A ProgressReporter that prints each phase change and every 25 %."""

    def __init__(self) -> None:
        self.phase, self.shown = "", -25.0

    def update(self, phase: str, percent: float, message: str) -> None:
        if phase != self.phase or percent >= self.shown + 25 or percent == 100:
            print(f"  [{percent:5.1f} %] {phase:<12} {message}", flush=True)
            self.phase, self.shown = phase, percent


def openstack_export() -> None:
    import anyio
    from hypersdk_openstack import OpenStackProvider

    from hypersdk import ExportOptions, ProviderConfig

    bench = ROOT / "benchmarks" / "bench_openstack.py"
    sys.path.insert(0, str(bench.parent))
    fake = importlib.import_module("bench_openstack")  # its fake cloud and test image

    with tempfile.TemporaryDirectory(prefix="hypersdk-openstack-") as tmp:
        image = Path(tmp) / "glance-store.raw"
        fake.make_image(image, 64 << 20)
        server = subprocess.Popen(
            [sys.executable, str(bench), "--serve", str(image), "sha512"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            config = ProviderConfig(
                type="openstack",
                endpoint=f"http://127.0.0.1:{port}/v3",
                username="demo",
                password="demo-password",  # noqa: S106 - the loopback fake takes any
                metadata={"project_name": "demo", "poll_interval": "0.2"},
            )
            out = Path(tmp) / "exports"
            print(f"# Keystone at {config.endpoint}; exporting server {fake.SERVER_ID} as raw")

            async def export() -> None:
                async with OpenStackProvider() as provider:
                    await provider.connect(config)
                    vm = await provider.get_vm(fake.SERVER_ID)
                    print(f"# {vm.name}: {vm.num_cpus} vCPU, {vm.memory_mb} MiB, {vm.state}")
                    result = await provider.export_vm(
                        vm.id, ExportOptions(output_path=out, format="raw"),
                        progress=_PrintedProgress(),
                    )  # fmt: skip
                main = out / result.files[0]
                print(f"\nfile      {main} ({main.stat().st_size:,} bytes on disk)")
                print(f"sha256    {result.checksum} (computed while streaming)")
                print(f"verified  {result.metadata['verified']} = Glance's os_hash_value")
                print(f"image     {result.metadata['image_id']} (deleted after the download)")
                print(f"took      {result.duration.total_seconds():.2f} s")

            anyio.run(export)
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
