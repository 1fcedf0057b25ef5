"""Quiet hours and back-off."""

from __future__ import annotations

import itertools
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.schedule import BACKOFF_SECONDS, MAX_ATTEMPTS, quiet_until, retry_delay
from gateway.settings import QuietHours

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NIGHT = QuietHours(time(21), time(7))


@pytest.mark.parametrize(
    ("local", "until"),
    [
        (datetime(2026, 3, 2, 21, 0), datetime(2026, 3, 3, 7, 0)),
        (datetime(2026, 3, 2, 23, 59), datetime(2026, 3, 3, 7, 0)),
        (datetime(2026, 3, 3, 0, 30), datetime(2026, 3, 3, 7, 0)),
        (datetime(2026, 3, 3, 6, 59), datetime(2026, 3, 3, 7, 0)),
        (datetime(2026, 3, 3, 7, 0), None),
        (datetime(2026, 3, 3, 12, 0), None),
        (datetime(2026, 3, 3, 20, 59), None),
    ],
)
def test_night_window_wraps_midnight(local: datetime, until: datetime | None) -> None:
    now = local.replace(tzinfo=VN)
    expected = until.replace(tzinfo=VN) if until else None
    assert quiet_until(now, NIGHT, VN) == expected


def test_any_offset_is_read_in_local_time() -> None:
    # 15:30 UTC is 22:30 in Hà Nội: quiet.
    now = datetime(2026, 3, 2, 15, 30, tzinfo=ZoneInfo("UTC"))
    assert quiet_until(now, NIGHT, VN) == datetime(2026, 3, 3, 7, 0, tzinfo=VN)


def test_a_daytime_window_and_no_window() -> None:
    lunch = QuietHours(time(11, 30), time(13, 30))
    assert quiet_until(datetime(2026, 3, 2, 12, tzinfo=VN), lunch, VN) == datetime(
        2026, 3, 2, 13, 30, tzinfo=VN
    )
    assert quiet_until(datetime(2026, 3, 2, 23, tzinfo=VN), None, VN) is None


def test_back_off_grows_then_gives_up() -> None:
    delays = [retry_delay(n) for n in range(1, MAX_ATTEMPTS + 1)]
    assert delays[: len(BACKOFF_SECONDS)] == [timedelta(seconds=s) for s in BACKOFF_SECONDS]
    assert delays[-1] is None
    waits = [d for d in delays if d is not None]
    assert all(a < b for a, b in itertools.pairwise(waits))
