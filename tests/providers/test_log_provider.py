"""The development provider: logs instead of sending, masks the phone number."""

from __future__ import annotations

import logging

import pytest

from gateway.domain.phones import mask_phone
from providers.base import SmsMessage
from providers.log import LogProvider

TEXT = "Hồ sơ 000.00.12.H19-240401-0001 đã được tiếp nhận."


def sms(request_id: str = "notice-1:sms:log") -> SmsMessage:
    return SmsMessage("notice-1", request_id, "+84912345678", TEXT, True, 1)


async def test_send_logs_the_text_with_the_phone_masked(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="providers.log")

    accepted = await LogProvider().send(sms(), callback_url=None)

    assert accepted.provider == "log"
    assert accepted.provider_message_id is not None
    assert accepted.provider_message_id.startswith("log-")
    assert not accepted.already_sent
    [record] = caplog.records
    assert TEXT in record.getMessage()
    assert mask_phone("+84912345678") in record.getMessage()
    assert "912345678" not in record.getMessage()
    assert record.__dict__["request_id"] == "notice-1:sms:log"


async def test_ids_are_unique_and_a_repeated_request_is_already_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="providers.log")
    provider = LogProvider()

    first = await provider.send(sms("a"), callback_url=None)
    other = await provider.send(sms("b"), callback_url=None)
    again = await provider.send(sms("a"), callback_url=None)

    assert first.provider_message_id != other.provider_message_id
    assert again.already_sent
    assert again.provider_message_id == first.provider_message_id
    assert len(caplog.records) == 2


def test_log_provider_sends_accents_and_no_receipts() -> None:
    provider = LogProvider()

    assert provider.name == "log"
    assert provider.accents is True
    assert provider.parse_receipts({"SMSID": "x"}, b"{}") == []
    assert provider.idempotent is True
