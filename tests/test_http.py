"""hypersdk.http: the same error mapping from plain facts as from an httpx response."""

from __future__ import annotations

import http.client
import socket

import httpx
import pytest
import requests

import hypersdk
import hypersdk._http
from hypersdk import (
    AuthenticationError,
    ProviderAPIError,
    ProviderUnavailableError,
    RateLimitError,
    VMNotFoundError,
)
from hypersdk.http import (
    error_for_exception,
    error_for_response,
    error_for_status,
    json_body,
    raise_for_status,
)

TOKEN = "tok-supersecret"


def test_public_module_and_aliases_are_one_implementation() -> None:
    for name in hypersdk.http.__all__:
        assert getattr(hypersdk, name) is getattr(hypersdk.http, name), name
        assert getattr(hypersdk._http, name) is getattr(hypersdk.http, name), name
        assert getattr(hypersdk.http, name).__doc__, name
    assert "http" in dir(hypersdk)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, VMNotFoundError),
        (409, ProviderAPIError),
        (429, RateLimitError),
        (503, ProviderUnavailableError),
    ],
)
def test_status_headers_body_map_like_a_response(status: int, kind: type[Exception]) -> None:
    body = b'{"message": "the API says no"}'
    headers = {"Retry-After": "2"}
    plain = error_for_status(
        status,
        headers=headers,
        body=body,
        provider="p",
        operation="get_vm",
        method="GET",
        path=f"/v1/vms/42?token={TOKEN}",
        resource="vm",
        identifier="42",
    )
    request = httpx.Request("GET", f"https://api.test/v1/vms/42?token={TOKEN}")
    response = httpx.Response(status, content=body, headers=headers, request=request)
    via_httpx = error_for_response(
        response, provider="p", operation="get_vm", resource="vm", identifier="42"
    )
    assert type(plain) is kind
    assert type(via_httpx) is kind
    assert str(plain) == str(via_httpx)
    assert TOKEN not in str(plain)
    assert "the API says no" in str(plain)
    if status == 429:
        assert isinstance(plain, RateLimitError)
        assert plain.retry_after == 2.0


def test_headers_are_looked_up_case_insensitively_in_a_plain_dict() -> None:
    error = error_for_status(429, headers={"retry-AFTER": "1.5"}, provider="p", operation="o")
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 1.5
    assert error_for_status(302, provider="p", operation="o") is None
    raise_for_status(200, provider="p", operation="o")


def test_json_body_for_bytes() -> None:
    assert json_body(b'{"vms": []}', provider="p", operation="list", require=("vms",)) == {
        "vms": []
    }
    with pytest.raises(ProviderAPIError, match=r"not JSON \(HTTP 200 GET /v1/vms\)"):
        json_body(
            b"{oops", provider="p", operation="list", status=200, method="GET", path="/v1/vms"
        )
    with pytest.raises(ProviderAPIError, match="got list"):
        json_body("[1]", provider="p", operation="list")
    with pytest.raises(RateLimitError) as info:
        json_body(b"{}", provider="p", operation="list", status=429, headers={"Retry-After": "3"})
    assert info.value.retry_after == 3.0
    with pytest.raises(ProviderAPIError, match="nested too deeply"):
        json_body(b"[" * 100_000, provider="p", operation="list")


@pytest.mark.parametrize(
    ("exc", "phrase"),
    [
        (requests.ReadTimeout("read timed out"), "timed out"),
        (requests.ConnectionError("refused"), "could not reach"),
        (requests.exceptions.ChunkedEncodingError("broken"), "could not reach"),
        (TimeoutError(), "timed out"),
        (socket.gaierror(-2, "Name or service not known"), "could not reach"),
        (http.client.IncompleteRead(b"abc", 10), "could not reach"),
        (httpx.ReadTimeout("slow"), "timed out"),
    ],
)
def test_transport_errors_of_any_client(exc: Exception, phrase: str) -> None:
    error = error_for_exception(
        exc, provider="p", operation="list_vms", method="GET", path=f"/v1/vms?token={TOKEN}"
    )
    assert isinstance(error, ProviderUnavailableError)
    assert phrase in str(error)
    assert "(GET /v1/vms)" in str(error)
    assert TOKEN not in str(error)


def test_other_exceptions_are_api_errors() -> None:
    error = error_for_exception(ValueError("odd"), provider="p", operation="o")
    assert type(error) is ProviderAPIError


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        # Nova, Cinder, Manila: {"<faultName>": {"code": ..., "message": ...}}
        (b'{"itemNotFound": {"code": 404, "message": "Instance x could not be found."}}',
         "Instance x could not be found."),
        (b'{"conflictingRequest": {"code": 409, "message": "Cannot createImage now"}}',
         "Cannot createImage now"),
        # Neutron: {"NeutronError": {"type": ..., "message": ..., "detail": ""}}
        (b'{"NeutronError": {"type": "PortNotFound", "message": "Port p could not be found.",'
         b' "detail": ""}}', "Port p could not be found."),
        # Keystone: {"error": {"code": ..., "message": ..., "title": ...}}
        (b'{"error": {"code": 401, "message": "requires authentication", "title": "Unauthorized"}}',
         "requires authentication"),
    ],
)  # fmt: skip
def test_a_single_fault_object_wrapping_the_message_is_unwrapped(body: bytes, shown: str) -> None:
    error = error_for_status(404, provider="demo", operation="get_vm", body=body)
    assert error is not None
    assert shown in str(error)


def test_several_top_level_objects_are_not_guessed_at() -> None:
    body = b'{"a": {"message": "one"}, "b": {"message": "two"}}'
    error = error_for_status(400, provider="demo", operation="list_vms", body=body)
    assert error is not None
    assert "one" not in str(error)
    assert "two" not in str(error)
