"""The auditors' desk, completed: a ledger entry's evidence, officer and agency pages with
their trend charts, overdue consultations, early warnings, and every table's export.

The real application on a test server, real Redis, both databases; the ledger, the
monthly figures, the directory and the consultations are seeded straight into their
tables, as the audit job and the imports would leave them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.http.console.desk import chart
from gateway.storage.tables import dossier_audit, dossiers, events, violation_decisions
from tests.console_helpers import CSRF_RE, FRIDAY, Console
from tests.http.test_audit_api import (
    BINH,
    BUILDING,
    CODES,
    DAT,
    LAND,
    seed_consultations,
    seed_directory,
)
from tests.http.test_console_desk import download, get, seed_ledger, seed_month
from tests.staff_helpers import rows

LEDGER = "/console/audit/violations"
AGENCIES = "/console/audit/agencies"
OFFICERS = "/console/audit/officers"
CONSULTATIONS = "/console/audit/consultations"
WARNINGS = "/console/audit/warnings"


@pytest.fixture
async def desk(console: Console) -> Console:
    """The console (users, the dossier CODES[0]) and the four ledger entries of the desk's
    first tests: 1, 2 and 4 of Sở Xây dựng (1, 2 Bình's; 4 Cường's), 3 of Sở TN&MT."""
    await seed_ledger(console)
    return console


def part(html: str, testid: str) -> str:
    """The element marked ``data-testid=testid`` up to the end of its table or list."""
    after = html.split(f'data-testid="{testid}"', 1)[1]
    return re.split(r"</table>|</ol>|</svg>|</dl>", after, maxsplit=1)[0]


def cells(row_html: str) -> list[str]:
    """The text of a table row's cells (header cell first), tags dropped."""
    found = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row_html, flags=re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", c)).strip() for c in found]


def table_rows(html: str, testid: str, row_testid: str) -> dict[str, list[str]]:
    """A table's rows by their ``data-month``/``data-id``/``data-dossier`` key."""
    table = part(html, testid)
    found = {}
    for chunk in table.split(f'data-testid="{row_testid}"')[1:]:
        key = re.match(r'\s*data-[a-z]+="([^"]+)"', chunk)
        assert key is not None, chunk[:80]
        found[key.group(1)] = cells("<tr " + chunk.split("</tr>")[0])
    return found


def attributes(tag: str) -> dict[str, str]:
    return dict(re.findall(r'([a-z0-9-]+)="([^"]*)"', tag))


def svg_tags(html: str, testid: str, name: str) -> list[dict[str, str]]:
    """Every ``<name …>`` tag of the chart ``testid`` as its attributes."""
    return [attributes(t) for t in re.findall(rf"<{name}\b[^>]*>", part(html, testid))]


async def exports_audited(console: Console) -> list[tuple[str | None, dict[str, Any] | None]]:
    return [(a.target, a.detail) for a in await console.audit() if a.action == "export"]


# --- a ledger entry and its evidence ------------------------------------------------------


async def seed_events(console: Console) -> None:
    """The timeline of CODES[0]: received by Bình, then the finish entry 1 cites, and a
    delivery; stored as the ingest would (the ledger cites ``evt-1``)."""
    values = []
    for seq, (event_id, kind, at) in enumerate(
        [
            ("evt-0", "dossier.received", datetime(2026, 3, 30, 1, 0, tzinfo=UTC)),
            ("evt-1", "dossier.finished", datetime(2026, 4, 1, 2, 0, tzinfo=UTC)),
            ("evt-5", "dossier.delivered", datetime(2026, 4, 6, 4, 30, tzinfo=UTC)),
        ]
    ):
        values.append(
            {
                "source_id": "onestop",
                "event_id": event_id,
                "type": kind,
                "dossier_code": CODES[0],
                "occurred_at": at,
                "recorded_at": at,
                "actor_id": BINH[0],
                "actor_name": BINH[1],
                "superseded": False,
                "fingerprint": f"{seq:064d}",
                "body": {"data": {}},
                "answer": {},
            }
        )
    async with console.db.writer.begin() as conn:
        await conn.execute(events.insert(), values)


