"""Rendering the plugin template: helpers shared by the fast tests and the venv tests.

``render`` renders the template from this checkout with ``hypersdk new-plugin``'s own
code (``render_plugin``), into the test's temporary directory, with cookiecutter's user
configuration pointed into that directory too (no replay files in the real home).

The tests marked ``template_venv`` build a fresh virtual environment per variant and run
the rendered project's own checks in it. They take about a minute per variant, so they run
in ``nox -s template`` (part of the default nox run, so CI runs them), or when
``HYPERSDK_TEMPLATE_VENV=1`` is set; plain ``pytest`` skips them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from hypersdk.cli._new_plugin import render_plugin

VENV_ENV = "HYPERSDK_TEMPLATE_VENV"

Render = Callable[..., Path]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "template_venv: renders the template into a fresh venv (nox -s template)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get(VENV_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"slow: runs in `nox -s template` (or with {VENV_ENV}=1)")
    for item in items:
        if "template_venv" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def cookiecutter_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cookiecutter's user configuration, inside the test's directory."""
    home = tmp_path / "cookiecutter-home"
    home.mkdir()
    config = home / "config.yaml"
    config.write_text(
        f"replay_dir: {home / 'replay'}\ncookiecutters_dir: {home / 'cookiecutters'}\n"
    )
    monkeypatch.setenv("COOKIECUTTER_CONFIG", str(config))
    return home


@pytest.fixture
def render(tmp_path: Path, cookiecutter_home: Path) -> Render:
    """Render the template with some answers; return the project directory."""
    del cookiecutter_home

    def run(answers: Mapping[str, object] | None = None, *, into: Path | None = None) -> Path:
        output = into or tmp_path / "out"
        return render_plugin(
            {"plugin_name": "Acme Cloud", **(answers or {})}, output_dir=output, no_input=True
        )

    return run
