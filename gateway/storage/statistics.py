"""Monthly accountability figures per agency and per officer, by set-based SQL.

Every figure comes from a handful of ``GROUP BY`` queries over the derived
``dossier_audit`` rows (their ``received_month``/``ended_month`` strings, local months in
``TIME_ZONE``, so no dialect date function is needed), the violations ledger and the
citizens' ratings; nothing walks dossiers one by one in Python, and SQLite and
PostgreSQL give the same numbers.

Definitions (the national on-time rule, as ``gateway.domain.lateness`` judges it):

* ``received``: dossiers received in the range; ``missing_phone`` those of them with no
  usable mobile number at receipt; ``missing_phone_rate`` = missing_phone / received.
* ``ended``: dossiers ended in the range; ``on_time``; ``late`` counts both verdicts
  ``late`` and ``late_with_apology``; ``late_with_apology`` apart;
  ``late_rate`` = late / ended (0 when nothing ended); ``over_threshold`` when the late
  rate is above the threshold.
* ``open_overdue`` (agencies): still open when the range ended — or now, for a range
  that includes today — and past the effective due date by then.
* ``consultations_late`` / ``consultations_unanswered`` (agencies, as the consulted
  agency), ``false_closures_confirmed``: ledger entries of those rules that occurred in
  the range and whose latest decision is not ``dismissed``.
* ``ratings``: citizens' ratings given in the range (by when each was first given; for
  officers: of the dossiers they closed). ``count`` is every rating, one per citizen and
  dossier, whatever scores it holds. Citizens give two scores (1-5), progress (tiến độ)
  and quality (chất lượng tiếp nhận, giải quyết), maybe only one of them:
  ``progress_avg`` / ``quality_avg`` average the ratings holding that score
  (``progress_count`` / ``quality_count`` of them). Ratings from before the two scores
  hold one overall ``score`` only and count in neither of those averages. ``average``,
  kept from then, is the mean of every score given (each old overall score, each
  progress and each quality score). Every average is ``None`` when nothing was counted.

Officers are counted on the dossiers they received (received, missing phone) and the
dossiers they closed (ended, on time, late, ratings), and on their own violations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import FieldError, ValidationFailed
from gateway.storage.tables import (
    dossier_audit,
    dossiers,
    events,
    officers,
    ratings,
    violation_decisions,
    violations,
)

__all__ = [
    "MAX_MONTHS",
    "MONTH_PATTERN",
    "MonthRange",
    "agency_names",
    "agency_statistics",
    "blank_officer_item",
    "monthly_series",
    "officer_statistics",
]

# A six-monthly report is the usual longest; two years leaves room for comparisons.
MAX_MONTHS = 24
_MONTH_FORM = "must be a month as YYYY-MM, from 1900-01 to 2999-12"
# ASCII digits, and years whose months all exist in every time zone (year 0 does not,
# and the last month of 9999 has no end): found as a 500 by fuzzing the API.
MONTH_PATTERN = "(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])"
_MONTH = re.compile(MONTH_PATTERN)
# Bound parameters per IN list: far below SQLite's and asyncpg's limits.
_CHUNK = 500
_CONSULTATION_RULES = ("late_consultation_answer", "consultation_unanswered")
_ENDED_VERDICTS = ("on_time", "late", "late_with_apology")


@dataclass(frozen=True, slots=True)
class MonthRange:
    """A range of whole local months, ``first`` to ``last`` inclusive, as ``YYYY-MM``."""

    first: str
    last: str

    @classmethod
    def parse(cls, month: str | None, from_: str | None, to: str | None) -> MonthRange:
        """``month=YYYY-MM`` alone, or ``from=YYYY-MM`` and ``to=YYYY-MM`` (at most
        :data:`MAX_MONTHS` months); :class:`ValidationFailed` naming each bad field."""
        errors: list[FieldError] = []
        if month is not None:
            if from_ is not None or to is not None:
                errors.append(FieldError("month", "give either month or from and to, not both"))
            elif not _MONTH.fullmatch(month):
                errors.append(FieldError("month", _MONTH_FORM))
            else:
                return cls(month, month)
            raise ValidationFailed(errors)
        if from_ is None and to is None:
            raise ValidationFailed(
                [FieldError("month", "is required (month=YYYY-MM, or from=YYYY-MM&to=YYYY-MM)")]
            )
        for name, value in (("from", from_), ("to", to)):
            if value is None:
                errors.append(FieldError(name, "is required with from/to"))
            elif not _MONTH.fullmatch(value):
                errors.append(FieldError(name, _MONTH_FORM))
        if errors:
            raise ValidationFailed(errors)
        assert from_ is not None and to is not None
        span = cls(from_, to)
        if to < from_:
            raise ValidationFailed([FieldError("to", "must not be before from")])
        if len(span.months()) > MAX_MONTHS:
            raise ValidationFailed([FieldError("to", f"at most {MAX_MONTHS} months from 'from'")])
        return span

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> MonthRange:
        """:meth:`parse` on a request's query parameters (``month``, ``from``, ``to``)."""
        return cls.parse(query.get("month"), query.get("from"), query.get("to"))

    def months(self) -> list[str]:
        """Every month of the range, in order."""
        year, month = _split(self.first)
        out: list[str] = []
        while (current := f"{year:04d}-{month:02d}") <= self.last:
            out.append(current)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out

    def start(self) -> date:
        """The first day of the range."""
        year, month = _split(self.first)
        return date(year, month, 1)

    def end(self) -> date:
        """The first day after the range."""
        year, month = _split(self.last)
        return date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """``[start, end)`` of the range in UTC, its months being local to ``tz``."""

        def midnight(day: date) -> datetime:
            return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)

        return midnight(self.start()), midnight(self.end())


