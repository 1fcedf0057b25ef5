"""A dossier's stored events as the audit reads them: typed, parsed, in time order.

The ``events`` table keeps every accepted event with its posted JSON in ``body``. The
audit (lateness verdict, violations) reads whole timelines, for one dossier at a time in
the sweep and for hundreds of thousands in ``tthc audit rebuild``, so the bodies are read
here with the *meaning* of :func:`gateway.domain.events.parse_event` (stripped texts,
empty text = absent, ISO 8601 moments with their offset) but without re-validating what
ingest already validated: a stored body is known to be well formed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

_MAX_PHONE = 200  # as parse_event keeps it


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One stored event of a dossier, with what the audit rules read from it."""

    id: str
    source_id: str
    type: str
    occurred_at: datetime
    actor_id: str | None
    actor_name: str | None
    # The event's data, parsed like gateway.domain.events (moments are datetimes).
    data: Mapping[str, Any]
    # dossier.due_at as this event sent it.
    due_at: datetime | None
    agency_code: str | None
    agency_name: str | None
    # dossier.applicant.phone as sent; None when the event did not send one.
    phone: str | None
    superseded: bool


def timeline_of(rows: Iterable[Mapping[str, Any]]) -> list[TimelineEvent]:
    """The events of one dossier in time order, from rows of the ``events`` table.

    Each row holds ``source_id``, ``event_id``, ``type``, ``occurred_at``, ``actor_id``,
    ``actor_name``, ``superseded`` and ``body`` (the posted JSON, decoded or as text).
    Rows normally come sorted by ``(occurred_at, seq)``; they are sorted again by
    ``occurred_at`` (a stable sort, so the given order breaks ties) because an event
    that arrived late belongs where it happened.
    """
    timeline = [_event_of(row) for row in rows]
    timeline.sort(key=lambda e: e.occurred_at)
    return timeline


def _event_of(row: Mapping[str, Any]) -> TimelineEvent:
    body = row["body"]
    if isinstance(body, str | bytes):
        body = orjson.loads(body)
    if not isinstance(body, dict):
        body = {}
    type_name = str(row.get("type") or body.get("type"))
    occurred_at = row.get("occurred_at")
    if not isinstance(occurred_at, datetime):
        occurred_at = _moment(body.get("occurred_at"))
        if occurred_at is None:
            raise ValueError(f"event {row.get('event_id')!r} has no occurred_at")
    actor = _obj(body.get("actor"))
    dossier = _obj(body.get("dossier"))
    agency = _obj(dossier.get("agency"))
    applicant = _obj(dossier.get("applicant"))
    phone = applicant.get("phone")
    return TimelineEvent(
        id=str(row.get("event_id") or body.get("id")),
        source_id=str(row.get("source_id") or ""),
        type=type_name,
        occurred_at=occurred_at,
        actor_id=row.get("actor_id", _text(actor.get("id"))),
        actor_name=row.get("actor_name", _text(actor.get("name"))),
        data=_data(type_name, _obj(body.get("data"))),
        due_at=_moment(dossier.get("due_at")),
        agency_code=_text(agency.get("code")),
        agency_name=_text(agency.get("name")),
        phone=phone[:_MAX_PHONE] if isinstance(phone, str) else None,
        superseded=bool(row.get("superseded", False)),
    )


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _moment(value: Any) -> datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None


def _party(value: Any) -> dict[str, str] | None:
    raw = _obj(value)
    code, name = _text(raw.get("code")), _text(raw.get("name"))
    return {"code": code, "name": name} if code and name else None


def _person(value: Any) -> dict[str, str] | None:
    raw = _obj(value)
    ident, name = _text(raw.get("id")), _text(raw.get("name"))
    return {"id": ident, "name": name} if ident and name else None


def _data(type_name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    # The same keys and shapes parse_event's data parsers produce, for the types the
    # audit reads; other types keep their texts.
    if type_name == "dossier.consultation_requested":
        return {
            "consultation_id": _text(raw.get("consultation_id")),
            "agency": _party(raw.get("agency")),
            "due_at": _moment(raw.get("due_at")),
        }
    if type_name == "dossier.consultation_answered":
        return {"consultation_id": _text(raw.get("consultation_id"))}
    if type_name == "dossier.withdrawn":
        return {"approved_by": _person(raw.get("approved_by"))}
    if type_name == "dossier.delayed":
        return {"new_due_at": _moment(raw.get("new_due_at")), "reason": _text(raw.get("reason"))}
    return {key: _text(value) if isinstance(value, str) else value for key, value in raw.items()}
