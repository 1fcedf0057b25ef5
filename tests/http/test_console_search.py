"""The console's dossier search (exact code or phone, audited) and the dossier page.

The real application on a test server, real Redis, both databases; the dossier's story
arrives through signed events, as in production.
"""

from __future__ import annotations

import json

import pytest
from aiohttp import ClientResponse

from gateway.storage import reports as report_store
from gateway.storage.tables import reports, violations
from tests.console_helpers import (
    CODE,
    CSRF_RE,
    FRIDAY,
    MASKED,
    PHONE,
    Console,
    citizen_report,
    post_events,
)
from tests.helpers import event

STORY = "000.00.12.H19-260401-0042"
UNKNOWN = "000.00.12.H19-260401-0999"


async def story(console: Console) -> report_store.ReportRow:
    """A dossier received and finished by Bình (phone 0912 345 678), a report on it, and a
    ledger entry about it."""
    dates = {"received_at": "2026-04-01T08:00:00+07:00", "due_at": "2026-04-30T17:00:00+07:00"}
    await post_events(
        console,
        event("dossier.received", code=STORY, at="2026-04-01T08:00:00+07:00", **dates),
        event("dossier.finished", code=STORY, at="2026-04-10T15:00:00+07:00", **dates),
    )
    report = await citizen_report(console, code=STORY)
    async with console.db.writer.begin() as conn:
        await conn.execute(
            violations.insert().values(
                fingerprint=f"false_closure:{STORY}:cc-0123",
                rule="false_closure",
                dossier_code=STORY,
                officer_id="cc-0123",
                officer_name="Trần Thị Bình",
                agency_code="000.00.12.H19",
                agency_name="Sở Xây dựng",
                occurred_at=FRIDAY,
                detected_at=FRIDAY,
                evidence=[],
                detail="báo kết thúc sai",
                report_id=report.id,
            )
        )
    return report


async def search(console: Console, q: str | None) -> ClientResponse:
    query = {} if q is None else {"q": q}
    return await console.client.get("/console/dossiers", params=query, allow_redirects=False)


# --- the search ---------------------------------------------------------------------------


async def test_the_form_alone_when_nothing_is_asked(console: Console) -> None:
    await console.logged_in("hoa")
    for q in (None, "", "   "):
        response = await search(console, q)
        assert response.status == 200
        html = await response.text()
        assert '<label for="q">Mã hồ sơ hoặc số điện thoại</label>' in html
        assert 'data-testid="dossiers"' not in html
    assert [e.action for e in await console.audit()] == ["login"]


@pytest.mark.parametrize("typed", [CODE, CODE.lower(), f"  {CODE} "])
async def test_a_code_finds_its_dossier_and_reports(console: Console, typed: str) -> None:
    report = await citizen_report(console)
    await console.logged_in("hoa")
    response = await search(console, typed)
    assert response.status == 200
    html = await response.text()
    table = html.split('data-testid="dossiers"')[1].split("</table>")[0]
    assert f'<a href="/console/dossiers/{CODE}"><code>{CODE}</code></a>' in table
    for text in ("Cấp giấy phép xây dựng", "Sở Xây dựng", "Đã có kết quả", "20/04/2026", MASKED):
        assert text in table
    assert PHONE not in html
    reports = html.split('data-testid="reports"')[1].split("</table>")[0]
    assert f'<a href="/console/reports/{report.id}">{report.number}</a>' in reports
    entry = (await console.audit())[-1]
    assert (entry.action, entry.username, entry.target) == (
        "dossier_search",
        "hoa",
        f"dossier:{CODE}",
    )
    assert entry.detail == {"by": "code", "found": 1, "reports": 1}


