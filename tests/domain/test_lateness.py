"""The lateness verdict: the national on-time definition, and the ways it must not be gamed.

The dossier of ``tests.helpers`` is received Monday 1 April 2024 and due Friday 12 April
17:00 (Asia/Ho_Chi_Minh). 18 April 2024 is a public holiday (Hùng Kings).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from gateway.domain.calendar import WorkingCalendar
from gateway.domain.lateness import Lateness, judge
from gateway.domain.timeline import timeline_of
from tests.domain.test_timeline import TZ, at, officer, row

CALENDAR = WorkingCalendar()
RECEIVED = row("dossier.received", 1, 8)
DUE = date(2024, 4, 12)


def verdict_of(*rows: dict[str, Any]) -> Lateness:
    return judge(timeline_of([RECEIVED, *rows]), CALENDAR, TZ)


def delayed(day: int, new_day: int = 17, hour: int = 9) -> dict[str, Any]:
    data = {"new_due_at": at(new_day, 17).isoformat(), "reason": "Chờ thẩm định"}
    return row("dossier.delayed", day, hour, data=data)


def test_finished_before_the_due_date_is_on_time() -> None:
    lateness = verdict_of(
        row("dossier.processing", 2), row("dossier.finished", 10, actor=officer("cv-7"))
    )
    assert lateness == Lateness(
        due_date=DUE,
        effective_due_date=DUE,
        ended_at=at(10),
        end_kind="finished",
        closed_by=("cv-7", "Cán bộ cv-7"),
        verdict="on_time",
        supplement_requests=0,
        apologies=0,
        timely_apology=False,
    )


def test_finished_at_19_00_on_the_due_day_is_on_time() -> None:
    assert verdict_of(row("dossier.finished", 12, 19)).verdict == "on_time"


def test_finished_early_the_next_morning_is_late() -> None:
    assert verdict_of(row("dossier.finished", 13, 7)).verdict == "late"


def test_late_is_judged_by_local_date_not_utc() -> None:
    # 23:30 local on the due day is 16:30 UTC the same day; 00:30 local the next day is
    # still the due day in UTC but late here.
    assert verdict_of(row("dossier.finished", 12, 23, minute=30)).verdict == "on_time"
    assert verdict_of(row("dossier.finished", 13, 0, minute=30)).verdict == "late"


def test_a_pause_across_the_due_date_does_not_stop_the_clock() -> None:
    lateness = verdict_of(
        row("dossier.paused", 11),
        row("dossier.resumed", 15),
        row("dossier.finished", 16),
    )
    assert (lateness.verdict, lateness.ended_at, lateness.effective_due_date) == (
        "late",
        at(16),
        DUE,
    )


def test_a_pause_does_not_end_the_dossier() -> None:
    lateness = verdict_of(row("dossier.paused", 11))
    assert (lateness.verdict, lateness.ended_at, lateness.end_kind) == ("open", None, None)
    assert not lateness.overdue_on(DUE)
    assert lateness.overdue_on(date(2024, 4, 13))


def test_an_apology_after_the_due_date_does_not_erase_lateness() -> None:
    lateness = verdict_of(delayed(15, new_day=19), row("dossier.finished", 17))
    assert (lateness.verdict, lateness.apologies, lateness.timely_apology) == ("late", 1, False)


@pytest.mark.parametrize(
    ("apology_day", "verdict"), [(10, "late_with_apology"), (12, "late_with_apology"), (13, "late")]
)
def test_a_rescheduled_dossier_ending_after_the_original_date_is_late(
    apology_day: int, verdict: str
) -> None:
    # Finished on the new date the citizen was promised, yet after the original one.
    lateness = verdict_of(delayed(apology_day, new_day=17), row("dossier.finished", 17))
    assert lateness.due_date == DUE
    assert lateness.verdict == verdict


def test_an_apology_then_finishing_by_the_original_date_is_on_time() -> None:
    lateness = verdict_of(delayed(8), row("dossier.finished", 12))
    assert (lateness.verdict, lateness.timely_apology) == ("on_time", True)


def test_the_original_due_date_stands_whatever_later_snapshots_say() -> None:
    moved = row("dossier.processing", 3, due_at=at(30, 17).isoformat())
    lateness = verdict_of(moved, row("dossier.finished", 15))
    assert (lateness.due_date, lateness.verdict) == (DUE, "late")


def test_supplement_waiting_time_is_not_counted_against_the_agency() -> None:
    # Waiting from Wednesday 3 to Monday 8 April: Thu 4, Fri 5, Mon 8 = 3 working days,
    # so the agency is held to Wednesday 17 April.
    lateness = verdict_of(
        row("dossier.supplement_requested", 3),
        row("dossier.processing", 8, 10),
        row("dossier.finished", 17, 16),
    )
    assert (lateness.effective_due_date, lateness.verdict) == (date(2024, 4, 17), "on_time")
    assert lateness.supplement_requests == 1


def test_supplement_waiting_does_not_excuse_finishing_after_the_moved_date() -> None:
    lateness = verdict_of(
        row("dossier.supplement_requested", 3),
        row("dossier.processing", 8, 10),
        row("dossier.finished", 19),
    )
    assert lateness.verdict == "late"


def test_a_supplement_answered_the_same_day_moves_nothing() -> None:
    lateness = verdict_of(
        row("dossier.supplement_requested", 3, 9), row("dossier.processing", 3, 15)
    )
    assert lateness.effective_due_date == DUE


def test_while_waiting_for_a_supplement_no_date_is_in_force() -> None:
    lateness = verdict_of(row("dossier.supplement_requested", 3))
    assert (lateness.verdict, lateness.effective_due_date) == ("open", None)
    assert not lateness.overdue_on(date(2024, 5, 30))


def test_two_supplement_requests_are_late_even_when_finished_early() -> None:
    lateness = verdict_of(
        row("dossier.supplement_requested", 2),
        row("dossier.processing", 3),
        row("dossier.supplement_requested", 4),
        row("dossier.processing", 5),
        row("dossier.finished", 8),
    )
    assert (lateness.verdict, lateness.supplement_requests) == ("late", 2)


def test_out_of_order_events_are_judged_where_they_happened() -> None:
    # The finish arrives first, the receipt and an early apology later.
    lateness = judge(timeline_of([row("dossier.finished", 16), delayed(9), RECEIVED]), CALENDAR, TZ)
    assert (lateness.due_date, lateness.verdict, lateness.ended_at) == (
        DUE,
        "late_with_apology",
        at(16),
    )


@pytest.mark.parametrize(
    "type_", ["dossier.refused", "dossier.withdrawn", "dossier.delivered", "dossier.finished"]
)
def test_the_first_ending_event_ends_the_dossier(type_: str) -> None:
    lateness = verdict_of(row(type_, 5, actor=officer("cv-5")), row("dossier.delivered", 15))
    assert (lateness.end_kind, lateness.ended_at) == (type_.removeprefix("dossier."), at(5))
    assert (lateness.closed_by, lateness.verdict) == (("cv-5", "Cán bộ cv-5"), "on_time")


def test_an_open_dossier_is_overdue_only_after_its_due_day() -> None:
    lateness = verdict_of(row("dossier.processing", 3))
    assert lateness.verdict == "open"
    assert [lateness.overdue_on(date(2024, 4, d)) for d in (11, 12, 13)] == [False, False, True]


def test_no_due_date_known_is_never_late_by_date() -> None:
    rows = [row("dossier.processing", 1), row("dossier.finished", 30)]
    for stored in rows:
        stored["body"]["dossier"].pop("due_at")
    lateness = judge(timeline_of(rows), CALENDAR, TZ)
    assert (lateness.due_date, lateness.verdict) == (None, "on_time")
