"""The fake Zalo's chat page in a real Chromium: a citizen creates themselves, follows the
OA, looks up their dossier and reports a false closure, all by clicking and typing.

Behind the page: the fake Zalo posting signed webhooks to a real gateway, and a real
`tthc worker` process answering. SQLite only: the databases have suites of their own.
Any JavaScript error, console error or warning, or failed request fails the test.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.sync_api import Browser, Locator, Page, expect

from gateway.storage.tables import reports
from providers.fakes.zalo import FakeZalo
from providers.fakes.zalo import create_app as create_zalo_app
from tests.browser.conftest import BrowserThread, watched_page
from tests.chat.conftest import CODE, OWNER_PHONE, ChatRig

# The worker answers within a second or two; the page polls the thread every second.
REPLY_MS = 10_000
DESCRIPTION = "Tôi đến quầy 5 nhưng cán bộ nói chưa có kết quả"

Script = Callable[[Page], str]


def on_page(
    url: str, script: Script, screenshots: Path, *, remembered_user: str | None = None
) -> Callable[[Browser], str]:
    """Open ``url`` in a fresh context, run ``script`` and fail on any error the page shows.

    ``remembered_user`` is put in the page's localStorage first, as an earlier visit would.
    A failure leaves ``failure.png`` in ``screenshots`` (the test's tmp_path).
    """

    def run(browser: Browser) -> str:
        with watched_page(browser, screenshots, viewport=None, locations=True) as page:
            if remembered_user is not None:
                page.add_init_script(
                    f"localStorage.setItem('fake-zalo-user', {remembered_user!r});"
                )
            page.goto(url)
            result = script(page)
            expect(page.get_by_test_id("status")).not_to_contain_text("Lỗi")
        return result

    return run


def oa_message(page: Page, text: str) -> Locator:
    return page.locator('[data-testid="message"][data-from="oa"]').filter(has_text=text)


def user_message(page: Page, text: str) -> Locator:
    return page.locator('[data-testid="message"][data-from="user"]').filter(has_text=text)


def oa_button(page: Page, payload: str) -> Locator:
    """The newest OA button with ``payload`` (every menu repeats the same ones)."""
    return page.locator(f'[data-testid="oa-button"][data-payload="{payload}"]').last


def selected_user(page: Page) -> Locator:
    return page.get_by_test_id("user-select").locator("option:checked")


def type_message(page: Page, text: str) -> None:
    """Type ``text`` and press Enter; it shows in the thread as the citizen's."""
    page.get_by_test_id("text-input").fill(text)
    page.get_by_test_id("text-input").press("Enter")
    expect(page.get_by_test_id("text-input")).to_have_value("")
    expect(user_message(page, text)).to_be_visible(timeout=REPLY_MS)


def create_user(page: Page, name: str, phone: str) -> None:
    page.get_by_test_id("new-name").fill(name)
    page.get_by_test_id("new-phone").fill(phone)
    page.get_by_test_id("create-user").click()
    expect(page.get_by_test_id("status")).to_have_text(f"Đã tạo người dùng {name}")


def one_time_code(chat: ChatRig, phone: str) -> str:
    """The first one-time code ``phone`` received at the fake eSMS (polled from the
    browser's thread while the test's loop serves the fakes)."""
    deadline = time.monotonic() + REPLY_MS / 1000
    while not (codes := chat.codes_to(phone)):
        assert time.monotonic() < deadline, "no one-time code by SMS"
        time.sleep(0.05)
    return codes[0]


def look_up_and_report(page: Page, code_of: Callable[[], str]) -> str:
    """The owner of the dossier, from a blank page to a report number; the thread's text.
    Sharing the number sends a code to it (``code_of`` reads it off the phone)."""
    expect(page).to_have_title("Zalo OA giả lập")
    create_user(page, "Nguyễn Văn An", "0912 345 678")
    expect(selected_user(page)).to_contain_text(OWNER_PHONE)

    page.get_by_test_id("follow").click()
    expect(page.get_by_test_id("status")).to_have_text("Đã gửi tới gateway: HTTP 200")
    expect(selected_user(page)).to_contain_text("đang quan tâm")
    expect(oa_message(page, "Xin chào")).to_be_visible(timeout=REPLY_MS)
    expect(oa_button(page, "#lookup")).to_have_text("Tra cứu hồ sơ", timeout=REPLY_MS)

    oa_button(page, "#lookup").click()
    expect(oa_message(page, "Xin gõ mã hồ sơ")).to_be_visible(timeout=REPLY_MS)
    share = page.get_by_test_id("share-phone")
    expect(share).to_be_hidden()

    type_message(page, CODE)
    expect(oa_message(page, "xin xác minh")).to_be_visible(timeout=REPLY_MS)
    expect(share).to_be_visible(timeout=REPLY_MS)
    expect(page.locator('[data-from="oa"]').filter(has_text="Sở Xây dựng")).to_have_count(0)
    share.click()
    expect(oa_message(page, "mã xác thực 6 chữ số")).to_be_visible(timeout=REPLY_MS)
    type_message(page, code_of())
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
    return page.get_by_test_id("thread").inner_text()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_citizen_looks_up_their_dossier_and_reports_a_false_closure(
    browser: BrowserThread, chat: ChatRig, tmp_path: Path
) -> None:
    url = chat.settings.env["ZALO_OA_BASE_URL"] + "/"

    steps = functools.partial(look_up_and_report, code_of=lambda: one_time_code(chat, OWNER_PHONE))
    thread = await browser.run(on_page(url, steps, tmp_path))

    (report,) = await chat.rows(sa.select(reports))
    assert report.kind == "false_closure"
    assert report.dossier_code == CODE
    assert report.description == DESCRIPTION
    assert re.search(rf"\b{re.escape(report.number)}\b", thread), thread
    (user,) = chat.zalo.users.values()
    assert user.phone_e164 == OWNER_PHONE
    assert report.zalo_user_id == user.user_id


def start_afresh(page: Page) -> str:
    """A user remembered from an earlier run is gone: an empty page, then a new user."""
    expect(page.get_by_test_id("user-select").locator("option")).to_have_count(0)
    page.get_by_test_id("follow").click()
    expect(page.get_by_test_id("status")).to_have_text("Hãy tạo hoặc chọn một người dùng.")
    page.wait_for_timeout(1200)  # one poll of the thread, which must not ask for the lost user
    create_user(page, "Trần Thị Bình", "+84987654321")
    expect(selected_user(page)).to_contain_text("+84987654321")
    return str(page.evaluate("localStorage.getItem('fake-zalo-user')"))


async def test_the_page_forgets_a_user_the_fake_no_longer_has(
    browser: BrowserThread, tmp_path: Path
) -> None:
    fake = FakeZalo()
    server = TestServer(create_zalo_app(fake))
    await server.start_server()
    try:
        url = str(server.make_url("/"))
        remembered = await browser.run(on_page(url, start_afresh, tmp_path, remembered_user="999"))
    finally:
        await server.close()
    (user,) = fake.users.values()
    assert remembered == user.user_id


def what_zalo_shows(page: Page) -> str:
    """The follower's chat: a tapped button's title, a ZNS card; then the non-follower's."""
    expect(selected_user(page)).to_contain_text("Nguyễn Văn An")
    expect(page.get_by_test_id("chat-title")).to_have_text(
        "Bạn đang trò chuyện với tư cách Nguyễn Văn An"
    )
    card = page.get_by_test_id("zns-card")
    expect(card).to_contain_text("Mời nhận kết quả hồ sơ")
    expect(card.get_by_test_id("zns-row").first).to_contain_text("Khách hàng")
    expect(card.get_by_test_id("zns-button")).to_have_text("Tra cứu hồ sơ")

    oa_button(page, "#report_false").click()
    tap = page.locator('[data-testid="message"][data-from="user"]').last
    expect(tap).to_contain_text("Báo chưa có kết quả")
    expect(tap).not_to_contain_text("#report_false")
    expect(tap).to_have_attribute("title", "payload: #report_false")

    page.get_by_test_id("user-select").select_option(label="Trần Thị Bình · +84987654321")
    system = page.locator('[data-testid="message"][data-from="system"]')
    expect(system).to_contain_text("Người dùng chưa quan tâm OA")
    type_message(page, "Alo")
    expect(page.get_by_test_id("not-following").last).to_be_visible()
    return page.get_by_test_id("thread").inner_text()


async def test_the_page_shows_what_zalo_shows_the_citizen(
    browser: BrowserThread, tmp_path: Path
) -> None:
    async def webhook(request: web.Request) -> web.Response:
        return web.json_response({"status": "queued"})

    receiving = web.Application()
    receiving.router.add_post("/webhooks/zalo", webhook)
    gateway = TestServer(receiving)
    await gateway.start_server()
    fake = FakeZalo(webhook_url=str(gateway.make_url("/webhooks/zalo")))
    server = TestServer(create_zalo_app(fake))
    await server.start_server()
    try:
        follower = fake.add_user("Nguyễn Văn An", "+84912345678", follows=True)
        stranger = fake.add_user("Trần Thị Bình", "+84987654321")
        await post_as_oa(server, fake, follower.user_id, stranger.user_id)
        thread = await browser.run(
            on_page(str(server.make_url("/")), what_zalo_shows, tmp_path, remembered_user="")
        )
    finally:
        await server.close()
        await gateway.close()
    assert follower.user_id not in thread and stranger.user_id not in thread
    assert [a.text for a in fake.inbound] == ["#report_false", "Alo"]


async def post_as_oa(server: TestServer, fake: FakeZalo, follower: str, stranger: str) -> None:
    """A menu and a ZNS notice to the follower; a refused message to the stranger."""
    headers = {"access_token": fake.issue_pair()["access_token"]}
    menu = {
        "type": "template",
        "payload": {
            "buttons": [
                {
                    "title": "Báo chưa có kết quả",
                    "type": "oa.query.hide",
                    "payload": "#report_false",
                }
            ]
        },
    }
    zns = {
        "phone": "84912345678",
        "template_id": "250001",
        "template_data": {
            "customer_name": "Nguyễn Văn An",
            "dossier_code": CODE,
            "pickup": "Bộ phận một cửa",
        },
        "tracking_id": "page1",
    }
    async with aiohttp.ClientSession(headers=headers) as session:
        for path, body in (
            (
                "/v3.0/oa/message/cs",
                {
                    "recipient": {"user_id": follower},
                    "message": {"text": "Chọn", "attachment": menu},
                },
            ),
            ("/message/template", zns),
            (
                "/v3.0/oa/message/cs",
                {"recipient": {"user_id": stranger}, "message": {"text": "Xin chào"}},
            ),
        ):
            async with session.post(server.make_url(path), json=body) as resp:
                assert resp.status == 200
