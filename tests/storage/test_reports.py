"""Citizens' reports in the database, on SQLite and PostgreSQL.

A report is created about a known dossier, numbered, promised an answer in working
days and attributed to the officer who closed the dossier; each move through the
workflow is one transaction with exactly one notice to the citizen; a refused move
leaves every table as it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.calendar import DEFAULT_OVERRIDES_FILE, WorkingCalendar, load_overrides
from gateway.errors import Conflict, NotFound, PermissionDenied
from gateway.storage import reports as store
from gateway.storage.db import Database
from gateway.storage.tables import chat_messages, events, notices, report_transitions, reports
from tests.staff_helpers import empty_staff_tables, rows, seed_dossier

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
CALENDAR = WorkingCalendar(load_overrides(DEFAULT_OVERRIDES_FILE))
CODE = "000.00.12.H19-260401-0001"
OTHER = "000.00.05.H19-260402-0002"
PHONE = "+84912345678"
# Friday 24 April 2026, 16:00 in Vietnam. The next working days skip the weekend, the
# Hùng Kings' day off (Monday 27), 30 April, 1 May and the weekend after.
FRIDAY = datetime(2026, 4, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    await empty_staff_tables(database_url)
    database = Database.open(database_url)
    try:
        await seed_dossier(database.writer, CODE)
        yield database
    finally:
        await database.close()


async def create(
    db: Database,
    *,
    code: str = CODE,
    now: datetime = FRIDAY,
    phone: str | None = PHONE,
    zalo_user_id: str | None = None,
    kind: str = "false_closure",
    source: str = "phone",
    actor: str = "staff:1",
) -> tuple[store.ReportRow, list[str]]:
    return await store.create_report(
        db.writer,
        kind=kind,
        source=source,
        dossier_code=code,
        description="Hồ sơ báo đã trả nhưng tôi chưa nhận được giấy phép.",
        zalo_user_id=zalo_user_id,
        phone_e164=phone,
        calendar=CALENDAR,
        answer_working_days=5,
        now=now,
        actor=actor,
    )


async def snapshot(db: Database) -> dict[str, list[dict[str, Any]]]:
    return {
        "reports": await rows(db.reader, reports),
        "report_transitions": await rows(db.reader, report_transitions),
        "notices": await rows(db.reader, notices),
    }


# --- creating -----------------------------------------------------------------------------


async def test_a_report_is_numbered_promised_an_answer_and_attributed(db: Database) -> None:
    report, notice_ids = await create(db)

    assert report.id == 1
    assert report.number == "PA-2026-000001"
    assert (report.status, report.status_notes) == ("open", None)
    # Five working days after Friday 16:00: 28, 29 April, 4, 5, 6 May; closing time.
    assert report.expected_at == datetime(2026, 5, 6, 17, 0, tzinfo=ZONE)
    assert (report.agency_code, report.agency_name) == ("000.00.12.H19", "Sở Xây dựng")
    assert (report.officer_id, report.officer_name) == ("cc-0123", "Trần Thị Bình")

    [stored] = await rows(db.reader, reports)
    assert stored == {
        "id": 1,
        "number": "PA-2026-000001",
        "kind": "false_closure",
        "source": "phone",
        "status": "open",
        "status_notes": None,
        "dossier_code": CODE,
        "agency_code": "000.00.12.H19",
        "agency_name": "Sở Xây dựng",
        "officer_id": "cc-0123",
        "officer_name": "Trần Thị Bình",
        "zalo_user_id": None,
        "phone_e164": PHONE,
        "description": "Hồ sơ báo đã trả nhưng tôi chưa nhận được giấy phép.",
        "expected_at": datetime(2026, 5, 6, 10, 0, tzinfo=UTC),
        "finding": None,
        "created_at": FRIDAY,
        "updated_at": FRIDAY,
        "assignee_id": None,
        "assigned_at": None,
        "proof": None,
    }
    [step] = await rows(db.reader, report_transitions)
    assert (step["report_id"], step["from_status"], step["to_status"]) == (1, None, "open")
    assert (step["actor"], step["at"], step["note"]) == ("staff:1", FRIDAY, None)

    [notice] = await rows(db.reader, notices)
    assert notice_ids == [notice["id"]]
    assert notice["kind"] == "report_received"
    assert (notice["state"], notice["lane"]) == ("created", "urgent")
    assert (notice["dossier_code"], notice["phone_e164"], notice["zalo_user_id"]) == (
        CODE,
        PHONE,
        None,
    )
    assert notice["params"] == {
        "report_number": "PA-2026-000001",
        "dossier_code": CODE,
        "expected_at": "2026-05-06T17:00:00+07:00",
    }
    assert notice["dedupe_key"] == f"report:1:{step['id']}"


async def test_numbers_follow_ids_and_the_local_year(db: Database) -> None:
    await seed_dossier(db.writer, OTHER, finished_by=None, agency=("000.00.05.H19", "Sở TN&MT"))
    first, _ = await create(db, now=datetime(2025, 12, 31, 16, 59, tzinfo=UTC))
    # 17:00 UTC on New Year's Eve is already 2026 in Vietnam.
    second, _ = await create(db, code=OTHER, now=datetime(2025, 12, 31, 17, 0, tzinfo=UTC))
    assert (first.number, second.number) == ("PA-2025-000001", "PA-2026-000002")
    assert (second.agency_code, second.officer_id, second.officer_name) == (
        "000.00.05.H19",
        None,
        None,
    )
    assert [r["number"] for r in await rows(db.reader, reports)] == [
        "PA-2025-000001",
        "PA-2026-000002",
    ]


async def test_a_report_about_an_unknown_dossier_writes_nothing(db: Database) -> None:
    with pytest.raises(NotFound, match=OTHER):
        await create(db, code=OTHER)
    assert await snapshot(db) == {"reports": [], "report_transitions": [], "notices": []}


async def test_who_the_notice_goes_to(db: Database) -> None:
    on_zalo, zalo_ids = await create(db, phone=None, zalo_user_id="u-1", source="zalo")
    nobody, nobody_ids = await create(db, phone=None)
    by_report = {n["dedupe_key"].split(":")[1]: n for n in await rows(db.reader, notices)}

    reached = by_report[str(on_zalo.id)]
    assert zalo_ids == [reached["id"]]
    assert (reached["zalo_user_id"], reached["phone_e164"], reached["state"]) == (
        "u-1",
        None,
        "created",
    )
    # Recorded, so the report's story is complete, but nothing to send.
    unreachable = by_report[str(nobody.id)]
    assert nobody_ids == []
    assert unreachable["state"] == "no_recipient"


# --- moving through the workflow ----------------------------------------------------------


async def test_each_transition_creates_exactly_one_notice(db: Database) -> None:
    report, created_ids = await create(db)
    later = FRIDAY + timedelta(days=4)  # Tuesday 28 April, 16:00 local

    moved, moved_ids = await store.transition(
        db.writer, report.id, "in_progress", "Đã chuyển Sở Xây dựng kiểm tra", "staff:2", later
    )
    assert (moved.status, moved.status_notes, moved.updated_at) == (
        "in_progress",
        "Đã chuyển Sở Xây dựng kiểm tra",
        later,
    )
    assert moved.expected_at == report.expected_at
    _, resolved_ids = await store.transition(
        db.writer, report.id, "resolved", "Đã trả kết quả", "staff:2", later + timedelta(hours=1)
    )
    reopened, reopened_ids = await store.transition(
        db.writer,
        report.id,
        "open",
        None,
        "staff:3",
        later + timedelta(hours=2),
        may_reopen=True,
        expected_at=datetime(2026, 5, 6, 17, 0, tzinfo=ZONE),
    )
    assert reopened.status_notes is None

    steps = await rows(db.reader, report_transitions)
    assert [(s["from_status"], s["to_status"], s["actor"]) for s in steps] == [
        (None, "open", "staff:1"),
        ("open", "in_progress", "staff:2"),
        ("in_progress", "resolved", "staff:2"),
        ("resolved", "open", "staff:3"),
    ]
    sent = await rows(db.reader, notices)
    assert len(sent) == 4
    sent.sort(key=lambda n: n["created_at"])
    assert [n["kind"] for n in sent] == [
        "report_received",
        "report_in_progress",
        "report_resolved",
        "report_received",
    ]
    assert [n["dedupe_key"] for n in sent] == [f"report:1:{s['id']}" for s in steps]
    assert [[n["id"]] for n in sent] == [created_ids, moved_ids, resolved_ids, reopened_ids]
    assert sent[1]["params"]["status_note"] == "Đã chuyển Sở Xây dựng kiểm tra"
    assert sent[2]["params"]["status_note"] == "Đã trả kết quả"
    assert "status_note" not in sent[3]["params"]
    assert sent[3]["params"]["expected_at"] == "2026-05-06T17:00:00+07:00"
    assert all(n["state"] == "created" and n["phone_e164"] == PHONE for n in sent)

    [stored] = await rows(db.reader, reports)
    assert (stored["status"], stored["updated_at"]) == ("open", later + timedelta(hours=2))
    assert stored["expected_at"] == datetime(2026, 5, 6, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("path", "to", "may_reopen", "error", "message"),
    [
        ((), "open", True, Conflict, "already open"),
        (("in_progress",), "open", True, Conflict, "cannot go from in_progress to open"),
        (("in_progress",), "in_progress", False, Conflict, "already in_progress"),
        (("rejected",), "in_progress", True, Conflict, "rejected, which is final"),
        (("resolved",), "rejected", True, Conflict, "resolved, which is final"),
        (("resolved",), "open", False, PermissionDenied, "only an admin may reopen"),
    ],
)
async def test_illegal_transitions_are_refused_and_change_nothing(
    db: Database,
    path: tuple[str, ...],
    to: str,
    may_reopen: bool,
    error: type[Exception],
    message: str,
) -> None:
    report, _ = await create(db)
    for step in path:
        await store.transition(db.writer, report.id, step, "ghi chú", "staff:1", FRIDAY)
    before = await snapshot(db)
    with pytest.raises(error, match=message):
        await store.transition(
            db.writer,
            report.id,
            to,
            "x",
            "staff:9",
            FRIDAY + timedelta(days=1),
            may_reopen=may_reopen,
        )
    assert await snapshot(db) == before


async def test_moving_an_unknown_report_is_not_found(db: Database) -> None:
    await create(db)
    before = await snapshot(db)
    with pytest.raises(NotFound, match="no report 2"):
        await store.transition(db.writer, 2, "in_progress", None, "staff:1", FRIDAY)
    assert await snapshot(db) == before


async def test_two_officers_closing_at_once_cannot_both_win(db: Database) -> None:
    report, _ = await create(db)
    outcomes = await asyncio.gather(
        store.transition(db.writer, report.id, "resolved", "Đã trả", "staff:1", FRIDAY),
        store.transition(db.writer, report.id, "rejected", "Sai hồ sơ", "staff:2", FRIDAY),
        return_exceptions=True,
    )
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert isinstance(lost[0], Conflict)
    winner, _ = won[0]
    steps = await rows(db.reader, report_transitions)
    assert [s["to_status"] for s in steps] == ["open", winner.status]
    assert len(await rows(db.reader, notices)) == 2
    [stored] = await rows(db.reader, reports)
    assert stored["status"] == winner.status


# --- reading ------------------------------------------------------------------------------


async def test_reports_are_listed_by_filter_in_keyset_pages(db: Database) -> None:
    await seed_dossier(db.writer, OTHER, agency=("000.00.05.H19", "Sở TN&MT"))
    days = [FRIDAY + timedelta(days=i) for i in range(5)]
    made = [(await create(db, code=(CODE, OTHER)[i % 2], now=d))[0] for i, d in enumerate(days)]
    await store.transition(db.writer, made[1].id, "in_progress", None, "staff:1", days[4])
    await store.transition(db.writer, made[2].id, "rejected", "Trùng", "staff:1", days[4])

    everything = await store.list_reports(db.reader)
    assert [r.id for r in everything.reports] == [1, 2, 3, 4, 5]
    assert everything.next_after is None
    assert everything.reports[1].status == "in_progress"

    active = await store.list_reports(db.reader, statuses=["open", "in_progress"])
    assert [r.id for r in active.reports] == [1, 2, 4, 5]
    other_agency = await store.list_reports(db.reader, agency="000.00.05.H19")
    assert [r.id for r in other_agency.reports] == [2, 4]
    since = await store.list_reports(db.reader, since=days[3])
    assert [r.id for r in since.reports] == [4, 5]
    combined = await store.list_reports(
        db.reader, statuses=["open"], agency="000.00.12.H19", since=days[1]
    )
    assert [r.id for r in combined.reports] == [5]

    first = await store.list_reports(db.reader, limit=2)
    assert ([r.id for r in first.reports], first.next_after) == ([1, 2], 2)
    second = await store.list_reports(db.reader, limit=2, after_id=first.next_after)
    assert ([r.id for r in second.reports], second.next_after) == ([3, 4], 4)
    last = await store.list_reports(db.reader, limit=2, after_id=second.next_after)
    assert ([r.id for r in last.reports], last.next_after) == ([5], None)
    exact = await store.list_reports(db.reader, limit=5)
    assert exact.next_after is None


async def test_a_report_is_read_with_its_whole_story(db: Database) -> None:
    report, _ = await create(db, zalo_user_id="u-1", source="zalo")
    await store.transition(db.writer, report.id, "in_progress", "Đang xác minh", "staff:2", FRIDAY)
    async with db.writer.begin() as conn:
        await conn.execute(
            events.insert().values(
                source_id="onestop",
                event_id="evt-fin",
                type="dossier.finished",
                dossier_code=CODE,
                occurred_at=FRIDAY - timedelta(days=3),
                recorded_at=FRIDAY - timedelta(days=3),
                actor_id="cc-0123",
                actor_name="Trần Thị Bình",
                superseded=False,
                fingerprint="f" * 64,
                body={},
                answer={},
            )
        )
        await conn.execute(
            notices.insert().values(
                id="n" * 32,
                dossier_code=CODE,
                source_id="onestop",
                event_id="evt-fin",
                kind="invitation",
                dedupe_key="onestop/evt-fin/invitation",
                phone_e164=PHONE,
                params={},
                state="delivered",
                lane="urgent",
                attempts=1,
                created_at=FRIDAY - timedelta(days=3),
                updated_at=FRIDAY - timedelta(days=3),
            )
        )
        for text, report_id in (("Tôi chưa nhận được giấy phép", report.id), ("Xin chào", None)):
            await conn.execute(
                chat_messages.insert().values(
                    user_id="u-1",
                    direction="in",
                    text=text,
                    report_id=report_id,
                    dossier_code=CODE,
                    created_at=FRIDAY,
                )
            )

    detail = await store.get_report(db.reader, report.id)
    assert detail is not None
    assert detail.report.status == "in_progress"
    assert detail.report.zalo_user_id == "u-1"
    assert [(t.from_status, t.to_status, t.note) for t in detail.transitions] == [
        (None, "open", None),
        ("open", "in_progress", "Đang xác minh"),
    ]
    assert [m["text"] for m in detail.messages] == ["Tôi chưa nhận được giấy phép"]
    assert [n["kind"] for n in detail.notices] == ["report_received", "report_in_progress"]
    assert detail.dossier is not None
    assert (detail.dossier["code"], detail.dossier["finished_by_id"]) == (CODE, "cc-0123")
    assert [e["event_id"] for e in detail.dossier["timeline"]] == ["evt-fin"]
    # The dossier's own notices, not the report's.
    assert [(n["kind"], n["state"]) for n in detail.dossier["notices"]] == [
        ("invitation", "delivered")
    ]
    assert await store.get_report(db.reader, report.id + 1) is None
