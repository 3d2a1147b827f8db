"""Keep the chosen variant's files and record which template made the project.

Runs in the generated project's directory. The template carries both variants side by
side (``*.async-httpx.py`` and ``*.blocking-requests.py``); the chosen one loses its
suffix, the other is removed. ``.cruft.json`` records the template, its version and the
answers, in the form cruft reads, so a later template version can be applied with
``cruft update`` (or compared by hand).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

VARIANTS = ("async-httpx", "blocking-requests")
# Local paths of the machine that rendered the project: not part of its answers.
_NOT_RECORDED = ("_output_dir", "_repo_dir")

CONTEXT_JSON = r"""
{{ cookiecutter | tojson }}
"""


def select_variant(root: Path, variant: str) -> None:
    """Rename ``name.<variant>.py`` to ``name.py``; delete the other variants' files."""
    for other in VARIANTS:
        for path in sorted(root.rglob(f"*.{other}.py")):
            if other == variant:
                path.replace(path.with_name(path.name.replace(f".{other}.py", ".py")))
            else:
                path.unlink()


def cruft_state(context: dict[str, object]) -> dict[str, object]:
    """The ``.cruft.json`` content for a project rendered with ``context``."""
    answers = {key: value for key, value in context.items() if key not in _NOT_RECORDED}
    answers["_template"] = context["_template_repository"]
    return {
        "template": context["_template_repository"],
        # The template is released with hypersdk: its version names the tag to diff from.
        "commit": f"v{context['_template_version']}",
        "checkout": None,
        "context": {"cookiecutter": answers},
        "directory": context["_template_directory"],
        "skip": [".git"],
    }


def main() -> int:
    """Cookiecutter's entry point."""
    context = json.loads(CONTEXT_JSON)
    root = Path.cwd()
    select_variant(root, str(context["variant"]))
    if context["license"] != "LGPL-3.0-or-later":  # the LGPL adds to the GPL: both ship
        (root / "LICENSE.GPL-3").unlink()
    # cruft's own renders (``cruft update`` / ``diff``) carry ``_commit``; cruft writes
    # .cruft.json itself then, and one from here would only show up as a conflict.
    if "_commit" not in context:
        state = json.dumps(cruft_state(context), indent=2, sort_keys=True) + "\n"
        (root / ".cruft.json").write_text(state, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
