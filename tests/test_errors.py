from __future__ import annotations

import email.utils
import pickle
import time

import httpx
import pytest
import respx

import hypersdk
from hypersdk import (
    AuthenticationError,
    ChecksumMismatchError,
    ExportError,
    HyperSDKError,
    IncompatiblePluginError,
    PluginError,
    ProviderAPIError,
    ProviderUnavailableError,
    RateLimitError,
    UnsupportedFormatError,
    VMNotFoundError,
    error_for_exception,
    error_for_response,
    json_body,
    parse_retry_after,
    raise_for_response,
)

TOKEN = "dop_v1_supersecret"


def test_tree() -> None:
    assert issubclass(UnsupportedFormatError, ExportError)
    assert issubclass(ChecksumMismatchError, ExportError)
    assert issubclass(IncompatiblePluginError, PluginError)
    for name in hypersdk.errors.__all__:
        assert issubclass(getattr(hypersdk, name), HyperSDKError)


def test_message_only_and_context() -> None:
    error = VMNotFoundError("no droplet 42")
    assert str(error) == "no droplet 42"
    assert error.provider is None
    rich = RateLimitError(
        "slow down", provider="do", operation="list_vms", status=429, retry_after=2.0
    )
    assert (rich.provider, rich.operation, rich.status, rich.retry_after) == (
        "do",
        "list_vms",
        429,
        2.0,
    )
    assert "retry_after=2.0" in repr(rich)
    again = pickle.loads(pickle.dumps(rich))
    assert isinstance(again, RateLimitError)
    assert again.retry_after == 2.0
    assert again.operation == "list_vms"


class TestRetryAfter:
    def test_seconds(self) -> None:
        assert parse_retry_after("120") == 120.0
        assert parse_retry_after(" 1.5 ") == 1.5

    def test_http_date(self) -> None:
        now = time.time()
        header = email.utils.formatdate(now + 30, usegmt=True)
        assert parse_retry_after(header, now=now) == pytest.approx(30, abs=1)

    def test_past_date_is_zero(self) -> None:
        assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0

    @pytest.mark.parametrize("value", [None, "", "soon", "-5", "nan", "inf"])
    def test_unusable(self, value: str | None) -> None:
        assert parse_retry_after(value) is None


def response(
    status: int,
    body: object = None,
    *,
    text: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    request = httpx.Request(
        "GET",
        f"https://api.example.test/v2/droplets/42?token={TOKEN}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, ProviderAPIError),
        (400, ProviderAPIError),
        (422, ProviderAPIError),
        (429, RateLimitError),
        (500, ProviderUnavailableError),
        (502, ProviderUnavailableError),
        (503, ProviderUnavailableError),
    ],
)
def test_status_mapping(status: int, kind: type[HyperSDKError]) -> None:
    error = error_for_response(
        response(status, {"id": "x", "message": "The API says no"}),
        provider="digitalocean",
        operation="get_vm",
    )
    assert type(error) is kind
    assert error.status == status
    assert error.provider == "digitalocean"
    assert error.operation == "get_vm"
    text = str(error)
    assert "digitalocean" in text
    assert "get_vm" in text
    assert "The API says no" in text
    assert "/v2/droplets/42" in text
    assert TOKEN not in text
    assert TOKEN not in repr(error)


def test_404_for_a_vm() -> None:
    error = error_for_response(
        response(
            404, {"id": "not_found", "message": "The resource you requested could not be found."}
        ),
        provider="digitalocean",
        operation="get_vm",
        resource="vm",
        identifier="42",
    )
    assert isinstance(error, VMNotFoundError)
    assert "VM '42' not found" in str(error)


def test_success_is_not_an_error() -> None:
    assert error_for_response(response(200, {}), provider="p", operation="o") is None
    raise_for_response(response(204, None), provider="p", operation="o")


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), (None, None)],
)
def test_429_retry_after(header: str | None, expected: float | None) -> None:
    headers = {"Retry-After": header} if header else {}
    error = error_for_response(
        response(429, {}, headers=headers), provider="p", operation="list_vms"
    )
    assert isinstance(error, RateLimitError)
    assert error.retry_after == expected


def test_429_retry_after_http_date() -> None:
    headers = {"Retry-After": email.utils.formatdate(time.time() + 60, usegmt=True)}
    error = error_for_response(response(429, {}, headers=headers), provider="p", operation="o")
    assert isinstance(error, RateLimitError)
    assert error.retry_after is not None
    assert 55 <= error.retry_after <= 61


def test_html_error_pages_are_not_quoted() -> None:
    error = error_for_response(
        response(502, text="<html><body>Bad gateway</body></html>"), provider="p", operation="o"
    )
    assert "<html>" not in str(error)


def test_long_api_messages_are_clipped() -> None:
    error = error_for_response(response(400, {"message": "x" * 5000}), provider="p", operation="o")
    assert error is not None
    assert len(str(error)) < 500


def test_raise_for_response() -> None:
    with pytest.raises(AuthenticationError, match="Check the credentials"):
        raise_for_response(
            response(401, {"message": "Unable to authenticate you"}),
            provider="p",
            operation="connect",
        )


