"""The console's whole loop in a real Chromium, from a citizen's Zalo report to the audit log.

A citizen reports on the OA (the fake Zalo, a real `tthc worker`) that a dossier announced
as finished was not; a hotline officer logs in, finds the report in the queue, takes it,
confirms the false closure after reading its consequence, edits the templated reply and
sends it; the citizen receives exactly that text on Zalo; the violations ledger holds the
entry on the officer who closed the dossier; an auditor records a decision on the entry's
page; an admin reads who did what in the staff audit log. SQLite only (the console's
suites in ``tests/http`` cover both databases). Any script error, console error or
warning, or failed request on any page fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from gateway.storage.db import create_engine
from gateway.storage.staff import add_user
from gateway.storage.tables import reports, violation_decisions, violations
from tests.browser.conftest import BrowserThread, watched_page
from tests.chat.conftest import CODE, OWNER_PHONE, ChatRig, text_of
from tests.helpers import ACTOR, event

PASSWORD = "mật khẩu đủ dài 1022"
STAFF = (
    ("hoa", "Phạm Thị Hoa", "hotline"),
    ("tam", "Võ Minh Tâm", "auditor"),
    ("bao", "Trần Quốc Bảo", "admin"),
)
COMPLAINT = "Tin nhắn báo đã có kết quả nhưng tôi đến quầy 5 thì chưa có giấy phép."
NOTE = "Đã xác minh với Sở Xây dựng: hồ sơ chưa có kết quả khi báo đã xong."
REPLY = (
    "Chào anh An, Trung tâm đã xác minh: hồ sơ của anh bị báo xong khi chưa có kết quả. "
    "Chúng tôi xin lỗi anh; giấy phép sẽ có trước ngày 26/04/2026, cán bộ sẽ gọi anh."
)
WAIT_MS = 15_000


def in_context(
    base: str, screenshots: Path, script: Callable[[Page], None]
) -> Callable[[Browser], None]:
    """Run ``script`` on a fresh laptop-sized page; fail on anything the page shows broken."""

    def run(browser: Browser) -> None:
        with watched_page(browser, screenshots, timeout_ms=WAIT_MS) as page:
            page.goto(f"{base}/console/login")
            script(page)

    return run


def log_in(page: Page, username: str) -> None:
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()


def hotline_confirms_and_replies(base: str, number: str) -> Callable[[Page], None]:
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%d/%m/%Y")

    def script(page: Page) -> None:
        log_in(page, "hoa")
        expect(page).to_have_url(f"{base}/console/reports")
        row = page.get_by_test_id("report").filter(has_text=number)
        expect(row).to_contain_text("Báo kết thúc sai")
        expect(row.get_by_test_id("assignee")).to_have_text("Chưa giao")
        row.get_by_role("button", name="Nhận xử lý").click()
        row = page.get_by_test_id("report").filter(has_text=number)
        expect(row.get_by_test_id("assignee")).to_have_text("Phạm Thị Hoa")
        row.get_by_role("link", name=number).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(number)
        expect(page.get_by_test_id("description")).to_have_text(COMPLAINT)
        expect(page.get_by_test_id("messages")).to_contain_text(f"Người dân, {today}")
        move = page.get_by_test_id("move-resolved")
        move.locator("summary").click()
        # The consequence is read before anything is saved: the officer who closed it.
        expect(move.get_by_test_id("consequence")).to_contain_text(ACTOR["name"])
        move.get_by_label("Nội dung trả lời người dân").fill(NOTE)
        move.get_by_label("Xác nhận báo kết thúc sai").check()
        reply = move.get_by_label("Tin nhắn gửi người dân")
        assert number in reply.input_value(), reply.input_value()  # the template, filled in
        reply.fill(REPLY)
        move.get_by_role("button", name="Lưu và gửi tin").click()
        expect(page.get_by_test_id("flash")).to_have_class("ok")
        expect(page.get_by_test_id("report-status")).to_have_text("Đã giải quyết")
        page.get_by_role("button", name="Đăng xuất").click()
        expect(page).to_have_url(f"{base}/console/login")

    return script


def auditor_decides(base: str) -> Callable[[Page], None]:
    def script(page: Page) -> None:
        log_in(page, "tam")
        page.get_by_role("link", name="Sổ vi phạm").click()
        row = page.get_by_test_id("violation").filter(has_text=CODE)
        expect(row).to_contain_text(ACTOR["name"])
        row.get_by_test_id("detail").click()
        expect(page.get_by_test_id("cited").first).to_be_visible()
        page.get_by_label("Xử lý kỷ luật").check()
        expect(page.get_by_label("Hình thức")).not_to_have_value("")
        page.get_by_label("Ghi chú (bắt buộc khi không xử lý)").fill("Họp kiểm điểm ngày 27/04.")
        page.get_by_role("button", name="Ghi quyết định").click()
        expect(page.get_by_test_id("decision")).to_have_count(1)
        expect(page.get_by_test_id("decision")).to_contain_text("Võ Minh Tâm")
        page.get_by_role("button", name="Đăng xuất").click()

    return script


def admin_reads_the_log(base: str, seen: list[tuple[str, str]]) -> Callable[[Page], None]:
    def script(page: Page) -> None:
        log_in(page, "bao")
        page.get_by_role("link", name="Nhật ký thao tác").click()
        expect(page.get_by_test_id("audit-log")).to_be_visible()
        for entry in page.get_by_test_id("entry").all():
            cells = entry.locator("td")
            seen.append(
                (cells.nth(0).inner_text().strip(), str(entry.get_attribute("data-action")))
            )

    return script


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_citizens_report_goes_round_the_whole_console(
    browser: BrowserThread, chat: ChatRig, tmp_path: Path
) -> None:
    finished = event("dossier.finished", at="2026-04-23T16:30:00+07:00")
    status, answer, _ = await chat.gateway.post(finished)
    assert status == 202, answer
    engine = create_engine(chat.settings.database_url, writer=True)
    try:
        for username, name, role in STAFF:
            await add_user(engine, username, name, role, datetime.now(UTC), password=PASSWORD)
    finally:
        await engine.dispose()

    # The citizen, on Zalo: proves their number with the code sent to it (it is the
    # dossier's), then reports the false closure.
    citizen = chat.citizen("Nguyễn Văn An", OWNER_PHONE, follows=True)
    await chat.say(citizen, CODE, replies=2)
    await chat.prove(citizen)
    await chat.click(citizen, f"#report_false {CODE}")
    (opened,) = await chat.say(citizen, COMPLAINT)
    (report,) = await chat.rows(sa.select(reports))
    assert report.number in text_of(opened)
    before = len(chat.zalo.messages_for(citizen.user_id))

    base = chat.worker_env["PUBLIC_BASE_URL"]
    await browser.run(in_context(base, tmp_path, hotline_confirms_and_replies(base, report.number)))
    # The citizen receives the officer's own words on Zalo, once.
    received = await chat.zalo.wait_for_messages(citizen.user_id, before + 1, within=15)
    assert [text_of(m) for m in received[before:]] == [REPLY]

    (entry,) = await chat.rows(sa.select(violations).where(violations.c.dossier_code == CODE))
    assert (entry.rule, entry.officer_id) == ("false_closure", ACTOR["id"])
    await browser.run(in_context(base, tmp_path, auditor_decides(base)))
    (decision,) = await chat.rows(sa.select(violation_decisions))
    assert (decision.violation_id, decision.decision) == (entry.id, "applied")

    seen: list[tuple[str, str]] = []
    await browser.run(in_context(base, tmp_path, admin_reads_the_log(base, seen)))
    by_whom = [(who, action) for who, action in reversed(seen) if action != "audit_log_read"]
    assert by_whom[:8] == [
        ("hoa", "login"),
        ("hoa", "report_assign"),
        ("hoa", "report_transition"),
        ("hoa", "logout"),
        ("tam", "login"),
        ("tam", "violation_decision"),
        ("tam", "logout"),
        ("bao", "login"),
    ], seen
