"""The documentation is complete and true to the code: API reference, worked plugin, README."""

from __future__ import annotations

import importlib
import re
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
PUBLIC_MODULES = (
    "hypersdk",
    "hypersdk.plugins",
    "hypersdk.export",
    "hypersdk.http",
    "hypersdk_testing",
    "hypersdk_testing.strategies",
)
DIRECTIVE = re.compile(r"^\.\. (auto\w+|optional-automodule):: ([\w.]+)\n((?:   :.*\n)*)", re.M)
WORKED = DOCS / "examples" / "worked_plugin"


def _directives() -> list[tuple[str, str, set[str]]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for kind, target, options in DIRECTIVE.findall(page.read_text()):
            found.append((kind, target, set(re.findall(r":([\w-]+):", options))))
    return found


def _modules() -> dict[str, types.ModuleType]:
    modules = {}
    for name in PUBLIC_MODULES:
        try:
            modules[name] = importlib.import_module(name)
        except ModuleNotFoundError:  # hypersdk.http arrives with contract 2
            continue
    return modules


def _documented() -> set[tuple[str, str]]:
    """(module, name) pairs the pages document, by explicit entry or by a whole module."""
    modules = _modules()
    pairs: set[tuple[str, str]] = set()
    for kind, target, options in _directives():
        whole = kind == "optional-automodule" or (
            kind == "automodule" and {"members", "undoc-members"} <= options
        )
        if whole and target in modules:
            module = modules[target]
            for name in module.__all__:
                obj = getattr(module, name)
                imported = getattr(obj, "__module__", target) != target
                if not imported or "imported-members" in options or kind != "automodule":
                    pairs.add((target, name))
        elif kind != "automodule":
            module_name, _, name = target.rpartition(".")
            pairs.add((module_name, name))
    return pairs


def test_every_public_name_is_in_the_api_reference() -> None:
    modules = _modules()
    documented = _documented()
    # A name re-exported by two public modules needs one entry (hypersdk.PluginManager is
    # hypersdk.plugins.PluginManager).
    documented_objects = {
        id(getattr(modules[module], name))
        for module, name in documented
        if module in modules and hasattr(modules[module], name)
    }
    missing = [
        f"{module_name}.{name}"
        for module_name, module in modules.items()
        for name in module.__all__
        if (module_name, name) not in documented
        and id(getattr(module, name)) not in documented_objects
    ]
    assert not missing, (
        f"not in the API reference (add an entry to docs/api.md): {', '.join(missing)}"
    )


def test_the_api_reference_names_nothing_private() -> None:
    private = [
        target
        for _, target, _ in _directives()
        if any(part.startswith("_") and part != "__version__" for part in target.split("."))
    ]
    assert not private, f"private names documented: {private}"


def test_the_suite_is_documented_by_its_knobs_not_its_test_methods() -> None:
    from hypersdk_testing import ProviderConformance

    for _, target, options in _directives():
        if target == "hypersdk_testing.ProviderConformance":
            page = next(p for p in DOCS.glob("*.md") if target in p.read_text())
            listed = re.search(rf"{re.escape(target)}\n   :members: (.*)", page.read_text())
            assert listed is not None, "ProviderConformance must list its members explicitly"
            assert "test_" not in listed.group(1)
            assert "undoc-members" not in options
    knobs = [
        name
        for name, value in vars(ProviderConformance).items()
        if not name.startswith(("_", "test_")) and not callable(value)
    ]
    pages = (DOCS / "conformance.md").read_text() + (DOCS / "plugin-guide.md").read_text()
    undocumented = [knob for knob in knobs if f"`{knob}`" not in pages]
    assert not undocumented, f"knobs missing from docs/conformance.md: {undocumented}"


def test_the_worked_plugin_is_small_and_is_what_the_guide_shows() -> None:
    plugin = WORKED / "src" / "hypersdk_tinycloud" / "__init__.py"
    assert len(plugin.read_text().splitlines()) < 250
    guide = (DOCS / "plugin-guide.md").read_text()
    assert "examples/worked_plugin/src/hypersdk_tinycloud/__init__.py" in guide
    assert "```{literalinclude} examples/worked_plugin/tests/test_tinycloud_conformance.py" in guide
    # The guide shows code from files, not copies: no class of the plugin pasted in.
    assert "class TinyCloudProvider(Provider):" not in guide


def test_the_worked_plugin_is_tested_by_this_suite() -> None:
    # On pytest's pythonpath (pyproject.toml), not installed: mypy does not see it here.
    hypersdk_tinycloud = importlib.import_module("hypersdk_tinycloud")
    assert Path(str(hypersdk_tinycloud.__file__)).is_relative_to(WORKED)
    assert (WORKED / "tests" / "test_tinycloud_conformance.py").exists()


def test_the_readme_links_to_the_docs_and_keeps_a_two_command_quick_start() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.search(r"```sh\n(.*?)```", quick, re.S)
    assert commands is not None
    assert commands.group(1).splitlines() == [
        "python3 -m pip install nox && python3 -m nox -s demo   # the main job: SDK, CLI, "
        "DigitalOcean plugin, conformance report",
        "python3 -m pip install nox && python3 -m nox           # the whole test suite: lint, "
        "mypy --strict, docs, pytest",
    ]
    assert "docs/plugin-guide.md" in readme
    assert "docs/index.md" in readme


@pytest.mark.parametrize(
    "page", ["plugin-guide", "publishing", "troubleshooting", "security", "api"]
)
def test_every_page_is_in_the_table_of_contents(page: str) -> None:
    assert f"\n{page}\n" in (DOCS / "index.md").read_text()
