"""SpeedSMS brandname SMS: send one message, read its status callback.

Wire protocol: ``POST {base}/index.php/sms/send`` with HTTP Basic auth (the access
token as user, ``x`` as password) and JSON ``{"to": ["84…"], "content", "sms_type",
"sender"}``. Success is ``{"status": "success", "code": "00", "data": {"tranId",
"totalSMS", "totalPrice", "invalidPhone"}}``; failure is ``{"status": "error", "code",
"message"}``. Status callbacks are configured per account (not per message) and arrive
as a JSON POST ``{"type", "tranId", "phone", "status"}`` with ``status`` 0 = delivered.

**No idempotency key** (``idempotent = False``). SpeedSMS cannot recognise a retry, so
a retry after a lost answer may send the SMS twice. :class:`~gateway.errors.MaybeSent`
means exactly that: the request went out and no usable answer came back (read timeout,
connection lost, HTTP 504, an unreadable 2xx), so SpeedSMS may have taken the message.
Every other error proves it did not (nothing reached it, or it answered with an error);
``"connect"`` in particular means nothing was sent. The delivery layer retries SpeedSMS
only on those.

Every answer and every transport failure goes through :func:`_result`:

==========================================  ==========================================
SpeedSMS answer                             result
==========================================  ==========================================
status success, code 00                     SmsAccepted(provider_message_id=tranId)
success, but our number in invalidPhone     RecipientUnreachable "invalid_phone"
error 105 (invalid phone)                   RecipientUnreachable "105"
not a Vietnamese mobile (before sending)    RecipientUnreachable "phone_format"
error 101 (bad parameters), 110             Permanent, code = vendor code
(encoding), 113 (too long)
error 007 (IP blocked), 008 (account        Permanent, code = vendor code, detail says
locked), 009 (API not allowed), 300         "account problem" (see ACCOUNT_ERROR_CODES)
(balance)
error 500 (SpeedSMS internal error)         Temporary "500"
any other error code                        Permanent, code = vendor code
HTTP 429                                    Temporary "throttled" (+ Retry-After)
HTTP 408, 5xx other than 504                Temporary "http_<status>" (+ Retry-After)
HTTP 401, 403                               Permanent "http_<status>", account problem
other HTTP 4xx without an error body        Permanent "http_<status>"
connection refused / DNS / connect timeout  Temporary "connect": nothing was sent
sent, but no usable answer: read timeout,   MaybeSent ("timeout_after_send"): the
connection lost, HTTP 504, unreadable 2xx   message may have been accepted
==========================================  ==========================================

The transport rows come from :mod:`providers._http`, shared by every provider.

The vendor error codes follow SpeedSMS's public API page and nothing else confirms them,
so check them against the vendor's current documentation before going live.
An unknown code is permanent so that nothing is retried blindly.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.errors import (
    MalformedInput,
    PermanentProviderError,
    RecipientUnreachable,
    TemporaryProviderError,
)
from gateway.settings import SpeedSmsSettings
from providers._http import raise_for_transient_status, transport_error, unreadable_answer
from providers.base import Receipt, SmsAccepted, SmsMessage

SEND_PATH = "/index.php/sms/send"
NAME = "speedsms"

_ACCOUNT_ERRORS = {
    "007": "this server's IP address is blocked",
    "008": "the account is locked",
    "009": "the account may not use the API",
    "300": "balance too low",
}
ACCOUNT_ERROR_CODES = frozenset(_ACCOUNT_ERRORS)
_MESSAGE_ERRORS = {
    "101": "invalid or missing parameters",
    "110": "content encoding not supported",
    "113": "content too long",
}
_TEMPORARY_ERRORS = {"500": "SpeedSMS internal error"}
_MOBILE_E164 = re.compile(r"^\+84[1-9]\d{8}$")


@dataclass(frozen=True, slots=True)
class _Answer:
    """What came back over HTTP, before interpretation."""

    status: int
    retry_after: str | None
    body: bytes
    phone: str


class SpeedSmsProvider:
    """:class:`providers.base.SmsProvider` for SpeedSMS (see the module docstring)."""

    name: str = NAME
    # No idempotency key: a retry after a lost answer may send the SMS twice.
    idempotent: bool = False

    def __init__(
        self,
        settings: SpeedSmsSettings,
        session: aiohttp.ClientSession,
        *,
        timeout: float = 10.0,
    ) -> None:
        self.accents: bool = settings.accents
        self._settings = settings
        self._session = session
        self._url = settings.base_url.rstrip("/") + SEND_PATH
        # HTTP Basic by hand: aiohttp.BasicAuth is deprecated in recent aiohttp releases.
        credentials = base64.b64encode(f"{settings.token}:x".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {credentials}"}
        # Connecting gets half the budget so that a connect timeout (nothing sent) is told
        # apart from a read timeout (maybe sent).
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=timeout / 2)

    async def send(self, message: SmsMessage, *, callback_url: str | None) -> SmsAccepted:
        """POST the message to SpeedSMS.

        ``callback_url`` is ignored: SpeedSMS sends status callbacks to the URL set on the
        account. ``message.unicode`` has no field on this wire: SpeedSMS encodes by content.
        """
        del callback_url
        phone = international_phone(message.phone_e164)
        payload = {
            "to": [phone],
            "content": message.text,
            "sms_type": self._settings.sms_type,
            "sender": self._settings.sender,
        }
        outcome: _Answer | BaseException
        try:
            async with self._session.post(
                self._url, json=payload, headers=self._headers, timeout=self._timeout
            ) as resp:
                retry_after = resp.headers.get("Retry-After")
                outcome = _Answer(resp.status, retry_after, await resp.read(), phone)
        except (TimeoutError, aiohttp.ClientError) as exc:
            outcome = exc
        return _result(outcome)

    def parse_receipts(self, query: Mapping[str, str], body: bytes) -> list[Receipt]:
        """Read SpeedSMS's status callback (JSON POST ``{type, tranId, phone, status}``).

        ``status`` 0 is delivered; any other value is failed (SpeedSMS publishes no
        intermediate states for this callback). A JSON object without ``status`` (the
        same account URL also receives incoming SMS, ``type`` "sms") yields no receipt.
        SpeedSMS does not echo a request id; receipts match by ``tranId``. Raises
        ``MalformedInput`` when the body is not a JSON object.
        """
        del query
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise MalformedInput("SpeedSMS callback body is not JSON") from exc
        if not isinstance(data, dict):
            raise MalformedInput("SpeedSMS callback body is not a JSON object")
        if "status" not in data or data.get("tranId") in (None, ""):
            return []
        status = str(data["status"]).strip()
        return [
            Receipt(
                provider=NAME,
                provider_message_id=str(data["tranId"]),
                request_id=None,
                status="delivered" if status == "0" else "failed",
                detail=f"type={data.get('type')} status={status}",
            )
        ]


def international_phone(phone_e164: str) -> str:
    """``+84912345678`` → ``84912345678``; raise RecipientUnreachable for anything else."""
    if not _MOBILE_E164.match(phone_e164):
        raise RecipientUnreachable(NAME, "not a Vietnamese mobile number", "phone_format")
    return phone_e164[1:]


def _result(outcome: _Answer | BaseException) -> SmsAccepted:
    """Turn one SpeedSMS exchange into SmsAccepted or raise our error (see module table)."""
    if isinstance(outcome, BaseException):
        raise transport_error(NAME, outcome, base_url_name="SPEEDSMS_BASE_URL") from outcome
    status = outcome.status
    data = _json_object(outcome.body)
    raise_for_transient_status(NAME, status, outcome.retry_after)
    if status in (401, 403):
        raise PermanentProviderError(
            NAME, f"account problem (HTTP {status}): check SPEEDSMS_TOKEN", f"http_{status}"
        )
    if data is None or (data.get("status") not in ("success", "error") and status < 300):
        if 200 <= status < 300:
            raise unreadable_answer(NAME, status)
        raise PermanentProviderError(NAME, f"HTTP {status}", f"http_{status}")
    if data.get("status") == "success":
        payload = data.get("data")
        details: dict[str, Any] = payload if isinstance(payload, dict) else {}
        invalid = details.get("invalidPhone") or []
        if isinstance(invalid, list) and outcome.phone in {str(p) for p in invalid}:
            raise RecipientUnreachable(
                NAME, "SpeedSMS listed the number as invalid", "invalid_phone"
            )
        tran_id = details.get("tranId")
        return SmsAccepted(NAME, None if tran_id in (None, "") else str(tran_id))
    code = str(data.get("code") or "").strip() or f"http_{status}"
    vendor_message = str(data.get("message") or "")[:200]
    if code in _TEMPORARY_ERRORS:
        raise TemporaryProviderError(NAME, f"{_TEMPORARY_ERRORS[code]} (code {code})", code)
    if code in _ACCOUNT_ERRORS:
        raise PermanentProviderError(
            NAME,
            f"account problem: {_ACCOUNT_ERRORS[code]} (code {code}); "
            "delivery can fail over to the next provider",
            code,
        )
    if code == "105":
        raise RecipientUnreachable(NAME, "invalid phone number (code 105)", code)
    reason = _MESSAGE_ERRORS.get(code, f"unknown error code {code} {vendor_message}".strip())
    raise PermanentProviderError(NAME, f"{reason} (code {code})", code)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
