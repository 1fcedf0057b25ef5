"""The citizen page in a real Chromium, for a citizen who has no Zalo account.

Behind it: the gateway on loopback, the fake eSMS, and real `tthc worker` processes
(burst) sending the SMS. Acceptance 2 of issue 11: the dossier is received and finished
through the signed events API; the result check goes out by SMS with its signed link;
the citizen opens the link from the SMS text, answers "chưa nhận"; the false-closure
report is in the staff API with proof ``sms_link``; then they rate with two scores. And
the lookup by code: the last four digits show the details, a one-time code read from
the fake eSMS gives the act level. At 320 px wide. SQLite only (the HTTP suite covers
both databases). Any console error or warning, or failed request fails the test.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, ViewportSize, expect

from gateway.settings import Settings
from gateway.storage import staff as staff_store
from gateway.storage.db import create_engine
from gateway.storage.tables import ratings, reports
from tests.browser.conftest import BrowserThread, watched_page
from tests.conftest import forget_queues
from tests.delivery.conftest import Rig, running_rig
from tests.helpers import CODE, event

SECRET = "citizen-secret-for-browser-tests-0123456789"
PHONE_NATIONAL = "84912345678"
PROCEDURE = "Cấp giấy phép xây dựng"
LINK_RE = re.compile(r"https?://\S+/l/[A-Za-z0-9_-]{16}")
WAIT_MS = 15_000
NARROW: ViewportSize = {"width": 320, "height": 640}

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def citizen_settings(sms_settings: Settings) -> Iterator[Settings]:
    """The delivery rig's settings with the citizen secret and an immediate result check."""
    merged = Settings.from_mapping(
        {**sms_settings.env, "CITIZEN_SECRET": SECRET, "RESULT_CHECK_WORKING_DAYS": "0"}
    )
    yield merged
    forget_queues(merged)


def on_phone(
    url: str, script: Callable[[Page], str], screenshots: Path
) -> Callable[[Browser], str]:
    """Run ``script`` on a fresh 320 px wide page; fail on anything the page shows broken."""

    def run(browser: Browser) -> str:
        with watched_page(browser, screenshots, viewport=NARROW, timeout_ms=WAIT_MS) as page:
            page.goto(url)
            result = script(page)
            # No sideways scrolling on a cheap phone.
            assert page.evaluate("document.documentElement.scrollWidth") <= 320
        return result

    return run


async def finished_dossier(rig: Rig) -> None:
    """Received five days ago, finished three days ago, through the signed events API."""
    now = datetime.now(UTC).replace(microsecond=0)
    dossier = {
        "received_at": (now - timedelta(days=5)).isoformat(),
        "due_at": (now + timedelta(days=5)).isoformat(),
    }
    for type_, days in (("dossier.received", 5), ("dossier.finished", 3)):
        at = (now - timedelta(days=days)).isoformat()
        status, answer, _ = await rig.gateway.post(event(type_, at=at, **dossier))
        assert status == 202, answer
    await rig.work()


def sms_to_owner(rig: Rig) -> list[str]:
    return [m.content for m in rig.esms.messages if m.phone.endswith(PHONE_NATIONAL[-9:])]


def answers_and_rates(page: Page) -> str:
    expect(page).to_have_url(re.compile(r"/tra-cuu\?ma="))
    expect(page.get_by_role("heading", name=f"Hồ sơ {CODE}")).to_be_visible()
    expect(page.get_by_text(PROCEDURE)).to_be_visible()
    expect(page.get_by_role("heading", name="Ông/bà đã nhận được kết quả chưa?")).to_be_visible()
    page.get_by_role("button", name="Chưa nhận").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Đã tiếp nhận phản ánh")
    number = page.locator("dd").first.inner_text().strip()
    expect(page.get_by_text("Dự kiến trả lời trước ngày")).to_be_visible()
    page.get_by_role("link", name=f"Quay lại hồ sơ {CODE}").click()
    page.get_by_role("group", name=re.compile("Tiến độ giải quyết")).get_by_label("2").check()
    page.get_by_role("group", name=re.compile("Chất lượng phục vụ")).get_by_label("4").check()
    page.get_by_label("Góp ý (không bắt buộc)").fill("Báo xong nhưng chưa có giấy phép")
    page.get_by_role("button", name="Gửi đánh giá").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cảm ơn ông/bà đã đánh giá")
    return number


