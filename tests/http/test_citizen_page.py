"""The citizen page /tra-cuu and the signed links in SMS, over loopback HTTP.

Before proof the page shows the state and the due date only; the last four digits of
the dossier's phone show the details; a one-time code or the SMS link allow answering,
reporting and rating. Every refusal is a Vietnamese page: unknown code, wrong digits,
locked address, a dossier guessed too often (code needed), too many codes asked from one
address, too many requests, a form without its CSRF token, an expired or unknown link,
an action without an act-level proof. Nothing personal is shown before proof, and no
log line carries the phone, the digits typed or a code.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from gateway.chat import followups
from gateway.domain.routing import plan_channels
from gateway.http.app import create_app
from gateway.http.keys import CALENDAR, DATABASE, REDIS
from gateway.settings import DEFAULT_TEMPLATES_DIR, Settings
from gateway.storage import outbox
from gateway.storage.outbox import GATEWAY_SOURCE, NewNotice
from gateway.storage.tables import (
    dossiers,
    notices,
    ratings,
    reports,
    result_checks,
    zalo_users,
)
from gateway.texts.sms import render_sms
from gateway.texts.templates import Texts
from gateway.trust.links import Links, link_token
from tests.helpers import CODE, Gateway, event

SECRET = "citizen-secret-for-tests-0123456789abcdef"
# About the length of a real CITIZEN_BASE_URL; http, so the test client sends the cookie.
BASE = "http://dichvucong.dongnai.gov.vn"
PHONE = "+84912345678"
NAME = "Nguyễn Văn An"
PROCEDURE = "Cấp giấy phép xây dựng"
AGENCY = "Sở Xây dựng"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


class Clock:
    """The application's clock, movable by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def citizen_settings(settings: Settings, **trust: Any) -> Settings:
    values: dict[str, Any] = {"secret": SECRET, "base_url": BASE, **trust}
    return dataclasses.replace(settings, trust=dataclasses.replace(settings.trust, **values))


async def start(
    settings: Settings, aiohttp_client: Any, clock: Clock | None = None, **chat: Any
) -> Gateway:
    if chat:
        settings = dataclasses.replace(settings, chat=dataclasses.replace(settings.chat, **chat))
    app = create_app(settings, clock=clock or Clock())
    client: TestClient = await aiohttp_client(app)
    return Gateway(client, settings)


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def ingest(gw: Gateway, *types: str, code: str = CODE) -> None:
    """The dossier received now, due in ten days, then the events ``types``."""
    now = datetime.now(UTC).replace(microsecond=0)
    dossier = {
        "received_at": iso(now - timedelta(hours=2)),
        "due_at": iso(now + timedelta(days=10)),
    }
    for i, type_ in enumerate(("dossier.received", *types)):
        at = iso(now - timedelta(hours=2) + timedelta(minutes=i))
        status, body, _ = await gw.post(event(type_, at=at, code=code, **dossier))
        assert status in (200, 201, 202), body


async def ask_result_check(gw: Gateway) -> str:
    """Run the follow-ups a week later: the result check notice, with its link; its token."""
    app = gw.client.app
    later = datetime.now(UTC) + timedelta(days=7)
    asked = await followups.run(
        app[DATABASE].writer, later, app[CALENDAR], 0, Links.for_settings(gw.settings)
    )
    assert len(asked.asked) == 1
    async with app[DATABASE].writer.connect() as conn:
        row = (await conn.execute(sa.select(notices).where(notices.c.id == asked.asked[0]))).one()
    assert row.kind == "result_check" and row.link_token == link_token(SECRET, row.id)
    assert row.params["link"] == f"{BASE}/l/{row.link_token}"
    return str(row.link_token)


async def page(gw: Gateway, path: str, *, status: int = 200) -> str:
    response = await gw.client.get(path, allow_redirects=False)
    text = await response.text()
    assert response.status == status, text
    return text


async def post(
    gw: Gateway, path: str, form: dict[str, str], *, csrf: bool = True, status: int = 200
) -> tuple[str, Any]:
    if csrf:
        form = {"csrf_token": await token(gw), **form}
    response = await gw.client.post(path, data=form, allow_redirects=False)
    text = await response.text()
    assert response.status == status, text
    return text, response


async def token(gw: Gateway) -> str:
    match = CSRF_RE.search(await page(gw, f"/tra-cuu?ma={CODE}"))
    assert match is not None
    return match.group(1)


