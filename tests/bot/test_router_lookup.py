"""Looking a dossier up: the ownership proof, the wrong-proof lockout, code enumeration,
the shared phone, and a conversation state that expired."""

from __future__ import annotations

import logging

import pytest

from bot.replies import AskPhone
from tests.bot.conftest import (
    CODE,
    MAX_CODES,
    MAX_FAILURES,
    MENU,
    OTHER_CODE,
    SECRETS,
    UNKNOWN_CODE,
)
from tests.bot.memory import Chat, MemoryServices, everything, payloads, text_of


def assert_no_secret(chat: Chat) -> None:
    for secret in SECRETS:
        assert secret not in everything(chat.sent)


async def test_a_code_is_answered_only_after_the_four_digit_proof(
    owner: Chat, services: MemoryServices
) -> None:
    ask, card = await owner.say("tra cuu ho so 000.00.12.h19 240401 0001 giup toi")
    assert CODE in text_of(ask)
    assert "4 chữ số cuối" in text_of(ask)
    assert isinstance(card, AskPhone)
    assert_no_secret(owner)
    assert services.step("owner") == "proof"

    (answer,) = await owner.say("5678")
    body = text_of(answer)
    for fact in (*SECRETS, "12/04/2024", "tiếp nhận (SMS)"):
        assert fact in body, body
    assert payloads(answer) == [
        f"#report_false {CODE}",
        f"#report_other {CODE}",
        "#subscribe",
        f"#human {CODE}",
        "#menu",
    ]
    assert owner.outcome.dossier_code == CODE
    assert services.step("owner") is None
    # Proven for the rest of the conversation: asked again, it is shown at once.
    (again,) = await owner.say(CODE)
    assert "Sở Xây dựng" in text_of(again)


@pytest.mark.parametrize("proof", ["0912 345 678", "0912.345.678", "+84912345678", "5 678"])
async def test_the_whole_phone_number_in_any_form_is_a_proof(owner: Chat, proof: str) -> None:
    await owner.say(CODE)
    (answer,) = await owner.say(proof)
    assert "Sở Xây dựng" in text_of(answer)


async def test_an_unknown_code_gets_the_same_answer_as_a_known_one(
    stranger: Chat, owner: Chat, services: MemoryServices
) -> None:
    known = await stranger.say(CODE)
    unknown = await owner.say(UNKNOWN_CODE)
    assert [text_of(r).replace(CODE, "X") for r in known] == [
        text_of(r).replace(UNKNOWN_CODE, "X") for r in unknown
    ]
    (wrong,) = await owner.say("5678")  # no such dossier: any proof is wrong
    assert "còn 4 lần" in text_of(wrong)
    assert len(services.failures["owner"]) == 1


async def test_a_verified_owner_sees_the_dossier_without_typing_a_proof(
    verified: Chat, services: MemoryServices
) -> None:
    (answer,) = await verified.say(f"#lookup {CODE}")
    assert "Sở Xây dựng" in text_of(answer)
    assert "#subscribe" in payloads(answer)
    services.users["verified"].subscribed = True
    (answer,) = await verified.say(CODE)
    assert "#subscribe" not in payloads(answer)  # nothing to offer any more


async def test_sharing_the_matching_phone_at_the_proof_step_shows_the_dossier(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.say(CODE)
    (answer,) = await owner.share("0912345678")
    assert "Sở Xây dựng" in text_of(answer)
    assert services.users["owner"].phone == "+84912345678"


async def test_sharing_another_phone_proves_nothing(
    stranger: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    await stranger.say(CODE)
    with caplog.at_level(logging.WARNING):
        (mismatch,) = await stranger.share("0987654321")
    assert "không khớp" in text_of(mismatch)
    assert "dossier ownership not proven by the shared phone" in caplog.text
    assert_no_secret(stranger)


async def test_a_phone_that_is_not_vietnamese_mobile_is_refused(
    owner: Chat, services: MemoryServices
) -> None:
    (refused,) = await owner.share("12345")
    assert "không phải số di động Việt Nam" in text_of(refused)
    (refused,) = await owner.share(None)
    assert "không phải số di động Việt Nam" in text_of(refused)
    assert services.users.get("owner") is None


async def test_wrong_proofs_lock_lookups_even_for_the_right_digits(
    stranger: Chat, services: MemoryServices, caplog: pytest.LogCaptureFixture
) -> None:
    await stranger.say(CODE)
    with caplog.at_level(logging.WARNING):
        for left in range(MAX_FAILURES - 1, 0, -1):
            (wrong,) = await stranger.say("0000")
            assert f"còn {left} lần" in text_of(wrong)
        (locked,) = await stranger.say("0000")
    assert "tạm khóa" in text_of(locked)
    assert services.step("stranger") is None
    assert caplog.text.count("dossier ownership proof refused") == MAX_FAILURES
    assert "987654321" not in caplog.text and "912345678" not in caplog.text
    (still,) = await stranger.say(CODE)
    assert "tạm khóa" in text_of(still)
    (still,) = await stranger.say(f"#lookup {OTHER_CODE}")
    assert "tạm khóa" in text_of(still)
    assert_no_secret(stranger)
    # The window passes: lookups open again.
    services.advance(hours=1, minutes=1)
    ask, _card = await stranger.say(CODE)
    assert "4 chữ số cuối" in text_of(ask)


async def test_the_lock_is_checked_again_when_the_proof_is_typed(
    owner: Chat, stranger: Chat, services: MemoryServices
) -> None:
    await owner.say(CODE)  # asked before the lock
    services.failures["owner"] = [services.now] * MAX_FAILURES
    (locked,) = await owner.say("5678")
    assert "tạm khóa" in text_of(locked)
    assert_no_secret(owner)


async def test_more_distinct_codes_than_allowed_are_refused_as_enumeration(
    stranger: Chat, services: MemoryServices, caplog: pytest.LogCaptureFixture
) -> None:
    codes = [f"000.00.12.H19-240401-{n:04d}" for n in range(100, 100 + MAX_CODES)]
    answers = set()
    for code in codes:
        ask, _card = await stranger.say(code)
        answers.add(text_of(ask).replace(code, "X"))
    assert len(answers) == 1
    ask, _card = await stranger.say(codes[0])  # asking again is not a new code
    with caplog.at_level(logging.WARNING):
        (refused,) = await stranger.say(CODE)
    assert "quá nhiều hồ sơ" in text_of(refused)
    assert "dossier request refused: too many codes" in caplog.text
    assert services.step("stranger") is None
    (menu,) = await stranger.say("5678")  # no proof pending any more
    assert payloads(menu) == MENU
    assert_no_secret(stranger)


async def test_an_expired_conversation_starts_from_the_menu(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.say(CODE)
    services.advance(hours=25)
    (menu,) = await owner.say("5678")
    assert "chưa hiểu" in text_of(menu)
    assert payloads(menu) == MENU
    assert "owner" not in services.failures  # not taken as a (wrong) proof
    assert_no_secret(owner)


async def test_an_expired_code_prompt_reads_a_number_as_a_menu_choice_again(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.say("4")
    services.advance(hours=25)
    (ask,) = await owner.say("1")
    assert "Xin gõ mã hồ sơ" in text_of(ask)
