"""HTTP helpers shared by the vendor clients: the transport-level half of every mapping.

Each provider keeps exactly one function that turns its answers into our exceptions
(``esms._result``, ``speedsms._result``, ``zalo.errors.raise_for_zalo``); what does not
depend on the vendor is decided here, the same way for all of them:

==========================================  ==========================================
what happened                               exception (``code``)
==========================================  ==========================================
connection refused / DNS / connect timeout  TemporaryProviderError "connect": nothing
                                            was sent
malformed base URL                          PermanentProviderError "config"
read timeout, connection lost               MaybeSent: the request went out and the
HTTP 504 (gateway timeout)                  vendor may have taken it
2xx that cannot be read                     (code "timeout_after_send")
HTTP 429                                    TemporaryProviderError "throttled"
HTTP 408, 5xx other than 504                TemporaryProviderError "http_<status>"
==========================================  ==========================================

A connect timeout gets half the request budget in every client, so that "nothing sent"
is told apart from "maybe sent".
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from gateway.errors import (
    MaybeSent,
    PermanentProviderError,
    ProviderError,
    TemporaryProviderError,
)


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


def transport_error(provider: str, exc: BaseException, *, base_url_name: str) -> ProviderError:
    """Our error for an exchange that failed below HTTP (see the module table).

    ``base_url_name`` names the setting to fix when the URL itself is malformed.
    """
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        return TemporaryProviderError(provider, f"cannot connect: {exc}", "connect")
    if isinstance(exc, aiohttp.InvalidURL):
        return PermanentProviderError(provider, f"bad {base_url_name}: {exc}", "config")
    what = "no answer in time" if isinstance(exc, TimeoutError) else "connection lost"
    return MaybeSent(
        provider, f"{what} ({type(exc).__name__}) after sending; it may have been accepted"
    )


def unreadable_answer(provider: str, status: int) -> MaybeSent:
    """The error for a 2xx whose body cannot be read: the vendor may have taken it."""
    return MaybeSent(provider, f"HTTP {status} with an unreadable answer after sending")


def raise_for_transient_status(provider: str, status: int, retry_after_header: str | None) -> None:
    """Raise the temporary error an HTTP status means for any vendor, if it means one.

    429 is throttling, 504 may have been accepted upstream (:class:`MaybeSent`: only an
    idempotent vendor may be asked again), 408 and other 5xx are worth retrying.
    """
    if status == 429:
        raise TemporaryProviderError(
            provider, "throttled (HTTP 429)", "throttled", retry_after(retry_after_header)
        )
    if status == 504:
        raise MaybeSent(provider, "HTTP 504 (gateway timeout) after sending")
    if status == 408 or status >= 500:
        raise TemporaryProviderError(
            provider, f"HTTP {status}", f"http_{status}", retry_after(retry_after_header)
        )