async def test_a_citizen_without_zalo_closes_the_loop_from_the_sms_link(
    browser: BrowserThread, citizen_settings: Settings, tmp_path: Path
) -> None:
    async with running_rig(citizen_settings) as rig:
        base = rig.worker_env["PUBLIC_BASE_URL"]
        rig.worker_env["CITIZEN_BASE_URL"] = base
        await finished_dossier(rig)
        before = len(sms_to_owner(rig))
        assert await rig.run_job("sweep_deadlines") == 0  # asks the result check
        await rig.work()
        (check,) = sms_to_owner(rig)[before:]
        assert CODE in check and "nhan duoc chua" in check.lower().replace("đ", "d"), check
        link = LINK_RE.search(check)
        assert link is not None and link.group(0).startswith(base), check

        number = await browser.run(on_phone(link.group(0), answers_and_rates, tmp_path))

        engine = create_engine(citizen_settings.database_url)
        try:
            token = await staff_store.add_user(
                engine, "hoa", "Phạm Thị Hoa", "hotline", datetime.now(UTC)
            )
            async with engine.connect() as conn:
                (rating,) = (await conn.execute(sa.select(ratings))).all()
                (stored,) = (await conn.execute(sa.select(reports))).all()
        finally:
            await engine.dispose()
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(f"{base}/v1/reports", headers=headers) as response:
                assert response.status == 200
                listed = (await response.json())["reports"]
        (report,) = [r for r in listed if r["service_request_id"] == number]
        assert (report["kind"], report["source"], report["proof"]) == (
            "false_closure",
            "result_check",
            "sms_link",
        )
        assert report["dossier_code"] == CODE and stored.phone_e164 == "+" + PHONE_NATIONAL
        assert (rating.progress_score, rating.quality_score) == (2, 4)
        assert (rating.channel, rating.rater) == ("web", "phone")
        # The citizen gets the report's number by SMS too.
        await rig.work()
        assert any(number in text for text in sms_to_owner(rig))


def looks_up_and_proves(rig: Rig) -> Callable[[Page], str]:
    """Lookup by code, the last four digits, then a one-time code read from the fake eSMS
    (a long-running worker sends it while the page waits)."""

    def script(page: Page) -> str:
        page.get_by_label("Mã hồ sơ").fill(CODE)
        page.get_by_role("button", name="Tra cứu").click()
        expect(page.get_by_text("Đã có kết quả")).to_be_visible()
        expect(page.get_by_text(PROCEDURE)).to_have_count(0)
        page.get_by_label("Bốn số cuối của số điện thoại đăng ký trên hồ sơ").fill("5678")
        page.get_by_role("button", name="Xem chi tiết").click()
        expect(page.get_by_text(PROCEDURE)).to_be_visible()
        expect(page.get_by_role("button", name="Gửi đánh giá")).to_have_count(0)
        before = len(sms_to_owner(rig))
        page.get_by_role("button", name="Gửi mã xác thực").click()
        expect(page.get_by_role("status")).to_contain_text("Mã xác thực gồm 6 chữ số")
        deadline = time.monotonic() + WAIT_MS / 1000
        while len(sms_to_owner(rig)) == before:
            assert time.monotonic() < deadline, "no one-time code reached the fake eSMS"
            time.sleep(0.1)
        (sms,) = sms_to_owner(rig)[before:]
        code = re.search(r"\b(\d{6})\b", sms)
        assert code is not None, sms
        page.get_by_label("Mã xác thực (6 chữ số)").fill(code.group(1))
        page.get_by_role("button", name="Xác thực", exact=True).click()
        expect(page.get_by_role("button", name="Gửi đánh giá")).to_be_visible()
        expect(page.get_by_role("button", name="Gửi phản ánh")).to_be_visible()
        return page.url

    return script


async def test_lookup_last_four_then_a_one_time_code_from_the_sms(
    browser: BrowserThread, citizen_settings: Settings, tmp_path: Path
) -> None:
    async with running_rig(citizen_settings) as rig:
        base = rig.worker_env["PUBLIC_BASE_URL"]
        await finished_dossier(rig)
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "worker",
            "--no-cron",
            env=rig.worker_env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            script = looks_up_and_proves(rig)
            url = await browser.run(on_phone(f"{base}/tra-cuu", script, tmp_path))
        finally:
            worker.terminate()
            await asyncio.wait_for(worker.wait(), 15)
        assert url.endswith(f"/tra-cuu?ma={CODE}")


AXE = Path(__file__).parent / "vendor" / "axe-core-4.11.0" / "axe.min.js"
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def audits(base: str, link: str) -> Callable[[Browser], dict[str, list[object]]]:
    """axe on each page a citizen sees, at 320 px: form, status, act level, a refusal."""

    def run(browser: Browser) -> dict[str, list[object]]:
        # The page's CSP allows no script: axe is let in for the check only.
        context = browser.new_context(locale="vi-VN", viewport=NARROW, bypass_csp=True)
        page = context.new_page()
        found: dict[str, list[object]] = {}
        try:
            for name, url in (
                ("form", f"{base}/tra-cuu"),
                ("status", f"{base}/tra-cuu?ma={CODE}"),
                ("act level", link),
                ("expired link", f"{base}/l/AAAAAAAAAAAAAAAA"),
            ):
                page.goto(url)
                page.add_script_tag(path=str(AXE))
                result = page.evaluate(
                    "rules => axe.run(document, {runOnly: {type: 'tag', values: rules}})", RULES
                )
                found[name] = [
                    (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                    for v in result["violations"]
                ]
            return found
        finally:
            context.close()

    return run


async def test_the_citizen_pages_pass_wcag_checks(
    browser: BrowserThread, citizen_settings: Settings
) -> None:
    async with running_rig(citizen_settings) as rig:
        base = rig.worker_env["PUBLIC_BASE_URL"]
        rig.worker_env["CITIZEN_BASE_URL"] = base
        await finished_dossier(rig)
        await rig.run_job("sweep_deadlines")
        await rig.work()
        link = LINK_RE.search(sms_to_owner(rig)[-1])
        assert link is not None
        found = await browser.run(audits(base, link.group(0)))
    assert found == {"form": [], "status": [], "act level": [], "expired link": []}, found
