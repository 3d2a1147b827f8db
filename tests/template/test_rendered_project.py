"""Every variant, rendered by `hypersdk new-plugin` from the wheel, is green in a fresh venv.

For each variant: build this hypersdk's wheel, create a fresh virtual environment, install
the wheel, run *its* ``hypersdk new-plugin`` (so the template comes from the wheel, not this
checkout), install the rendered project, then run the project's own checks there: its
tests (the whole conformance suite, every check passing), ``mypy`` (strict, from its
pyproject), ``ruff check`` and ``ruff format --check``; finally ``hypersdk plugins list``
must show the plugin loaded through its entry point.

Speed: the venv is created without pip and sees the current environment's site-packages
through a ``.pth`` line, so third-party dependencies (httpx, pytest, mypy, hatchling...)
are not downloaded again; hypersdk and the plugin themselves are installed into the new
venv with ``--no-deps --no-index`` (no network), and shadow anything of the same name
outside it. ``pip check`` then proves the declared requirements (hypersdk's range) hold.
Slow (about a minute a variant): run by ``nox -s template``, or with HYPERSDK_TEMPLATE_VENV=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from pathlib import Path

import pytest

from hypersdk_testing import CONTRACT

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.template_venv

VARIANTS = {
    "async-httpx": {"plugin": "Acme Cloud", "type": "acmecloud", "package": "hypersdk_acmecloud"},
    "blocking-requests": {
        "plugin": "Bolt Cloud",
        "type": "boltcloud",
        "package": "hypersdk_boltcloud",
    },
}


def run(
    command: list[str | Path], *, cwd: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def hypersdk_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout built as a wheel (offline: hatchling comes from this environment)."""
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index"]
    ok(run([*pip, "--no-build-isolation", "-w", out, ROOT], cwd=out, env=dict(os.environ)))
    (wheel,) = out.glob("hypersdk-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    shipped = [name for name in names if name.startswith("hypersdk/_templates/plugin/")]
    tracked = ok(run(["git", "ls-files", "templates/plugin"], cwd=ROOT, env=dict(os.environ)))
    assert len(shipped) == len(tracked.split()), "the wheel must carry the template, exactly"
    assert not [name for name in names if "__pycache__" in name]
    return wheel


def fresh_venv(path: Path) -> Path:
    """A new venv that also sees this environment's packages; returns its python."""
    venv.EnvBuilder(with_pip=False, clear=True, symlinks=os.name != "nt").create(path)
    python = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = ok(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=False,
        )
    ).strip()
    # Appended after the venv's own site-packages: what is installed here wins.
    (Path(site) / "_outer_site.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def isolated_env(tmp: Path, bin_dir: Path) -> dict[str, str]:
    """The environment the rendered project's checks see: no user plugins or settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "HYPERSDK_PLUGIN_PATH", "HYPERSDK_CONFIG")
    }
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    (home / "cookiecutter.yaml").write_text(
        f"replay_dir: {home / 'replay'}\ncookiecutters_dir: {home / 'cc'}\n"
    )
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        COOKIECUTTER_CONFIG=str(home / "cookiecutter.yaml"),
        PATH=os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env["PATH"]]),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_rendered_project_is_green_in_a_fresh_venv(
    variant: str, hypersdk_wheel: Path, tmp_path: Path
) -> None:
    names = VARIANTS[variant]
    python = fresh_venv(tmp_path / "venv")
    bin_dir = python.parent
    env = isolated_env(tmp_path, bin_dir)
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", python, "install", "-q"]
    pip += ["--no-deps", "--no-index", "--no-build-isolation"]
    ok(run([*pip, hypersdk_wheel], cwd=tmp_path, env=env))

    # The command and the template both come from the wheel just installed.
    where = ok(
        run(
            [
                python,
                "-c",
                "from hypersdk.cli._new_plugin import template_dir; print(template_dir())",
            ],
            cwd=tmp_path,
            env=env,
        )
    )
    assert Path(where.strip()).is_relative_to(tmp_path / "venv"), where

    started = time.monotonic()
    new_plugin: list[str | Path] = [bin_dir / "hypersdk", "new-plugin", names["plugin"]]
    new_plugin.append("--no-input")
    ok(
        run(
            [*new_plugin, "--variant", variant, "--output-dir", tmp_path / "projects"],
            cwd=tmp_path,
            env=env,
        )
    )
    project = tmp_path / "projects" / f"hypersdk-{names['type']}"
    ok(run([*pip, project], cwd=tmp_path, env=env))
    tests = ok(run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, env=env))
    green = time.monotonic() - started
    summary = tests.strip().splitlines()[-1]
    assert f"{len(CONTRACT)} passed" in summary, tests
    assert "skipped" not in summary, tests
    assert "warning" not in summary, tests
    print(f"\n{variant}: new-plugin -> green conformance run in {green:.1f} s ({summary})")

    ok(run([python, "-m", "mypy"], cwd=project, env=env))
    ruff = Path(sys.executable).parent / "ruff"
    ok(run([ruff, "check", "--no-cache", "."], cwd=project, env=env))
    ok(run([ruff, "format", "--check", "--no-cache", "."], cwd=project, env=env))

    listed = json.loads(
        ok(run([bin_dir / "hypersdk", "plugins", "list", "--json"], cwd=tmp_path, env=env))
    )
    ours = [
        item for item in listed if (item["metadata"] or {}).get("provider_type") == names["type"]
    ]
    assert len(ours) == 1, listed
    assert ours[0]["status"] == "loaded", ours
    assert ours[0]["source"] == names["package"] or names["package"] in ours[0]["source"], ours
    assert ours[0]["kind"] == "entry_point", ours

    # The rendered requirements (hypersdk's range among them) hold in this environment.
    checked = run([python, "-m", "pip", "check"], cwd=tmp_path, env=env)
    ours_broken = [
        line for line in checked.stdout.splitlines() if f"hypersdk-{names['type']}" in line
    ]
    assert not ours_broken, checked.stdout
