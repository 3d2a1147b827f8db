"""Sphinx configuration: furo theme, MyST Markdown pages, API reference from docstrings."""

from __future__ import annotations

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

# Offline builds: no intersphinx inventories are fetched unless HYPERSDK_DOCS_ONLINE is set.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

html_theme = "furo"
html_title = f"hypersdk {release}"
nitpicky = False
# `Provider.type` and `BlockingProvider.type` share a name; autodoc's links to it are ambiguous.
suppress_warnings = ["ref.python"]
