"""Subscribing to notices by OA: only with the phone shared through Zalo."""

from __future__ import annotations

from bot.replies import AskPhone
from tests.bot.conftest import OWNER_PHONE
from tests.bot.memory import Chat, MemoryServices, payloads, text_of


async def test_subscribing_asks_for_the_shared_phone_then_records_it(
    owner: Chat, services: MemoryServices
) -> None:
    ask, card = await owner.tap("#subscribe")
    assert "Chia sẻ" in text_of(ask)
    assert isinstance(card, AskPhone)
    assert services.step("owner") == "share"
    (done,) = await owner.share("0912 345 678")
    assert "…678" in text_of(done)
    user = services.users["owner"]
    assert (user.phone, user.subscribed) == (OWNER_PHONE, True)
    assert services.step("owner") is None


async def test_a_typed_phone_number_does_not_subscribe(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.say("3")
    again, card = await owner.say("0912345678")
    assert "gõ tay không dùng để đăng ký" in text_of(again)
    assert isinstance(card, AskPhone)
    assert services.users.get("owner") is None
    assert services.step("owner") == "share"


async def test_a_verified_user_is_subscribed_at_once(
    verified: Chat, services: MemoryServices
) -> None:
    (done,) = await verified.say("nhan thong bao qua zalo")
    assert "Đã đăng ký" in text_of(done)
    assert services.users["verified"].subscribed


async def test_a_phone_shared_out_of_the_blue_is_saved_and_subscribing_offered(
    owner: Chat, services: MemoryServices
) -> None:
    (saved,) = await owner.share("0912345678")
    assert "Đã ghi nhận số điện thoại" in text_of(saved)
    assert payloads(saved) == ["#subscribe"]
    assert services.users["owner"].phone == OWNER_PHONE
    assert not services.users["owner"].subscribed
    (done,) = await owner.tap("#subscribe")
    assert "…678" in text_of(done)
    assert services.users["owner"].subscribed
