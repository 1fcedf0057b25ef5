"""Screenshots of the staff console's main pages, for ``docs/screenshots/`` (``make screenshots``).

A gateway on loopback with its own SQLite file and Redis key prefix is filled the way a
province's would be: six months of simulated one-stop-shop traffic posted through the
signed events API (the demo's simulator: Đồng Nai's departments and communes, their
procedures and officers), audited into the ledger and the monthly figures, citizens'
reports from Zalo and by phone, two conversations, notices delivered, failed and lost, and
the "did you receive the result?" SMS with its signed link. Then Debian's Chromium logs in
as a hotline officer, an auditor and an admin and photographs each page at 1366×768, and
the queue and a report at a phone's 390×844; last, at the same size, a citizen on
``/tra-cuu``: the public status, the details after the last four digits, the act level
the SMS link opens, and the confirmation of "chưa nhận".

    python -m tests.browser.screenshots [OUT_DIR]

Nothing here runs in ``make test``; the pictures are committed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web
from playwright.sync_api import Browser, Page, ViewportSize

from gateway.audit.ledger import audit_dossiers
from gateway.chat import followups
from gateway.domain.calendar import DEFAULT_OVERRIDES_FILE, WorkingCalendar, load_overrides
from gateway.http.app import create_app
from gateway.http.citizen.lookup import lookup_url
from gateway.http.signing import signed_headers_v2
from gateway.local.simulator import HEAD, OFFICERS, TZ, OneStopShop
from gateway.settings import Settings
from gateway.storage import migrate
from gateway.storage import reports as report_store
from gateway.storage.audit import OfficerRecord, import_officers
from gateway.storage.db import create_engine
from gateway.storage.staff import add_user
from gateway.storage.tables import dossier_audit, dossiers, notices, reports, violations
from gateway.trust.links import Links
from tests.browser.conftest import CHROMIUM, LAPTOP, BrowserThread
from tests.services import redis_url
from tests.staff_helpers import seed_handoff

PASSWORD = "mật khẩu ảnh chụp 1022"
# Dossiers promised too early, so that they end late, by months ago (this month first).
LATE_PER_MONTH = (0, 1, 3, 2, 4, 1, 2)
STAFF = (
    ("hoa", "Nguyễn Thị Hoa", "hotline"),
    ("tam", "Võ Minh Tâm", "auditor"),
    ("bao", "Trần Quốc Bảo", "admin"),
)
PHONE: ViewportSize = {"width": 390, "height": 844}


@dataclass
class Shot:
    """One picture: who looks, where, at what size; ``then`` acts on the page first."""

    name: str
    user: str | None
    path: str
    viewport: ViewportSize = field(default_factory=lambda: LAPTOP)
    then: Callable[[Page], None] | None = None
    full_page: bool = False


# --- the province's data --------------------------------------------------------------


async def post_traffic(base: str, source: str, secret: str, now: datetime) -> list[str]:
    """Six months of dossiers through the signed events API; their codes."""
    calendar = WorkingCalendar(load_overrides(DEFAULT_OVERRIDES_FILE))
    codes: list[str] = []
    sequence = 0
    async with aiohttp.ClientSession(base) as session:
        for months_ago in range(6, -1, -1):
            start = (now - timedelta(days=30 * months_ago)).replace(
                day=3, hour=8, minute=0, second=0, microsecond=0
            )
            # Earlier months run on the shop's clock; this month ends just before now.
            shop = OneStopShop(
                seed=months_ago + 11,
                start=start.astimezone(TZ),
                first_sequence=sequence,
                now=now.astimezone(TZ) if months_ago == 0 else None,
                calendar=calendar,
            )
            stories = [s.dossier for s in shop.scripted()] if months_ago == 0 else []
            for number in range(22):
                dossier = shop.dossier()
                if number < LATE_PER_MONTH[months_ago]:  # promised for the same afternoon
                    received = datetime.fromisoformat(dossier["received_at"])
                    dossier["due_at"] = (received + timedelta(hours=2)).isoformat()
                stories.append(dossier)
                shop.advance(minutes=9 * 60)
            for dossier in stories:
                codes.append(dossier["code"])
                for posting in shop.story(dossier):
                    raw = json.dumps(posting.body, ensure_ascii=False).encode()
                    headers = signed_headers_v2(
                        source, secret, "POST", "/v1/events", raw, time.time()
                    )
                    headers["Content-Type"] = "application/json"
                    async with session.post("/v1/events", data=raw, headers=headers) as answer:
                        if answer.status not in (200, 202):
                            raise RuntimeError(f"event refused: {await answer.text()}")
            sequence = shop.sequence
    return codes


async def fill(settings: Settings, base: str, now: datetime) -> None:
    source, secret = next(iter(settings.event_sources.items()))
    codes = await post_traffic(base, source, secret, now)
    engine = create_engine(settings.database_url, writer=True)
    try:
        for username, name, role in STAFF:
            await add_user(engine, username, name, role, now, password=PASSWORD)
        async with engine.begin() as conn:
            rows = (await conn.execute(sa.select(dossiers.c.agency_code).distinct())).all()
            records = [OfficerRecord(HEAD["id"], HEAD["name"], None, "Lãnh đạo", None)]
            agency = rows[0].agency_code if rows else None
            records += [
                OfficerRecord(officer_id, name, agency, "Bộ phận Một cửa", HEAD["id"])
                for officer_id, name in OFFICERS
            ]
            await import_officers(conn, records, now)
        for start in range(0, len(codes), 200):
            await audit_dossiers(engine, codes[start : start + 200], settings, now)
        await citizens_speak(engine, now)
        await notices_that_went_wrong(engine, now)
        await results_asked(engine, settings, now)
    finally:
        await engine.dispose()


async def citizens_speak(engine: Any, now: datetime) -> None:
    """Reports from Zalo and by phone, and two conversations with the hotline."""
    calendar = WorkingCalendar(load_overrides(DEFAULT_OVERRIDES_FILE))
    async with engine.connect() as conn:
        finished = (
            await conn.execute(
                sa.select(dossiers.c.code, dossiers.c.phone_e164)
                .where(dossiers.c.finished_by_id.is_not(None), dossiers.c.phone_e164.is_not(None))
                .order_by(dossiers.c.finished_at.desc())
                .limit(4)
            )
        ).all()
    words = (
        "Tin nhắn báo hồ sơ đã có kết quả nhưng tôi lên quầy thì cán bộ nói chưa ký.",
        "Đã 3 ngày sau tin nhắn mà tôi vẫn chưa nhận được kết quả, gọi tổng đài không ai nghe.",
        "Hồ sơ báo hoàn thành nhưng thiếu bản chính giấy chứng nhận.",
    )
    when = now - timedelta(hours=7)
    for (code, phone), text in zip(finished, words, strict=False):
        await report_store.create_report(
            engine,
            kind="false_closure",
            source="zalo",
            dossier_code=code,
            description=text,
            zalo_user_id=None,
            phone_e164=phone,
            calendar=calendar,
            answer_working_days=5,
            now=when,
        )
        when += timedelta(hours=2)
    await report_store.create_report(
        engine,
        kind="problem",
        source="phone",
        dossier_code="000.00.15.H19-261120-0099",
        description="Người dân nộp hồ sơ lý lịch tư pháp tại quầy nhưng không nhận được mã hồ sơ.",
        zalo_user_id=None,
        phone_e164="+84901234567",
        calendar=calendar,
        answer_working_days=5,
        now=now - timedelta(hours=5),
        actor="staff:1",
        agency_code="000.00.15.H19",
        agency_name="Sở Tư pháp",
    )
    await seed_handoff(
        engine,
        "zl-1001",
        messages=(
            "Chào cán bộ, cho tôi hỏi hồ sơ cấp phép xây dựng của tôi bao giờ có kết quả?",
            "Tôi đã nộp từ đầu tháng, số điện thoại của tôi là 0912 345 678.",
        ),
        at=now - timedelta(minutes=25),
    )
    await seed_handoff(
        engine,
        "zl-1002",
        messages=("Tôi muốn hỏi lệ phí đăng ký doanh nghiệp nộp ở đâu ạ?",),
        at=now - timedelta(hours=2),
        phone="+84987654321",
    )


async def notices_that_went_wrong(engine: Any, now: datetime) -> None:
    """Most notices delivered; two failed with the vendor's reason, one outcome lost."""
    async with engine.begin() as conn:
        ids = [
            r.id
            for r in await conn.execute(
                sa.select(notices.c.id)
                .where(notices.c.phone_e164.is_not(None))
                .order_by(notices.c.created_at)
            )
        ]
        await conn.execute(
            notices.update()
            .where(notices.c.id.in_(ids[:-3]))
            .values(
                state="delivered",
                channel="sms",
                provider="esms",
                attempts=1,
                sent_at=notices.c.created_at,
                delivered_at=notices.c.created_at,
            )
        )
        reasons = (
            ("failed", "esms: 104 thuê bao không liên lạc được (đã thử 3 lần)"),
            ("failed", "speedsms: 403 số điện thoại nằm trong danh sách từ chối quảng cáo"),
            ("unknown", "esms: hết thời gian chờ sau khi gửi; nhà mạng chưa trả kết quả"),
        )
        for notice_id, (state, error) in zip(ids[-3:], reasons, strict=False):
            await conn.execute(
                notices.update()
                .where(notices.c.id == notice_id)
                .values(state=state, channel="sms", provider="esms", attempts=3, last_error=error)
            )


