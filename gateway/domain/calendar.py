"""The working-day calendar of a Vietnamese public office.

Deadlines of one-stop-shop dossiers are counted in working days (or in working hours,
8 per day, as real systems store them). A working day is Monday to Friday, minus the
public holidays of Labour Code 2019 Art. 112, plus or minus the government's decisions
of each year (extra days off such as the day next to 2 Sep, and the Saturdays worked in
exchange, *làm bù*).

Three sources are combined, strongest first:

1. the **override table** (:class:`HolidayOverrides`, usually loaded from TOML with
   :func:`load_overrides`): ``working_days``, then ``days_off``, then ``not_off``;
2. the PyPI ``holidays`` package's Vietnam calendar (lunar dates for Tết and the Hùng
   Kings' day, the days off forced by a holiday falling on a weekend, and the swaps it
   knows about), computed lazily per year and cached;
3. the weekly rule: Saturday and Sunday are off.

The override file
-----------------

One table per calendar year; each of its three optional arrays holds entries
``{date = ..., name = "...", source = "..."}`` (``source`` optional)::

    [2026]
    days_off = [
      { date = 2026-01-02, name = "Nghỉ Tết Dương lịch (hoán đổi)", source = "12729/VPCP-KGVX" },
    ]
    working_days = [
      { date = 2026-01-10, name = "Làm bù cho ngày 02/01/2026", source = "12729/VPCP-KGVX" },
    ]
    not_off = []

- ``days_off``: the office is closed that day; ``name`` is what
  :meth:`WorkingCalendar.holiday_name` reports.
- ``working_days``: the office is open even if it is a weekend or the package says
  holiday (a compensatory working Saturday).
- ``not_off``: ignore whatever the package says about this date (a holiday or a swapped
  working Saturday it believes in but the government did not decide); the plain
  Monday-to-Friday rule applies.

``date`` is a TOML date (``2026-01-02``) or a string ``"2026-01-02"`` and must lie in the
table's year; a date may appear only once per year across the three arrays.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from gateway.errors import ConfigError

__all__ = [
    "DEFAULT_OVERRIDES_FILE",
    "DEFAULT_TIMEZONE",
    "HolidayOverrides",
    "OverrideDay",
    "WorkingCalendar",
    "WorkingHours",
    "load_overrides",
]

DEFAULT_TIMEZONE: Final = "Asia/Ho_Chi_Minh"
DEFAULT_OVERRIDES_FILE: Final = (
    Path(__file__).resolve().parent.parent / "data" / "holiday_overrides.toml"
)
OVERRIDES_VARIABLE: Final = "HOLIDAY_OVERRIDES_FILE"

# The package's lunar tables stop here; outside it returns no holidays at all.
_PACKAGE_YEARS: Final = range(1901, 2101)
# A calendar where no working day exists for this long is a broken override table,
# not a real one; stop instead of looping until date.max.
_MAX_SEARCH_DAYS: Final = 366
_OVERRIDE_KINDS: Final = ("days_off", "working_days", "not_off")
_ENTRY_KEYS: Final = frozenset({"date", "name", "source"})
_ISO_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_YEAR_KEY: Final = re.compile(r"\d{4}", re.ASCII)


@dataclass(frozen=True, slots=True)
class OverrideDay:
    """One decided day: the date, a human name, and the decision it comes from."""

    day: date
    name: str
    source: str | None = None


@dataclass(frozen=True, slots=True)
class HolidayOverrides:
    """The government's yearly decisions that the ``holidays`` package may not know.

    Raises ``ValueError`` if a date appears more than once across the three lists,
    because the calendar could not tell which entry wins.
    """

    days_off: tuple[OverrideDay, ...] = ()
    working_days: tuple[OverrideDay, ...] = ()
    not_off: tuple[OverrideDay, ...] = ()

    def __post_init__(self) -> None:
        seen: dict[date, str] = {}
        for kind in _OVERRIDE_KINDS:
            for entry in getattr(self, kind):
                if entry.day in seen:
                    raise ValueError(
                        f"{entry.day.isoformat()} is listed in both {seen[entry.day]} and {kind}"
                    )
                seen[entry.day] = kind


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """Office hours of a working day, as naive local wall-clock times.

    The defaults (07:00-11:30 and 13:30-17:00) are what the real one-stop systems use
    and add up to the 8 working hours per day in which they store time limits.
    """

    morning_start: time = time(7, 0)
    morning_end: time = time(11, 30)
    afternoon_start: time = time(13, 30)
    afternoon_end: time = time(17, 0)

    def __post_init__(self) -> None:
        moments = (self.morning_start, self.morning_end, self.afternoon_start, self.afternoon_end)
        if any(t.tzinfo is not None for t in moments):
            raise ValueError("working hours are local wall-clock times; drop the tzinfo")
        if not (
            self.morning_start < self.morning_end
            and self.morning_end <= self.afternoon_start
            and self.afternoon_start < self.afternoon_end
        ):
            raise ValueError(
                "working hours must satisfy morning_start < morning_end <= "
                "afternoon_start < afternoon_end"
            )

    @property
    def periods(self) -> tuple[tuple[time, time], tuple[time, time]]:
        """The two opening periods of the day, each as (opens, closes)."""
        return (self.morning_start, self.morning_end), (self.afternoon_start, self.afternoon_end)

    @property
    def hours_per_day(self) -> float:
        """Total working hours in one working day (8.0 by default)."""
        reference = date(2000, 1, 1)
        total = sum(
            (
                datetime.combine(reference, closes) - datetime.combine(reference, opens)
                for opens, closes in self.periods
            ),
            timedelta(),
        )
        return total / timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class _PackageYear:
    named: Mapping[date, str]
    # Every compensatory working day the package reported while building this year;
    # it may list dates of neighbouring years (a swap decided across New Year).
    workdays: frozenset[date]


class WorkingCalendar:
    """Answers "is this a working day?" and computes deadlines in working days and hours.

    Every datetime argument must be timezone-aware (any offset: it is converted to the
    calendar's zone first); naive ones raise ``ValueError``. Every datetime returned is
    in the calendar's zone. Arguments typed ``date`` must be plain dates, not datetimes.
    """

    def __init__(
        self,
        overrides: HolidayOverrides | None = None,
        hours: WorkingHours = WorkingHours(),
        tz: str = DEFAULT_TIMEZONE,
    ) -> None:
        """Build a calendar; ``overrides=None`` means the package's holidays alone."""
        try:
            self._tz = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {tz!r}") from exc
        self._hours = hours
        if overrides is None:
            overrides = HolidayOverrides()
        self._days_off = {entry.day: entry.name for entry in overrides.days_off}
        self._working_days = frozenset(entry.day for entry in overrides.working_days)
        self._not_off = frozenset(entry.day for entry in overrides.not_off)
        self._package: dict[int, _PackageYear] = {}

    @property
    def tz(self) -> ZoneInfo:
        """The calendar's time zone."""
        return self._tz

    @property
    def hours(self) -> WorkingHours:
        """The office hours used for hour arithmetic and for the end of a day."""
        return self._hours

    # -- days ---------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """Whether the office is open on ``day``."""
        _check_date(day, "day")
        if day in self._working_days:
            return True
        if self.holiday_name(day) is not None:
            return False
        if day not in self._not_off and self._package_workday(day):
            return True
        return day.weekday() < 5

    def holiday_name(self, day: date) -> str | None:
        """The name of the holiday or decided day off on ``day``, else ``None``.

        Plain weekends have no name; a holiday that falls on a weekend keeps its name.
        A date the overrides declare a working day or ``not_off`` has none either.
        """
        _check_date(day, "day")
        if day in self._working_days or day in self._not_off:
            return None
        if day in self._days_off:
            return self._days_off[day]
        return self._package_year(day.year).named.get(day)

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        _check_date(day, "day")
        candidate = day
        for _ in range(_MAX_SEARCH_DAYS):
            candidate += timedelta(days=1)
            if self.is_working_day(candidate):
                return candidate
        raise ValueError(
            f"no working day within {_MAX_SEARCH_DAYS} days after {day.isoformat()}; "
            "check the holiday overrides"
        )

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in ``(start, end]``; negative (minus those in ``(end, start]``)
        when ``end`` is before ``start``."""
        _check_date(start, "start")
        _check_date(end, "end")
        if end < start:
            return -self.working_days_between(end, start)
        return sum(1 for day in _days_after(start, end) if self.is_working_day(day))

    # -- moments ------------------------------------------------------------------------

    def next_working_moment(self, moment: datetime) -> datetime:
        """``moment`` itself if the office is open then, else the next opening time.

        Opening periods are half-open: at exactly 11:30 or 17:00 the office is closed.
        """
        return self._next_working_moment(self._to_local(moment, "moment"))

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """The appointment "``n`` working days after" ``start``: closing time of a day.

        The convention mirrors how a receipt's appointment date is set. The *receipt
        day* is the day of :meth:`next_working_moment` of ``start``: ``start``'s own
        local day if it is a working day and ``start`` is before the afternoon closing
        time (17:00), otherwise the next working day (a dossier received after closing
        or on a day off counts as received at the next opening). The result is the
        closing time of the ``n``-th working day after the receipt day, so:

        - Monday 08:00 + 3 → Thursday 17:00; Friday 16:00 + 1 → Monday 17:00;
        - Monday 17:30 + 3 → Friday 17:00 (received Tuesday morning);
        - ``n = 0`` → closing time of the receipt day itself.
        """
        if n < 0:
            raise ValueError(f"n must be 0 or more working days, got {n}")
        day = self._next_working_moment(self._to_local(start, "start")).date()
        for _ in range(n):
            day = self.next_working_day(day)
        return self._at(day, self._hours.afternoon_end)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment when ``hours`` of office time have passed since ``start``.

        Counting starts at :meth:`next_working_moment` of ``start`` and walks the opening
        periods, skipping lunch, nights and days off. A total that ends exactly at a
        closing time returns that closing time (Monday 07:00 + 8 → Monday 17:00), not
        the next opening. ``hours = 0`` gives the next working moment.
        """
        if not math.isfinite(hours) or hours < 0:
            raise ValueError(f"hours must be a finite number >= 0, got {hours!r}")
        remaining = timedelta(hours=hours)
        current = self._next_working_moment(self._to_local(start, "start"))
        while True:
            day = current.date()
            for opens, closes in self._periods(day):
                if closes <= current:
                    continue
                begin = max(opens, current)
                if remaining <= closes - begin:
                    return begin + remaining
                remaining -= closes - begin
            current = self._at(self.next_working_day(day), self._hours.morning_start)

    def is_late(self, due: datetime, ended: datetime) -> bool:
        """Whether a dossier that ``ended`` then missed its ``due`` appointment.

        The national rating compares local *dates*, not times: ending at 20:00 on the
        due date is on time, ending at 07:00 the next day is late.
        """
        due_day = self._to_local(due, "due").date()
        return self._to_local(ended, "ended").date() > due_day

    # -- internals ----------------------------------------------------------------------

    def _next_working_moment(self, local: datetime) -> datetime:
        day = local.date()
        if self.is_working_day(day):
            for opens, closes in self._periods(day):
                if local < opens:
                    return opens
                if local < closes:
                    return local
        return self._at(self.next_working_day(day), self._hours.morning_start)

    def _to_local(self, moment: datetime, what: str) -> datetime:
        if not isinstance(moment, datetime):
            raise TypeError(f"{what} must be a datetime, got {type(moment).__name__}")
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(
                f"{what} must be timezone-aware, got naive {moment.isoformat()}; "
                f"attach its zone, e.g. ZoneInfo({DEFAULT_TIMEZONE!r}) or an explicit offset"
            )
        return moment.astimezone(self._tz)

    def _at(self, day: date, wall_clock: time) -> datetime:
        return datetime.combine(day, wall_clock, tzinfo=self._tz)

    def _periods(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        for opens, closes in self._hours.periods:
            yield self._at(day, opens), self._at(day, closes)

    def _package_workday(self, day: date) -> bool:
        return any(day in self._package_year(year).workdays for year in _around(day.year))

    def _package_year(self, year: int) -> _PackageYear:
        cached = self._package.get(year)
        if cached is None:
            cached = _load_package_year(year)
            self._package[year] = cached
        return cached


def load_overrides(path: Path) -> HolidayOverrides:
    """Read and validate an override table (schema in the module docstring).

    Raises :class:`~gateway.errors.ConfigError` naming ``HOLIDAY_OVERRIDES_FILE``, with
    a reason that names the file, the year, the list, the entry (counted from 1) and what
    is wrong with it.
    """
    try:
        with path.open("rb") as stream:
            document = tomllib.load(stream)
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc}")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        _fail(f"{path} is not valid TOML: {exc}")

    lists: dict[str, list[OverrideDay]] = {kind: [] for kind in _OVERRIDE_KINDS}
    for year_key, table in document.items():
        if not _YEAR_KEY.fullmatch(year_key):
            _fail(f"{path}: top-level key {year_key!r} is not a year; use tables like [2025]")
        if not isinstance(table, dict):
            _fail(f"{path}: [{year_key}] must be a table with {', '.join(_OVERRIDE_KINDS)}")
        seen: dict[date, str] = {}
        for kind, entries in table.items():
            where = f"{path}: [{year_key}].{kind}"
            if kind not in _OVERRIDE_KINDS:
                _fail(
                    f"{path}: [{year_key}] has unknown key {kind!r}; "
                    f"expected {', '.join(_OVERRIDE_KINDS)}"
                )
            if not isinstance(entries, list):
                _fail(f"{where} must be an array of {{date = ..., name = ...}} tables")
            for index, raw in enumerate(entries, start=1):
                entry = _parse_entry(raw, int(year_key), f"{where} entry {index}")
                if entry.day in seen:
                    _fail(
                        f"{where} entry {index}: {entry.day.isoformat()} is already listed "
                        f"in [{year_key}].{seen[entry.day]}"
                    )
                seen[entry.day] = kind
                lists[kind].append(entry)
    return HolidayOverrides(
        days_off=tuple(lists["days_off"]),
        working_days=tuple(lists["working_days"]),
        not_off=tuple(lists["not_off"]),
    )


def _parse_entry(raw: Any, year: int, where: str) -> OverrideDay:
    if not isinstance(raw, dict):
        _fail(f'{where} must be a table like {{date = {year}-01-02, name = "..."}}')
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    if unknown:
        _fail(f"{where} has unknown key(s) {', '.join(unknown)}; allowed: date, name, source")
    if "date" not in raw:
        _fail(f"{where} has no date")
    day = _parse_day(raw["date"], where)
    if day.year != year:
        _fail(f"{where}: {day.isoformat()} is not in {year}; put it under [{day.year}]")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        _fail(f"{where} ({day.isoformat()}) needs a non-empty name string")
    source = raw.get("source")
    if source is not None and not isinstance(source, str):
        _fail(f"{where} ({day.isoformat()}): source must be a string")
    return OverrideDay(day=day, name=name.strip(), source=source)


def _parse_day(value: Any, where: str) -> date:
    # TOML has its own date type; a datetime is a date subclass, so exclude it first.
    if isinstance(value, datetime):
        _fail(f"{where}: date must be a calendar date, not a date-time ({value.isoformat()})")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        if not _ISO_DATE.fullmatch(value):
            _fail(f"{where}: date {value!r} is not in YYYY-MM-DD form")
        try:
            return date.fromisoformat(value)
        except ValueError:
            _fail(f"{where}: date {value!r} is not a real date")
    _fail(f'{where}: date must be a TOML date or a "YYYY-MM-DD" string, got {value!r}')


def _fail(reason: str) -> NoReturn:
    raise ConfigError(variable=OVERRIDES_VARIABLE, reason=reason)


def _load_package_year(year: int) -> _PackageYear:
    if year not in _PACKAGE_YEARS:
        return _PackageYear(named={}, workdays=frozenset())
    table = holidays.country_holidays("VN", years=year, language="vi")
    # Copy out: the package object grows itself when asked about other years.
    named = {day: str(name) for day, name in table.items() if day.year == year}
    workdays = frozenset(getattr(table, "weekend_workdays", ()))
    return _PackageYear(named=named, workdays=workdays)


def _around(year: int) -> tuple[int, int, int]:
    return year - 1, year, year + 1


def _days_after(start: date, end: date) -> Iterator[date]:
    day = start
    while day < end:
        day += timedelta(days=1)
        yield day


def _check_date(value: date, what: str) -> None:
    # A datetime is a date subclass but never equal to one, so holiday look-ups would
    # silently miss; make the caller say which local day it means.
    if isinstance(value, datetime):
        raise TypeError(f"{what} must be a date, not a datetime; pass .astimezone(tz).date()")
    if not isinstance(value, date):
        raise TypeError(f"{what} must be a date, got {type(value).__name__}")
