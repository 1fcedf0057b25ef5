"""The transport half shared by every provider: which failures mean "maybe sent"."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.errors import MaybeSent, PermanentProviderError, TemporaryProviderError
from providers._http import raise_for_transient_status, transport_error, unreadable_answer


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("cut short"),
        aiohttp.SocketTimeoutError("read"),
        TimeoutError(),
    ],
    ids=["disconnected", "payload", "read-timeout", "total-timeout"],
)
def test_a_failure_after_the_request_went_out_is_maybe_sent(exc: BaseException) -> None:
    error = transport_error("vendor", exc, base_url_name="VENDOR_BASE_URL")

    assert isinstance(error, MaybeSent)
    assert (error.provider, error.code) == ("vendor", "timeout_after_send")
    assert "after sending" in error.detail


def test_a_failure_to_connect_is_temporary_and_nothing_was_sent() -> None:
    error = transport_error(
        "vendor", aiohttp.ConnectionTimeoutError("connect"), base_url_name="VENDOR_BASE_URL"
    )

    assert type(error) is TemporaryProviderError
    assert error.code == "connect"


def test_a_malformed_base_url_is_permanent_and_names_the_setting() -> None:
    error = transport_error("vendor", aiohttp.InvalidURL("nope"), base_url_name="VENDOR_BASE_URL")

    assert type(error) is PermanentProviderError
    assert error.code == "config"
    assert "VENDOR_BASE_URL" in error.detail


@pytest.mark.parametrize(
    ("status", "expected", "code"),
    [
        (429, TemporaryProviderError, "throttled"),
        (408, TemporaryProviderError, "http_408"),
        (500, TemporaryProviderError, "http_500"),
        (503, TemporaryProviderError, "http_503"),
        (504, MaybeSent, "timeout_after_send"),
    ],
)
def test_transient_statuses(status: int, expected: type[Exception], code: str) -> None:
    with pytest.raises(TemporaryProviderError) as caught:
        raise_for_transient_status("vendor", status, "7")

    assert type(caught.value) is expected
    assert caught.value.code == code


@pytest.mark.parametrize("status", [200, 201, 400, 401, 404])
def test_other_statuses_are_left_to_the_vendor_mapping(status: int) -> None:
    raise_for_transient_status("vendor", status, None)


def test_an_unreadable_answer_is_maybe_sent() -> None:
    error = unreadable_answer("vendor", 200)

    assert isinstance(error, MaybeSent)
    assert "HTTP 200" in error.detail
