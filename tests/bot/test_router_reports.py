"""Reports (phản ánh): false closure and other problems, with a description or "bỏ
qua"; and the answers to a result check (đã nhận / chưa nhận)."""

from __future__ import annotations

import logging

import pytest

from tests.bot.conftest import CODE, MENU, SECRETS, prove_with_code
from tests.bot.memory import Chat, MemoryServices, everything, payloads, text_of


async def test_a_false_closure_report_from_the_menu_with_a_description(
    owner: Chat, services: MemoryServices
) -> None:
    (ask,) = await owner.say("2")
    assert "muốn phản ánh về hồ sơ nào" in text_of(ask)
    await owner.say(CODE)
    (choose,) = await prove_with_code(owner)
    assert "muốn phản ánh điều gì" in text_of(choose)
    assert payloads(choose) == [f"#report_false {CODE}", f"#report_other {CODE}"]
    (describe,) = await owner.say("1")
    assert "mô tả" in text_of(describe)
    assert '"bỏ qua"' in text_of(describe)
    (opened,) = await owner.say("Tôi đến quầy 5 nhưng cán bộ nói chưa có kết quả")
    (report,) = services.reports
    assert (report.user_id, report.dossier_code, report.kind, report.source) == (
        "owner",
        CODE,
        "false_closure",
        "zalo",
    )
    assert report.description == "Tôi đến quầy 5 nhưng cán bộ nói chưa có kết quả"
    assert report.proof == "otp"
    assert "PA-2024-000001" in text_of(opened)
    assert "22/04/2024" in text_of(opened)  # the date an answer is due
    assert owner.outcome.report_id == report.facts.id
    assert services.step("owner") is None


async def test_another_problem_skipped_description_gets_the_default_text(
    verified: Chat, services: MemoryServices
) -> None:
    await verified.say(f"phan anh ho so {CODE}")
    (describe,) = await verified.say("2")
    assert f"vấn đề ông/bà gặp với hồ sơ {CODE}" in text_of(describe)
    (opened,) = await verified.say("bo qua")
    (report,) = services.reports
    assert (report.kind, report.proof) == ("problem", "proven_phone")
    assert report.description == "Công dân phản ánh về hồ sơ (không mô tả thêm)."
    assert report.facts.number in text_of(opened)


async def test_the_report_buttons_of_a_lookup_answer_go_straight_to_the_description(
    verified: Chat, services: MemoryServices
) -> None:
    (describe,) = await verified.tap(f"#report_false {CODE}")
    assert "ông/bà được báo thế nào" in text_of(describe)
    await verified.say("Bỏ qua")
    (report,) = services.reports
    assert report.kind == "false_closure"
    assert "chưa nhận được kết quả" in report.description


async def test_a_report_about_someone_elses_dossier_needs_the_proof_first(
    stranger: Chat, services: MemoryServices
) -> None:
    ask, _card = await stranger.tap(f"#report_other {CODE}")
    assert "xác minh" in text_of(ask)
    (wrong,) = await stranger.say("1234")
    assert "không khớp" in text_of(wrong)
    assert services.reports == []
    for secret in SECRETS:
        assert secret not in everything(stranger.sent)


async def test_cancelling_the_description_opens_no_report(
    verified: Chat, services: MemoryServices
) -> None:
    await verified.tap(f"#report_false {CODE}")
    cancelled, menu = await verified.say("Hủy")
    assert text_of(cancelled) == "Đã hủy."
    assert payloads(menu) == MENU
    assert services.reports == []


async def test_a_long_description_is_cut_to_2000_characters(
    verified: Chat, services: MemoryServices
) -> None:
    await verified.tap(f"#report_other {CODE}")
    await verified.say("x" * 2500)
    assert len(services.reports[0].description) == 2000


@pytest.mark.parametrize("typed", ["chua nhan", "Chưa nhận được", "#not_received"])
async def test_not_received_after_a_result_check_opens_a_report(
    verified: Chat, services: MemoryServices, typed: str
) -> None:
    verified.notice_asks("result_check", CODE)
    (opened,) = await verified.say(typed)
    assert services.result_answers == {CODE: False}
    (report,) = services.reports
    assert (report.kind, report.source, report.dossier_code, report.proof) == (
        "false_closure",
        "result_check",
        CODE,
        "proven_phone",
    )
    assert report.facts.number in text_of(opened)


@pytest.mark.parametrize("typed", ["da nhan", "Đã nhận kết quả rồi", f"#received {CODE}"])
async def test_received_after_a_result_check_is_recorded(
    verified: Chat, services: MemoryServices, typed: str
) -> None:
    verified.notice_asks("result_check", CODE)
    (thanks,) = await verified.say(typed)
    assert "đã nhận kết quả" in text_of(thanks)
    assert services.result_answers == {CODE: True}
    assert services.reports == []


async def test_a_result_check_answer_for_no_question_is_refused(
    stranger: Chat, services: MemoryServices, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        (unknown,) = await stranger.tap(f"#not_received {CODE}")
    assert "không tìm thấy câu hỏi" in text_of(unknown)
    assert "result-check answer for no question asked" in caplog.text
    assert services.result_answers == {} and services.reports == []
    (menu,) = await stranger.tap("#received")  # no code, no question pending
    assert "chưa hiểu" in text_of(menu)
    (menu,) = await stranger.say("chua nhan")  # typed, nothing asked: not understood
    assert payloads(menu) == MENU


async def test_a_result_check_is_answered_even_in_the_middle_of_a_prompt(
    verified: Chat, services: MemoryServices
) -> None:
    await verified.say("1")  # the code prompt…
    verified.notice_asks("result_check", CODE)  # …then the notice asks
    await verified.say("chưa nhận")
    assert services.result_answers == {CODE: False}
    assert services.reports[0].source == "result_check"


async def test_once_the_bot_said_something_else_the_question_is_no_longer_pending(
    verified: Chat, services: MemoryServices
) -> None:
    verified.notice_asks("result_check", CODE)
    await verified.say("xin chao")
    (menu,) = await verified.say("chua nhan")
    assert payloads(menu) == MENU
    assert services.result_answers == {}


async def test_a_result_check_answer_with_the_last_four_digits_only_needs_a_code(
    owner: Chat, services: MemoryServices
) -> None:
    services.result_checks[CODE] = "+84912345678"  # asked of the dossier's phone by ZNS
    await owner.say(CODE)
    await owner.say("5678")
    (needed, _card) = await owner.tap(f"#not_received {CODE}")
    assert "mã xác thực" in text_of(needed)
    assert services.result_answers == {} and services.reports == []
    (opened,) = await prove_with_code(owner)
    assert services.result_answers == {CODE: False}
    (report,) = services.reports
    assert (report.source, report.proof) == ("result_check", "otp")
    assert report.facts.number in text_of(opened)