async def prove_by_code(gw: Gateway) -> None:
    """The act level: a one-time code sent, read from the outbox, typed."""
    await post(gw, "/tra-cuu", {"ma": CODE, "gui_ma": "1"})
    (sent,) = [n for n in await rows(gw, notices) if n.kind == "otp"]
    await post(gw, "/tra-cuu", {"ma": CODE, "ma_otp": sent.params["otp_code"]}, status=303)


async def rows(gw: Gateway, table: sa.Table) -> list[Any]:
    async with gw.client.app[DATABASE].writer.connect() as conn:
        return list((await conn.execute(sa.select(table))).all())


# -- before proof ----------------------------------------------------------------------------


async def test_before_proof_only_the_state_and_due_date(
    settings: Settings, aiohttp_client: Any
) -> None:
    gw = await start(citizen_settings(settings), aiohttp_client)
    await ingest(gw, "dossier.processing")
    response = await gw.client.get(f"/tra-cuu?ma={CODE}")
    text = await response.text()
    assert response.status == 200
    assert "Đang giải quyết" in text and "Hẹn trả kết quả" in text
    assert 'name="so_cuoi"' in text and 'name="ma_otp"' in text and "Gửi mã xác thực" in text
    for secret in (NAME, PROCEDURE, AGENCY, "5678", "678", "Thông báo đã gửi"):
        assert secret not in text, secret
    assert 'lang="vi"' in text and "<script" not in text
    headers = response.headers
    assert "script" not in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    cookie = response.cookies["tthc_citizen"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]


async def test_the_cookie_is_secure_when_the_page_is_served_over_https(
    settings: Settings, aiohttp_client: Any
) -> None:
    https = citizen_settings(settings, base_url="https://dichvucong.dongnai.gov.vn")
    gw = await start(https, aiohttp_client)
    await ingest(gw)
    response = await gw.client.get(f"/tra-cuu?ma={CODE}")
    assert response.cookies["tthc_citizen"]["secure"]


async def test_an_unknown_code_is_not_found_and_the_bare_page_is_a_form(
    settings: Settings, aiohttp_client: Any
) -> None:
    gw = await start(citizen_settings(settings), aiohttp_client)
    text = await page(gw, "/tra-cuu?ma=000.00.12.H19-240401-9999", status=404)
    assert "Không tìm thấy" in text and 'name="so_cuoi"' not in text
    text = await page(gw, "/tra-cuu")
    assert 'name="ma"' in text and "Không tìm thấy" not in text


# -- proofs ---------------------------------------------------------------------------------


async def test_last_four_digits_show_the_details_but_do_not_allow_acting(
    settings: Settings, aiohttp_client: Any
) -> None:
    gw = await start(citizen_settings(settings), aiohttp_client)
    await ingest(gw, "dossier.finished")
    _, response = await post(gw, "/tra-cuu", {"ma": CODE, "so_cuoi": "5678"}, status=303)
    assert response.headers["Location"] == f"/tra-cuu?ma={CODE}"
    text = await page(gw, f"/tra-cuu?ma={CODE}")
    assert PROCEDURE in text and AGENCY in text and "Ngày tiếp nhận" in text
    assert NAME not in text and "5678" not in text
    assert "/tra-cuu/ket-qua" not in text and "/tra-cuu/phan-anh" not in text
    assert 'name="ma_otp"' in text  # a one-time code would give more
    text, _ = await post(gw, "/tra-cuu/phan-anh", {"ma": CODE, "mo_ta": "x"}, status=403)
    assert "Cần xác thực" in text
    text, _ = await post(
        gw, "/tra-cuu/danh-gia", {"ma": CODE, "tien_do": "5", "chat_luong": "5"}, status=403
    )
    assert await rows(gw, reports) == [] and await rows(gw, ratings) == []


async def test_wrong_digits_count_and_lock_the_address(
    settings: Settings, aiohttp_client: Any
) -> None:
    gw = await start(citizen_settings(settings), aiohttp_client, lookup_max_failures=3)
    await ingest(gw)
    for guess in ("1111", "2222"):
        text, _ = await post(gw, "/tra-cuu", {"ma": CODE, "so_cuoi": guess}, status=403)
        assert "Bốn số cuối không đúng" in text and PROCEDURE not in text
    text, _ = await post(gw, "/tra-cuu", {"ma": CODE, "so_cuoi": "3333"}, status=429)
    assert "Tạm khóa xác thực" in text
    text, _ = await post(gw, "/tra-cuu", {"ma": CODE, "so_cuoi": "5678"}, status=429)
    assert "Tạm khóa xác thực" in text and PROCEDURE not in text


