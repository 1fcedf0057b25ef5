"""What the audit job writes: dossier verdicts, the append-only ledger, the officer directory.

The violations ledger is append-only: a violation row is never updated or deleted, and
what happens to it later is a new row in ``violation_decisions`` (the latest one is its
status). A finding is recorded once, under its stable fingerprint. A finding the
gateway no longer detects gets a ``dismissed`` decision with no staff user, saying why.

The officer directory holds two kinds of rows: ``origin="import"`` (``tthc officers
import``, the province's list) and ``origin="event"`` (an actor first seen in events).
Events fill in and refresh only the rows they created; an import always wins.

Every function takes an open connection: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.domain.sanctions import Prior, Suggestion
from gateway.domain.violations import Finding
from gateway.errors import FieldError, NotFound, ValidationFailed
from gateway.storage.tables import (
    consultation_reminders,
    dossier_audit,
    dossiers,
    events,
    officers,
    violation_decisions,
    violations,
)

__all__ = [
    "DECISIONS",
    "FALSE_CLOSURE",
    "Actor",
    "ImportCounts",
    "OfficerRecord",
    "StoredViolation",
    "append_reminder",
    "append_violations",
    "changed_dossiers",
    "count_dossiers",
    "dismiss_stale",
    "dossier_codes_page",
    "import_officers",
    "known_officer_ids",
    "load_timelines",
    "prior_violations",
    "priors_of",
    "record_decision",
    "save_audits",
    "stored_violations",
    "supervisors_of",
    "upsert_officers_from_events",
]

DECISIONS: Final = ("applied", "dismissed")
# Created by the hotline's finding, never by the timeline rules: never stale.
FALSE_CLOSURE: Final = "false_closure"
# Bound parameters per IN list; well under SQLite's and asyncpg's limits.
_CHUNK: Final = 500
_TIMELINE_COLUMNS: Final = (
    events.c.dossier_code,
    events.c.source_id,
    events.c.event_id,
    events.c.type,
    events.c.occurred_at,
    events.c.actor_id,
    events.c.actor_name,
    events.c.superseded,
    events.c.body,
)


@dataclass(frozen=True, slots=True)
class Actor:
    """An officer as an event names them, with the agency of the event's dossier."""

    id: str
    name: str | None
    agency_code: str | None


@dataclass(frozen=True, slots=True)
class OfficerRecord:
    """One line of the province's officer list."""

    id: str
    name: str
    agency_code: str | None
    unit: str | None
    supervisor_id: str | None


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """What an import did, row by row."""

    created: int
    updated: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class StoredViolation:
    """What the audit job needs to know of a recorded violation."""

    id: int
    fingerprint: str
    rule: str
    dossier_code: str | None
    status: str  # "open", "applied" or "dismissed"


