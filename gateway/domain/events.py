"""Dossier events from the one-stop-shop: the types, their data, and strict parsing.

``parse_event`` turns a decoded JSON object into a typed :class:`Event` or raises
:class:`~gateway.errors.ValidationFailed` listing *every* faulty field, so an integrator
fixes a payload in one round trip.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.domain.codes import parse_dossier_code
from gateway.errors import FieldError, ValidationFailed

_EVENT_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_MAX_TEXT = 2000


@dataclass(frozen=True, slots=True)
class EventType:
    """What one event type means: its national status code and the notice it calls for."""

    name: str
    dvcqg_status: int
    state: str
    notice_kind: str | None


EVENT_TYPES: dict[str, EventType] = {
    t.name: t
    for t in (
        EventType("dossier.received", 2, "received", "receipt"),
        EventType("dossier.supplement_requested", 5, "supplement_requested", "supplement"),
        EventType("dossier.refused", 3, "refused", "refusal"),
        EventType("dossier.processing", 4, "processing", None),
        EventType("dossier.consultation_requested", 4, "in_consultation", None),
        EventType("dossier.consultation_answered", 4, "processing", None),
        EventType("dossier.fees_due", 6, "fees_due", "fees"),
        EventType("dossier.paused", 8, "paused", None),
        EventType("dossier.resumed", 4, "processing", None),
        EventType("dossier.withdrawn", 7, "withdrawn", "withdrawal"),
        EventType("dossier.delayed", 4, "processing", "apology"),
        EventType("dossier.finished", 9, "finished", "invitation"),
        EventType("dossier.delivered", 10, "delivered", None),
    )
}

# Types whose actor is the officer a violation would be attributed to: without one the
# audit trail has no name, so they are required there.
_ACTOR_REQUIRED = frozenset({"dossier.received", "dossier.finished", "dossier.withdrawn"})


@dataclass(frozen=True, slots=True)
class Party:
    """A coded, named thing: a procedure, an agency."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Person:
    """Someone acting in the one-stop-shop: an officer, a head of unit."""

    id: str
    name: str
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Applicant:
    """The citizen (chủ hồ sơ); the phone is kept raw and normalised later."""

    name: str | None
    phone: str | None


@dataclass(frozen=True, slots=True)
class DossierSnapshot:
    """The dossier as the one-stop-shop described it in this event."""

    code: str
    procedure: Party | None = None
    agency: Party | None = None
    applicant: Applicant | None = None
    received_at: datetime | None = None
    due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One validated dossier event."""

    id: str
    type: str
    occurred_at: datetime
    dossier: DossierSnapshot
    actor: Person | None
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> EventType:
        return EVENT_TYPES[self.type]


def body_fingerprint(body: Mapping[str, Any]) -> str:
    """A digest of the event's meaning, blind to key order and white space."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


