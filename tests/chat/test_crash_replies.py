"""A drain cut short answers every citizen once: not twice after a crash that followed
the answer, not never when Redis failed under the bot (both found by ``bench.chaos``),
and not twice after a crash while Zalo was taking the answer: a reply is written
``sending`` before the OA call, and one a later drain finds still ``sending`` is marked
``unknown`` for a person instead of being sent again.

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
from gateway.chat.services import ChatServices
from gateway.http.console.conversations import _sending
from gateway.processes import jobs
from gateway.settings import Settings
from gateway.storage.tables import chat_messages
from providers.zalo.client import ZaloClient
from tests.chat.conftest import ChatRig, running_chat_rig, text_of

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


async def test_a_crash_while_zalo_takes_the_answer_does_not_answer_again(
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
        # be on its way), then marks the reply unknown, without a second call to Zalo.
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="gateway.chat.conversation"):
            assert await jobs._drain(rig.settings, user.user_id) == 1
        assert time.monotonic() - started >= 0.5
        assert rig.zalo.messages_for(user.user_id) == [answer]
        (reply,) = await _replies(rig)
        assert reply.payload["state"] == "unknown"
        assert reply.payload["in_reply_to"] == (await _first_inbound_key(rig))
        assert _sending(dict(reply._mapping)) == "unknown"  # "Không rõ đã gửi" in the console
        assert await _inbound_handled(rig) == [True]
        assert any("not sent again" in r.getMessage() for r in caplog.records)

        # Later messages are answered, and their replies recorded sent.
        assert await rig.zalo.send_text(user.user_id, "menu") == 200
        assert await jobs._drain(rig.settings, user.user_id) == 1
        assert len(rig.zalo.messages_for(user.user_id)) == 2
        _first, second = await _replies(rig)
        assert second.payload["state"] == "sent"
        assert second.dedupe_key == f"oa:{rig.zalo.messages_for(user.user_id)[1].message_id}"
        assert _sending(dict(second._mapping)) is None
        assert await _inbound_handled(rig) == [True, True]


async def test_a_crash_before_the_call_reached_zalo_is_left_for_a_person(
    chat_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row cannot tell "died before the call" from "died during it": both are
    unknown, never a blind second message."""
    async with running_chat_rig(chat_settings, ZALO_TIMEOUT_SECONDS="1") as rig:
        user = rig.citizen("Võ Thị Em", None, follows=True)
        assert await rig.zalo.send_text(user.user_id, "menu") == 200
        with monkeypatch.context() as patch:
            patch.setattr(ZaloClient, "send_oa", _killed)
            with pytest.raises(RuntimeError):
                await jobs._drain(rig.settings, user.user_id)
        assert await jobs._drain(rig.settings, user.user_id) == 1
        assert rig.zalo.messages_for(user.user_id) == []
        (reply,) = await _replies(rig)
        assert reply.payload["state"] == "unknown"
        assert await _inbound_handled(rig) == [True]


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
