"""The violation rules over whole timelines: each fires once, with its evidence and officer.

The dossier of ``tests.helpers`` is received Monday 1 April 2024 by cc-0123 and due Friday
12 April 17:00; its consultation yk-1 of Sở Tài nguyên và Môi trường is due Friday 5 April
17:00. 18 April 2024 is a public holiday.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from gateway.domain.calendar import WorkingCalendar
from gateway.domain.lateness import judge
from gateway.domain.timeline import TimelineEvent, timeline_of
from gateway.domain.violations import (
    RULES,
    Finding,
    RuleText,
    description,
    detect,
    false_closure,
    rule_texts,
)
from gateway.settings import DEFAULT_TEMPLATES_DIR
from tests.domain.test_timeline import TZ, at, officer, row
from tests.helpers import CODE

CALENDAR = WorkingCalendar()
LATER = at(30, 12)  # long after everything: time alone decides nothing more
SECOND_REMINDER_DAYS = 2
CONSULTED = ("000.00.05.H19", "Sở Tài nguyên và Môi trường")
AGENCY = ("000.00.12.H19", "Sở Xây dựng")


def receipt(**changes: Any) -> dict[str, Any]:
    return row("dossier.received", 1, 8, **changes)


def finished(day: int = 10) -> dict[str, Any]:
    return row("dossier.finished", day, actor=officer("cv-fin"))


def timeline(*rows: dict[str, Any]) -> list[TimelineEvent]:
    return timeline_of(rows)


def findings(*rows: dict[str, Any], now: datetime = LATER) -> list[Finding]:
    events = timeline(*rows)
    lateness = judge(events, CALENDAR, TZ)
    return detect(CODE, events, lateness, now, CALENDAR, TZ, SECOND_REMINDER_DAYS)


def only(found: list[Finding], rule: str) -> Finding:
    assert [f.rule for f in found] == [rule]
    return found[0]


def consultation(day: int = 3) -> dict[str, Any]:
    return row("dossier.consultation_requested", day, actor=officer("cv-ask"))


def answered(day: int, hour: int = 9) -> dict[str, Any]:
    return row("dossier.consultation_answered", day, hour, actor=officer("tnmt-1"))


def delayed(day: int, new_day: int, who: str = "cv-late") -> dict[str, Any]:
    data = {"new_due_at": at(new_day, 17).isoformat(), "reason": "Chờ thẩm định"}
    return row("dossier.delayed", day, data=data, actor=officer(who))


def test_a_clean_dossier_gives_none() -> None:
    assert (
        findings(
            receipt(),
            row("dossier.processing", 2),
            consultation(),
            answered(5),
            row("dossier.paused", 8),
            row("dossier.resumed", 9),
            delayed(10, 12),
            finished(12),
            row("dossier.delivered", 15),
        )
        == []
    )


@pytest.mark.parametrize(
    ("phone", "rule"),
    [
        ("", "phone_missing"),
        (None, "phone_missing"),
        ("không có", "phone_missing"),
        ("12345", "phone_invalid"),
        ("028 3829 1234", "phone_landline"),
    ],
)
def test_a_bad_phone_at_receipt_is_the_receiving_officers(phone: str | None, rule: str) -> None:
    applicant: dict[str, Any] = {"name": "Nguyễn Văn An"}
    if phone is not None:
        applicant["phone"] = phone
    stored = receipt(applicant=applicant)
    f = only(findings(stored, finished()), rule)
    assert (f.officer_id, f.officer_name) == ("cc-0123", "Trần Thị Bình")
    assert (f.agency_code, f.agency_name) == AGENCY
    assert f.evidence == (stored["event_id"],)
    assert f.fingerprint == f"{rule}:{CODE}:{stored['event_id']}"
    assert f.occurred_at == at(1, 8)


def test_a_phone_sent_again_later_is_not_a_receipt() -> None:
    later = row("dossier.processing", 2, applicant={"name": "A", "phone": ""})
    assert findings(receipt(), later, finished()) == []


def test_a_pause_during_a_consultation_is_the_pausing_officers() -> None:
    asked = consultation(3)
    pause = row("dossier.paused", 4, actor=officer("cv-sos"))
    f = only(
        findings(receipt(), asked, pause, answered(5), finished()), "pause_during_consultation"
    )
    assert (f.officer_id, f.evidence) == ("cv-sos", (pause["event_id"], asked["event_id"]))
    assert f.detail == "paused while waiting for consultation(s): yk-1"
    assert (f.agency_code, f.occurred_at) == (AGENCY[0], at(4))


def test_a_pause_after_the_answer_is_fine() -> None:
    rows = (receipt(), consultation(3), answered(4), row("dossier.paused", 5), finished())
    assert findings(*rows) == []


def test_a_withdrawal_without_approval_is_the_recording_officers() -> None:
    withdrawn = row("dossier.withdrawn", 5, data={}, actor=officer("cv-rut"))
    f = only(findings(receipt(), withdrawn), "withdrawal_without_approval")
    assert (f.officer_id, f.evidence) == ("cv-rut", (withdrawn["event_id"],))
    assert findings(receipt(), row("dossier.withdrawn", 5)) == []


def test_an_answer_after_the_deadline_is_a_late_answer_of_the_consulted_agency() -> None:
    asked, answer = consultation(3), answered(8)
    f = only(findings(receipt(), asked, answer, finished()), "late_consultation_answer")
    assert (f.officer_id, (f.agency_code, f.agency_name)) == (None, CONSULTED)
    assert f.evidence == (asked["event_id"], answer["event_id"])
    assert (f.fingerprint, f.occurred_at) == (f"late_consultation_answer:{CODE}:yk-1", at(8))


def test_an_answer_the_same_evening_is_late_by_the_hour() -> None:
    # As ingest's flag: the consultation deadline is a moment (17:00), not a day.
    found = findings(receipt(), consultation(3), answered(5, 18), finished())
    assert only(found, "late_consultation_answer").detail == (
        "consultation yk-1 answered 1.0 h after its deadline"
    )


def test_no_answer_past_the_second_reminder_is_unanswered() -> None:
    # Due Friday 5, second reminder 2 working days later: Tuesday 9 April.
    rows = (receipt(), consultation(3), finished())
    assert findings(*rows, now=at(9, 23)) == []
    f = only(findings(*rows, now=at(10, 0, 30)), "consultation_unanswered")
    assert (f.officer_id, (f.agency_code, f.agency_name)) == (None, CONSULTED)
    assert f.occurred_at == datetime(2024, 4, 10, tzinfo=TZ)
    assert f.fingerprint == f"consultation_unanswered:{CODE}:yk-1"


def test_late_answer_and_unanswered_exclude_each_other_whenever_computed() -> None:
    base = (receipt(), consultation(3), finished())
    within = findings(*base, answered(9, 16))
    assert [f.rule for f in within] == ["late_consultation_answer"]
    # Past the second reminder: unanswered, and an answer coming later changes nothing.
    before_answer = findings(*base, now=at(11))
    after_answer = findings(*base, answered(11), now=at(30))
    assert [f.rule for f in before_answer] == ["consultation_unanswered"]
    assert [f.rule for f in after_answer] == ["consultation_unanswered"]
    assert (before_answer[0].fingerprint, before_answer[0].occurred_at) == (
        after_answer[0].fingerprint,
        after_answer[0].occurred_at,
    )


def test_an_answer_on_time_gives_nothing() -> None:
    assert findings(receipt(), consultation(3), answered(5, 16), finished()) == []


@pytest.mark.parametrize(
    ("type_", "rule"),
    [
        ("dossier.delayed", "second_rescheduling"),
        ("dossier.supplement_requested", "second_supplement_request"),
    ],
)
def test_the_chronologically_second_occurrence_is_flagged_once(type_: str, rule: str) -> None:
    data = {"new_due_at": at(19, 17).isoformat(), "reason": "x"} if "delayed" in type_ else None
    first = row(type_, 3, data=data, actor=officer("cv-1"))
    second = row(type_, 4, data=data, actor=officer("cv-2"))
    # The second happened later but is stored first: the verdict is the same.
    ordered = [f for f in findings(receipt(), second, first, finished(5)) if f.rule == rule]
    f = only(ordered, rule)
    assert (f.officer_id, f.evidence) == ("cv-2", (first["event_id"], second["event_id"]))
    assert f.fingerprint == f"{rule}:{CODE}:{second['event_id']}"


def test_two_reschedulings_give_one_second_rescheduling() -> None:
    found = findings(receipt(), delayed(3, 15), delayed(8, 19, "cv-2"), finished(19))
    assert [f.rule for f in found] == ["second_rescheduling"]


def test_two_supplement_requests_give_one_violation() -> None:
    found = findings(
        receipt(),
        row("dossier.supplement_requested", 2),
        row("dossier.processing", 3),
        row("dossier.supplement_requested", 4, actor=officer("cv-2")),
        row("dossier.processing", 5),
        finished(8),
    )
    assert only(found, "second_supplement_request").officer_id == "cv-2"


def test_an_apology_on_the_last_working_day_before_the_due_date_is_in_time() -> None:
    assert findings(receipt(), delayed(11, 17), finished(17)) == []


def test_an_apology_on_the_due_day_is_a_late_apology() -> None:
    apology = delayed(12, 17)
    f = only(findings(receipt(), apology, finished(17)), "late_apology")
    assert (f.officer_id, f.evidence, f.occurred_at) == ("cv-late", (apology["event_id"],), at(12))


def test_an_apology_after_the_due_date_is_late_and_the_dossier_overdue() -> None:
    apology = delayed(15, 19)
    found = findings(receipt(), apology, finished(17))
    assert [f.rule for f in found] == ["late_apology", "overdue_without_apology"]


def test_a_second_apology_is_judged_against_the_first_ones_date() -> None:
    # The first moved the date to Wednesday 17; the second, on Tuesday 16, is one
    # working day before: in time, but a second rescheduling.
    found = findings(receipt(), delayed(8, 17), delayed(16, 22, "cv-2"), finished(22))
    assert [f.rule for f in found] == ["second_rescheduling"]
    found = findings(receipt(), delayed(8, 17), delayed(17, 22, "cv-2"), finished(22))
    assert [f.rule for f in found] == ["second_rescheduling", "late_apology"]


def test_a_supplement_wait_before_the_apology_moves_its_deadline() -> None:
    # Waited Thu 4 - Mon 8 (3 working days): the date in force is Wednesday 17, so an
    # apology on Monday 15 is in time.
    found = findings(
        receipt(),
        row("dossier.supplement_requested", 3),
        row("dossier.processing", 8),
        delayed(15, 22),
        finished(22),
    )
    assert found == []


def test_finishing_late_without_an_apology_is_the_agencys() -> None:
    receipt_row, end = receipt(), finished(15)
    f = only(findings(receipt_row, end), "overdue_without_apology")
    assert (f.officer_id, (f.agency_code, f.agency_name)) == (None, AGENCY)
    assert f.occurred_at == datetime(2024, 4, 13, tzinfo=TZ)
    assert f.evidence == (receipt_row["event_id"], end["event_id"])
    assert f.fingerprint == f"overdue_without_apology:{CODE}:dossier"


def test_a_dossier_still_open_past_its_date_is_overdue_at_now() -> None:
    assert findings(receipt(), now=at(12, 22)) == []
    f = only(findings(receipt(), now=at(13, 8)), "overdue_without_apology")
    assert f.occurred_at == datetime(2024, 4, 13, tzinfo=TZ)


def test_a_paused_dossier_past_its_date_is_overdue() -> None:
    found = findings(receipt(), row("dossier.paused", 11), now=at(15))
    assert [f.rule for f in found] == ["overdue_without_apology"]


def test_a_timely_apology_keeps_a_late_dossier_out_of_overdue_without_apology() -> None:
    assert findings(receipt(), delayed(9, 17), finished(17)) == []


def test_detect_is_deterministic_whatever_the_row_order() -> None:
    rows = [
        receipt(applicant={"name": "A", "phone": ""}),
        consultation(3),
        row("dossier.paused", 4),
        delayed(13, 17),
        delayed(15, 19),
        row("dossier.withdrawn", 22, data={}),
    ]
    first = findings(*rows)
    assert first == findings(*rows)
    assert first == findings(*reversed(rows))
    assert {f.rule for f in first} == {
        "phone_missing",
        "pause_during_consultation",
        "consultation_unanswered",
        "second_rescheduling",
        "late_apology",
        "withdrawal_without_approval",
        "overdue_without_apology",
    }
    assert len({f.fingerprint for f in first}) == len(first)


def test_false_closure_is_on_the_officer_who_marked_it_finished() -> None:
    end = finished(10)
    events = timeline(receipt(), end, row("dossier.delivered", 11))
    f = false_closure(CODE, events, 42)
    assert f is not None
    assert (f.rule, f.officer_id, f.officer_name) == ("false_closure", "cv-fin", "Cán bộ cv-fin")
    assert (f.evidence, f.occurred_at) == ((end["event_id"],), at(10))
    assert f.fingerprint == f"false_closure:{CODE}:report-42"
    assert (f.agency_code, f.agency_name) == AGENCY


def test_false_closure_takes_the_finish_in_force() -> None:
    superseded = row("dossier.finished", 12, superseded=True, actor=officer("cv-old"))
    current = finished(10)
    f = false_closure(CODE, timeline(receipt(), current, superseded), 7)
    assert f is not None and f.officer_id == "cv-fin"


def test_no_false_closure_without_a_finish() -> None:
    assert false_closure(CODE, timeline(receipt()), 1) is None


def test_every_rule_has_a_vietnamese_description_and_a_source() -> None:
    texts = rule_texts(DEFAULT_TEMPLATES_DIR)
    assert set(texts) == set(RULES)
    for rule, text in texts.items():
        assert isinstance(text, RuleText)
        assert text.description and text.source, rule
        # Vietnamese: at least one letter outside ASCII (diacritics).
        assert any(ord(ch) > 127 for ch in text.description), rule
        assert RULES[rule].source, rule
    assert description("false_closure", DEFAULT_TEMPLATES_DIR).startswith("Bấm kết thúc")


def test_rule_texts_are_read_once_per_folder() -> None:
    assert rule_texts(DEFAULT_TEMPLATES_DIR) is rule_texts(DEFAULT_TEMPLATES_DIR)


def test_unknown_rules_have_no_description() -> None:
    with pytest.raises(KeyError):
        description("no_such_rule", DEFAULT_TEMPLATES_DIR)


def test_rule_ids_are_exactly_the_issues() -> None:
    assert set(RULES) == {
        "phone_missing",
        "phone_invalid",
        "phone_landline",
        "false_closure",
        "pause_during_consultation",
        "withdrawal_without_approval",
        "late_consultation_answer",
        "consultation_unanswered",
        "second_rescheduling",
        "second_supplement_request",
        "late_apology",
        "overdue_without_apology",
    }
    assert all(RULES[rule].id == rule for rule in RULES)


def test_dates_in_this_file_are_what_the_docstring_says() -> None:
    assert date(2024, 4, 12).weekday() == 4 and not CALENDAR.is_working_day(date(2024, 4, 18))
