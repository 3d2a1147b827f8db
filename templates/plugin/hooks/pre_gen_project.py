"""Refuse bad template variables with one clear message each, before the project is written.

Cookiecutter runs this file (rendered) before it generates anything else; ``hypersdk
new-plugin`` imports it unrendered and calls :func:`problems` before it calls cookiecutter at
all, so both ways share one set of rules.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Mapping

LICENSES = ("MIT", "Apache-2.0", "LGPL-3.0-or-later")
VARIANTS = ("async-httpx", "blocking-requests")
# The suite's FakeCloud serves raw disk bytes; formats the export toolkit checks by their
# magic bytes (qcow2, vmdk, vhd, vhdx) need a mock that serves such images (see README).
FORMATS = ("raw", "img")
RESERVED_PACKAGES = frozenset({"hypersdk", "hypersdk_testing", "test", "tests", "src"})

_PROVIDER_TYPE = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
_PACKAGE = re.compile(r"[a-z_][a-z0-9_]*")
_EMAIL = re.compile(r"[^@\s\"\\<>]+@[^@\s\"\\<>]+\.[^@\s\"\\<>.]+")
# Text that is pasted into Python and TOML strings must not be able to close them.
_UNSAFE_TEXT = re.compile(r"[\"\\\x00-\x1f\x7f]")

# Cookiecutter renders this string with the context; imported unrendered, it is inert.
# (tojson escapes every quote inside a value, so no value can close the raw string.)
CONTEXT_JSON = r"""
{{ cookiecutter | tojson }}
"""


def _text(context: Mapping[str, object], key: str, *, required: bool, limit: int) -> list[str]:
    value = context.get(key, "")
    if not isinstance(value, str):
        return [f"{key}: must be text, got {type(value).__name__}"]
    if required and not value.strip():
        return [f"{key}: must not be empty"]
    if value != value.strip():
        return [f"{key}: remove the leading or trailing spaces in {value!r}"]
    if len(value) > limit:
        return [f"{key}: at most {limit} characters, got {len(value)}"]
    if _UNSAFE_TEXT.search(value):
        return [f"{key}: {value!r} contains a double quote, backslash or control character"]
    return []


def _provider_type(value: str) -> list[str]:
    if len(value) > 40 or not _PROVIDER_TYPE.fullmatch(value):
        return [
            f"provider_type: {value!r} is not allowed; use lowercase letters and digits, "
            "starting with a letter, words joined by single '-' or '_' (e.g. 'acmecloud'), "
            "at most 40 characters"
        ]
    return []


def _package_name(value: str) -> list[str]:
    if not _PACKAGE.fullmatch(value) or len(value) > 60:
        return [
            f"package_name: {value!r} is not a Python package name; use lowercase letters, "
            "digits and '_', not starting with a digit (e.g. 'hypersdk_acmecloud')"
        ]
    if keyword.iskeyword(value) or value in RESERVED_PACKAGES:
        return [f"package_name: {value!r} is reserved; choose e.g. 'hypersdk_{value}'"]
    if value in sys.stdlib_module_names:
        return [f"package_name: {value!r} would shadow the standard library module of that name"]
    return []


def _api_base_url(value: str) -> list[str]:
    hint = "give the API's base URL, e.g. 'https://api.example.com/v1'"
    try:
        parts = urlsplit(value)
        netloc, port = parts.netloc, parts.port
    except ValueError:
        return [f"api_base_url: not a URL; {hint}"]
    del port  # parsed only to refuse a bad one
    if "@" in netloc:
        # A credential in the URL would be written into the source and the README; the
        # message does not repeat the URL for the same reason.
        return [
            "api_base_url: must not contain a user name or password; the token is "
            "given at run time as ProviderConfig.password"
        ]
    # A refused URL is never repeated: its query (or any part of it) may be a credential.
    if _UNSAFE_TEXT.search(value) or any(char.isspace() for char in value):
        return [f"api_base_url: contains spaces, quotes or control characters; {hint}"]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"api_base_url: must start with https:// (or http://); {hint}"]
    if parts.query or parts.fragment:
        return [f"api_base_url: must not have a query or fragment (a place for secrets); {hint}"]
    return []


def _formats(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",")]
    if not value.strip() or not all(names):
        return [f"supported_formats: {value!r}; give a comma-separated list such as 'raw'"]
    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        return [
            f"supported_formats: {', '.join(unknown)} not offered by the template; choose from "
            f"{', '.join(FORMATS)} (other formats: add them after rendering, see README)"
        ]
    if len(set(names)) != len(names):
        return [f"supported_formats: {value!r} names a format twice"]
    return []


def _choice(context: Mapping[str, object], key: str, allowed: tuple[str, ...]) -> list[str]:
    value = context.get(key)
    if value not in allowed:
        return [f"{key}: {value!r} is not one of {', '.join(allowed)}"]
    return []


def problems(context: Mapping[str, object]) -> list[str]:
    """Every problem with the template variables in ``context``; empty when all are good."""
    found = _text(context, "plugin_name", required=True, limit=60)
    if not found:
        name = str(context["plugin_name"])
        if not name[0].isalpha():
            found.append(f"plugin_name: {name!r} must start with a letter")
    for key, check in (
        ("provider_type", _provider_type),
        ("package_name", _package_name),
        ("supported_formats", _formats),
    ):
        text_problems = _text(context, key, required=True, limit=200)
        found.extend(text_problems or check(str(context[key])))
    url = context.get("api_base_url", "")
    if not isinstance(url, str) or not url or len(url) > 200:
        found.append("api_base_url: must be a URL of at most 200 characters")
    else:
        found.extend(_api_base_url(url))
    found.extend(_text(context, "author", required=True, limit=120))
    email_problems = _text(context, "author_email", required=False, limit=120)
    email = context.get("author_email", "")
    if not email_problems and email and not _EMAIL.fullmatch(str(email)):
        email_problems = [f"author_email: {email!r} is not an e-mail address (or leave it empty)"]
    found.extend(email_problems)
    found.extend(_choice(context, "license", LICENSES))
    found.extend(_choice(context, "variant", VARIANTS))
    return found


def main() -> int:
    """Cookiecutter's entry: print the problems and fail, so nothing is generated."""
    found = problems(json.loads(CONTEXT_JSON))
    for problem in found:
        sys.stderr.write(f"error: {problem}\n")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
