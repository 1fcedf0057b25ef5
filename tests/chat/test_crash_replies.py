"""A drain cut short answers every citizen once: not twice after a crash that followed
the answer, not never when Redis failed under the bot (both found by ``bench.chaos``),
and neither twice nor never after a crash around the OA call: a reply is written
``sending`` before the call, and a later drain that finds one still ``sending`` asks
Zalo for the user's recent OA messages (the fake lists what it actually took): found,
the reply is recorded ``sent``; not there, it is sent now; Zalo not answering, it is
``unknown`` for a person and not sent.

The drain job's own code runs in this process (``jobs._drain``); the crash and the Redis
failure are injected at the one step they hit in the chaos run."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import sqlalchemy as sa
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.chat.conversation import Conversations
from gateway.chat.runtime import job_resources
from gateway.chat.services import ChatServices
from gateway.errors import PermanentProviderError
from gateway.http.console.conversations import _sending
from gateway.processes import jobs
from gateway.settings import Settings
from gateway.storage.tables import chat_messages
from providers.zalo.client import ZaloClient
from providers.zalo.oa import OaListed, parse_conversation
from tests.chat.conftest import OWNER_PHONE, ChatRig, buttons, running_chat_rig, text_of
from tests.helpers import CODE, event

pytestmark = pytest.mark.slow


async def test_a_crash_after_the_answer_went_out_does_not_answer_again(
    chat_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_chat_rig(chat_settings) as rig:
        user = rig.citizen("Trần Văn Bình", None, follows=True)
        assert await rig.zalo.send_text(user.user_id, "menu") == 200

        async def killed(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("the worker died here")  # SIGKILL, as the chaos run did

        with monkeypatch.context() as patch:
            patch.setattr(Conversations, "_mark_handled", killed)
            with pytest.raises(RuntimeError):
                await jobs._drain(rig.settings, user.user_id)
        (answer,) = rig.zalo.messages_for(user.user_id)
        assert "Ông/bà cần gì?" in text_of(answer)

        # The next drain finds the event still queued, sees it was answered, marks it.
        assert await jobs._drain(rig.settings, user.user_id) == 1
        assert rig.zalo.messages_for(user.user_id) == [answer]
        (row,) = await rig.rows(
            sa.select(chat_messages.c.handled_at).where(chat_messages.c.direction == "in")
        )
        assert row.handled_at is not None

        # Later messages are answered as usual.
        assert await rig.zalo.send_text(user.user_id, "menu") == 200
        assert await jobs._drain(rig.settings, user.user_id) == 1
        assert len(rig.zalo.messages_for(user.user_id)) == 2


async def test_redis_failing_under_the_bot_leaves_the_message_for_the_next_drain(
    chat_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_chat_rig(chat_settings) as rig:
        user = rig.citizen("Lê Thị Cúc", None, follows=True)
        assert await rig.zalo.send_text(user.user_id, "menu") == 200

        async def redis_gone(*args: Any, **kwargs: Any) -> None:
            raise RedisConnectionError("Connection closed by server.")

        with monkeypatch.context() as patch:
            patch.setattr(ChatServices, "load_state", redis_gone)
            with pytest.raises(RedisConnectionError):
                await jobs._drain(rig.settings, user.user_id)
        assert rig.zalo.messages_for(user.user_id) == []
        (row,) = await rig.rows(
            sa.select(chat_messages.c.handled_at).where(chat_messages.c.direction == "in")
        )
        assert row.handled_at is None  # not written off as a bad event

        assert await jobs._drain(rig.settings, user.user_id) == 1
        (answer,) = rig.zalo.messages_for(user.user_id)
        assert "Ông/bà cần gì?" in text_of(answer)


async def _replies(rig: ChatRig) -> list[Any]:
    return await rig.rows(
        sa.select(chat_messages).where(chat_messages.c.direction == "bot").order_by("id")
    )


async def _inbound_handled(rig: ChatRig) -> list[bool]:
    rows = await rig.rows(
        sa.select(chat_messages.c.handled_at)
        .where(chat_messages.c.direction == "in")
        .order_by(chat_messages.c.id)
    )
    return [row.handled_at is not None for row in rows]


async def _killed(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("the worker died here")  # SIGKILL, as the chaos run did


def _conversation_calls(rig: ChatRig) -> list[str]:
    """The modes the fake's conversation listing met, one per page read (the drain reads
    on until the listing is older than the reply, or ends)."""
    return sorted({c.mode for c in rig.zalo.calls if c.endpoint == "conversation"})


async def test_a_crash_while_zalo_takes_the_answer_is_found_at_zalo_and_not_sent_again(
    chat_settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_chat_rig(chat_settings, ZALO_TIMEOUT_SECONDS="1") as rig:
        user = rig.citizen("Phạm Văn Dũng", None, follows=True)
        assert await rig.zalo.send_text(user.user_id, "menu") == 200

        # Zalo took the reply; the worker died before writing down that it did.
        with monkeypatch.context() as patch:
            patch.setattr(Conversations, "_record_outcome", _killed)
            with pytest.raises(RuntimeError):
                await jobs._drain(rig.settings, user.user_id)
        (answer,) = rig.zalo.messages_for(user.user_id)
        assert "Ông/bà cần gì?" in text_of(answer)
        (reply,) = await _replies(rig)
        assert reply.payload["state"] == "sending"
        assert reply.dedupe_key is None

        # The next drain comes at once: it waits out the OA timeout (the call could still
        # be on its way), then finds the reply in the user's conversation at Zalo.
        started = time.monotonic()
        with caplog.at_level(logging.INFO, logger="gateway.chat.conversation"):
            assert await jobs._drain(rig.settings, user.user_id) == 1
        assert time.monotonic() - started >= 0.5
        assert _conversation_calls(rig) == ["ok"]
        assert rig.zalo.messages_for(user.user_id) == [answer]  # one copy at Zalo
        (reply,) = await _replies(rig)
        assert reply.payload["state"] == "sent"
        assert reply.dedupe_key == f"oa:{answer.message_id}"
        assert reply.payload["in_reply_to"] == (await _first_inbound_key(rig))
        assert _sending(dict(reply._mapping)) is None  # plainly sent in the console
        assert await _inbound_handled(rig) == [True]
        assert any("found at Zalo" in r.getMessage() for r in caplog.records)
        assert "Ông/bà" not in caplog.text  # no message text in the logs

        # Later messages are answered, and their replies recorded sent.
        assert await rig.zalo.send_text(user.user_id, "menu") == 200
        assert await jobs._drain(rig.settings, user.user_id) == 1
        assert len(rig.zalo.messages_for(user.user_id)) == 2
        _first, second = await _replies(rig)
        assert second.payload["state"] == "sent"
        assert second.dedupe_key == f"oa:{rig.zalo.messages_for(user.user_id)[1].message_id}"
        assert await _inbound_handled(rig) == [True, True]
        assert _conversation_calls(rig) == ["ok"]  # no lookup without a crash


async def test_a_crash_before_the_call_reached_zalo_sends_the_reply_once(
    chat_settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_chat_rig(chat_settings, ZALO_TIMEOUT_SECONDS="1") as rig:
        user = rig.citizen("Võ Thị Em", None, follows=True)
        assert await rig.zalo.send_text(user.user_id, "menu") == 200
        with monkeypatch.context() as patch:
            patch.setattr(ZaloClient, "send_oa", _killed)
            with pytest.raises(RuntimeError):
                await jobs._drain(rig.settings, user.user_id)
        assert rig.zalo.messages_for(user.user_id) == []

        with caplog.at_level(logging.INFO, logger="gateway.chat.conversation"):
            assert await jobs._drain(rig.settings, user.user_id) == 1
        assert _conversation_calls(rig) == ["ok"]
        assert any("not at Zalo; sending it now" in r.getMessage() for r in caplog.records)
        (answer,) = rig.zalo.messages_for(user.user_id)
        assert "Ông/bà cần gì?" in text_of(answer)
        (reply,) = await _replies(rig)
        assert reply.payload["state"] == "sent"
        assert reply.dedupe_key == f"oa:{answer.message_id}"
        assert await _inbound_handled(rig) == [True]
        assert await jobs._drain(rig.settings, user.user_id) == 0
        assert rig.zalo.messages_for(user.user_id) == [answer]

        # The reply sent late is the one the bot wrote, buttons and all.
        assert await rig.zalo.send_text(user.user_id, "menu") == 200
        assert await jobs._drain(rig.settings, user.user_id) == 1
        late, normal = rig.zalo.messages_for(user.user_id)
        assert buttons(normal)
        assert late.body["message"] == normal.body["message"]


async def test_the_same_answer_sent_earlier_is_not_taken_for_the_cut_off_one(
    chat_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two "menu" in a row get the same text: the first, recorded sent, is no proof that
    Zalo took the second."""
    async with running_chat_rig(chat_settings, ZALO_TIMEOUT_SECONDS="1") as rig:
        user = rig.citizen("Ngô Văn Hải", None, follows=True)
        assert await rig.zalo.send_text(user.user_id, "menu") == 200
        assert await jobs._drain(rig.settings, user.user_id) == 1
        (first,) = rig.zalo.messages_for(user.user_id)
        assert await rig.zalo.send_text(user.user_id, "menu") == 200
        with monkeypatch.context() as patch:
            patch.setattr(ZaloClient, "send_oa", _killed)
            with pytest.raises(RuntimeError):
                await jobs._drain(rig.settings, user.user_id)

        assert await jobs._drain(rig.settings, user.user_id) == 1
        assert _conversation_calls(rig) == ["ok"]
        earlier, second = rig.zalo.messages_for(user.user_id)
        assert earlier == first and second.body["message"] == first.body["message"]
        replies = await _replies(rig)
        assert [r.payload["state"] for r in replies] == ["sent", "sent"]
        assert [r.dedupe_key for r in replies] == [
            f"oa:{first.message_id}",
            f"oa:{second.message_id}",
        ]
        assert await _inbound_handled(rig) == [True, True]


