"""What the audit API reads: the violations ledger with each entry's status, consultations.

A violation's status is its latest decision (``applied`` or ``dismissed``), or ``open``
when none was recorded; decisions are append-only, so the latest one is the one with the
highest id. Lists are keyset pages by id, so entries appended while a client pages never
shift it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.storage.audit import latest_decision
from gateway.storage.tables import (
    consultation_reminders,
    consultations,
    events,
    officers,
    violation_decisions,
    violations,
)

__all__ = [
    "CONSULTATION_STATES",
    "ConsultationRow",
    "DecisionRow",
    "EventRow",
    "OfficerRow",
    "ReminderRow",
    "ViolationFilter",
    "ViolationPage",
    "ViolationRow",
    "dossier_events",
    "get_officer",
    "get_violation",
    "list_consultations",
    "list_violations",
    "officers_of_agency",
    "violation_decisions_of",
]

ConsultationState = Literal["overdue", "reminded", "answered_late"]
CONSULTATION_STATES: Final[tuple[ConsultationState, ...]] = (
    "overdue",
    "reminded",
    "answered_late",
)


@dataclass(frozen=True, slots=True)
class ViolationRow:
    """One ledger entry and its status (the latest decision, or ``open``)."""

    id: int
    rule: str
    dossier_code: str | None
    officer_id: str | None
    officer_name: str | None
    agency_code: str | None
    agency_name: str | None
    occurred_at: datetime
    detected_at: datetime
    evidence: list[str]
    detail: str
    suggestion: dict[str, Any] | None
    report_id: int | None
    status: str


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One decision recorded on a violation; ``staff_id`` None: the gateway itself."""

    id: int
    decision: str
    sanction: str | None
    note: str | None
    staff_id: int | None
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class ViolationFilter:
    """The filters of ``GET /v1/audit/violations``; ``until`` is exclusive."""

    officer: str | None = None
    agency: str | None = None
    rule: str | None = None
    dossier: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class ViolationPage:
    """A page of violations by id; ``next_after`` is the cursor of the next page."""

    items: list[ViolationRow]
    next_after: int | None


@dataclass(frozen=True, slots=True)
class ReminderRow:
    """A reminder sent to a consulted agency (the second is copied to Home Affairs)."""

    number: int
    at: datetime
    copied_to: str | None


@dataclass(frozen=True, slots=True)
class ConsultationRow:
    """A consultation of another agency, with the reminders sent about it."""

    dossier_code: str
    consultation_id: str
    agency_code: str | None
    agency_name: str | None
    requested_at: datetime | None
    due_at: datetime | None
    answered_at: datetime | None
    reminders: list[ReminderRow]


def _select_violations() -> tuple[sa.Select[Any], sa.ColumnElement[str]]:
    latest = latest_decision()
    status = sa.func.coalesce(latest.c.decision, sa.literal("open")).label("status")
    query = sa.select(violations, status).select_from(
        violations.outerjoin(latest, latest.c.violation_id == violations.c.id)
    )
    return query, status


def _violation(row: Any) -> ViolationRow:
    m = row._mapping
    return ViolationRow(
        id=int(m["id"]),
        rule=m["rule"],
        dossier_code=m["dossier_code"],
        officer_id=m["officer_id"],
        officer_name=m["officer_name"],
        agency_code=m["agency_code"],
        agency_name=m["agency_name"],
        occurred_at=m["occurred_at"],
        detected_at=m["detected_at"],
        evidence=[str(e) for e in (m["evidence"] or [])],
        detail=m["detail"],
        suggestion=m["suggestion"],
        report_id=int(m["report_id"]) if m["report_id"] is not None else None,
        status=m["status"],
    )


async def list_violations(
    reader: AsyncEngine, filters: ViolationFilter, *, limit: int = 50, after: int | None = None
) -> ViolationPage:
    """Violations matching ``filters`` by id, at most ``limit`` after ``after``."""
    query, status = _select_violations()
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.officer is not None:
        conditions.append(violations.c.officer_id == filters.officer)
    if filters.agency is not None:
        conditions.append(violations.c.agency_code == filters.agency)
    if filters.rule is not None:
        conditions.append(violations.c.rule == filters.rule)
    if filters.dossier is not None:
        conditions.append(violations.c.dossier_code == filters.dossier)
    if filters.status is not None:
        conditions.append(status == filters.status)
    if filters.since is not None:
        conditions.append(violations.c.occurred_at >= filters.since)
    if filters.until is not None:
        conditions.append(violations.c.occurred_at < filters.until)
    if after is not None:
        conditions.append(violations.c.id > after)
    query = query.where(*conditions).order_by(violations.c.id).limit(limit + 1)
    async with reader.connect() as conn:
        items = [_violation(r) for r in await conn.execute(query)]
    more = len(items) > limit
    items = items[:limit]
    return ViolationPage(items, items[-1].id if more else None)


async def get_violation(conn: AsyncConnection, violation_id: int) -> ViolationRow | None:
    """One violation and its status, or None; works inside a writer's transaction too."""
    query, _ = _select_violations()
    row = (await conn.execute(query.where(violations.c.id == violation_id))).first()
    return _violation(row) if row is not None else None