def _insert(conn: AsyncConnection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def latest_decision() -> sa.Subquery:
    """``violation_id -> decision`` of each violation's latest (highest id) decision."""
    last = (
        sa.select(
            violation_decisions.c.violation_id,
            sa.func.max(violation_decisions.c.id).label("last_id"),
        )
        .group_by(violation_decisions.c.violation_id)
        .subquery("last")
    )
    return (
        sa.select(violation_decisions.c.violation_id, violation_decisions.c.decision)
        .join(last, last.c.last_id == violation_decisions.c.id)
        .subquery("latest")
    )


# --- dossiers to audit ----------------------------------------------------------------


def _since(since: datetime | None) -> list[sa.ColumnElement[bool]]:
    return [] if since is None else [dossiers.c.updated_at >= since]


async def count_dossiers(conn: AsyncConnection, since: datetime | None = None) -> int:
    """How many dossiers a rebuild (changed at or after ``since``) goes through."""
    query = sa.select(sa.func.count()).select_from(dossiers).where(*_since(since))
    return int((await conn.execute(query)).scalar_one())


async def dossier_codes_page(
    conn: AsyncConnection, after: str | None, limit: int, since: datetime | None = None
) -> list[str]:
    """The next ``limit`` dossier codes after ``after``, in code order (a keyset page)."""
    conditions = _since(since)
    if after is not None:
        conditions.append(dossiers.c.code > after)
    query = sa.select(dossiers.c.code).where(*conditions).order_by(dossiers.c.code).limit(limit)
    return list((await conn.execute(query)).scalars())


async def changed_dossiers(
    conn: AsyncConnection, after: tuple[datetime, str] | None, limit: int
) -> list[tuple[datetime, str]]:
    """``(updated_at, code)`` of the dossiers changed after the ``after`` cursor, oldest
    first, at most ``limit``; None: from the beginning."""
    query = sa.select(dossiers.c.updated_at, dossiers.c.code)
    if after is not None:
        at, code = after
        query = query.where(
            sa.or_(
                dossiers.c.updated_at > at,
                sa.and_(dossiers.c.updated_at == at, dossiers.c.code > code),
            )
        )
    query = query.order_by(dossiers.c.updated_at, dossiers.c.code).limit(limit)
    return [(row.updated_at, row.code) for row in await conn.execute(query)]


async def load_timelines(
    conn: AsyncConnection, codes: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """Each dossier's stored events (superseded ones too), in ``occurred_at, seq`` order,
    as the rows :func:`gateway.domain.timeline.timeline_of` reads."""
    timelines: dict[str, list[dict[str, Any]]] = {code: [] for code in codes}
    for chunk in _chunks(codes):
        query = (
            sa.select(*_TIMELINE_COLUMNS)
            .where(events.c.dossier_code.in_(chunk))
            .order_by(events.c.dossier_code, events.c.occurred_at, events.c.seq)
        )
        for row in await conn.execute(query):
            fields = dict(row._mapping)
            timelines[fields.pop("dossier_code")].append(fields)
    return timelines


# --- verdicts ---------------------------------------------------------------------------


async def save_audits(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert or replace the ``dossier_audit`` rows (one per dossier, derived data)."""
    if not rows:
        return
    stmt = _insert(conn, dossier_audit)
    columns = [c.name for c in dossier_audit.columns if c.name != "dossier_code"]
    stmt = stmt.on_conflict_do_update(
        index_elements=[dossier_audit.c.dossier_code],
        set_={name: stmt.excluded[name] for name in columns},
    )
    await conn.execute(stmt, [dict(row) for row in rows])


# --- the ledger -------------------------------------------------------------------------


async def stored_violations(conn: AsyncConnection, codes: Sequence[str]) -> list[StoredViolation]:
    """The violations recorded on these dossiers, with their status."""
    latest = latest_decision()
    found: list[StoredViolation] = []
    for chunk in _chunks(codes):
        query = (
            sa.select(
                violations.c.id,
                violations.c.fingerprint,
                violations.c.rule,
                violations.c.dossier_code,
                sa.func.coalesce(latest.c.decision, sa.literal("open")).label("status"),
            )
            .select_from(violations.outerjoin(latest, latest.c.violation_id == violations.c.id))
            .where(violations.c.dossier_code.in_(chunk))
            .order_by(violations.c.id)
        )
        found.extend(
            StoredViolation(int(r.id), r.fingerprint, r.rule, r.dossier_code, r.status)
            for r in await conn.execute(query)
        )
    return found


async def prior_violations(
    conn: AsyncConnection,
    officer_id: str,
    rule: str,
    until: datetime,
    since: datetime | None = None,
) -> list[Prior]:
    """The officer's recorded violations of ``rule`` that occurred at or before ``until``
    (and at or after ``since``), not dismissed: what a sanction ladder counts as repeats."""
    latest = latest_decision()
    conditions = [
        violations.c.officer_id == officer_id,
        violations.c.rule == rule,
        violations.c.occurred_at <= until,
        sa.or_(latest.c.decision.is_(None), latest.c.decision != "dismissed"),
    ]
    if since is not None:
        conditions.append(violations.c.occurred_at >= since)
    query = (
        sa.select(violations.c.id, violations.c.occurred_at)
        .select_from(violations.outerjoin(latest, latest.c.violation_id == violations.c.id))
        .where(*conditions)
        .order_by(violations.c.occurred_at, violations.c.id)
    )
    return [Prior(int(r.id), r.occurred_at) for r in await conn.execute(query)]


async def priors_of(
    conn: AsyncConnection,
    pairs: Iterable[tuple[str, str]],
    since: datetime,
    until: datetime,
) -> dict[tuple[str, str], list[Prior]]:
    """:func:`prior_violations` for many ``(officer id, rule)`` pairs at once: the not
    dismissed violations of each pair that occurred in ``[since, until]``, oldest first."""
    wanted = set(pairs)
    found: dict[tuple[str, str], list[Prior]] = {}
    if not wanted:
        return found
    latest = latest_decision()
    rules = sorted({rule for _, rule in wanted})
    for chunk in _chunks(sorted({officer for officer, _ in wanted})):
        query = (
            sa.select(
                violations.c.id,
                violations.c.officer_id,
                violations.c.rule,
                violations.c.occurred_at,
            )
            .select_from(violations.outerjoin(latest, latest.c.violation_id == violations.c.id))
            .where(
                violations.c.officer_id.in_(chunk),
                violations.c.rule.in_(rules),
                violations.c.occurred_at >= since,
                violations.c.occurred_at <= until,
                sa.or_(latest.c.decision.is_(None), latest.c.decision != "dismissed"),
            )
            .order_by(violations.c.occurred_at, violations.c.id)
        )
        for row in await conn.execute(query):
            key = (row.officer_id, row.rule)
            if key in wanted:
                found.setdefault(key, []).append(Prior(int(row.id), row.occurred_at))
    return found


async def append_violations(
    conn: AsyncConnection,
    items: Sequence[tuple[Finding, Suggestion | None]],
    now: datetime,
    *,
    report_id: int | None = None,
) -> list[int | None]:
    """Record the findings whose fingerprint is new. Returns, item by item, the id of
    the new row, or None where the fingerprint was already taken (even concurrently)."""
    if not items:
        return []
    # One statement for all rows, so SQLAlchemy compiles it once.
    stmt = (
        _insert(conn, violations)
        .on_conflict_do_nothing(index_elements=[violations.c.fingerprint])
        .returning(violations.c.id)
    )
    ids: list[int | None] = []
    for finding, suggestion in items:
        row = {
            "fingerprint": finding.fingerprint,
            "rule": finding.rule,
            "dossier_code": finding.dossier_code,
            "officer_id": finding.officer_id,
            "officer_name": finding.officer_name,
            "agency_code": finding.agency_code,
            "agency_name": finding.agency_name,
            "occurred_at": finding.occurred_at,
            "detected_at": now,
            "evidence": list(finding.evidence),
            "detail": finding.detail[:500],
            "suggestion": suggestion.as_json() if suggestion is not None else None,
            "report_id": report_id,
        }
        new_id = (await conn.execute(stmt, row)).scalar_one_or_none()
        ids.append(int(new_id) if new_id is not None else None)
    return ids


async def record_decision(
    conn: AsyncConnection,
    violation_id: int,
    decision: str,
    sanction: str | None,
    note: str | None,
    staff_id: int | None,
    now: datetime,
) -> int:
    """Append a decision on a violation (``staff_id`` None: the gateway itself); returns
    its id. Raises :class:`NotFound` for an unknown violation and
    :class:`ValidationFailed` for a decision that is neither applied nor dismissed."""
    if decision not in DECISIONS:
        raise ValidationFailed(
            [FieldError("decision", f"must be one of {', '.join(DECISIONS)}, not {decision!r}")]
        )
    exists = await conn.execute(sa.select(violations.c.id).where(violations.c.id == violation_id))
    if exists.first() is None:
        raise NotFound(f"no violation {violation_id}")
    stmt = (
        violation_decisions.insert()
        .values(
            violation_id=violation_id,
            decision=decision,
            sanction=sanction,
            note=note,
            staff_id=staff_id,
            decided_at=now,
        )
        .returning(violation_decisions.c.id)
    )
    return int((await conn.execute(stmt)).scalar_one())


async def dismiss_stale(
    conn: AsyncConnection,
    stored: Sequence[StoredViolation],
    detected: Iterable[str],
    now: datetime,
    reason: str,
) -> list[int]:
    """Append a system ``dismissed`` decision to each open violation of ``stored`` whose
    fingerprint is not among ``detected`` (false closures, which come from the hotline's
    finding and not from the timeline, are left alone); returns their ids.

    Violations an auditor already decided on stay as they are: the gateway does not
    overturn a person's decision.
    """
    current = set(detected)
    stale = [
        v.id
        for v in stored
        if v.status == "open" and v.rule != FALSE_CLOSURE and v.fingerprint not in current
    ]
    for violation_id in stale:
        await record_decision(
            conn, violation_id, "dismissed", None, f"no longer detected: {reason}", None, now
        )
    return stale


async def append_reminder(
    conn: AsyncConnection,
    dossier_code: str,
    consultation_id: str,
    number: int,
    agency_code: str | None,
    copied_to: str | None,
    now: datetime,
) -> bool:
    """Record reminder ``number`` of a consultation; False if it was already recorded."""
    stmt = (
        _insert(conn, consultation_reminders)
        .values(
            dossier_code=dossier_code,
            consultation_id=consultation_id,
            number=number,
            agency_code=agency_code,
            copied_to=copied_to,
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(consultation_reminders.c.id)
    )
    return (await conn.execute(stmt)).scalar_one_or_none() is not None


# --- the officer directory --------------------------------------------------------------


async def supervisors_of(
    conn: AsyncConnection, officer_ids: Iterable[str]
) -> dict[str, tuple[str, str]]:
    """``officer id -> (supervisor id, name)`` for the officers with a known supervisor
    (named by id when the directory has no name for them)."""
    ids = sorted(set(officer_ids))
    boss = officers.alias("boss")
    found: dict[str, tuple[str, str]] = {}
    for chunk in _chunks(ids):
        query = (
            sa.select(officers.c.id, officers.c.supervisor_id, boss.c.name)
            .select_from(officers.outerjoin(boss, boss.c.id == officers.c.supervisor_id))
            .where(officers.c.id.in_(chunk), officers.c.supervisor_id.is_not(None))
        )
        for row in await conn.execute(query):
            found[row.id] = (row.supervisor_id, row.name or row.supervisor_id)
    return found


async def known_officer_ids(conn: AsyncConnection, ids: Iterable[str]) -> set[str]:
    """The ones of ``ids`` the directory holds (imported or seen in events)."""
    wanted = sorted(set(ids))
    known: set[str] = set()
    for chunk in _chunks(wanted):
        query = sa.select(officers.c.id).where(officers.c.id.in_(chunk))
        known.update((await conn.execute(query)).scalars())
    return known


async def upsert_officers_from_events(
    conn: AsyncConnection, actors: Iterable[Actor], now: datetime
) -> None:
    """Add the actors the directory does not know (``origin="event"``); refresh the name
    and agency of rows that events created, when they changed; never touch imports.
    Of several mentions of one officer, the last one counts."""
    latest: dict[str, Actor] = {}
    for actor in actors:
        old = latest.get(actor.id)
        # A later event without a name or agency does not forget the earlier ones.
        latest[actor.id] = Actor(
            actor.id,
            actor.name or (old.name if old else None),
            actor.agency_code or (old.agency_code if old else None),
        )
    if not latest:
        return
    stmt = _insert(conn, officers)
    name = sa.func.coalesce(stmt.excluded.name, officers.c.name)
    agency = sa.func.coalesce(stmt.excluded.agency_code, officers.c.agency_code)
    stmt = stmt.on_conflict_do_update(
        index_elements=[officers.c.id],
        set_={"name": name, "agency_code": agency, "updated_at": stmt.excluded.updated_at},
        where=sa.and_(
            officers.c.origin == "event",
            sa.or_(
                officers.c.name.is_distinct_from(name),
                officers.c.agency_code.is_distinct_from(agency),
            ),
        ),
    )
    rows = [
        {
            "id": a.id,
            "name": a.name,
            "agency_code": a.agency_code,
            "unit": None,
            "supervisor_id": None,
            "origin": "event",
            "created_at": now,
            "updated_at": now,
        }
        for a in latest.values()
    ]
    await conn.execute(stmt, rows)


def _fields(record: OfficerRecord) -> tuple[str | None, ...]:
    return (record.name, record.agency_code, record.unit, record.supervisor_id)


async def import_officers(
    conn: AsyncConnection, records: Sequence[OfficerRecord], now: datetime
) -> ImportCounts:
    """Create or replace these officers as ``origin="import"`` rows. A row learnt from
    events becomes an imported one (counted as updated); an identical import is unchanged.
    The caller validates the records (unique ids, known supervisors) beforehand."""
    existing: dict[str, tuple[tuple[str | None, ...], str]] = {}
    ids = [r.id for r in records]
    for chunk in _chunks(ids):
        query = sa.select(
            officers.c.id,
            officers.c.name,
            officers.c.agency_code,
            officers.c.unit,
            officers.c.supervisor_id,
            officers.c.origin,
        ).where(officers.c.id.in_(chunk))
        for row in await conn.execute(query):
            fields = (row.name, row.agency_code, row.unit, row.supervisor_id)
            existing[row.id] = (fields, row.origin)
    created: list[dict[str, Any]] = []
    updated: list[dict[str, Any]] = []
    unchanged = 0
    for record in records:
        values = {
            "name": record.name,
            "agency_code": record.agency_code,
            "unit": record.unit,
            "supervisor_id": record.supervisor_id,
            "origin": "import",
            "updated_at": now,
        }
        known = existing.get(record.id)
        if known is None:
            created.append({"id": record.id, **values, "created_at": now})
        elif known != (_fields(record), "import"):
            updated.append({"b_id": record.id, **values})
        else:
            unchanged += 1
    if created:
        await conn.execute(officers.insert(), created)
    if updated:
        await conn.execute(
            officers.update()
            .where(officers.c.id == sa.bindparam("b_id"))
            .values({k: sa.bindparam(k) for k in updated[0] if k != "b_id"}),
            updated,
        )
    return ImportCounts(len(created), len(updated), unchanged)