async def results_asked(engine: Any, settings: Settings, now: datetime) -> None:
    """The result check of the dossiers finished and not yet delivered, asked an hour ago
    by SMS with its signed link (``notices.link_token``), and delivered; their earlier
    SMS dated as the events they told of, for the citizen page's list of notices sent."""
    asked_at = now - timedelta(hours=1)
    calendar = WorkingCalendar(load_overrides(DEFAULT_OVERRIDES_FILE))
    done = await followups.run(engine, asked_at, calendar, 0, Links.for_settings(settings))
    asked = sa.select(notices.c.dossier_code).where(notices.c.id.in_(done.asked))
    async with engine.begin() as conn:
        await conn.execute(
            notices.update()
            .where(notices.c.id.in_(done.asked))
            .values(
                state="delivered",
                channel="sms",
                provider="esms",
                attempts=1,
                sent_at=asked_at,
                delivered_at=asked_at,
            )
        )
        for kind, event in (("receipt", "received_at"), ("invitation", "finished_at")):
            at = (
                sa.select(dossiers.c[event])
                .where(dossiers.c.code == notices.c.dossier_code)
                .scalar_subquery()
            )
            await conn.execute(
                notices.update()
                .where(notices.c.kind == kind, notices.c.dossier_code.in_(asked))
                .values(sent_at=at, delivered_at=at)
            )


