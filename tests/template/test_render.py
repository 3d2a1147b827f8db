"""The plugin template renders what it promises, refuses bad answers, and ships in the wheel.

Fast checks only (no venv, no network): the rendered files, the recorded template version,
the answers' validation and the `hypersdk new-plugin` command. The rendered project's own
tests, mypy and ruff run in test_rendered_project.py (``nox -s template``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hypersdk import PluginManager
from hypersdk._version import __version__
from hypersdk.cli import main
from hypersdk.cli._new_plugin import sdk_requirement, template_defaults, template_dir
from hypersdk.errors import ConfigurationError
from hypersdk_testing import CONTRACT_VERSION

if TYPE_CHECKING:
    from tests.template.conftest import Render

TEMPLATE = Path(__file__).parents[2] / "templates" / "plugin"
VARIANTS = ("async-httpx", "blocking-requests")


def files_of(project: Path) -> set[str]:
    return {str(path.relative_to(project)) for path in project.rglob("*") if path.is_file()}


def test_the_checkout_is_the_source_of_truth() -> None:
    assert template_dir() == TEMPLATE


def test_cookiecutter_json_defaults_match_this_hypersdk() -> None:
    """Plain `cookiecutter templates/plugin` must record what new-plugin would."""
    defaults = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    for key, value in template_defaults().items():
        assert defaults[key] == value, f"cookiecutter.json {key}: update it to {value!r}"


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.1.0.dev0", ">=0.1.0.dev0,<0.2"),
        ("0.4.2", ">=0.4.2,<0.5"),
        ("1.2.0", ">=1.2.0,<2"),
        ("2.0.0rc1", ">=2.0.0rc1,<3"),
    ],
)
def test_sdk_requirement(version: str, expected: str) -> None:
    assert sdk_requirement(version) == expected


def test_sdk_requirement_refuses_a_bad_version() -> None:
    with pytest.raises(ConfigurationError, match="version"):
        sdk_requirement("not a version")


def test_default_render(render: Render) -> None:
    project = render()
    assert project.name == "hypersdk-acmecloud"
    assert files_of(project) == {
        ".cruft.json",
        ".gitignore",
        "LICENSE",
        "README.md",
        "noxfile.py",
        "pyproject.toml",
        "src/hypersdk_acmecloud/__init__.py",
        "src/hypersdk_acmecloud/_provider.py",
        "src/hypersdk_acmecloud/_version.py",
        "src/hypersdk_acmecloud/py.typed",
        "tests/test_conformance.py",
    }
    pyproject = (project / "pyproject.toml").read_text()
    assert '[project.entry-points."hypersdk.providers"]\nacmecloud = "hypersdk_acmecloud"' in (
        pyproject
    )
    assert f'"hypersdk{sdk_requirement()}"' in pyproject
    tests = (project / "tests" / "test_conformance.py").read_text()
    assert f"contract_version = {CONTRACT_VERSION}\n" in tests
    # Nothing of the staging directory is left beside the project.
    assert [path.name for path in project.parent.iterdir()] == [project.name]


def test_the_project_records_its_template(render: Render, tmp_path: Path) -> None:
    """.cruft.json in the form cruft reads: template, commit (tag), directory, answers."""
    project = render({"author": "Ada Lovelace"})
    state = json.loads((project / ".cruft.json").read_text())
    assert state["template"] == "https://example.invalid/hypersdk"
    assert state["directory"] == "templates/plugin"
    assert state["commit"] == f"v{__version__}"
    answers = state["context"]["cookiecutter"]
    assert answers["_template_version"] == __version__
    assert answers["author"] == "Ada Lovelace"
    assert answers["variant"] == "async-httpx"
    assert answers["_template"] == state["template"]
    # No path of the machine that rendered it.
    assert str(tmp_path) not in json.dumps(state)
    assert str(TEMPLATE) not in json.dumps(state)


@pytest.mark.parametrize(
    ("license", "first_line", "gpl"),
    [
        ("MIT", "MIT License", False),
        ("Apache-2.0", "Apache License", False),
        ("LGPL-3.0-or-later", "GNU LESSER GENERAL PUBLIC LICENSE", True),
    ],
)
def test_license_choice(render: Render, license: str, first_line: str, gpl: bool) -> None:
    project = render({"license": license, "author": "Ada Lovelace"})
    text = (project / "LICENSE").read_text()
    assert text.strip().splitlines()[0].strip() == first_line
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    assert (project / "LICENSE.GPL-3").exists() is gpl
    assert f'license = "{license}"' in (project / "pyproject.toml").read_text()
    if license == "MIT":
        assert "Ada Lovelace" in text


def test_the_provider_reads_in_one_sitting(render: Render) -> None:
    for variant in VARIANTS:
        project = render({"variant": variant, "provider_type": variant.replace("-", "")})
        provider = next(project.glob("src/*/_provider.py"))
        lines = len(provider.read_text().splitlines())
        assert lines < 250, f"{variant}: _provider.py has {lines} lines"


@pytest.mark.parametrize("variant", VARIANTS)
def test_variants_keep_only_their_files(render: Render, variant: str) -> None:
    project = render({"variant": variant})
    names = files_of(project)
    assert not [name for name in names if ".async-httpx" in name or ".blocking-requests" in name]
    provider = (project / "src/hypersdk_acmecloud/_provider.py").read_text()
    if variant == "async-httpx":
        assert "httpx.AsyncClient" in provider
    else:
        assert "requests.Session" in provider


LONGEST = {
    "plugin_name": "X" * 60,
    "provider_type": "a" * 40,
    "package_name": "p" * 60,
    "author": "A" * 120,
    "api_base_url": "https://" + "h" * 150 + ".example/v1",
    "supported_formats": "raw,img",
}
SHORTEST = {"plugin_name": "Q", "provider_type": "q", "package_name": "q", "author": "Q"}
ODD = {"plugin_name": "Société Générale Cloud", "author": "Seán O'Brien", "author_email": ""}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("answers", [LONGEST, SHORTEST, ODD], ids=["longest", "shortest", "odd"])
def test_any_valid_answers_render_lint_clean(
    render: Render, variant: str, answers: dict[str, str]
) -> None:
    """The rendered code is ruff-clean and formatted whatever the names' lengths."""
    project = render({**answers, "variant": variant})
    ruff = [sys.executable, "-m", "ruff"]
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        done = subprocess.run(
            [*ruff, *command], cwd=project, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
    compile_all = [sys.executable, "-m", "compileall", "-q", str(project)]
    assert subprocess.run(compile_all, check=False).returncode == 0


def test_the_rendered_plugin_passes_the_loaders_checks(render: Render) -> None:
    project = render()
    checks = PluginManager().check_plugin(project / "src" / "hypersdk_acmecloud")
    failed = [(check.name, check.detail) for check in checks if check.outcome == "fail"]
    assert not failed


BAD_ANSWERS = [
    ({"provider_type": "Acme Cloud"}, "provider_type"),
    ({"provider_type": "../../escape"}, "provider_type"),
    ({"provider_type": "9lives"}, "provider_type"),
    ({"package_name": "hypersdk-acme"}, "package_name"),
    ({"package_name": "class"}, "package_name"),
    ({"package_name": "json"}, "package_name"),
    ({"package_name": "hypersdk"}, "package_name"),
    ({"api_base_url": "ftp://files.example/v1"}, "api_base_url"),
    ({"api_base_url": "api.example.com"}, "api_base_url"),
    ({"api_base_url": "https://api.example.com/v1?key=1"}, "api_base_url"),
    ({"api_base_url": "https://a b.example/v1"}, "api_base_url"),
    ({"supported_formats": "qcow2"}, "supported_formats"),
    ({"supported_formats": "raw,,img"}, "supported_formats"),
    ({"supported_formats": "raw,raw"}, "supported_formats"),
    ({"plugin_name": 'Acme "Cloud"'}, "plugin_name"),
    ({"plugin_name": "1Cloud"}, "plugin_name"),
    ({"plugin_name": " Acme"}, "plugin_name"),
    ({"author": "Ada\\Lovelace"}, "author"),
    ({"author_email": "not-an-address"}, "author_email"),
]


@pytest.mark.parametrize(("answers", "named"), BAD_ANSWERS)
def test_bad_answers_are_refused_before_anything_is_written(
    render: Render, tmp_path: Path, answers: dict[str, str], named: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ConfigurationError, match=rf"nothing was written.*{named}:") as caught:
        render(answers, into=out)
    assert not out.exists()
    assert "Traceback" not in str(caught.value)


def test_a_credential_in_the_url_is_refused_and_not_repeated(render: Render) -> None:
    with pytest.raises(ConfigurationError, match="api_base_url") as caught:
        render({"api_base_url": "https://admin:hunter2@api.example.com/v1"})
    assert "hunter2" not in str(caught.value)


def test_every_problem_is_listed_at_once(render: Render) -> None:
    with pytest.raises(ConfigurationError) as caught:
        render({"provider_type": "Bad Type", "package_name": "os", "supported_formats": "vmdk"})
    message = str(caught.value)
    for named in ("provider_type:", "package_name:", "supported_formats:"):
        assert named in message


def test_an_existing_project_is_never_overwritten(render: Render) -> None:
    project = render()
    marker = project / "README.md"
    marker.write_text("mine")
    with pytest.raises(ConfigurationError, match="already exists"):
        render()
    assert marker.read_text() == "mine"


def test_plain_cookiecutter_refuses_bad_answers_in_its_hook(
    tmp_path: Path, cookiecutter_home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Without new-plugin, the pre-generation hook refuses and cookiecutter cleans up."""
    from cookiecutter.exceptions import FailedHookException
    from cookiecutter.main import cookiecutter

    out = tmp_path / "direct"
    out.mkdir()
    with pytest.raises(FailedHookException):
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(out),
            extra_context={"provider_type": "Not Valid"},
        )
    assert "error: provider_type: 'Not Valid' is not allowed" in capfd.readouterr().err
    assert list(out.iterdir()) == []


def test_plain_cookiecutter_renders_the_same_project(
    render: Render, tmp_path: Path, cookiecutter_home: Path
) -> None:
    from cookiecutter.main import cookiecutter

    direct = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(tmp_path / "d")))
    ours = render()
    assert files_of(direct) == files_of(ours)
    for name in files_of(ours) - {".cruft.json"}:
        assert (direct / name).read_bytes() == (ours / name).read_bytes(), name


# --------------------------------------------------------------------- the command


def test_new_plugin_command(
    tmp_path: Path, cookiecutter_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "new-plugin",
            "Zeta Compute",
            "--no-input",
            "--variant",
            "async-httpx",
            "--license",
            "Apache-2.0",
            "--api-url",
            "https://api.zeta.example/v2",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    project = tmp_path / "hypersdk-zetacompute"
    assert "Created" in capsys.readouterr().out
    assert (
        '"https://api.zeta.example/v2"'
        in (project / "src/hypersdk_zetacompute/_provider.py").read_text()
    )
    assert "Apache License" in (project / "LICENSE").read_text()


def test_new_plugin_command_refuses_with_a_configuration_exit_code(
    tmp_path: Path, cookiecutter_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["new-plugin", "Zeta", "--no-input", "--package", "os", "--output-dir", str(tmp_path)]
    )
    assert code == 3
    err = capsys.readouterr().err
    assert "package_name: 'os' would shadow the standard library" in err
    assert list(tmp_path.iterdir()) == [cookiecutter_home]


def test_new_plugin_command_refuses_an_unknown_variant(
    tmp_path: Path, cookiecutter_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["new-plugin", "Zeta", "--no-input", "--variant", "grpc"])
    assert code == 2
    assert "async-httpx" in capsys.readouterr().err


def test_under_cruft_the_hook_leaves_the_state_file_to_cruft(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cruft's renders carry ``_commit``; a .cruft.json from the hook would conflict."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "post_gen", TEMPLATE / "hooks/post_gen_project.py"
    )
    assert spec is not None
    assert spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    # No __pycache__ in the template: the wheel copies the folder as it is.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    spec.loader.exec_module(hook)
    context = {
        "variant": "async-httpx",
        "license": "MIT",
        "_template_repository": "https://example.invalid/hypersdk",
        "_template_version": "1.0",
        "_template_directory": "templates/plugin",
    }
    for under_cruft in (False, True):
        project = tmp_path / f"cruft-{under_cruft}"
        project.mkdir()
        (project / "LICENSE.GPL-3").write_text("GPL")
        (project / "x.async-httpx.py").write_text("")
        (project / "x.blocking-requests.py").write_text("")
        monkeypatch.chdir(project)
        extra = {"_commit": "0123abc"} if under_cruft else {}
        monkeypatch.setattr(hook, "CONTEXT_JSON", json.dumps({**context, **extra}))
        assert hook.main() == 0
        assert sorted(path.name for path in project.iterdir()) == (
            ["x.py"] if under_cruft else [".cruft.json", "x.py"]
        )
