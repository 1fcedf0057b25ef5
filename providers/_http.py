"""Small HTTP helpers shared by the vendor clients."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from gateway.errors import TemporaryProviderError


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def raise_for_transient_status(
    provider: str, status: int, retry_after_header: str | None, *, maybe_sent: str
) -> None:
    """Raise the temporary error an HTTP status means for any vendor, if it means one.

    429 is throttling, 504 may have been accepted upstream (``timeout_after_send``: only
    an idempotent vendor may be asked again), 408 and other 5xx are worth retrying.
    """
    if status == 429:
        raise TemporaryProviderError(
            provider, "throttled (HTTP 429)", "throttled", retry_after(retry_after_header)
        )
    if status == 504:
        raise TemporaryProviderError(
            provider, f"HTTP 504 (gateway timeout){maybe_sent}", "timeout_after_send"
        )
    if status == 408 or status >= 500:
        raise TemporaryProviderError(
            provider, f"HTTP {status}", f"http_{status}", retry_after(retry_after_header)
        )