@pytest.mark.parametrize("mode", ["http_500", "timeout", "token_expired"])
async def test_zalo_failing_to_list_the_conversation_leaves_the_reply_for_a_person(
    chat_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    """The row cannot tell "died before the call" from "died during it" without Zalo:
    if Zalo cannot be asked, the reply is unknown, never a blind second message."""
    async with running_chat_rig(chat_settings, ZALO_TIMEOUT_SECONDS="1") as rig:
        user = rig.citizen("Đinh Thị Khánh", None, follows=True)
        assert await rig.zalo.send_text(user.user_id, "menu") == 200
        with monkeypatch.context() as patch:
            patch.setattr(ZaloClient, "send_oa", _killed)
            with pytest.raises(RuntimeError):
                await jobs._drain(rig.settings, user.user_id)

        # token_expired twice: the client refreshes once and retries once, then gives up.
        rig.zalo.configure({"mode": mode, "count": 2 if mode == "token_expired" else 1})
        rig.zalo.timeout_delay = 1.5  # past the client's 1 s
        with caplog.at_level(logging.WARNING, logger="gateway.chat.conversation"):
            assert await jobs._drain(rig.settings, user.user_id) == 1
        calls = [c.mode for c in rig.zalo.calls if c.endpoint == "conversation"]
        assert calls == [mode] * (2 if mode == "token_expired" else 1)
        assert rig.zalo.messages_for(user.user_id) == []
        (reply,) = await _replies(rig)
        assert reply.payload["state"] == "unknown"
        assert _sending(dict(reply._mapping)) == "unknown"  # "Không rõ đã gửi" in the console
        assert await _inbound_handled(rig) == [True]
        assert any("not sent again" in r.getMessage() for r in caplog.records)
        assert await jobs._drain(rig.settings, user.user_id) == 0
        assert rig.zalo.messages_for(user.user_id) == []


@pytest.mark.parametrize("taken", [True, False], ids=["zalo_took_it", "never_left"])
async def test_a_phone_card_cut_off_by_a_crash_reaches_the_citizen_once(
    chat_settings: Settings, monkeypatch: pytest.MonkeyPatch, taken: bool
) -> None:
    """A lookup's answer is a text and the "share your phone" card; the worker dies on
    the card, after Zalo took it or before the call left."""
    async with running_chat_rig(chat_settings, ZALO_TIMEOUT_SECONDS="1") as rig:
        status, answer, _ = await rig.gateway.post(event("dossier.received"))
        assert status == 202, answer
        user = rig.citizen("Lý Thị Mai", OWNER_PHONE, follows=True)
        assert await rig.zalo.send_text(user.user_id, f"tra cứu {CODE}") == 200
        real_send = ZaloClient.send_oa

        async def dies_on_the_card(client: ZaloClient, *args: Any) -> Any:
            if rig.zalo.messages_for(user.user_id):  # the text went out: this is the card
                if taken:
                    await real_send(client, *args)
                raise RuntimeError("the worker died here")
            return await real_send(client, *args)

        with monkeypatch.context() as patch:
            patch.setattr(ZaloClient, "send_oa", dies_on_the_card)
            with pytest.raises(RuntimeError):
                await jobs._drain(rig.settings, user.user_id)
        assert len(rig.zalo.messages_for(user.user_id)) == (2 if taken else 1)

        assert await jobs._drain(rig.settings, user.user_id) == 1
        ask, card = rig.zalo.messages_for(user.user_id)
        assert CODE in text_of(ask)
        assert text_of(card) == "[share phone]"
        replies = await _replies(rig)
        assert [r.payload["state"] for r in replies] == ["sent", "sent"]
        assert [r.dedupe_key for r in replies] == [f"oa:{ask.message_id}", f"oa:{card.message_id}"]
        assert await _inbound_handled(rig) == [True]


async def test_the_client_reads_what_the_fake_took_newest_first_page_by_page(
    chat_settings: Settings,
) -> None:
    async with running_chat_rig(chat_settings) as rig:
        user = rig.citizen("Bùi Văn Lâm", None, follows=True)
        for _ in range(6):  # 6 texts and 6 answers: 12 messages
            assert await rig.zalo.send_text(user.user_id, "menu") == 200
            assert await jobs._drain(rig.settings, user.user_id) == 1
        sent = rig.zalo.messages_for(user.user_id)
        async with job_resources(rig.settings) as r:
            assert r.zalo is not None
            first = await r.zalo.recent_messages(user.user_id)
            second = await r.zalo.recent_messages(user.user_id, offset=10)
            assert await r.zalo.recent_messages(user.user_id, offset=12) == []
            with pytest.raises(PermanentProviderError) as refused:
                await r.zalo.recent_messages("no-such-user")
        assert refused.value.code == "-201"
        assert len(first) == 10 and len(second) == 2
        listed = first + second
        assert [m.from_oa for m in listed] == [True, False] * 6
        assert [m.message_id for m in listed if m.from_oa] == [m.message_id for m in sent[::-1]]
        assert all(m.text == "menu" for m in listed if not m.from_oa)
        assert all(m.kind == "text" and "Ông/bà cần gì?" in m.text for m in listed if m.from_oa)
        times = [m.at_ms or 0 for m in listed]
        assert times == sorted(times, reverse=True)


def test_the_conversation_parser_keeps_what_it_can_read() -> None:
    data = [
        {
            "src": 0,
            "time": 1765000000123,
            "type": "text",
            "message": "Xin chào",
            "message_id": "a1",
        },
        {"src": "1", "time": "1765000000000", "type": "text", "message": "menu", "msg_id": "b2"},
        {"src": 0, "type": "template", "message": {"title": "card"}, "message_id": "c3"},
        {"src": 2, "time": 1, "message": "?"},
        {"time": 1, "message": "no src"},
        "not an object",
    ]
    expected = [
        OaListed("a1", True, 1765000000123, "text", "Xin chào"),
        OaListed("b2", False, 1765000000000, "text", "menu"),
        OaListed("c3", True, None, "template", ""),
    ]
    assert parse_conversation(data) == expected
    assert parse_conversation({"messages": data}) == expected
    assert parse_conversation({"unexpected": 1}) == []
    assert parse_conversation(None) == []


async def test_zalo_answering_too_late_is_unknown_and_not_repeated(
    chat_settings: Settings,
) -> None:
    async with running_chat_rig(chat_settings, ZALO_TIMEOUT_SECONDS="1") as rig:
        user = rig.citizen("Đỗ Văn Giang", None, follows=True)
        assert await rig.zalo.send_text(user.user_id, "menu") == 200
        rig.zalo.set_mode("timeout", count=1)  # Zalo takes the reply, answers too late
        assert await jobs._drain(rig.settings, user.user_id) == 1
        assert len(rig.zalo.messages_for(user.user_id)) == 1
        (reply,) = await _replies(rig)
        assert reply.payload["state"] == "unknown"
        assert reply.payload["code"] == "timeout_after_send"
        assert await _inbound_handled(rig) == [True]
        assert await jobs._drain(rig.settings, user.user_id) == 0
        assert len(rig.zalo.messages_for(user.user_id)) == 1


async def _first_inbound_key(rig: ChatRig) -> str:
    (row, *_) = await rig.rows(
        sa.select(chat_messages.c.dedupe_key)
        .where(chat_messages.c.direction == "in")
        .order_by(chat_messages.c.id)
    )
    return str(row.dedupe_key)
