"""The working-day calendar: holidays, overrides, deadlines in days and hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.calendar import (
    DEFAULT_OVERRIDES_FILE,
    HolidayOverrides,
    OverrideDay,
    WorkingCalendar,
    WorkingHours,
    load_overrides,
)
from gateway.errors import ConfigError

VN = ZoneInfo("Asia/Ho_Chi_Minh")
SHIPPED = load_overrides(DEFAULT_OVERRIDES_FILE)
# Shared so the package's per-year tables are computed once for the whole module.
PACKAGE_ONLY = WorkingCalendar()
CALENDAR = WorkingCalendar(SHIPPED)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=VN)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overrides.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- holidays --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "keyword"),
    [
        (date(2025, 1, 1), "Tết Dương lịch"),
        (date(2025, 1, 28), "Tết"),
        (date(2025, 1, 29), "Tết Nguyên Đán"),
        (date(2025, 1, 30), "Tết"),
        (date(2025, 1, 31), "Tết"),
        (date(2025, 4, 7), "Hùng Vương"),  # 10/3 lunar
        (date(2025, 4, 30), "Chiến thắng"),
        (date(2025, 5, 1), "Lao động"),
        (date(2025, 9, 1), "Quốc khánh"),  # the adjacent day
        (date(2025, 9, 2), "Quốc khánh"),
        (date(2026, 1, 1), "Tết Dương lịch"),
        (date(2026, 2, 16), "Tết"),
        (date(2026, 2, 17), "Tết Nguyên Đán"),
        (date(2026, 2, 18), "Tết"),
        (date(2026, 2, 19), "Tết"),
        (date(2026, 2, 20), "Tết"),
        (date(2026, 4, 27), "Hùng Vương"),  # 10/3 lunar is Sunday 26/4: Monday off
        (date(2026, 4, 30), "Chiến thắng"),
        (date(2026, 5, 1), "Lao động"),
        (date(2026, 9, 1), "Quốc khánh"),  # the adjacent day
        (date(2026, 9, 2), "Quốc khánh"),
    ],
)
def test_public_holidays_are_days_off(day: date, keyword: str) -> None:
    assert not PACKAGE_ONLY.is_working_day(day)
    name = PACKAGE_ONLY.holiday_name(day)
    assert name is not None
    assert keyword in name


@pytest.mark.parametrize(
    "day",
    [
        date(2025, 1, 2),
        date(2025, 2, 3),  # first day back after Tết Ất Tỵ
        date(2025, 4, 8),
        date(2025, 9, 3),
        date(2026, 2, 13),  # last day before Tết Bính Ngọ
        date(2026, 2, 23),  # first day back
        date(2026, 9, 3),
    ],
)
def test_ordinary_weekdays_next_to_holidays_are_working_days(day: date) -> None:
    assert CALENDAR.is_working_day(day)
    assert CALENDAR.holiday_name(day) is None


def test_weekends_are_off_without_a_name() -> None:
    saturday, sunday = date(2025, 3, 8), date(2025, 3, 9)
    assert not CALENDAR.is_working_day(saturday)
    assert not CALENDAR.is_working_day(sunday)
    assert CALENDAR.holiday_name(saturday) is None
    assert CALENDAR.is_working_day(date(2025, 3, 10))


def test_tet_spanning_a_weekend_moves_the_weekend_days_off_to_weekdays() -> None:
    # Tết Giáp Thìn 2024: mùng 1 and mùng 2 fell on Saturday/Sunday 10-11 Feb, so
    # Thursday 8 and Wednesday 14 Feb were off too: Thursday to Wednesday, 7 days.
    off = [date(2024, 2, 8) + timedelta(days=i) for i in range(7)]
    assert [CALENDAR.is_working_day(day) for day in off] == [False] * 7
    assert CALENDAR.holiday_name(date(2024, 2, 10)) is not None  # named although Saturday
    assert CALENDAR.is_working_day(date(2024, 2, 7))
    assert CALENDAR.is_working_day(date(2024, 2, 15))


def test_tet_2025_runs_from_saturday_25_january_to_sunday_2_february() -> None:
    days = [date(2025, 1, 25) + timedelta(days=i) for i in range(9)]
    assert not any(CALENDAR.is_working_day(day) for day in days)
    assert CALENDAR.is_working_day(date(2025, 1, 24))
    assert CALENDAR.is_working_day(date(2025, 2, 3))
    assert CALENDAR.holiday_name(date(2025, 2, 1)) is not None  # mùng 4 on a Saturday


def test_april_30_and_may_1_with_a_weekend() -> None:
    # 2023: Hùng Kings' day on Saturday 29/4, 30/4 on Sunday: Tuesday 2 and
    # Wednesday 3 May are off in exchange.
    for day in (date(2023, 5, 1), date(2023, 5, 2), date(2023, 5, 3)):
        assert not CALENDAR.is_working_day(day)
    assert CALENDAR.is_working_day(date(2023, 5, 4))
    # 2027: 1/5 is a Saturday, so Monday 3/5 is off.
    assert not CALENDAR.is_working_day(date(2027, 5, 3))
    assert CALENDAR.is_working_day(date(2027, 5, 4))


def test_national_day_and_its_adjacent_day() -> None:
    # 2024: 2/9 Monday + Tuesday 3/9; 2025: Monday 1/9 + 2/9 Tuesday.
    assert not CALENDAR.is_working_day(date(2024, 9, 2))
    assert not CALENDAR.is_working_day(date(2024, 9, 3))
    assert CALENDAR.is_working_day(date(2024, 9, 4))
    assert CALENDAR.is_working_day(date(2025, 8, 29))
    assert not CALENDAR.is_working_day(date(2025, 9, 1))
    assert CALENDAR.working_days_between(date(2025, 8, 29), date(2025, 9, 3)) == 1


def test_compensatory_working_saturdays_are_working_days() -> None:
    # 2025: Friday 2/5 off, worked on Saturday 26/4 (package and shipped table agree).
    assert PACKAGE_ONLY.is_working_day(date(2025, 4, 26))
    assert not PACKAGE_ONLY.is_working_day(date(2025, 5, 2))
    assert CALENDAR.holiday_name(date(2025, 4, 26)) is None
    # 2026: Friday 2/1 off, worked on Saturday 10/1: only the shipped table knows it.
    assert PACKAGE_ONLY.is_working_day(date(2026, 1, 2))
    assert not PACKAGE_ONLY.is_working_day(date(2026, 1, 10))
    assert not CALENDAR.is_working_day(date(2026, 1, 2))
    assert CALENDAR.is_working_day(date(2026, 1, 10))


def test_swaps_across_new_year_are_seen_from_either_year() -> None:
    # Decided for New Year 2015 and 2019, the worked Saturday lies in the other year.
    assert PACKAGE_ONLY.is_working_day(date(2014, 12, 27))
    assert not PACKAGE_ONLY.is_working_day(date(2015, 1, 2))
    assert not PACKAGE_ONLY.is_working_day(date(2018, 12, 31))
    assert PACKAGE_ONLY.is_working_day(date(2019, 1, 5))


def test_next_working_day_is_strictly_after() -> None:
    assert CALENDAR.next_working_day(date(2025, 3, 10)) == date(2025, 3, 11)
    assert CALENDAR.next_working_day(date(2025, 3, 7)) == date(2025, 3, 10)
    assert CALENDAR.next_working_day(date(2025, 1, 24)) == date(2025, 2, 3)
    assert CALENDAR.next_working_day(date(2025, 12, 31)) == date(2026, 1, 5)
    assert PACKAGE_ONLY.next_working_day(date(2025, 12, 31)) == date(2026, 1, 2)


def test_working_days_between_counts_the_half_open_interval() -> None:
    monday, friday = date(2025, 3, 10), date(2025, 3, 14)
    assert CALENDAR.working_days_between(monday, friday) == 4
    assert CALENDAR.working_days_between(friday, monday) == -4
    assert CALENDAR.working_days_between(monday, monday) == 0
    assert CALENDAR.working_days_between(date(2025, 3, 7), date(2025, 3, 9)) == 0
    # Across the year boundary: 31/12/2025 is counted, 1-2/1/2026 are off, 5/1 is not.
    assert CALENDAR.working_days_between(date(2025, 12, 30), date(2026, 1, 5)) == 2
    assert PACKAGE_ONLY.working_days_between(date(2025, 12, 30), date(2026, 1, 5)) == 3


# -- deadlines in working days ---------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (at(2025, 3, 10, 8), 3, at(2025, 3, 13, 17)),  # Monday 08:00 + 3 → Thursday
        (at(2025, 3, 14, 16), 1, at(2025, 3, 17, 17)),  # Friday 16:00 + 1 → Monday
        (at(2025, 3, 10, 17, 30), 3, at(2025, 3, 14, 17)),  # after closing: from Tuesday
        (at(2025, 3, 10, 17), 1, at(2025, 3, 12, 17)),  # closing time is already closed
        (at(2025, 3, 10, 16, 59), 1, at(2025, 3, 11, 17)),
        (at(2025, 3, 10, 6), 1, at(2025, 3, 11, 17)),  # before opening counts that day
        (at(2025, 3, 10, 12), 1, at(2025, 3, 11, 17)),  # lunch counts that day
        (at(2025, 3, 8, 10), 1, at(2025, 3, 11, 17)),  # Saturday: received Monday
        (at(2025, 1, 24, 9), 1, at(2025, 2, 3, 17)),  # across Tết Ất Tỵ
        (at(2026, 2, 13, 9), 2, at(2026, 2, 24, 17)),  # across Tết Bính Ngọ
        (at(2025, 12, 31, 8), 1, at(2026, 1, 5, 17)),  # across New Year 2026
        (at(2025, 4, 25, 9), 1, at(2025, 4, 26, 17)),  # onto a working Saturday
        (at(2025, 3, 10, 9), 0, at(2025, 3, 10, 17)),
        (at(2025, 3, 10, 18), 0, at(2025, 3, 11, 17)),
        (at(2025, 3, 9, 9), 0, at(2025, 3, 10, 17)),  # Sunday
        (at(2025, 4, 30, 9), 0, at(2025, 5, 5, 17)),  # a holiday
    ],
)
def test_add_working_days(start: datetime, n: int, expected: datetime) -> None:
    result = CALENDAR.add_working_days(start, n)
    assert result == expected
    assert result.tzinfo == VN


def test_add_working_days_converts_other_offsets_first() -> None:
    # 01:00 UTC is 08:00 in Vietnam; 23:30 UTC on Sunday is 06:30 on Monday.
    assert CALENDAR.add_working_days(datetime(2025, 3, 10, 1, tzinfo=UTC), 3) == at(2025, 3, 13, 17)
    sunday_utc = datetime(2025, 3, 9, 23, 30, tzinfo=UTC)
    assert CALENDAR.add_working_days(sunday_utc, 1) == at(2025, 3, 11, 17)
    paris = datetime(2025, 3, 10, 11, 30, tzinfo=timezone(timedelta(hours=1)))  # 17:30 VN
    assert CALENDAR.add_working_days(paris, 1) == at(2025, 3, 12, 17)


def test_add_working_days_rejects_negative_n() -> None:
    with pytest.raises(ValueError, match="n must be 0 or more"):
        CALENDAR.add_working_days(at(2025, 3, 10, 8), -1)


# -- working hours ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (at(2025, 3, 10, 7), 8, at(2025, 3, 10, 17)),  # a whole day ends at closing
        (at(2025, 3, 10, 7), 4.5, at(2025, 3, 10, 11, 30)),
        (at(2025, 3, 10, 10), 2, at(2025, 3, 10, 14)),  # across lunch
        (at(2025, 3, 10, 12), 1, at(2025, 3, 10, 14, 30)),  # starts during lunch
        (at(2025, 3, 10, 16), 2, at(2025, 3, 11, 8)),  # across the night
        (at(2025, 3, 14, 16), 2, at(2025, 3, 17, 8)),  # across the weekend
        (at(2025, 3, 10, 7), 16, at(2025, 3, 11, 17)),
        (at(2025, 3, 10, 7), 24.25, at(2025, 3, 13, 7, 15)),
        (at(2025, 3, 8, 10), 1, at(2025, 3, 10, 8)),  # Saturday
        (at(2025, 3, 10, 18), 0, at(2025, 3, 11, 7)),  # zero: next working moment
        (at(2025, 1, 24, 16), 2, at(2025, 2, 3, 8)),  # across Tết
    ],
)
def test_add_working_hours(start: datetime, hours: float, expected: datetime) -> None:
    assert CALENDAR.add_working_hours(start, hours) == expected


def test_add_working_hours_with_custom_hours() -> None:
    calendar = WorkingCalendar(SHIPPED, hours=WorkingHours(time(8), time(12), time(13), time(17)))
    assert calendar.hours.hours_per_day == 8.0
    assert calendar.add_working_hours(at(2025, 3, 10, 11), 2) == at(2025, 3, 10, 14)
    assert calendar.add_working_days(at(2025, 3, 10, 7), 0) == at(2025, 3, 10, 17)


@pytest.mark.parametrize("hours", [-1.0, float("nan"), float("inf")])
def test_add_working_hours_rejects_bad_amounts(hours: float) -> None:
    with pytest.raises(ValueError, match="finite number >= 0"):
        CALENDAR.add_working_hours(at(2025, 3, 10, 8), hours)


def test_default_working_hours_are_eight_per_day() -> None:
    assert WorkingHours().hours_per_day == 8.0
    assert WorkingHours().periods == ((time(7), time(11, 30)), (time(13, 30), time(17)))


@pytest.mark.parametrize(
    "hours",
    [
        (time(11, 30), time(7), time(13, 30), time(17)),
        (time(7), time(14), time(13, 30), time(17)),
        (time(7), time(11, 30), time(17), time(13, 30)),
        (time(7, tzinfo=UTC), time(11, 30), time(13, 30), time(17)),
    ],
)
def test_working_hours_must_be_ordered_wall_clock_times(hours: tuple[time, ...]) -> None:
    with pytest.raises(ValueError, match="working hours"):
        WorkingHours(*hours)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (at(2025, 3, 10, 9, 15), at(2025, 3, 10, 9, 15)),
        (at(2025, 3, 10, 6), at(2025, 3, 10, 7)),
        (at(2025, 3, 10, 11, 30), at(2025, 3, 10, 13, 30)),
        (at(2025, 3, 10, 17), at(2025, 3, 11, 7)),
        (at(2025, 3, 14, 20), at(2025, 3, 17, 7)),
        (at(2025, 4, 29, 20), at(2025, 5, 5, 7)),
    ],
)
def test_next_working_moment(moment: datetime, expected: datetime) -> None:
    assert CALENDAR.next_working_moment(moment) == expected


# -- lateness --------------------------------------------------------------------------


def test_is_late_compares_local_dates_not_times() -> None:
    due = at(2025, 3, 13, 17)
    assert not CALENDAR.is_late(due, at(2025, 3, 13, 23, 59))
    assert not CALENDAR.is_late(due, at(2025, 3, 12, 9))
    assert CALENDAR.is_late(due, at(2025, 3, 14, 0, 1))
    # 16:30 UTC is 23:30 the same day in Vietnam; 17:30 UTC is already the next day.
    assert not CALENDAR.is_late(due, datetime(2025, 3, 13, 16, 30, tzinfo=UTC))
    assert CALENDAR.is_late(due, datetime(2025, 3, 13, 17, 30, tzinfo=UTC))


# -- input checks ----------------------------------------------------------------------


def test_naive_datetimes_are_refused_with_a_clear_message() -> None:
    naive = datetime(2025, 3, 10, 8)
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        CALENDAR.add_working_days(naive, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        CALENDAR.add_working_hours(naive, 1)
    with pytest.raises(ValueError, match="moment must be timezone-aware"):
        CALENDAR.next_working_moment(naive)
    with pytest.raises(ValueError, match="ended must be timezone-aware"):
        CALENDAR.is_late(at(2025, 3, 10, 17), naive)


def test_datetimes_are_refused_where_a_date_is_expected() -> None:
    with pytest.raises(TypeError, match="must be a date, not a datetime"):
        CALENDAR.is_working_day(at(2025, 1, 1, 8))


def test_unknown_time_zone() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        WorkingCalendar(tz="Asia/Saigon_Nowhere")


def test_another_zone_computes_in_its_own_wall_clock() -> None:
    calendar = WorkingCalendar(SHIPPED, tz="UTC")
    result = calendar.add_working_days(datetime(2025, 3, 10, 1, tzinfo=VN), 0)  # Sunday UTC
    assert result == datetime(2025, 3, 10, 17, tzinfo=UTC)


# -- override table --------------------------------------------------------------------


def test_overrides_add_days_off_working_days_and_cancel_package_holidays(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [2025]
        days_off = [
          { date = 2025-03-10, name = "Nghỉ theo quyết định của tỉnh", source = "QĐ 1/UBND" },
        ]
        working_days = [{ date = "2025-03-15", name = "Làm bù" }]
        not_off = [{ date = 2025-09-01, name = "Không nghỉ" }]

        [2026]
        # The package's 2026 swap (31/8 off, 22/8 worked) undone on both sides.
        not_off = [
          { date = 2026-08-31, name = "Không nghỉ" },
          { date = 2026-08-22, name = "Không làm bù" },
        ]
        """,
    )
    overrides = load_overrides(path)
    assert overrides.days_off == (
        OverrideDay(date(2025, 3, 10), "Nghỉ theo quyết định của tỉnh", "QĐ 1/UBND"),
    )
    calendar = WorkingCalendar(overrides)
    assert not calendar.is_working_day(date(2025, 3, 10))
    assert calendar.holiday_name(date(2025, 3, 10)) == "Nghỉ theo quyết định của tỉnh"
    assert calendar.is_working_day(date(2025, 3, 15))  # a Saturday
    assert calendar.is_working_day(date(2025, 9, 1))
    assert calendar.holiday_name(date(2025, 9, 1)) is None
    assert not calendar.is_working_day(date(2025, 9, 2))  # untouched
    assert calendar.is_working_day(date(2026, 8, 31))
    assert not calendar.is_working_day(date(2026, 8, 22))
    assert PACKAGE_ONLY.is_working_day(date(2026, 8, 22))
    assert calendar.add_working_days(at(2025, 3, 7, 9), 1) == at(2025, 3, 11, 17)


