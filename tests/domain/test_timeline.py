"""Reading stored events into a timeline: parse_event's meaning, time order, raw rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.events import parse_event
from gateway.domain.timeline import TimelineEvent, timeline_of
from tests.helpers import ACTOR, VALID_DATA, event

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def at(day: int, hour: int = 9, minute: int = 0) -> datetime:
    """A moment of April 2024 in the province's time zone."""
    return datetime(2024, 4, day, hour, minute, tzinfo=TZ)


def row(
    type_: str,
    day: int,
    hour: int = 9,
    *,
    minute: int = 0,
    id: str | None = None,
    actor: dict[str, str] | None = ACTOR,
    data: dict[str, Any] | None = None,
    superseded: bool = False,
    **dossier_changes: Any,
) -> dict[str, Any]:
    """An ``events`` row as storage loads it: UTC occurred_at, the posted body."""
    moment = at(day, hour, minute)
    body = event(type_, id=id, at=moment.isoformat(), data=data, **dossier_changes)
    if actor is None:
        body.pop("actor")
    else:
        body["actor"] = actor
    return {
        "source_id": "onestop",
        "event_id": body["id"],
        "type": type_,
        "occurred_at": moment.astimezone(UTC),
        "actor_id": actor["id"] if actor else None,
        "actor_name": actor["name"] if actor else None,
        "superseded": superseded,
        "body": body,
    }


def officer(ident: str) -> dict[str, str]:
    return {"id": ident, "name": f"Cán bộ {ident}"}


def test_a_row_becomes_a_typed_event() -> None:
    (e,) = timeline_of([row("dossier.received", 1, 8)])
    assert e == TimelineEvent(
        id=e.id,
        source_id="onestop",
        type="dossier.received",
        occurred_at=at(1, 8),
        actor_id="cc-0123",
        actor_name="Trần Thị Bình",
        data={},
        due_at=datetime(2024, 4, 12, 17, tzinfo=TZ),
        agency_code="000.00.12.H19",
        agency_name="Sở Xây dựng",
        phone="0912 345 678",
        superseded=False,
    )
    assert e.id.startswith("evt-")


@pytest.mark.parametrize(
    "type_",
    [
        "dossier.consultation_requested",
        "dossier.consultation_answered",
        "dossier.withdrawn",
        "dossier.delayed",
        "dossier.supplement_requested",
        "dossier.fees_due",
    ],
)
def test_data_means_what_parse_event_says(type_: str) -> None:
    stored = row(type_, 3)
    (e,) = timeline_of([stored])
    assert e.data == parse_event(stored["body"]).data


def test_texts_are_stripped_and_empty_ones_absent_as_parse_event_does() -> None:
    data = dict(VALID_DATA["dossier.delayed"], reason="  Chờ thẩm định  ")
    stored = row("dossier.delayed", 3, data=data)
    stored["body"]["dossier"]["due_at"] = " 2024-04-12T17:00:00+07:00 "
    (e,) = timeline_of([stored])
    assert e.data == parse_event(stored["body"]).data
    assert e.due_at == datetime(2024, 4, 12, 17, tzinfo=TZ)


def test_a_withdrawal_without_approval_reads_as_none() -> None:
    (e,) = timeline_of([row("dossier.withdrawn", 3, data={})])
    assert e.data == {"approved_by": None}


def test_missing_snapshot_parts_are_none() -> None:
    stored = row("dossier.processing", 3)
    stored["body"]["dossier"] = {"code": stored["body"]["dossier"]["code"]}
    (e,) = timeline_of([stored])
    assert (e.due_at, e.agency_code, e.agency_name, e.phone) == (None, None, None, None)


def test_a_body_stored_as_json_text_is_read_too() -> None:
    stored = row("dossier.delayed", 3)
    as_text = dict(stored, body=json.dumps(stored["body"], ensure_ascii=False))
    assert timeline_of([as_text]) == timeline_of([stored])


def test_events_are_placed_by_occurred_at_whatever_the_row_order() -> None:
    rows = [
        row("dossier.finished", 10),
        row("dossier.received", 1, 8),
        row("dossier.processing", 3, superseded=True),
    ]
    timeline = timeline_of(rows)
    assert [e.type for e in timeline] == [
        "dossier.received",
        "dossier.processing",
        "dossier.finished",
    ]
    assert [e.superseded for e in timeline] == [False, True, False]


def test_equal_moments_keep_the_stored_order() -> None:
    first = row("dossier.processing", 3, id="a")
    second = row("dossier.paused", 3, id="b")
    assert [e.id for e in timeline_of([first, second])] == ["a", "b"]
    assert [e.id for e in timeline_of([second, first])] == ["b", "a"]


def test_the_row_names_the_actor_even_when_the_body_has_none() -> None:
    (e,) = timeline_of([row("dossier.processing", 3, actor=None)])
    assert (e.actor_id, e.actor_name) == (None, None)
    (e,) = timeline_of([row("dossier.processing", 3, actor=officer("cv-9"))])
    assert (e.actor_id, e.actor_name) == ("cv-9", "Cán bộ cv-9")
