"""An officer's own reply on a report, through the real send path: verbatim on the OA,
unaccented by SMS, and never put in a ZNS template (which cannot hold it). Real worker
processes, the fake Zalo and the SMS vendor fakes over loopback HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.settings import Settings
from gateway.storage.tables import deliveries, notices
from tests.chat.conftest import (
    CODE,
    OWNER_PHONE,
    ChatRig,
    running_chat_rig,
    subscribed,
    text_of,
)
from tests.helpers import event

# A template of the fake Zalo, configured for the report's notice so ZNS is in the plan.
STATUS_TEMPLATE = "250003"
REPLY = (
    f"Chào ông/bà, Sở Xây dựng đang kiểm tra lại hồ sơ {CODE}.\nChúng tôi sẽ gọi lại trong tuần."
)
REPLY_PLAIN = (
    f"Chao ong/ba, So Xay dung dang kiem tra lai ho so {CODE}. Chung toi se goi lai trong tuan."
)


@pytest.fixture
async def rig(chat_settings: Settings) -> AsyncIterator[ChatRig]:
    async with running_chat_rig(
        chat_settings, ZNS_TEMPLATE_REPORT_IN_PROGRESS=STATUS_TEMPLATE
    ) as ready:
        status, answer, _ = await ready.gateway.post(event("dossier.received"))
        assert status == 202, answer
        yield ready


async def phoned_in_report(rig: ChatRig, headers: dict[str, str]) -> int:
    response = await rig.gateway.client.post(
        "/v1/reports",
        json={
            "dossier": CODE,
            "kind": "problem",
            "description": "Tôi chưa nhận được kết quả",
            "phone": OWNER_PHONE,
        },
        headers=headers,
    )
    assert response.status == 201, await response.text()
    report_id: int = (await response.json())["id"]
    return report_id


async def move(rig: ChatRig, report_id: int, headers: dict[str, str], **body: Any) -> None:
    response = await rig.gateway.client.post(
        f"/v1/reports/{report_id}/transitions",
        json={"to": "in_progress", **body},
        headers=headers,
    )
    assert response.status == 200, await response.text()


async def settled_in_progress(rig: ChatRig, count: int) -> list[Any]:
    """The ``report_in_progress`` notices, once ``count`` of them are past sending."""
    query = (
        sa.select(notices)
        .where(notices.c.kind == "report_in_progress")
        .order_by(notices.c.created_at, notices.c.id)
    )
    for _ in range(150):
        rows = await rig.rows(query)
        if len(rows) == count and all(r.state in ("sent", "delivered") for r in rows):
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(rows)


async def channels_tried(rig: ChatRig, notice_id: str) -> list[str]:
    rows = await rig.rows(
        sa.select(deliveries.c.channel).where(deliveries.c.notice_id == notice_id)
    )
    return sorted(r.channel for r in rows)


async def test_a_reply_goes_by_sms_as_written_and_skips_zns(rig: ChatRig) -> None:
    headers = {"Authorization": f"Bearer {await rig.staff_token()}"}
    own = await phoned_in_report(rig, headers)
    templated = await phoned_in_report(rig, headers)
    await move(rig, own, headers, reply=REPLY)
    await move(rig, templated, headers, note="Đã chuyển Sở Xây dựng")
    await rig.work()
    rows = await settled_in_progress(rig, 2)
    by_report = {r.event_id.split("-")[1]: r for r in rows}
    mine, theirs = by_report[str(own)], by_report[str(templated)]
    # The template's notice tried ZNS first; the reply's never did.
    assert "zns" in await channels_tried(rig, theirs.id)
    assert await channels_tried(rig, mine.id) == ["sms"]
    assert mine.channel == "sms"
    assert mine.text == REPLY_PLAIN
    assert REPLY_PLAIN in [m.content for m in rig.esms.messages]


async def test_a_reply_goes_on_the_oa_verbatim(rig: ChatRig) -> None:
    user = await subscribed(rig)
    headers = {"Authorization": f"Bearer {await rig.staff_token()}"}
    report_id = await phoned_in_report(rig, headers)
    await move(rig, report_id, headers, reply=REPLY)
    await rig.work()
    (notice,) = await settled_in_progress(rig, 1)
    assert notice.channel == "oa"
    sent = [m for m in rig.zalo.messages_for(user.user_id) if text_of(m) == REPLY]
    assert len(sent) == 1  # verbatim, its line break included, and once
    assert not [m for m in rig.esms.messages if "Chao ong/ba" in m.content]