def test_working_day_override_beats_a_package_holiday(tmp_path: Path) -> None:
    path = write(tmp_path, '[2027]\nworking_days = [{ date = 2027-11-24, name = "Làm việc" }]\n')
    calendar = WorkingCalendar(load_overrides(path))
    assert calendar.is_working_day(date(2027, 11, 24))
    assert calendar.holiday_name(date(2027, 11, 24)) is None


def test_empty_file_means_no_overrides(tmp_path: Path) -> None:
    assert load_overrides(write(tmp_path, "# nothing decided yet\n")) == HolidayOverrides()


def test_shipped_file_loads_and_names_its_sources() -> None:
    entries = SHIPPED.days_off + SHIPPED.working_days + SHIPPED.not_off
    assert entries
    assert all(entry.source for entry in entries)
    assert {entry.day for entry in SHIPPED.working_days} >= {date(2026, 1, 10)}


def test_overrides_may_not_list_a_date_twice_when_built_directly() -> None:
    day = OverrideDay(date(2025, 3, 10), "x")
    with pytest.raises(ValueError, match="both days_off and working_days"):
        HolidayOverrides(days_off=(day,), working_days=(day,))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_overrides(tmp_path / "absent.toml")
    assert caught.value.variable == "HOLIDAY_OVERRIDES_FILE"
    assert "cannot read" in caught.value.reason
    assert "absent.toml" in caught.value.reason


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "overrides.toml"
    path.write_bytes(b'[2025]\nnot_off = [{ date = 2025-09-01, name = "\xff" }]\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_overrides(path)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[2025\n", ["not valid TOML"]),
        ("title = 'x'\n", ["top-level key 'title' is not a year"]),
        ("[twenty]\n", ["'twenty' is not a year"]),
        ("2025 = 3\n", ["[2025] must be a table"]),
        ("[2025]\nday_off = []\n", ["[2025] has unknown key 'day_off'"]),
        ("[2025]\ndays_off = '2025-01-01'\n", ["[2025].days_off must be an array"]),
        ("[2025]\ndays_off = ['2025-01-01']\n", ["[2025].days_off entry 1 must be a table"]),
        (
            "[2025]\ndays_off = [{ date = 2025-01-01, name = 'a', note = 'b' }]\n",
            ["[2025].days_off entry 1 has unknown key(s) note"],
        ),
        ("[2025]\nnot_off = [{ name = 'a' }]\n", ["[2025].not_off entry 1 has no date"]),
        (
            "[2025]\ndays_off = [{ date = 20250101, name = 'a' }]\n",
            ["entry 1: date must be a TOML date", "20250101"],
        ),
        (
            "[2025]\ndays_off = [{ date = 2025-01-01T08:00:00, name = 'a' }]\n",
            ["not a date-time"],
        ),
        (
            "[2025]\ndays_off = [{ date = '01/01/2025', name = 'a' }]\n",
            ["'01/01/2025' is not in YYYY-MM-DD form"],
        ),
        (
            "[2025]\ndays_off = [{ date = '2025-02-30', name = 'a' }]\n",
            ["'2025-02-30' is not a real date"],
        ),
        (
            "[2025]\nworking_days = [{ date = 2025-04-26, name = 'a' },"
            " { date = 2026-01-10, name = 'b' }]\n",
            ["[2025].working_days entry 2", "2026-01-10 is not in 2025; put it under [2026]"],
        ),
        (
            "[2025]\ndays_off = [{ date = 2025-01-01 }]\n",
            ["entry 1 (2025-01-01) needs a non-empty name"],
        ),
        ("[2025]\ndays_off = [{ date = 2025-01-01, name = ' ' }]\n", ["needs a non-empty name"]),
        ("[2025]\ndays_off = [{ date = 2025-01-01, name = 1 }]\n", ["needs a non-empty name"]),
        (
            "[2025]\ndays_off = [{ date = 2025-01-01, name = 'a', source = 7 }]\n",
            ["source must be a string"],
        ),
        (
            "[2025]\ndays_off = [{ date = 2025-01-01, name = 'a' },"
            " { date = 2025-01-01, name = 'b' }]\n",
            ["[2025].days_off entry 2: 2025-01-01 is already listed in [2025].days_off"],
        ),
        (
            "[2025]\ndays_off = [{ date = 2025-01-01, name = 'a' }]\n"
            "not_off = [{ date = 2025-01-01, name = 'b' }]\n",
            ["[2025].not_off entry 1: 2025-01-01 is already listed in [2025].days_off"],
        ),
    ],
)
def test_malformed_files_name_file_year_entry_and_problem(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_overrides(path)
    error = caught.value
    assert error.variable == "HOLIDAY_OVERRIDES_FILE"
    assert str(path) in error.reason
    for fragment in fragments:
        assert fragment in error.reason


# -- properties ------------------------------------------------------------------------

working_starts = st.builds(
    datetime.combine,
    st.dates(min_value=date(2023, 1, 1), max_value=date(2027, 12, 31)),
    st.times(max_value=time(16, 59, 59, 999999)),
    st.just(VN),
).filter(lambda start: CALENDAR.is_working_day(start.date()))

any_starts = st.datetimes(
    min_value=datetime(2023, 1, 1),
    max_value=datetime(2027, 12, 31),
    timezones=st.sampled_from([VN, UTC, timezone(timedelta(hours=-5))]),
)


@settings(deadline=None, database=None)
@given(start=working_starts, n=st.integers(min_value=1, max_value=60))
def test_add_working_days_counts_exactly_n_working_days(start: datetime, n: int) -> None:
    result = CALENDAR.add_working_days(start, n)
    assert CALENDAR.is_working_day(result.date())
    assert result.timetz() == time(17, tzinfo=VN)
    assert CALENDAR.working_days_between(start.date(), result.date()) == n


@settings(deadline=None, database=None)
@given(start=any_starts, n=st.integers(min_value=0, max_value=60))
def test_add_working_days_lands_on_working_days_and_grows_with_n(start: datetime, n: int) -> None:
    result = CALENDAR.add_working_days(start, n)
    following = CALENDAR.add_working_days(start, n + 1)
    assert CALENDAR.is_working_day(result.date())
    assert CALENDAR.is_working_day(following.date())
    assert start < result < following
    assert CALENDAR.working_days_between(result.date(), following.date()) == 1


@settings(deadline=None, database=None)
@given(start=working_starts, days=st.integers(min_value=1, max_value=30))
def test_whole_days_of_working_hours_match_working_days(start: datetime, days: int) -> None:
    opening = datetime.combine(start.date(), time(7), tzinfo=VN)
    assert CALENDAR.add_working_hours(opening, 8 * days) == CALENDAR.add_working_days(
        opening, days - 1
    )


@settings(deadline=None, database=None)
@given(start=any_starts, hours=st.floats(min_value=0, max_value=200))
def test_add_working_hours_ends_inside_office_hours(start: datetime, hours: float) -> None:
    result = CALENDAR.add_working_hours(start, hours)
    assert CALENDAR.is_working_day(result.date())
    assert time(7) <= result.time() <= time(11, 30) or time(13, 30) <= result.time() <= time(17)
    assert result >= CALENDAR.next_working_moment(start)
