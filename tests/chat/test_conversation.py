"""The whole OA conversation, driven through signed webhooks from the fake Zalo and read
back from the messages the fake received: a real gateway, a real worker process."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from gateway.storage.tables import chat_messages, handoffs, ratings, reports, zalo_users
from tests.chat.conftest import (
    CODE,
    OWNER_PHONE,
    STRANGER_PHONE,
    ChatRig,
    buttons,
    text_of,
    texts,
)
from tests.helpers import event

MENU = ["#lookup", "#report", "#subscribe", "#rate", "#human"]
SUBSCRIBED_MENU = ["#lookup", "#report", "#unsubscribe", "#rate", "#human"]


async def test_welcome_lookup_with_proof_subscription_report_and_handoff(chat: ChatRig) -> None:
    user = chat.citizen("Nguyễn Văn An", OWNER_PHONE)

    welcome, menu = await chat.follow(user)
    assert "Xin chào" in text_of(welcome)
    assert buttons(menu) == MENU
    assert "1. Tra cứu hồ sơ" in text_of(menu)  # the numbered fallback

    (menu,) = await chat.say(user, "alo alo")
    assert "chưa hiểu" in text_of(menu)
    assert buttons(menu) == MENU

    # A code typed with slips, no diacritics: nothing is shown before the proof.
    ask, card = await chat.say(user, "tra cuu ho so 000.00.12.h19 240401 0001 giup toi", replies=2)
    assert CODE in text_of(ask)
    assert "4 chữ số cuối" in text_of(ask)
    assert text_of(card) == "[share phone]"
    assert "Sở Xây dựng" not in " ".join(texts([ask, card]))

    (wrong,) = await chat.say(user, "1111")
    assert "còn 4 lần" in text_of(wrong)
    assert "Sở Xây dựng" not in text_of(wrong)

    (answer,) = await chat.say(user, "5678")
    body = text_of(answer)
    for fact in ("Cấp giấy phép xây dựng", "Sở Xây dựng", "đã tiếp nhận", "12/04/2024"):
        assert fact in body, body
    assert f"#report_false {CODE}" in buttons(answer)
    assert "#subscribe" in buttons(answer)

    # The last four digits read, but a report needs a code (or the proven number).
    needed, _card = await chat.click(user, f"#report_false {CODE}", replies=2)
    assert "mã xác thực" in text_of(needed)

    # Subscribing needs the phone shared through Zalo, then the code sent to it.
    ask, card = await chat.click(user, "#subscribe", replies=2)
    assert text_of(card) == "[share phone]"
    (done,) = await chat.prove(user)
    assert "…78" in text_of(done) and "678" not in text_of(done)
    (row,) = await chat.rows(sa.select(zalo_users).where(zalo_users.c.user_id == user.user_id))
    assert row.phone_e164 == OWNER_PHONE
    assert row.subscribed_at is not None
    assert row.follows

    # A false-closure report from the lookup answer's button.
    (describe,) = await chat.click(user, f"#report_false {CODE}")
    assert "mô tả" in text_of(describe)
    (opened,) = await chat.say(user, "Tôi đến quầy 5 nhưng cán bộ nói chưa có kết quả")
    (report,) = await chat.rows(sa.select(reports))
    assert report.number in text_of(opened)
    assert report.kind == "false_closure"
    assert report.source == "zalo"
    assert report.dossier_code == CODE
    assert report.description == "Tôi đến quầy 5 nhưng cán bộ nói chưa có kết quả"
    assert report.zalo_user_id == user.user_id
    assert report.proof == "proven_phone"  # the number proven by its code is the dossier's
    stored = await chat.rows(
        sa.select(chat_messages.c.text).where(
            chat_messages.c.report_id == report.id, chat_messages.c.direction == "in"
        )
    )
    assert [r.text for r in stored] == ["Tôi đến quầy 5 nhưng cán bộ nói chưa có kết quả"]
    # What was read as a proof is kept masked, the raw webhook dropped: the console shows
    # conversations, and digits of a phone or a code are a key.
    typed = await chat.rows(
        sa.select(chat_messages.c.text, chat_messages.c.payload).where(
            chat_messages.c.user_id == user.user_id,
            chat_messages.c.direction == "in",
            chat_messages.c.event_name == "user_send_text",
        )
    )
    proofs = [r for r in typed if r.text == "••••••"]
    assert len(proofs) == 3  # "1111", "5678" and the code
    assert all(r.payload is None for r in proofs)
    assert not [r for r in typed if r.text in ("1111", "5678") or (r.text or "").isdigit()]

    # Talk to a person: the bot steps aside (it only acknowledges the forwarded message)
    # until the citizen ends the conversation.
    (opened,) = await chat.click(user, "#human")
    assert "cán bộ" in text_of(opened)
    (ack,) = await chat.say(user, "Cho tôi hỏi bao giờ có kết quả?")
    assert "Đã chuyển cho cán bộ tổng đài" in text_of(ack)
    forwarded = await _wait_rows(
        chat,
        sa.select(chat_messages).where(
            chat_messages.c.text == "Cho tôi hỏi bao giờ có kết quả?",
            chat_messages.c.handled_at.is_not(None),
        ),
    )
    assert forwarded[0].handoff_id is not None
    before = len(chat.zalo.messages_for(user.user_id))
    # A hotline officer answers through the staff API; the answer goes out by OA.
    token = await chat.staff_token()
    response = await chat.gateway.client.get(
        f"/v1/reports/{report.id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert (await response.json())["proof"] == "proven_phone"
    handoff_id = forwarded[0].handoff_id
    response = await chat.gateway.client.post(
        f"/v1/handoffs/{handoff_id}/replies",
        json={"text": "Chào anh, hồ sơ của anh sẽ có kết quả trong tuần này."},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 202, await response.text()
    (answer,) = (await chat.zalo.wait_for_messages(user.user_id, before + 1, within=10))[-1:]
    assert text_of(answer) == "Chào anh, hồ sơ của anh sẽ có kết quả trong tuần này."
    (closed, menu) = await chat.say(user, "ket thuc", replies=2)
    assert "kết thúc" in text_of(closed)
    assert buttons(menu) == SUBSCRIBED_MENU  # a subscribed citizen may stop it from here
    (handoff,) = await chat.rows(sa.select(handoffs))
    assert handoff.status == "closed"
    assert handoff.dossier_code == CODE  # the dossier proven earlier in the conversation
    # With the officer gone, the bot answers again.
    (menu,) = await chat.say(user, "menu")
    assert buttons(menu) == SUBSCRIBED_MENU


async def test_an_officer_closing_the_conversation_tells_the_citizen(chat: ChatRig) -> None:
    user = chat.citizen("Nguyễn Văn An", OWNER_PHONE, follows=True)
    (opened,) = await chat.click(user, "#human")
    assert "cán bộ" in text_of(opened)
    (handoff,) = await chat.rows(sa.select(handoffs))
    token = await chat.staff_token()
    response = await chat.gateway.client.post(
        f"/v1/handoffs/{handoff.id}/close", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200, await response.text()
    (farewell,) = (await chat.zalo.wait_for_messages(user.user_id, 2, within=10))[-1:]
    assert "kết thúc" in text_of(farewell)
    (menu,) = await chat.say(user, "xin chao")
    assert buttons(menu) == MENU


async def test_wrong_proofs_lock_lookups_for_the_user(chat: ChatRig) -> None:
    user = chat.citizen("Lê Thị Cúc", STRANGER_PHONE, follows=True)
    await chat.say(user, CODE, replies=2)
    for left in (4, 3, 2, 1):
        (wrong,) = await chat.say(user, "0000")
        assert f"còn {left} lần" in text_of(wrong)
    (locked,) = await chat.say(user, "0000")
    assert "tạm khóa" in text_of(locked)
    # Even the right digits are refused now, and the dossier is never shown.
    (still,) = await chat.say(user, CODE)
    assert "tạm khóa" in text_of(still)
    (still,) = await chat.say(user, "5678")
    assert "Sở Xây dựng" not in text_of(still)
    everything = " ".join(texts(chat.zalo.messages_for(user.user_id)))
    assert "Sở Xây dựng" not in everything
    assert "Cấp giấy phép" not in everything
    stderr = await chat.stop_worker()
    assert stderr.count("dossier ownership proof refused") == 5
    assert "lookups locked after wrong proofs" in stderr
    assert "912345678" not in stderr and "987654321" not in stderr


async def test_result_check_not_received_opens_a_report_and_rating_is_stored(
    chat: ChatRig,
) -> None:
    user = chat.citizen("Nguyễn Văn An", OWNER_PHONE)
    await chat.follow(user)
    await chat.click(user, "#subscribe", replies=2)
    await chat.prove(user)

    # The dossier is closed; the invitation goes by OA to the subscribed citizen.
    status, answer, _ = await chat.gateway.post(event("dossier.finished", at=_days_ago(10)))
    assert status == 202, answer
    # (Welcome and menu, the subscription's prompt and card, code sent, done: 6 so far.)
    (invitation,) = (await chat.zalo.wait_for_messages(user.user_id, 7, within=10))[-1:]
    assert "Trung tâm Hành chính công" in text_of(invitation)
    assert invitation.channel == "oa"

    # Working days later (it was finished 10 days ago) the sweep asks about the result.
    await chat.run_job("sweep_deadlines")
    messages = await chat.zalo.wait_for_messages(user.user_id, 8, within=10)
    check = messages[-1]
    assert buttons(check) == [f"#received {CODE}", f"#not_received {CODE}"]

    (opened,) = await chat.say(user, "chua nhan")  # typed, no diacritics, no code
    (report,) = await chat.rows(sa.select(reports))
    assert report.source == "result_check"
    assert report.kind == "false_closure"
    assert report.number in text_of(opened)

    # Delivered: a rating request, answered with two typed scores and a comment.
    status, answer, _ = await chat.gateway.post(event("dossier.delivered", at=_days_ago(1)))
    assert status == 202, answer
    count = len(chat.zalo.messages_for(user.user_id))
    await chat.run_job("sweep_deadlines")
    messages = await chat.zalo.wait_for_messages(user.user_id, count + 1, within=10)
    request = messages[-1]
    assert f"#rate {CODE} 5" in buttons(request), texts(messages[-3:])
    (quality,) = await chat.say(user, "4")  # the progress
    assert "tiến độ 4/5" in text_of(quality)
    assert f"#rate_quality {CODE} 5" in buttons(quality)
    (thanks,) = await chat.say(user, "5")
    assert "tiến độ 4/5, chất lượng 5/5" in text_of(thanks)
    (done,) = await chat.say(user, "Cán bộ nhiệt tình")
    assert "ghi nhận" in text_of(done)
    (rating,) = await chat.rows(sa.select(ratings))
    assert (
        rating.progress_score,
        rating.quality_score,
        rating.score,
        rating.comment,
        rating.agency_code,
        rating.channel,
        rating.rater,
    ) == (4, 5, None, "Cán bộ nhiệt tình", "000.00.12.H19", "oa", f"oa:{user.user_id}")


async def _wait_rows(chat: ChatRig, query: sa.Select[Any]) -> list[Any]:
    for _ in range(100):
        rows = await chat.rows(query)
        if rows:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError("no row")


def _days_ago(days: int) -> str:
    """A moment ``days`` ago: follow-ups only look at the last 30 days."""
    return (datetime.now(UTC) - timedelta(days=days)).replace(microsecond=0).isoformat()