async def test_each_entry_links_its_evidence_shown_in_the_dossiers_timeline(
    desk: Console,
) -> None:
    await seed_events(desk)
    await desk.logged_in("lan")
    ledger = await get(desk, LEDGER)
    assert f'href="{LEDGER}/1"' in ledger and f'href="{LEDGER}/1#evidence"' in ledger
    assert f'href="{OFFICERS}/cc-0123"' in ledger and f'href="{AGENCIES}/{BUILDING[0]}"' in ledger
    html = await get(desk, f"{LEDGER}/1")
    facts = part(html, "violation-facts")
    assert "Trần Thị Bình" in facts and "Sở Xây dựng" in facts and CODES[0] in facts
    assert "01/04/2026 09:00" in facts and "Chưa xử lý" in facts and "Khiển trách" in facts
    assert "Công văn" in facts  # the rule's legal source
    suggestion = re.sub(r"<[^>]+>", "", part(html, "suggestion").split("</dd>")[0])
    assert suggestion.lstrip(">").strip() == (
        "Khiển trách; đề xuất chuyển công việc khác; xem xét trách nhiệm người quản lý trực"
        " tiếp: Nguyễn Hữu Đạt; tái phạm (vi phạm số 7)"
    )
    assert f'href="{LEDGER}/7"' in facts and "seeded" not in html  # no English note
    timeline = part(html, "timeline")
    assert [e for e in re.findall(r'data-event="([^"]+)"', timeline)] == ["evt-0", "evt-1", "evt-5"]
    (cited,) = re.findall(r'<li class="cited" data-testid="cited" data-event="([^"]+)"', timeline)
    assert cited == "evt-1"
    finished = timeline.split('data-event="evt-1"')[1].split("</li>")[0]
    assert "chứng cứ" in finished and "01/04/2026 09:00" in finished
    assert "Có kết quả (báo kết thúc)" in finished and "Trần Thị Bình" in finished
    assert "chứng cứ" not in timeline.split('data-event="evt-5"')[1]
    assert 'data-testid="no-decisions"' in html and 'name="csrf_token"' in html
    # Entry 2's dossier has no stored events: the page says which evidence is missing.
    other = await get(desk, f"{LEDGER}/2")
    assert 'data-testid="no-timeline"' in other
    assert "<code>evt-2</code>" in part(other, "missing-evidence")


