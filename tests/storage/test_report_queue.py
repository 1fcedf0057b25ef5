"""The queue's storage on SQLite and PostgreSQL: reports about dossiers never seen, the
filtered query, the cap, the agencies known, and assignment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.calendar import DEFAULT_OVERRIDES_FILE, WorkingCalendar, load_overrides
from gateway.errors import NotFound, ValidationFailed
from gateway.storage import report_queue
from gateway.storage import reports as store
from gateway.storage.db import Database
from gateway.storage.staff import add_user, disable_user
from gateway.storage.tables import notices, reports
from tests.staff_helpers import empty_staff_tables, rows, seed_dossier

CALENDAR = WorkingCalendar(load_overrides(DEFAULT_OVERRIDES_FILE))
CODE = "000.00.12.H19-260401-0001"
UNKNOWN = "000.00.07.H19-260403-0003"
PHONE = "+84912345678"
FRIDAY = datetime(2026, 4, 24, 9, 0, tzinfo=UTC)
NEXT_TUESDAY = datetime(2026, 5, 5, 2, 0, tzinfo=UTC)
DAYS = {"false_closure": 3, "problem": 5}


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
    kind: str = "false_closure",
    at: datetime = FRIDAY,
    agency: tuple[str | None, str | None] = (None, None),
) -> store.ReportRow:
    report, _ = await store.create_report(
        db.writer,
        kind=kind,
        source="phone",
        dossier_code=code,
        description="Chưa nhận kết quả",
        zalo_user_id=None,
        phone_e164=PHONE,
        calendar=CALENDAR,
        answer_working_days=5,
        now=at,
        actor="staff:1",
        agency_code=agency[0],
        agency_name=agency[1],
    )
    return report


# --- a dossier never seen ------------------------------------------------------------------


async def test_a_dossier_never_seen_needs_its_agency(db: Database) -> None:
    with pytest.raises(NotFound):
        await create(db, code=UNKNOWN)
    assert await rows(db.reader, reports) == []
    assert await rows(db.reader, notices) == []
    made = await create(db, code=UNKNOWN, agency=(None, "UBND xã Tân Lập"))
    assert (made.agency_code, made.agency_name, made.officer_id) == (
        None,
        "UBND xã Tân Lập",
        None,
    )
    assert (made.assignee_id, made.assigned_at) == (None, None)
    [notice] = await rows(db.reader, notices)
    assert (notice["kind"], notice["dossier_code"]) == ("report_received", UNKNOWN)


async def test_a_known_dossier_keeps_its_own_agency(db: Database) -> None:
    made = await create(db, agency=("999.99.99.X99", "Nơi khác"))
    assert (made.agency_code, made.agency_name, made.officer_id) == (
        "000.00.12.H19",
        "Sở Xây dựng",
        "cc-0123",
    )


# --- the query -----------------------------------------------------------------------------


async def test_the_query_filters_and_says_whether_the_dossier_is_known(db: Database) -> None:
    first = await create(db)
    second = await create(
        db, code=UNKNOWN, kind="problem", at=FRIDAY + timedelta(minutes=1), agency=("A1", "Xã")
    )
    closed = await create(db, at=FRIDAY + timedelta(minutes=2))
    await store.transition(db.writer, closed.id, "resolved", "Đã trả", "staff:1", FRIDAY)
    await add_user(db.writer, "hoa", "Hoa", "hotline", FRIDAY)
    await report_queue.assign(db.writer, second.id, 1, FRIDAY)

    async def found(
        statuses: tuple[str, ...] = ("open", "in_progress"),
        kind: str | None = None,
        agency: str | None = None,
        assignee: report_queue.Assignee = None,
    ) -> list[tuple[int, bool]]:
        got, more = await report_queue.queue_rows(
            db.reader, statuses=statuses, kind=kind, agency=agency, assignee=assignee
        )
        assert not more
        return [(r.id, known) for r, known in got]

    assert await found() == [(first.id, True), (second.id, False)]
    assert await found(statuses=("resolved",)) == [(closed.id, True)]
    assert await found(kind="problem") == [(second.id, False)]
    assert await found(agency="A1") == [(second.id, False)]
    assert await found(assignee=1) == [(second.id, False)]
    assert await found(assignee="none") == [(first.id, True)]
    rows_, more = await report_queue.queue_rows(db.reader, statuses=("open", "resolved"), limit=2)
    assert ([r.id for r, _ in rows_], more) == ([first.id, second.id], True)


async def test_the_queue_is_cut_at_whole_groups_and_says_so(db: Database) -> None:
    made = [await create(db, at=FRIDAY + timedelta(minutes=i)) for i in range(3)]
    other = await create(
        db, code=UNKNOWN, kind="problem", at=FRIDAY + timedelta(minutes=5), agency=("A1", "Xã")
    )
    got, _ = await report_queue.queue_rows(db.reader, statuses=("open",))

    def build(show_max: int) -> report_queue.Queue:
        return report_queue.build_queue(
            got, now=NEXT_TUESDAY, calendar=CALENDAR, sla_days=DAYS, show_max=show_max
        )

    whole = build(500)
    assert (whole.shown, whole.total, whole.capped) == (4, 4, False)
    assert [g.dossier_code for g in whole.groups] == [CODE, UNKNOWN]
    assert [i.report.id for i in whole.groups[0].items] == [r.id for r in made]
    assert all(i.overdue for i in whole.groups[0].items)
    assert [i.dossier_known for i in whole.groups[1].items] == [False]
    cut = build(3)
    assert (cut.shown, cut.total, cut.capped) == (3, 4, True)
    assert [g.dossier_code for g in cut.groups] == [CODE]
    # A first group larger than the cap is still shown whole.
    first = build(1)
    assert (first.shown, first.capped) == (3, True)
    only_late = report_queue.build_queue(
        got, now=NEXT_TUESDAY, calendar=CALENDAR, sla_days=DAYS, sla="due_soon"
    )
    assert [i.report.id for g in only_late.groups for i in g.items] == [other.id]


async def test_the_known_agencies_come_from_dossiers_and_reports(db: Database) -> None:
    await create(db, code=UNKNOWN, agency=("000.00.07.H19", "UBND huyện Lạc Sơn"))
    await create(db, code=UNKNOWN, agency=(None, "Chỉ có tên"))
    assert await report_queue.known_agencies(db.reader) == [
        ("000.00.12.H19", "Sở Xây dựng"),
        ("000.00.07.H19", "UBND huyện Lạc Sơn"),
    ]
    assert await report_queue.known_agencies(db.reader, dossiers_too=False) == [
        ("000.00.07.H19", "UBND huyện Lạc Sơn"),
    ]


# --- assignment ----------------------------------------------------------------------------


async def test_assignment_takes_only_active_hotline_officers_and_admins(db: Database) -> None:
    made = await create(db)
    for username, role in (("hoa", "hotline"), ("lan", "auditor"), ("minh", "admin")):
        await add_user(db.writer, username, username, role, FRIDAY)
    await add_user(db.writer, "cu", "cu", "hotline", FRIDAY)
    await disable_user(db.writer, "cu", FRIDAY)
    later = FRIDAY + timedelta(hours=1)
    given = await report_queue.assign(db.writer, made.id, 3, later)
    assert (given.assignee_id, given.assigned_at) == (3, later)
    assert given.updated_at == made.updated_at  # internal: the citizen's view is unchanged
    for refused in (2, 4, 99):
        with pytest.raises(ValidationFailed) as caught:
            await report_queue.assign(db.writer, made.id, refused, later)
        assert caught.value.errors[0].field == "assignee_id"
    with pytest.raises(NotFound):
        await report_queue.assign(db.writer, made.id + 100, 1, later)
    [row] = await rows(db.reader, reports)
    assert row["assignee_id"] == 3
    released = await report_queue.assign(db.writer, made.id, None, later)
    assert (released.assignee_id, released.assigned_at) == (None, None)
