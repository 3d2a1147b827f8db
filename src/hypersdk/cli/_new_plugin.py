"""``hypersdk new-plugin``: render the plugin template shipped inside hypersdk.

The template's source of truth is ``templates/plugin/`` in hypersdk's repository; the
wheel carries a copy as ``hypersdk/_templates/plugin`` (hatch ``force-include``), so the
command works after ``pip install 'hypersdk[cli]'`` with no checkout.

Rendering is all-or-nothing: the answers are checked by the template's own rules (the
``problems()`` of its ``hooks/pre_gen_project.py``) before anything is written, the
project is generated in a fresh temporary directory beside the destination and moved into
place only when complete, and an existing directory is never overwritten.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, cast

from cyclopts import Parameter

from hypersdk._version import __version__
from hypersdk.cli import _exit
from hypersdk.errors import ConfigurationError, HyperSDKError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "new_plugin",
    "render_plugin",
    "template_dir",
    "template_defaults",
    "sdk_requirement",
]

Variant = Literal["async-httpx", "blocking-requests"]
License = Literal["MIT", "Apache-2.0", "LGPL-3.0-or-later"]


def template_dir() -> Path:
    """The plugin template: the copy inside the installed wheel, else the source checkout's."""
    package = Path(__file__).parent.parent  # hypersdk/
    candidates = (
        package / "_templates" / "plugin",  # an installed wheel
        package.parent.parent / "templates" / "plugin",  # src/hypersdk in a checkout
    )
    for candidate in candidates:
        if (candidate / "cookiecutter.json").is_file():
            return candidate
    raise ConfigurationError(
        "new-plugin: the plugin template is missing from this hypersdk installation "
        f"(looked in {', '.join(str(path) for path in candidates)}); reinstall hypersdk"
    )


def sdk_requirement(version: str = __version__) -> str:
    """The hypersdk version range a plugin rendered by this hypersdk declares.

    From this version up to the next minor release before 1.0 (``>=0.1.0,<0.2``), the next
    major release after (``>=1.2.0,<2``): the range in which the Provider contract holds.
    """
    from packaging.version import InvalidVersion, Version

    try:
        parsed = Version(version)
    except InvalidVersion:
        raise ConfigurationError(f"version: {version!r} is not a PEP 440 version") from None
    major, minor = parsed.major, parsed.minor
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    return f">={parsed},<{upper}"


def template_defaults() -> dict[str, object]:
    """The private answers this hypersdk supplies: its version, range and contract version."""
    from hypersdk_testing import CONTRACT_VERSION

    return {
        "_template_version": __version__,
        "_hypersdk_requirement": sdk_requirement(),
        "_contract_version": CONTRACT_VERSION,
    }


def _template_rules(template: Path) -> Callable[[Mapping[str, object]], list[str]]:
    """The template's ``problems()`` (its pre-generation hook, imported unrendered)."""
    hook = template / "hooks" / "pre_gen_project.py"
    spec = importlib.util.spec_from_file_location("_hypersdk_template_rules", hook)
    if spec is None or spec.loader is None:  # pragma: no cover - a broken installation
        raise ConfigurationError(f"new-plugin: cannot load the template's rules from {hook}")
    module = importlib.util.module_from_spec(spec)
    # No __pycache__ beside the template: it would be copied into every wheel built after.
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return cast("Callable[[Mapping[str, object]], list[str]]", module.problems)


# Cookiecutter renders each answer as a Jinja template (unsandboxed) before using it.
_TEMPLATE_SYNTAX = ("{{", "}}", "{%", "%}", "{#", "#}")


def _refuse_template_syntax(answers: Mapping[str, object]) -> None:
    """Refuse an answer holding Jinja syntax: cookiecutter would run it, not print it."""
    found = [
        key
        for key, value in answers.items()
        if isinstance(value, str) and any(mark in value for mark in _TEMPLATE_SYNTAX)
    ]
    if found:
        raise ConfigurationError(
            "new-plugin: nothing was written; fix these answers: "
            + "; ".join(
                f"{key}: contains template syntax ('{{{{', '{{%' or '{{#'), which the template "
                "engine would run; remove it"
                for key in found
            )
        )


