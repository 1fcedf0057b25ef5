"""Monthly statistics per agency and per officer, on SQLite and PostgreSQL.

The fixture month (May 2026, Vietnam time) is written straight into the derived tables,
so every expected number below is counted by hand from the rows in ``seed``:
three agencies (one over the late-rate threshold, one exactly on it, one just above),
open dossiers overdue at the month's end or only at ``now``, ledger entries on both
sides of a local month boundary, dismissed and corrected decisions, and ratings (old
single-score ones and two-score ones, some with one score missing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import ValidationFailed
from gateway.storage.db import create_engine
from gateway.storage.statistics import MonthRange, agency_statistics, officer_statistics
from gateway.storage.tables import (
    dossier_audit,
    dossiers,
    events,
    officers,
    ratings,
    violation_decisions,
    violations,
)

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
MAY = MonthRange("2026-05", "2026-05")
SPRING = MonthRange("2026-04", "2026-05")
# Well after May: open dossiers are judged at the end of the month.
JULY = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)
A, B, C = "SXD", "STP", "XLT"


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZONE)  # type: ignore[misc]


def audit_row(
    code: str,
    agency: str,
    name: str,
    *,
    received: tuple[str, str | None] | None,
    ended: tuple[str, str | None] | None = None,
    verdict: str = "open",
    due: date | None = None,
    missing_phone: bool = False,
) -> dict[str, Any]:
    """One ``dossier_audit`` row: ``received``/``ended`` are (month, officer)."""
    return {
        "dossier_code": code,
        "agency_code": agency,
        "agency_name": name,
        "received_month": received[0] if received else None,
        "received_by": received[1] if received else None,
        "ended_month": ended[0] if ended else None,
        "closed_by": ended[1] if ended else None,
        "end_kind": "finished" if ended else None,
        "verdict": verdict,
        "due_date": due,
        "effective_due_date": due,
        "supplement_requests": 0,
        "apologies": 0,
        "missing_phone": missing_phone,
        "audited_at": JULY,
    }


def audits() -> list[dict[str, Any]]:
    xd = "Sở Xây dựng"
    rows = [
        audit_row(
            "a1", A, xd, received=("2026-05", "o1"), ended=("2026-05", "o2"), verdict="on_time"
        ),
        audit_row(
            "a2",
            A,
            xd,
            received=("2026-05", "o1"),
            ended=("2026-05", "o2"),
            verdict="late",
            missing_phone=True,
        ),
        audit_row(
            "a3",
            A,
            xd,
            received=("2026-04", "o1"),
            ended=("2026-05", "o3"),
            verdict="late_with_apology",
        ),
        # Open; overdue once May is over, not yet on 20 May.
        audit_row("a4", A, xd, received=("2026-05", "o3"), due=date(2026, 5, 25)),
        # Open since April and overdue since 28 April.
        audit_row("a5", A, xd, received=("2026-04", "o1"), due=date(2026, 4, 28)),
        # Ended in June, after its due date: open and overdue when May ended.
        audit_row(
            "a6",
            A,
            xd,
            received=("2026-05", "o1"),
            ended=("2026-06", "o2"),
            verdict="late",
            due=date(2026, 5, 29),
        ),
        audit_row(
            "a7", A, xd, received=("2026-03", "o1"), ended=("2026-04", "o1"), verdict="on_time"
        ),
        # Open, due in June: not overdue.
        audit_row("a8", A, xd, received=("2026-05", "o1"), due=date(2026, 6, 15)),
        audit_row(
            "a9",
            A,
            xd,
            received=("2026-05", "o2"),
            ended=("2026-05", "o2"),
            verdict="on_time",
            missing_phone=True,
        ),
        # Open and due on 20 May: overdue from 21 May on.
        audit_row("a10", A, xd, received=("2026-05", "o3"), due=date(2026, 5, 20)),
    ]
    # Sở Tư pháp: exactly 1 late in 10, not over 0.10. Received in April by o4.
    for n in range(10):
        rows.append(
            audit_row(
                f"b{n}",
                B,
                "Sở Tư pháp",
                received=("2026-04", "o4"),
                ended=("2026-05", "o4"),
                verdict="late" if n == 9 else "on_time",
            )
        )
    # UBND xã Long Thành: 1 late (with apology) in 9, just over 0.10. No receiving officer.
    for n in range(9):
        rows.append(
            audit_row(
                f"c{n}",
                C,
                "UBND xã Long Thành",
                received=("2026-04", None),
                ended=("2026-05", "o4"),
                verdict="late_with_apology" if n == 8 else "on_time",
            )
        )
    return rows


def violation(
    id_: int, rule: str, agency: str, at: datetime, officer: tuple[str, str] | None = None
) -> dict[str, Any]:
    return {
        "id": id_,
        "fingerprint": f"{rule}:{id_}",
        "rule": rule,
        "dossier_code": f"v{id_}",
        "officer_id": officer[0] if officer else None,
        "officer_name": officer[1] if officer else None,
        "agency_code": agency,
        "agency_name": None,
        "occurred_at": at,
        "detected_at": JULY,
        "evidence": [f"e{id_}"],
        "detail": "fixture",
        "suggestion": None,
        "report_id": None,
    }


VIOLATIONS = [
    violation(1, "late_consultation_answer", A, local(2026, 5, 10, 9)),
    # 23:30 on 31 May in Vietnam is still May (16:30 UTC) …
    violation(2, "consultation_unanswered", A, local(2026, 5, 31, 23, 30)),
    # … and 00:30 on 1 June is June, though it is 31 May in UTC.
    violation(3, "consultation_unanswered", A, local(2026, 6, 1, 0, 30)),
    violation(4, "consultation_unanswered", B, local(2026, 5, 5, 9)),  # dismissed
    violation(5, "false_closure", A, local(2026, 5, 12, 9), ("o2", "Lê Văn Hai")),
    # Dismissed, then the dismissal corrected: counts.
    violation(6, "false_closure", A, local(2026, 5, 15, 9), ("o2", "Lê Văn Hai")),
    # Applied, then dismissed: does not count.
    violation(7, "false_closure", A, local(2026, 5, 16, 9), ("o3", "Phạm Văn Ba")),
    violation(8, "phone_missing", A, local(2026, 5, 2, 9), ("o1", "Nguyễn Thị Một")),
    # An officer known only from the ledger.
    violation(9, "false_closure", C, local(2026, 5, 20, 9), ("o5", "Trần Văn Năm")),
]
DECISIONS = [
    (4, "dismissed"),
    (5, "applied"),
    (6, "dismissed"),
    (6, "applied"),
    (7, "applied"),
    (7, "dismissed"),
]
# Ratings from before the two scores: one overall score each, from an OA user.
RATINGS = [
    ("a1", A, 5, local(2026, 5, 21, 9)),
    ("a9", A, 4, local(2026, 5, 22, 9)),
    ("a2", A, 2, local(2026, 6, 1, 0, 10)),  # June in Vietnam
    ("a7", A, 1, local(2026, 4, 15, 9)),
    ("b0", B, 3, local(2026, 5, 3, 9)),
    ("b1", B, 4, local(2026, 5, 4, 9)),
    ("b2", B, 4, local(2026, 5, 5, 9)),
]
# Two-score ratings (progress, quality; either may be missing), from the dossier's phone.
TWO_SCORES = [
    ("a1", A, 4, 2, local(2026, 5, 23, 9)),  # a second rater of a1
    ("a9", A, 5, None, local(2026, 5, 24, 9)),  # the quality never given
    ("c0", C, 3, 4, local(2026, 5, 25, 9)),
    ("c1", C, None, 5, local(2026, 6, 1, 0, 10)),  # June in Vietnam
]


async def seed(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.insert(dossier_audit), audits())
        await conn.execute(sa.insert(violations), VIOLATIONS)
        await conn.execute(
            sa.insert(violation_decisions),
            [
                {"violation_id": v, "decision": d, "staff_id": 1, "decided_at": JULY}
                for v, d in DECISIONS
            ],
        )
        await conn.execute(
            sa.insert(ratings),
            [
                {
                    "dossier_code": code,
                    "agency_code": agency,
                    "zalo_user_id": f"u-{code}",
                    "score": score,
                    "channel": "oa",
                    "rater": f"oa:u-{code}",
                    "created_at": at,
                }
                for code, agency, score, at in RATINGS
            ],
        )
        await conn.execute(
            sa.insert(ratings),
            [
                {
                    "dossier_code": code,
                    "agency_code": agency,
                    "progress_score": progress,
                    "quality_score": quality,
                    "channel": "web",
                    "rater": "phone",
                    "created_at": at,
                }
                for code, agency, progress, quality, at in TWO_SCORES
            ],
        )
        await conn.execute(
            sa.insert(officers),
            [
                {"id": key, "name": name, "origin": "import", "created_at": JULY}
                | {"updated_at": JULY}
                for key, name in (
                    ("o1", "Nguyễn Thị Một"),
                    ("o2", "Lê Văn Hai"),
                    ("o4", "Hoàng Thị Bốn"),
                )
            ],
        )
        # o3 is in no directory: its name comes from the events of its dossiers.
        await conn.execute(
            sa.insert(events),
            {
                "source_id": "s",
                "event_id": "e-a4",
                "type": "dossier.received",
                "dossier_code": "a4",
                "occurred_at": local(2026, 5, 4, 8),
                "recorded_at": local(2026, 5, 4, 8),
                "actor_id": "o3",
                "actor_name": "Phạm Văn Ba",
                "superseded": False,
                "fingerprint": "x",
                "body": {},
                "answer": {},
            },
        )
        # The one-stop-shop renamed Sở Xây dựng: its latest dossier carries the new name.
        await conn.execute(
            sa.insert(dossiers),
            [
                {
                    "code": code,
                    "state": "received",
                    "dvcqg_status": 2,
                    "state_at": at,
                    "agency_code": A,
                    "agency_name": name,
                    "received_at": at,
                    "created_at": at,
                    "updated_at": at,
                }
                for code, name, at in (
                    ("a4", "Sở Xây dựng tỉnh Đồng Nai", local(2026, 5, 4, 8)),
                    ("a3", "Sở Xây dựng", local(2026, 4, 20, 8)),
                )
            ],
        )


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        await seed(engine)
        yield engine
    finally:
        await engine.dispose()


def figures(
    received: int,
    ended: int,
    on_time: int,
    late: int,
    late_with_apology: int,
    late_rate: float,
    over: bool,
    missing: int,
    missing_rate: float,
    false_closures: int,
    ratings: dict[str, Any],
) -> dict[str, Any]:
    return {
        "received": received,
        "ended": ended,
        "on_time": on_time,
        "late": late,
        "late_with_apology": late_with_apology,
        "late_rate": late_rate,
        "over_threshold": over,
        "missing_phone": missing,
        "missing_phone_rate": missing_rate,
        "false_closures_confirmed": false_closures,
        "ratings": ratings,
    }


def rated(
    count: int,
    average: float | None,
    progress: tuple[float | None, int] = (None, 0),
    quality: tuple[float | None, int] = (None, 0),
) -> dict[str, Any]:
    """The ``ratings`` object: every score's mean, then each score's mean and count."""
    return {
        "count": count,
        "average": average,
        "progress_avg": progress[0],
        "progress_count": progress[1],
        "quality_avg": quality[0],
        "quality_count": quality[1],
    }


def agency(
    code: str,
    name: str,
    base: dict[str, Any],
    *,
    open_overdue: int = 0,
    consultations: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    order = [
        "received",
        "ended",
        "on_time",
        "late",
        "late_with_apology",
        "late_rate",
        "over_threshold",
        "open_overdue",
        "missing_phone",
        "missing_phone_rate",
        "consultations_late",
        "consultations_unanswered",
        "false_closures_confirmed",
        "ratings",
    ]
    values = base | {
        "open_overdue": open_overdue,
        "consultations_late": consultations[0],
        "consultations_unanswered": consultations[1],
    }
    return {"agency": {"code": code, "name": name}} | {key: values[key] for key in order}


def officer(key: str, name: str, base: dict[str, Any]) -> dict[str, Any]:
    return {"officer": {"id": key, "name": name}} | base


async def test_agencies_for_a_month(engine: AsyncEngine) -> None:
    items = await agency_statistics(engine, MAY, threshold=0.10, now=JULY, tz=ZONE)
    assert items == [
        agency(
            B,
            "Sở Tư pháp",
            figures(0, 10, 9, 1, 0, 0.1, False, 0, 0.0, 0, rated(3, 3.6667)),
        ),
        agency(
            A,
            "Sở Xây dựng tỉnh Đồng Nai",
            figures(7, 4, 2, 2, 1, 0.5, True, 2, 0.2857, 2, rated(4, 4.0, (4.5, 2), (2.0, 1))),
            open_overdue=4,
            consultations=(1, 1),
        ),
        agency(
            C,
            "UBND xã Long Thành",
            figures(0, 9, 8, 1, 1, 0.1111, True, 0, 0.0, 1, rated(1, 3.5, (3.0, 1), (4.0, 1))),
        ),
    ]
    # Every count is an int and every rate a float, on both databases.
    for item in items:
        for key, value in item.items():
            if key.endswith("_rate"):
                assert type(value) is float
            elif key not in ("agency", "ratings", "over_threshold"):
                assert type(value) is int, key


async def test_agencies_for_two_months(engine: AsyncEngine) -> None:
    items = await agency_statistics(engine, SPRING, threshold=0.10, now=JULY, tz=ZONE)
    assert items == [
        agency(
            B,
            "Sở Tư pháp",
            figures(10, 10, 9, 1, 0, 0.1, False, 0, 0.0, 0, rated(3, 3.6667)),
        ),
        agency(
            A,
            "Sở Xây dựng tỉnh Đồng Nai",
            figures(9, 5, 3, 2, 1, 0.4, True, 2, 0.2222, 2, rated(5, 3.5, (4.5, 2), (2.0, 1))),
            open_overdue=4,
            consultations=(1, 1),
        ),
        agency(
            C,
            "UBND xã Long Thành",
            figures(9, 9, 8, 1, 1, 0.1111, True, 0, 0.0, 1, rated(1, 3.5, (3.0, 1), (4.0, 1))),
        ),
    ]


async def test_the_threshold_is_a_strict_line(engine: AsyncEngine) -> None:
    items = await agency_statistics(engine, MAY, threshold=0.11, now=JULY, tz=ZONE)
    over = {item["agency"]["code"]: item["over_threshold"] for item in items}
    # 1/9 = 0.111… is above 0.11; 1/10 is not; 1/2 is.
    assert over == {A: True, B: False, C: True}
    items = await agency_statistics(engine, MAY, threshold=0.0999, now=JULY, tz=ZONE)
    assert all(item["over_threshold"] for item in items)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 20 May, 10:00 in Vietnam: a5 (due 28 April) only; a10 is due today.
        (local(2026, 5, 20, 10), 1),
        # 21 May, 00:30: a10 (due 20 May) is overdue too.
        (local(2026, 5, 21, 0, 30), 2),
        # 20 May at 23:59 in Vietnam is still 20 May.
        (local(2026, 5, 20, 23, 59), 1),
        # After May: a4, a5, a10 and a6 (open when May ended, ended in June).
        (local(2026, 6, 1, 0, 0), 4),
    ],
)
async def test_open_overdue_is_judged_at_now_within_the_range(
    engine: AsyncEngine, now: datetime, expected: int
) -> None:
    items = await agency_statistics(engine, MAY, threshold=0.10, now=now, tz=ZONE)
    by_code = {item["agency"]["code"]: item for item in items}
    assert by_code[A]["open_overdue"] == expected


async def test_officers_for_a_month(engine: AsyncEngine) -> None:
    items = await officer_statistics(engine, MAY, threshold=0.10, now=JULY, tz=ZONE)
    assert items == [
        officer(
            "o1", "Nguyễn Thị Một", figures(4, 0, 0, 0, 0, 0.0, False, 1, 0.25, 0, rated(0, None))
        ),
        officer(
            "o2",
            "Lê Văn Hai",
            figures(1, 3, 2, 1, 0, 0.3333, True, 1, 1.0, 2, rated(4, 4.0, (4.5, 2), (2.0, 1))),
        ),
        officer("o3", "Phạm Văn Ba", figures(2, 1, 0, 1, 1, 1.0, True, 0, 0.0, 0, rated(0, None))),
        officer(
            "o4",
            "Hoàng Thị Bốn",
            figures(0, 19, 17, 2, 1, 0.1053, True, 0, 0.0, 0, rated(4, 3.6, (3.0, 1), (4.0, 1))),
        ),
        officer(
            "o5", "Trần Văn Năm", figures(0, 0, 0, 0, 0, 0.0, False, 0, 0.0, 1, rated(0, None))
        ),
    ]


async def test_officers_for_two_months(engine: AsyncEngine) -> None:
    items = await officer_statistics(engine, SPRING, threshold=0.10, now=JULY, tz=ZONE)
    by_id = {item["officer"]["id"]: item for item in items}
    assert by_id["o1"] == officer(
        "o1", "Nguyễn Thị Một", figures(6, 1, 1, 0, 0, 0.0, False, 1, 0.1667, 0, rated(1, 1.0))
    )
    assert by_id["o4"] == officer(
        "o4",
        "Hoàng Thị Bốn",
        figures(10, 19, 17, 2, 1, 0.1053, True, 0, 0.0, 0, rated(4, 3.6, (3.0, 1), (4.0, 1))),
    )
    assert sorted(by_id) == ["o1", "o2", "o3", "o4", "o5"]


async def test_a_month_with_nothing_gives_no_items(engine: AsyncEngine) -> None:
    empty = MonthRange("2025-01", "2025-01")
    assert await agency_statistics(engine, empty, threshold=0.1, now=JULY, tz=ZONE) == []
    assert await officer_statistics(engine, empty, threshold=0.1, now=JULY, tz=ZONE) == []


# --- the month range (no database) -------------------------------------------------------


def test_a_month_alone() -> None:
    span = MonthRange.parse("2026-05", None, None)
    assert span == MonthRange("2026-05", "2026-05")
    assert span.months() == ["2026-05"]


def test_a_range_across_a_new_year() -> None:
    span = MonthRange.parse(None, "2025-11", "2026-02")
    assert span.months() == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert span.start() == date(2025, 11, 1)
    assert span.end() == date(2026, 3, 1)


def test_bounds_are_local_midnights_in_utc() -> None:
    assert MAY.bounds(ZONE) == (
        datetime(2026, 4, 30, 17, 0, tzinfo=UTC),
        datetime(2026, 5, 31, 17, 0, tzinfo=UTC),
    )


def test_twenty_four_months_at_most() -> None:
    assert len(MonthRange.parse(None, "2024-06", "2026-05").months()) == 24
    with pytest.raises(ValidationFailed) as caught:
        MonthRange.parse(None, "2024-05", "2026-05")
    assert [e.field for e in caught.value.errors] == ["to"]


@pytest.mark.parametrize(
    ("month", "from_", "to", "fields"),
    [
        (None, None, None, ["month"]),
        ("2026-13", None, None, ["month"]),
        ("2026-5", None, None, ["month"]),
        ("2026-05", "2026-01", None, ["month"]),
        (None, "2026-01", None, ["to"]),
        (None, None, "2026-01", ["from"]),
        (None, "2026-00", "x", ["from", "to"]),
        (None, "2026-05", "2026-04", ["to"]),
    ],
)
def test_bad_ranges_name_each_field(
    month: str | None, from_: str | None, to: str | None, fields: list[str]
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        MonthRange.parse(month, from_, to)
    assert [e.field for e in caught.value.errors] == fields


def test_from_query() -> None:
    assert MonthRange.from_query({"from": "2026-01", "to": "2026-06"}) == MonthRange(
        "2026-01", "2026-06"
    )
