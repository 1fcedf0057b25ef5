"""gateway.trust.subscriptions on SQLite and PostgreSQL: subscribing tells the previous
channel once (an SMS to the phone, or an OA message to the account subscribed before,
whose subscription ends), subscribing again tells nobody, and a subscription stops from
either side (the OA user, or the phone behind the SMS link)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.domain.routing import ZaloContact, plan_channels
from gateway.settings import Settings
from gateway.storage.db import create_engine
from gateway.storage.tables import notices, zalo_users
from gateway.trust.links import Links, link_token
from gateway.trust.subscriptions import CHANNEL_MOVED_KIND, stop, subscribe

PHONE = "+84912345678"
OTHER_PHONE = "+84987654321"
NOW = datetime(2024, 4, 15, 2, 0, tzinfo=UTC)
SECRET = "s" * 40


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database_url, writer=True)
    try:
        yield engine
    finally:
        await engine.dispose()


async def proven(engine: AsyncEngine, user_id: str, phone: str, *, subscribed: bool) -> None:
    """An OA user whose number was proven by a code (and maybe subscribed to it)."""
    async with engine.begin() as conn:
        await conn.execute(
            zalo_users.insert().values(
                user_id=user_id,
                follows=True,
                phone_e164=phone,
                verified_at=NOW - timedelta(days=1),
                subscribed_at=NOW - timedelta(days=1) if subscribed else None,
                last_interaction_at=NOW,
                created_at=NOW,
                updated_at=NOW,
            )
        )


async def rows(engine: AsyncEngine, query: sa.Select[Any]) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def subscribers(engine: AsyncEngine) -> dict[str, bool]:
    found = await rows(engine, sa.select(zalo_users.c.user_id, zalo_users.c.subscribed_at))
    return {r.user_id: r.subscribed_at is not None for r in found}


async def test_the_phone_is_told_once_by_sms_with_its_link(engine: AsyncEngine) -> None:
    await proven(engine, "u1", PHONE, subscribed=False)
    links = Links(SECRET, "https://hcc.example.vn")
    (notice_id,) = await subscribe(engine, user_id="u1", phone_e164=PHONE, now=NOW, links=links)
    (row,) = await rows(engine, sa.select(notices))
    assert (row.id, row.kind, row.phone_e164, row.zalo_user_id, row.state, row.lane) == (
        notice_id,
        CHANNEL_MOVED_KIND,
        PHONE,
        None,
        "created",
        "urgent",
    )
    assert row.link_token == link_token(SECRET, notice_id)
    assert row.params["link"] == f"https://hcc.example.vn/l/{row.link_token}"
    assert await subscribers(engine) == {"u1": True}
    # Again: nothing changes, nobody is told twice.
    assert await subscribe(engine, user_id="u1", phone_e164=PHONE, now=NOW, links=links) == []
    assert len(await rows(engine, sa.select(notices))) == 1


async def test_the_account_subscribed_before_is_told_on_the_oa_and_stopped(
    engine: AsyncEngine,
) -> None:
    await proven(engine, "before", PHONE, subscribed=True)
    await proven(engine, "elsewhere", OTHER_PHONE, subscribed=True)
    await proven(engine, "now", PHONE, subscribed=False)
    (notice_id,) = await subscribe(engine, user_id="now", phone_e164=PHONE, now=NOW)
    (row,) = await rows(engine, sa.select(notices))
    assert (row.id, row.zalo_user_id, row.phone_e164, row.link_token) == (
        notice_id,
        "before",
        PHONE,
        None,  # no CITIZEN_SECRET: no link
    )
    assert await subscribers(engine) == {"before": False, "elsewhere": True, "now": True}


async def test_stopping_by_phone_or_by_user(engine: AsyncEngine) -> None:
    await proven(engine, "u1", PHONE, subscribed=True)
    await proven(engine, "u2", OTHER_PHONE, subscribed=True)
    assert await stop(engine, phone_e164=PHONE, by="web", now=NOW) == "u1"
    assert await stop(engine, phone_e164=PHONE, by="web", now=NOW) is None
    assert await stop(engine, user_id="u2", by="oa", now=NOW) == "u2"
    assert await stop(engine, user_id="u2", by="oa", now=NOW) is None
    assert await subscribers(engine) == {"u1": False, "u2": False}
    # The proven numbers stay: subscribing again needs no new code.
    found = await rows(engine, sa.select(zalo_users.c.phone_e164).order_by(zalo_users.c.user_id))
    assert [r.phone_e164 for r in found] == [PHONE, OTHER_PHONE]
    with pytest.raises(ValueError, match="exactly one"):
        await stop(engine, by="oa", now=NOW)
    with pytest.raises(ValueError, match="exactly one"):
        await stop(engine, phone_e164=PHONE, user_id="u1", by="oa", now=NOW)


def test_channel_moved_is_never_sent_by_zns() -> None:
    contact = ZaloContact("before", True, NOW, True)
    plan = plan_channels(
        CHANNEL_MOVED_KIND,
        phone_e164=PHONE,
        contact=contact,
        zns_template="123456",  # even if someone configured one
        failed={},
        now=NOW,
        window_days=7,
    )
    assert [s.channel for s in plan.steps] == ["oa", "sms"]
    assert "zns: channel_moved is not sent by ZNS" in plan.describe()