def _split(month: str) -> tuple[int, int]:
    year, number = month.split("-")
    return int(year), int(number)


async def agency_statistics(
    engine: AsyncEngine, months: MonthRange, *, threshold: float, now: datetime, tz: tzinfo
) -> list[dict[str, Any]]:
    """One item per agency with anything to count in the range, ordered by code."""
    audit = dossier_audit.c
    start, end = months.bounds(tz)
    reference = _reference_day(months, now, tz)
    counts: dict[str, dict[str, int]] = {}
    names: dict[str, str] = {}
    async with engine.connect() as conn:
        for key, received, missing, name in await _received(conn, audit.agency_code, months):
            _add(counts, key, received=received, missing_phone=missing)
            _name(names, key, name)
        for key, *ended, name in await _ended(conn, audit.agency_code, months):
            _add(counts, key, **dict(zip(_ENDED_FIELDS, ended, strict=True)))
            _name(names, key, name)
        for key, overdue in await _open_overdue(conn, months, reference):
            _add(counts, key, open_overdue=overdue)
        rules = (*_CONSULTATION_RULES, "false_closure")
        for key, rule, number, name in await _violations(
            conn, violations.c.agency_code, violations.c.agency_name, rules, start, end
        ):
            _add(counts, key, **{_RULE_FIELDS[rule]: number})
            _name(names, key, name)
        rated = (
            sa.select(ratings.c.agency_code, *_RATING_COLUMNS)
            .where(
                ratings.c.agency_code.is_not(None),
                ratings.c.created_at >= start,
                ratings.c.created_at < end,
            )
            .group_by(ratings.c.agency_code)
        )
        for key, *rating_counts in await _rows(conn, rated):
            _add(counts, key, **dict(zip(_RATING_FIELDS, rating_counts, strict=True)))
        # The name the one-stop-shop sent last wins over those seen in the range.
        names.update(await _agency_names(conn, sorted(counts)))
    return [
        {"agency": {"code": key, "name": names.get(key)}, **_figures(counts[key], threshold)}
        for key in sorted(counts)
    ]