async def violation_decisions_of(conn: AsyncConnection, violation_id: int) -> list[DecisionRow]:
    """Every decision recorded on a violation, oldest first."""
    result = await conn.execute(
        sa.select(violation_decisions)
        .where(violation_decisions.c.violation_id == violation_id)
        .order_by(violation_decisions.c.id)
    )
    return [
        DecisionRow(
            id=int(d.id),
            decision=d.decision,
            sanction=d.sanction,
            note=d.note,
            staff_id=int(d.staff_id) if d.staff_id is not None else None,
            decided_at=d.decided_at,
        )
        for d in result
    ]


async def list_consultations(
    reader: AsyncEngine,
    state: ConsultationState,
    now: datetime,
    *,
    agency: str | None = None,
    limit: int = 500,
) -> list[ConsultationRow]:
    """Consultations in ``state`` at ``now``, by due date.

    ``overdue``: unanswered and past its due date; ``reminded``: at least one reminder
    was sent; ``answered_late``: answered after its due date.
    """
    c = consultations.c
    query = sa.select(consultations)
    if state == "overdue":
        query = query.where(c.answered_at.is_(None), c.due_at.is_not(None), c.due_at < now)
    elif state == "answered_late":
        query = query.where(c.answered_at.is_not(None), c.due_at.is_not(None))
        query = query.where(c.answered_at > c.due_at)
    else:
        reminded = sa.exists().where(
            consultation_reminders.c.dossier_code == c.dossier_code,
            consultation_reminders.c.consultation_id == c.consultation_id,
        )
        query = query.where(reminded)
    if agency is not None:
        query = query.where(c.agency_code == agency)
    query = query.order_by(c.due_at, c.dossier_code, c.consultation_id).limit(limit)
    async with reader.connect() as conn:
        found = list(await conn.execute(query))
        reminders = await _reminders(conn, [r.dossier_code for r in found])
    return [
        ConsultationRow(
            dossier_code=r.dossier_code,
            consultation_id=r.consultation_id,
            agency_code=r.agency_code,
            agency_name=r.agency_name,
            requested_at=r.requested_at,
            due_at=r.due_at,
            answered_at=r.answered_at,
            reminders=reminders.get((r.dossier_code, r.consultation_id), []),
        )
        for r in found
    ]


async def _reminders(
    conn: AsyncConnection, codes: Sequence[str]
) -> dict[tuple[str, str], list[ReminderRow]]:
    by_consultation: dict[tuple[str, str], list[ReminderRow]] = defaultdict(list)
    if not codes:
        return by_consultation
    r = consultation_reminders.c
    result = await conn.execute(
        sa.select(consultation_reminders)
        .where(r.dossier_code.in_(sorted(set(codes))))
        .order_by(r.dossier_code, r.consultation_id, r.number)
    )
    for row in result:
        by_consultation[(row.dossier_code, row.consultation_id)].append(
            ReminderRow(int(row.number), row.created_at, row.copied_to)
        )
    return by_consultation


# --- the console's desk: evidence, the officer directory ------------------------------------


@dataclass(frozen=True, slots=True)
class EventRow:
    """One stored event of a dossier's timeline, as a violation's evidence names it."""

    event_id: str
    source_id: str
    type: str
    occurred_at: datetime
    actor_id: str | None
    actor_name: str | None
    superseded: bool


@dataclass(frozen=True, slots=True)
class OfficerRow:
    """An officer from the directory, with their supervisor's name when it is known."""

    id: str
    name: str | None
    agency_code: str | None
    unit: str | None
    supervisor_id: str | None
    supervisor_name: str | None
    origin: str


async def dossier_events(reader: AsyncEngine, code: str) -> list[EventRow]:
    """The dossier's whole timeline (superseded events too), in time order, so that a
    violation's evidence can be shown among the events around it."""
    e = events.c
    query = (
        sa.select(
            e.event_id, e.source_id, e.type, e.occurred_at, e.actor_id, e.actor_name, e.superseded
        )
        .where(e.dossier_code == code)
        .order_by(e.occurred_at, e.seq)
    )
    async with reader.connect() as conn:
        return [
            EventRow(
                event_id=r.event_id,
                source_id=r.source_id,
                type=r.type,
                occurred_at=r.occurred_at,
                actor_id=r.actor_id,
                actor_name=r.actor_name,
                superseded=bool(r.superseded),
            )
            for r in await conn.execute(query)
        ]


def _select_officers() -> sa.Select[Any]:
    boss = officers.alias("supervisor")
    return sa.select(officers, boss.c.name.label("supervisor_name")).select_from(
        officers.outerjoin(boss, boss.c.id == officers.c.supervisor_id)
    )


def _officer(row: Any) -> OfficerRow:
    m = row._mapping
    return OfficerRow(
        id=m["id"],
        name=m["name"],
        agency_code=m["agency_code"],
        unit=m["unit"],
        supervisor_id=m["supervisor_id"],
        supervisor_name=m["supervisor_name"],
        origin=m["origin"],
    )


async def get_officer(reader: AsyncEngine, officer_id: str) -> OfficerRow | None:
    """The directory's entry for ``officer_id``, or None when it holds none."""
    async with reader.connect() as conn:
        row = (await conn.execute(_select_officers().where(officers.c.id == officer_id))).first()
    return _officer(row) if row is not None else None


async def officers_of_agency(
    reader: AsyncEngine, agency_code: str, *, limit: int = 500
) -> list[OfficerRow]:
    """The directory's officers of one agency, by id (at most ``limit``)."""
    query = (
        _select_officers()
        .where(officers.c.agency_code == agency_code)
        .order_by(officers.c.id)
        .limit(limit)
    )
    async with reader.connect() as conn:
        return [_officer(r) for r in await conn.execute(query)]
