"""Rating the handling of a dossier: buttons, a typed number, a comment or "bỏ qua"."""

from __future__ import annotations

import pytest

from tests.bot.conftest import CODE, MENU
from tests.bot.memory import Chat, MemoryServices, payloads, text_of

STARS = [f"#rate {CODE} {n}" for n in range(1, 6)]


async def test_rating_from_the_menu_with_a_button_and_a_comment(
    owner: Chat, services: MemoryServices
) -> None:
    (ask,) = await owner.say("4")
    assert "muốn đánh giá" in text_of(ask)
    await owner.say(CODE)
    (question,) = await owner.say("5678")
    assert "từ 1 (rất không hài lòng) đến 5 (rất hài lòng)" in text_of(question)
    assert payloads(question) == STARS
    (thanks,) = await owner.tap(f"#rate {CODE} 4")
    assert "4/5" in text_of(thanks)
    assert services.ratings == {("owner", CODE): (4, None)}
    (done,) = await owner.say("Cán bộ nhiệt tình")
    assert "ghi nhận" in text_of(done)
    assert services.ratings == {("owner", CODE): (4, "Cán bộ nhiệt tình")}
    assert services.step("owner") is None


@pytest.mark.parametrize(("typed", "score"), [("5", 5), ("5 sao", 5), ("cho 3 điểm", 3)])
async def test_a_typed_score_and_a_skipped_comment(
    verified: Chat, services: MemoryServices, typed: str, score: int
) -> None:
    await verified.say(f"danh gia {CODE}")
    (thanks,) = await verified.say(typed)
    assert f"{score}/5" in text_of(thanks)
    (done,) = await verified.say("bỏ qua")
    assert "ghi nhận" in text_of(done)
    assert services.ratings == {("verified", CODE): (score, None)}


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
    assert services.ratings == {("verified", CODE): (2, None)}


async def test_a_star_button_from_an_old_message_rates_directly(
    verified: Chat, services: MemoryServices
) -> None:
    (thanks,) = await verified.tap(f"#rate {CODE} 1")
    assert "1/5" in text_of(thanks)
    assert services.ratings == {("verified", CODE): (1, None)}


async def test_a_stranger_cannot_rate_without_the_proof(
    stranger: Chat, services: MemoryServices
) -> None:
    ask, _card = await stranger.tap(f"#rate {CODE} 1")
    assert "xác minh" in text_of(ask)
    assert services.ratings == {}


async def test_a_rating_request_is_answered_with_a_typed_number(
    verified: Chat, services: MemoryServices
) -> None:
    verified.notice_asks("rating_request", CODE)
    (thanks,) = await verified.say("4")  # not menu choice 4
    assert "4/5" in text_of(thanks)
    await verified.say("Tốt")
    assert services.ratings == {("verified", CODE): (4, "Tốt")}


async def test_a_rating_request_answered_by_someone_unproven_asks_the_proof(
    owner: Chat, services: MemoryServices
) -> None:
    owner.notice_asks("rating_request", CODE)
    ask, _card = await owner.say("5")
    assert "4 chữ số cuối" in text_of(ask)
    (thanks,) = await owner.say("5678")
    assert "5/5" in text_of(thanks)
    assert services.ratings == {("owner", CODE): (5, None)}


async def test_leaving_the_comment_keeps_the_score(
    verified: Chat, services: MemoryServices
) -> None:
    await verified.tap(f"#rate {CODE} 3")
    (menu,) = await verified.say("menu")
    assert payloads(menu) == MENU
    assert services.ratings == {("verified", CODE): (3, None)}
