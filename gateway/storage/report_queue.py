"""The hotline's report queue at the console: filters, the SLA clock, grouping, assignment.

The database narrows the reports by state, kind, agency and assignee, oldest first; the
SLA (working days, so the calendar's business) is computed here for each report, then
the queue is grouped by dossier (a dossier many citizens call about is one piece of
work) and ordered with overdue reports on top. The queue holds at most
:data:`SCAN_MAX` reports from the database and shows at most :data:`SHOW_MAX`; the page
says when it was cut.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.domain.calendar import WorkingCalendar
from gateway.domain.reports import FINAL_STATUSES, Sla, SlaState, sla_due, sla_of
from gateway.errors import FieldError, NotFound, ValidationFailed
from gateway.storage.reports import ReportRow
from gateway.storage.tables import dossiers, staff_users
from gateway.storage.tables import reports as reports_table

__all__ = [
    "ASSIGNABLE_ROLES",
    "SCAN_MAX",
    "SHOW_MAX",
    "Assignee",
    "Queue",
    "QueueGroup",
    "QueueItem",
    "assign",
    "build_queue",
    "known_agencies",
    "load_queue",
    "queue_rows",
]

# Reports read from the database at most, and shown at most, per queue page.
SCAN_MAX: Final = 5000
SHOW_MAX: Final = 500
# Who may be given a report (an auditor reads, a disabled user cannot act).
ASSIGNABLE_ROLES: Final = frozenset({"hotline", "admin"})

Assignee = Literal["none"] | int | None
_FIELDS: Final = tuple(ReportRow.__dataclass_fields__)


def _report(row: Any) -> ReportRow:
    return ReportRow(**{name: row[name] for name in _FIELDS})


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One report in the queue: ``dossier_known`` is false for a dossier the gateway has
    never seen; ``sla`` is None for a resolved or rejected report (nothing left to do)."""

    report: ReportRow
    dossier_known: bool
    sla: Sla | None

    @property
    def overdue(self) -> bool:
        return self.sla is not None and self.sla.state == "overdue"

    def urgency(self) -> tuple[int, datetime, int]:
        """Sort key: overdue first, then oldest first (id breaks ties)."""
        return (0 if self.overdue else 1, self.report.created_at, self.report.id)


@dataclass(frozen=True, slots=True)
class QueueGroup:
    """The reports about one dossier, most urgent first (a report without a dossier code
    is a group of its own)."""

    dossier_code: str | None
    items: tuple[QueueItem, ...]


@dataclass(frozen=True, slots=True)
class Queue:
    """The groups shown; ``total`` reports matched (up to :data:`SCAN_MAX`), ``shown`` are
    on the page; ``capped`` when some were left out (more than either limit)."""

    groups: tuple[QueueGroup, ...]
    shown: int
    total: int
    capped: bool


async def queue_rows(
    reader: AsyncEngine,
    *,
    statuses: Sequence[str],
    kind: str | None = None,
    agency: str | None = None,
    assignee: Assignee = None,
    limit: int = SCAN_MAX,
) -> tuple[list[tuple[ReportRow, bool]], bool]:
    """Reports matching the filters, oldest first, each with whether its dossier is known;
    and whether more than ``limit`` matched. ``assignee`` is a staff id or ``"none"``."""
    query = (
        sa.select(reports_table, dossiers.c.code.label("known_code"))
        .select_from(
            reports_table.outerjoin(dossiers, dossiers.c.code == reports_table.c.dossier_code)
        )
        .where(reports_table.c.status.in_(list(statuses)))
        .order_by(reports_table.c.created_at, reports_table.c.id)
        .limit(limit + 1)
    )
    if kind is not None:
        query = query.where(reports_table.c.kind == kind)
    if agency is not None:
        query = query.where(reports_table.c.agency_code == agency)
    if assignee == "none":
        query = query.where(reports_table.c.assignee_id.is_(None))
    elif assignee is not None:
        query = query.where(reports_table.c.assignee_id == assignee)
    async with reader.connect() as conn:
        rows = [
            (_report(r._mapping), r._mapping["known_code"] is not None)
            for r in await conn.execute(query)
        ]
    return rows[:limit], len(rows) > limit