@pytest.mark.parametrize("typed", ["0912 345 678", "+84912345678", "84912345678", "0912.345.678"])
async def test_a_phone_finds_dossiers_and_reports_without_being_logged(
    console: Console, typed: str
) -> None:
    report = await citizen_report(console)
    await console.logged_in("minh")
    response = await search(console, typed)
    assert response.status == 200
    html = await response.text()
    table = html.split('data-testid="dossiers"')[1].split("</table>")[0]
    assert CODE in table and MASKED in table
    assert f'href="/console/reports/{report.id}"' in html
    assert PHONE not in html.replace(f'value="{typed}"', "")
    entry = (await console.audit())[-1]
    assert (entry.action, entry.target) == ("dossier_search", None)
    assert entry.detail == {"by": "phone", "found": 1, "reports": 1}
    assert "912345678" not in repr(entry) and "345" not in json.dumps(entry.detail)


async def test_nothing_found_is_said_and_still_audited(console: Console) -> None:
    await console.logged_in("hoa")
    html = await (await search(console, UNKNOWN)).text()
    assert "Không tìm thấy hồ sơ nào." in html and "Không có phản ánh nào." in html
    html = await (await search(console, "0987 654 321")).text()
    assert "Không tìm thấy hồ sơ nào." in html
    details = [e.detail for e in await console.audit() if e.action == "dossier_search"]
    assert details == [
        {"by": "code", "found": 0, "reports": 0},
        {"by": "phone", "found": 0, "reports": 0},
    ]


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("000.00.12.H19-260431-0001", "Mã hồ sơ không đúng dạng."),  # 31 April
        ("000.00.12.H19-2604010001", "Mã hồ sơ không đúng dạng."),
        ("H19", "Mã hồ sơ không đúng dạng."),
        ("000.00.12.H19-260401-0001%", "Mã hồ sơ không đúng dạng."),
        ("12345", "Số điện thoại không hợp lệ"),
        ("0251 3822 123", "Số điện thoại không hợp lệ"),  # a landline
        ("0912345678 / 0987654321", "Số điện thoại không hợp lệ"),  # two numbers
        ("9" * 80, "Số điện thoại không hợp lệ"),
    ],
)
async def test_a_bad_query_names_the_field(console: Console, typed: str, message: str) -> None:
    await console.logged_in("hoa")
    response = await search(console, typed)
    assert response.status == 400
    html = await response.text()
    assert 'aria-invalid="true"' in html
    error = html.split('data-testid="q-error"')[1].split("</p>")[0]
    assert message in error
    assert 'data-testid="dossiers"' not in html
    assert [e.action for e in await console.audit()] == ["login"]


async def test_auditors_search_by_code_only(console: Console) -> None:
    await citizen_report(console)
    await console.logged_in("lan")
    form = await (await search(console, None)).text()
    assert '<label for="q">Mã hồ sơ</label>' in form
    assert "chỉ tra cứu theo mã hồ sơ" in form
    refused = await search(console, "0912 345 678")
    assert refused.status == 403
    html = await refused.text()
    assert "Tài khoản kiểm tra không được tra cứu theo số điện thoại" in html
    assert 'data-testid="dossiers"' not in html and CODE not in html
    found = await search(console, CODE)
    assert found.status == 200 and MASKED in await found.text()
    entries = await console.audit()
    assert [(e.action, e.detail) for e in entries] == [
        ("login", None),
        ("dossier_search_refused", {"by": "phone"}),
        ("dossier_search", {"by": "code", "found": 1, "reports": 1}),
    ]
    assert "912345678" not in repr(entries)


# --- the dossier page ---------------------------------------------------------------------


async def page_of(console: Console, code: str = STORY) -> str:
    response = await console.client.get(f"/console/dossiers/{code}", allow_redirects=False)
    assert response.status == 200, await response.text()
    return await response.text()


