"""When a notice may be sent: quiet hours and retry back-off, without I/O."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from gateway.settings import QuietHours

# Temporary failures are retried after these delays (seconds), then given up.
BACKOFF_SECONDS = (10, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1


def quiet_until(now: datetime, quiet: QuietHours | None, zone: tzinfo) -> datetime | None:
    """The end of the quiet window ``now`` falls in (as an aware datetime), or None.

    A notice due at night waits for the morning; it is deferred, never dropped.
    """
    if quiet is None:
        return None
    local = now.astimezone(zone)
    if not quiet.contains(local.time()):
        return None
    end_day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        end_day += timedelta(days=1)  # evening part of a window that wraps midnight
    return datetime.combine(end_day, quiet.end, tzinfo=zone)


def retry_delay(attempts: int) -> timedelta | None:
    """The wait before attempt ``attempts + 1`` after a temporary failure; None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return timedelta(seconds=BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1])
