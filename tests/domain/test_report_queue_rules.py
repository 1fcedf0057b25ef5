"""The queue's pure rules: the SLA clock in working days, the filters, the phone form,
and the ``REPORT_SLA_WORKING_DAYS`` setting.

Friday 24 April 2026 (16:00 in Vietnam) is followed by a weekend, the Hùng Kings' day
off (Monday 27), Tuesday 28 and Wednesday 29, then 30 April and 1 May (holidays), a
weekend and Monday 4 May.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.calendar import DEFAULT_OVERRIDES_FILE, WorkingCalendar, load_overrides
from gateway.domain.reports import (
    KINDS,
    OPEN_STATUSES,
    QueueFilter,
    parse_phone_form,
    parse_queue_query,
    sla_due,
    sla_of,
)
from gateway.errors import ConfigError, ValidationFailed
from gateway.settings import REPORT_SLA_DEFAULTS, Settings

CALENDAR = WorkingCalendar(load_overrides(DEFAULT_OVERRIDES_FILE))
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
FRIDAY = datetime(2026, 4, 24, 9, 0, tzinfo=UTC)
DAYS = {"false_closure": 3, "problem": 5}


def local(day: int, month: int = 4, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=ZONE)


# --- the SLA clock -------------------------------------------------------------------------


def test_the_due_date_counts_working_days_per_kind() -> None:
    assert sla_due("false_closure", FRIDAY, None, DAYS, CALENDAR) == local(4, 5, 17)
    assert sla_due("problem", FRIDAY, None, DAYS, CALENDAR) == local(6, 5, 17)


def test_the_due_date_is_never_later_than_the_promise() -> None:
    promised = local(28, 4, 17)
    assert sla_due("problem", FRIDAY, promised, DAYS, CALENDAR) == promised
    later = local(30, 6, 17)
    assert sla_due("problem", FRIDAY, later, DAYS, CALENDAR) == local(6, 5, 17)
    # A kind with no SLA is held to the promise alone.
    assert sla_due("problem", FRIDAY, promised, {}, CALENDAR) == promised


@pytest.mark.parametrize(
    ("now", "state", "days"),
    [
        (local(24, 4, 16), "on_time", 3),
        (local(28), "on_time", 2),
        (local(29), "due_soon", 1),
        (local(1, 5), "due_soon", 1),  # a holiday: Monday is still the next working day
        (local(4, 5, 8), "due_today", 0),
        (local(4, 5, 20), "due_today", 0),  # late evening: still the due day
        (local(5, 5), "overdue", 1),
        (local(9, 5), "overdue", 4),  # Saturday: Tue, Wed, Thu, Fri
    ],
)
def test_where_a_report_stands(now: datetime, state: str, days: int) -> None:
    found = sla_of(local(4, 5, 17), now, CALENDAR)
    assert (found.state, found.days) == (state, days)


def test_the_day_after_the_due_day_is_late_even_off_work() -> None:
    # Due Wednesday 29 April; Thursday 30 is a holiday, yet the report is late by then.
    found = sla_of(local(29, 4, 17), local(30), CALENDAR)
    assert (found.state, found.days) == ("overdue", 1)


def test_every_kind_has_a_default_sla() -> None:
    assert set(REPORT_SLA_DEFAULTS) == set(KINDS)


# --- the queue's filters -------------------------------------------------------------------


def test_no_filter_is_the_open_queue() -> None:
    wanted = parse_queue_query([])
    assert wanted == QueueFilter()
    assert wanted.statuses == OPEN_STATUSES
    assert wanted.is_default()
    assert parse_queue_query([("status", ""), ("kind", " "), ("page", "x")]).is_default()


def test_filters_are_read() -> None:
    wanted = parse_queue_query(
        [
            ("status", "resolved"),
            ("status", "open"),
            ("status", "resolved"),
            ("kind", "problem"),
            ("agency", "000.00.12.H19"),
            ("sla", "overdue"),
            ("assignee", "12"),
        ]
    )
    assert wanted == QueueFilter(("resolved", "open"), "problem", "000.00.12.H19", "overdue", 12)
    assert not wanted.is_default()
    assert parse_queue_query([("assignee", "me")]).assignee == "me"
    assert parse_queue_query([("assignee", "none")]).assignee == "none"


def test_every_faulty_filter_is_named() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_queue_query(
            [
                ("status", "closed"),
                ("kind", "noise"),
                ("agency", "x" * 33),
                ("sla", "late"),
                ("assignee", "0"),
            ]
        )
    assert [e.field for e in caught.value.errors] == [
        "status",
        "kind",
        "agency",
        "sla",
        "assignee",
    ]
    for bad in ("-1", "1" * 19, "١٢", "someone"):
        with pytest.raises(ValidationFailed):
            parse_queue_query([("assignee", bad)])


# --- the phone form ------------------------------------------------------------------------


def test_the_phone_form_is_read_and_normalised() -> None:
    taken = parse_phone_form(
        {
            "kind": "problem",
            "dossier_code": " 000.00.12.h19-260401-0001 ",
            "phone": "0912.345.678",
            "description": "  Chưa nhận kết quả  ",
            "agency_code": "",
            "agency_name": " UBND xã ",
        }
    )
    assert (taken.kind, taken.dossier_code, taken.phone_e164, taken.description) == (
        "problem",
        "000.00.12.H19-260401-0001",
        "+84912345678",
        "Chưa nhận kết quả",
    )
    assert (taken.agency_code, taken.agency_name) == (None, "UBND xã")
    assert (
        parse_phone_form(
            {"kind": "problem", "dossier_code": "000.00.12.H19-260401-0001", "description": "x"}
        ).phone_e164
        is None
    )


def test_every_faulty_form_field_is_named() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_phone_form(
            {
                "kind": "",
                "dossier_code": "H19-1",
                "phone": "12345",
                "description": "x" * 4001,
                "agency_code": "x" * 33,
                "agency_name": "x" * 301,
            }
        )
    assert [e.field for e in caught.value.errors] == [
        "kind",
        "dossier_code",
        "description",
        "phone",
        "agency_code",
        "agency_name",
    ]


# --- the setting ---------------------------------------------------------------------------


def test_the_sla_setting_defaults_and_overrides() -> None:
    assert Settings.from_mapping({}).chat.report_sla_working_days == DAYS
    assert Settings.from_mapping({}).chat.report_answer_working_days == 5
    one = Settings.from_mapping({"REPORT_SLA_WORKING_DAYS": "false_closure=1"})
    assert one.chat.report_sla_working_days == {"false_closure": 1, "problem": 5}
    both = Settings.from_mapping({"REPORT_SLA_WORKING_DAYS": " problem = 2 , false_closure=0 "})
    assert both.chat.report_sla_working_days == {"false_closure": 0, "problem": 2}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("false_closure", "entry 1 must be 'kind=days'"),
        ("false_closure=3,urgent=1", "entry 2: unknown report kind 'urgent'"),
        ("problem=2,problem=3", "entry 2: kind 'problem' is listed twice"),
        ("problem=two", "days of 'problem' must be a whole number"),
        ("problem=-1", "days of 'problem' must be a whole number"),
        ("problem=61", "days of 'problem' must be between 0 and 60"),
    ],
)
def test_a_bad_sla_setting_is_refused_precisely(value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping({"REPORT_SLA_WORKING_DAYS": value})
    assert "REPORT_SLA_WORKING_DAYS" in str(caught.value)
    assert reason in str(caught.value)