# --- the pictures ---------------------------------------------------------------------


def take_and_answer(page: Page) -> None:
    """The officer takes the report (unless already theirs), then opens the form that
    resolves it."""
    take = page.get_by_role("button", name="Nhận xử lý phản ánh này")
    if take.count():
        take.click()
    page.locator('[data-testid="move-resolved"] summary').click()


def last_four(phone: str) -> Callable[[Page], None]:
    """The citizen proves the dossier is theirs with the last four digits of its phone."""

    def then(page: Page) -> None:
        page.get_by_label("Bốn số cuối của số điện thoại đăng ký trên hồ sơ").fill(phone[-4:])
        page.get_by_role("button", name="Xem chi tiết").click()
        page.get_by_role("heading", name="Thông báo đã gửi").wait_for()

    return then


def not_received(page: Page) -> None:
    """The citizen answers "chưa nhận": a false-closure report, its number on screen."""
    page.get_by_role("button", name="Chưa nhận").click()
    page.get_by_role("heading", name="Đã tiếp nhận phản ánh").wait_for()


def citizen_shots(code: str, phone: str, token: str) -> list[Shot]:
    """One citizen's visit on a phone, in order: the session keeps each proof."""
    page = lookup_url(code)
    return [
        Shot("21-citizen-lookup", None, "/tra-cuu", viewport=PHONE),
        Shot("22-citizen-status", None, page, viewport=PHONE, full_page=True),
        Shot(
            "23-citizen-details", None, page, viewport=PHONE, then=last_four(phone), full_page=True
        ),
        Shot("24-citizen-act", None, f"/l/{token}", viewport=PHONE, full_page=True),
        Shot("25-citizen-report", None, page, viewport=PHONE, then=not_received, full_page=True),
    ]


