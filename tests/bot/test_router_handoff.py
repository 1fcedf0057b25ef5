"""Talking to hotline staff: opening, forwarding with one acknowledgement per burst,
getting back to the menu, and the dossier the handoff is about."""

from __future__ import annotations

import pytest

from tests.bot.conftest import CODE, MENU, OTHER_CODE, prove_with_code
from tests.bot.memory import Chat, MemoryServices, payloads, text_of

ACK = "Đã chuyển cho cán bộ tổng đài 1022"


async def test_messages_go_to_the_staff_with_one_acknowledgement_per_burst(
    owner: Chat, services: MemoryServices
) -> None:
    (opened,) = await owner.tap("#human")
    assert "cán bộ Tổng đài 1022" in text_of(opened)
    assert '"kết thúc"' in text_of(opened) and '"menu"' in text_of(opened)
    handoff = services.open_handoff_of("owner")
    assert handoff is not None and handoff.dossier_code is None
    assert owner.outcome.handoff_id == handoff.id

    (ack,) = await owner.say("Cho tôi hỏi bao giờ có kết quả?")
    assert ACK in text_of(ack)
    assert '"kết thúc"' in text_of(ack) and '"menu"' in text_of(ack)
    assert owner.outcome.forwarded
    services.advance(minutes=2)
    assert await owner.say("Hồ sơ của tôi nộp hôm thứ hai") == []
    assert await owner.say(CODE) == []  # a lookup goes to the staff too
    assert await owner.say("1") == []  # so does a menu number
    assert await owner.attach() == []
    assert owner.outcome.forwarded
    services.advance(minutes=10)
    (ack,) = await owner.say("Alo, còn ai không?")
    assert ACK in text_of(ack)
    assert handoff.messages == [
        "Cho tôi hỏi bao giờ có kết quả?",
        "Hồ sơ của tôi nộp hôm thứ hai",
        CODE,
        "1",
        "[AttachmentSent]",
        "Alo, còn ai không?",
    ]
    assert services.reports == [] and services.failures == {}


async def test_an_attachment_opening_a_burst_is_acknowledged(owner: Chat) -> None:
    await owner.say("gap can bo")
    (ack,) = await owner.attach()
    assert ACK in text_of(ack)
    assert owner.outcome.forwarded


@pytest.mark.parametrize(
    "typed", ["kết thúc", "ket thuc", "#end", "menu", "Menu", "#menu", "hủy", "huy", "#cancel"]
)
async def test_the_citizen_can_always_leave_the_handoff_for_the_menu(
    owner: Chat, services: MemoryServices, typed: str
) -> None:
    await owner.tap("#human")
    await owner.say("Xin chào")
    closed, menu = await owner.say(typed)
    assert "đã kết thúc" in text_of(closed)
    assert payloads(menu) == MENU
    assert services.open_handoff_of("owner") is None
    assert not owner.outcome.forwarded
    (ask,) = await owner.say("1")  # the bot answers again
    assert "Xin gõ mã hồ sơ" in text_of(ask)


async def test_words_that_only_contain_a_back_word_are_forwarded(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.tap("#human")
    await owner.say("Tôi muốn hủy hồ sơ đã nộp")
    assert owner.outcome.forwarded
    assert services.open_handoff_of("owner") is not None


async def test_after_a_new_handoff_the_first_message_is_acknowledged_again(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.tap("#human")
    await owner.say("một")
    await owner.say("kết thúc")
    await owner.tap("#human")
    (ack,) = await owner.say("hai")
    assert ACK in text_of(ack)


async def test_staff_closing_the_handoff_gives_the_bot_back(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.tap("#human")
    await owner.say("một")
    await services.close_handoff("owner")  # the officer closed it
    (menu,) = await owner.say("xin chao")
    assert payloads(menu) == MENU
    assert not owner.outcome.forwarded


async def test_opening_the_chat_during_a_handoff_shows_no_menu(owner: Chat) -> None:
    await owner.tap("#human")
    assert await owner.open_chat() == []


async def test_a_handoff_after_a_lookup_proven_by_a_code_is_about_that_dossier(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.say(CODE)
    (answer,) = await prove_with_code(owner)
    assert f"#human {CODE}" in payloads(answer)
    await owner.tap(f"#human {CODE}")
    handoff = services.open_handoff_of("owner")
    assert handoff is not None and handoff.dossier_code == CODE
    assert owner.outcome.dossier_code == CODE


async def test_the_last_four_digits_do_not_attach_the_dossier(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.say(CODE)
    (answer,) = await owner.say("5678")
    assert "Sở Xây dựng" in text_of(answer)
    await owner.tap(f"#human {CODE}")
    handoff = services.open_handoff_of("owner")
    assert handoff is not None and handoff.dossier_code is None


async def test_a_claimed_phone_does_not_attach_the_dossier(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.share("0912345678")  # the dossier's number, but only claimed
    await owner.say("menu")
    await owner.tap(f"#human {CODE}")
    handoff = services.open_handoff_of("owner")
    assert handoff is not None and handoff.dossier_code is None


async def test_the_menu_handoff_is_about_the_last_dossier_proven(
    owner: Chat, verified: Chat, services: MemoryServices
) -> None:
    await owner.say(OTHER_CODE)
    await prove_with_code(owner, OTHER_CODE)
    await owner.say(CODE)
    await prove_with_code(owner)
    await owner.say("menu")
    await owner.say("5")
    handoff = services.open_handoff_of("owner")
    assert handoff is not None and handoff.dossier_code == CODE
    # The owner of a verified phone proves by looking up, too.
    await verified.say(OTHER_CODE)
    await verified.say("gap can bo")
    handoff = services.open_handoff_of("verified")
    assert handoff is not None and handoff.dossier_code == OTHER_CODE


async def test_a_code_typed_without_proof_is_not_attached(
    owner: Chat, stranger: Chat, services: MemoryServices
) -> None:
    await owner.say(CODE)  # the proof prompt, never answered
    await owner.tap("#human")
    handoff = services.open_handoff_of("owner")
    assert handoff is not None and handoff.dossier_code is None
    # Nor a code in a typed payload, nor the proof step's code after an earlier proof.
    await stranger.tap(f"#human {CODE}")
    handoff = services.open_handoff_of("stranger")
    assert handoff is not None and handoff.dossier_code is None
    assert stranger.outcome.dossier_code is None


async def test_a_proven_dossier_is_not_swapped_for_an_unproven_one(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.say(OTHER_CODE)
    await prove_with_code(owner, OTHER_CODE)
    await owner.say("000.00.12.H19-240401-0999")  # another code, at the proof prompt now
    await owner.tap("#human")
    handoff = services.open_handoff_of("owner")
    assert handoff is not None and handoff.dossier_code is None


async def test_a_handoff_opened_in_the_middle_of_a_report_is_about_its_dossier(
    verified: Chat, services: MemoryServices
) -> None:
    await verified.tap(f"#report_false {CODE}")
    await verified.tap("#human")
    handoff = services.open_handoff_of("verified")
    assert handoff is not None and handoff.dossier_code == CODE
    assert services.step("verified") is None
