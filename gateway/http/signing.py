"""HMAC signatures of the events API (one-stop-shop -> gateway).

Two forms, told apart by the prefix of ``X-Signature``:

* ``v2=<hex HMAC-SHA256(secret, "<X-Timestamp>.<METHOD>.<path and query>.<raw body>")>``
  binds the whole request: a captured signed ``GET /v1/dossiers/A`` cannot be replayed
  for dossier B, nor with another query string. The path and query are signed exactly as
  sent on the wire (percent-encoding included), so neither side has to normalise them.
* ``sha256=<hex HMAC-SHA256(secret, "<X-Timestamp>.<raw body>")>`` is the first form. It
  binds only the body, so it is accepted for ``POST`` alone, and only while
  ``ACCEPT_V1_SIGNATURES`` is on (the migration window of existing integrations).

The same functions sign (the demo's simulated one-stop-shop, ``tthc get``, tests,
benchmarks) and verify. Every header is checked for shape before use: odd bytes or huge
numbers are an authentication failure (401), never an exception (500).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import AuthenticationFailed

SOURCE_HEADER = "X-Source-Id"
TIMESTAMP_HEADER = "X-Timestamp"
SIGNATURE_HEADER = "X-Signature"
_NAMES = (SOURCE_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)

V1_PREFIX = "sha256="
V2_PREFIX = "v2="

# A signed request may come from a clock this far ahead of ours, no further: a timestamp
# from the future would otherwise stretch the window in which a capture can be replayed.
MAX_FUTURE_SECONDS = 5

# ASCII digits only ("²".isdigit() is True), and few enough to stay a plausible time.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"(sha256|v2)=([0-9a-fA-F]{64})")


@dataclass(frozen=True, slots=True)
class Request:
    """What a v2 signature binds besides the timestamp: the request as received."""

    method: str
    path_qs: str
    body: bytes


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The v1 ``X-Signature`` value for ``body`` sent at ``timestamp`` (POST only)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return V1_PREFIX + mac.hexdigest()


def signature_v2(secret: str, timestamp: str, method: str, path_qs: str, body: bytes) -> str:
    """The v2 ``X-Signature`` value: binds method, raw path and query, and body."""
    message = f"{timestamp}.{method}.{path_qs}.".encode() + body
    mac = hmac.new(secret.encode(), message, hashlib.sha256)
    return V2_PREFIX + mac.hexdigest()


def signed_headers(source_id: str, secret: str, body: bytes, now: float) -> dict[str, str]:
    """All three authentication headers of a v1-signed ``POST`` body."""
    timestamp = str(int(now))
    return {
        SOURCE_HEADER: source_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def signed_headers_v2(
    source_id: str, secret: str, method: str, path_qs: str, body: bytes, now: float
) -> dict[str, str]:
    """All three authentication headers of a v2-signed request.

    ``path_qs`` must be the request target exactly as it will be sent, e.g.
    ``/v1/dossiers/000.00.12.H19-240401-0001?x=1`` with any percent-encoding applied.
    """
    timestamp = str(int(now))
    return {
        SOURCE_HEADER: source_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature_v2(secret, timestamp, method, path_qs, body),
    }


def verify(
    sources: Mapping[str, str],
    headers: Mapping[str, str],
    request: Request,
    now: float,
    max_skew_seconds: int,
    *,
    accept_v1: bool,
) -> str:
    """Return the authenticated source id, or raise AuthenticationFailed saying why.

    The reasons never quote the signature or the secret; header values an attacker
    chose are quoted only after their shape was checked, or not at all.
    """
    source_id, timestamp, given = _required(headers)
    secret = sources.get(source_id)
    if secret is None:
        raise AuthenticationFailed("unknown source")
    issued = _timestamp(timestamp)
    _check_clock(issued, now, max_skew_seconds)
    scheme, digest = _shape(given)
    if scheme == "sha256":
        expected = _v1_expected(secret, timestamp, request, accept_v1=accept_v1)
    else:
        expected = signature_v2(secret, timestamp, request.method, request.path_qs, request.body)
    # Both are ASCII by now: the shape check above refused anything else.
    normalised = f"{scheme}={digest.lower()}"
    if not hmac.compare_digest(normalised.encode("ascii"), expected.encode("ascii")):
        raise AuthenticationFailed("signature does not match the request")
    return source_id


def _required(headers: Mapping[str, str]) -> tuple[str, str, str]:
    values = {name: headers.get(name, "") for name in _NAMES}
    missing = [name for name in _NAMES if not values[name]]
    if missing:
        raise AuthenticationFailed("missing header(s): " + ", ".join(missing))
    return values[SOURCE_HEADER], values[TIMESTAMP_HEADER], values[SIGNATURE_HEADER]


def _timestamp(raw: str) -> int:
    if not _TIMESTAMP.fullmatch(raw):
        raise AuthenticationFailed(f"{TIMESTAMP_HEADER} must be unix seconds (ASCII digits)")
    return int(raw)


def _check_clock(issued: int, now: float, max_skew_seconds: int) -> None:
    if issued - now > MAX_FUTURE_SECONDS:
        raise AuthenticationFailed(
            f"{TIMESTAMP_HEADER} is more than {MAX_FUTURE_SECONDS} s ahead of the gateway's clock"
        )
    if now - issued > max_skew_seconds:
        raise AuthenticationFailed(
            f"{TIMESTAMP_HEADER} is more than {max_skew_seconds} s behind the gateway's clock"
        )


def _shape(given: str) -> tuple[str, str]:
    match = _SIGNATURE.fullmatch(given)
    if match is None:
        raise AuthenticationFailed(f"{SIGNATURE_HEADER} must be {V2_PREFIX}<64 hex digits>")
    return match.group(1), match.group(2)


def _v1_expected(secret: str, timestamp: str, request: Request, *, accept_v1: bool) -> str:
    if not accept_v1:
        raise AuthenticationFailed(
            f"{V1_PREFIX} signatures are no longer accepted: sign with {V2_PREFIX}"
        )
    if request.method != "POST":
        raise AuthenticationFailed(
            f"{V1_PREFIX} signatures are accepted for POST only: sign with {V2_PREFIX}"
        )
    return signature(secret, timestamp, request.body)
