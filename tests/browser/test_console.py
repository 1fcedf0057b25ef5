"""The staff console in a real Chromium: a hotline officer logs in and sees the queue.

The officer is made with the storage function (with a password); the report is taken
through the staff API, as a phone call would be. SQLite only: the console's suite in
``tests/http`` covers both databases. Any JavaScript error, console message of level
error or warning, or failed request fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from playwright.sync_api import Browser, expect

from gateway.http.app import create_app
from gateway.http.keys import DATABASE
from gateway.settings import Settings
from gateway.storage.staff import add_user
from tests.browser.conftest import BrowserThread, watched_page
from tests.staff_helpers import seed_dossier

CODE = "000.00.12.H19-260401-0001"
PASSWORD = "mật khẩu đủ dài 1022"
NOW = datetime(2026, 4, 24, 9, 0, tzinfo=UTC)


def log_in_and_read_the_queue(
    base: str, number: str, screenshots: Path
) -> Callable[[Browser], str]:
    """The script run on the browser's thread; returns the queue row's text."""

    def run(browser: Browser) -> str:
        with watched_page(browser, screenshots) as page:
            page.goto(f"{base}/console/reports")  # no session: sent to the login page
            expect(page).to_have_url(f"{base}/console/login")
            page.get_by_label("Tên đăng nhập").fill("hoa")
            page.get_by_label("Mật khẩu").fill(PASSWORD)
            page.get_by_role("button", name="Đăng nhập").click()
            expect(page).to_have_url(f"{base}/console/reports")
            expect(page.get_by_role("heading", name="Phản ánh của người dân")).to_be_visible()
            group = page.get_by_test_id("group").filter(has_text=number)
            expect(group).to_contain_text(CODE)  # reports are grouped under their dossier
            row = group.get_by_test_id("report")
            expect(row).to_contain_text("Báo kết thúc sai")
            text = row.inner_text()
            page.get_by_role("button", name="Đăng xuất").click()
            expect(page).to_have_url(f"{base}/console/login")
        return text

    return run


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_hotline_officer_logs_in_and_sees_a_phoned_in_report(
    browser: BrowserThread, settings: Settings, tmp_path: Path
) -> None:
    server = TestServer(create_app(settings))
    await server.start_server()
    try:
        db = server.app[DATABASE]
        token = await add_user(db.writer, "hoa", "Lê Thị Hoa", "hotline", NOW, password=PASSWORD)
        await seed_dossier(db.writer, CODE)
        base = str(server.make_url("")).rstrip("/")
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{base}/v1/reports",
                json={
                    "dossier": CODE,
                    "kind": "false_closure",
                    "description": "Hồ sơ báo đã trả nhưng tôi chưa nhận được giấy phép.",
                    "phone": "0912 345 678",
                },
                headers={"Authorization": f"Bearer {token}"},
            ) as answer,
        ):
            assert answer.status == 201, await answer.text()
            number = (await answer.json())["service_request_id"]
        text = await browser.run(log_in_and_read_the_queue(base, number, tmp_path))
        assert re.search(r"\d\d/\d\d/\d{4}", text)
        assert "+849******78" in text and "+84912345678" not in text  # masked for everyone
    finally:
        await server.close()
