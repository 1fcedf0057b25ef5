"""Early warnings: dossiers to act on now, before they become violations (continuous
supervision rather than an inspection years later).

Two lists, read with set-based queries and judged by local date (``TIME_ZONE``):

- ``due_soon``: open dossiers due today or on the next working day that the agency has
  not apologised for (no ``dossier.delayed``): still time to finish, or to apologise in
  time. A paused dossier is open (a pause does not stop the clock); a dossier waiting
  for the citizen's supplement or fees is not listed, the clock being the citizen's.
- ``undelivered``: dossiers finished and not delivered for more than
  ``UNDELIVERED_WARNING_DAYS`` working days: candidates for a proactive call, as a
  "finished" that nobody can collect may be a false closure.

They are lists to look at, not violations: nothing is recorded.

Every row has the same keys, so both lists export as one table: ``dossier`` (code),
``procedure`` {code, name}, ``agency`` {code, name}, ``due_date``, ``finished_date``
(local dates; None when it does not apply), ``officer`` {id, name} (the receiving
officer for ``due_soon``, the closing one for ``undelivered``; None when unknown) and
``days`` (working days left until the due date; working days since finishing).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.delivery.deadlines import WAITING_ON_CITIZEN, start_of_day
from gateway.domain.calendar import DEFAULT_OVERRIDES_FILE, WorkingCalendar, load_overrides
from gateway.settings import Settings
from gateway.storage.tables import dossiers, officers

# Not open any more: the result is out, or the dossier left the one-stop shop.
CLOSED: Final = frozenset({"finished", "delivered", "refused", "withdrawn"})
# Far more than any run of days off; a longer one means broken holiday overrides.
_MAX_LOOKBACK_DAYS: Final = 366


def calendar_of(settings: Settings) -> WorkingCalendar:
    """The working calendar the settings describe (holiday overrides, time zone)."""
    overrides = load_overrides(settings.holiday_overrides_file or DEFAULT_OVERRIDES_FILE)
    return WorkingCalendar(overrides, tz=settings.time_zone)


async def early_warnings(
    engine: AsyncEngine,
    now: datetime,
    settings: Settings,
    *,
    calendar: WorkingCalendar | None = None,
    limit: int = 1000,
) -> dict[str, list[dict[str, Any]]]:
    """The ``due_soon`` and ``undelivered`` lists at ``now`` (each at most ``limit``
    rows, the most pressing first). Pass ``calendar`` to reuse one already built."""
    calendar = calendar or calendar_of(settings)
    today = now.astimezone(calendar.tz).date()
    async with engine.connect() as conn:
        due_soon = (await conn.execute(_due_soon(calendar, today, limit))).all()
        undelivered = (
            await conn.execute(
                _undelivered(calendar, today, settings.audit.undelivered_warning_days, limit)
            )
        ).all()
    return {
        "due_soon": [_row(r, r.received_by, calendar, today) for r in due_soon],
        "undelivered": [
            _row(r, r.finished_by_id, calendar, today, undelivered=True) for r in undelivered
        ],
    }


def _select(officer_id: sa.ColumnElement[Any], fallback_name: sa.ColumnElement[Any]) -> Any:
    d = dossiers.c
    return sa.select(
        d.code,
        d.procedure_code,
        d.procedure_name,
        d.agency_code,
        d.agency_name,
        d.due_at,
        d.finished_at,
        d.received_by,
        d.finished_by_id,
        # The directory's name first: an import is the province's own list.
        sa.func.coalesce(officers.c.name, fallback_name).label("officer_name"),
    ).select_from(dossiers.outerjoin(officers, officers.c.id == officer_id))


def _due_soon(calendar: WorkingCalendar, today: date, limit: int) -> Any:
    d = dossiers.c
    last = calendar.next_working_day(today)
    return (
        _select(d.received_by, sa.null())
        .where(
            d.state.not_in(sorted(CLOSED | WAITING_ON_CITIZEN)),
            d.reschedule_count == 0,
            d.due_at >= start_of_day(today, calendar),
            d.due_at < start_of_day(last + timedelta(days=1), calendar),
        )
        .order_by(d.due_at, d.code)
        .limit(limit)
    )


def _undelivered(calendar: WorkingCalendar, today: date, working_days: int, limit: int) -> Any:
    d = dossiers.c
    latest = _latest_finish_date(calendar, today, working_days)
    return (
        _select(d.finished_by_id, d.finished_by_name)
        .where(
            d.state == "finished",
            d.finished_at < start_of_day(latest + timedelta(days=1), calendar),
        )
        .order_by(d.finished_at, d.code)
        .limit(limit)
    )


def _latest_finish_date(calendar: WorkingCalendar, today: date, working_days: int) -> date:
    """The latest finish date that has waited more than ``working_days`` working days."""
    # working_days_between shrinks as the finish date grows: walk back to the first fit.
    day = today - timedelta(days=1)
    for _ in range(_MAX_LOOKBACK_DAYS):
        if calendar.working_days_between(day, today) > working_days:
            return day
        day -= timedelta(days=1)
    raise ValueError(f"no {working_days} working days in a year before {today.isoformat()}")


def _row(
    r: Any,
    officer_id: str | None,
    calendar: WorkingCalendar,
    today: date,
    *,
    undelivered: bool = False,
) -> dict[str, Any]:
    due_date = r.due_at.astimezone(calendar.tz).date() if r.due_at else None
    finished_date = r.finished_at.astimezone(calendar.tz).date() if undelivered else None
    # Both queries select only rows with the date the list counts from.
    if finished_date is not None:
        days = calendar.working_days_between(finished_date, today)
    else:
        days = calendar.working_days_between(today, due_date) if due_date else 0
    return {
        "dossier": r.code,
        "procedure": {"code": r.procedure_code, "name": r.procedure_name},
        "agency": {"code": r.agency_code, "name": r.agency_name},
        "due_date": due_date,
        "finished_date": finished_date,
        "officer": {"id": officer_id, "name": r.officer_name} if officer_id else None,
        "days": days,
    }
