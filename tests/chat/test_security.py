"""What an attacker or a curious citizen gets from the OA webhook and the bot: nothing.
Bad or missing signatures, replays, another citizen's dossier and code enumeration are
refused without revealing a fact, and each refusal is logged."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import orjson
import pytest
import sqlalchemy as sa

from gateway.storage.tables import chat_messages
from providers.zalo.webhook import sign
from tests.chat.conftest import CODE, OWNER_PHONE, STRANGER_PHONE, ChatRig, text_of, texts
from tests.helpers import event

SECRETS = ("Sở Xây dựng", "Cấp giấy phép", "Nguyễn Văn An", "912345678", "12/04/2024")


def text_event(rig: ChatRig, user_id: str, text: str, *, age: float = 0.0) -> dict[str, object]:
    """A ``user_send_text`` payload as Zalo sends it (docs/zalo.md, "Webhooks")."""
    return {
        "app_id": rig.zalo.app_id,
        "user_id_by_app": "9791221850460463999",
        "event_name": "user_send_text",
        "timestamp": str(int((time.time() - age) * 1000)),
        "sender": {"id": user_id},
        "recipient": {"id": rig.zalo.oa_id},
        "message": {"text": text, "msg_id": f"msg-{time.monotonic_ns()}"},
    }


async def post(
    rig: ChatRig, payload: dict[str, object], signature: str | None = "valid"
) -> tuple[int, object]:
    raw = orjson.dumps(payload)
    headers = {"Content-Type": "application/json", "X-ZEvent-Server": "OA OpenAPI"}
    if signature == "valid":
        key = rig.zalo.oa_secret_key
        headers["X-ZEvent-Signature"] = "mac=" + sign(
            raw, str(payload["app_id"]), str(payload["timestamp"]), key
        )
    elif signature is not None:
        headers["X-ZEvent-Signature"] = signature
    response = await rig.gateway.client.post("/webhooks/zalo", data=raw, headers=headers)
    return response.status, await response.json()


async def inbound_count(rig: ChatRig) -> int:
    rows = await rig.rows(sa.select(chat_messages.c.id).where(chat_messages.c.direction == "in"))
    return len(rows)


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (None, "header is missing"),
        ("mac=" + "0" * 64, "does not match"),
        ("sha256=abc", "must be mac="),
    ],
)
async def test_unsigned_or_badly_signed_webhooks_are_refused_and_logged(
    chat: ChatRig, caplog: pytest.LogCaptureFixture, signature: str | None, reason: str
) -> None:
    user = chat.citizen("Kẻ lạ", STRANGER_PHONE, follows=True)
    with caplog.at_level(logging.WARNING, logger="gateway"):
        status, body = await post(chat, text_event(chat, user.user_id, CODE), signature)
    assert status == 401, body
    assert reason in str(body)
    assert any("zalo webhook refused" in r.getMessage() for r in caplog.records)
    await asyncio.sleep(0.3)
    assert await inbound_count(chat) == 0
    assert chat.zalo.messages_for(user.user_id) == []


async def test_a_webhook_for_another_app_or_too_old_is_refused(chat: ChatRig) -> None:
    user = chat.citizen("Kẻ lạ", STRANGER_PHONE, follows=True)
    other_app = text_event(chat, user.user_id, CODE) | {"app_id": "1111111111111111111"}
    status, body = await post(chat, other_app)
    assert status == 401, body
    old = text_event(chat, user.user_id, CODE, age=8 * 86_400)
    status, body = await post(chat, old)
    assert status == 401, body
    assert "timestamp" in str(body)
    await asyncio.sleep(0.3)
    assert await inbound_count(chat) == 0


async def test_a_replayed_webhook_is_answered_once(chat: ChatRig) -> None:
    user = chat.citizen("Nguyễn Văn An", OWNER_PHONE, follows=True)
    payload = text_event(chat, user.user_id, "menu")
    assert await post(chat, payload) == (200, {"status": "queued"})
    await chat.zalo.wait_for_messages(user.user_id, 1, within=10)
    for _ in range(3):
        assert await post(chat, payload) == (200, {"status": "duplicate"})
    # Zalo's own duplicate deliveries are dropped the same way.
    chat.zalo.webhooks = "duplicates"
    await chat.say(user, "xin chao")
    await asyncio.sleep(0.5)
    assert len(chat.zalo.messages_for(user.user_id)) == 2
    assert await inbound_count(chat) == 2


async def test_another_citizens_dossier_is_never_shown(chat: ChatRig) -> None:
    stranger = chat.citizen("Lê Thị Cúc", STRANGER_PHONE)
    await chat.follow(stranger)
    ask, _card = await chat.say(stranger, f"cho toi xem ho so {CODE}", replies=2)
    assert "xác minh" in text_of(ask)
    # Her own Zalo number, proven by its code, does not match the dossier's: nothing.
    (mismatch,) = await chat.prove(stranger)
    assert "không khớp" in text_of(mismatch)
    # Nor does the #lookup button payload with the code, nor a rating, nor a report.
    for payload in (f"#lookup {CODE}", f"#rate {CODE} 1", f"#report_false {CODE}"):
        await chat.click(stranger, payload, replies=2)
    (check,) = await chat.click(stranger, f"#not_received {CODE}")
    assert "không tìm thấy" in text_of(check)
    everything = " ".join(texts(chat.zalo.messages_for(stranger.user_id)))
    for secret in SECRETS:
        assert secret not in everything
    stderr = await chat.stop_worker()
    assert "result-check answer for no question asked" in stderr
    assert "dossier ownership not proven by the shared phone" in stderr


async def test_asking_about_many_codes_is_refused_as_enumeration(chat: ChatRig) -> None:
    prober = chat.citizen("Kẻ dò", STRANGER_PHONE)
    await chat.follow(prober)
    unknown = [f"000.00.12.H19-240401-{n:04d}" for n in range(100, 110)]
    answers = []
    for code in unknown:
        ask, _card = await chat.say(prober, code, replies=2)
        answers.append(text_of(ask).replace(code, "CODE"))
    # Known or not, every code gets the same answer, so nothing is learnt.
    assert len(set(answers)) == 1
    (refused,) = await chat.say(prober, CODE)
    assert "quá nhiều hồ sơ" in text_of(refused)
    # The real owner's digits do not help the prober either.
    (refused,) = await chat.say(prober, "5678")
    everything = " ".join(texts(chat.zalo.messages_for(prober.user_id)))
    for secret in SECRETS:
        assert secret not in everything
    stderr = await chat.stop_worker()
    assert "dossier request refused: too many codes" in stderr


async def test_the_owner_still_gets_the_answer_the_prober_could_not(chat: ChatRig) -> None:
    """The refusals above come from the guards, not from a broken lookup."""
    status, answer, _ = await chat.gateway.post(event("dossier.processing"))
    assert status == 202, answer
    owner = chat.citizen("Nguyễn Văn An", OWNER_PHONE)
    await chat.follow(owner)
    await chat.say(owner, CODE, replies=2)
    (shown,) = await chat.prove(owner)
    assert "Sở Xây dựng" in text_of(shown)
    assert "đang giải quyết" in text_of(shown)


async def test_a_burst_of_webhooks_waits_for_redis_connections_instead_of_failing(
    chat: ChatRig,
) -> None:
    """More webhooks at once than the Redis pool has connections: each one waits its turn
    for a connection and is queued (once Zalo's retries were 503 "Too many connections")."""
    users = [chat.citizen(f"Công dân {i}", STRANGER_PHONE) for i in range(300)]
    payloads = [text_event(chat, user.user_id, "xin chào") for user in users]
    url = chat.gateway.client.make_url("/webhooks/zalo")
    key = chat.zalo.oa_secret_key
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(payload: dict[str, object]) -> int:
            raw = orjson.dumps(payload)
            mac = sign(raw, str(payload["app_id"]), str(payload["timestamp"]), key)
            headers = {"Content-Type": "application/json", "X-ZEvent-Signature": f"mac={mac}"}
            async with session.post(url, data=raw, headers=headers) as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(one(p) for p in payloads))
    assert sorted(set(statuses)) == [200], {s: statuses.count(s) for s in set(statuses)}
