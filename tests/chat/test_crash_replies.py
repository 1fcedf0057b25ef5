"""A drain cut short answers every citizen once: not twice after a crash that followed
the answer, not never when Redis failed under the bot (both found by ``bench.chaos``).

The drain job's own code runs in this process (``jobs._drain``); the crash and the Redis
failure are injected at the one step they hit in the chaos run."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.chat.conversation import Conversations
from gateway.chat.services import ChatServices
from gateway.processes import jobs
from gateway.settings import Settings
from gateway.storage.tables import chat_messages
from tests.chat.conftest import running_chat_rig, text_of

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
