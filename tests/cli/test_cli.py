"""The ``hypersdk`` console script, driven in a subprocess as a user would."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hypersdk import ExportCapabilities, ExportResult, VMFilter, VMInfo, from_dict
from tests.cli.conftest import DISK, TOKEN, CliEnv, hypersdk_script

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and permissions")


def test_help_and_version(cli_env: CliEnv) -> None:
    result = cli_env.run("--help")
    assert result.returncode == 0
    for command in ("plugins", "providers", "vms", "export"):
        assert command in result.stdout
    assert cli_env.run("--version").stdout.strip()


def test_plugins_list_json(cli_env: CliEnv) -> None:
    result = cli_env.run("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {item["name"]: item for item in json.loads(result.stdout)}
    sample = plugins["clisample"]
    assert sample["status"] == "loaded"
    assert sample["metadata"]["provider_type"] == "clisample"
    assert sample["error"] is None


def test_plugins_list_table_shows_failures(cli_env: CliEnv) -> None:
    broken = cli_env.plugin_dir / "broken.py"
    broken.write_text("raise SystemExit('I refuse to load')\n")
    broken.chmod(0o644)
    result = cli_env.run("plugins", "list")
    assert result.returncode == 0, result.stderr
    assert "clisample" in result.stdout
    assert "broken" in result.stdout
    assert "failed" in result.stdout


def test_plugins_list_at_80_columns_keeps_rows_whole(cli_env: CliEnv) -> None:
    broken = cli_env.plugin_dir / "broken.py"
    broken.write_text("raise SystemExit('I refuse to load')\n")
    broken.chmod(0o644)
    result = cli_env.run("plugins", "list", extra_env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines), result.stdout
    # Each plugin's short fields share one line: nothing folded a letter at a time.
    assert any("clisample" in line and "loaded" in line for line in lines), result.stdout
    assert any("broken" in line and "failed" in line for line in lines), result.stdout
    # The long texts wrap across the width, at words, outside the table's borders.
    text = " ".join(result.stdout.split())
    assert "failed to import: SystemExit: I refuse to load" in text, result.stdout
    assert any(line.startswith("broken") and "source:" in line for line in lines)


def test_plugins_info(cli_env: CliEnv) -> None:
    result = cli_env.run("plugins", "info", "clisample", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metadata"]["description"] == "CLI test plugin"
    missing = cli_env.run("plugins", "info", "nope")
    assert missing.returncode == 3
    assert "no plugin named 'nope'" in missing.stderr


def test_providers(cli_env: CliEnv) -> None:
    result = cli_env.run("providers", "--json")
    assert result.returncode == 0, result.stderr
    caps = from_dict(ExportCapabilities, json.loads(result.stdout)["clisample"])
    assert caps.supported_formats == ("raw",)
    table = cli_env.run("providers")
    assert "clisample" in table.stdout
    assert "compression" in table.stdout


def test_vms_list_with_filters_matches_the_reference_semantics(cli_env: CliEnv) -> None:
    result = cli_env.run(
        "vms",
        "list",
        "--provider",
        "clisample",
        "--name",
        "WEB-*",
        "--tag",
        "env=prod",
        "--min-cpus",
        "2",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    vms = [from_dict(VMInfo, item) for item in json.loads(result.stdout)]
    everything = [
        from_dict(VMInfo, item)
        for item in json.loads(
            cli_env.run("vms", "list", "--provider", "clisample", "--json").stdout
        )
    ]
    reference = VMFilter(name_pattern="WEB-*", tags={"env": "prod"}, min_cpus=2)
    assert vms == [vm for vm in everything if reference.matches(vm)]
    assert [vm.id for vm in vms] == ["1"]


def test_vms_table_get_and_search(cli_env: CliEnv) -> None:
    table = cli_env.run("vms", "list", "--provider", "clisample")
    assert table.returncode == 0, table.stderr
    assert "web-1" in table.stdout
    assert "db-1" in table.stdout
    got = cli_env.run("vms", "get", "3", "--provider", "clisample", "--json")
    assert from_dict(VMInfo, json.loads(got.stdout)).name == "db-1"
    found = cli_env.run("vms", "search", "web", "--provider", "clisample", "--json")
    assert sorted(item["id"] for item in json.loads(found.stdout)) == ["1", "2"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("vms", "get", "999", "--provider", "clisample"), 5, "no VM '999'"),
        (
            ("vms", "list", "--provider", "nosuch"),
            3,
            "no provider of type 'nosuch' is installed; available: clisample",
        ),
        (
            ("vms", "list", "--provider", "clisample", "--tag", "novalue"),
            3,
            "--tag: expected KEY=VALUE",
        ),
        (("vms", "list", "--provider", "clisample", "--min-cpus", "many"), 2, "usage error"),
        (("frobnicate",), 2, "usage error"),
        (
            ("export", "1", "--provider", "clisample", "--output", "out", "--format", "vmdk"),
            9,
            "'vmdk' unsupported",
        ),
    ],
)
def test_errors_are_one_line_with_a_family_exit_code(
    cli_env: CliEnv, args: tuple[str, ...], code: int, message: str
) -> None:
    result = cli_env.run(*args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_debug_shows_the_traceback(cli_env: CliEnv) -> None:
    result = cli_env.run("vms", "get", "999", "--provider", "clisample", "--debug")
    assert result.returncode == 5
    assert "Traceback" in result.stderr


def test_wrong_token_is_an_authentication_error(cli_env: CliEnv) -> None:
    result = cli_env.run(
        "vms", "list", "--provider", "clisample", extra_env={"CLISAMPLE_TOKEN": "wrong"}
    )
    assert result.returncode == 4
    assert "token was rejected" in result.stderr


def test_unset_token_variable_is_named(cli_env: CliEnv) -> None:
    env = {k: v for k, v in cli_env.env.items() if k != "CLISAMPLE_TOKEN"}
    result = subprocess.run(
        [str(hypersdk_script()), "vms", "list", "--provider", "clisample"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3
    assert "CLISAMPLE_TOKEN" in result.stderr
    assert "not set" in result.stderr


def test_plain_text_secrets_are_refused(cli_env: CliEnv) -> None:
    cli_env.write_config(f'[providers.clisample]\ntoken = "{TOKEN}"\n')
    result = cli_env.run("vms", "list", "--provider", "clisample")
    assert result.returncode == 3
    assert 'token_env = "SOME_VARIABLE"' in result.stderr
    assert TOKEN not in result.stderr


def test_config_errors_name_the_file(cli_env: CliEnv) -> None:
    cli_env.config.write_text("[plugins\n")
    result = cli_env.run("providers")
    assert result.returncode == 3
    assert str(cli_env.config) in result.stderr
    missing = cli_env.run("providers", "--config", str(cli_env.root / "nope.toml"))
    assert missing.returncode == 3
    assert "does not exist" in missing.stderr


def test_export_plain_progress_and_json(cli_env: CliEnv) -> None:
    out = cli_env.root / "exports"
    plain = cli_env.run(
        "export", "1", "--provider", "clisample", "--output", str(out), "--format", "raw"
    )
    assert plain.returncode == 0, plain.stderr
    lines = [line for line in plain.stdout.splitlines() if "%" in line]
    assert lines, plain.stdout
    percents = [float(line.split("%")[0].split()[-1]) for line in lines]
    assert percents == sorted(percents)
    assert percents[-1] == 100.0
    assert "Export complete" in plain.stdout

    again = cli_env.run(
        "export", "2", "--provider", "clisample", "--output", str(out), "--format", "raw", "--json"
    )
    assert again.returncode == 0, again.stderr
    result = from_dict(ExportResult, json.loads(again.stdout))
    disk = out / result.files[0]
    assert disk.read_bytes() == DISK
    assert hashlib.sha256(DISK).hexdigest() == result.checksum
    assert "%" in again.stderr  # progress went to stderr, stdout stays parseable


def test_ctrl_c_cancels_the_export_and_leaves_nothing(cli_env: CliEnv) -> None:
    cli_env.handler.delay = 0.2  # ~18 chunks: several seconds of download
    out = cli_env.root / "slow"
    process = subprocess.Popen(
        [
            str(hypersdk_script()),
            "export",
            "1",
            "--provider",
            "clisample",
            "--output",
            str(out),
            "--format",
            "raw",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env.env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (out.exists() and any(out.iterdir())):
            time.sleep(0.05)  # wait until the download has started writing
        assert out.exists(), "the export never started"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, (stdout, stderr)
    assert "interrupted" in stderr
    assert list(out.iterdir()) == []


def test_module_entry_point_matches_the_script(cli_env: CliEnv) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hypersdk.cli", "providers", "--json"],
        capture_output=True,
        text=True,
        env=cli_env.env,
        timeout=60,
        check=False,
        cwd=cli_env.root,
    )
    assert result.returncode == 0, result.stderr
    assert "clisample" in json.loads(result.stdout)


def test_token_never_printed(cli_env: CliEnv) -> None:
    for args in (
        ("plugins", "list", "--json"),
        ("vms", "list", "--provider", "clisample", "--debug"),
    ):
        result = cli_env.run(*args)
        assert TOKEN not in result.stdout + result.stderr


def test_plugins_validate(cli_env: CliEnv) -> None:
    good = cli_env.run("plugins", "validate", str(cli_env.plugin_dir / "clisample.py"))
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.count("PASS") >= 5
    assert "FAIL" not in good.stdout
    bad = cli_env.plugin_dir / "bad.py"
    bad.write_text("import hypersdk\nPLUGIN_INFO = 'not metadata'\n")
    bad.chmod(0o644)
    result = cli_env.run("plugins", "validate", str(bad), "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    failed = [check for check in report["checks"] if check["outcome"] == "fail"]
    assert len(failed) == 1
    assert "PLUGIN_INFO" in failed[0]["detail"]
    assert report["checks"][-1]["outcome"] == "skip"


def test_export_on_a_terminal_shows_a_live_bar(cli_env: CliEnv) -> None:
    import pty

    out = cli_env.root / "tty"
    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            [
                str(hypersdk_script()),
                "export",
                "1",
                "--provider",
                "clisample",
                "--output",
                str(out),
                "--format",
                "raw",
            ],
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
            env=cli_env.env,
            close_fds=True,
        )
        os.close(secondary)
        chunks: list[bytes] = []
        while True:
            try:
                data = os.read(primary, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert process.wait(timeout=60) == 0
    finally:
        os.close(primary)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "━" in screen  # rich's bar
    assert "100%" in screen
    assert "Export complete" in screen
