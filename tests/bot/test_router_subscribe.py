"""Subscribing to notices by OA: only with a number proven by a one-time code (a shared
number is a claim), telling the previous channel once; and stopping it from the OA."""

from __future__ import annotations

from bot.replies import AskPhone
from bot.router import Bot
from tests.bot.conftest import MENU, OWNER_PHONE, STRANGER_PHONE, prove_phone
from tests.bot.memory import Chat, MemoryServices, payloads, text_of


async def test_subscribing_sends_a_code_to_the_shared_phone_then_records_it(
    owner: Chat, services: MemoryServices
) -> None:
    ask, card = await owner.tap("#subscribe")
    assert "Chia sẻ" in text_of(ask) and "mã xác thực" in text_of(ask)
    assert isinstance(card, AskPhone)
    assert services.step("owner") == "share"
    (sent,) = await owner.share("0912 345 678")
    assert "…78" in text_of(sent) and "678" not in text_of(sent)
    assert services.step("owner") == "phone_code"
    assert not services.users["owner"].subscribed
    (wrong,) = await owner.say("000000" if services.code_for(OWNER_PHONE) != "000000" else "1")
    assert "còn 2 lần" in text_of(wrong)
    (done,) = await owner.say(services.code_for(OWNER_PHONE))
    assert "Đã đăng ký" in text_of(done) and "…78" in text_of(done)
    assert "678" not in text_of(done)
    assert payloads(done) == ["#unsubscribe"]
    user = services.users["owner"]
    assert (user.phone, user.subscribed) == (OWNER_PHONE, True)
    assert services.step("owner") is None
    # The phone's SMS channel is told once.
    assert services.moved == [(None, OWNER_PHONE)]


async def test_a_typed_phone_number_does_not_subscribe(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.say("3")
    again, card = await owner.say("0912345678")
    assert "gõ tay vào tin nhắn không dùng để đăng ký" in text_of(again)
    assert isinstance(card, AskPhone)
    assert services.users.get("owner") is None
    assert services.step("owner") == "share"
    assert services.codes == []


async def test_a_stranger_number_typed_into_the_share_form_cannot_subscribe(
    bot: Bot, verified: Chat, services: MemoryServices
) -> None:
    await verified.tap("#subscribe")
    assert services.users["verified"].subscribed
    moved = list(services.moved)
    attacker = Chat(bot, services, "attacker")
    await attacker.tap("#subscribe")
    await attacker.share(OWNER_PHONE)  # typed into the form: a code goes to the owner
    for guess in ("000001", "000002", "000003"):
        await attacker.say(guess)
    (again,) = await attacker.tap("#subscribe")
    assert "…78" in text_of(again)  # only ever another code to the owner's phone
    assert not services.users["attacker"].subscribed
    assert services.users["attacker"].phone is None
    assert services.users["verified"].subscribed  # the owner's notices stay where they are
    assert services.moved == moved


async def test_a_proven_user_is_subscribed_at_once(
    verified: Chat, services: MemoryServices
) -> None:
    (done,) = await verified.say("nhan thong bao qua zalo")
    assert "Đã đăng ký" in text_of(done)
    assert services.users["verified"].subscribed
    assert services.codes == []
    # Subscribing again changes nothing and tells nobody again.
    await verified.tap("#subscribe")
    assert services.moved == [(None, OWNER_PHONE)]


async def test_a_phone_shared_out_of_the_blue_is_proven_and_subscribing_offered(
    owner: Chat, services: MemoryServices
) -> None:
    (proven,) = await prove_phone(owner)
    assert "Đã xác nhận số điện thoại" in text_of(proven)
    assert payloads(proven) == ["#subscribe"]
    assert services.users["owner"].phone == OWNER_PHONE
    assert not services.users["owner"].subscribed
    (done,) = await owner.tap("#subscribe")
    assert "…78" in text_of(done)
    assert services.users["owner"].subscribed


async def test_a_claimed_phone_gets_a_code_when_subscribing(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.share("0912345678")
    await owner.say("menu")
    (sent,) = await owner.tap("#subscribe")
    assert "…78" in text_of(sent)
    assert services.codes_to(OWNER_PHONE) == 2
    (done,) = await owner.say(services.code_for(OWNER_PHONE))
    assert "Đã đăng ký" in text_of(done)


async def test_a_new_code_and_too_many_codes(owner: Chat, services: MemoryServices) -> None:
    await owner.tap("#subscribe")
    await owner.share("0912345678")
    for _ in range(services.codes_per_phone_hour - 1):
        (sent,) = await owner.tap("#new_code")
        assert "…78" in text_of(sent)
    (refused,) = await owner.tap("#new_code")
    assert "quá nhiều mã xác thực" in text_of(refused) and "60 phút" in text_of(refused)
    assert services.codes_to(OWNER_PHONE) == services.codes_per_phone_hour
    # The last code sent still works, and the subscription goes on.
    (done,) = await owner.say(services.code_for(OWNER_PHONE))
    assert "Đã đăng ký" in text_of(done)


async def test_a_second_oa_user_proving_the_number_takes_the_subscription_over(
    bot: Bot, verified: Chat, services: MemoryServices
) -> None:
    await verified.tap("#subscribe")
    second = Chat(bot, services, "second")
    await second.tap("#subscribe")
    await second.share(OWNER_PHONE)
    (done,) = await second.say(services.code_for(OWNER_PHONE))
    assert "Đã đăng ký" in text_of(done)
    assert services.users["second"].subscribed
    assert not services.users["verified"].subscribed
    # The first OA user is told on the OA, not the phone by SMS.
    assert services.moved == [(None, OWNER_PHONE), ("verified", OWNER_PHONE)]


async def test_stopping_from_the_oa(verified: Chat, services: MemoryServices) -> None:
    await verified.tap("#subscribe")
    (menu,) = await verified.say("menu")
    assert payloads(menu) == [p if p != "#subscribe" else "#unsubscribe" for p in MENU]
    (stopped,) = await verified.say("hủy đăng ký")
    assert "Đã ngừng gửi thông báo qua Zalo" in text_of(stopped)
    assert payloads(stopped) == ["#subscribe"]
    assert not services.users["verified"].subscribed
    (again,) = await verified.tap("#unsubscribe")
    assert "chưa đăng ký" in text_of(again)
    # Typed as the menu's number 3 once subscribed again.
    await verified.tap("#subscribe")
    (stopped,) = await verified.say("3")
    assert "Đã ngừng" in text_of(stopped)
    assert not services.users["verified"].subscribed


async def test_a_proven_number_that_changes_ends_the_subscription(
    verified: Chat, services: MemoryServices
) -> None:
    await verified.tap("#subscribe")
    await verified.share(STRANGER_PHONE)
    await verified.say(services.code_for(STRANGER_PHONE))
    user = services.users["verified"]
    assert (user.phone, user.subscribed) == (STRANGER_PHONE, False)