def render_plugin(
    answers: Mapping[str, object],
    *,
    output_dir: Path,
    no_input: bool = True,
    template: Path | None = None,
) -> Path:
    """Render the plugin template with ``answers`` into ``output_dir``; return the project.

    ``answers`` holds template variables (``plugin_name``, ``provider_type``,
    ``package_name``, ``author``, ``author_email``, ``license``, ``api_base_url``,
    ``supported_formats``, ``variant``); the rest take the template's defaults, derived
    from ``plugin_name``. With ``no_input=False`` each is asked for, with these as defaults.

    Raises:
        ConfigurationError: an answer breaks the template's rules (every problem is
            listed), holds template syntax (``{{``, ``{%``, ``{#``), or the project's
            directory already exists. Nothing is written then.
    """
    from cookiecutter.config import get_user_config
    from cookiecutter.exceptions import CookiecutterException
    from cookiecutter.generate import generate_context, generate_files
    from cookiecutter.prompt import prompt_for_config

    template = template or template_dir()
    _refuse_template_syntax(answers)
    extra = {**template_defaults(), **{k: v for k, v in answers.items() if v is not None}}
    try:
        user = get_user_config()
        context = generate_context(
            context_file=str(template / "cookiecutter.json"),
            default_context=user["default_context"],
            extra_context=extra,
        )
        context["cookiecutter"] = prompt_for_config(context, no_input)
    except (CookiecutterException, ValueError) as exc:  # ValueError: not one of the choices
        raise ConfigurationError(f"new-plugin: {exc}") from None
    answered = context["cookiecutter"]
    problems = _template_rules(template)(answered)
    if problems:
        raise ConfigurationError(
            "new-plugin: nothing was written; fix these answers: " + "; ".join(problems)
        )
    output_dir = output_dir.expanduser()
    destination = output_dir / str(answered["__project_slug"])
    if destination.exists() or destination.is_symlink():
        raise ConfigurationError(
            f"new-plugin: {destination} already exists; choose another --output-dir or name"
        )
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"new-plugin: cannot create {output_dir}: {exc}") from None
    # Generated beside the destination, then moved into place whole: a failure half-way
    # (or Ctrl-C) leaves nothing behind, and a planted link cannot redirect the writes.
    staging = Path(tempfile.mkdtemp(prefix=".hypersdk-new-plugin-", dir=output_dir))
    try:
        answered.update(
            _template=str(template),
            _output_dir=str(staging),
            _repo_dir=str(template),
            _checkout=None,
        )
        try:
            project = Path(
                generate_files(
                    repo_dir=str(template),
                    context=context,
                    output_dir=str(staging),
                    overwrite_if_exists=False,
                    accept_hooks=True,
                )
            )
        except (CookiecutterException, OSError) as exc:
            raise HyperSDKError(f"new-plugin: rendering the template failed: {exc}") from None
        if destination.exists() or destination.is_symlink():
            raise ConfigurationError(f"new-plugin: {destination} appeared while rendering")
        os.rename(project, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def new_plugin(
    name: str,
    /,
    *,
    variant: Variant = "async-httpx",
    provider_type: str | None = None,
    package: str | None = None,
    author: str | None = None,
    author_email: str | None = None,
    license: License | None = None,
    api_url: str | None = None,
    formats: str | None = None,
    output_dir: Annotated[Path, Parameter(help="Where the project folder is created.")] = Path(),
    no_input: Annotated[bool, Parameter(negative="")] = False,
) -> int:
    """Create a provider plugin project that passes the conformance suite as rendered.

    Parameters
    ----------
    name
        The plugin's name as people read it, e.g. "Acme Cloud".
    variant
        async-httpx (an async provider over httpx) or blocking-requests (a blocking
        provider over requests, for vendor SDKs).
    provider_type
        The provider type users configure (default: from NAME, e.g. acmecloud).
    package
        The Python package (default: "hypersdk_" and the provider type).
    author
        The author's name.
    author_email
        The author's e-mail address (may be empty).
    license
        The project's license.
    api_url
        The API's base URL (default: a placeholder to change).
    formats
        Export formats, comma-separated (raw, img).
    output_dir
        Where the project folder is created.
    no_input
        Ask nothing: take NAME, the options given and the defaults.
    """
    answers = {
        "plugin_name": name,
        "variant": variant,
        "provider_type": provider_type,
        "package_name": package,
        "author": author,
        "author_email": author_email,
        "license": license,
        "api_base_url": api_url,
        "supported_formats": formats,
    }
    project = render_plugin(answers, output_dir=output_dir, no_input=no_input)
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    console.print(f"Created [bold]{escape(str(project))}[/]")
    steps = f'cd {project} && python -m venv .venv && .venv/bin/pip install -e ".[dev]"'
    console.print(escape(f"Next: {steps} && .venv/bin/pytest"), soft_wrap=True)
    return _exit.OK