def build_queue(
    rows: Sequence[tuple[ReportRow, bool]],
    *,
    now: datetime,
    calendar: WorkingCalendar,
    sla_days: Mapping[str, int],
    sla: SlaState | None = None,
    show_max: int = SHOW_MAX,
    scan_capped: bool = False,
) -> Queue:
    """The queue from stored rows: SLA of each open report, the ``sla`` filter, groups by
    dossier ordered by their most urgent report, at most ``show_max`` reports (whole
    groups, but at least the first one)."""
    items = [_item(report, known, now, calendar, sla_days) for report, known in rows]
    if sla is not None:
        items = [i for i in items if i.sla is not None and i.sla.state == sla]
    groups = _group(items)
    shown: list[QueueGroup] = []
    count = 0
    for group in groups:
        if shown and count + len(group.items) > show_max:
            break
        shown.append(group)
        count += len(group.items)
    return Queue(tuple(shown), count, len(items), scan_capped or count < len(items))


def _item(
    report: ReportRow,
    known: bool,
    now: datetime,
    calendar: WorkingCalendar,
    sla_days: Mapping[str, int],
) -> QueueItem:
    if report.status in FINAL_STATUSES:
        return QueueItem(report, known, None)
    due = sla_due(report.kind, report.created_at, report.expected_at, sla_days, calendar)
    return QueueItem(report, known, sla_of(due, now, calendar))


def _group(items: Sequence[QueueItem]) -> list[QueueGroup]:
    """Reports grouped by dossier; each group and the groups ordered by urgency."""
    by_code: dict[str, list[QueueItem]] = {}
    loose: list[list[QueueItem]] = []
    for item in items:
        code = item.report.dossier_code
        if code is None:
            loose.append([item])
        else:
            by_code.setdefault(code, []).append(item)
    lists = [*by_code.values(), *loose]
    for members in lists:
        members.sort(key=QueueItem.urgency)
    lists.sort(key=lambda members: members[0].urgency())
    return [QueueGroup(m[0].report.dossier_code, tuple(m)) for m in lists]


async def load_queue(
    reader: AsyncEngine,
    *,
    statuses: Sequence[str],
    kind: str | None,
    agency: str | None,
    assignee: Assignee,
    sla: SlaState | None,
    now: datetime,
    calendar: WorkingCalendar,
    sla_days: Mapping[str, int],
) -> Queue:
    """:func:`queue_rows` then :func:`build_queue`: the page's queue."""
    rows, more = await queue_rows(
        reader, statuses=statuses, kind=kind, agency=agency, assignee=assignee
    )
    return build_queue(
        rows, now=now, calendar=calendar, sla_days=sla_days, sla=sla, scan_capped=more
    )


async def known_agencies(
    reader: AsyncEngine, *, dossiers_too: bool = True
) -> list[tuple[str, str]]:
    """(code, name) of every agency named by a report, and by a dossier unless
    ``dossiers_too`` is false, by name then code: the choices of the phone form (all)
    and of the queue's agency filter (reports' only: the queue shows nothing else, and
    the dossiers table is large)."""
    names: dict[str, str] = {}
    tables = (dossiers, reports_table) if dossiers_too else (reports_table,)
    async with reader.connect() as conn:
        for table in tables:
            query = (
                sa.select(table.c.agency_code, sa.func.max(table.c.agency_name))
                .where(table.c.agency_code.is_not(None))
                .group_by(table.c.agency_code)
            )
            for code, name in await conn.execute(query):
                names.setdefault(code, name or "")
    return sorted(names.items(), key=lambda pair: (pair[1].casefold() or pair[0], pair[0]))


async def assign(
    engine: AsyncEngine, report_id: int, assignee_id: int | None, now: datetime
) -> ReportRow:
    """Give report ``report_id`` to staff user ``assignee_id`` (None: to nobody).

    The assignee must be an active hotline officer or admin, else
    :class:`ValidationFailed` names ``assignee_id``; :class:`NotFound` for no such
    report. Nothing is written then.
    """
    async with engine.begin() as conn:
        if assignee_id is not None:
            user = (
                await conn.execute(
                    sa.select(staff_users.c.role, staff_users.c.disabled_at).where(
                        staff_users.c.id == assignee_id
                    )
                )
            ).first()
            if user is None or user.disabled_at is not None or user.role not in ASSIGNABLE_ROLES:
                raise ValidationFailed(
                    [FieldError("assignee_id", "must be an active hotline officer or admin")]
                )
        changes = {"assignee_id": assignee_id, "assigned_at": now if assignee_id else None}
        updated = await conn.execute(
            reports_table.update()
            .where(reports_table.c.id == report_id)
            .values(**changes)
            .returning(*reports_table.c)
        )
        row = updated.first()
        if row is None:
            raise NotFound(f"no report {report_id}")
    return _report(row._mapping)
