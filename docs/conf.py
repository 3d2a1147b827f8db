"""Sphinx configuration: furo theme, MyST Markdown pages, API reference from docstrings."""

from __future__ import annotations

import importlib.util

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

import hypersdk

project = "hypersdk"
author = "The hypersdk developers"
copyright = "2026, The hypersdk developers"
release = hypersdk.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
# examples/ holds code the pages include (literalinclude), not pages.
exclude_patterns = ["_build", "examples"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# "Attributes:" sections as fields, so :undoc-members: does not describe each attribute twice.
napoleon_use_ivar = True

# Offline builds: no intersphinx inventories are fetched unless HYPERSDK_DOCS_ONLINE is set.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

html_theme = "furo"
html_title = f"hypersdk {release}"
nitpicky = False
# `Provider.type` and `BlockingProvider.type` share a name; autodoc's links to it are ambiguous.
suppress_warnings = ["ref.python"]


class OptionalAutomodule(SphinxDirective):
    """``automodule`` (members, imported and undocumented ones too) if the module exists.

    For a public module that lands in a later release than the page mentioning it
    (``hypersdk.http``), so the build stays clean under ``-W`` before and after.
    """

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return [nodes.paragraph(text=f"{name} is not part of hypersdk {release}.")]
        lines = [
            f".. automodule:: {name}",
            "   :members:",
            "   :imported-members:",
            "   :undoc-members:",
        ]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=""), self.content_offset, container)
        return list(container.children)


def setup(app: object) -> None:
    """Register the directives this site defines."""
    app.add_directive("optional-automodule", OptionalAutomodule)  # type: ignore[attr-defined]
