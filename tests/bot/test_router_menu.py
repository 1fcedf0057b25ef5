"""Welcome, the main menu (buttons, numbers, typed intents), following and unfollowing."""

from __future__ import annotations

import pytest

from bot.replies import AskPhone
from tests.bot.conftest import MENU
from tests.bot.memory import Chat, MemoryServices, payloads, text_of


async def test_a_follow_is_welcomed_with_the_menu_and_its_numbered_fallback(
    owner: Chat, services: MemoryServices
) -> None:
    welcome, menu = await owner.follow()
    assert "Xin chào" in text_of(welcome)
    assert "1022" in text_of(welcome)
    assert payloads(menu) == MENU
    for line in ("1. Tra cứu hồ sơ", "2. Phản ánh, kiến nghị", "5. Gặp cán bộ tổng đài"):
        assert line in text_of(menu)
    assert services.users["owner"].follows


async def test_opening_the_chat_welcomes_but_not_in_the_middle_of_a_step(owner: Chat) -> None:
    welcome, menu = await owner.open_chat()
    assert "Xin chào" in text_of(welcome)
    assert payloads(menu) == MENU
    await owner.say("1")
    assert await owner.open_chat() == []
    (prompt,) = await owner.say("abc")  # still at the code prompt
    assert "không phải là mã hồ sơ" in text_of(prompt)


async def test_an_unfollow_is_recorded_and_forgets_the_conversation(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.follow()
    await owner.say("1")
    assert services.step("owner") == "code"
    assert await owner.unfollow() == []
    assert not services.users["owner"].follows
    assert services.step("owner") is None


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("1", "Xin gõ mã hồ sơ"),
        ("2", "muốn phản ánh về hồ sơ nào"),
        ("4", "muốn đánh giá việc giải quyết hồ sơ nào"),
        (" 1. ", "Xin gõ mã hồ sơ"),
        ("tra cuu ho so", "Xin gõ mã hồ sơ"),
        ("Phản ánh", "muốn phản ánh về hồ sơ nào"),
        ("danh gia", "muốn đánh giá việc giải quyết hồ sơ nào"),
        ("#lookup", "Xin gõ mã hồ sơ"),
    ],
)
async def test_menu_numbers_intents_and_buttons_ask_for_the_code(
    owner: Chat, services: MemoryServices, typed: str, expected: str
) -> None:
    (ask,) = await owner.say(typed)
    assert expected in text_of(ask)
    assert '"menu"' in text_of(ask)  # how to go back
    assert services.step("owner") == "code"


async def test_menu_number_3_asks_to_share_the_phone(owner: Chat) -> None:
    ask, card = await owner.say("3")
    assert "Chia sẻ" in text_of(ask)
    assert isinstance(card, AskPhone)


async def test_menu_number_5_opens_a_handoff(owner: Chat, services: MemoryServices) -> None:
    (opened,) = await owner.say("5")
    assert "cán bộ Tổng đài 1022" in text_of(opened)
    assert services.open_handoff_of("owner") is not None


@pytest.mark.parametrize("typed", ["alo alo", "6", "0", "😀", "", "   ", "???", "thuy"])
async def test_anything_else_gets_the_menu_with_an_apology(
    owner: Chat, services: MemoryServices, typed: str
) -> None:
    (menu,) = await owner.say(typed)
    assert "chưa hiểu" in text_of(menu)
    assert payloads(menu) == MENU
    assert services.step("owner") is None
    assert services.handoffs == [] and services.reports == []


async def test_an_attachment_outside_a_handoff_is_not_understood(owner: Chat) -> None:
    (menu,) = await owner.attach("sticker")
    assert "chỉ đọc được tin nhắn chữ" in text_of(menu)
    assert payloads(menu) == MENU


@pytest.mark.parametrize("typed", ["menu", "hủy", "Huy", "kết thúc", "bắt đầu", "#menu"])
async def test_back_words_with_nothing_going_on_show_the_menu(owner: Chat, typed: str) -> None:
    replies = await owner.say(typed)
    assert payloads(replies[-1]) == MENU