async def officer_statistics(
    engine: AsyncEngine, months: MonthRange, *, threshold: float, now: datetime, tz: tzinfo
) -> list[dict[str, Any]]:
    """One item per officer who received or closed a dossier, or had a confirmed false
    closure, in the range; ordered by officer id."""
    del now  # open dossiers are the agency's: an officer has no open_overdue figure
    audit = dossier_audit.c
    start, end = months.bounds(tz)
    counts: dict[str, dict[str, int]] = {}
    async with engine.connect() as conn:
        for key, received, missing, _ in await _received(conn, audit.received_by, months):
            _add(counts, key, received=received, missing_phone=missing)
        for key, *ended, _ in await _ended(conn, audit.closed_by, months):
            _add(counts, key, **dict(zip(_ENDED_FIELDS, ended, strict=True)))
        for key, rule, number, _ in await _violations(
            conn, violations.c.officer_id, violations.c.officer_name, ("false_closure",), start, end
        ):
            _add(counts, key, **{_RULE_FIELDS[rule]: number})
        rated = (
            sa.select(audit.closed_by, *_RATING_COLUMNS)
            .select_from(ratings.join(dossier_audit, audit.dossier_code == ratings.c.dossier_code))
            .where(
                audit.closed_by.is_not(None),
                ratings.c.created_at >= start,
                ratings.c.created_at < end,
            )
            .group_by(audit.closed_by)
        )
        for key, *rating_counts in await _rows(conn, rated):
            _add(counts, key, **dict(zip(_RATING_FIELDS, rating_counts, strict=True)))
        names = await _officer_names(conn, sorted(counts), months)
    items = []
    for key in sorted(counts):
        figures = _figures(counts[key], threshold)
        del figures["open_overdue"], figures["consultations_late"]
        del figures["consultations_unanswered"]
        items.append({"officer": {"id": key, "name": names.get(key)}, **figures})
    return items


# --- the queries ---------------------------------------------------------------------------

_ENDED_FIELDS = ("ended", "on_time", "late_only", "late_with_apology")
# Per group of ratings: how many, then the sum and the count of each score column
# (``SUM``/``COUNT`` of a column skip its NULLs: a rating without that score).
_RATING_FIELDS = (
    "ratings_count",
    "score_sum",
    "score_count",
    "progress_sum",
    "progress_count",
    "quality_sum",
    "quality_count",
)
_RATING_COLUMNS = (
    sa.func.count(),
    *(
        aggregate(column)
        for column in (ratings.c.score, ratings.c.progress_score, ratings.c.quality_score)
        for aggregate in (sa.func.sum, sa.func.count)
    ),
)
_RULE_FIELDS = {
    "late_consultation_answer": "consultations_late",
    "consultation_unanswered": "consultations_unanswered",
    "false_closure": "false_closures_confirmed",
}


def _count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.sum(sa.case((condition, 1), else_=0))


async def _received(
    conn: AsyncConnection, key: sa.ColumnElement[Any], months: MonthRange
) -> list[tuple[Any, ...]]:
    audit = dossier_audit.c
    query = (
        sa.select(
            key, sa.func.count(), _count_if(audit.missing_phone), sa.func.max(audit.agency_name)
        )
        .where(audit.received_month.between(months.first, months.last), key.is_not(None))
        .group_by(key)
    )
    return await _rows(conn, query)


async def _ended(
    conn: AsyncConnection, key: sa.ColumnElement[Any], months: MonthRange
) -> list[tuple[Any, ...]]:
    audit = dossier_audit.c
    query = (
        sa.select(
            key,
            sa.func.count(),
            *(_count_if(audit.verdict == verdict) for verdict in _ENDED_VERDICTS),
            sa.func.max(audit.agency_name),
        )
        .where(audit.ended_month.between(months.first, months.last), key.is_not(None))
        .group_by(key)
    )
    return await _rows(conn, query)


