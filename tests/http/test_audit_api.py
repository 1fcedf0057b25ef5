"""The audit API (the README's audit contract): real app, real HTTP, both databases.

Auditors and admins page and filter the violations ledger, record decisions (appended,
never updated), read the statistics, consultations and early warnings, and download each
list as CSV or XLSX; hotline staff are refused everywhere here.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import openpyxl
import pytest
from aiohttp import ClientResponse

from gateway.http.signing import signed_headers
from gateway.settings import Settings
from gateway.storage.db import Database
from gateway.storage.ratings import record_rating
from gateway.storage.tables import (
    consultation_reminders,
    consultations,
    officers,
    ratings,
    violation_decisions,
    violations,
)
from tests.helpers import SOURCES, event
from tests.http.test_staff_api import FRIDAY, StaffApi, assert_problem, fields, start
from tests.staff_helpers import rows

BUILDING = ("000.00.12.H19", "Sở Xây dựng")
LAND = ("000.00.05.H19", "Sở Tài nguyên và Môi trường")
CODES = [f"000.00.12.H19-2604{day:02d}-00{day:02d}" for day in range(1, 10)]
BINH = ("cc-0123", "Trần Thị Bình")
DAT = ("ld-0001", "Nguyễn Hữu Đạt")


@pytest.fixture
async def api(settings: Settings, aiohttp_client: Any) -> StaffApi:
    return await start(settings, aiohttp_client)


class HasDatabase(Protocol):
    """A running app under test (the staff API's or the console's)."""

    @property
    def db(self) -> Database: ...


async def seed_violation(
    api: HasDatabase,
    number: int,
    *,
    rule: str = "phone_missing",
    officer: tuple[str, str] | None = BINH,
    agency: tuple[str, str] = BUILDING,
    dossier: str = CODES[0],
    at: datetime = datetime(2026, 4, 1, 2, 0, tzinfo=UTC),
    suggestion: dict[str, Any] | None = None,
) -> None:
    """Ledger entry ``number`` (its id, entries being seeded in order)."""
    async with api.db.writer.begin() as conn:
        await conn.execute(
            violations.insert().values(
                fingerprint=f"{rule}:{dossier}:{number}",
                rule=rule,
                dossier_code=dossier,
                officer_id=officer[0] if officer else None,
                officer_name=officer[1] if officer else None,
                agency_code=agency[0],
                agency_name=agency[1],
                occurred_at=at,
                detected_at=at + timedelta(minutes=5),
                evidence=[f"evt-{number}"],
                detail="seeded",
                suggestion=suggestion,
            )
        )


async def seed_ledger(api: StaffApi) -> None:
    """Five entries: two officers, two agencies, three rules, three dossiers, three days."""
    first = {"sanction": "nhac_nho", "reassign": False, "supervisor": None, "repeat_of": None}
    await seed_violation(api, 1, suggestion=first)
    await seed_violation(
        api,
        2,
        rule="second_rescheduling",
        dossier=CODES[1],
        at=datetime(2026, 4, 2, 3, 0, tzinfo=UTC),
    )
    await seed_violation(
        api,
        3,
        rule="consultation_unanswered",
        officer=None,
        agency=LAND,
        dossier=CODES[1],
        at=datetime(2026, 4, 3, 3, 0, tzinfo=UTC),
    )
    await seed_violation(
        api,
        4,
        officer=("cc-0456", "Lê Văn Cường"),
        dossier=CODES[2],
        at=datetime(2026, 4, 3, 18, 0, tzinfo=UTC),  # 4 April, 01:00 in Vietnam
    )
    await seed_violation(api, 5, rule="second_rescheduling", dossier=CODES[2])


def ids(answer: Any) -> list[int]:
    return [item["id"] for item in answer["items"]]


# --- who may call -------------------------------------------------------------------------

ROUTES = [
    ("GET", "/v1/audit/violations", None),
    ("GET", "/v1/audit/violations?format=csv", None),
    ("GET", "/v1/audit/violations/1", None),
    ("POST", "/v1/audit/violations/1/decisions", {"decision": "dismissed", "note": "Trùng"}),
    ("GET", "/v1/audit/agencies?month=2026-04", None),
    ("GET", "/v1/audit/officers?month=2026-04", None),
    ("GET", "/v1/audit/consultations?state=overdue", None),
    ("GET", "/v1/audit/warnings", None),
]
ROLES = {None: 401, "hoa": 403, "cu": 401, "lan": "ok", "minh": "ok"}  # cu: disabled


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_only_auditors_and_admins_use_the_audit_api(
    api: StaffApi, method: str, path: str, body: Any
) -> None:
    await seed_ledger(api)
    for user, expected in ROLES.items():
        response = await api.client.request(
            method,
            path,
            headers={"Authorization": f"Bearer {api.tokens[user]}"} if user else {},
            json=body,
        )
        if expected == "ok":
            assert response.status in (200, 201), (user, await response.text())
        else:
            answer = await response.json(content_type=None)
            assert_problem(response, answer, int(expected), path.partition("?")[0])
            if expected == 401:
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
    decided = await rows(api.db.reader, violation_decisions)
    # Only the auditor's and the admin's decisions were recorded, not the hotline's.
    assert [d["staff_id"] for d in decided] == ([2, 3] if method == "POST" else [])


# --- the violations ledger ----------------------------------------------------------------


async def test_violations_are_paged_by_id_with_next_passed_back_as_after(api: StaffApi) -> None:
    await seed_ledger(api)
    first = await api.ok("GET", "/v1/audit/violations?limit=2", user="lan")
    assert ids(first) == [1, 2]
    assert first["next"] == "2"
    second = await api.ok("GET", f"/v1/audit/violations?limit=2&after={first['next']}", user="lan")
    assert (ids(second), second["next"]) == ([3, 4], "4")
    third = await api.ok("GET", "/v1/audit/violations?limit=2&after=4", user="lan")
    assert (ids(third), third["next"]) == ([5], None)
    everything = await api.ok("GET", "/v1/audit/violations", user="lan")
    assert (ids(everything), everything["next"]) == ([1, 2, 3, 4, 5], None)


async def test_a_violation_is_shown_as_the_contract_says(api: StaffApi) -> None:
    await seed_ledger(api)
    items = (await api.ok("GET", "/v1/audit/violations", user="lan"))["items"]
    assert items[0] == {
        "id": 1,
        "rule": "phone_missing",
        "dossier": CODES[0],
        "officer": {"id": "cc-0123", "name": "Trần Thị Bình"},
        "agency": {"code": "000.00.12.H19", "name": "Sở Xây dựng"},
        "occurred_at": "2026-04-01T09:00:00+07:00",
        "detected_at": "2026-04-01T09:05:00+07:00",
        "evidence": ["evt-1"],
        "status": "open",
        "suggestion": {
            "sanction": "nhac_nho",
            "reassign": False,
            "supervisor": None,
            "repeat_of": None,
        },
    }
    # An entry charged to an agency has no officer and no suggestion.
    assert (items[2]["officer"], items[2]["suggestion"]) == (None, None)


FILTERS = [
    ("officer=cc-0123", [1, 2, 5]),
    ("officer=cc-0456", [4]),
    ("agency=000.00.05.H19", [3]),
    ("agency=000.00.12.H19", [1, 2, 4, 5]),
    ("rule=second_rescheduling", [2, 5]),
    (f"dossier={CODES[1]}", [2, 3]),
    ("status=open", [1, 2, 3, 4, 5]),
    ("status=dismissed", []),
    # Dates are local days: entry 4 happened at 01:00 on 4 April in Vietnam.
    ("since=2026-04-02", [2, 3, 4]),
    ("until=2026-04-03", [1, 2, 3, 5]),
    ("since=2026-04-04&until=2026-04-04", [4]),
    ("since=2026-04-02T10:00:00%2B07:00", [2, 3, 4]),  # inclusive
    ("since=2026-04-02T10:00:01%2B07:00", [3, 4]),
    ("officer=cc-0123&rule=phone_missing", [1]),
]


@pytest.mark.parametrize(("query", "expected"), FILTERS)
async def test_each_filter_selects_its_violations(
    api: StaffApi, query: str, expected: list[int]
) -> None:
    await seed_ledger(api)
    answer = await api.ok("GET", f"/v1/audit/violations?{query}", user="lan")
    assert ids(answer) == expected


async def test_a_bad_query_names_every_faulty_parameter(api: StaffApi) -> None:
    path = "/v1/audit/violations"
    query = (
        "?rule=nap&status=closed&since=yesterday&until=2026-13-01&format=pdf"
        "&limit=0&after=x&dossier=nope"
    )
    response, answer = await api.call("GET", path + query, user="lan")
    assert_problem(response, answer, 422, path)
    assert set(fields(answer)) == {
        "rule",
        "status",
        "since",
        "until",
        "format",
        "limit",
        "after",
        "dossier",
    }


async def test_decisions_are_appended_and_the_latest_is_the_status(api: StaffApi) -> None:
    await seed_ledger(api)
    path = "/v1/audit/violations/1/decisions"
    api.clock.at = FRIDAY + timedelta(hours=1)
    applied = await api.ok(
        "POST", path, 201, user="lan", body={"decision": "applied", "sanction": "nhac_nho"}
    )
    assert (applied["id"], applied["status"]) == (1, "applied")
    api.clock.at = FRIDAY + timedelta(hours=2)
    corrected = await api.ok(
        "POST",
        path,
        201,
        user="minh",
        body={"decision": "dismissed", "note": "Công dân đã bổ sung số điện thoại"},
    )
    assert corrected["status"] == "dismissed"
    decided = await rows(api.db.reader, violation_decisions)
    assert [(d["violation_id"], d["decision"], d["sanction"], d["staff_id"]) for d in decided] == [
        (1, "applied", "nhac_nho", 2),
        (1, "dismissed", None, 3),
    ]
    detail = await api.ok("GET", "/v1/audit/violations/1", user="lan")
    assert [(d["decision"], d["decided_at"]) for d in detail["decisions"]] == [
        ("applied", "2026-04-24T17:00:00+07:00"),
        ("dismissed", "2026-04-24T18:00:00+07:00"),
    ]
    assert ids(await api.ok("GET", "/v1/audit/violations?status=dismissed", user="lan")) == [1]
    assert ids(await api.ok("GET", "/v1/audit/violations?status=applied", user="lan")) == []
    open_ = await api.ok("GET", "/v1/audit/violations?status=open", user="lan")
    assert ids(open_) == [2, 3, 4, 5]
    # The entry itself was not touched.
    [entry] = await rows(api.db.reader, violations, violations.c.id == 1)
    assert entry["detail"] == "seeded"


BAD_DECISIONS = [
    ({}, {"decision"}),
    ({"decision": "ignored"}, {"decision"}),
    ({"decision": "applied"}, {"sanction"}),
    ({"decision": "applied", "sanction": "phat_tien"}, {"sanction"}),
    ({"decision": "dismissed"}, {"note"}),
    ({"decision": "dismissed", "note": "   "}, {"note"}),
    ({"decision": "dismissed", "note": "x", "sanction": "canh_cao"}, {"sanction"}),
    ({"decision": "applied", "sanction": "canh_cao", "note": 7}, {"note"}),
]


@pytest.mark.parametrize(("body", "faulty"), BAD_DECISIONS)
async def test_a_bad_decision_is_refused_and_nothing_recorded(
    api: StaffApi, body: dict[str, Any], faulty: set[str]
) -> None:
    await seed_ledger(api)
    path = "/v1/audit/violations/1/decisions"
    response, answer = await api.call("POST", path, user="lan", body=body)
    assert_problem(response, answer, 422, path)
    assert set(fields(answer)) == faulty
    assert await rows(api.db.reader, violation_decisions) == []


async def test_a_decision_on_an_unknown_violation_is_not_found(api: StaffApi) -> None:
    await seed_ledger(api)
    for path in ("/v1/audit/violations/99/decisions", "/v1/audit/violations/99"):
        body = {"decision": "applied", "sanction": "canh_cao"} if "decisions" in path else None
        method = "POST" if body else "GET"
        response, answer = await api.call(method, path, user="lan", body=body)
        assert_problem(response, answer, 404, path)
    assert await rows(api.db.reader, violation_decisions) == []


# --- exports ------------------------------------------------------------------------------


def attachment(response: ClientResponse, extension: str) -> None:
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=")
    assert disposition.rstrip('"').endswith(f".{extension}")


def csv_rows(raw: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def xlsx_rows(raw: bytes) -> list[list[Any]]:
    book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True)
    return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]


async def download(api: StaffApi, path: str, extension: str) -> bytes:
    response = await api.client.get(path, headers={"Authorization": f"Bearer {api.tokens['lan']}"})
    assert response.status == 200, await response.text()
    attachment(response, extension)
    return await response.read()


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
async def test_violations_download_as_a_spreadsheet_with_every_matching_row(
    api: StaffApi, extension: str
) -> None:
    await seed_ledger(api)
    raw = await download(
        api, f"/v1/audit/violations?format={extension}&limit=1&rule=second_rescheduling", extension
    )
    table = csv_rows(raw) if extension == "csv" else xlsx_rows(raw)
    header, *body = table
    # Every matching row, not one page; Vietnamese headers.
    assert len(body) == 2
    assert all(isinstance(h, str) and h for h in header)
    text = json.dumps(table, ensure_ascii=False, default=str)
    assert CODES[1] in text and CODES[2] in text and CODES[0] not in text
    assert "Trần Thị Bình" in text


# --- statistics, consultations, early warnings --------------------------------------------


async def test_the_agency_and_officer_tables_follow_the_contract(api: StaffApi) -> None:
    await seed_ledger(api)
    async with api.db.writer.begin() as conn:
        await conn.execute(
            ratings.insert().values(
                dossier_code=CODES[0],
                agency_code=BUILDING[0],
                zalo_user_id="u-1",
                score=4,
                rater="oa:u-1",
                created_at=datetime(2026, 4, 10, 3, 0, tzinfo=UTC),
            )
        )
    # A two-score rating, from the web page.
    await record_rating(
        api.db.writer,
        dossier_code=CODES[0],
        channel="web",
        rater="phone",
        progress=5,
        quality=2,
        comment=None,
        now=datetime(2026, 4, 11, 3, 0, tzinfo=UTC),
    )
    agencies = await api.ok("GET", "/v1/audit/agencies?month=2026-04", user="lan")
    assert (agencies["from"], agencies["to"], agencies["threshold"]) == ("2026-04", "2026-04", 0.1)
    by_code = {item["agency"]["code"]: item for item in agencies["items"]}
    assert by_code[LAND[0]]["consultations_unanswered"] == 1
    # The old single score counts in the overall average only.
    assert by_code[BUILDING[0]]["ratings"] == {
        "count": 2,
        "average": round(11 / 3, 4),
        "progress_avg": 5.0,
        "progress_count": 1,
        "quality_avg": 2.0,
        "quality_count": 1,
    }
    ranged = await api.ok("GET", "/v1/audit/agencies?from=2026-01&to=2026-06", user="minh")
    assert (ranged["from"], ranged["to"]) == ("2026-01", "2026-06")
    officers_ = await api.ok("GET", "/v1/audit/officers?month=2026-04", user="lan")
    assert {"from", "to", "threshold", "items"} == set(officers_)


@pytest.mark.parametrize(
    ("query", "faulty"),
    [
        ("", {"month"}),
        ("?month=2026-4", {"month"}),
        ("?from=2026-01", {"to"}),
        ("?month=2026-04&format=pdf", {"format"}),
    ],
)
async def test_a_bad_statistics_query_names_its_parameters(
    api: StaffApi, query: str, faulty: set[str]
) -> None:
    for path in ("/v1/audit/agencies", "/v1/audit/officers"):
        response, answer = await api.call("GET", path + query, user="lan")
        assert_problem(response, answer, 422, path)
        assert set(fields(answer)) == faulty


@pytest.mark.parametrize("extension", ["csv", "xlsx"])
async def test_the_agency_table_downloads_with_the_same_numbers(
    api: StaffApi, extension: str
) -> None:
    await seed_ledger(api)
    path = "/v1/audit/agencies?month=2026-04"
    shown = await api.ok("GET", path, user="lan")
    raw = await download(api, f"{path}&format={extension}", extension)
    table = csv_rows(raw) if extension == "csv" else xlsx_rows(raw)
    header, *body = table
    assert len(body) == len(shown["items"])
    code, unanswered, late_rate = (
        header.index(name) for name in ("Mã cơ quan", "Lấy ý kiến không trả lời", "Tỉ lệ quá hạn")
    )
    for item, row in zip(shown["items"], body, strict=True):
        assert str(row[code]) == item["agency"]["code"]
        assert float(row[unanswered]) == item["consultations_unanswered"]
        assert float(row[late_rate]) == item["late_rate"]
    assert any(str(row[code]) == LAND[0] and float(row[unanswered]) == 1 for row in body)


async def seed_consultations(api: StaffApi) -> None:
    due = datetime(2026, 4, 10, 10, 0, tzinfo=UTC)
    values = [
        ("yk-overdue", None),
        ("yk-late", datetime(2026, 4, 20, 3, 0, tzinfo=UTC)),
        ("yk-on-time", datetime(2026, 4, 9, 3, 0, tzinfo=UTC)),
    ]
    async with api.db.writer.begin() as conn:
        for consultation_id, answered_at in values:
            await conn.execute(
                consultations.insert().values(
                    dossier_code=CODES[3],
                    consultation_id=consultation_id,
                    agency_code=LAND[0],
                    agency_name=LAND[1],
                    requested_at=datetime(2026, 4, 6, 3, 0, tzinfo=UTC),
                    due_at=due,
                    answered_at=answered_at,
                )
            )
        for number, copied_to in ((1, None), (2, "Sở Nội vụ")):
            await conn.execute(
                consultation_reminders.insert().values(
                    dossier_code=CODES[3],
                    consultation_id="yk-overdue",
                    number=number,
                    agency_code=LAND[0],
                    copied_to=copied_to,
                    created_at=due + timedelta(days=3 * (number - 1)),
                )
            )


async def test_consultations_are_listed_by_state_with_their_reminders(api: StaffApi) -> None:
    await seed_consultations(api)
    path = "/v1/audit/consultations?state="
    overdue = (await api.ok("GET", path + "overdue", user="lan"))["items"]
    assert overdue == [
        {
            "dossier": CODES[3],
            "consultation_id": "yk-overdue",
            "agency": {"code": LAND[0], "name": LAND[1]},
            "requested_at": "2026-04-06T10:00:00+07:00",
            "due_at": "2026-04-10T17:00:00+07:00",
            "answered_at": None,
            "reminders": [
                {"number": 1, "at": "2026-04-10T17:00:00+07:00", "copied_to": None},
                {"number": 2, "at": "2026-04-13T17:00:00+07:00", "copied_to": "Sở Nội vụ"},
            ],
        }
    ]
    reminded = (await api.ok("GET", path + "reminded", user="lan"))["items"]
    assert [c["consultation_id"] for c in reminded] == ["yk-overdue"]
    late = (await api.ok("GET", path + "answered_late", user="lan"))["items"]
    assert [(c["consultation_id"], c["answered_at"]) for c in late] == [
        ("yk-late", "2026-04-20T10:00:00+07:00")
    ]
    raw = await download(api, path + "overdue&format=csv", "csv")
    assert "yk-overdue" in raw.decode("utf-8-sig")
    response, answer = await api.call("GET", "/v1/audit/consultations?state=late", user="lan")
    assert_problem(response, answer, 422, "/v1/audit/consultations")
    assert set(fields(answer)) == {"state"}


async def test_warnings_list_a_finished_dossier_not_handed_over(api: StaffApi) -> None:
    # The dossier start() seeds was finished on Monday 20 April and never delivered.
    quiet = await api.ok("GET", "/v1/audit/warnings", user="lan")
    assert quiet == {"due_soon": [], "undelivered": []}
    api.clock.at = datetime(2026, 5, 12, 3, 0, tzinfo=UTC)
    late = await api.ok("GET", "/v1/audit/warnings", user="lan")
    assert [w["dossier"] for w in late["undelivered"]] == ["000.00.12.H19-260401-0001"]
    assert late["undelivered"][0]["finished_date"] == "2026-04-20"


# --- the hotline's finding (through the staff API) ---------------------------------------


async def post_events(api: StaffApi, *bodies: dict[str, Any]) -> None:
    for body in bodies:
        raw = json.dumps(body, ensure_ascii=False).encode()
        headers = signed_headers("onestop", SOURCES["onestop"], raw, api.clock.at.timestamp())
        headers["Content-Type"] = "application/json"
        response = await api.client.post("/v1/events", data=raw, headers=headers)
        assert response.status == 202, await response.text()


async def finished_dossier(api: StaffApi, code: str, finished_at: str) -> None:
    """A dossier received and marked finished by Bình, through signed events."""
    await post_events(
        api,
        event(
            "dossier.received",
            code=code,
            at="2025-01-05T08:00:00+07:00",
            received_at="2025-01-05T08:00:00+07:00",
            due_at="2026-12-30T17:00:00+07:00",
        ),
        event(
            "dossier.finished",
            code=code,
            at=finished_at,
            received_at="2025-01-05T08:00:00+07:00",
            due_at="2026-12-30T17:00:00+07:00",
        ),
    )


async def confirm(api: StaffApi, code: str, report_id: int, user: str = "hoa") -> Any:
    await api.ok(
        "POST",
        "/v1/reports",
        status=201,
        body={
            "dossier": code,
            "kind": "false_closure",
            "description": "Báo đã trả kết quả nhưng tôi chưa nhận được.",
            "phone": "0912 345 678",
        },
    )
    return await api.ok(
        "POST",
        f"/v1/reports/{report_id}/transitions",
        user=user,
        body={"to": "resolved", "note": "Đã xác minh với Sở", "finding": "confirmed"},
    )


async def seed_directory(api: StaffApi) -> None:
    async with api.db.writer.begin() as conn:
        for ident, name, boss in ((*BINH, DAT[0]), (*DAT, None)):
            await conn.execute(
                officers.insert().values(
                    id=ident,
                    name=name,
                    agency_code=BUILDING[0],
                    unit="Bộ phận một cửa",
                    supervisor_id=boss,
                    origin="import",
                    created_at=FRIDAY,
                    updated_at=FRIDAY,
                )
            )


async def test_confirmed_false_closures_climb_the_sanction_ladder(api: StaffApi) -> None:
    await seed_directory(api)
    await finished_dossier(api, CODES[5], "2026-02-10T15:00:00+07:00")
    await finished_dossier(api, CODES[6], "2026-04-10T15:00:00+07:00")
    # The report start() seeds a dossier for is not used; these are reports 1 and 2.
    first_report = await confirm(api, CODES[5], 1)
    assert (first_report["finding"], first_report["status"]) == ("confirmed", "resolved")
    second_report = await confirm(api, CODES[6], 2)
    assert second_report["finding"] == "confirmed"

    ledger = await api.ok("GET", "/v1/audit/violations?rule=false_closure", user="lan")
    first, second = ledger["items"]
    assert first == {
        "id": first["id"],
        "rule": "false_closure",
        "dossier": CODES[5],
        "officer": {"id": "cc-0123", "name": "Trần Thị Bình"},
        "agency": {"code": BUILDING[0], "name": BUILDING[1]},
        "occurred_at": "2026-02-10T15:00:00+07:00",
        "detected_at": "2026-04-24T16:00:00+07:00",
        "evidence": [f"evt-{CODES[5]}-finished-2026-02-10T15:00:00+07:00"],
        "status": "open",
        "suggestion": {
            "sanction": "khien_trach",
            "reassign": False,
            "supervisor": None,
            "repeat_of": None,
        },
    }
    assert second["suggestion"] == {
        "sanction": "canh_cao",
        "reassign": True,
        "supervisor": {"id": "ld-0001", "name": "Nguyễn Hữu Đạt"},
        "repeat_of": first["id"],
    }
    stored = await rows(api.db.reader, violations)
    assert [v["report_id"] for v in stored] == [1, 2]


async def test_a_dismissed_false_closure_is_not_counted_as_a_repeat(api: StaffApi) -> None:
    await finished_dossier(api, CODES[5], "2026-02-10T15:00:00+07:00")
    await finished_dossier(api, CODES[6], "2026-04-10T15:00:00+07:00")
    await confirm(api, CODES[5], 1)
    await api.ok(
        "POST",
        "/v1/audit/violations/1/decisions",
        201,
        user="lan",
        body={"decision": "dismissed", "note": "Sở đã trả kết quả, công dân nhầm hồ sơ"},
    )
    await confirm(api, CODES[6], 2)
    second = (await api.ok("GET", "/v1/audit/violations?dossier=" + CODES[6], user="lan"))["items"]
    assert [v["suggestion"]["sanction"] for v in second] == ["khien_trach"]


async def test_a_false_closure_outside_the_window_starts_the_ladder_again(api: StaffApi) -> None:
    await finished_dossier(api, CODES[5], "2025-03-02T15:00:00+07:00")
    await finished_dossier(api, CODES[6], "2026-04-10T15:00:00+07:00")
    await confirm(api, CODES[5], 1)
    await confirm(api, CODES[6], 2)
    ledger = await api.ok("GET", "/v1/audit/violations?rule=false_closure", user="lan")
    assert [v["suggestion"]["sanction"] for v in ledger["items"]] == ["khien_trach"] * 2


async def test_an_admin_correcting_a_confirmed_finding_dismisses_its_violation(
    api: StaffApi,
) -> None:
    await finished_dossier(api, CODES[5], "2026-02-10T15:00:00+07:00")
    await confirm(api, CODES[5], 1)
    path = "/v1/reports/1/transitions"
    await api.ok("POST", path, user="minh", body={"to": "open"})
    body = {"to": "resolved", "note": "Công dân đã nhận", "finding": "not_confirmed"}
    response, answer = await api.call("POST", path, body=body)  # the hotline may not
    assert_problem(response, answer, 403, path)
    corrected = await api.ok("POST", path, user="minh", body=body)
    assert corrected["finding"] == "not_confirmed"
    [violation] = (await api.ok("GET", "/v1/audit/violations", user="lan"))["items"]
    assert violation["status"] == "dismissed"
    [decision] = await rows(api.db.reader, violation_decisions)
    assert (decision["decision"], decision["staff_id"]) == ("dismissed", 3)
    assert len(await rows(api.db.reader, violations)) == 1