async def test_a_dossier_guessed_from_many_addresses_then_needs_a_code(
    settings: Settings, aiohttp_client: Any
) -> None:
    s = citizen_settings(settings, trust_forwarded_for=True, dossier_max_failures=4)
    gw = await start(s, aiohttp_client)
    await ingest(gw)
    for n in range(4):  # four addresses, one wrong guess each: none of them is locked
        tok = CSRF_RE.search(await page(gw, f"/tra-cuu?ma={CODE}"))
        assert tok is not None
        response = await gw.client.post(
            "/tra-cuu",
            data={"csrf_token": tok.group(1), "ma": CODE, "so_cuoi": f"{n}{n}{n}{n}"},
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
            allow_redirects=False,
        )
        assert response.status == 403
    text, _ = await post(gw, "/tra-cuu", {"ma": CODE, "so_cuoi": "5678"}, status=403)
    assert "xin nhận mã xác thực" in text and PROCEDURE not in text


async def test_a_one_time_code_gives_the_act_level(
    settings: Settings, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    gw = await start(citizen_settings(settings), aiohttp_client)
    await ingest(gw, "dossier.finished")
    text, _ = await post(gw, "/tra-cuu", {"ma": CODE, "gui_ma": "1"})
    assert "Mã xác thực gồm 6 chữ số đã được gửi" in text
    (sent,) = [n for n in await rows(gw, notices) if n.kind == "otp"]
    assert sent.phone_e164 == PHONE
    code = sent.params["otp_code"]
    wrong = "000000" if code != "000000" else "111111"
    text, _ = await post(gw, "/tra-cuu", {"ma": CODE, "ma_otp": wrong}, status=403)
    assert "Mã xác thực không đúng" in text and "Còn 2 lần thử" in text
    _, response = await post(gw, "/tra-cuu", {"ma": CODE, "ma_otp": code}, status=303)
    text = await page(gw, response.headers["Location"])
    assert PROCEDURE in text and "/tra-cuu/phan-anh" in text and "/tra-cuu/danh-gia" in text
    assert 'name="so_cuoi"' not in text
    logged = "\n".join(_said(r) for r in caplog.records)
    assert "citizen one-time code checked" in logged and CODE in logged
    for secret in (code, "912345678", "5678"):
        assert secret not in logged, secret


# The attributes every log record has (timings among them, where any digits may turn up).
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)


def _said(record: logging.LogRecord) -> str:
    """What a log line says: its message and its extra fields."""
    extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
    return f"{record.getMessage()} {extras}"


async def test_too_many_codes_are_refused_with_a_page(
    settings: Settings, aiohttp_client: Any
) -> None:
    gw = await start(citizen_settings(settings, otp_per_phone_hour=1), aiohttp_client)
    await ingest(gw)
    await post(gw, "/tra-cuu", {"ma": CODE, "gui_ma": "1"})
    text, _ = await post(gw, "/tra-cuu", {"ma": CODE, "gui_ma": "1"}, status=429)
    assert "Đã gửi quá nhiều mã xác thực" in text


# -- anti-enumeration, rate limit, CSRF ------------------------------------------------------


async def test_distinct_codes_per_address_are_capped(
    settings: Settings, aiohttp_client: Any
) -> None:
    gw = await start(citizen_settings(settings), aiohttp_client, lookup_max_codes=3)
    await ingest(gw)
    for n in range(1, 4):
        await page(gw, f"/tra-cuu?ma=000.00.12.H19-240401-000{n + 1}", status=404)
    text = await page(gw, f"/tra-cuu?ma={CODE}", status=429)
    assert "quá nhiều mã hồ sơ" in text and "Đang" not in text
    # For the rest of the window this address looks up nothing more.
    await page(gw, "/tra-cuu?ma=000.00.12.H19-240401-0002", status=429)


