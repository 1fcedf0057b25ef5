"""The report workflow and the parsing of the staff API's requests, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.reports import (
    STATUSES,
    ReportQuery,
    check_transition,
    notice_kind_for,
    parse_handoff_query,
    parse_phone_report,
    parse_reply_text,
    parse_report_query,
    parse_transition,
    report_number,
)
from gateway.errors import Conflict, PermissionDenied, ValidationFailed
from tests.helpers import CODE

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
ALLOWED = {
    ("open", "in_progress"),
    ("open", "resolved"),
    ("open", "rejected"),
    ("in_progress", "resolved"),
    ("in_progress", "rejected"),
}


def fields(exc: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, str]:
    return {e.field: e.message for e in exc.value.errors}


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("to", STATUSES)
def test_every_pair_of_states_is_allowed_or_refused_as_drawn(current: str, to: str) -> None:
    if (current, to) in ALLOWED:
        check_transition(current, to)
        return
    with pytest.raises((Conflict, PermissionDenied)) as refused:
        check_transition(current, to)
    if current in ("resolved", "rejected") and to == "open":
        assert isinstance(refused.value, PermissionDenied)
        assert "only an admin may reopen" in refused.value.detail
        check_transition(current, to, may_reopen=True)
    else:
        assert isinstance(refused.value, Conflict)


def test_refusals_say_what_is_possible() -> None:
    with pytest.raises(Conflict, match="already open"):
        check_transition("open", "open")
    with pytest.raises(Conflict, match="from in_progress to open; from in_progress: resolved, rej"):
        check_transition("in_progress", "open")
    with pytest.raises(Conflict, match="resolved, which is final; only reopening"):
        check_transition("resolved", "rejected", may_reopen=True)
    with pytest.raises(ValueError, match="unknown report status 'closed'"):
        check_transition("open", "closed")


def test_report_numbers() -> None:
    assert report_number(123, 2026) == "PA-2026-000123"
    assert report_number(1, 2025) == "PA-2025-000001"
    assert report_number(1_234_567, 2026) == "PA-2026-1234567"
    with pytest.raises(ValueError):
        report_number(0, 2026)


def test_each_status_has_its_notice() -> None:
    assert [notice_kind_for(s) for s in STATUSES] == [
        "report_received",
        "report_in_progress",
        "report_resolved",
        "report_rejected",
    ]
    with pytest.raises(ValueError):
        notice_kind_for("closed")


# --- POST /v1/reports ---------------------------------------------------------------------

PHONE_REPORT = {
    "dossier": CODE,
    "kind": "false_closure",
    "description": "Hồ sơ báo đã trả nhưng tôi chưa nhận được giấy phép.",
    "phone": "0912 345 678",
}


def test_a_phone_report_is_parsed_and_normalised() -> None:
    report = parse_phone_report(PHONE_REPORT | {"dossier": f"  {CODE} "})
    assert report.dossier_code == CODE
    assert report.kind == "false_closure"
    assert report.phone_e164 == "+84912345678"
    assert report.description.startswith("Hồ sơ báo")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"dossier": None}, "dossier", "is required"),
        ({"dossier": "000.00.12.H19-241301-0001"}, "dossier", "is not a dossier code"),
        ({"dossier": 12}, "dossier", "must be a string"),
        ({"kind": "complaint"}, "kind", "must be one of false_closure, problem"),
        ({"kind": None}, "kind", "is required"),
        ({"description": "   "}, "description", "must not be blank"),
        ({"description": "x" * 4001}, "description", "at most 4000 characters"),
        ({"phone": "028 3822 1234"}, "phone", "not a usable Vietnamese mobile number"),
        ({"phone": None}, "phone", "is required"),
    ],
)
def test_each_bad_field_of_a_phone_report_is_named(
    change: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_phone_report(PHONE_REPORT | change)
    assert list(fields(exc)) == [field]
    assert message in fields(exc)[field]


def test_all_bad_fields_are_named_at_once() -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_phone_report({})
    assert list(fields(exc)) == ["dossier", "kind", "description", "phone"]
    with pytest.raises(ValidationFailed) as exc:
        parse_phone_report([PHONE_REPORT])
    assert fields(exc) == {"": "the body must be a JSON object"}


# --- POST /v1/reports/{id}/transitions ----------------------------------------------------


def test_a_transition_needs_a_note_only_to_close() -> None:
    assert parse_transition({"to": "in_progress"}).note is None
    assert parse_transition({"to": "in_progress", "note": " Đã gọi cơ quan "}).note == (
        "Đã gọi cơ quan"
    )
    for to in ("resolved", "rejected"):
        with pytest.raises(ValidationFailed) as exc:
            parse_transition({"to": to, "note": " "})
        assert list(fields(exc)) == ["note"]
        assert f"required when the report is {to}" in fields(exc)["note"]
        assert parse_transition({"to": to, "note": "Đã trả kết quả"}).to == to


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"note": "x"}, "to", "is required: one of open, in_progress, resolved, rejected"),
        ({"to": "closed"}, "to", "must be one of open, in_progress, resolved, rejected"),
        ({"to": "in_progress", "note": 5}, "note", "must be a string"),
        ({"to": "in_progress", "note": "x" * 2001}, "note", "at most 2000 characters"),
    ],
)
def test_bad_transitions_name_the_field(body: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_transition(body)
    assert list(fields(exc)) == [field]
    assert message in fields(exc)[field]


def test_a_reply_is_text_of_at_most_2000_characters() -> None:
    assert parse_reply_text({"text": " Chào ông/bà "}) == "Chào ông/bà"
    assert len(parse_reply_text({"text": "x" * 2000})) == 2000
    for body in ({"text": "x" * 2001}, {"text": ""}, {}, {"text": ["a"]}):
        with pytest.raises(ValidationFailed) as exc:
            parse_reply_text(body)
        assert list(fields(exc)) == ["text"]


# --- query strings ------------------------------------------------------------------------


def test_report_queries() -> None:
    assert parse_report_query({}, ZONE) == ReportQuery()
    query = parse_report_query(
        {
            "status": "open,in_progress,open",
            "agency": "000.00.12.H19",
            "since": "2026-03-01",
            "limit": "10",
            "after": "42",
        },
        ZONE,
    )
    assert query.statuses == ("open", "in_progress")
    assert query.agency == "000.00.12.H19"
    assert query.since == datetime(2026, 2, 28, 17, 0, tzinfo=UTC)
    assert (query.limit, query.after) == (10, 42)
    # "+" of an offset that was not percent-encoded arrives as a space.
    decoded = parse_report_query({"since": "2026-03-01T08:00:00 07:00"}, ZONE)
    assert decoded.since == datetime(2026, 3, 1, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"status": "open,closed"}, "status", "not 'closed'"),
        ({"agency": "x" * 33}, "agency", "at most 32"),
        ({"since": "yesterday"}, "since", "must be a date"),
        ({"since": "2026-03-01T08:00:00"}, "since", "needs a UTC offset"),
        ({"limit": "0"}, "limit", "between 1 and 200"),
        ({"limit": "201"}, "limit", "between 1 and 200"),
        ({"limit": "ten"}, "limit", "whole number"),
        ({"after": "-1"}, "after", "between 1 and 9223372036854775807"),
        ({"after": "9223372036854775808"}, "after", "between 1 and 9223372036854775807"),
        ({"since": "0001-01-01"}, "since", "out of range"),
        ({"since": "9999-12-31T23:00:00-10:00"}, "since", "out of range"),
    ],
)
def test_bad_report_queries_name_the_parameter(
    query: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_report_query(query, ZONE)
    assert list(fields(exc)) == [field]
    assert message in fields(exc)[field]


def test_handoff_queries() -> None:
    assert parse_handoff_query({}) == ("open", 50)
    assert parse_handoff_query({"status": "closed", "limit": "5"}) == ("closed", 5)
    with pytest.raises(ValidationFailed) as exc:
        parse_handoff_query({"status": "waiting", "limit": "x"})
    assert list(fields(exc)) == ["status", "limit"]
