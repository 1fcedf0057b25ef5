"""The console's auditors' desk: the violations ledger, decisions, the agency table, exports.

The real application on a test server, real Redis, both databases; the ledger and the
monthly figures are seeded straight into their tables, as the audit job would leave them.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import openpyxl
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from gateway.http.app import create_app
from gateway.settings import Settings
from gateway.storage.staff import add_user, list_actions
from gateway.storage.tables import dossier_audit, ratings, violation_decisions
from tests.console_helpers import CSRF_RE, FRIDAY, PASSWORD, USERS, Clock, Console
from tests.http.test_audit_api import BINH, BUILDING, CODES, LAND, seed_violation
from tests.staff_helpers import empty_staff_tables, rows

CUONG = ("cc-0456", "Lê Văn Cường")
LEDGER = "/console/audit/violations"
AGENCIES = "/console/audit/agencies"


@pytest.fixture
async def desk(settings: Settings, aiohttp_client: Any) -> Console:
    await empty_staff_tables(settings.database_url)
    clock = Clock(FRIDAY)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(
        create_app(settings, clock=clock)
    )
    console = Console(client, settings, clock, 0)
    earlier, _ = await list_actions(console.db.reader, limit=1, after=None)
    console.audit_before = earlier[0].id if earlier else 0
    for username, role in USERS.items():
        await add_user(
            console.db.writer, username, f"Cán bộ {username}", role, FRIDAY, password=PASSWORD
        )
    await seed_ledger(console)
    return console


async def seed_ledger(console: Console) -> None:
    """Four entries: two officers, two agencies, two rules, three days."""
    repeat = {
        "sanction": "khien_trach",
        "reassign": True,
        "supervisor": {"id": "ld-0001", "name": "Nguyễn Hữu Đạt"},
        "repeat_of": 7,
    }
    await seed_violation(console, 1, suggestion=repeat)
    await seed_violation(
        console,
        2,
        rule="second_rescheduling",
        dossier=CODES[1],
        at=datetime(2026, 4, 2, 3, 0, tzinfo=UTC),
    )
    await seed_violation(
        console,
        3,
        rule="consultation_unanswered",
        officer=None,
        agency=LAND,
        dossier=CODES[2],
        at=datetime(2026, 4, 3, 3, 0, tzinfo=UTC),
    )
    await seed_violation(
        console,
        4,
        officer=CUONG,
        dossier=CODES[3],
        at=datetime(2026, 4, 3, 18, 0, tzinfo=UTC),  # 4 April, 01:00 in Vietnam
    )


def shown(html: str) -> list[int]:
    """The ids of the ledger entries on a page."""
    return [int(part.split('"')[0]) for part in html.split('data-testid="violation" data-id="')[1:]]


async def get(console: Console, path: str, status: int = 200) -> str:
    response = await console.client.get(path, allow_redirects=False)
    text = await response.text()
    assert response.status == status, text
    return text


# --- the ledger ---------------------------------------------------------------------------


async def test_the_ledger_shows_each_entry_in_vietnamese(desk: Console) -> None:
    await desk.logged_in("lan")
    html = await get(desk, LEDGER)
    assert shown(html) == [1, 2, 3, 4]
    first = html.split('id="v-1"')[1].split("</tr>")[0]
    assert CODES[0] in first and "Trần Thị Bình" in first and "Sở Xây dựng" in first
    assert "evt-1" in first and "01/04/2026 09:00" in first  # local time, dd/mm/yyyy
    assert "Chưa xử lý" in first
    assert "Khiển trách" in first and "chuyển công việc khác" in first
    assert "Nguyễn Hữu Đạt" in first and "Tái phạm (vi phạm số 7)" in first
    assert "phone_missing" in first and 'name="csrf_token"' in first
    # The rule's Vietnamese description, not only its id.
    description = first.split("<td>")[1].split("<small>")[0].strip()
    assert description and description != "phone_missing"
    # Auditors see the desk in the navigation.
    assert 'href="/console/audit/agencies"' in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("rule=second_rescheduling", [2]),
        ("officer=cc-0456", [4]),
        (f"agency={LAND[0]}", [3]),
        (f"dossier={CODES[1]}", [2]),
        ("status=open", [1, 2, 3, 4]),
        ("status=dismissed", []),
        ("since=02/04/2026", [2, 3, 4]),
        ("until=03/04/2026", [1, 2, 3]),  # 4 April in Vietnam is after the 3rd
        ("since=2026-04-02&until=2026-04-03", [2, 3]),
        ("rule=&officer=&since=", [1, 2, 3, 4]),  # empty form fields filter nothing
    ],
)
async def test_each_filter_selects_its_entries(
    desk: Console, query: str, expected: list[int]
) -> None:
    await desk.logged_in("minh")
    assert shown(await get(desk, f"{LEDGER}?{query}")) == expected


async def test_a_bad_filter_is_named_on_the_page(desk: Console) -> None:
    await desk.logged_in("lan")
    html = await get(desk, f"{LEDGER}?since=31/02/2026&rule=nope", 422)
    errors = html.split('data-testid="filter-errors">')[1].split("</p>")[0]
    assert "Từ ngày" in errors and "Quy tắc" in errors
    assert shown(html) == []


async def test_the_ledger_is_paged(desk: Console) -> None:
    for number in range(5, 56):
        await seed_violation(desk, number, dossier=CODES[4])
    await desk.logged_in("lan")
    html = await get(desk, f"{LEDGER}?agency={BUILDING[0]}")
    assert len(shown(html)) == 50
    following = html.split('<p><a href="')[1].split('"')[0].replace("&amp;", "&")
    assert "after=" in following and f"agency={BUILDING[0]}" in following
    rest = shown(await get(desk, LEDGER + following))
    assert rest == [52, 53, 54, 55]  # 54 entries of the agency; entry 3 is not one


# --- decisions ----------------------------------------------------------------------------


async def decide(console: Console, violation: int, **form: str) -> ClientResponse:
    html = await get(console, f"{LEDGER}?rule=phone_missing")
    found = CSRF_RE.search(html)
    assert found is not None
    data = {"csrf_token": found.group(1), "back": "rule=phone_missing"} | form
    return await console.client.post(
        f"{LEDGER}/{violation}/decision", data=data, allow_redirects=False
    )


async def test_a_decision_is_recorded_audited_and_shown(desk: Console) -> None:
    await desk.logged_in("lan")
    response = await decide(desk, 1, decision="applied", sanction="canh_cao", note="")
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == f"{LEDGER}?rule=phone_missing#v-1"
    (recorded,) = await rows(desk.db.reader, violation_decisions)
    assert (recorded["violation_id"], recorded["decision"], recorded["sanction"]) == (
        1,
        "applied",
        "canh_cao",
    )
    actions = [a for a in await desk.audit() if a.action == "violation_decision"]
    assert [(a.username, a.target) for a in actions] == [("lan", "violation:1")]
    assert actions[0].detail == {"decision": "applied", "sanction": "canh_cao"}
    html = await get(desk, f"{LEDGER}?status=applied")
    assert shown(html) == [1] and "Đã xử lý kỷ luật" in html
    # A later decision corrects the earlier one; a sanction left chosen is ignored.
    response = await decide(desk, 1, decision="dismissed", sanction="canh_cao", note="Nhầm")
    assert response.status == 303
    assert shown(await get(desk, f"{LEDGER}?status=dismissed")) == [1]
    latest = (await rows(desk.db.reader, violation_decisions))[-1]
    assert (latest["decision"], latest["sanction"], latest["note"]) == ("dismissed", None, "Nhầm")


@pytest.mark.parametrize(
    ("form", "faulty"),
    [
        ({"decision": "applied", "sanction": ""}, "Hình thức kỷ luật"),
        ({"decision": "dismissed", "note": "  "}, "Lý do"),
        ({"decision": "forgiven"}, "Quyết định"),
    ],
)
async def test_an_incomplete_decision_is_refused_and_nothing_recorded(
    desk: Console, form: dict[str, str], faulty: str
) -> None:
    await desk.logged_in("lan")
    response = await decide(desk, 2, **form)
    assert response.status == 422
    html = await response.text()
    assert faulty in html.split('data-testid="decision-errors">')[1].split("</p>")[0]
    assert shown(html) == [1, 4]  # the page the form came from
    assert await rows(desk.db.reader, violation_decisions) == []
    assert not [a for a in await desk.audit() if a.action == "violation_decision"]


async def test_a_decision_on_an_unknown_entry_is_a_404(desk: Console) -> None:
    await desk.logged_in("lan")
    response = await decide(desk, 999, decision="applied", sanction="canh_cao")
    assert response.status == 404
    assert await rows(desk.db.reader, violation_decisions) == []


@pytest.mark.parametrize("token", [None, "forged"])
async def test_a_decision_without_the_forms_token_is_refused(
    desk: Console, token: str | None
) -> None:
    await desk.logged_in("lan")
    data = {"decision": "applied", "sanction": "canh_cao"}
    if token is not None:
        data["csrf_token"] = token
    response = await desk.client.post(f"{LEDGER}/1/decision", data=data, allow_redirects=False)
    assert response.status == 403
    assert "Biểu mẫu đã hết hạn" in await response.text()
    assert await rows(desk.db.reader, violation_decisions) == []


# --- exports ------------------------------------------------------------------------------


def table_of(raw: bytes, extension: str) -> list[list[Any]]:
    if extension == "csv":
        return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True)
    return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]


async def download(console: Console, path: str, extension: str) -> list[list[Any]]:
    response = await console.client.get(path, allow_redirects=False)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Disposition"].rstrip('"').endswith(f".{extension}")
    return table_of(await response.read(), extension)


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
async def test_the_ledger_exports_every_matching_entry_audited(
    desk: Console, extension: str
) -> None:
    await desk.logged_in("lan")
    html = await get(desk, f"{LEDGER}?officer={BINH[0]}&since=01/04/2026")
    link = html.split('data-testid="export-' + extension)[0].rsplit('href="', 1)[1]
    link = link.split('"')[0].replace("&amp;", "&")
    assert link.startswith(f"{LEDGER}.{extension}?")
    header, *body = await download(desk, link, extension)
    assert "Mã hồ sơ" in header and "Cán bộ" in header
    codes = [row[header.index("Mã hồ sơ")] for row in body]
    assert codes == [CODES[0], CODES[1]]
    text = json.dumps(body, ensure_ascii=False, default=str)
    assert "Khiển trách" in text and "Chưa xử lý" in text
    (export,) = [a for a in await desk.audit() if a.action == "export"]
    assert (export.username, export.target) == ("lan", "violations")
    assert export.detail is not None
    assert export.detail["format"] == extension and export.detail["rows"] == 2
    assert export.detail["filters"] == {"officer": BINH[0], "since": "01/04/2026"}


# --- the agency table ---------------------------------------------------------------------


async def seed_month(console: Console) -> None:
    """April 2026: Building 2 late of 10 ended (over 10 %), Land 1 of 10 (not over)."""
    values = []
    for agency, late in ((BUILDING, 2), (LAND, 1)):
        for number in range(10):
            values.append(
                {
                    "dossier_code": f"{agency[0]}-260401-{number:04d}",
                    "agency_code": agency[0],
                    "agency_name": agency[1],
                    "received_month": "2026-04",
                    "ended_month": "2026-04",
                    "ended_at": datetime(2026, 4, 20, 3, 0, tzinfo=UTC),
                    "end_kind": "finished",
                    "verdict": "late" if number < late else "on_time",
                    "supplement_requests": 0,
                    "apologies": 0,
                    "missing_phone": False,
                    "audited_at": FRIDAY,
                }
            )
    async with console.db.writer.begin() as conn:
        await conn.execute(dossier_audit.insert(), values)


async def test_agencies_over_the_threshold_carry_a_visible_badge(desk: Console) -> None:
    await seed_month(desk)
    await desk.logged_in("lan")
    html = await get(desk, f"{AGENCIES}?month=2026-04")
    building = html.split(f'data-code="{BUILDING[0]}"')[1].split("</tr>")[0]
    land = html.split(f'data-code="{LAND[0]}"')[1].split("</tr>")[0]
    assert "20 %" in building and "vượt 10 %" in building
    assert "10 %" in land and "vượt" not in land  # exactly at the line is not over it
    assert 'href="?month=2026-03"' in html and 'href="?month=2026-05"' in html


async def test_the_agency_table_shows_both_scores_and_exports_them(desk: Console) -> None:
    await seed_month(desk)
    april = datetime(2026, 4, 21, 3, 0, tzinfo=UTC)
    given = [
        # Building: two two-score ratings, the second without its quality score.
        (BUILDING[0], "oa:u-1", None, 4, 2),
        (BUILDING[0], "phone", None, 5, None),
        # Land: one rating from before the two scores.
        (LAND[0], "oa:u-2", 3, None, None),
    ]
    async with desk.db.writer.begin() as conn:
        await conn.execute(
            ratings.insert(),
            [
                {
                    "dossier_code": f"{agency}-260401-0000",
                    "agency_code": agency,
                    "rater": rater,
                    "score": score,
                    "progress_score": progress,
                    "quality_score": quality,
                    "created_at": april,
                }
                for agency, rater, score, progress, quality in given
            ],
        )
    await desk.logged_in("lan")
    html = await get(desk, f"{AGENCIES}?month=2026-04")
    cell = 'data-testid="ratings">'
    building = html.split(f'data-code="{BUILDING[0]}"')[1].split(cell)[1].split("</td>")[0]
    land = html.split(f'data-code="{LAND[0]}"')[1].split(cell)[1].split("</td>")[0]
    assert building == "Tiến độ 4,5 · Chất lượng 2,0 <small>(2 lượt)</small>"
    assert land == "Chung 3,0 <small>(1 lượt)</small>"
    header, *body = await download(desk, f"{AGENCIES}.csv?month=2026-04", "csv")
    by_code = {row[header.index("Mã cơ quan")]: row for row in body}
    columns = [
        header.index(name)
        for name in (
            "Số lượt đánh giá",
            "Điểm đánh giá trung bình",
            "Điểm đánh giá tiến độ trung bình",
            "Số lượt đánh giá tiến độ",
            "Điểm đánh giá chất lượng trung bình",
            "Số lượt đánh giá chất lượng",
        )
    ]
    assert [by_code[BUILDING[0]][i] for i in columns] == ["2", "3.6667", "4.5", "2", "2.0", "1"]
    assert [by_code[LAND[0]][i] for i in columns] == ["1", "3.0", "", "0", "", "0"]


async def test_the_agency_table_defaults_to_this_month(desk: Console) -> None:
    await seed_month(desk)
    await desk.logged_in("minh")
    html = await get(desk, AGENCIES)
    assert 'value="2026-04"' in html and "vượt 10 %" in html


async def test_a_bad_month_is_named(desk: Console) -> None:
    await desk.logged_in("lan")
    html = await get(desk, f"{AGENCIES}?month=2026-4", 422)
    assert 'data-testid="month-error"' in html


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
async def test_the_agency_table_exports_with_the_same_numbers(
    desk: Console, extension: str
) -> None:
    await seed_month(desk)
    await desk.logged_in("lan")
    html = await get(desk, f"{AGENCIES}?month=2026-04")
    assert f'href="{AGENCIES}.{extension}?month=2026-04"' in html
    header, *body = await download(desk, f"{AGENCIES}.{extension}?month=2026-04", extension)
    by_code = {str(row[header.index("Mã cơ quan")]): row for row in body}
    over = header.index("Vượt ngưỡng quá hạn")
    assert (by_code[BUILDING[0]][over], by_code[LAND[0]][over]) == ("Có", "Không")
    assert float(by_code[BUILDING[0]][header.index("Tỉ lệ quá hạn")]) == 0.2
    (export,) = [a for a in await desk.audit() if a.action == "export"]
    assert export.target == "agencies" and export.detail is not None
    assert export.detail["filters"] == {"month": "2026-04"}


async def test_hotline_staff_do_not_see_the_desk(desk: Console) -> None:
    await desk.logged_in("hoa")
    html = await get(desk, "/console/reports")
    assert "/console/audit/" not in html
    for path in (LEDGER, f"{LEDGER}.csv", AGENCIES, f"{AGENCIES}.xlsx"):
        assert "Không có quyền" in await get(desk, path, 403)
    assert not [a for a in await desk.audit() if a.action == "export"]
