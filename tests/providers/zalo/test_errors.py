"""``raise_for_zalo``: every row of its table, without a network."""

from __future__ import annotations

import pytest

from gateway.errors import (
    ChannelUnavailable,
    MaybeSent,
    OutsideWindow,
    PermanentProviderError,
    ProviderError,
    RateLimited,
    TemplateRefused,
    TemporaryProviderError,
    TokenRejected,
)
from providers.zalo.errors import OA, OAUTH, ZNS, raise_for_zalo


def test_success_returns_data_and_an_oauth_answer_itself() -> None:
    assert raise_for_zalo(OA, 200, {"error": 0, "data": {"message_id": "m1"}}) == {
        "message_id": "m1"
    }
    assert raise_for_zalo(ZNS, 200, {"error": "0", "message": "Success"}) == {}
    pair = {"access_token": "a", "refresh_token": "r", "expires_in": "90000"}
    assert raise_for_zalo(OAUTH, 200, pair) == pair


@pytest.mark.parametrize(
    ("status", "body", "expected", "code"),
    [
        (200, {"error": -216}, TokenRejected, "-216"),
        (200, {"error": "-124"}, TokenRejected, "-124"),
        (200, {"error": -32}, RateLimited, "-32"),
        (429, None, RateLimited, "throttled"),
        (200, {"error": -230}, OutsideWindow, "-230"),
        (200, {"error": -213}, ChannelUnavailable, "-213"),
        (200, {"error": -118}, ChannelUnavailable, "-118"),
        (200, {"error": -1121}, TemplateRefused, "-1121"),
        (200, {"error": -146}, TemplateRefused, "-146"),
        (200, {"error": -234}, TemporaryProviderError, "-234"),
        (500, None, TemporaryProviderError, "http_500"),
        (504, None, MaybeSent, "timeout_after_send"),
        (200, None, MaybeSent, "timeout_after_send"),
        (200, ["not", "an", "object"], MaybeSent, "timeout_after_send"),
        (200, {"error": -201}, PermanentProviderError, "-201"),
        (404, None, PermanentProviderError, "http_404"),
        (200, {"data": {}}, PermanentProviderError, "invalid_answer"),
        (200, {"error": True}, PermanentProviderError, "invalid_answer"),
    ],
)
def test_each_answer_maps_to_exactly_one_type(
    status: int, body: object, expected: type[ProviderError], code: str
) -> None:
    with pytest.raises(ProviderError) as caught:
        raise_for_zalo(ZNS, status, body)

    assert type(caught.value) is expected
    assert (caught.value.provider, caught.value.code) == (ZNS, code)


def test_the_detail_explains_the_code_and_keeps_what_zalo_said() -> None:
    with pytest.raises(OutsideWindow) as caught:
        raise_for_zalo(OA, 200, {"error": -232, "message": "User has not interacted"})

    assert "has not interacted with the OA" in caught.value.detail
    assert "User has not interacted" in caught.value.detail