def _reference_day(months: MonthRange, now: datetime, tz: tzinfo) -> date:
    """The day open dossiers are judged on: the day after the range, or today if the
    range has not ended yet (a dossier is overdue on a day after its due date)."""
    return min(now.astimezone(tz).date(), months.end())


async def _open_overdue(
    conn: AsyncConnection, months: MonthRange, reference: date
) -> list[tuple[str, int]]:
    """Per agency: dossiers open at the end of the range and overdue on ``reference``.

    Two queries, each on its own index: the dossiers still open now, and those that
    ended only after the range (open while it lasted).
    """
    audit = dossier_audit.c
    common = (
        audit.agency_code.is_not(None),
        audit.effective_due_date < reference,
        sa.or_(audit.received_month.is_(None), audit.received_month <= months.last),
    )
    still_open = sa.select(audit.agency_code, sa.func.count()).where(
        audit.verdict == "open", *common
    )
    ended_after = sa.select(audit.agency_code, sa.func.count()).where(
        audit.ended_month > months.last, audit.verdict != "open", *common
    )
    totals: dict[str, int] = {}
    for query in (still_open, ended_after):
        for key, number in await _rows(conn, query.group_by(audit.agency_code)):
            totals[key] = totals.get(key, 0) + number
    return list(totals.items())


def _not_dismissed() -> sa.ColumnElement[bool]:
    """The ledger entries whose latest decision (if any) is not ``dismissed``."""
    decided = violation_decisions.c
    latest = (
        sa.select(decided.violation_id, sa.func.max(decided.id).label("last"))
        .group_by(decided.violation_id)
        .subquery()
    )
    dismissed = (
        sa.select(latest.c.violation_id)
        .join(violation_decisions, decided.id == latest.c.last)
        .where(decided.decision == "dismissed")
    )
    return violations.c.id.not_in(dismissed)


async def _violations(
    conn: AsyncConnection,
    key: sa.ColumnElement[Any],
    name: sa.ColumnElement[Any],
    rules: Sequence[str],
    start: datetime,
    end: datetime,
) -> list[tuple[Any, ...]]:
    v = violations.c
    query = (
        sa.select(key, v.rule, sa.func.count(), sa.func.max(name))
        .where(
            key.is_not(None),
            v.rule.in_(rules),
            v.occurred_at >= start,
            v.occurred_at < end,
            _not_dismissed(),
        )
        .group_by(key, v.rule)
    )
    return await _rows(conn, query)


async def _rows(conn: AsyncConnection, query: sa.Executable) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in await conn.execute(query)]


def _chunks(keys: Sequence[str]) -> Iterator[Sequence[str]]:
    for index in range(0, len(keys), _CHUNK):
        yield keys[index : index + _CHUNK]


