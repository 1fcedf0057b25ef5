"""Looking a dossier up: the levels of ownership proof (last four digits to read, a
one-time code or the proven number to act), the wrong-proof lockout per user and per
dossier across users, code enumeration, the shared phone as a mere claim, and a
conversation state that expired."""

from __future__ import annotations

import logging

import pytest

from bot.replies import AskPhone
from bot.router import Bot
from tests.bot.conftest import (
    CODE,
    MAX_CODES,
    MAX_FAILURES,
    MENU,
    OTHER_CODE,
    OWNER_PHONE,
    SECRETS,
    UNKNOWN_CODE,
    prove_with_code,
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


async def test_sharing_the_matching_phone_sends_a_code_and_the_code_shows_the_dossier(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.say(CODE)
    (sent,) = await owner.share("0912345678")
    # A claim only: a code goes to the number, the bot shows its last two digits only.
    assert "…78" in text_of(sent) and "678" not in text_of(sent)
    assert payloads(sent) == ["#new_code"]
    assert services.users["owner"].claimed == OWNER_PHONE
    assert services.users["owner"].phone is None
    assert_no_secret(owner)
    (answer,) = await owner.say(services.code_for(OWNER_PHONE))
    assert "Sở Xây dựng" in text_of(answer)
    assert services.users["owner"].phone == OWNER_PHONE
    # The proven number acts at once: a report needs nothing more.
    (describe,) = await owner.tap(f"#report_false {CODE}")
    assert "Xin mô tả ngắn gọn" in text_of(describe)


async def test_a_stranger_number_typed_into_the_share_form_proves_nothing(
    bot: Bot, services: MemoryServices
) -> None:
    attacker = Chat(bot, services, "attacker")
    await attacker.say(CODE)
    (sent,) = await attacker.share(OWNER_PHONE)  # typed into request_user_info's form
    assert "…78" in text_of(sent)
    assert services.codes_to(OWNER_PHONE) == 1  # the code went to the owner's phone
    for guess in ("000000", "123456", "999999"):
        await attacker.say(guess)
    (again,) = await attacker.say("111111")
    assert "hết hiệu lực" in text_of(again)
    assert services.users["attacker"].phone is None
    for payload in (f"#lookup {CODE}", f"#report_false {CODE}", f"#rate {CODE} 1", "#subscribe"):
        await attacker.tap(payload)
    assert services.reports == [] and services.ratings == {} and services.moved == []
    assert not services.users["attacker"].subscribed
    assert_no_secret(attacker)


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
    # The user's window passes: lookups open again, but the dossier had as many wrong
    # proofs as the dossier allows in a day, so only a one-time code opens it now.
    services.advance(hours=1, minutes=1)
    ask, _card = await stranger.say(CODE)
    assert "Gửi mã xác thực" in text_of(ask) and "4 chữ số cuối" not in text_of(ask)


async def test_many_users_guessing_one_dossier_make_it_need_a_code(
    bot: Bot, owner: Chat, services: MemoryServices, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        for n in range(services.dossier_max_failures):
            guesser = Chat(bot, services, f"guesser-{n}")
            await guesser.say(CODE)
            (wrong,) = await guesser.say(f"{n:04d}")
            assert "còn 4 lần" in text_of(wrong)  # each user alone is far from a lock
            assert_no_secret(guesser)
        # Even the right four digits do not open it now, for a newcomer or the owner.
        late = Chat(bot, services, "late")
        await late.say(CODE)
        (needed,) = await late.say("5678")
        assert "mã xác thực" in text_of(needed) and "Sở Xây dựng" not in text_of(needed)
        assert_no_secret(late)
        ask, _card = await owner.say(CODE)
        assert "4 chữ số cuối" not in text_of(ask)
        (needed,) = await owner.say("5678")
        assert "Sở Xây dựng" not in text_of(needed)
        # The owner's code still works.
        (answer,) = await prove_with_code(owner)
        assert "Sở Xây dựng" in text_of(answer)
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) >= services.dossier_max_failures + 2
    for record in refused:
        assert record.__dict__["dossier"] == CODE and record.__dict__["user"]
    assert "912345678" not in caplog.text and "5678" not in caplog.text.replace(CODE, "")


async def test_the_last_four_digits_read_but_acting_needs_a_code(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.say(CODE)
    (answer,) = await owner.say("5678")
    assert "Sở Xây dựng" in text_of(answer)
    needed, card = await owner.tap(f"#report_false {CODE}")
    assert "cần xác minh bằng mã xác thực" in text_of(needed)
    assert payloads(needed) == [f"#otp {CODE}"] and isinstance(card, AskPhone)
    assert services.codes == []  # offered, not sent unasked
    (sent,) = await owner.tap(f"#otp {CODE}")
    assert "6 chữ số" in text_of(sent) and "5678" not in text_of(sent)
    assert "78" not in text_of(sent).replace(CODE, "")  # no digit of the dossier's phone
    (describe,) = await owner.say(services.code_for(OWNER_PHONE))
    assert "Xin mô tả ngắn gọn" in text_of(describe)
    await owner.say("chưa nhận được gì")
    assert [r.proof for r in services.reports] == ["otp"]


async def test_a_code_for_an_unknown_dossier_is_answered_like_a_known_one(
    owner: Chat, stranger: Chat, services: MemoryServices
) -> None:
    await owner.say(UNKNOWN_CODE)
    await stranger.say(CODE)
    unknown = await owner.tap(f"#otp {UNKNOWN_CODE}")
    known = await stranger.tap(f"#otp {CODE}")
    assert [text_of(r).replace(UNKNOWN_CODE, "X") for r in unknown] == [
        text_of(r).replace(CODE, "X") for r in known
    ]
    for typed in ("000000", "111111", "222222"):
        wrong_unknown = await owner.say(typed)
        wrong_known = await stranger.say(typed)
        assert [text_of(r) for r in wrong_unknown] == [text_of(r) for r in wrong_known]
    assert "hết hiệu lực" in text_of(wrong_known[-1])
    assert_no_secret(stranger)


async def test_a_code_expires_after_its_minutes(owner: Chat, services: MemoryServices) -> None:
    await owner.say(CODE)
    await owner.tap(f"#otp {CODE}")
    services.advance(minutes=5, seconds=1)
    (expired,) = await owner.say(services.code_for(OWNER_PHONE))
    assert "hết hiệu lực" in text_of(expired)
    assert payloads(expired) == [f"#otp {CODE}"]
    await owner.tap(f"#otp {CODE}")
    (answer,) = await owner.say(services.code_for(OWNER_PHONE))
    assert "Sở Xây dựng" in text_of(answer)


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
