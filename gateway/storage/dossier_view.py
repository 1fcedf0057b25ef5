"""What the console's dossier search and dossier page read.

A search is an exact match, never a pattern: a dossier code against ``dossiers.code`` and
``reports.dossier_code``, or a phone number (E.164) against ``dossiers.phone_e164`` and
``reports.phone_e164``. The dossier page reads the dossier's facts, its whole timeline
(superseded events included, marked), every notice sent about it with its delivery
state, and the citizens' reports about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.reports import timeline_rows
from gateway.storage.tables import dossiers, notices, reports

__all__ = [
    "DossierFacts",
    "DossierStory",
    "NoticeEntry",
    "ReportHit",
    "TimelineEntry",
    "dossier_story",
    "find_dossiers",
    "find_reports",
]

# More than any one citizen plausibly has; the page says when a list was cut.
SEARCH_LIMIT: Final = 100


@dataclass(frozen=True, slots=True)
class DossierFacts:
    """A row of ``dossiers`` as the console shows it."""

    code: str
    state: str
    procedure_code: str | None
    procedure_name: str | None
    agency_code: str | None
    agency_name: str | None
    applicant_name: str | None
    phone_e164: str | None
    phone_problem: str | None
    received_at: datetime | None
    due_at: datetime | None
    original_due_at: datetime | None
    finished_at: datetime | None
    finished_by_id: str | None
    finished_by_name: str | None
    state_at: datetime
    deadline_state: str | None


@dataclass(frozen=True, slots=True)
class ReportHit:
    """A citizen's report, as a search result or on its dossier's page."""

    id: int
    number: str
    kind: str
    status: str
    dossier_code: str | None
    agency_code: str | None
    agency_name: str | None
    phone_e164: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One event of the dossier's timeline."""

    type: str
    occurred_at: datetime
    actor_id: str | None
    actor_name: str | None
    superseded: bool


@dataclass(frozen=True, slots=True)
class NoticeEntry:
    """A notice about the dossier and how far its delivery went."""

    id: str
    kind: str
    channel: str | None
    state: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class DossierStory:
    """Everything the dossier page shows (the ledger is read by the audit reader)."""

    dossier: DossierFacts | None
    timeline: list[TimelineEntry]
    notices: list[NoticeEntry]
    reports: list[ReportHit]


def _facts(row: Any) -> DossierFacts:
    m = row._mapping
    return DossierFacts(**{name: m[name] for name in DossierFacts.__slots__})


def _report(row: Any) -> ReportHit:
    m = row._mapping
    return ReportHit(**{name: m[name] for name in ReportHit.__slots__})


def _one_of(code: str | None, phone: str | None) -> None:
    if (code is None) == (phone is None):
        raise ValueError("search by exactly one of code and phone")


async def find_dossiers(
    reader: AsyncEngine, *, code: str | None = None, phone: str | None = None
) -> list[DossierFacts]:
    """Dossiers whose code, or whose phone (E.164), is exactly the one given; the most
    recently received first, at most :data:`SEARCH_LIMIT` + 1 (so a cut shows)."""
    _one_of(code, phone)
    where = dossiers.c.code == code if code is not None else dossiers.c.phone_e164 == phone
    query = (
        sa.select(dossiers)
        .where(where)
        .order_by(sa.nulls_last(dossiers.c.received_at.desc()), dossiers.c.code)
        .limit(SEARCH_LIMIT + 1)
    )
    async with reader.connect() as conn:
        return [_facts(r) for r in await conn.execute(query)]


async def find_reports(
    reader: AsyncEngine, *, code: str | None = None, phone: str | None = None
) -> list[ReportHit]:
    """Reports about the dossier ``code``, or made from the phone (E.164) ``phone``;
    newest first, at most :data:`SEARCH_LIMIT` + 1."""
    _one_of(code, phone)
    where = reports.c.dossier_code == code if code is not None else reports.c.phone_e164 == phone
    query = sa.select(reports).where(where).order_by(reports.c.id.desc()).limit(SEARCH_LIMIT + 1)
    async with reader.connect() as conn:
        return [_report(r) for r in await conn.execute(query)]


async def dossier_story(reader: AsyncEngine, code: str) -> DossierStory | None:
    """The dossier ``code`` with its timeline, notices and reports; None when the gateway
    knows neither the dossier nor any report about it."""
    async with reader.connect() as conn:
        row = (await conn.execute(sa.select(dossiers).where(dossiers.c.code == code))).first()
        timeline = [
            TimelineEntry(e.type, e.occurred_at, e.actor_id, e.actor_name, bool(e.superseded))
            for e in await timeline_rows(conn, code)
        ]
        sent = [
            NoticeEntry(
                n.id,
                n.kind,
                n.channel,
                n.state,
                int(n.attempts or 0),
                n.created_at,
                n.sent_at,
                n.delivered_at,
                n.last_error,
            )
            for n in await conn.execute(
                sa.select(notices)
                .where(notices.c.dossier_code == code)
                .order_by(notices.c.created_at, notices.c.id)
            )
        ]
        about = [
            _report(r)
            for r in await conn.execute(
                sa.select(reports).where(reports.c.dossier_code == code).order_by(reports.c.id)
            )
        ]
    if row is None and not about:
        return None
    return DossierStory(_facts(row) if row is not None else None, timeline, sent, about)