def shots(
    report_id: int, dossier: str, notice: str, violation: int, officer: str, agency: str
) -> list[Shot]:
    return [
        Shot("01-login", None, "/console/login"),
        Shot("02-queue", "hoa", "/console/reports", full_page=True),
        Shot(
            "03-report",
            "hoa",
            f"/console/reports/{report_id}",
            then=take_and_answer,
            full_page=True,
        ),
        Shot("04-phone-report", "hoa", "/console/reports/new"),
        Shot("05-conversations", "hoa", "/console/conversations"),
        Shot("06-conversation", "hoa", "/console/conversations/1", full_page=True),
        Shot("07-notices", "hoa", "/console/notices"),
        Shot("08-notice", "hoa", f"/console/notices/{notice}", full_page=True),
        Shot("09-dossier", "hoa", f"/console/dossiers/{dossier}", full_page=True),
        Shot("10-violations", "tam", "/console/audit/violations", full_page=True),
        Shot("11-violation", "tam", f"/console/audit/violations/{violation}", full_page=True),
        Shot("12-agencies", "tam", "/console/audit/agencies", full_page=True),
        Shot("13-agency", "tam", f"/console/audit/agencies/{agency}", full_page=True),
        Shot("14-officer", "tam", f"/console/audit/officers/{officer}", full_page=True),
        Shot("15-consultations", "tam", "/console/audit/consultations?state=overdue"),
        Shot("16-warnings", "tam", "/console/audit/warnings", full_page=True),
        Shot("17-audit-log", "bao", "/console/admin/audit-log", full_page=True),
        Shot("18-totp", "bao", "/console/account/totp"),
        Shot("19-phone-queue", "hoa", "/console/reports", viewport=PHONE, full_page=True),
        Shot(
            "20-phone-report",
            "hoa",
            f"/console/reports/{report_id}",
            viewport=PHONE,
            full_page=True,
        ),
    ]


def photograph(base: str, out: Path, plan: list[Shot]) -> Callable[[Browser], list[str]]:
    """Take the shots in order; each user logs in once per screen size, as staff would."""

    def run(browser: Browser) -> list[str]:
        taken = []
        pages: dict[tuple[str | None, int], Page] = {}
        try:
            for shot in plan:
                key = (shot.user, shot.viewport["width"])
                page = pages.get(key)
                if page is None:
                    context = browser.new_context(locale="vi-VN", viewport=shot.viewport)
                    page = pages[key] = context.new_page()
                    if shot.user is not None:
                        log_in(page, base, shot.user)
                response = page.goto(f"{base}{shot.path}")
                if response is None or response.status != 200:
                    raise RuntimeError(f"{shot.path}: HTTP {response.status if response else '?'}")
                if shot.then is not None:
                    shot.then(page)
                target = out / f"{shot.name}.png"
                page.screenshot(path=str(target), full_page=shot.full_page)
                taken.append(target.name)
        finally:
            for page in pages.values():
                page.context.close()
        return taken

    return run


