"""The seam between delivery and SMS vendors: one small protocol, typed messages and receipts.

Each vendor module (``providers/esms.py``, ``providers/speedsms.py``, ``providers/log.py``)
implements :class:`SmsProvider` and has exactly one function that turns the vendor's
answers into :class:`SmsAccepted` or our exceptions (``TemporaryProviderError`` when a
retry may help, ``PermanentProviderError`` when it will not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

ReceiptStatus = Literal["delivered", "failed", "pending"]


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """One SMS to send for one notice on one provider."""

    notice_id: str
    # Unique per notice, channel and provider; vendors that take an idempotency key get it
    # (eSMS ``RequestId``), so a retry after a lost answer is recognised as a duplicate.
    request_id: str
    phone_e164: str
    text: str
    unicode: bool
    segments: int
    # A one-time code the text carries: whoever logs the message masks it (never logged).
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class SmsAccepted:
    """The vendor took the message; delivery is reported later by a receipt."""

    provider: str
    provider_message_id: str | None
    already_sent: bool = False


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery report, as far as we care."""

    provider: str
    provider_message_id: str | None
    request_id: str | None
    status: ReceiptStatus
    detail: str


class SmsProvider(Protocol):
    """What delivery needs from an SMS vendor."""

    name: str
    # Whether this provider's contract allows Vietnamese with diacritics (UCS-2); when
    # False the text is sent unaccented (GSM-7).
    accents: bool
    # Whether the vendor recognises a repeated ``request_id`` (eSMS ``RequestId``): only
    # then may a send whose outcome is unknown be tried again at the same vendor.
    idempotent: bool

    async def send(self, message: SmsMessage, *, callback_url: str | None) -> SmsAccepted:
        """Hand one message to the vendor; raise Temporary/PermanentProviderError."""
        ...

    def parse_receipts(self, query: Mapping[str, str], body: bytes) -> list[Receipt]:
        """Read the vendor's delivery callback (GET query or POST body)."""
        ...
