"""The console's main pages checked for accessibility in a real Chromium, and by keyboard.

The gateway is filled as for the screenshots (``tests/browser/screenshots.py``: six months
of simulated traffic, reports, conversations, notices gone wrong), then every page the
screenshots show, at laptop and phone width, is checked with axe-core (vendored under
``tests/browser/vendor/``, pinned) against WCAG 2.1 A and AA. A person without a mouse
logs in and takes a report with the keyboard alone. SQLite only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.sync_api import Browser, Page, expect

from gateway.http.app import create_app
from gateway.settings import Settings
from tests.browser.conftest import BrowserThread, watch, watched_page
from tests.browser.screenshots import PASSWORD, Shot, fill, log_in, plan_for

AXE = Path(__file__).parent / "vendor" / "axe-core-4.11.0" / "axe.min.js"
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def audit_pages(base: str, plan: list[Shot]) -> Callable[[Browser], dict[str, list[Any]]]:
    """Run axe on each shot's page (after its action); the violations found, by page."""

    def run(browser: Browser) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        pages: dict[tuple[str | None, int], Page] = {}
        try:
            for shot in plan:
                key = (shot.user, shot.viewport["width"])
                if key not in pages:
                    # The console's CSP allows no script: axe is let in for the check only.
                    context = browser.new_context(
                        locale="vi-VN", viewport=shot.viewport, bypass_csp=True
                    )
                    pages[key] = context.new_page()
                    if shot.user is not None:
                        log_in(pages[key], base, shot.user)
                page = pages[key]
                problems = watch(page)
                page.goto(f"{base}{shot.path}")
                if shot.then is not None:
                    shot.then(page)
                page.add_script_tag(path=str(AXE))
                result = page.evaluate(
                    "rules => axe.run(document, {runOnly: {type: 'tag', values: rules}})", RULES
                )
                found[shot.name] = [
                    (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                    for v in result["violations"]
                ] + problems
        finally:
            for page in pages.values():
                page.context.close()
        return found

    return run


def by_keyboard(base: str) -> Callable[[Browser], str]:
    """Log in and take the first report with Tab, typing and Enter only."""

    def run(browser: Browser) -> str:
        with watched_page(browser) as page:
            page.goto(f"{base}/console/login")
            # The login form has the focus from the start (autofocus on the username).
            expect(page.locator(":focus")).to_have_attribute("name", "username")
            page.keyboard.type("hoa")
            page.keyboard.press("Tab")
            page.keyboard.type(PASSWORD)
            page.keyboard.press("Enter")
            expect(page).to_have_url(f"{base}/console/reports")
            # The first Tab offers to skip the navigation; then on to the first report.
            page.keyboard.press("Tab")
            expect(page.locator(":focus")).to_have_text("Bỏ qua, đến nội dung chính")
            page.keyboard.press("Enter")
            for _ in range(60):
                page.keyboard.press("Tab")
                if page.evaluate("document.activeElement.textContent").startswith("PA-"):
                    break
            number = page.evaluate("document.activeElement.textContent").strip()
            assert number.startswith("PA-"), number
            page.keyboard.press("Enter")
            expect(page.get_by_role("heading", level=1)).to_contain_text(number)
            take = page.get_by_role("button", name="Nhận xử lý phản ánh này")
            take.focus()
            page.keyboard.press("Enter")
            expect(page.get_by_test_id("assignee")).to_have_text("Nguyễn Thị Hoa (bạn)")
        return number

    return run


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_every_main_page_passes_wcag_checks_and_works_by_keyboard(
    browser: BrowserThread, settings: Settings
) -> None:
    server = TestServer(create_app(settings))
    await server.start_server()
    try:
        base = str(server.make_url("")).rstrip("/")
        await fill(settings, base, datetime.now(UTC))
        assert (await browser.run(by_keyboard(base))).startswith("PA-")
        plan = await plan_for(settings.database_url)
        found = await browser.run(audit_pages(base, plan))
        assert len(found) == len(plan) >= 20
        assert {name: issues for name, issues in found.items() if issues} == {}
    finally:
        await server.close()
