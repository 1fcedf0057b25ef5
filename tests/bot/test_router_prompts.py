"""Every prompt reads what is typed as its answer: unexpected input gets the prompt again
(never a menu shortcut, never a counted wrong proof), and the back words or a button
always lead out of it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bot.replies import AskPhone
from tests.bot.conftest import CODE, MENU, UNKNOWN_CODE, prove_with_code
from tests.bot.memory import Chat, MemoryServices, payloads, text_of

BACK_HINT = '"menu" hoặc "hủy" để quay lại danh mục chính'
WRONG_FORMAT = "000.00.12-240401"
EMPTY = ["", "   ", "😀", "👍👍", "…?!"]


async def to_code(chat: Chat) -> None:
    await chat.say("4")  # the rating flow's code prompt


async def to_proof(chat: Chat) -> None:
    await chat.say(CODE)


async def to_kind(chat: Chat) -> None:
    await chat.say(f"phan anh {CODE}")
    await prove_with_code(chat)


async def to_describe(chat: Chat) -> None:
    await to_kind(chat)
    await chat.say("2")


async def to_score(chat: Chat) -> None:
    await chat.say(f"danh gia {CODE}")
    await prove_with_code(chat)


async def to_phone_code(chat: Chat) -> None:
    await chat.share("0912345678")


async def to_comment(chat: Chat) -> None:
    await to_score(chat)
    await chat.say("4")  # the progress
    await chat.say("4")  # the quality


async def to_share(chat: Chat) -> None:
    await chat.say("3")


STEPS: dict[str, Callable[[Chat], Awaitable[None]]] = {
    "code": to_code,
    "proof": to_proof,
    "kind": to_kind,
    "describe": to_describe,
    "score": to_score,
    "comment": to_comment,
    "share": to_share,
    "phone_code": to_phone_code,
}

# What does not answer each prompt (the description and comment take any words).
NOT_ANSWERS: dict[str, list[str]] = {
    "code": ["5", "1", "alo alo", "gap can bo", WRONG_FORMAT, "0912345678", *EMPTY],
    "proof": ["5", "12345", "alo alo", "tra cuu", WRONG_FORMAT, *EMPTY],
    "kind": ["5", "3", "alo alo", CODE, *EMPTY],
    "describe": EMPTY,
    "score": ["alo alo", "4 hay 5", CODE, *EMPTY],
    "comment": EMPTY,
    "share": ["5", "0912345678", "alo alo", CODE, *EMPTY],
    "phone_code": ["5", "5678", "1234567", "alo alo", CODE, *EMPTY],
}

# The key phrase of each prompt asked again.
REPROMPTS = {
    "code": "Đây không phải là mã hồ sơ",
    "proof": "gõ 4 chữ số cuối",
    "kind": "gõ 1 (hồ sơ được báo đã xong",
    "describe": "Xin gõ nội dung phản ánh",
    "score": "gõ một số từ 1 đến 5",
    "comment": "Xin gõ góp ý",
    "share": 'xin bấm "Chia sẻ"',
    "phone_code": "Xin gõ mã xác thực 6 chữ số",
}

CASES = [(step, typed) for step, typed_list in NOT_ANSWERS.items() for typed in typed_list]


@pytest.mark.parametrize(("step", "typed"), CASES)
async def test_unexpected_input_gets_the_prompt_again(
    owner: Chat, services: MemoryServices, step: str, typed: str
) -> None:
    await STEPS[step](owner)
    assert services.step("owner") == step
    before = (dict(services.ratings), list(services.reports), list(services.handoffs))
    failures = list(services.failures.get("owner", []))

    again, *card = await owner.say(typed)
    assert REPROMPTS[step] in text_of(again), text_of(again)
    assert BACK_HINT in text_of(again)
    assert services.step("owner") == step
    assert (services.ratings, services.reports, services.handoffs) == before
    assert services.failures.get("owner", []) == failures
    with_card = step in ("share", "proof")
    assert [isinstance(c, AskPhone) for c in card] == ([True] if with_card else [])
    if step == "proof":
        assert payloads(again) == [f"#otp {CODE}"]
    if step == "phone_code":
        assert payloads(again) == ["#new_code"]
    if step == "kind":
        assert payloads(again) == [f"#report_false {CODE}", f"#report_other {CODE}"]
    if step == "score":
        assert payloads(again) == [f"#rate {CODE} {n}" for n in range(1, 6)]


async def test_5_at_the_rating_code_prompt_is_no_hotline_handoff(
    owner: Chat, services: MemoryServices
) -> None:
    (ask,) = await owner.say("4")
    assert "muốn đánh giá" in text_of(ask)
    (again,) = await owner.say("5")
    assert "Đây không phải là mã hồ sơ" in text_of(again)
    assert "muốn đánh giá" in text_of(again)
    assert services.handoffs == []
    # The prompt still works afterwards.
    ask, _card = await owner.say(CODE)
    assert "4 chữ số cuối" in text_of(ask)


async def test_a_code_that_does_not_exist_answers_the_code_prompt(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.say("1")
    ask, _card = await owner.say(UNKNOWN_CODE)
    assert UNKNOWN_CODE in text_of(ask) and "4 chữ số cuối" in text_of(ask)
    assert services.step("owner") == "proof"


async def test_a_new_code_at_the_proof_prompt_replaces_the_first(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.say(UNKNOWN_CODE)
    ask, _card = await owner.say(CODE)
    assert CODE in text_of(ask)
    (answer,) = await owner.say("5678")
    assert "Sở Xây dựng" in text_of(answer)


@pytest.mark.parametrize("step", list(STEPS))
@pytest.mark.parametrize("typed", ["menu", "MENU", "hủy", "huy", "thoát", "kết thúc", "#menu"])
async def test_back_words_leave_every_prompt_for_the_menu(
    owner: Chat, services: MemoryServices, step: str, typed: str
) -> None:
    await STEPS[step](owner)
    replies = await owner.say(typed)
    assert payloads(replies[-1]) == MENU
    if typed in ("hủy", "huy", "thoát"):
        assert text_of(replies[0]) == "Đã hủy."
    assert services.step("owner") is None
    assert services.reports == [] and services.handoffs == []
    assert all(comment is None for *_scores, comment in services.ratings.values())


@pytest.mark.parametrize("step", ["code", "proof", "kind", "score", "share"])
async def test_bo_qua_leaves_prompts_it_does_not_answer(
    owner: Chat, services: MemoryServices, step: str
) -> None:
    await STEPS[step](owner)
    (menu,) = await owner.say("bỏ qua")
    assert payloads(menu) == MENU
    assert services.step("owner") is None


@pytest.mark.parametrize("step", list(STEPS))
async def test_a_tapped_button_is_obeyed_at_every_prompt(
    owner: Chat, services: MemoryServices, step: str
) -> None:
    await STEPS[step](owner)
    (opened,) = await owner.tap("#human")
    assert "cán bộ Tổng đài" in text_of(opened)
    assert services.open_handoff_of("owner") is not None
    assert services.step("owner") is None
