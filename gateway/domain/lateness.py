"""The lateness verdict of a dossier: the national on-time definition, not gameable.

Judged over the dossier's whole timeline (events in ``occurred_at`` order, late
arrivals included), never over what the latest snapshot says:

- the yardstick is the **original appointment date** (the first ``dossier.due_at`` sent),
  as a local date in the time zone: an apology's new date does not move it;
- the dossier **ends** at the first of finished, delivered, refused or withdrawn; a pause
  (SOS) neither ends it nor stops the clock;
- **late is by date**: ending at 19:00 on the due day is on time;
- working days spent **waiting for the citizen's supplement** (from
  ``supplement_requested`` to the next event, whatever it is) move the date the agency is
  held to (the *effective* due date); **more than one supplement request is late**;
- a late dossier is ``late_with_apology`` when an apology (``dossier.delayed``) came on or
  before the (effective) due date, ``late`` otherwise: an apology after the date erases
  nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from gateway.domain.calendar import WorkingCalendar
from gateway.domain.timeline import TimelineEvent

ENDING_TYPES = frozenset(
    {"dossier.finished", "dossier.delivered", "dossier.refused", "dossier.withdrawn"}
)
SUPPLEMENT = "dossier.supplement_requested"
APOLOGY = "dossier.delayed"
_MAX_SEARCH_DAYS = 60


@dataclass(frozen=True, slots=True)
class Lateness:
    """A dossier's lateness facts and verdict."""

    # The ORIGINAL appointment date, local (TIME_ZONE).
    due_date: date | None
    # due_date + the working days spent waiting for a supplement; None while the dossier
    # is still waiting for one (no date is in force) or when no due date is known.
    effective_due_date: date | None
    # The first of finished / delivered / refused / withdrawn.
    ended_at: datetime | None
    end_kind: str | None  # "finished", "delivered", "refused", "withdrawn"
    closed_by: tuple[str | None, str | None] | None  # (officer id, name) of that event
    verdict: str  # "open" | "on_time" | "late" | "late_with_apology"
    supplement_requests: int
    apologies: int  # dossier.delayed events
    timely_apology: bool  # an apology on or before the (effective) due date

    def overdue_on(self, today: date) -> bool:
        """Whether the dossier is still open on local date ``today`` past its due date."""
        return (
            self.verdict == "open"
            and self.effective_due_date is not None
            and today > self.effective_due_date
        )


def judge(events: Sequence[TimelineEvent], calendar: WorkingCalendar, tz: tzinfo) -> Lateness:
    """The lateness of the dossier whose time-ordered timeline is ``events``."""
    due_at = next((e.due_at for e in events if e.due_at is not None), None)
    due_date = due_at.astimezone(tz).date() if due_at is not None else None
    end = next((e for e in events if e.type in ENDING_TYPES), None)
    # Nothing after the end counts: a supplement request on a closed dossier waits for
    # nothing the agency is held to.
    active = events if end is None else [e for e in events if e.occurred_at <= end.occurred_at]
    supplements = sum(e.type == SUPPLEMENT for e in active)
    apologies = [e for e in events if e.type == APOLOGY]
    effective = effective_due_date(due_date, active, calendar, tz, until=None)
    timely = effective is not None and any(
        a.occurred_at.astimezone(tz).date() <= effective for a in apologies
    )
    if end is None:
        verdict = "open"
    else:
        ended_day = end.occurred_at.astimezone(tz).date()
        late = supplements > 1 or (effective is not None and ended_day > effective)
        verdict = ("late_with_apology" if timely else "late") if late else "on_time"
    return Lateness(
        due_date=due_date,
        effective_due_date=effective,
        ended_at=end.occurred_at if end else None,
        end_kind=end.type.removeprefix("dossier.") if end else None,
        closed_by=(end.actor_id, end.actor_name) if end else None,
        verdict=verdict,
        supplement_requests=supplements,
        apologies=len(apologies),
        timely_apology=timely,
    )


def effective_due_date(
    due_date: date | None,
    events: Sequence[TimelineEvent],
    calendar: WorkingCalendar,
    tz: tzinfo,
    until: datetime | None,
) -> date | None:
    """``due_date`` moved by the working days spent waiting for supplements.

    A wait runs from a ``supplement_requested`` event to the next event of another type;
    its length is the working days in (request date, end date]. With ``until``, only the
    events before that moment count and a wait still running then ends there (the
    deadline in force at that moment); without it, a wait still running means no date is
    in force (None).
    """
    if due_date is None:
        return None
    waited = 0
    waiting_since: datetime | None = None
    for event in events:
        if until is not None and event.occurred_at >= until:
            break
        if event.type == SUPPLEMENT:
            if waiting_since is None:
                waiting_since = event.occurred_at
        elif waiting_since is not None:
            waited += _working_days(calendar, tz, waiting_since, event.occurred_at)
            waiting_since = None
    if waiting_since is not None:
        if until is None:
            return None
        waited += _working_days(calendar, tz, waiting_since, until)
    return add_working_days(calendar, due_date, waited)


def add_working_days(calendar: WorkingCalendar, day: date, n: int) -> date:
    """The ``n``-th working day after ``day`` (``day`` itself for 0)."""
    for _ in range(n):
        day = _step(calendar, day, 1)
    return day


def previous_working_day(calendar: WorkingCalendar, day: date) -> date:
    """The last working day strictly before ``day``."""
    return _step(calendar, day, -1)


@functools.lru_cache(maxsize=8192)
def is_working_day(calendar: WorkingCalendar, day: date) -> bool:
    """``calendar.is_working_day(day)``, remembered: a rebuild asks about the same few
    hundred days for every dossier, and the calendar's answer is fixed once it is built."""
    return calendar.is_working_day(day)


def _step(calendar: WorkingCalendar, day: date, direction: int) -> date:
    one = timedelta(days=direction)
    for _ in range(_MAX_SEARCH_DAYS):
        day += one
        if is_working_day(calendar, day):
            return day
    raise ValueError(f"no working day within {_MAX_SEARCH_DAYS} days of {day.isoformat()}")


def _working_days(calendar: WorkingCalendar, tz: tzinfo, start: datetime, end: datetime) -> int:
    # Working days in (start's date, end's date].
    day, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    count = 0
    while day < last:
        day += timedelta(days=1)
        count += is_working_day(calendar, day)
    return count
