"""A development SMS provider: writes each message to the log instead of sending it.

It accepts everything, answers with a generated id, and (like eSMS with ``RequestId``)
recognises a repeated ``request_id`` within one process as already sent. It never
sends delivery receipts. The phone number is masked in what it logs, and a one-time code
(``SmsMessage.secret``) is never logged.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

from gateway.domain.phones import mask_phone
from gateway.logs import redact_secret_paths
from providers.base import Receipt, SmsAccepted, SmsMessage

NAME = "log"
# What a one-time code in a message becomes in the log.
CODE_MASK = "••••••"


class LogProvider:
    """:class:`providers.base.SmsProvider` that only logs."""

    name: str = NAME
    # A repeated request_id is recognised (within this process), as with eSMS.
    idempotent: bool = True

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.accents: bool = True
        self._log = logger or logging.getLogger(__name__)
        self._sent: dict[str, str] = {}  # request_id -> provider message id

    async def send(self, message: SmsMessage, *, callback_url: str | None) -> SmsAccepted:
        """Log the message and accept it (already_sent for a repeated request_id)."""
        if (previous := self._sent.get(message.request_id)) is not None:
            return SmsAccepted(NAME, previous, already_sent=True)
        message_id = f"log-{uuid.uuid4().hex}"
        self._sent[message.request_id] = message_id
        self._log.info(
            "SMS to %s (%d segment(s), %s): %s",
            mask_phone(message.phone_e164),
            message.segments,
            "unicode" if message.unicode else "gsm-7",
            message.text.replace(message.secret, CODE_MASK) if message.secret else message.text,
            extra={
                "notice_id": message.notice_id,
                "request_id": message.request_id,
                "provider_message_id": message_id,
                # The receipt URL ends with SMS_WEBHOOK_SECRET: never logged whole.
                "callback_url": redact_secret_paths(callback_url) if callback_url else None,
            },
        )
        return SmsAccepted(NAME, message_id)

    def parse_receipts(self, query: Mapping[str, str], body: bytes) -> list[Receipt]:
        """The log provider sends no receipts; any callback reads as none."""
        del query, body
        return []
