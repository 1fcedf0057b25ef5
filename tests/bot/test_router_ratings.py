"""Rating the handling of a dossier: two scores (progress, then quality), each by a button
or a typed number, then a comment or "bỏ qua"; each recorded as it comes."""

from __future__ import annotations

import pytest

from bot.replies import Text
from tests.bot.conftest import CODE, MENU
from tests.bot.memory import Chat, MemoryServices, payloads, text_of

PROGRESS = [f"#rate {CODE} {n}" for n in range(1, 6)]
QUALITY = [f"#rate_quality {CODE} {n}" for n in range(1, 6)]


async def test_rating_from_the_menu_with_buttons_and_a_comment(
    verified: Chat, services: MemoryServices
) -> None:
    (ask,) = await verified.say("4")
    assert "muốn đánh giá" in text_of(ask)
    (question,) = await verified.say(CODE)
    assert "tiến độ" in text_of(question)
    assert "từ 1 (rất không hài lòng) đến 5 (rất hài lòng)" in text_of(question)
    assert payloads(question) == PROGRESS
    (second,) = await verified.tap(f"#rate {CODE} 4")
    assert services.ratings == {("verified", CODE): (4, None, None)}
    assert "tiến độ 4/5" in text_of(second)
    assert "chất lượng tiếp nhận, giải quyết" in text_of(second)
    assert payloads(second) == QUALITY
    assert isinstance(second, Text)
    assert [b.title for b in second.buttons] == [f"{n} ★" for n in range(1, 6)]
    (thanks,) = await verified.tap(f"#rate_quality {CODE} 2")
    assert "tiến độ 4/5, chất lượng 2/5" in text_of(thanks)
    assert services.ratings == {("verified", CODE): (4, 2, None)}
    (done,) = await verified.say("Cán bộ nhiệt tình")
    assert "ghi nhận" in text_of(done)
    assert services.ratings == {("verified", CODE): (4, 2, "Cán bộ nhiệt tình")}
    assert services.step("verified") is None


@pytest.mark.parametrize(
    ("progress", "quality", "scores"),
    [("5", "4", (5, 4)), ("5 sao", "1 sao", (5, 1)), ("cho 3 điểm", "2 điểm", (3, 2))],
)
async def test_typed_scores_and_a_skipped_comment(
    verified: Chat,
    services: MemoryServices,
    progress: str,
    quality: str,
    scores: tuple[int, int],
) -> None:
    await verified.say(f"danh gia {CODE}")
    (second,) = await verified.say(progress)
    assert f"tiến độ {scores[0]}/5" in text_of(second)
    assert services.step("verified") == "score"
    (thanks,) = await verified.say(quality)
    assert f"tiến độ {scores[0]}/5, chất lượng {scores[1]}/5" in text_of(thanks)
    (done,) = await verified.say("bỏ qua")
    assert "ghi nhận" in text_of(done)
    assert services.ratings == {("verified", CODE): (*scores, None)}


@pytest.mark.parametrize("typed", ["9", "0", "12"])
async def test_a_score_out_of_range_is_asked_again(
    verified: Chat, services: MemoryServices, typed: str
) -> None:
    await verified.say(f"danh gia {CODE}")
    (invalid,) = await verified.say(typed)
    assert "từ 1 đến 5" in text_of(invalid)
    assert services.ratings == {}
    assert services.step("verified") == "score"
    await verified.say("2")
    assert services.ratings == {("verified", CODE): (2, None, None)}
    (invalid,) = await verified.say(typed)  # the quality: asked again too
    assert "từ 1 đến 5" in text_of(invalid)
    await verified.say("3")
    assert services.ratings == {("verified", CODE): (2, 3, None)}


async def test_text_that_is_no_score_gets_the_prompt_of_that_score(verified: Chat) -> None:
    await verified.say(f"danh gia {CODE}")
    (again,) = await verified.say("tôi không biết")
    assert "tiến độ giải quyết" in text_of(again) and payloads(again) == PROGRESS
    await verified.say("4")
    (again,) = await verified.say("tôi không biết")
    assert "chất lượng tiếp nhận, giải quyết" in text_of(again) and payloads(again) == QUALITY


async def test_buttons_from_an_old_message_rate_directly(
    verified: Chat, services: MemoryServices
) -> None:
    (second,) = await verified.tap(f"#rate {CODE} 1")
    assert payloads(second) == QUALITY
    assert services.ratings == {("verified", CODE): (1, None, None)}
    await verified.say("menu")
    # The quality button of the earlier message, after leaving: it still counts, alone.
    (thanks,) = await verified.tap(f"#rate_quality {CODE} 5")
    assert "chất lượng 5/5" in text_of(thanks) and "tiến độ" not in text_of(thanks)
    assert services.ratings == {("verified", CODE): (1, 5, None)}
    # A later tap replaces that score and keeps the other.
    await verified.tap(f"#rate {CODE} 2")
    assert services.ratings == {("verified", CODE): (2, 5, None)}


@pytest.mark.parametrize("payload", [f"#rate {CODE} 1", f"#rate_quality {CODE} 1"])
async def test_a_stranger_cannot_rate(
    stranger: Chat, services: MemoryServices, payload: str
) -> None:
    ask, _card = await stranger.tap(payload)
    assert "xác minh" in text_of(ask)
    assert services.ratings == {}


async def test_the_last_four_digits_are_not_enough_to_rate(
    owner: Chat, services: MemoryServices
) -> None:
    await owner.tap(f"#rate {CODE} 5")
    await owner.say("5678")  # reads the dossier; acting needs a one-time code
    await owner.tap(f"#rate_quality {CODE} 5")
    assert services.ratings == {}


async def test_a_rating_request_is_answered_with_a_typed_number(
    verified: Chat, services: MemoryServices
) -> None:
    verified.notice_asks("rating_request", CODE)
    (second,) = await verified.say("4")  # the progress, not menu choice 4
    assert "tiến độ 4/5" in text_of(second)
    await verified.say("5")
    await verified.say("Tốt")
    assert services.ratings == {("verified", CODE): (4, 5, "Tốt")}


async def test_leaving_halfway_keeps_what_was_given(
    verified: Chat, services: MemoryServices
) -> None:
    await verified.tap(f"#rate {CODE} 3")
    (menu,) = await verified.say("menu")
    assert payloads(menu) == MENU
    assert services.ratings == {("verified", CODE): (3, None, None)}
    await verified.say(f"danh gia {CODE}")
    await verified.say("4")
    await verified.say("4")
    await verified.say("hủy")
    assert services.ratings == {("verified", CODE): (4, 4, None)}
