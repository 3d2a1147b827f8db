"""The whole product in one run, with no cloud account (``nox -s demo`` runs this).

1. The SDK from Python: ``examples/quickstart.py`` registers a provider, lists, filters,
   searches and exports.
2. The command line: ``hypersdk plugins list``, ``hypersdk providers`` and
   ``hypersdk plugins validate`` on the installed DigitalOcean plugin.
3. The DigitalOcean plugin against a loopback fake of the droplets API (450 droplets,
   3 pages): ``hypersdk vms list --provider digitalocean --tag shard=3``.
4. The conformance suite on the DigitalOcean plugin, with its Markdown report.

Needs hypersdk with the ``cli`` and ``testing`` extras and ``examples/digitalocean``
installed in the running interpreter's environment.
"""

from __future__ import annotations

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

    step("1/4  The SDK from Python (examples/quickstart.py)")
    run(sys.executable, ROOT / "examples" / "quickstart.py", env=env)

    step("2/4  The hypersdk command: installed plugins and provider types")
    run(hypersdk, "plugins", "list", env=env)
    run(hypersdk, "providers", env=env)
    run(hypersdk, "plugins", "validate", "hypersdk_digitalocean", env=env)

    step("3/4  The DigitalOcean plugin against a loopback fake of its API")
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

    step("4/4  The conformance suite on the DigitalOcean plugin (offline, mocked HTTP)")
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


if __name__ == "__main__":
    main()