async def test_a_decision_on_the_entrys_page_is_recorded_and_shown_there(desk: Console) -> None:
    await desk.logged_in("lan")
    html = await get(desk, f"{LEDGER}/1")
    found = CSRF_RE.search(html)
    assert found is not None
    form = {"csrf_token": found.group(1), "from": "detail", "decision": "applied"}
    refused = await desk.client.post(
        f"{LEDGER}/1/decision", data=form | {"sanction": ""}, allow_redirects=False
    )
    assert refused.status == 422
    assert "Hình thức kỷ luật" in part(await refused.text(), "decision-errors")
    assert await rows(desk.db.reader, violation_decisions) == []
    response = await desk.client.post(
        f"{LEDGER}/1/decision", data=form | {"sanction": "canh_cao"}, allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == f"{LEDGER}/1#decisions"
    html = await get(desk, f"{LEDGER}/1")
    assert "Đã xử lý kỷ luật" in part(html, "status")
    row = cells(part(html, "decisions").split('data-testid="decision">')[1].split("</tr>")[0])
    assert row[1:] == ["Đã xử lý kỷ luật", "Cảnh cáo", "", "Cán bộ lan"]
    assert [(a.action, a.target) for a in await desk.audit() if a.action.startswith("viol")] == [
        ("violation_decision", "violation:1")
    ]


async def test_an_unknown_entry_is_a_404(desk: Console) -> None:
    await desk.logged_in("minh")
    assert "Không tìm thấy" in await get(desk, f"{LEDGER}/999", 404)


# --- the officers -------------------------------------------------------------------------


async def seed_closed(console: Console, officer: str, month: str, ended: int, late: int) -> None:
    """``ended`` dossiers of Sở Xây dựng received and closed by ``officer`` in ``month``,
    the first ``late`` of them late."""
    values = []
    day = f"{month[2:4]}{month[5:]}01"
    for number in range(ended):
        values.append(
            {
                "dossier_code": f"{BUILDING[0]}-{day}-{officer[-2:]}{number:02d}",
                "agency_code": BUILDING[0],
                "agency_name": BUILDING[1],
                "received_by": officer,
                "closed_by": officer,
                "received_month": month,
                "ended_month": month,
                "ended_at": datetime(int(month[:4]), int(month[5:]), 20, 3, 0, tzinfo=UTC),
                "end_kind": "finished",
                "verdict": "late" if number < late else "on_time",
                "supplement_requests": 0,
                "apologies": 0,
                "missing_phone": number == 0,
                "audited_at": FRIDAY,
            }
        )
    async with console.db.writer.begin() as conn:
        await conn.execute(dossier_audit.insert(), values)


async def test_an_officers_page_shows_the_directory_the_months_and_the_ledger(
    desk: Console,
) -> None:
    await seed_directory(desk)
    await seed_closed(desk, BINH[0], "2026-03", 2, 1)
    await seed_closed(desk, BINH[0], "2026-04", 4, 0)
    await desk.logged_in("lan")
    html = await get(desk, f"{OFFICERS}/{BINH[0]}?month=2026-04")
    facts = part(html, "officer-facts")
    assert "Trần Thị Bình" in html.split("<h1>")[1].split("</h1>")[0]
    assert "Sở Xây dựng" in facts and "Bộ phận một cửa" in facts
    assert f'href="{AGENCIES}/{BUILDING[0]}?month=2026-04"' in facts
    assert "Nguyễn Hữu Đạt" in part(html, "supervisor")
    assert re.findall(r'data-testid="violation" data-id="(\d+)"', part(html, "ledger")) == [
        "1",
        "2",
    ]
    months = table_rows(html, "months", "month")
    assert list(months) == [f"2025-{m:02d}" for m in range(5, 13)] + [
        f"2026-{m:02d}" for m in range(1, 5)
    ]
    assert months["2026-03"] == ["03/2026", "2", "2", "1", "1", "50 % vượt 10 %", "1 (50 %)"]
    assert months["2026-04"] == ["04/2026", "4", "4", "4", "0", "0 %", "1 (25 %)"]
    assert months["2025-05"][1:] == ["0", "0", "0", "0", "0 %", "0 (0 %)"]
    # The chart: 50 % is the top of the scale (0 to 50 %), so the 10 % line is a fifth up.
    bars = {b["data-month"]: b for b in svg_tags(html, "officer-chart", "rect")}
    assert set(bars) == {"2026-03", "2026-04"}  # months with nothing ended have no bar
    assert (bars["2026-03"]["y"], bars["2026-03"]["height"]) == ("12", "200")
    assert (bars["2026-04"]["y"], bars["2026-04"]["height"]) == ("212", "0")
    (line,) = [t for t in svg_tags(html, "officer-chart", "line") if "data-testid" in t]
    assert (line["y1"], line["y2"], line["stroke"]) == ("172", "172", "#a3140e")
    assert "ngưỡng 10 %" in part(html, "officer-chart")


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
async def test_an_officers_months_export_as_on_the_page(desk: Console, extension: str) -> None:
    await seed_closed(desk, BINH[0], "2026-03", 2, 1)
    await desk.logged_in("lan")
    html = await get(desk, f"{OFFICERS}/{BINH[0]}?month=2026-04")
    link = f"{OFFICERS}/{BINH[0]}/months.{extension}?month=2026-04"
    assert f'href="{link}"' in html
    header, *body = await download(desk, link, extension)
    assert header[:6] == [
        "Tháng",
        "Số hồ sơ tiếp nhận",
        "Số hồ sơ đã giải quyết",
        "Đúng hạn",
        "Quá hạn",
        "Quá hạn có thư xin lỗi",
    ]
    page_rows = table_rows(html, "months", "month")
    assert [row[0] for row in body] == list(page_rows)
    rate = header.index("Tỉ lệ quá hạn")
    march = next(row for row in body if row[0] == "2026-03")
    assert [int(v) for v in march[1:5]] == [2, 2, 1, 1] and float(march[rate]) == 0.5
    assert march[header.index("Vượt ngưỡng quá hạn")] == "Có"
    assert await exports_audited(desk) == [
        (f"officer:{BINH[0]}", {"format": extension, "rows": 12, "filters": {"month": "2026-04"}})
    ]


async def test_an_officer_nobody_knows_is_a_404(desk: Console) -> None:
    await desk.logged_in("lan")
    await get(desk, f"{OFFICERS}/cc-9999", 404)


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
async def test_the_monthly_officer_table_links_each_officer_and_exports(
    desk: Console, extension: str
) -> None:
    await seed_directory(desk)
    await seed_closed(desk, BINH[0], "2026-04", 4, 1)
    await seed_closed(desk, DAT[0], "2026-04", 10, 1)
    await desk.logged_in("minh")
    html = await get(desk, f"{OFFICERS}?month=2026-04")
    shown = table_rows(html, "officers", "officer")
    assert shown[BINH[0]] == [
        "Trần Thị Bình (cc-0123)",
        "4",
        "4",
        "3",
        "1",
        "25 % vượt 10 %",
        "1 (25 %)",
        "0",
        "—",
    ]
    assert shown[DAT[0]][5] == "10 %"  # exactly at the line is not over it
    assert f'href="{OFFICERS}/{BINH[0]}?month=2026-04"' in html
    header, *body = await download(desk, f"{OFFICERS}.{extension}?month=2026-04", extension)
    assert "Mã cán bộ" in header and "Tỉ lệ quá hạn" in header
    by_id = {str(row[header.index("Mã cán bộ")]): row for row in body}
    assert set(by_id) == set(shown)
    assert float(by_id[BINH[0]][header.index("Tỉ lệ quá hạn")]) == 0.25
    assert int(by_id[DAT[0]][header.index("Số hồ sơ đã kết thúc")]) == 10
    ((target, detail),) = await exports_audited(desk)
    assert target == "officers" and detail is not None and detail["rows"] == len(shown)


# --- the agencies -------------------------------------------------------------------------


async def test_an_agencys_page_shows_its_year_chart_officers_and_open_entries(
    desk: Console,
) -> None:
    await seed_month(desk)  # April: Sở Xây dựng 2 late of 10, Sở TN&MT 1 of 10
    await seed_closed(desk, BINH[0], "2026-01", 5, 0)
    await seed_directory(desk)
    await desk.logged_in("lan")
    agencies = await get(desk, f"{AGENCIES}?month=2026-04")
    assert f'href="{AGENCIES}/{BUILDING[0]}?month=2026-04"' in agencies
    html = await get(desk, f"{AGENCIES}/{BUILDING[0]}?month=2026-04")
    assert "Sở Xây dựng" in html.split("<h1>")[1]
    months = table_rows(html, "months", "month")
    assert len(months) == 12 and next(iter(months)) == "2025-05"
    assert months["2026-04"] == ["04/2026", "10", "10", "8", "2", "20 % vượt 10 %", "0 (0 %)"]
    assert months["2026-01"][1:6] == ["5", "5", "5", "0", "0 %"]
    bars = {b["data-month"]: b for b in svg_tags(html, "agency-chart", "rect")}
    assert {m: b["data-rate"] for m, b in bars.items()} == {"2026-01": "0.0", "2026-04": "0.2"}
    assert bars["2026-04"]["fill"] == "#a3140e" and bars["2026-01"]["fill"] == "#0b4f8a"
    # The scale runs to 20 %: the bar fills the plot, the 10 % line halves it.
    assert (bars["2026-04"]["y"], bars["2026-04"]["height"]) == ("12", "200")
    (line,) = [t for t in svg_tags(html, "agency-chart", "line") if "data-testid" in t]
    assert (line["y1"], line["y2"]) == ("112", "112")
    (label,) = svg_tags(html, "agency-chart", "text")[-1:]
    assert label["y"] == "112" and "ngưỡng 10 %" in part(html, "agency-chart")
    assert "<title" in part(html, "agency-chart") and "<desc" in part(html, "agency-chart")
    assert " style=" not in html and "<script" not in html  # the CSP allows neither
    staff = table_rows(html, "officers", "officer")
    assert staff[BINH[0]][0] == "Trần Thị Bình" and staff[BINH[0]][3] == "Nguyễn Hữu Đạt"
    assert staff[DAT[0]] == [
        "Nguyễn Hữu Đạt",
        DAT[0],
        "Bộ phận một cửa",
        "",
        "0",
        "0",
        "0",
        "0 %",
        "0",
    ]
    assert set(staff) == {BINH[0], DAT[0]}
    open_entries = re.findall(r'data-testid="violation" data-id="(\d+)"', part(html, "ledger"))
    assert open_entries == ["1", "2", "4"]  # entry 3 is Sở TN&MT's
    assert f"{LEDGER}.csv?agency={BUILDING[0]}&amp;status=open" in html


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
async def test_an_agencys_months_export_as_on_the_page(desk: Console, extension: str) -> None:
    await seed_month(desk)
    await desk.logged_in("lan")
    html = await get(desk, f"{AGENCIES}/{LAND[0]}?month=2026-04")
    assert "Sở Tài nguyên và Môi trường" in html.split("<h1>")[1]
    link = f"{AGENCIES}/{LAND[0]}/months.{extension}?month=2026-04"
    assert f'href="{link}"' in html
    header, *body = await download(desk, link, extension)
    page_rows = table_rows(html, "months", "month")
    assert [row[0] for row in body] == list(page_rows)
    april = body[-1]
    assert int(april[header.index("Quá hạn")]) == 1
    assert float(april[header.index("Tỉ lệ quá hạn")]) == 0.1
    assert april[header.index("Vượt ngưỡng quá hạn")] == "Không"
    assert page_rows["2026-04"][5] == "10 %"
    assert await exports_audited(desk) == [
        (f"agency:{LAND[0]}", {"format": extension, "rows": 12, "filters": {"month": "2026-04"}})
    ]


async def test_an_unknown_agency_is_a_404(desk: Console) -> None:
    await desk.logged_in("lan")
    await get(desk, f"{AGENCIES}/000.00.99.H19", 404)


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
async def test_the_agency_table_carries_the_provinces_trend(desk: Console, extension: str) -> None:
    await seed_month(desk)
    await seed_closed(desk, BINH[0], "2026-03", 10, 0)
    await desk.logged_in("lan")
    html = await get(desk, f"{AGENCIES}?month=2026-04")
    province = table_rows(html, "province", "month")
    assert province["2026-04"] == ["04/2026", "20", "20", "17", "3", "15 % vượt 10 %", "0 (0 %)"]
    assert province["2026-03"][1:6] == ["10", "10", "10", "0", "0 %"]
    bars = {b["data-month"]: b for b in svg_tags(html, "province-chart", "rect")}
    assert bars["2026-04"]["data-rate"] == "0.15" and bars["2026-03"]["data-rate"] == "0.0"
    # The compact chart: a 140-unit plot from 0 to 20 %, the line halfway.
    assert (bars["2026-04"]["y"], bars["2026-04"]["height"]) == ("47", "105")
    (line,) = [t for t in svg_tags(html, "province-chart", "line") if "data-testid" in t]
    assert line["y1"] == "82"
    header, *body = await download(
        desk, f"/console/audit/trend.{extension}?month=2026-04", extension
    )
    assert [row[0] for row in body] == list(province)
    assert float(body[-1][header.index("Tỉ lệ quá hạn")]) == 0.15
    assert await exports_audited(desk) == [
        ("province", {"format": extension, "rows": 12, "filters": {"month": "2026-04"}})
    ]


async def test_a_bad_month_on_a_page_shows_this_years_months_and_says_so(desk: Console) -> None:
    await desk.logged_in("lan")
    html = await get(desk, f"{AGENCIES}/{BUILDING[0]}?month=2026-13", 400)
    assert 'data-testid="month-error"' in html
    assert list(table_rows(html, "months", "month"))[-1] == "2026-04"  # FRIDAY's month


# --- consultations and warnings -----------------------------------------------------------


async def test_overdue_consultations_are_listed_with_their_reminders(desk: Console) -> None:
    await seed_consultations(desk)
    await desk.logged_in("lan")
    html = await get(desk, CONSULTATIONS)
    table = part(html, "consultations")
    for header in ("Mã hồ sơ", "Cơ quan được lấy ý kiến", "Hạn trả lời", "Nhắc nhở"):
        assert f'<th scope="col">{header}</th>' in table
    shown = table_rows(html, "consultations", "consultation")
    assert shown == {
        "yk-overdue": [
            CODES[3],
            "yk-overdue",
            LAND[1],
            "06/04/2026 10:00",
            "10/04/2026 17:00",
            "Chưa trả lời",
            "Lần 1: 10/04/2026 17:00Lần 2: 13/04/2026 17:00 (đồng gửi Sở Nội vụ)",
        ]
    }
    late = table_rows(
        await get(desk, f"{CONSULTATIONS}?state=answered_late"), "consultations", "consultation"
    )
    assert list(late) == ["yk-late"] and late["yk-late"][5] == "20/04/2026 10:00"
    reminded = await get(desk, f"{CONSULTATIONS}?state=reminded&agency={LAND[0]}")
    assert list(table_rows(reminded, "consultations", "consultation")) == ["yk-overdue"]
    other = await get(desk, f"{CONSULTATIONS}?agency={BUILDING[0]}")
    assert 'data-testid="no-consultations"' in other
    bad = await get(desk, f"{CONSULTATIONS}?state=late", 400)
    assert "Tình trạng" in part(bad, "filter-errors")
    assert not await exports_audited(desk)


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
async def test_consultations_export_as_on_the_page(desk: Console, extension: str) -> None:
    await seed_consultations(desk)
    await desk.logged_in("lan")
    html = await get(desk, f"{CONSULTATIONS}?state=overdue&agency={LAND[0]}")
    link = f"{CONSULTATIONS}.{extension}?state=overdue&agency={LAND[0]}"
    assert f'href="{link.replace("&", "&amp;")}"' in html
    header, *body = await download(desk, link, extension)
    (row,) = body
    assert row[header.index("Mã lượt lấy ý kiến")] == "yk-overdue"
    assert row[header.index("Cơ quan được lấy ý kiến")] == LAND[1]
    due = row[header.index("Hạn trả lời")]
    if extension == "csv":
        assert due == "10/04/2026 17:00"
    else:
        assert due == datetime(2026, 4, 10, 17, 0)
    reminders = row[header.index("Nhắc nhở")]
    assert reminders == "Lần 1: 10/04/2026 17:00; Lần 2: 13/04/2026 17:00 (đồng gửi Sở Nội vụ)"
    assert await exports_audited(desk) == [
        (
            "consultations",
            {"format": extension, "rows": 1, "filters": {"state": "overdue", "agency": LAND[0]}},
        )
    ]


async def seed_due_today(console: Console) -> None:
    """A dossier Bình received, still being processed, due at 17:00 on Tuesday 12 May."""
    at = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)
    async with console.db.writer.begin() as conn:
        await conn.execute(
            dossiers.insert().values(
                code=CODES[8],
                state="processing",
                dvcqg_status=4,
                state_at=at,
                procedure_code="1.004227",
                procedure_name="Cấp giấy phép xây dựng",
                agency_code=BUILDING[0],
                agency_name=BUILDING[1],
                received_at=at,
                received_by=BINH[0],
                due_at=datetime(2026, 5, 12, 10, 0, tzinfo=UTC),
                reschedule_count=0,
                supplement_count=0,
                event_count=1,
                created_at=at,
                updated_at=at,
            )
        )


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
async def test_early_warnings_list_both_kinds_and_export_them(
    desk: Console, extension: str
) -> None:
    await seed_directory(desk)
    await seed_due_today(desk)
    await desk.logged_in("lan")
    quiet = await get(desk, WARNINGS)
    assert 'data-testid="no-undelivered"' in quiet
    desk.clock.at = datetime(2026, 5, 12, 3, 0, tzinfo=UTC)  # Tuesday 12 May, 10:00
    await desk.logged_in("lan")  # the move of the clock ended the idle session
    html = await get(desk, WARNINGS)
    assert "12/05/2026" in html
    soon = table_rows(html, "due-soon", "warning")
    assert soon == {
        CODES[8]: [CODES[8], "Cấp giấy phép xây dựng", BUILDING[1], "12/05/2026", BINH[1], "0"]
    }
    late = table_rows(html, "undelivered", "warning")
    assert list(late) == [CODES[0]]
    assert late[CODES[0]][3:6] == ["20/04/2026", "20/04/2026", BINH[1]]
    assert '<th scope="col">Ngày kết thúc</th>' in part(html, "undelivered")
    header, *body = await download(desk, f"{WARNINGS}.{extension}", extension)
    assert header[:3] == ["Loại cảnh báo", "Mã hồ sơ", "Mã thủ tục"]
    assert [row[1] for row in body] == [CODES[8], CODES[0]]
    kinds = [row[0] for row in body]
    assert kinds == [
        "Sắp đến hạn, chưa có kết quả hay thư xin lỗi",
        "Đã giải quyết xong, chưa trả kết quả",
    ]
    finished = body[1][header.index("Ngày kết thúc")]
    assert finished == ("20/04/2026" if extension == "csv" else datetime(2026, 4, 20))
    days = body[1][header.index("Số ngày làm việc")]
    assert int(days) == int(late[CODES[0]][6])
    assert await exports_audited(desk) == [
        ("warnings", {"format": extension, "rows": 2, "filters": {}})
    ]


