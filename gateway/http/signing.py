"""HMAC signatures of the events API (one-stop-shop -> gateway).

``X-Signature: sha256=<hex HMAC-SHA256(secret, "<X-Timestamp>.<raw body>")>``. The same
function signs (the demo's simulated one-stop-shop, tests, benchmarks) and verifies.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from gateway.errors import AuthenticationFailed

SOURCE_HEADER = "X-Source-Id"
TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(source_id: str, secret: str, body: bytes, now: float) -> dict[str, str]:
    """All three authentication headers for a request body."""
    timestamp = str(int(now))
    return {
        SOURCE_HEADER: source_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(
    sources: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    max_skew_seconds: int,
) -> str:
    """Return the authenticated source id, or raise AuthenticationFailed saying why."""
    source_id = headers.get(SOURCE_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    if not source_id or not timestamp or not given:
        missing = [
            name
            for name, value in (
                (SOURCE_HEADER, source_id),
                (TIMESTAMP_HEADER, timestamp),
                (SIGNATURE_HEADER, given),
            )
            if not value
        ]
        raise AuthenticationFailed("missing header(s): " + ", ".join(missing))
    secret = sources.get(source_id)
    if secret is None:
        raise AuthenticationFailed(f"unknown source {source_id!r}")
    if not timestamp.isdigit():
        raise AuthenticationFailed(f"{TIMESTAMP_HEADER} must be unix seconds")
    if abs(now - int(timestamp)) > max_skew_seconds:
        raise AuthenticationFailed(
            f"{TIMESTAMP_HEADER} is more than {max_skew_seconds} s away from the gateway's clock"
        )
    if not hmac.compare_digest(given.encode(), signature(secret, timestamp, body).encode()):
        raise AuthenticationFailed("signature does not match the body")
    return source_id
