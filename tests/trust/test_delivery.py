"""One-time codes on their way: real `tthc worker` processes, the SMS vendor fakes and
the fake Zalo over loopback HTTP.

A code goes by SMS, or by ZNS when ``ZNS_TEMPLATE_OTP`` is configured; never by OA
message, even to an OA user subscribed for the phone; never held back by quiet hours;
not at all once it has expired; and it is in no line the worker logs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from redis import Redis

from gateway.delivery.queues import enqueue
from gateway.settings import Settings
from gateway.storage.db import create_engine
from gateway.storage.tables import notices
from gateway.trust.otp import CodeSent, OneTimeCodes
from providers.fakes.zalo import FakeZalo
from providers.fakes.zalo.state import FakeTemplate
from tests.chat.conftest import OWNER_PHONE, ChatRig, running_chat_rig, subscribed
from tests.delivery.conftest import Rig, burst, running_rig
from tests.helpers import event

OTP_TEMPLATE = "250009"
# Quiet all day but one minute: an ordinary notice waits, a code does not.
ALL_DAY_QUIET = {"QUIET_HOURS": "00:00-23:59"}


async def send_code(settings: Settings, phone: str, *, at: datetime | None = None) -> CodeSent:
    """Ask for a code as the bot or the web page would, and offer it to the queue."""
    engine = create_engine(settings.database_url)
    try:
        codes = OneTimeCodes(engine, settings, lambda: at or datetime.now(UTC))
        sent = await codes.send_to_phone("zalo:4242", phone)
    finally:
        await engine.dispose()
    assert sent.notice_id is not None
    redis = Redis.from_url(settings.redis_url)
    try:
        enqueue(redis, settings, [(sent.notice_id, "urgent")])
    finally:
        redis.close()
    return sent


async def notice(settings: Settings, notice_id: str) -> Any:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(sa.select(notices).where(notices.c.id == notice_id))).one()
    finally:
        await engine.dispose()


async def settled(settings: Settings, notice_id: str, states: set[str]) -> Any:
    for _ in range(100):
        row = await notice(settings, notice_id)
        if row.state in states:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(row)


async def work_logged(worker_env: dict[str, str], **env: str) -> str:
    """Run `tthc worker --burst` at LOG_LEVEL=DEBUG; what it logged."""
    stdout, stderr = await burst({**worker_env, "LOG_LEVEL": "DEBUG", **env})
    return stdout + stderr


# -- SMS ----------------------------------------------------------------------------------


@pytest.fixture
async def rig(sms_settings: Settings) -> AsyncIterator[Rig]:
    quiet = Settings.from_mapping({**sms_settings.env, **ALL_DAY_QUIET})
    async with running_rig(quiet) as ready:
        yield ready


async def test_a_code_goes_by_sms_at_night_and_is_in_no_log_line(rig: Rig) -> None:
    settings = rig.gateway.settings
    status, answer, _ = await rig.gateway.post(event("dossier.received"))
    assert status == 202, answer
    sent = await send_code(settings, "+84933111222")
    code = (await notice(settings, sent.notice_id or "")).params["otp_code"]

    logged = await work_logged(rig.worker_env)
    assert "deferred to the morning" in logged  # the receipt waits; logging was on
    row = await settled(settings, sent.notice_id or "", {"sent", "delivered"})
    assert (row.channel, row.provider) == ("sms", "esms")
    assert "oa: not sent by OA message" in row.route
    [sms] = rig.esms.messages
    assert sms.phone == "0933111222" and sms.content.startswith(f"{code} la ma xac thuc")
    assert code not in logged

    # The receipt of the dossier is still waiting for the morning.
    [receipt] = [
        n for n in await rig.notices("000.00.12.H19-240401-0001") if n["kind"] == "receipt"
    ]
    assert receipt["state"] == "queued"


async def test_the_log_provider_never_writes_the_code(rig: Rig) -> None:
    settings = rig.gateway.settings
    sent = await send_code(settings, "+84933111222")
    code = (await notice(settings, sent.notice_id or "")).params["otp_code"]
    logged = await work_logged(rig.worker_env, SMS_PROVIDERS="log")
    assert "•••••• là mã xác thực" in logged
    assert code not in logged
    assert rig.esms.messages == []


async def test_an_expired_code_is_not_sent(rig: Rig) -> None:
    settings = rig.gateway.settings
    sent = await send_code(settings, "+84933111222", at=datetime.now(UTC) - timedelta(minutes=6))
    await rig.work()
    row = await settled(settings, sent.notice_id or "", {"failed"})
    assert "expired" in row.last_error
    assert rig.esms.messages == []


# -- Zalo -------------------------------------------------------------------------------


def zalo_with_otp_template() -> FakeZalo:
    fake = FakeZalo(slow_delay=0.3, timeout_delay=1.5, late_receipt_delay=1.0)
    param = {
        "name": "otp_code",
        "require": True,
        "type": "STRING",
        "maxLength": 10,
        "minLength": 0,
        "acceptNull": False,
    }
    fake.templates[OTP_TEMPLATE] = FakeTemplate(
        OTP_TEMPLATE, "Mã xác thực", [param], tag="OTP", labels={"otp_code": "Mã xác thực"}
    )
    return fake


@pytest.fixture
async def zalo_rig(chat_settings: Settings) -> AsyncIterator[ChatRig]:
    async with running_chat_rig(
        chat_settings, zalo_with_otp_template(), ZNS_TEMPLATE_OTP=OTP_TEMPLATE, **ALL_DAY_QUIET
    ) as ready:
        yield ready


async def test_with_a_template_a_code_goes_by_zns_not_to_the_subscribed_oa_user(
    zalo_rig: ChatRig,
) -> None:
    user = await subscribed(zalo_rig)  # follows, wrote today, subscribed for OWNER_PHONE
    settings = zalo_rig.settings
    sent = await send_code(settings, OWNER_PHONE)
    assert sent.channel == "zns"
    code = (await notice(settings, sent.notice_id or "")).params["otp_code"]

    logged = await work_logged(zalo_rig.worker_env)
    row = await settled(settings, sent.notice_id or "", {"sent", "delivered"})
    assert row.channel == "zns", row.route
    [zns] = zalo_rig.zalo.messages_for(phone=OWNER_PHONE)
    assert zns.channel == "zns" and zns.user_id is None
    assert zns.body["template_id"] == OTP_TEMPLATE
    assert zns.body["template_data"] == {"otp_code": code}
    assert [m for m in zalo_rig.zalo.messages_for(user.user_id) if m.channel == "oa"] == []
    assert zalo_rig.esms.messages == []
    assert code not in logged


async def test_without_a_template_a_code_goes_by_sms_not_to_the_subscribed_oa_user(
    chat_settings: Settings,
) -> None:
    async with running_chat_rig(chat_settings) as rig:
        user = await subscribed(rig)
        settings = rig.settings
        sent = await send_code(settings, OWNER_PHONE)
        assert sent.channel == "sms"
        await rig.work()
        row = await settled(settings, sent.notice_id or "", {"sent", "delivered"})
        assert row.channel == "sms", row.route
        assert "no template configured for otp" in row.route
        assert rig.zalo.messages_for(user.user_id) == []
        [sms] = rig.esms.messages
        assert sms.phone == "0912345678"