# --- roles --------------------------------------------------------------------------------


async def test_hotline_staff_get_none_of_the_desks_pages(desk: Console) -> None:
    await seed_directory(desk)
    await desk.logged_in("hoa")
    for path in (
        f"{LEDGER}/1",
        OFFICERS,
        f"{OFFICERS}.csv?month=2026-04",
        f"{OFFICERS}/{BINH[0]}",
        f"{OFFICERS}/{BINH[0]}/months.xlsx",
        f"{AGENCIES}/{BUILDING[0]}",
        f"{AGENCIES}/{BUILDING[0]}/months.csv",
        "/console/audit/trend.csv",
        CONSULTATIONS,
        f"{CONSULTATIONS}.csv",
        WARNINGS,
        f"{WARNINGS}.xlsx",
    ):
        assert "Không có quyền" in await get(desk, path, 403), path
    assert not await exports_audited(desk)


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
async def test_an_agencys_officers_with_the_months_figures_export_as_on_the_page(
    desk: Console, extension: str
) -> None:
    await seed_directory(desk)
    await seed_closed(desk, BINH[0], "2026-04", 5, 1)
    await desk.logged_in("lan")
    html = await get(desk, f"{AGENCIES}/{BUILDING[0]}?month=2026-04")
    staff = table_rows(html, "officers", "officer")
    assert staff[BINH[0]][4:] == ["5", "5", "1", "20 % vượt 10 %", "0"]
    assert 'class="over"' in part(html, "officers").split(f'data-id="{BINH[0]}"')[1][:20]
    link = f"{AGENCIES}/{BUILDING[0]}/officers.{extension}?month=2026-04"
    assert f'href="{link}"' in html
    header, *body = await download(desk, link, extension)
    by_id = {str(row[header.index("Mã cán bộ")]): row for row in body}
    assert list(by_id) == list(staff)
    assert int(by_id[BINH[0]][header.index("Quá hạn")]) == 1
    assert float(by_id[BINH[0]][header.index("Tỉ lệ quá hạn")]) == 0.2
    assert int(by_id[DAT[0]][header.index("Số hồ sơ đã kết thúc")]) == 0
    assert by_id[DAT[0]][header.index("Cán bộ")] == DAT[1]
    assert await exports_audited(desk) == [
        (
            f"agency_officers:{BUILDING[0]}",
            {"format": extension, "rows": 2, "filters": {"month": "2026-04"}},
        )
    ]


@pytest.mark.parametrize(
    ("rates", "threshold", "line_y", "top_label"),
    [
        ([0.0, 0.05], 0.10, "112", "20 %"),  # all under: the line halfway up
        ([0.31, 1.0], 0.10, "192", "100 %"),  # the scale grows to the highest rate
        ([0.12], 0.25, "112", "50 %"),  # another threshold from the settings
        ([], 0.10, "112", "20 %"),
    ],
)
def test_the_chart_scale_always_shows_the_threshold_line(
    rates: list[float], threshold: float, line_y: str, top_label: str
) -> None:
    items = [
        {"month": f"2026-0{n + 1}", "ended": 10, "late_rate": rate, "over_threshold": False}
        for n, rate in enumerate(rates)
    ]
    drawn = chart(items, threshold)
    assert drawn["threshold_y"] == line_y and drawn["ticks"][-1]["label"] == top_label
    assert drawn["threshold_label"] == f"ngưỡng {threshold * 100:.0f} %"
    for bar, rate in zip(drawn["bars"], rates, strict=True):
        assert float(bar["y"]) + float(bar["height"]) == 212  # every bar stands on the axis
        assert bar["rate"] == f"{rate * 100:.1f}".replace(".", ",").removesuffix(",0") + " %"
