"""Pure unit tests of ``gateway.domain.events.parse_event`` (no I/O)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from gateway.domain.events import EVENT_TYPES, body_fingerprint, parse_event
from gateway.errors import FieldError, ValidationFailed
from tests.helpers import CODE, VALID_DATA, changed, event

ICT = timezone(timedelta(hours=7))


def fields_of(body: Any) -> list[str]:
    """The fields ``parse_event`` complains about, in its order."""
    with pytest.raises(ValidationFailed) as caught:
        parse_event(body)
    return [e.field for e in caught.value.errors]


# --- valid events -------------------------------------------------------------------


@pytest.mark.parametrize("type_", list(EVENT_TYPES))
def test_every_type_with_its_documented_data_parses(type_: str) -> None:
    parsed = parse_event(event(type_))
    assert parsed.type == type_
    assert parsed.dossier.code == CODE
    assert parsed.occurred_at.utcoffset() == timedelta(hours=7)
    assert parsed.actor is not None and parsed.actor.id == "cc-0123"


def test_a_received_event_is_read_into_typed_fields() -> None:
    parsed = parse_event(event("dossier.received", id="evt-1"))
    assert parsed.id == "evt-1"
    assert parsed.occurred_at == datetime(2024, 4, 1, 1, 5, tzinfo=UTC)
    snap = parsed.dossier
    assert snap.procedure is not None and snap.procedure.code == "1.004227"
    assert snap.agency is not None and snap.agency.name == "Sở Xây dựng"
    assert snap.applicant is not None and snap.applicant.phone == "0912 345 678"
    assert snap.received_at == datetime(2024, 4, 1, 8, 5, tzinfo=ICT)
    assert snap.due_at == datetime(2024, 4, 12, 17, 0, tzinfo=ICT)
    assert parsed.actor is not None and parsed.actor.unit == "Bộ phận một cửa"
    assert parsed.spec.dvcqg_status == 2


def test_data_is_cleaned_and_typed() -> None:
    supplement = parse_event(
        event(
            "dossier.supplement_requested",
            data={"reason": "  Thiếu  ", "documents": [" Bản vẽ ", "Sổ đỏ"]},
        )
    )
    assert supplement.data == {"reason": "Thiếu", "documents": ["Bản vẽ", "Sổ đỏ"]}
    fees = parse_event(event("dossier.fees_due", data={"amount": 150000.0, "reason": "Lệ phí"}))
    assert fees.data["amount"] == 150000 and isinstance(fees.data["amount"], int)
    delayed = parse_event(event("dossier.delayed"))
    assert delayed.data["new_due_at"] == datetime(2024, 4, 17, 17, 0, tzinfo=ICT)
    consult = parse_event(event("dossier.consultation_requested"))
    assert consult.data["agency"] == {
        "code": "000.00.05.H19",
        "name": "Sở Tài nguyên và Môi trường",
    }
    assert consult.data["due_at"] == datetime(2024, 4, 5, 17, 0, tzinfo=ICT)
    withdrawn = parse_event(event("dossier.withdrawn", data={}))
    assert withdrawn.data == {"approved_by": None}
    online = parse_event(event("dossier.finished", data={"delivery": "online"}))
    assert online.data == {"pickup": None, "delivery": "online"}


@pytest.mark.parametrize(
    ("type_", "path", "value"),
    [
        # Only received, finished and withdrawn need an actor.
        ("dossier.processing", "actor", ...),
        ("dossier.processing", "actor", None),
        # Outside the receipt the snapshot may be partial.
        ("dossier.processing", "dossier.applicant", ...),
        ("dossier.processing", "dossier.procedure", ...),
        ("dossier.processing", "dossier.due_at", ...),
        ("dossier.processing", "dossier.received_at", ...),
        ("dossier.resumed", "data", None),
        ("dossier.resumed", "data", ...),
        ("dossier.withdrawn", "data.approved_by", ...),
        ("dossier.withdrawn", "data.approved_by", None),
    ],
)
def test_optional_outside_the_receipt(type_: str, path: str, value: Any) -> None:
    assert parse_event(changed(event(type_), path, value)).type == type_


@pytest.mark.parametrize("phone", ["", "abc", "0251 3822 123"])
def test_an_unusable_phone_is_accepted_for_the_rules_to_flag(phone: str) -> None:
    parsed = parse_event(changed(event("dossier.received"), "dossier.applicant.phone", phone))
    assert parsed.dossier.applicant is not None
    assert parsed.dossier.applicant.phone == phone


def test_a_receipt_without_phone_key_is_accepted() -> None:
    parsed = parse_event(changed(event("dossier.received"), "dossier.applicant.phone", ...))
    assert parsed.dossier.applicant is not None and parsed.dossier.applicant.phone is None


# --- invalid events: exactly the faulty field -------------------------------------

RECEIVED = event("dossier.received")

SINGLE_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("missing id", changed(RECEIVED, "id", ...), "id"),
    ("id with a space", changed(RECEIVED, "id", "evt 1"), "id"),
    ("id too long", changed(RECEIVED, "id", "e" * 129), "id"),
    ("missing type", changed(RECEIVED, "type", ...), "type"),
    ("unknown type", changed(RECEIVED, "type", "dossier.lost"), "type"),
    ("missing occurred_at", changed(RECEIVED, "occurred_at", ...), "occurred_at"),
    ("naive occurred_at", changed(RECEIVED, "occurred_at", "2024-04-01T08:05:00"), "occurred_at"),
    ("date only", changed(RECEIVED, "occurred_at", "2024-04-01"), "occurred_at"),
    ("not a date", changed(RECEIVED, "occurred_at", "hôm qua"), "occurred_at"),
    ("number date", changed(RECEIVED, "occurred_at", 1712000000), "occurred_at"),
    (
        "date out of range in UTC",
        changed(RECEIVED, "occurred_at", "9999-12-31T23:00:00-05:00"),
        "occurred_at",
    ),
    ("missing dossier", changed(RECEIVED, "dossier", ...), "dossier"),
    ("dossier not an object", changed(RECEIVED, "dossier", CODE), "dossier"),
    ("missing code", changed(RECEIVED, "dossier.code", ...), "dossier.code"),
    ("bad code", changed(RECEIVED, "dossier.code", "000.00.12.H19-240431-0001"), "dossier.code"),
    ("lower-case code", changed(RECEIVED, "dossier.code", CODE.lower()), "dossier.code"),
    ("receipt without due_at", changed(RECEIVED, "dossier.due_at", ...), "dossier.due_at"),
    (
        "receipt without received_at",
        changed(RECEIVED, "dossier.received_at", ...),
        "dossier.received_at",
    ),
    (
        "due_at equal to received_at",
        changed(RECEIVED, "dossier.due_at", "2024-04-01T08:05:00+07:00"),
        "dossier.due_at",
    ),
    (
        "due_at before received_at in another offset",
        changed(RECEIVED, "dossier.due_at", "2024-04-01T01:00:00+00:00"),
        "dossier.due_at",
    ),
    ("receipt without procedure", changed(RECEIVED, "dossier.procedure", ...), "dossier.procedure"),
    ("receipt without agency", changed(RECEIVED, "dossier.agency", ...), "dossier.agency"),
    ("agency without name", changed(RECEIVED, "dossier.agency.name", ""), "dossier.agency.name"),
    ("receipt without applicant", changed(RECEIVED, "dossier.applicant", ...), "dossier.applicant"),
    (
        "applicant without name",
        changed(RECEIVED, "dossier.applicant.name", ...),
        "dossier.applicant.name",
    ),
    (
        "phone not a string",
        changed(RECEIVED, "dossier.applicant.phone", 912345678),
        "dossier.applicant.phone",
    ),
    ("receipt without actor", changed(RECEIVED, "actor", ...), "actor"),
    ("actor without id", changed(RECEIVED, "actor.id", ...), "actor.id"),
    ("data not an object", changed(RECEIVED, "data", []), "data"),
    (
        "event before the receipt",
        event("dossier.processing", at="2024-03-31T09:00:00+07:00"),
        "occurred_at",
    ),
    ("finished without actor", changed(event("dossier.finished"), "actor", ...), "actor"),
    ("withdrawn without actor", changed(event("dossier.withdrawn"), "actor", ...), "actor"),
    (
        "supplement without documents",
        event("dossier.supplement_requested", data={"reason": "x"}),
        "data.documents",
    ),
    (
        "supplement documents empty",
        event("dossier.supplement_requested", data={"reason": "x", "documents": []}),
        "data.documents",
    ),
    (
        "supplement documents not a list",
        event("dossier.supplement_requested", data={"reason": "x", "documents": "Bản vẽ"}),
        "data.documents",
    ),
    (
        "supplement document not a string",
        event("dossier.supplement_requested", data={"reason": "x", "documents": ["a", 7]}),
        "data.documents[1]",
    ),
    (
        "supplement document blank",
        event("dossier.supplement_requested", data={"reason": "x", "documents": [" "]}),
        "data.documents[0]",
    ),
    (
        "supplement without reason",
        event("dossier.supplement_requested", data={"documents": ["a"]}),
        "data.reason",
    ),
    ("refusal without reason", event("dossier.refused", data={}), "data.reason"),
    ("processing without unit", event("dossier.processing", data={}), "data.unit"),
    ("fees without amount", event("dossier.fees_due", data={"reason": "x"}), "data.amount"),
    ("fees negative", event("dossier.fees_due", data={"amount": -1, "reason": "x"}), "data.amount"),
    (
        "fees fractional",
        event("dossier.fees_due", data={"amount": 1.5, "reason": "x"}),
        "data.amount",
    ),
    (
        "fees string",
        event("dossier.fees_due", data={"amount": "150000", "reason": "x"}),
        "data.amount",
    ),
    ("fees bool", event("dossier.fees_due", data={"amount": True, "reason": "x"}), "data.amount"),
    (
        "fees NaN",
        event("dossier.fees_due", data={"amount": float("nan"), "reason": "x"}),
        "data.amount",
    ),
    (
        "fees infinite",
        event("dossier.fees_due", data={"amount": float("inf"), "reason": "x"}),
        "data.amount",
    ),
    ("fees without reason", event("dossier.fees_due", data={"amount": 1}), "data.reason"),
    (
        "consultation without agency",
        event(
            "dossier.consultation_requested",
            data={"consultation_id": "yk-1", "due_at": "2024-04-05T17:00:00+07:00"},
        ),
        "data.agency",
    ),
    (
        "consultation agency without code",
        event(
            "dossier.consultation_requested",
            data={
                "consultation_id": "yk-1",
                "agency": {"name": "Sở"},
                "due_at": "2024-04-05T17:00:00+07:00",
            },
        ),
        "data.agency.code",
    ),
    (
        "consultation without due_at",
        event(
            "dossier.consultation_requested",
            data={"consultation_id": "yk-1", "agency": {"code": "A", "name": "B"}},
        ),
        "data.due_at",
    ),
    (
        "consultation without id",
        event(
            "dossier.consultation_requested",
            data={"agency": {"code": "A", "name": "B"}, "due_at": "2024-04-05T17:00:00+07:00"},
        ),
        "data.consultation_id",
    ),
    (
        "answer without consultation id",
        event("dossier.consultation_answered", data={}),
        "data.consultation_id",
    ),
    ("pause without reason", event("dossier.paused", data={}), "data.reason"),
    (
        "delayed without new_due_at",
        event("dossier.delayed", data={"reason": "x"}),
        "data.new_due_at",
    ),
    (
        "delayed new_due_at equal to occurred_at",
        event("dossier.delayed", data={"reason": "x", "new_due_at": "2024-04-02T09:00:00+07:00"}),
        "data.new_due_at",
    ),
    (
        "delayed new_due_at before occurred_at",
        event("dossier.delayed", data={"reason": "x", "new_due_at": "2024-04-02T01:59:00+00:00"}),
        "data.new_due_at",
    ),
    (
        "delayed naive new_due_at",
        event("dossier.delayed", data={"reason": "x", "new_due_at": "2024-04-17T17:00:00"}),
        "data.new_due_at",
    ),
    ("finished without pickup or delivery", event("dossier.finished", data={}), "data.pickup"),
    (
        "finished with null delivery",
        event("dossier.finished", data={"delivery": None}),
        "data.pickup",
    ),
    ("finished with blank pickup", event("dossier.finished", data={"pickup": "  "}), "data.pickup"),
    (
        "finished with both",
        event("dossier.finished", data={"pickup": "quầy 5", "delivery": "post"}),
        "data",
    ),
    (
        "finished bad delivery",
        event("dossier.finished", data={"delivery": "email"}),
        "data.delivery",
    ),
    (
        "finished delivery not a string",
        event("dossier.finished", data={"delivery": ["post"]}),
        "data.delivery",
    ),
    (
        "withdrawn approved_by a string",
        event("dossier.withdrawn", data={"approved_by": "ld-0001"}),
        "data.approved_by",
    ),
    (
        "withdrawn approved_by without name",
        event("dossier.withdrawn", data={"approved_by": {"id": "ld-0001"}}),
        "data.approved_by.name",
    ),
    (
        "withdrawn approved_by without id",
        event("dossier.withdrawn", data={"approved_by": {"name": "Đạt"}}),
        "data.approved_by.id",
    ),
]


@pytest.mark.parametrize(
    ("body", "field"),
    [pytest.param(body, field, id=name) for name, body, field in SINGLE_ERRORS],
)
def test_a_single_fault_names_exactly_its_field(body: dict[str, Any], field: str) -> None:
    assert fields_of(body) == [field]


@pytest.mark.parametrize("body", [None, [], "event", 7, [event("dossier.received")]])
def test_the_event_must_be_an_object(body: Any) -> None:
    assert fields_of(body) == [""]


def test_every_fault_is_reported_in_one_raise() -> None:
    body = event("dossier.received")
    body["id"] = "evt with spaces"
    body["occurred_at"] = "2024-04-01T08:05:00"
    body["dossier"]["code"] = "not-a-code"
    del body["dossier"]["due_at"]
    body["dossier"]["agency"] = {"code": "000.00.12.H19"}
    body["actor"] = {"name": "Trần Thị Bình"}
    body["data"] = "nothing"
    with pytest.raises(ValidationFailed) as caught:
        parse_event(body)
    errors = caught.value.errors
    assert [e.field for e in errors] == [
        "id",
        "occurred_at",
        "dossier.code",
        "dossier.agency.name",
        "dossier.due_at",
        "actor.id",
        "data",
    ]
    assert all(isinstance(e, FieldError) and e.message for e in errors)
    assert caught.value.detail == (
        "7 invalid fields: id, occurred_at, dossier.code, dossier.agency.name, dossier.due_at, "
        "actor.id, data"
    )


def test_several_data_faults_are_all_reported() -> None:
    body = event("dossier.fees_due", data={"amount": -5, "reason": 3})
    body["occurred_at"] = "2024-03-01T09:00:00+07:00"
    assert fields_of(body) == ["data.amount", "data.reason", "occurred_at"]
    body = event("dossier.supplement_requested", data={"reason": "", "documents": [1, "ok", None]})
    assert fields_of(body) == ["data.reason", "data.documents[0]", "data.documents[2]"]


def test_unknown_type_skips_data_rules_but_keeps_checking_the_rest() -> None:
    body = event("dossier.received", data={"anything": True})
    body["type"] = "dossier.teleported"
    body["dossier"]["code"] = "x"
    assert fields_of(body) == ["type", "dossier.code"]


def test_messages_explain_the_fault() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_event(changed(RECEIVED, "occurred_at", "2024-04-01T08:05:00"))
    assert caught.value.errors == [
        FieldError("occurred_at", "must include a UTC offset, e.g. +07:00")
    ]
    with pytest.raises(ValidationFailed) as caught:
        parse_event(changed(RECEIVED, "type", "dossier.lost"))
    message = caught.value.errors[0].message
    assert message.startswith("unknown event type; expected one of: dossier.received,")
    assert all(name in message for name in VALID_DATA)


# --- fingerprints ----------------------------------------------------------------


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    body = event("dossier.received")
    reordered = dict(reversed(list(copy.deepcopy(body).items())))
    reordered["dossier"] = dict(reversed(list(reordered["dossier"].items())))
    assert body_fingerprint(body) == body_fingerprint(reordered)
    assert body_fingerprint(body) != body_fingerprint(changed(body, "data", {"x": 1}))
    assert body_fingerprint(body) != body_fingerprint(
        changed(body, "dossier.applicant.phone", "0912345678")
    )
