"""The fake Zalo's chat page in a real Chromium: a citizen creates themselves, follows the
OA, looks up their dossier and reports a false closure, all by clicking and typing.

Behind the page: the fake Zalo posting signed webhooks to a real gateway, and a real
`tthc worker` process answering. SQLite only: the databases have suites of their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, ConsoleMessage, Error, Locator, Page, expect

from gateway.storage.tables import reports
from tests.browser.conftest import BrowserThread
from tests.chat.conftest import CODE, OWNER_PHONE, ChatRig

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# The worker answers within a second or two; the page polls the thread every second.
REPLY_MS = 10_000
DESCRIPTION = "Tôi đến quầy 5 nhưng cán bộ nói chưa có kết quả"


def oa_message(page: Page, text: str) -> Locator:
    return page.locator('[data-testid="message"][data-from="oa"]').filter(has_text=text)


def user_message(page: Page, text: str) -> Locator:
    return page.locator('[data-testid="message"][data-from="user"]').filter(has_text=text)


def oa_button(page: Page, payload: str) -> Locator:
    """The newest OA button with ``payload`` (every menu repeats the same ones)."""
    return page.locator(f'[data-testid="oa-button"][data-payload="{payload}"]').last


def type_message(page: Page, text: str) -> None:
    page.get_by_test_id("text-input").fill(text)
    page.get_by_test_id("text-input").press("Enter")
    expect(user_message(page, text)).to_be_visible(timeout=REPLY_MS)
    expect(page.get_by_test_id("text-input")).to_have_value("")


def citizen_script(url: str) -> Callable[[Browser], str]:
    """What the citizen does on the page; returns the thread's text at the end."""

    def run(browser: Browser) -> str:
        context = browser.new_context(locale="vi-VN")
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

        def console(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):
                problems.append(f"console {message.type}: {message.text} at {message.location}")

        page.on("console", console)
        page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status} {r.url}"))
        try:
            page.goto(url)
            expect(page).to_have_title("Zalo OA giả lập")

            page.get_by_test_id("new-name").fill("Nguyễn Văn An")
            page.get_by_test_id("new-phone").fill("0912 345 678")
            page.get_by_test_id("create-user").click()
            expect(page.get_by_test_id("status")).to_have_text("Đã tạo người dùng Nguyễn Văn An")
            expect(page.get_by_test_id("user-select").locator("option:checked")).to_contain_text(
                OWNER_PHONE
            )

            page.get_by_test_id("follow").click()
            expect(page.get_by_test_id("status")).to_have_text("Đã gửi tới gateway: HTTP 200")
            expect(oa_message(page, "Xin chào")).to_be_visible(timeout=REPLY_MS)
            expect(oa_button(page, "#lookup")).to_have_text("Tra cứu hồ sơ", timeout=REPLY_MS)
            expect(page.get_by_test_id("user-select").locator("option:checked")).to_contain_text(
                "đang quan tâm"
            )

            oa_button(page, "#lookup").click()
            expect(oa_message(page, "Xin gõ mã hồ sơ")).to_be_visible(timeout=REPLY_MS)
            expect(page.get_by_test_id("share-phone")).to_be_hidden()

            type_message(page, CODE)
            expect(oa_message(page, "xin xác minh")).to_be_visible(timeout=REPLY_MS)
            share = page.get_by_test_id("share-phone")
            expect(share).to_be_visible(timeout=REPLY_MS)
            share.click()
            answer = oa_message(page, "Cấp giấy phép xây dựng")
            expect(answer).to_be_visible(timeout=REPLY_MS)
            expect(answer).to_contain_text("Sở Xây dựng")
            expect(share).to_be_hidden()

            report_false = oa_button(page, f"#report_false {CODE}")
            expect(report_false).to_have_text("Báo xong nhưng chưa có kết quả")
            report_false.click()
            expect(oa_message(page, "mô tả")).to_be_visible(timeout=REPLY_MS)
            type_message(page, DESCRIPTION)
            expect(oa_message(page, "PA-")).to_be_visible(timeout=REPLY_MS)

            expect(page.get_by_test_id("status")).not_to_contain_text("Lỗi")
            thread = page.get_by_test_id("thread").inner_text()
        except Error:
            page.screenshot(path="/tmp/zalo-chat-page-failure.png", full_page=True)
            raise
        finally:
            context.close()
        assert not problems, problems
        return thread

    return run


async def test_a_citizen_looks_up_their_dossier_and_reports_a_false_closure_on_the_page(
    chat: ChatRig, browser: BrowserThread
) -> None:
    url = chat.settings.env["ZALO_OA_BASE_URL"] + "/"

    thread = await browser.run(citizen_script(url))

    (report,) = await chat.rows(sa.select(reports))
    assert report.kind == "false_closure"
    assert report.dossier_code == CODE
    assert report.description == DESCRIPTION
    assert re.search(rf"\b{re.escape(report.number)}\b", thread), thread
    (user,) = chat.zalo.users.values()
    assert user.phone_e164 == OWNER_PHONE
    assert report.zalo_user_id == user.user_id