async def test_requests_per_address_per_minute_are_capped(
    settings: Settings, aiohttp_client: Any
) -> None:
    clock = Clock()
    clock.offset = 60 - time.time() % 60 + 1  # the start of a minute: all in the same one
    gw = await start(citizen_settings(settings, web_requests_per_minute=4), aiohttp_client, clock)
    for _ in range(4):
        await page(gw, "/tra-cuu")
    response = await gw.client.get("/tra-cuu")
    assert response.status == 429 and response.headers["Retry-After"] == "60"
    assert "Quá nhiều yêu cầu" in await response.text()
    clock.offset += 60
    await page(gw, "/tra-cuu")


async def test_a_form_without_its_csrf_token_does_nothing(
    settings: Settings, aiohttp_client: Any
) -> None:
    gw = await start(citizen_settings(settings), aiohttp_client)
    await ingest(gw)
    text, _ = await post(gw, "/tra-cuu", {"ma": CODE, "so_cuoi": "5678"}, csrf=False, status=403)
    assert "Biểu mẫu đã hết hạn" in text
    await token(gw)  # now there is a session, but the token is still wrong
    form = {"csrf_token": "x" * 43, "ma": CODE, "so_cuoi": "5678"}
    text, _ = await post(gw, "/tra-cuu", form, csrf=False, status=403)
    assert PROCEDURE not in await page(gw, f"/tra-cuu?ma={CODE}")


# -- the SMS link: answer, report, rate ------------------------------------------------------


