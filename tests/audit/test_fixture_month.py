"""A month of dossiers whose statistics were computed by hand, posted as signed events.

October 2026 (no holidays; the 3rd, 4th, 10th, 11th… are weekends) at Sở Xây dựng: each
dossier is there for one rule of the national on-time definition. The figures must come
out exactly, from the API and from its CSV and XLSX exports, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
import pytest

from gateway.settings import Settings
from tests.audit.test_scenario import (
    AGENCY,
    BINH,
    CONSULTED,
    CUONG,
    confirm_false_closure,
    hotline_and_auditor,
    tthc,
)
from tests.helpers import Gateway, event

pytestmark = pytest.mark.slow

RECEIVED = "2026-10-01T08:00:00+07:00"
DUE = "2026-10-09T17:00:00+07:00"  # a Friday


def code(n: int) -> str:
    return f"000.00.12.H19-261001-{n:04d}"


def ev(n: int, type_: str, at: str, data: dict[str, Any] | None = None, **dossier: Any) -> Any:
    changes = {"received_at": RECEIVED, "due_at": DUE, "agency": dict(AGENCY)} | dossier
    body = event(
        type_, id=f"m{n}-{type_.split('.')[1]}-{at[:16]}", at=at, code=code(n), data=data, **changes
    )
    body["actor"] = dict(BINH)
    return body


def late_by(n: int, at: str, new_due: str) -> Any:
    return ev(n, "dossier.delayed", at, {"new_due_at": new_due, "reason": "Chờ thẩm định"})


def month() -> list[Any]:
    """In posting order."""
    asks = {
        "consultation_id": "yk-1",
        "agency": dict(CONSULTED),
        "due_at": "2026-10-05T17:00:00+07:00",
    }
    supplement = {"reason": "Thiếu bản vẽ", "documents": ["Bản vẽ mặt bằng"]}
    return [
        # 1: on time; its consultation was answered a day late by the consulted agency;
        #    the hotline later confirms it as a false closure.
        ev(1, "dossier.received", RECEIVED),
        ev(1, "dossier.consultation_requested", "2026-10-02T09:00:00+07:00", asks),
        ev(
            1,
            "dossier.consultation_answered",
            "2026-10-06T09:00:00+07:00",
            {"consultation_id": "yk-1"},
        ),
        ev(1, "dossier.finished", "2026-10-08T10:00:00+07:00"),
        # 2: finished on the evening of its due day: on time.
        ev(2, "dossier.received", RECEIVED),
        ev(2, "dossier.finished", "2026-10-09T19:30:00+07:00"),
        # 3: paused across its due date, finished later: late, no apology.
        ev(3, "dossier.received", RECEIVED),
        ev(3, "dossier.paused", "2026-10-07T10:00:00+07:00", {"reason": "Chờ xác minh"}),
        ev(3, "dossier.resumed", "2026-10-13T09:00:00+07:00"),
        ev(3, "dossier.finished", "2026-10-14T10:00:00+07:00"),
        # 4: waited for the citizen's supplement from Fri 2 to Tue 6 (two working days):
        #    held to Tue 13, finished then: on time.
        ev(4, "dossier.received", RECEIVED),
        ev(4, "dossier.supplement_requested", "2026-10-02T10:00:00+07:00", supplement),
        ev(4, "dossier.processing", "2026-10-06T09:00:00+07:00"),
        ev(4, "dossier.finished", "2026-10-13T10:00:00+07:00"),
        # 5: apologised on the due day itself (too late to be an apology in time, but
        #    not after the date): late, with apology.
        ev(5, "dossier.received", RECEIVED),
        late_by(5, "2026-10-09T09:00:00+07:00", "2026-10-16T17:00:00+07:00"),
        ev(5, "dossier.finished", "2026-10-15T10:00:00+07:00", due_at="2026-10-16T17:00:00+07:00"),
        # 6: apologised in good time, finished on the new date: late, with apology.
        ev(6, "dossier.received", RECEIVED),
        late_by(6, "2026-10-06T09:00:00+07:00", "2026-10-14T17:00:00+07:00"),
        ev(6, "dossier.finished", "2026-10-14T10:00:00+07:00"),
        # 7: out of order: the finish arrives before the processing step it follows.
        ev(7, "dossier.received", RECEIVED),
        ev(7, "dossier.finished", "2026-10-08T10:00:00+07:00"),
        ev(7, "dossier.processing", "2026-10-05T09:00:00+07:00"),
        # 8: two supplement requests: late, although finished early.
        ev(8, "dossier.received", RECEIVED),
        ev(8, "dossier.supplement_requested", "2026-10-02T10:00:00+07:00", supplement),
        ev(8, "dossier.processing", "2026-10-05T09:00:00+07:00"),
        ev(8, "dossier.supplement_requested", "2026-10-05T15:00:00+07:00", supplement),
        ev(8, "dossier.processing", "2026-10-06T09:00:00+07:00"),
        ev(8, "dossier.finished", "2026-10-07T10:00:00+07:00"),
        # 9: still open, long past its due date.
        ev(9, "dossier.received", RECEIVED),
        ev(9, "dossier.processing", "2026-10-02T09:00:00+07:00"),
        # 10: no phone number at receipt; on time.
        ev(10, "dossier.received", RECEIVED, applicant={"name": "Phạm Văn Khoa"}),
        ev(10, "dossier.finished", "2026-10-05T10:00:00+07:00"),
        # 11: withdrawn (with the head's approval) before its due date: ended, on time.
        ev(11, "dossier.received", RECEIVED),
        ev(11, "dossier.withdrawn", "2026-10-03T10:00:00+07:00"),
    ]


BUILDING = {
    "agency": AGENCY,
    "received": 11,
    "ended": 10,
    "on_time": 6,  # 1, 2, 4, 7, 10, 11
    "late": 4,  # 3, 5, 6, 8
    "late_with_apology": 2,  # 5, 6
    "late_rate": 0.4,
    "over_threshold": True,
    "open_overdue": 1,  # 9
    "missing_phone": 1,  # 10
    "missing_phone_rate": 0.0909,
    "consultations_late": 0,
    "consultations_unanswered": 0,
    "false_closures_confirmed": 1,  # 1
    "ratings": {
        "count": 0,
        "average": None,
        "progress_avg": None,
        "progress_count": 0,
        "quality_avg": None,
        "quality_count": 0,
    },
}
CONSULTED_AGENCY = {
    "agency": CONSULTED,
    "received": 0,
    "ended": 0,
    "on_time": 0,
    "late": 0,
    "late_with_apology": 0,
    "late_rate": 0.0,
    "over_threshold": False,
    "open_overdue": 0,
    "missing_phone": 0,
    "missing_phone_rate": 0.0,
    "consultations_late": 1,
    "consultations_unanswered": 0,
    "false_closures_confirmed": 0,
    "ratings": {
        "count": 0,
        "average": None,
        "progress_avg": None,
        "progress_count": 0,
        "quality_avg": None,
        "quality_count": 0,
    },
}
NUMBERS = (
    "received",
    "ended",
    "on_time",
    "late",
    "late_with_apology",
    "open_overdue",
    "missing_phone",
    "consultations_late",
    "false_closures_confirmed",
)
HEADERS = {
    "Mã cơ quan": "code",
    "Số hồ sơ tiếp nhận": "received",
    "Số hồ sơ đã giải quyết": "ended",
    "Đúng hạn": "on_time",
    "Quá hạn": "late",
    "Quá hạn có thư xin lỗi": "late_with_apology",
    "Đang giải quyết đã quá hạn": "open_overdue",
    "Không có số điện thoại di động": "missing_phone",
    "Lấy ý kiến trả lời trễ": "consultations_late",
    "Báo kết thúc sai đã xác minh": "false_closures_confirmed",
    "Tỉ lệ quá hạn": "late_rate",
}


def read_back(header: list[Any], rows: list[list[Any]]) -> dict[str, dict[str, float]]:
    """Agency code → the numbers a spreadsheet holds, by their Vietnamese headers."""
    at = {HEADERS[h]: i for i, h in enumerate(header) if h in HEADERS}
    return {
        str(row[at["code"]]): {
            name: float(str(row[at[name]]).replace(",", ".")) for name in (*NUMBERS, "late_rate")
        }
        for row in rows
    }


def expected_numbers() -> dict[str, dict[str, float]]:
    return {
        item["agency"]["code"]: {name: float(item[name]) for name in (*NUMBERS, "late_rate")}
        for item in (BUILDING, CONSULTED_AGENCY)
    }


async def test_a_hand_computed_month(gateway: Gateway, settings: Settings) -> None:
    for body in month():
        status, answer, _ = await gateway.post(body)
        assert status == 202, answer
    await tthc(settings, "audit", "rebuild")
    hotline, auditor = await hotline_and_auditor(gateway, settings)
    await confirm_false_closure(hotline, code(1))

    table = await auditor.call("GET", "/v1/audit/agencies?month=2026-10", 200)
    assert (table["from"], table["to"], table["threshold"]) == ("2026-10", "2026-10", 0.1)
    items = {item["agency"]["code"]: item for item in table["items"]}
    assert items == {AGENCY["code"]: BUILDING, CONSULTED["code"]: CONSULTED_AGENCY}

    # The officer who received and closed them all.
    officers = await auditor.call("GET", "/v1/audit/officers?month=2026-10", 200)
    (binh,) = [i for i in officers["items"] if i["officer"]["id"] == BINH["id"]]
    assert binh["officer"] == {"id": BINH["id"], "name": BINH["name"]}
    assert {
        k: binh[k]
        for k in (
            "received",
            "ended",
            "on_time",
            "late",
            "late_with_apology",
            "missing_phone",
            "false_closures_confirmed",
        )
    } == {
        "received": 11,
        "ended": 10,
        "on_time": 6,
        "late": 4,
        "late_with_apology": 2,
        "missing_phone": 1,
        "false_closures_confirmed": 1,
    }
    assert CUONG["id"] not in {i["officer"]["id"] for i in officers["items"]}

    # The same numbers in the exports, read back with a CSV reader and openpyxl.
    response = await auditor.client.get(
        "/v1/audit/agencies?month=2026-10&format=csv", headers=auditor.headers
    )
    assert response.status == 200
    text = (await response.read()).decode("utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert read_back(header, rows) == expected_numbers()

    response = await auditor.client.get(
        "/v1/audit/agencies?month=2026-10&format=xlsx", headers=auditor.headers
    )
    assert response.status == 200
    sheet = openpyxl.load_workbook(io.BytesIO(await response.read())).active
    assert sheet is not None
    header, *rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert read_back(header, rows) == expected_numbers()


def test_the_fixture_reads_as_a_month_of_working_days() -> None:
    """Guards the hand computation: the days it relies on are what it says they are."""
    from datetime import date

    from gateway.domain.calendar import WorkingCalendar

    calendar = WorkingCalendar()
    days = [date(2026, 10, d) for d in (2, 5, 6, 9, 13)]
    assert all(calendar.is_working_day(d) for d in days)
    assert not any(calendar.is_working_day(date(2026, 10, d)) for d in (3, 4, 10, 11))
