"""Run the code on the documentation pages as tests, so a page whose example breaks fails CI.

Sybil collects every ``python`` code block of the MyST pages; the blocks of one page share
one namespace and run in order, from a fresh temporary directory with ``HOME`` pointing into
it (a page that writes files or lists plugin directories touches nothing of yours). A block
that cannot run here (a shell session, a fragment of a class) is marked on the page with
``% skip: next "the reason"`` just above it. Hidden set-up code (an
``invisible-code-block``) registers what must be undone, such as an active respx mock, on
the page's ``cleanup`` :class:`contextlib.ExitStack`, which is closed even when a block fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sybil import Sybil
from sybil.parsers.myst import PythonCodeBlockParser, SkipParser

# Directory plugins must not come from the developer's own ~/.hypersdk or environment.
_ENV = ("HOME", "HYPERSDK_PLUGIN_PATH", "HYPERSDK_CONFIG", "XDG_CONFIG_HOME")


def _setup(namespace: dict[str, Any]) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="hypersdk-docs-"))
    (workdir / "home").mkdir()
    namespace["__saved__"] = (Path.cwd(), {name: os.environ.get(name) for name in _ENV})
    namespace["__workdir__"] = workdir
    namespace["cleanup"] = contextlib.ExitStack()
    for name in _ENV:
        os.environ.pop(name, None)
    os.environ["HOME"] = str(workdir / "home")
    os.chdir(workdir)


def _teardown(namespace: dict[str, Any]) -> None:
    namespace["cleanup"].close()
    cwd, env = namespace["__saved__"]
    os.chdir(cwd)
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(namespace["__workdir__"], ignore_errors=True)


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["*.md"],
    excludes=["_build/*"],
    setup=_setup,
    teardown=_teardown,
    name="docs",
).pytest()