class _Reader:
    """Collects field errors while reading a nested JSON object."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def obj(self, value: Any, path: str, *, required: bool = True) -> Mapping[str, Any] | None:
        if value is None:
            if required:
                self.fail(path, "is required")
            return None
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return None
        return value

    def text(
        self, parent: Mapping[str, Any], key: str, path: str, *, required: bool = True
    ) -> str | None:
        value = parent.get(key)
        where = f"{path}.{key}" if path else key
        if value is None:
            if required:
                self.fail(where, "is required")
            return None
        if not isinstance(value, str):
            self.fail(where, "must be a string")
            return None
        value = value.strip()
        if not value:
            if required:
                self.fail(where, "must not be empty")
            return None
        if len(value) > _MAX_TEXT:
            self.fail(where, f"must be at most {_MAX_TEXT} characters")
            return None
        return value

    def moment(
        self, parent: Mapping[str, Any], key: str, path: str, *, required: bool = True
    ) -> datetime | None:
        raw = self.text(parent, key, path, required=required)
        if raw is None:
            return None
        where = f"{path}.{key}" if path else key
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            self.fail(where, "must be an ISO 8601 date-time, e.g. 2024-04-10T09:15:00+07:00")
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            self.fail(where, "must include a UTC offset, e.g. +07:00")
            return None
        try:
            # Stored in UTC: an offset that pushes the moment past year 1-9999 cannot be.
            value.astimezone(UTC)
        except OverflowError:
            self.fail(where, "is out of range")
            return None
        return value

    def party(
        self, parent: Mapping[str, Any], key: str, path: str, *, required: bool
    ) -> Party | None:
        where = f"{path}.{key}" if path else key
        raw = self.obj(parent.get(key), where, required=required)
        if raw is None:
            return None
        code = self.text(raw, "code", where)
        name = self.text(raw, "name", where)
        return Party(code, name) if code and name else None

    def person(self, raw_value: Any, where: str, *, required: bool) -> Person | None:
        raw = self.obj(raw_value, where, required=required)
        if raw is None:
            return None
        ident = self.text(raw, "id", where)
        name = self.text(raw, "name", where)
        unit = self.text(raw, "unit", where, required=False)
        return Person(ident, name, unit) if ident and name else None


def parse_event(body: Any) -> Event:
    """Validate a decoded JSON event; raise ValidationFailed naming every bad field."""
    r = _Reader()
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "the event must be a JSON object")])

    event_id = r.text(body, "id", "")
    if event_id is not None and not _EVENT_ID.match(event_id):
        r.fail("id", "must be 1-128 printable ASCII characters without spaces")
        event_id = None
    type_name = r.text(body, "type", "")
    if type_name is not None and type_name not in EVENT_TYPES:
        r.fail("type", f"unknown event type; expected one of: {', '.join(EVENT_TYPES)}")
        type_name = None
    occurred_at = r.moment(body, "occurred_at", "")
    dossier = _parse_dossier(r, body.get("dossier"), type_name)
    actor = r.person(body.get("actor"), "actor", required=type_name in _ACTOR_REQUIRED)
    data_raw = body.get("data", {})
    data: dict[str, Any] = {}
    if data_raw is None:
        data_raw = {}
    if not isinstance(data_raw, dict):
        r.fail("data", "must be an object")
    elif type_name is not None:
        data = _DATA_PARSERS[type_name](r, data_raw)

    received_at = dossier.received_at if dossier else None
    if (
        occurred_at
        and received_at
        and occurred_at < received_at
        and type_name != "dossier.received"
    ):
        r.fail("occurred_at", "is earlier than dossier.received_at")
    new_due_at = data.get("new_due_at")
    if occurred_at and new_due_at and new_due_at <= occurred_at:
        r.fail("data.new_due_at", "must be later than occurred_at")
    if r.errors:
        raise ValidationFailed(r.errors)
    assert event_id and type_name and occurred_at and dossier
    return Event(event_id, type_name, occurred_at, dossier, actor, data)


def _parse_dossier(r: _Reader, raw_value: Any, type_name: str | None) -> DossierSnapshot | None:
    raw = r.obj(raw_value, "dossier")
    if raw is None:
        return None
    code = r.text(raw, "code", "dossier")
    if code is not None:
        try:
            code = str(parse_dossier_code(code))
        except ValueError as exc:
            r.fail("dossier.code", f"is not a dossier code: {exc}")
            code = None
    receipt = type_name == "dossier.received"
    procedure = r.party(raw, "procedure", "dossier", required=receipt)
    agency = r.party(raw, "agency", "dossier", required=receipt)
    applicant = None
    applicant_raw = r.obj(raw.get("applicant"), "dossier.applicant", required=receipt)
    if applicant_raw is not None:
        name = r.text(applicant_raw, "name", "dossier.applicant", required=receipt)
        phone_value = applicant_raw.get("phone")
        phone: str | None = None
        # A missing phone is the clerk's violation to flag, not a reason to refuse the event.
        if phone_value is not None and not isinstance(phone_value, str):
            r.fail("dossier.applicant.phone", "must be a string (may be empty)")
        elif isinstance(phone_value, str):
            phone = phone_value[:200]
        applicant = Applicant(name, phone)
    received_at = r.moment(raw, "received_at", "dossier", required=receipt)
    due_at = r.moment(raw, "due_at", "dossier", required=receipt)
    if received_at and due_at and due_at <= received_at:
        r.fail("dossier.due_at", "must be later than dossier.received_at")
    if code is None:
        return None
    return DossierSnapshot(code, procedure, agency, applicant, received_at, due_at)


DataParser = Callable[[_Reader, Mapping[str, Any]], dict[str, Any]]


def _no_data(r: _Reader, raw: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def _reason_only(r: _Reader, raw: Mapping[str, Any]) -> dict[str, Any]:
    return {"reason": r.text(raw, "reason", "data")}


def _supplement(r: _Reader, raw: Mapping[str, Any]) -> dict[str, Any]:
    reason = r.text(raw, "reason", "data")
    documents = raw.get("documents")
    clean: list[str] = []
    if documents is None:
        r.fail("data.documents", "is required")
    elif not isinstance(documents, list) or not documents:
        r.fail("data.documents", "must be a non-empty list of document names")
    else:
        for index, doc in enumerate(documents):
            if not isinstance(doc, str) or not doc.strip():
                r.fail(f"data.documents[{index}]", "must be a non-empty string")
            else:
                clean.append(doc.strip())
    return {"reason": reason, "documents": clean}


def _processing(r: _Reader, raw: Mapping[str, Any]) -> dict[str, Any]:
    return {"unit": r.text(raw, "unit", "data")}


def _consultation_requested(r: _Reader, raw: Mapping[str, Any]) -> dict[str, Any]:
    consultation_id = r.text(raw, "consultation_id", "data")
    agency = r.party(raw, "agency", "data", required=True)
    due_at = r.moment(raw, "due_at", "data")
    return {
        "consultation_id": consultation_id,
        "agency": {"code": agency.code, "name": agency.name} if agency else None,
        "due_at": due_at,
    }


def _consultation_answered(r: _Reader, raw: Mapping[str, Any]) -> dict[str, Any]:
    return {"consultation_id": r.text(raw, "consultation_id", "data")}


def _fees_due(r: _Reader, raw: Mapping[str, Any]) -> dict[str, Any]:
    amount = raw.get("amount")
    if amount is None:
        r.fail("data.amount", "is required")
    elif isinstance(amount, bool) or not isinstance(amount, int | float):
        r.fail("data.amount", "must be a number of đồng")
        amount = None
    elif amount < 0 or not math.isfinite(amount) or amount != int(amount):
        r.fail("data.amount", "must be a whole, non-negative number of đồng")
        amount = None
    return {"amount": int(amount) if amount is not None else None, **_reason_only(r, raw)}


def _withdrawn(r: _Reader, raw: Mapping[str, Any]) -> dict[str, Any]:
    approver = r.person(raw.get("approved_by"), "data.approved_by", required=False)
    return {"approved_by": {"id": approver.id, "name": approver.name} if approver else None}


def _delayed(r: _Reader, raw: Mapping[str, Any]) -> dict[str, Any]:
    return {"new_due_at": r.moment(raw, "new_due_at", "data"), **_reason_only(r, raw)}


def _finished(r: _Reader, raw: Mapping[str, Any]) -> dict[str, Any]:
    pickup = r.text(raw, "pickup", "data", required=False)
    delivery = raw.get("delivery")
    if delivery is not None and delivery not in ("post", "online"):
        r.fail("data.delivery", "must be 'post' or 'online'")
        delivery = None
    if pickup and delivery:
        r.fail("data", "give either pickup or delivery, not both")
    elif not pickup and raw.get("delivery") is None:
        r.fail("data.pickup", "is required unless data.delivery is given")
    return {"pickup": pickup, "delivery": delivery}


_DATA_PARSERS: dict[str, DataParser] = {
    "dossier.received": _no_data,
    "dossier.supplement_requested": _supplement,
    "dossier.refused": _reason_only,
    "dossier.processing": _processing,
    "dossier.consultation_requested": _consultation_requested,
    "dossier.consultation_answered": _consultation_answered,
    "dossier.fees_due": _fees_due,
    "dossier.paused": _reason_only,
    "dossier.resumed": _no_data,
    "dossier.withdrawn": _withdrawn,
    "dossier.delayed": _delayed,
    "dossier.finished": _finished,
    "dossier.delivered": _no_data,
}
