"""eSMS.vn brandname SMS: send one message, read its delivery callback.

Wire protocol (eSMS developer docs, ``SendMultipleMessage_V4_post_json``): a JSON POST
with ``ApiKey``, ``SecretKey``, ``Phone``, ``Content``, ``Brandname``, ``SmsType``,
``IsUnicode``, ``Sandbox``, ``RequestId`` and ``CallbackUrl``; the answer is
``{"CodeResult": "100", "SMSID": ...}`` on acceptance or another ``CodeResult``.
``Phone`` is sent in national form (``0912345678``), the form eSMS itself uses in its
callbacks. ``RequestId`` is eSMS's idempotency key: a retry after a lost answer gets
``CodeResult 124`` instead of a second SMS, which :func:`_result` reads as "already
sent".

Every answer and every transport failure goes through :func:`_result`, the one place
that decides between :class:`SmsAccepted`, ``TemporaryProviderError`` (retry may help),
``PermanentProviderError`` (not with this provider: fail over) and its subclass
``RecipientUnreachable`` (no provider will reach the number):

==========================================  =========================================
eSMS answer                                 result
==========================================  =========================================
CodeResult 100                              SmsAccepted(provider_message_id=SMSID)
CodeResult 124 (duplicate RequestId)        SmsAccepted(already_sent=True)
CodeResult 99 (phone blocked)              RecipientUnreachable, code = CodeResult
CodeResult 108 (eSMS rejects the format)   PermanentProviderError (fail over), code = 108
not a Vietnamese mobile (before sending)    RecipientUnreachable "phone_format"
CodeResult 104, 146, 177 (brandname,        Permanent, code = CodeResult
template, network not registered)
CodeResult 101, 102, 103, 140 (keys, price  Permanent, code = CodeResult, detail says
list, balance, IP whitelist)                "account problem" (see ACCOUNT_ERROR_CODES)
any other CodeResult                        Permanent, code = CodeResult
HTTP 429                                    Temporary "throttled" (+ Retry-After)
HTTP 408, 5xx other than 504                Temporary "http_<status>" (+ Retry-After)
HTTP 401, 403                               Permanent "http_<status>", account problem
other HTTP 4xx                              Permanent "http_<status>"
2xx JSON without CodeResult                 Permanent "invalid_request"
connection refused / DNS / connect timeout  Temporary "connect": nothing was sent
sent, but no usable answer: read timeout,   MaybeSent ("timeout_after_send"): the
connection lost, HTTP 504, 2xx not JSON     message may have been accepted
==========================================  =========================================

The transport rows come from :mod:`providers._http`, shared by every provider. With
eSMS all of them are safe to retry (``idempotent = True``) because of ``RequestId``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from gateway.errors import (
    MalformedInput,
    PermanentProviderError,
    RecipientUnreachable,
)
from gateway.settings import EsmsSettings
from providers._http import raise_for_transient_status, transport_error, unreadable_answer
from providers.base import Receipt, ReceiptStatus, SmsAccepted, SmsMessage

SEND_PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"
NAME = "esms"

# CodeResults that say our account, not the message, is at fault: another provider
# can still deliver the message.
_ACCOUNT_ERRORS = {
    "101": "wrong ESMS_API_KEY / ESMS_SECRET_KEY",
    "102": "no price list on the account",
    "103": "balance too low",
    "140": "this server's IP address is not whitelisted",
}
ACCOUNT_ERROR_CODES = frozenset(_ACCOUNT_ERRORS)
# CodeResults that say the number itself cannot be reached: failing over will not help.
_RECIPIENT_ERRORS = {
    "99": "the phone number is blocked",
}
_MESSAGE_ERRORS = {
    # Our normaliser only lets valid mobiles through, so 108 means eSMS's own prefix table
    # is behind (new ranges appear): another provider may well deliver.
    "108": "eSMS does not accept this number's format",
    "104": "brandname not registered on the account",
    "146": "text does not match a registered customer-care template",
    "177": "the recipient's network is not registered for this brandname",
}
# SendStatus in delivery callbacks.
_SEND_STATUS: dict[str, tuple[ReceiptStatus, str]] = {
    "5": ("delivered", "sent successfully"),
    "4": ("failed", "rejected"),
    "7": ("pending", "sent to the carrier, waiting for its report"),
    "1": ("pending", "waiting for approval"),
    "2": ("pending", "waiting to be sent"),
}
_MOBILE_E164 = re.compile(r"^\+84[1-9]\d{8}$")


@dataclass(frozen=True, slots=True)
class _Answer:
    """What came back over HTTP, before interpretation."""

    status: int
    retry_after: str | None
    body: bytes


class EsmsProvider:
    """:class:`providers.base.SmsProvider` for eSMS.vn."""

    name: str = NAME
    # eSMS deduplicates on RequestId, so a retry after a lost answer cannot send twice.
    idempotent: bool = True

    def __init__(
        self, settings: EsmsSettings, session: aiohttp.ClientSession, *, timeout: float = 10.0
    ) -> None:
        self.accents: bool = settings.accents
        self._settings = settings
        self._session = session
        self._url = settings.base_url.rstrip("/") + SEND_PATH
        # Connecting gets half the budget so that a connect timeout (nothing sent) is told
        # apart from a read timeout (maybe sent).
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=timeout / 2)

    async def send(self, message: SmsMessage, *, callback_url: str | None) -> SmsAccepted:
        """POST the message to eSMS; raise Temporary/PermanentProviderError on failure."""
        payload = {
            "ApiKey": self._settings.api_key,
            "SecretKey": self._settings.secret_key,
            "Phone": national_phone(message.phone_e164),
            "Content": message.text,
            "Brandname": self._settings.brandname,
            "SmsType": self._settings.sms_type,
            "IsUnicode": "1" if message.unicode else "0",
            "Sandbox": "1" if self._settings.sandbox else "0",
            "RequestId": message.request_id,
        }
        if callback_url:
            payload["CallbackUrl"] = callback_url
        outcome: _Answer | BaseException
        try:
            async with self._session.post(self._url, json=payload, timeout=self._timeout) as resp:
                outcome = _Answer(resp.status, resp.headers.get("Retry-After"), await resp.read())
        except (TimeoutError, aiohttp.ClientError) as exc:
            outcome = exc
        return _result(outcome)

    def parse_receipts(self, query: Mapping[str, str], body: bytes) -> list[Receipt]:
        """Read eSMS's delivery callback (HTTP GET, all fields in the query string).

        ``SendStatus`` 5 is delivered, 4 failed, 7/1/2 pending; an unknown status is
        reported as pending so that no message is declared failed on a guess. eSMS's own
        sample shows ``SendStatus=5`` with ``SendSuccess=0, SendFailed=2``: a finished
        send whose numbers all failed, so status 5 with failures and no success counts as
        failed. Raises ``MalformedInput`` when the query is not an eSMS callback.
        """
        del body  # eSMS puts everything in the query string
        sms_id = query.get("SMSID") or None
        request_id = query.get("RequestId") or None
        status_code = query.get("SendStatus", "").strip()
        if not status_code or (sms_id is None and request_id is None):
            raise MalformedInput("eSMS callback needs SendStatus and SMSID or RequestId")
        status, meaning = _SEND_STATUS.get(status_code, ("pending", "unknown status"))
        success, failed = _count(query.get("SendSuccess")), _count(query.get("SendFailed"))
        if status == "delivered" and failed > 0 and success == 0:
            status, meaning = "failed", "finished, but every number failed"
        detail = f"SendStatus={status_code} ({meaning})"
        if telco := query.get("telcoid"):
            detail += f"; telcoid={telco}"
        return [Receipt(NAME, sms_id, request_id, status, detail)]


def national_phone(phone_e164: str) -> str:
    """``+84912345678`` → ``0912345678``; raise RecipientUnreachable for anything else."""
    if not _MOBILE_E164.match(phone_e164):
        raise RecipientUnreachable(NAME, "not a Vietnamese mobile number", "phone_format")
    return "0" + phone_e164[3:]


def _result(outcome: _Answer | BaseException) -> SmsAccepted:
    """Turn one eSMS exchange into SmsAccepted or raise our error (see module table)."""
    if isinstance(outcome, BaseException):
        raise transport_error(NAME, outcome, base_url_name="ESMS_BASE_URL") from outcome
    status = outcome.status
    raise_for_transient_status(NAME, status, outcome.retry_after)
    if status in (401, 403):
        raise PermanentProviderError(
            NAME,
            f"account problem (HTTP {status}); fail over to another provider",
            f"http_{status}",
        )
    if not 200 <= status < 300:
        raise PermanentProviderError(NAME, f"HTTP {status}", f"http_{status}")
    try:
        data = json.loads(outcome.body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise unreadable_answer(NAME, status)
    if "CodeResult" not in data:
        why = str(data.get("error") or "no CodeResult")[:200]
        raise PermanentProviderError(NAME, f"request refused: {why}", "invalid_request")
    code = str(data["CodeResult"]).strip()
    sms_id = str(data["SMSID"]) if data.get("SMSID") else None
    if code == "100":
        return SmsAccepted(NAME, sms_id)
    if code == "124":
        return SmsAccepted(NAME, sms_id, already_sent=True)
    vendor_message = str(data.get("ErrorMessage") or "")[:200]
    if code in _ACCOUNT_ERRORS:
        raise PermanentProviderError(
            NAME,
            f"account problem: {_ACCOUNT_ERRORS[code]} (CodeResult {code}); "
            "delivery can fail over to the next provider",
            code,
        )
    if code in _RECIPIENT_ERRORS:
        raise RecipientUnreachable(NAME, f"{_RECIPIENT_ERRORS[code]} (CodeResult {code})", code)
    reason = _MESSAGE_ERRORS.get(code, f"unknown CodeResult {code} {vendor_message}".strip())
    raise PermanentProviderError(NAME, f"{reason} (CodeResult {code})", code)


def _count(value: str | None) -> int:
    try:
        return int(value or "0")
    except ValueError:
        return 0
