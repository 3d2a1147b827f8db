"""Secrets in places the log filter used to miss: bare mapping arguments, ``extra=``
fields, JSON objects under a secret key, URL-encoded pairs, non-string JSON values."""

from __future__ import annotations

import io
import json
import logging

import pytest

from hypersdk._redact import MASK, RedactingFilter, redact_text

SECRET = "S3CR3TS3CR3T"


def emitted(fmt: str, emit: object) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter(fmt))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("hypersdk.test.hostile")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        assert callable(emit)
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


def test_a_bare_value_from_a_mapping_argument_is_masked() -> None:
    text = emitted(
        "%(message)s",
        lambda log: log.info("%(token)s by %(user)s", {"token": SECRET, "user": "ada"}),
    )
    assert SECRET not in text
    assert "ada" in text


def test_extra_fields_are_redacted_for_any_formatter() -> None:
    text = emitted(
        "%(message)s %(api_token)s %(detail)s",
        lambda log: log.info(
            "hi", extra={"api_token": SECRET, "detail": f"Authorization: Bearer {SECRET}"}
        ),
    )
    assert SECRET not in text
    assert MASK in text


@pytest.mark.parametrize(
    "body",
    [
        {"access": {"token": {"id": SECRET, "expires": "2030"}}},  # Keystone v2
        {"token": {"value": SECRET, "nested": {"deeper": SECRET}}},
        {"secret": 12345678, "pin": 9876},
        {"credentials": [{"key": SECRET}]},
    ],
)
def test_secrets_inside_json_bodies_are_masked(body: object) -> None:
    text = redact_text(f"response body: {json.dumps(body)}")
    assert SECRET not in text
    assert "12345678" not in text


@pytest.mark.parametrize(
    "text",
    [
        f"body=X-Auth-Token%3A%20{SECRET}",
        f"grant_type%3Dpassword%26password%3D{SECRET}",
        f"Authorization%3A+Bearer+{SECRET}",
    ],
)
def test_url_encoded_pairs_are_masked(text: str) -> None:
    assert SECRET not in redact_text(text)


def test_plain_text_is_left_alone() -> None:
    kept = 'status: 200, {"name": "web", "count": 3, "meta": {"region": "x"}} a%3Db'
    assert redact_text(kept) == kept