class TestJsonBody:
    def test_object(self) -> None:
        assert json_body(
            response(200, {"droplets": []}), provider="p", operation="o", require=("droplets",)
        ) == {"droplets": []}

    def test_malformed(self) -> None:
        with pytest.raises(ProviderAPIError, match="not JSON"):
            json_body(response(200, text="{oops"), provider="p", operation="list_vms")

    def test_wrong_shape(self) -> None:
        with pytest.raises(ProviderAPIError, match="expected a JSON object, got list"):
            json_body(response(200, [1, 2]), provider="p", operation="list_vms")

    def test_missing_key(self) -> None:
        with pytest.raises(ProviderAPIError, match="lacks droplets"):
            json_body(
                response(200, {"meta": {}}),
                provider="p",
                operation="list_vms",
                require=("droplets",),
            )

    def test_error_status_first(self) -> None:
        with pytest.raises(ProviderUnavailableError):
            json_body(response(503, {}), provider="p", operation="o")


@pytest.mark.anyio
async def test_transport_errors_map_to_unavailable() -> None:
    url = f"https://api.example.test/v2/account?token={TOKEN}"
    with respx.mock:
        respx.get("https://api.example.test/v2/account").mock(
            side_effect=httpx.ConnectTimeout("timed out")
        )
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.HTTPError) as info:
                await client.get(url)
    error = error_for_exception(info.value, provider="p", operation="connect")
    assert isinstance(error, ProviderUnavailableError)
    assert "timed out" in str(error)
    assert TOKEN not in str(error)
    assert "/v2/account" in str(error)


def test_connect_error() -> None:
    request = httpx.Request("GET", "https://api.example.test/x")
    error = error_for_exception(
        httpx.ConnectError("refused", request=request), provider="p", operation="o"
    )
    assert isinstance(error, ProviderUnavailableError)
    assert "could not reach" in str(error)


class TestRequestId:
    """The provider's id of a failed request is kept for support (issue 16, item 6)."""

    @pytest.mark.parametrize(
        "header",
        ["x-request-id", "X-Request-ID", "x-openstack-request-id", "x-amz-request-id"],
    )
    @pytest.mark.parametrize("status", [401, 404, 429, 422, 503])
    def test_from_the_header(self, header: str, status: int) -> None:
        request_id = "9b7e3c1d-55a2-4f0e-8d1c-2f6b0e6a1c44"
        error = error_for_response(
            response(status, {"id": "x", "message": "no"}, headers={header: request_id}),
            provider="digitalocean",
            operation="get_vm",
            resource="vm",
            identifier="42",
        )
        assert error is not None
        assert error.request_id == request_id
        assert f"request id {request_id}" in str(error)
        assert f"request_id={request_id!r}" in repr(error)
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error)
        assert again.request_id == request_id
        assert str(again) == str(error)

    def test_from_a_digitalocean_error_body(self) -> None:
        # DigitalOcean's error model has an optional request_id next to id and message.
        body = {
            "id": "not_found",
            "message": "The resource you requested could not be found.",
            "request_id": "4d9d8375-3c56-4925-a3e7-eb137fed17e9",
        }
        error = error_for_response(response(404, body), provider="digitalocean", operation="o")
        assert error is not None
        assert error.request_id == "4d9d8375-3c56-4925-a3e7-eb137fed17e9"
        assert "4d9d8375-3c56-4925-a3e7-eb137fed17e9" in str(error)

    def test_the_header_wins_over_the_body(self) -> None:
        error = error_for_response(
            response(500, {"request_id": "from-body"}, headers={"x-request-id": "from-header"}),
            provider="p",
            operation="o",
        )
        assert error is not None
        assert error.request_id == "from-header"

    def test_rate_limit_error_keeps_retry_after_and_request_id(self) -> None:
        error = error_for_response(
            response(429, {}, headers={"retry-after": "3", "x-request-id": "req-1"}),
            provider="p",
            operation="o",
        )
        assert isinstance(error, RateLimitError)
        assert (error.retry_after, error.request_id) == (3.0, "req-1")
        again = pickle.loads(pickle.dumps(error))
        assert (again.retry_after, again.request_id) == (3.0, "req-1")

    @pytest.mark.parametrize(
        "value", ["", "   ", "a" * 300, "id\twith\ttabs", "naïve", "two words"]
    )
    def test_unusable_values_are_left_out(self, value: str) -> None:
        # A header is attacker-influenced text headed for logs: only a plain token passes.
        error = error_for_response(
            httpx.Response(
                404,
                headers=httpx.Headers([(b"x-request-id", value.encode("utf-8"))]),
                request=httpx.Request("GET", "https://api.example.test/v2/x"),
            ),
            provider="p",
            operation="o",
        )
        assert error is not None
        assert error.request_id is None
        assert "request id" not in str(error)

    def test_no_request_id_leaves_the_message_alone(self) -> None:
        error = error_for_response(response(404, {}), provider="p", operation="o")
        assert error is not None
        assert error.request_id is None
        assert str(error) == error.message
        assert "request_id" not in repr(error)

    def test_any_error_can_be_raised_with_one(self) -> None:
        error = ProviderAPIError("the API says no", provider="p", request_id="abc-123")
        assert error.request_id == "abc-123"
        assert str(error) == "the API says no (request id abc-123)"
        assert error.message == "the API says no"
        assert VMNotFoundError("no droplet 42").request_id is None

    def test_successful_responses_have_no_error(self) -> None:
        assert (
            error_for_response(
                response(200, {}, headers={"x-request-id": "r"}), provider="p", operation="o"
            )
            is None
        )
