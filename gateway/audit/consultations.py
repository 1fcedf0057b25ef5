"""The consultation reminders sweep: agencies that owe an answer get reminded, twice.

A dossier's handling agency may consult another agency, which must answer by a due
date. Once the due DAY is over (local date in ``TIME_ZONE``, as for dossiers) and no
answer has come, the sweep records the first reminder; when
``CONSULTATION_SECOND_REMINDER_DAYS`` more working days are over, the second, copied to
the Department of Home Affairs (Sở Nội vụ). Reminders are rows of
``consultation_reminders``, unique per (dossier, consultation, number), so running the
sweep again adds nothing; a dossier that gains a reminder has its ``updated_at`` set, so
the audit sweep judges it again (the unanswered consultation is a violation from then).

Run by the cron every few minutes; each run reads the unanswered, overdue consultations
that still have a reminder to come, oldest due first, and gives each at least one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.delivery.deadlines import day_over_cutoff, start_of_day
from gateway.domain.calendar import WorkingCalendar
from gateway.domain.lateness import add_working_days
from gateway.storage.audit import append_reminder
from gateway.storage.tables import consultation_reminders, consultations, dossiers

# The second reminder goes to the consulted agency with a copy to this department.
SECOND_REMINDER_COPIED_TO: Final = "Sở Nội vụ"
# Far more than any run of days off; a longer one means broken holiday overrides.
_MAX_LOOKBACK_DAYS: Final = 366


@dataclass(frozen=True, slots=True)
class Reminders:
    """What one run recorded."""

    first: int
    second: int
    dossiers: int  # dossiers touched for the audit sweep


def second_reminder_day(calendar: WorkingCalendar, due_date: date, working_days: int) -> date:
    """The last day an answer may come before the second reminder: the ``working_days``-th
    working day after the (local) due date. The second reminder is due once it is over,
    the same day the ledger starts counting the consultation as unanswered."""
    return add_working_days(calendar, due_date, working_days)


def _latest_due_date_for_second(
    calendar: WorkingCalendar, today: date, working_days: int
) -> date | None:
    """The latest due date whose second reminder is due ``today`` (None: none is)."""
    # second_reminder_day grows with the due date, so walk back to the first that fits.
    day = today - timedelta(days=1)
    for _ in range(_MAX_LOOKBACK_DAYS):
        if second_reminder_day(calendar, day, working_days) < today:
            return day
        day -= timedelta(days=1)
    return None


async def sweep(
    engine: AsyncEngine,
    now: datetime,
    calendar: WorkingCalendar,
    second_reminder_days: int,
    *,
    limit: int = 500,
) -> Reminders:
    """Record the reminders due at ``now``; returns how many of each were new."""
    today = now.astimezone(calendar.tz).date()
    latest = _latest_due_date_for_second(calendar, today, second_reminder_days)
    c = consultations.c
    first = consultation_reminders.alias("first")
    second = consultation_reminders.alias("second")

    def reminder(alias: sa.FromClause, number: int) -> sa.ColumnElement[bool]:
        return sa.and_(
            alias.c.dossier_code == c.dossier_code,
            alias.c.consultation_id == c.consultation_id,
            alias.c.number == number,
        )

    second_due = (
        c.due_at < start_of_day(latest + timedelta(days=1), calendar)
        if latest is not None
        else sa.false()
    )
    query = (
        sa.select(
            c.dossier_code,
            c.consultation_id,
            c.agency_code,
            c.due_at,
            first.c.id.label("first_id"),
        )
        .select_from(
            consultations.outerjoin(first, reminder(first, 1)).outerjoin(
                second, reminder(second, 2)
            )
        )
        .where(
            c.answered_at.is_(None),
            c.due_at < day_over_cutoff(now, calendar),
            second.c.id.is_(None),
            sa.or_(first.c.id.is_(None), second_due),
        )
        .order_by(c.due_at, c.dossier_code, c.consultation_id)
        .limit(limit)
    )
    firsts = seconds = 0
    touched: set[str] = set()
    async with engine.begin() as conn:
        for row in (await conn.execute(query)).all():
            due_date = row.due_at.astimezone(calendar.tz).date()
            if row.first_id is None and await append_reminder(
                conn, row.dossier_code, row.consultation_id, 1, row.agency_code, None, now
            ):
                firsts += 1
                touched.add(row.dossier_code)
            if second_reminder_day(
                calendar, due_date, second_reminder_days
            ) < today and await append_reminder(
                conn,
                row.dossier_code,
                row.consultation_id,
                2,
                row.agency_code,
                SECOND_REMINDER_COPIED_TO,
                now,
            ):
                seconds += 1
                touched.add(row.dossier_code)
        if touched:
            await conn.execute(
                dossiers.update().where(dossiers.c.code.in_(sorted(touched))).values(updated_at=now)
            )
    return Reminders(firsts, seconds, len(touched))