async def test_the_page_shows_facts_timeline_notices_and_reports_masked(
    console: Console,
) -> None:
    report = await story(console)
    await console.logged_in("hoa")
    html = await page_of(console)
    facts = html.split('data-testid="dossier-facts"')[1].split("</dl>")[0]
    assert "Cấp giấy phép xây dựng" in facts and "Sở Xây dựng" in facts
    assert "Đã có kết quả" in facts and "Nguyễn Văn An" in facts
    assert "01/04/2026 08:00" in facts and "30/04/2026 17:00" in facts
    assert "Trần Thị Bình (cc-0123)" in facts
    assert MASKED in facts
    received = html.index("01/04/2026 08:00: Tiếp nhận hồ sơ — Trần Thị Bình")
    assert received < html.index("10/04/2026 15:00: Có kết quả (báo kết thúc)")
    notices = html.split('data-testid="notices"')[1].split("</table>")[0]
    assert "Tiếp nhận" in notices and "Mời nhận kết quả" in notices
    assert notices.count('data-testid="notice"') >= 2
    assert f'<a href="/console/reports/{report.id}">{report.number}</a>' in html
    assert PHONE not in html and "0912345678" not in html
    # The hotline reveals; the ledger is the auditors'.
    assert f'action="/console/dossiers/{STORY}/reveal"' in html
    assert 'data-testid="ledger"' not in html and "<h2>Sổ vi phạm</h2>" not in html


async def test_auditors_see_the_ledger_and_never_the_phone(console: Console) -> None:
    await story(console)
    await console.logged_in("lan")
    html = await page_of(console)
    ledger = html.split('data-testid="ledger"')[1].split("</table>")[0]
    assert "Bấm kết thúc hồ sơ trên phần mềm" in ledger
    assert "Trần Thị Bình" in ledger and "Chưa xử lý" in ledger
    assert f'href="/console/audit/violations?dossier={STORY}"' in html
    assert "/reveal" not in html and MASKED in html
    token = CSRF_RE.search(html)
    assert token is not None
    refused = await console.client.post(
        f"/console/dossiers/{STORY}/reveal", data={"csrf_token": token.group(1)}
    )
    assert refused.status == 403
    assert PHONE not in await refused.text()
    assert [e.action for e in await console.audit()] == ["login"]


async def test_a_reveal_shows_the_phone_once_and_is_audited(console: Console) -> None:
    await story(console)
    await console.logged_in("hoa")
    token = CSRF_RE.search(await page_of(console))
    assert token is not None
    response = await console.client.post(
        f"/console/dossiers/{STORY}/reveal", data={"csrf_token": token.group(1)}
    )
    assert response.status == 200
    html = await response.text()
    facts = html.split('data-testid="dossier-facts"')[1].split("</dl>")[0]
    assert PHONE in facts
    assert "việc xem đã được ghi nhật ký" in html
    entry = (await console.audit())[-1]
    assert (entry.action, entry.username, entry.target) == (
        "reveal_phone",
        "hoa",
        f"dossier:{STORY}",
    )
    assert PHONE not in await page_of(console)  # masked again on the next view


async def test_a_dossier_known_only_from_a_report_has_a_page(console: Console) -> None:
    # Written straight into the table: a phone report about a dossier never entered.
    async with console.db.writer.begin() as conn:
        await conn.execute(
            reports.insert().values(
                number="PA-2026-000777",
                kind="problem",
                source="phone",
                status="open",
                dossier_code=UNKNOWN,
                agency_name="UBND xã An Phước",
                description="Hồ sơ nộp giấy",
                created_at=FRIDAY,
                updated_at=FRIDAY,
            )
        )
    await console.logged_in("hoa")
    html = await page_of(console, UNKNOWN)
    assert "Hồ sơ chưa có trên hệ thống" in html
    assert "PA-2026-000777" in html
    assert "/reveal" not in html


@pytest.mark.parametrize(
    "path",
    [
        "/console/dossiers/000.00.12.H19-260401-0777",  # unknown
        "/console/dossiers/000.00.12.H19-260431-0001",  # not a date
        "/console/dossiers/000.00.12.h19-260401-0001",  # not the stored case
    ],
)
async def test_no_page_for_an_unknown_or_invalid_code(console: Console, path: str) -> None:
    await console.logged_in("minh")
    response = await console.client.get(path, allow_redirects=False)
    assert response.status == 404
    assert "Không tìm thấy trang" in await response.text()
    token = await console.csrf("/console/dossiers")
    reveal = await console.client.post(f"{path}/reveal", data={"csrf_token": token})
    assert reveal.status == 404
    assert [e.action for e in await console.audit()] == ["login"]
