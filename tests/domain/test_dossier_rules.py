"""Pure unit tests of what one event does: ``decide``, the audit rules, notice dedupe keys."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from gateway.domain.dossier import DossierState, decide
from gateway.domain.events import Event, parse_event
from gateway.domain.notices import dedupe_key, notices_for
from gateway.domain.phones import normalize_phone
from gateway.domain.rules import ConsultationView, History, PastEvent, flags_for
from tests.helpers import CODE, event

ICT = timezone(timedelta(hours=7))


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2024, 4, day, hour, tzinfo=ICT)


def iso(day: int, hour: int = 9) -> str:
    return at(day, hour).isoformat()


def parsed(type_: str, *, day: int = 2, hour: int = 9, **kwargs: Any) -> Event:
    actor = kwargs.pop("actor", ...)
    body = event(type_, at=iso(day, hour), **kwargs)
    if actor is not ...:
        body["actor"] = actor
    return parse_event(body)


def received_state(**changes: Any) -> DossierState:
    """The dossier right after a normal receipt on 1 April."""
    decision = decide(None, parsed("dossier.received", day=1, hour=8), History())
    return replace(decision.dossier, **changes)


# --- decide -------------------------------------------------------------------------


def test_first_event_creates_the_dossier_from_its_snapshot() -> None:
    decision = decide(None, parsed("dossier.received", day=1, hour=8), History())
    d = decision.dossier
    assert not decision.superseded
    assert (d.code, d.state, d.dvcqg_status, d.state_at) == (CODE, "received", 2, at(1, 8))
    assert (d.procedure_code, d.agency_code, d.applicant_name) == (
        "1.004227",
        "000.00.12.H19",
        "Nguyễn Văn An",
    )
    assert (d.phone_e164, d.phone_problem, d.received_by) == ("+84912345678", None, "cc-0123")
    assert d.due_at == d.original_due_at == datetime(2024, 4, 12, 17, tzinfo=ICT)
    assert d.event_count == 1
    assert [n.kind for n in decision.notices] == ["receipt"]
    assert decision.flags == []
    assert decision.consultation is None


def test_a_newer_event_moves_the_state() -> None:
    decision = decide(received_state(), parsed("dossier.processing"), History())
    assert not decision.superseded
    assert (decision.dossier.state, decision.dossier.dvcqg_status) == ("processing", 4)
    assert decision.dossier.state_at == at(2)
    assert decision.dossier.event_count == 2


def test_an_event_at_the_same_moment_is_not_superseded() -> None:
    current = received_state(state="processing", dvcqg_status=4, state_at=at(2))
    decision = decide(current, parsed("dossier.paused", day=2), History())
    assert not decision.superseded
    assert decision.dossier.state == "paused"


def test_an_older_event_is_superseded_and_changes_neither_state_nor_snapshot() -> None:
    finished = decide(received_state(), parsed("dossier.finished", day=10), History()).dossier
    late = parsed(
        "dossier.processing",
        day=3,
        applicant={"name": "Tên khác", "phone": "0987 654 321"},
        due_at="2024-04-30T17:00:00+07:00",
    )
    decision = decide(finished, late, History())
    assert decision.superseded
    assert decision.dossier == replace(finished, event_count=finished.event_count + 1)
    assert decision.notices == []


def test_a_superseded_receipt_sends_no_receipt_but_is_still_audited() -> None:
    finished = decide(None, parsed("dossier.finished", day=10), History()).dossier
    late = parsed("dossier.received", day=1, hour=8, applicant={"name": "An", "phone": ""})
    decision = decide(finished, late, History())
    assert decision.superseded
    assert decision.dossier.state == "finished"
    assert decision.dossier.dvcqg_status == 9
    assert decision.notices == []
    assert [f.rule for f in decision.flags] == ["phone_missing"]
    assert decision.flags[0].event_id == late.id


def test_a_superseded_delay_still_counts() -> None:
    current = received_state(state="processing", state_at=at(8))
    decision = decide(current, parsed("dossier.delayed", day=3), History())
    assert decision.superseded
    assert decision.dossier.reschedule_count == 1
    assert decision.dossier.due_at == current.due_at
    assert decision.notices == []


def test_later_snapshots_do_not_undo_the_date_promised_in_an_apology() -> None:
    delayed = decide(received_state(), parsed("dossier.delayed", day=5), History()).dossier
    # The one-stop-shop re-sends the first appointment (12/4) with every later event.
    later = decide(delayed, parsed("dossier.processing", day=8), History()).dossier
    finished = decide(later, parsed("dossier.finished", day=15), History()).dossier
    for d in (later, finished):
        assert d.due_at == datetime(2024, 4, 17, 17, tzinfo=ICT)
        assert d.original_due_at == datetime(2024, 4, 12, 17, tzinfo=ICT)


def test_only_another_apology_moves_a_promised_date() -> None:
    first = decide(received_state(), parsed("dossier.delayed", day=5), History()).dossier
    second = parsed(
        "dossier.delayed", day=10, data={"new_due_at": iso(22, 17), "reason": "Chờ thẩm định"}
    )
    decision = decide(first, second, History())
    d = decision.dossier
    assert (d.due_at, d.reschedule_count) == (at(22, 17), 2)
    assert d.original_due_at == datetime(2024, 4, 12, 17, tzinfo=ICT)
    # The second apology moves the citizen from the date promised in the first one.
    (notice,) = decision.notices
    assert notice.params["old_due_at"] == "2024-04-17T17:00:00+07:00"
    assert notice.params["new_due_at"] == "2024-04-22T17:00:00+07:00"


def test_without_an_apology_the_snapshot_due_date_is_followed() -> None:
    moved = parsed("dossier.processing", due_at=iso(19, 17))
    assert decide(received_state(), moved, History()).dossier.due_at == at(19, 17)


def test_a_superseded_consultation_answer_still_closes_the_consultation() -> None:
    current = received_state(state="paused", state_at=at(8))
    decision = decide(current, parsed("dossier.consultation_answered", day=4), History())
    assert decision.superseded
    assert decision.consultation is not None
    assert decision.consultation.answered_at == at(4)


def test_delay_moves_the_due_date_and_keeps_the_original() -> None:
    body = event("dossier.delayed", at=iso(5))
    del body["dossier"]["due_at"]
    decision = decide(received_state(), parse_event(body), History())
    d = decision.dossier
    assert d.due_at == datetime(2024, 4, 17, 17, tzinfo=ICT)
    assert d.original_due_at == datetime(2024, 4, 12, 17, tzinfo=ICT)
    assert d.reschedule_count == 1
    (notice,) = decision.notices
    assert notice.kind == "apology"
    assert notice.params["old_due_at"] == "2024-04-12T17:00:00+07:00"
    assert notice.params["new_due_at"] == "2024-04-17T17:00:00+07:00"


def test_finish_records_who_closed_the_dossier() -> None:
    decision = decide(received_state(), parsed("dossier.finished", day=10), History())
    d = decision.dossier
    assert (d.finished_at, d.finished_by_id, d.finished_by_name) == (
        at(10),
        "cc-0123",
        "Trần Thị Bình",
    )
    (notice,) = decision.notices
    assert notice.params["pickup"] == "Trung tâm Hành chính công tỉnh, quầy 5"


def test_phone_absent_after_the_receipt_means_unchanged() -> None:
    body = event("dossier.processing", at=iso(3))
    del body["dossier"]["applicant"]
    decision = decide(received_state(), parse_event(body), History())
    assert decision.dossier.phone_e164 == "+84912345678"
    assert decision.flags == []


def test_consultation_request_opens_a_consultation() -> None:
    decision = decide(received_state(), parsed("dossier.consultation_requested"), History())
    change = decision.consultation
    assert change is not None
    assert (change.consultation_id, change.agency_code, change.agency_name) == (
        "yk-1",
        "000.00.05.H19",
        "Sở Tài nguyên và Môi trường",
    )
    assert (change.requested_at, change.due_at) == (at(2), at(5, 17))
    assert decision.dossier.state == "in_consultation"


# --- rules: phones, withdrawal --------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "rule"),
    [
        ("", "phone_missing"),
        ("   ", "phone_missing"),
        (None, "phone_missing"),
        ("0912 abc 678", "phone_invalid"),
        ("0912345", "phone_invalid"),
        ("0251 3822 123", "phone_landline"),
        ("(061) 3822123", "phone_landline"),
        ("0912 345 678", None),
    ],
)
def test_receipt_phone_rules(phone: str | None, rule: str | None) -> None:
    applicant: dict[str, Any] = {"name": "An"} | ({} if phone is None else {"phone": phone})
    decision = decide(None, parsed("dossier.received", day=1, applicant=applicant), History())
    assert [f.rule for f in decision.flags] == ([rule] if rule else [])
    for f in decision.flags:
        assert (f.officer_id, f.officer_name, f.agency_code) == (
            "cc-0123",
            "Trần Thị Bình",
            "000.00.12.H19",
        )
    (notice,) = decision.notices
    assert notice.phone_e164 == (None if rule else "+84912345678")


def test_a_bad_phone_outside_the_receipt_is_not_the_receiving_officers_fault() -> None:
    event_ = parsed("dossier.processing", applicant={"name": "An", "phone": "abc"})
    decision = decide(received_state(), event_, History())
    assert decision.flags == []
    assert decision.dossier.phone_e164 is None


@pytest.mark.parametrize(
    ("data", "flagged"),
    [({}, True), ({"approved_by": None}, True), (None, False)],
)
def test_withdrawal_needs_the_heads_approval(data: dict[str, Any] | None, flagged: bool) -> None:
    decision = decide(received_state(), parsed("dossier.withdrawn", data=data), History())
    assert [f.rule for f in decision.flags] == (["withdrawal_without_approval"] if flagged else [])


# --- rules: consultations -----------------------------------------------------------


def consultation(
    requested: datetime | None, answered: datetime | None, due: datetime | None = None
) -> ConsultationView:
    return ConsultationView("yk-1", "000.00.05.H19", requested, due or at(5, 17), answered)


@pytest.mark.parametrize(
    ("requested", "answered", "flagged"),
    [
        (at(2), None, True),  # still waiting
        (at(2), at(4), True),  # answered after the pause
        (at(2), at(3, 8), False),  # answered before the pause
        (at(4), None, False),  # requested after the pause
        (None, at(2), False),  # only the answer is known
    ],
)
def test_pause_during_consultation(
    requested: datetime | None, answered: datetime | None, flagged: bool
) -> None:
    history = History(consultations=(consultation(requested, answered),))
    decision = decide(received_state(), parsed("dossier.paused", day=3), history)
    rules = [f.rule for f in decision.flags]
    assert rules == (["pause_during_consultation"] if flagged else [])
    if flagged:
        assert "yk-1" in decision.flags[0].detail
        assert decision.flags[0].officer_id == "cc-0123"


def test_late_consultation_answer_is_the_consulted_agencys() -> None:
    history = History(consultations=(consultation(at(2), None),))
    answer = parsed("dossier.consultation_answered", day=6, actor={"id": "tn-9", "name": "Lê C"})
    (flag,) = decide(received_state(), answer, history).flags
    assert flag.rule == "late_consultation_answer"
    assert flag.agency_code == "000.00.05.H19"
    assert (flag.officer_id, flag.event_id) == ("tn-9", answer.id)
    assert flag.detail == "consultation yk-1 answered 16.0 h after its deadline"


def test_an_answer_in_time_or_of_an_unknown_consultation_is_not_late() -> None:
    history = History(consultations=(consultation(at(2), None),))
    answer = parsed("dossier.consultation_answered", day=5, hour=17)
    assert decide(received_state(), answer, history).flags == []
    late_but_unknown = parsed("dossier.consultation_answered", day=9)
    assert decide(received_state(), late_but_unknown, History()).flags == []


def test_a_late_answer_that_arrived_before_its_request_is_flagged_with_the_request() -> None:
    history = History(consultations=(consultation(None, at(6)),))
    request = parsed("dossier.consultation_requested", day=2)
    (flag,) = decide(received_state(), request, history).flags
    assert flag.rule == "late_consultation_answer"
    assert flag.agency_code == "000.00.05.H19"


# --- rules: only once (rescheduling, supplement requests) --------------------------


def past(id_: str, type_: str, day: int, actor: str) -> PastEvent:
    return PastEvent(id_, type_, at(day), actor, f"Cán bộ {actor}")


@pytest.mark.parametrize("type_", ["dossier.delayed", "dossier.supplement_requested"])
def test_the_first_occurrence_is_allowed(type_: str) -> None:
    first = parsed(type_, day=3)
    # The event itself may already be in the history (recorded in the same group).
    history = History(same_type=(past(first.id, type_, 3, "cc-0123"),))
    assert decide(received_state(), first, history).flags == []
    assert decide(received_state(), first, History()).flags == []


@pytest.mark.parametrize(
    ("type_", "rule", "what"),
    [
        ("dossier.delayed", "second_rescheduling", "rescheduling"),
        ("dossier.supplement_requested", "second_supplement_request", "supplement request"),
    ],
)
def test_the_newest_second_occurrence_is_flagged_on_itself(
    type_: str, rule: str, what: str
) -> None:
    history = History(same_type=(past("old", type_, 3, "cc-1"),))
    new = parsed(type_, day=4, actor={"id": "cc-2", "name": "Cán bộ 2"})
    (flag,) = decide(received_state(), new, history).flags
    assert (flag.rule, flag.event_id, flag.occurred_at) == (rule, new.id, at(4))
    assert (flag.officer_id, flag.officer_name) == ("cc-2", "Cán bộ 2")
    assert flag.agency_code == "000.00.12.H19"
    assert flag.detail == f"{what} number 2 for this dossier (only one is allowed)"


@pytest.mark.parametrize("type_", ["dossier.delayed", "dossier.supplement_requested"])
def test_an_older_occurrence_arriving_late_flags_the_one_that_is_now_second(type_: str) -> None:
    history = History(same_type=(past("newer", type_, 6, "cc-1"),))
    older = parsed(type_, day=4, hour=8, actor={"id": "cc-2", "name": "Cán bộ 2"})
    (flag,) = decide(received_state(), older, history).flags
    assert (flag.event_id, flag.occurred_at) == ("newer", at(6))
    assert (flag.officer_id, flag.officer_name) == ("cc-1", "Cán bộ cc-1")
    assert "number 2" in flag.detail


def test_an_occurrence_between_two_recorded_ones_is_flagged_with_its_rank() -> None:
    type_ = "dossier.supplement_requested"
    history = History(same_type=(past("a", type_, 3, "cc-1"), past("c", type_, 7, "cc-3")))
    middle = parsed(type_, day=5)
    (flag,) = decide(received_state(), middle, history).flags
    assert flag.event_id == middle.id
    assert "number 2" in flag.detail
    last = parsed(type_, day=9)
    (flag,) = decide(received_state(), last, history).flags
    assert "number 3" in flag.detail


def test_other_types_in_the_history_do_not_count() -> None:
    history = History(same_type=(past("s", "dossier.supplement_requested", 3, "cc-1"),))
    assert decide(received_state(), parsed("dossier.delayed", day=4), history).flags == []


def test_flags_for_works_on_the_rule_inputs_alone() -> None:
    withdrawn = parsed("dossier.withdrawn", data={})
    phone = normalize_phone("0912345678")
    (flag,) = flags_for(withdrawn, received_state(), History(), phone)
    assert flag.rule == "withdrawal_without_approval"
    assert flag.occurred_at == at(2)


# --- notices ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "kind", "key"),
    [
        ("dossier.received", "receipt", f"{CODE}/receipt"),
        ("dossier.refused", "refusal", f"{CODE}/refusal"),
        ("dossier.withdrawn", "withdrawal", f"{CODE}/withdrawal"),
        ("dossier.finished", "invitation", f"{CODE}/invitation"),
        ("dossier.supplement_requested", "supplement", f"{CODE}/supplement/evt-7"),
        ("dossier.fees_due", "fees", f"{CODE}/fees/evt-7"),
        ("dossier.delayed", "apology", f"{CODE}/apology/2024-04-17"),
    ],
)
def test_each_notice_kind_has_its_dedupe_key(type_: str, kind: str, key: str) -> None:
    event_ = parse_event(event(type_, id="evt-7"))
    assert dedupe_key(CODE, kind, event_) == key
    (notice,) = notices_for(event_, received_state())
    assert (notice.kind, notice.dedupe_key, notice.phone_e164) == (kind, key, "+84912345678")
    assert notice.params["dossier_code"] == CODE
    assert notice.params["due_at"] == "2024-04-12T17:00:00+07:00"


def test_once_per_dossier_kinds_share_a_key_across_event_ids() -> None:
    first = parse_event(event("dossier.finished", id="fin-1"))
    again = parse_event(event("dossier.finished", id="fin-2", data={"delivery": "post"}))
    assert dedupe_key(CODE, "invitation", first) == dedupe_key(CODE, "invitation", again)


def test_per_event_kinds_differ_per_event_id() -> None:
    one = parse_event(event("dossier.supplement_requested", id="sup-1"))
    two = parse_event(event("dossier.supplement_requested", id="sup-2"))
    assert dedupe_key(CODE, "supplement", one) != dedupe_key(CODE, "supplement", two)


def test_apologies_are_one_per_new_due_date() -> None:
    def delayed(id_: str, new_due_at: str) -> Event:
        return parse_event(
            event("dossier.delayed", id=id_, data={"new_due_at": new_due_at, "reason": "x"})
        )

    same_day = (
        delayed("d-1", "2024-04-17T09:00:00+07:00"),
        delayed("d-2", "2024-04-17T17:00:00+07:00"),
    )
    assert dedupe_key(CODE, "apology", same_day[0]) == dedupe_key(CODE, "apology", same_day[1])
    other_day = delayed("d-3", "2024-04-18T17:00:00+07:00")
    assert dedupe_key(CODE, "apology", other_day) == f"{CODE}/apology/2024-04-18"


@pytest.mark.parametrize(
    "type_",
    [
        "dossier.processing",
        "dossier.consultation_requested",
        "dossier.consultation_answered",
        "dossier.paused",
        "dossier.resumed",
        "dossier.delivered",
    ],
)
def test_internal_steps_send_no_notice(type_: str) -> None:
    assert notices_for(parse_event(event(type_)), received_state()) == []


def test_notice_parameters_carry_the_facts_to_render() -> None:
    supplement = parse_event(event("dossier.supplement_requested"))
    (notice,) = notices_for(supplement, received_state())
    assert notice.params["reason"] == "Thiếu bản vẽ"
    assert notice.params["documents"] == ["Bản vẽ mặt bằng"]
    fees = parse_event(event("dossier.fees_due"))
    (notice,) = notices_for(fees, received_state())
    assert (notice.params["amount"], notice.params["reason"]) == (150000, "Lệ phí cấp phép")
    assert notice.params["received_at"] == "2024-04-01T08:05:00+07:00"


def test_a_notice_without_a_usable_phone_has_no_recipient() -> None:
    (notice,) = notices_for(parse_event(event("dossier.refused")), received_state(phone_e164=None))
    assert notice.phone_e164 is None
