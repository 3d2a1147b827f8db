"""Attacks on ``hypersdk new-plugin``: template syntax in answers, secrets in the URL, links."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hypersdk.errors import ConfigurationError

if TYPE_CHECKING:
    from .conftest import Render

KEYS = ("plugin_name", "author", "author_email", "api_base_url", "provider_type", "package_name")


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    "syntax",
    [
        "{{ 7*7 }}",
        "{% for x in range(3) %}x{% endfor %}",
        "{# hidden #}",
        "{{ cycler.__init__.__globals__.os.getpid() }}",
    ],
)
def test_template_syntax_in_an_answer_is_refused_not_run(
    render: Render, tmp_path: Path, key: str, syntax: str
) -> None:
    # Cookiecutter renders every answer as a Jinja template before using it: an answer
    # (pasted, or passed by a script) would run as code in an unsandboxed environment.
    out = tmp_path / "out"
    answers = {"plugin_name": "Acme"}
    answers[key] = f"acme{syntax}" if key != "api_base_url" else f"https://h.example/{syntax}"
    with pytest.raises(ConfigurationError, match=rf"{key}: .*template syntax"):
        render(answers, into=out)
    assert not out.exists()


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1?token=SECRETQ",
        "https://api.example.com/v1#SECRETQ",
        "https://api.example.com/v1 SECRETQ",
        "ftp://api.example.com/SECRETQ?sig=SECRETQ",
        "https://api.example.com/v1\x00SECRETQ",
        "https://SECRETQ@api.example.com",
        "https://u:SECRETQ@[broken",
    ],
)
def test_a_refused_url_is_never_repeated(render: Render, url: str) -> None:
    # Query strings are secrets; a URL that was refused may hold one anywhere.
    with pytest.raises(ConfigurationError, match="api_base_url") as caught:
        render({"api_base_url": url})
    assert "SECRETQ" not in str(caught.value)


def test_a_destination_planted_as_a_link_is_never_followed(render: Render, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "hypersdk-acme").symlink_to(victim)
    with pytest.raises(ConfigurationError, match="already exists"):
        render({"plugin_name": "Acme"}, into=out)
    assert list(victim.iterdir()) == []
    assert [p.name for p in out.iterdir()] == ["hypersdk-acme"]  # no staging left behind
    os.unlink(out / "hypersdk-acme")
