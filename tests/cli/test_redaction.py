"""No credential reaches a log record while the CLI configures logging (issue #10 item 6).

The attack: ``hypersdk ... --debug`` against an API that hands out pre-signed URLs and
answers with ``Set-Cookie`` and ``X-Subject-Token``. httpx logs every URL in full at
INFO and httpcore every response header at DEBUG; a plugin may log its own headers.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import httpx
import pytest

from hypersdk._redact import mask_url, redact_text
from hypersdk.cli._logging import configured_logging

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.cli.conftest import CliEnv

SIGNATURE = "a1b2c3d4e5f6SIGNATUREVALUE"
COOKIE = "sessionid=COOKIEVALUE123"
SUBJECT_TOKEN = "gAAAAABSUBJECTTOKEN456"
API_KEY = "APIKEYVALUE789"
PASSWORD = "URLPASSWORD000"
SECRETS = (SIGNATURE, "COOKIEVALUE123", SUBJECT_TOKEN, API_KEY, PASSWORD, "BEARERTOKEN111")


class _TokenHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", f"{COOKIE}; Path=/; HttpOnly")
        self.send_header("X-Subject-Token", SUBJECT_TOKEN)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def token_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} leaked into:\n{text}"


def test_httpx_and_httpcore_debug_lines_are_redacted(
    token_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = (
        f"http://admin:{PASSWORD}@{token_server}/bucket/disk.raw"
        f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={SIGNATURE}"
    )
    with configured_logging(debug=True):
        with httpx.Client() as client:
            response = client.get(
                url,
                headers={
                    "Authorization": "Bearer BEARERTOKEN111",
                    "X-Api-Key": API_KEY,
                    "Cookie": COOKIE,
                },
            )
        assert response.headers["x-subject-token"] == SUBJECT_TOKEN
        plugin_log = logging.getLogger("hypersdk.plugins.demo")
        plugin_log.debug("request headers %s", dict(response.request.headers))
        plugin_log.debug("GET %s -> %s", response.request.url, response.headers)
        try:
            raise RuntimeError(f"download of {url} failed")
        except RuntimeError:
            plugin_log.exception("export failed")
    err = capsys.readouterr().err
    # The lines are there (so the test sees the real log), only the secrets are gone.
    assert "HTTP Request: GET http://**********@127.0.0.1" in err
    assert "/bucket/disk.raw?**********" in err
    assert "receive_response_headers.complete" in err
    assert "X-Subject-Token" in err
    assert "Traceback" in err
    _assert_clean(err)


def test_logging_is_restored_after_the_command() -> None:
    root = logging.getLogger()
    handlers, level, last_resort = list(root.handlers), root.level, logging.lastResort
    with configured_logging(debug=True):
        assert root.level == logging.DEBUG
    assert root.handlers == handlers
    assert root.level == level
    assert logging.lastResort is last_resort


def test_warnings_without_a_handler_are_redacted_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without --debug, a third-party warning no handler takes goes to the last resort
    # (pytest's own handlers are set aside: the console script has none).
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    with configured_logging(debug=False):
        logging.getLogger("vendor.sdk").warning("retrying https://example.test/x?sig=%s", SIGNATURE)
    err = capsys.readouterr().err
    assert "retrying https://example.test/x?**********" in err
    _assert_clean(err)


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        ("GET https://h/p?X-Amz-Signature=abc123", "abc123", "https://h/p"),
        ("GET /v1/file?sv=2024&sig=abc123 HTTP/1.1", "abc123", "/v1/file"),
        ("Authorization: Bearer abc123xyz", "abc123xyz", "Authorization:"),
        ("(b'Set-Cookie', b'id=abc123; Path=/')", "abc123", "Set-Cookie"),
        ("{'x-auth-token': 'abc123', 'accept': 'json'}", "abc123", "'accept': 'json'"),
        ("connect password='abc123' host=h", "abc123", "host=h"),
        ("x-amz-security-token: abc123", "abc123", "x-amz-security-token"),
        ("postgres://user:abc123@db:5432/app", "abc123", "db:5432/app"),
    ],
)
def test_redact_text(text: str, hidden: str, kept: str) -> None:
    redacted = redact_text(text)
    assert hidden not in redacted
    assert kept in redacted


def test_mask_url() -> None:
    assert mask_url("https://h/p") == "https://h/p"
    assert mask_url("https://u:p@h:8443/p?q=1#f") == "https://**********@h:8443/p?**********"
    assert mask_url("https://h#access_token=x") == "https://h#**********"


def test_cli_debug_export_never_logs_a_signature_or_a_cookie(cli_env: CliEnv) -> None:
    cli_env.handler.extra_headers = {"Set-Cookie": COOKIE, "X-Subject-Token": SUBJECT_TOKEN}
    signed = f"{cli_env.disk_url}?X-Amz-Signature={SIGNATURE}"
    cli_env.write_config(
        f'[providers.clisample]\ntoken_env = "CLISAMPLE_TOKEN"\ndisk_url = "{signed}"\n'
    )
    result = cli_env.run(
        *("export", "1", "--provider", "clisample", "--format", "raw", "--debug"),
        *("--output", str(cli_env.root / "out")),
    )
    assert result.returncode == 0, result.stderr
    assert "HTTP Request: GET" in result.stderr  # httpx did log the request
    assert "x-subject-token" in result.stderr.lower()  # and httpcore the headers
    _assert_clean(result.stdout + result.stderr)
