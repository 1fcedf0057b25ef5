"""The deadline sweep: dossiers past their due date, found through a partial index.

Only dossiers the sweep still watches (``deadline_state IS NULL``) are in the index, so a
run reads the dossiers that fell due since the last run, not the whole table. Lateness is
judged by local date (``TIME_ZONE``), as the national rating does: a dossier due on day D
is looked at from the midnight that ends D, so one finished on the evening of D is on
time and no apology goes out while D lasts. The due date is the dossier's current one
(the date promised in an apology, once there was one).

An open dossier past due is recorded late and, unless the agency already apologised (one
rescheduling is all the rules allow), gets the automatic apology notice. A pause (SOS)
neither ends the dossier nor stops its clock: a paused dossier is open. While the
citizen owes documents or fees the clock is theirs and the dossier waits. Every dossier
the sweep marks has its ``updated_at`` set, so the audit sweep judges it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.domain.calendar import WorkingCalendar
from gateway.storage import outbox
from gateway.storage.outbox import NewNotice
from gateway.storage.tables import dossiers

ENDED = frozenset({"finished", "delivered", "refused", "withdrawn"})
# The clock is the citizen's while they owe documents or fees.
WAITING_ON_CITIZEN = frozenset({"supplement_requested", "fees_due"})


@dataclass(frozen=True, slots=True)
class SweepResult:
    late: int
    met: int
    waiting: int
    apologies: list[tuple[str, str]]  # (notice id, lane)


def start_of_day(day: date, calendar: WorkingCalendar) -> datetime:
    """Local midnight at the start of ``day``, in the calendar's zone."""
    return datetime.combine(day, time(0), tzinfo=calendar.tz)


def day_over_cutoff(now: datetime, calendar: WorkingCalendar) -> datetime:
    """Due dates before this moment are over: local midnight that began today."""
    return start_of_day(now.astimezone(calendar.tz).date(), calendar)


async def sweep(
    engine: AsyncEngine, now: datetime, calendar: WorkingCalendar, *, limit: int = 500
) -> SweepResult:
    """Judge the watched dossiers whose due day is over; returns what it did."""
    late = met = waiting = 0
    apologies: list[tuple[str, str]] = []
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                sa.select(dossiers)
                .where(
                    dossiers.c.deadline_state.is_(None),
                    dossiers.c.due_at < day_over_cutoff(now, calendar),
                )
                .order_by(dossiers.c.due_at)
                .limit(limit)
            )
        ).all()
        for d in rows:
            if d.state in WAITING_ON_CITIZEN:
                verdict, late_at = "waiting", None
                waiting += 1
            elif d.state in ENDED:
                ended = (
                    d.finished_at
                    if d.state in ("finished", "delivered") and d.finished_at
                    else d.state_at
                )
                is_late = calendar.is_late(d.due_at, ended)
                verdict, late_at = ("late", d.due_at) if is_late else ("met", None)
                late, met = late + is_late, met + (not is_late)
            else:
                # Open, paused included: the appointment passed with nothing delivered.
                verdict, late_at = "late", now
                late += 1
                if d.reschedule_count == 0 and d.phone_e164:
                    notice_id = await _auto_apology(conn, d, now)
                    if notice_id:
                        apologies.append((notice_id, "urgent"))
            await conn.execute(
                dossiers.update()
                .where(dossiers.c.code == d.code, dossiers.c.deadline_state.is_(None))
                .values(deadline_state=verdict, late_at=late_at, updated_at=now)
            )
    return SweepResult(late, met, waiting, apologies)


async def _auto_apology(conn: AsyncConnection, d: sa.Row[Any], now: datetime) -> str | None:
    """The automatic apology for a late dossier, once per dossier; its id if new."""
    apology = NewNotice.once_per_dossier(
        "auto_apology",
        d,
        f"deadline:{d.code}",
        received_at=d.received_at.isoformat() if d.received_at else None,
        due_at=d.due_at.isoformat() if d.due_at else None,
    )
    return await outbox.insert_once(conn, apology, now)