async def test_the_sms_link_lets_a_citizen_answer_report_and_rate(
    settings: Settings, aiohttp_client: Any
) -> None:
    gw = await start(citizen_settings(settings), aiohttp_client)
    await ingest(gw, "dossier.finished")
    link = await ask_result_check(gw)
    response = await gw.client.get(f"/l/{link}", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == f"/tra-cuu?ma={CODE}"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    text = await page(gw, f"/tra-cuu?ma={CODE}")
    assert "Ông/bà đã nhận được kết quả chưa?" in text and PROCEDURE in text

    text, _ = await post(gw, "/tra-cuu/ket-qua", {"ma": CODE, "tra_loi": "chua_nhan"})
    (report,) = await rows(gw, reports)
    assert report.number in text and "Dự kiến trả lời trước ngày" in text
    assert report.expected_at.astimezone(ZONE).strftime("%d/%m/%Y") in text
    assert (report.kind, report.source, report.proof) == (
        "false_closure",
        "result_check",
        "sms_link",
    )
    assert report.phone_e164 == PHONE and report.zalo_user_id is None
    (check,) = await rows(gw, result_checks)
    assert (check.state, check.answer_channel) == ("not_received", "web")
    ack = [n for n in await rows(gw, notices) if n.kind == "report_received"]
    assert len(ack) == 1 and ack[0].phone_e164 == PHONE

    # Again, or by the report form: the open report is shown, not a second one.
    text, _ = await post(gw, "/tra-cuu/phan-anh", {"ma": CODE, "mo_ta": "Chưa nhận được"})
    assert report.number in text and len(await rows(gw, reports)) == 1

    form = {"ma": CODE, "tien_do": "2", "chat_luong": "4", "y_kien": "Chờ lâu"}
    text, _ = await post(gw, "/tra-cuu/danh-gia", form)
    assert "Cảm ơn ông/bà đã đánh giá" in text
    (rating,) = await rows(gw, ratings)
    assert (rating.progress_score, rating.quality_score) == (2, 4)
    assert (rating.channel, rating.rater, rating.comment) == ("web", "phone", "Chờ lâu")


async def test_a_report_from_the_page_has_source_web(
    settings: Settings, aiohttp_client: Any
) -> None:
    gw = await start(citizen_settings(settings), aiohttp_client)
    await ingest(gw, "dossier.finished", "dossier.delivered")
    await prove_by_code(gw)
    text = await page(gw, f"/tra-cuu?ma={CODE}")
    assert "Ông/bà đã nhận được kết quả chưa?" not in text  # never asked: delivered
    text, _ = await post(gw, "/tra-cuu/ket-qua", {"ma": CODE, "tra_loi": "da_nhan"}, status=409)
    text, _ = await post(gw, "/tra-cuu/phan-anh", {"ma": CODE, "mo_ta": "Cán bộ báo đã trả"})
    (report,) = await rows(gw, reports)
    assert (report.source, report.proof, report.description) == ("web", "otp", "Cán bộ báo đã trả")
    assert report.number in text


async def test_a_dossier_without_its_result_is_neither_reported_nor_rated(
    settings: Settings, aiohttp_client: Any
) -> None:
    gw = await start(citizen_settings(settings), aiohttp_client)
    await ingest(gw, "dossier.processing")
    csrf = await token(gw)  # the act-level page of this dossier has no form to read it from
    await prove_by_code(gw)
    text = await page(gw, f"/tra-cuu?ma={CODE}")
    assert PROCEDURE in text and "/tra-cuu/phan-anh" not in text and "/tra-cuu/danh-gia" not in text
    for path, form in (
        ("/tra-cuu/phan-anh", {"mo_ta": "x"}),
        ("/tra-cuu/danh-gia", {"tien_do": "5", "chat_luong": "5"}),
    ):
        form = {"csrf_token": csrf, "ma": CODE, **form}
        text, _ = await post(gw, path, form, csrf=False, status=409)
        assert "Hồ sơ chưa có kết quả" in text, path
    assert await rows(gw, reports) == [] and await rows(gw, ratings) == []


async def test_a_rating_needs_both_scores(settings: Settings, aiohttp_client: Any) -> None:
    gw = await start(citizen_settings(settings), aiohttp_client)
    await ingest(gw, "dossier.finished")
    link = await ask_result_check(gw)
    await page(gw, f"/l/{link}", status=303)
    text, _ = await post(gw, "/tra-cuu/danh-gia", {"ma": CODE, "tien_do": "5"}, status=400)
    assert "chất lượng phục vụ" in text
    form = {"ma": CODE, "tien_do": "6", "chat_luong": "5"}
    text, _ = await post(gw, "/tra-cuu/danh-gia", form, status=400)
    assert await rows(gw, ratings) == []


async def test_an_expired_or_unknown_link_says_so(settings: Settings, aiohttp_client: Any) -> None:
    clock = Clock()
    gw = await start(citizen_settings(settings, link_days=30), aiohttp_client, clock)
    await ingest(gw, "dossier.finished")
    link = await ask_result_check(gw)  # created a week from now
    clock.offset = timedelta(days=7 + 30, minutes=1).total_seconds()
    text = await page(gw, f"/l/{link}", status=404)
    assert "Đường dẫn không còn hiệu lực" in text and 'name="ma"' in text
    assert PROCEDURE not in await page(gw, f"/tra-cuu?ma={CODE}")
    clock.offset = 0
    await page(gw, "/l/AAAAAAAAAAAAAAAA", status=404)
    await page(gw, "/l/not-a-token", status=404)
    await page(gw, f"/l/{link}", status=303)


async def test_the_channel_moved_link_stops_zalo_notices(
    settings: Settings, aiohttp_client: Any
) -> None:
    s = citizen_settings(settings)
    gw = await start(s, aiohttp_client)
    now = datetime.now(UTC)
    engine = gw.client.app[DATABASE].writer
    moved = NewNotice(
        kind="channel_moved",
        dossier_code="",
        source_id=GATEWAY_SOURCE,
        event_id="channel-moved-1",
        dedupe_key="channel-moved-1",
        phone_e164=PHONE,
        params={},
    )
    async with engine.begin() as conn:
        await conn.execute(
            zalo_users.insert().values(
                user_id="u-1",
                follows=True,
                phone_e164=PHONE,
                verified_at=now,
                subscribed_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        await outbox.insert(conn, moved, now, Links.for_settings(s))
    link = link_token(SECRET, moved.id)
    text = await page(gw, f"/l/{link}")
    assert (
        "Thông báo của số này đã chuyển sang Zalo" in text and "Không phải ông/bà đăng ký?" in text
    )
    tok = CSRF_RE.search(text)
    assert tok is not None
    response = await gw.client.post(f"/l/{link}", data={}, allow_redirects=False)
    assert response.status == 403
    response = await gw.client.post(f"/l/{link}", data={"csrf_token": tok.group(1)})
    assert response.status == 200 and "Đã dừng nhận thông báo qua Zalo" in await response.text()
    (user,) = await rows(gw, zalo_users)
    assert user.subscribed_at is None


# -- links on notices, SMS texts, routing -----------------------------------------------------


async def test_invitations_carry_a_link_only_with_a_secret(
    settings: Settings, aiohttp_client: Any
) -> None:
    gw = await start(citizen_settings(settings), aiohttp_client)
    await ingest(gw, "dossier.finished")
    by_kind = {n.kind: n for n in await rows(gw, notices)}
    invitation = by_kind["invitation"]
    assert invitation.link_token == link_token(SECRET, invitation.id)
    assert invitation.params["link"] == f"{BASE}/l/{invitation.link_token}"
    assert by_kind["receipt"].link_token is None and "link" not in by_kind["receipt"].params
    await page(gw, f"/l/{invitation.link_token}", status=303)


async def test_without_a_secret_no_notice_has_a_link(
    settings: Settings, aiohttp_client: Any
) -> None:
    gw = await start(settings, aiohttp_client)
    await ingest(gw, "dossier.finished")
    assert all(n.link_token is None and "link" not in n.params for n in await rows(gw, notices))


LONG = {
    "dossier_code": CODE,
    "procedure_name": "Cấp đổi giấy chứng nhận quyền sử dụng đất, quyền sở hữu nhà ở và tài sản "
    "khác gắn liền với đất",
    "agency_name": "Chi nhánh Văn phòng đăng ký đất đai huyện Long Thành",
    "applicant_name": "Công ty TNHH Thương mại Dịch vụ Xây dựng Phương Nam Đồng Nai",
    "pickup": "Bộ phận một cửa Ủy ban nhân dân huyện Long Thành, số 01 đường Lê Duẩn, khu phố "
    "Phước Hải, thị trấn Long Thành",
    "finished_at": "2024-04-12T17:00:00+07:00",
}


@pytest.mark.parametrize(("accents", "budget"), [(False, 2), (True, 4)])
@pytest.mark.parametrize("kind", ["invitation", "result_check"])
def test_the_link_survives_the_segment_budget(kind: str, accents: bool, budget: int) -> None:
    texts = Texts(DEFAULT_TEMPLATES_DIR)
    url = f"{BASE}/l/{link_token(SECRET, 'n-1')}"
    sms = render_sms(texts, kind, {**LONG, "link": url}, accents=accents, budget=budget, zone=ZONE)
    assert sms.segments <= budget, sms
    assert url in sms.text and "1022" in sms.text


def test_a_result_check_goes_by_sms_only_with_a_link() -> None:
    now = datetime.now(UTC)
    common: dict[str, Any] = {
        "phone_e164": PHONE,
        "contact": None,
        "zns_template": None,
        "failed": {},
        "now": now,
        "window_days": 7,
    }
    assert [s.channel for s in plan_channels("result_check", **common).steps] == []
    linked = plan_channels("result_check", has_link=True, **common)
    assert [s.channel for s in linked.steps] == ["sms"]
    rating = plan_channels("rating_request", has_link=True, **common)
    assert [s.channel for s in rating.steps] == []


async def test_actions_say_nothing_about_unknown_codes_to_an_unproven_visitor(
    settings: Settings, aiohttp_client: Any
) -> None:
    gw = await start(citizen_settings(settings), aiohttp_client)
    await ingest(gw, "dossier.finished")
    for code in (CODE, "000.00.12.H19-240401-9999"):
        text, _ = await post(gw, "/tra-cuu/phan-anh", {"ma": code, "mo_ta": "x"}, status=403)
        assert "Cần xác thực" in text and "Không tìm thấy" not in text


async def test_a_link_proves_nothing_once_the_dossiers_phone_changed(
    settings: Settings, aiohttp_client: Any
) -> None:
    gw = await start(citizen_settings(settings), aiohttp_client)
    await ingest(gw, "dossier.finished")
    link = await ask_result_check(gw)
    async with gw.client.app[DATABASE].writer.begin() as conn:
        await conn.execute(dossiers.update().values(phone_e164="+84987654321"))
    text = await page(gw, f"/l/{link}", status=404)
    assert "Đường dẫn không còn hiệu lực" in text
    assert PROCEDURE not in await page(gw, f"/tra-cuu?ma={CODE}")


async def test_a_visit_without_a_form_leaves_no_session(
    settings: Settings, aiohttp_client: Any
) -> None:
    gw = await start(citizen_settings(settings), aiohttp_client)
    for path, status in (("/tra-cuu", 200), ("/tra-cuu?ma=000.00.12.H19-240401-9999", 404)):
        response = await gw.client.get(path)
        assert response.status == status and "tthc_citizen" not in response.cookies
    keys = await gw.client.app[REDIS].keys(f"{gw.settings.redis_key_prefix}citizen:session:*")
    assert keys == []
