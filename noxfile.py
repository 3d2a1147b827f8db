"""Developer tasks. ``nox`` alone runs the whole check (lint, typecheck, tests).

Sessions: ``demo`` (the main job), ``tests``, ``typecheck``, ``lint``, ``docs``, ``template``.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False
# Lint, types and docs first: the test run's summary is then the last thing printed.
nox.options.sessions = ["lint", "typecheck", "docs", "template", "tests"]


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite (the typing tests and both example plugins included)."""
    session.install("-e", ".[dev]", "-e", "examples/digitalocean", "-e", "examples/openstack")
    session.run("pytest", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the shipped code, the tests, the examples and the docs' code."""
    # docs/conf.py extends Sphinx: its types come with the docs extra.
    session.install("-e", ".[dev,docs]", "-e", "examples/digitalocean", "-e", "examples/openstack")
    session.run("mypy", "src", "tests", "examples", "benchmarks", "docs", "templates/plugin/hooks")


@nox.session
def template(session: nox.Session) -> None:
    """Each plugin-template variant, rendered from the wheel, is green in a fresh venv."""
    # hatchling: the wheels are built offline, without build isolation.
    session.install("-e", ".[dev]", "hatchling")
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "tests/template/test_rendered_project.py",
        *session.posargs,
        env={"HYPERSDK_TEMPLATE_VENV": "1"},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx site into docs/_build/html; warnings are errors."""
    # The conformance page documents hypersdk_testing, which imports pytest and Hypothesis.
    session.install("-e", ".[docs,testing,celery]")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: the SDK, the CLI, the DigitalOcean and OpenStack plugins, conformance."""
    session.install(
        "-e", ".[cli,testing]", "-e", "examples/digitalocean", "-e", "examples/openstack"
    )
    session.run("python", "examples/demo.py", *session.posargs)