async def first(engine: Any, query: sa.Select[Any]) -> Any:
    """The first row of ``query``."""
    async with engine.connect() as conn:
        return (await conn.execute(query.limit(1))).one()


async def plan_for(database_url: str) -> list[Shot]:
    """The shots, with the report, dossier, notice, entry, officer and agency to show."""
    engine = create_engine(database_url)
    try:
        report, dossier = await first(
            engine, sa.select(reports.c.id, reports.c.dossier_code).order_by(reports.c.id)
        )
        (notice,) = await first(engine, sa.select(notices.c.id).where(notices.c.state == "failed"))
        violation, officer = await first(
            engine,
            sa.select(violations.c.id, violations.c.officer_id)
            .where(violations.c.officer_id.is_not(None))
            .order_by(violations.c.id.desc()),
        )
        # The agency with the most late dossiers, for a chart worth looking at.
        (agency,) = await first(
            engine,
            sa.select(dossier_audit.c.agency_code)
            .where(dossier_audit.c.verdict.like("late%"))
            .group_by(dossier_audit.c.agency_code)
            .order_by(sa.func.count().desc()),
        )
    finally:
        await engine.dispose()
    return shots(report, dossier, notice, violation, officer, agency)


async def citizen_plan_for(database_url: str) -> list[Shot]:
    """The citizen's shots, about the latest dossier asked "did you receive the result?"
    by SMS (with its link: ``CITIZEN_SECRET`` set) with a plain story: received, finished,
    asked; nobody has reported it yet."""
    engine = create_engine(database_url)
    reported = sa.select(reports.c.dossier_code).where(reports.c.dossier_code.is_not(None))
    eventful = sa.select(notices.c.dossier_code).where(
        notices.c.kind.not_in(("receipt", "invitation", "result_check"))
    )
    try:
        code, phone, token = await first(
            engine,
            sa.select(dossiers.c.code, dossiers.c.phone_e164, notices.c.link_token)
            .join_from(notices, dossiers, dossiers.c.code == notices.c.dossier_code)
            .where(
                notices.c.kind == "result_check",
                notices.c.link_token.is_not(None),
                dossiers.c.code.not_in(reported),
                dossiers.c.code.not_in(eventful),
            )
            .order_by(dossiers.c.finished_at.desc()),
        )
    finally:
        await engine.dispose()
    return citizen_shots(code, phone, token)


def log_in(page: Page, base: str, username: str) -> None:
    """The login form, filled as staff would; waits for the landing page."""
    page.goto(f"{base}/console/login")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(f"{base}/console/reports")


async def main(out: Path) -> int:
    url, private = redis_url()
    with tempfile.TemporaryDirectory() as folder:
        database = f"sqlite:///{folder}/shots.db"
        await asyncio.to_thread(migrate.upgrade, database)
        settings = Settings.from_mapping(
            {
                "DATABASE_URL": database,
                "REDIS_URL": url,
                "REDIS_KEY_PREFIX": f"tthc-shots-{secrets.token_hex(3)}:",
                "EVENT_SOURCES": f"motcua:{secrets.token_hex(16)}",
                "CITIZEN_SECRET": secrets.token_hex(24),
            }
        )
        runner = web.AppRunner(create_app(settings))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        browser = BrowserThread(CHROMIUM)
        try:
            now = datetime.now(UTC)
            await fill(settings, base, now)
            plan = await plan_for(database) + await citizen_plan_for(database)
            browser.start()
            taken = await browser.run(photograph(base, out, plan))
            print("\n".join(f"{out / name}" for name in taken))
        finally:
            browser.close()
            await runner.cleanup()
            if private is not None:
                private.stop()
    return 0


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
    target.mkdir(parents=True, exist_ok=True)
    sys.exit(asyncio.run(main(target)))