async def _agency_names(conn: AsyncConnection, codes: Sequence[str]) -> dict[str, str]:
    """The latest name the one-stop-shop sent for each agency (by receipt date).

    One query per chunk of codes: a correlated lookup on ``ix_dossiers_agency_received``
    for each code, so it costs a few index probes whatever the table size.
    """
    names: dict[str, str] = {}
    for chunk in _chunks(codes):
        wanted = sa.union_all(
            *(sa.select(sa.literal(code, sa.String()).label("code")) for code in chunk)
        ).subquery("wanted")
        latest = (
            sa.select(dossiers.c.agency_name)
            .where(
                dossiers.c.agency_code == wanted.c.code,
                dossiers.c.received_at.is_not(None),
                dossiers.c.agency_name.is_not(None),
            )
            .order_by(dossiers.c.received_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        for code, name in await _rows(conn, sa.select(wanted.c.code, latest)):
            if name is not None:
                names[code] = name
    return names


async def _officer_names(
    conn: AsyncConnection, ids: Sequence[str], months: MonthRange
) -> dict[str, str]:
    """Names from the officer directory; else the latest the ledger or the events of
    the officer's dossiers in the range gave."""
    names: dict[str, str] = {}
    for chunk in _chunks(ids):
        directory = sa.select(officers.c.id, officers.c.name).where(
            officers.c.id.in_(chunk), officers.c.name.is_not(None)
        )
        _merge(names, await _rows(conn, directory))
    missing = [key for key in ids if key not in names]
    for chunk in _chunks(missing):
        ledger = (
            sa.select(violations.c.officer_id, sa.func.max(violations.c.officer_name))
            .where(violations.c.officer_id.in_(chunk), violations.c.officer_name.is_not(None))
            .group_by(violations.c.officer_id)
        )
        _merge(names, await _rows(conn, ledger))
    missing = [key for key in missing if key not in names]
    audit = dossier_audit.c
    for chunk in _chunks(missing):
        # Only the events of this officer's dossiers in the range: never a whole-table scan.
        acted = (
            sa.select(events.c.actor_id, sa.func.max(events.c.actor_name))
            .select_from(events.join(dossier_audit, events.c.dossier_code == audit.dossier_code))
            .where(
                events.c.actor_id.in_(chunk),
                events.c.actor_name.is_not(None),
                sa.or_(
                    sa.and_(
                        audit.received_by.in_(chunk),
                        audit.received_month.between(months.first, months.last),
                    ),
                    sa.and_(
                        audit.closed_by.in_(chunk),
                        audit.ended_month.between(months.first, months.last),
                    ),
                ),
            )
            .group_by(events.c.actor_id)
        )
        _merge(names, await _rows(conn, acted))
    return names


def _merge(names: dict[str, str], rows: Iterable[Sequence[Any]]) -> None:
    for key, name in rows:
        names.setdefault(key, name)


# --- the figures ---------------------------------------------------------------------------


def _add(counts: dict[str, dict[str, int]], key: str, **figures: Any) -> None:
    into = counts.setdefault(key, {})
    for field, value in figures.items():
        into[field] = into.get(field, 0) + int(value or 0)


def _name(names: dict[str, str], key: str, name: str | None) -> None:
    if name is not None:
        names.setdefault(key, name)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _figures(counts: Mapping[str, int], threshold: float) -> dict[str, Any]:
    """The contract's fields, in its order, from the raw counts."""
    received = counts.get("received", 0)
    ended = counts.get("ended", 0)
    late = counts.get("late_only", 0) + counts.get("late_with_apology", 0)
    missing = counts.get("missing_phone", 0)
    return {
        "received": received,
        "ended": ended,
        "on_time": counts.get("on_time", 0),
        "late": late,
        "late_with_apology": counts.get("late_with_apology", 0),
        "late_rate": _rate(late, ended),
        # Compared unrounded: 1 late in 10 is not over a threshold of 0.10.
        "over_threshold": bool(ended) and late / ended > threshold,
        "open_overdue": counts.get("open_overdue", 0),
        "missing_phone": missing,
        "missing_phone_rate": _rate(missing, received),
        "consultations_late": counts.get("consultations_late", 0),
        "consultations_unanswered": counts.get("consultations_unanswered", 0),
        "false_closures_confirmed": counts.get("false_closures_confirmed", 0),
        "ratings": _ratings(counts),
    }


def _average(total: int, number: int) -> float | None:
    return round(total / number, 4) if number else None


def _ratings(counts: Mapping[str, int]) -> dict[str, Any]:
    """The ``ratings`` object (see the module doc for what each figure counts)."""
    every = [(counts.get(f"{name}_sum", 0), counts.get(f"{name}_count", 0)) for name in _SCORES]
    return {
        "count": counts.get("ratings_count", 0),
        "average": _average(sum(total for total, _ in every), sum(n for _, n in every)),
        "progress_avg": _average(counts.get("progress_sum", 0), counts.get("progress_count", 0)),
        "progress_count": counts.get("progress_count", 0),
        "quality_avg": _average(counts.get("quality_sum", 0), counts.get("quality_count", 0)),
        "quality_count": counts.get("quality_count", 0),
    }


_SCORES = ("score", "progress", "quality")


# --- monthly series (the console's trend charts) -------------------------------------------


async def monthly_series(
    engine: AsyncEngine,
    months: MonthRange,
    *,
    threshold: float,
    agency: str | None = None,
    officer: str | None = None,
) -> list[dict[str, Any]]:
    """One item per month of the range (months with nothing counted too, as zeros): the
    province's figures, or one agency's (``agency``) or one officer's (``officer``: the
    dossiers they received and those they closed), as the monthly tables define them.

    Two ``GROUP BY`` queries on the month columns, so twelve months cost what one does.
    """
    audit = dossier_audit.c
    if agency is not None:
        received_key: sa.ColumnElement[Any] | None = audit.agency_code
        ended_key: sa.ColumnElement[Any] | None = audit.agency_code
        subject: str | None = agency
    elif officer is not None:
        received_key, ended_key, subject = audit.received_by, audit.closed_by, officer
    else:
        received_key = ended_key = subject = None
    counts: dict[str, dict[str, int]] = {month: {} for month in months.months()}
    received = sa.select(
        audit.received_month, sa.func.count(), _count_if(audit.missing_phone)
    ).where(audit.received_month.between(months.first, months.last))
    ended = sa.select(
        audit.ended_month,
        sa.func.count(),
        *(_count_if(audit.verdict == verdict) for verdict in _ENDED_VERDICTS),
    ).where(audit.ended_month.between(months.first, months.last))
    if received_key is not None and ended_key is not None:
        received = received.where(received_key == subject)
        ended = ended.where(ended_key == subject)
    async with engine.connect() as conn:
        for month, number, missing in await _rows(conn, received.group_by(audit.received_month)):
            _add(counts, month, received=number, missing_phone=missing)
        for month, *ended_counts in await _rows(conn, ended.group_by(audit.ended_month)):
            _add(counts, month, **dict(zip(_ENDED_FIELDS, ended_counts, strict=True)))
    items = []
    for month in months.months():
        figures = _figures(counts[month], threshold)
        items.append({"month": month, **{key: figures[key] for key in _SERIES_FIELDS}})
    return items


_SERIES_FIELDS = (
    "received",
    "ended",
    "on_time",
    "late",
    "late_with_apology",
    "late_rate",
    "over_threshold",
    "missing_phone",
    "missing_phone_rate",
)


async def agency_names(engine: AsyncEngine, codes: Sequence[str]) -> dict[str, str]:
    """The latest name the one-stop-shop sent for each of ``codes``; else the name the
    audited dossiers or the ledger hold (codes never named anywhere are left out)."""
    async with engine.connect() as conn:
        names = await _agency_names(conn, sorted(set(codes)))
        for table in (dossier_audit, violations):
            missing = sorted(set(codes) - set(names))
            for chunk in _chunks(missing):
                known = (
                    sa.select(table.c.agency_code, sa.func.max(table.c.agency_name))
                    .where(table.c.agency_code.in_(chunk), table.c.agency_name.is_not(None))
                    .group_by(table.c.agency_code)
                )
                _merge(names, await _rows(conn, known))
    return names


def blank_officer_item(officer_id: str, name: str | None, threshold: float) -> dict[str, Any]:
    """An officer's item as :func:`officer_statistics` gives it, for an officer with
    nothing counted in the range (every figure zero), so that a directory can be listed
    whole."""
    figures = _figures({}, threshold)
    del figures["open_overdue"], figures["consultations_late"]
    del figures["consultations_unanswered"]
    return {"officer": {"id": officer_id, "name": name}, **figures}
