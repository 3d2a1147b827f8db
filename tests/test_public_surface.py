"""The public surface: one lazy table, one public "validate this module", no private
names reached for across packages."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

import hypersdk
from hypersdk import ConfigurationError, PluginMetadata
from hypersdk.plugins import validate_module
from tests.plugins.conftest import plugin_source
from tests.plugins.test_validation import BROKEN

SRC = Path(__file__).resolve().parents[1] / "src"

# Known exceptions, each with its reason; adding one is a decision, not an accident.
_CROSSINGS_ALLOWED: set[tuple[str, str]] = set()


def test_every_lazy_name_is_what_its_module_holds() -> None:
    for name, (module_name, attribute) in hypersdk._LAZY.items():
        module = importlib.import_module(module_name)
        assert getattr(hypersdk, name) is (getattr(module, attribute) if attribute else module)
        assert name in hypersdk.__all__ or not attribute, name
        assert name in dir(hypersdk)


def test_lazy_names_stay_unloaded_until_used() -> None:
    code = (
        "import sys, hypersdk\n"
        "print(sorted(m for m in ('hypersdk.http', 'hypersdk.plugins', 'hypersdk.export')"
        " if m in sys.modules))\n"
        "hypersdk.PluginConfig\n"
        "print('hypersdk.plugins' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:2] == ["[]", "True"]


def _module(source: str) -> types.ModuleType:
    module = types.ModuleType("held_plugin_for_tests")
    exec(compile(source, "<held plugin>", "exec"), module.__dict__)
    return module


def test_validate_module_returns_the_metadata_of_a_good_module() -> None:
    metadata = validate_module(_module(plugin_source("held")))
    assert isinstance(metadata, PluginMetadata)
    assert metadata.name == "held"


# These break the module's own import (PLUGIN_INFO is built, and refused, as it runs):
# only loading, which imports, can report them.
_FAIL_AT_IMPORT = {
    "version not PEP 440",
    "empty name",
    "empty provider_type",
    "import error",
    "syntax error",
}


@pytest.mark.parametrize("case", [case for case in BROKEN if case not in _FAIL_AT_IMPORT])
def test_validate_module_fails_as_loading_does(case: str) -> None:
    source, error_type, phrases = BROKEN[case]
    with pytest.raises(error_type) as caught:
        validate_module(_module(source))
    assert "module held_plugin_for_tests" in str(caught.value)
    for phrase in phrases:
        assert phrase in str(caught.value)


def test_validate_module_refuses_what_is_not_a_module() -> None:
    with pytest.raises(ConfigurationError, match="validate_module: module must be a module"):
        validate_module("acme")  # type: ignore[arg-type]


def _package(module: str) -> str:
    return module.rpartition(".")[0]


def _is_module(package: str, name: str) -> bool:
    # ``from hypersdk import _validation``: a module, judged by the rule for modules below.
    folder = SRC / package.replace(".", "/")
    return (folder / f"{name}.py").exists() or (folder / name).is_dir()


def _crossings() -> set[tuple[str, str]]:
    """(importer, imported) pairs where code reaches for a private name of another package."""
    found: set[tuple[str, str]] = set()
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        importer = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = importer if parts[-1] == "__init__" else _package(importer)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            target = node.module
            if not target.startswith(("hypersdk", "hypersdk_testing")):
                continue
            private_names = [
                alias.name
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
            # A private name of a module (or a private submodule) outside this package.
            if package not in (target, _package(target)) and not all(
                _is_module(target, n) for n in private_names
            ):
                found.add((importer, target))
            # A private module of a subpackage, reached from outside that subpackage.
            segments = target.split(".")
            for index, segment in enumerate(segments[2:], start=2):
                owner = ".".join(segments[:index])
                if segment.startswith("_") and not (package + ".").startswith(owner + "."):
                    found.add((importer, target))
    return found


def test_no_private_name_is_imported_across_packages() -> None:
    assert _crossings() - _CROSSINGS_ALLOWED == set()
