"""Send one notice by SMS: claim it, render it, try each provider in failover order.

Never twice: an attempt row keyed by (notice, channel, provider) is written before the
provider is called. Finding it on a later run means we may already have sent: a provider
with an idempotency key (eSMS ``RequestId``) is simply asked again and answers
"duplicate"; a provider without one is not asked again and the notice becomes
``unknown`` for a person to check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.delivery import outbox
from gateway.delivery.limits import ProviderLimits
from gateway.domain.phones import mask_phone
from gateway.domain.schedule import quiet_until, retry_delay
from gateway.errors import PermanentProviderError, RecipientUnreachable, TemporaryProviderError
from gateway.notice_text import render_sms
from gateway.settings import Settings
from gateway.texts import Texts
from providers.base import SmsMessage, SmsProvider

log = logging.getLogger(__name__)


@dataclass
class Sender:
    """Everything one delivery job needs, opened once per job."""

    settings: Settings
    # SQLite: an engine whose transactions begin IMMEDIATE (read-then-write must not be
    # upgraded under a concurrent writer); PostgreSQL: the ordinary engine.
    engine: AsyncEngine
    providers: list[SmsProvider]
    limits: ProviderLimits
    texts: Texts
    clock: Callable[[], datetime]

    def callback_url(self, provider: str) -> str | None:
        secret = self.settings.sms_webhook_secret
        if not secret:
            return None
        return f"{self.settings.public_base_url}/webhooks/sms/{provider}/{secret}"

    async def deliver(self, notice_id: str) -> datetime | None:
        """Send the notice if it is due; return when to try again, or None if done."""
        engine = self.engine
        now = self.clock()
        notice = await outbox.claim(
            engine, notice_id, now, timedelta(seconds=self.settings.delivery_lease_seconds)
        )
        if notice is None:
            return None
        quiet = quiet_until(now, self.settings.quiet_hours, self.settings.tz)
        if quiet is not None:
            await outbox.release(engine, notice.id, now, not_before=quiet)
            log.info("notice deferred to the morning", extra={"notice": notice.id})
            return None

        temporary: str | None = None
        last_error = "no SMS provider is configured"
        for provider in self.providers:
            if await self.limits.is_open(provider.name):
                temporary, last_error = "circuit", f"{provider.name}: circuit open"
                continue
            request_id = f"{notice.id}-sms-{provider.name}"[:48]
            previous = await outbox.attempt(engine, request_id)
            if previous is not None and previous.state in ("accepted", "delivered"):
                await self._sent(notice.id, provider.name, previous.provider_message_id, None, 0)
                return None
            if previous is not None and previous.state == "failed":
                continue
            if (
                previous is not None
                and previous.state in ("sending", "unknown")
                and not provider.idempotent
            ):
                await outbox.finish(
                    engine,
                    notice.id,
                    self.clock(),
                    state="unknown",
                    last_error=f"{provider.name}: may have been sent before a crash",
                )
                return None
            rendered = render_sms(
                self.texts,
                notice.kind,
                notice.params,
                accents=provider.accents,
                budget=(
                    self.settings.sms_unicode_segment_budget
                    if provider.accents
                    else self.settings.sms_segment_budget
                ),
                zone=self.settings.tz,
            )
            message = SmsMessage(
                notice.id,
                request_id,
                notice.phone_e164,
                rendered.text,
                rendered.encoding == "UCS-2",
                rendered.segments,
            )
            await outbox.start_attempt(
                engine, request_id, notice.id, "sms", provider.name, self.clock()
            )
            await self.limits.acquire(provider.name)
            try:
                accepted = await provider.send(
                    message, callback_url=self.callback_url(provider.name)
                )
            except TemporaryProviderError as exc:
                await self.limits.failed(provider.name)
                ambiguous = exc.code == "timeout_after_send" and not provider.idempotent
                await outbox.end_attempt(
                    engine,
                    request_id,
                    self.clock(),
                    state="unknown" if ambiguous else "retry",
                    error_code=exc.code,
                    error=exc.detail[:500],
                )
                if ambiguous:
                    await outbox.finish(
                        engine,
                        notice.id,
                        self.clock(),
                        state="unknown",
                        last_error=exc.detail[:500],
                    )
                    return None
                temporary, last_error = exc.code or "temporary", exc.detail
                continue
            except RecipientUnreachable as exc:
                await outbox.end_attempt(
                    engine,
                    request_id,
                    self.clock(),
                    state="failed",
                    error_code=exc.code,
                    error=exc.detail[:500],
                )
                await outbox.finish(
                    engine, notice.id, self.clock(), state="failed", last_error=exc.detail[:500]
                )
                return None
            except PermanentProviderError as exc:
                await outbox.end_attempt(
                    engine,
                    request_id,
                    self.clock(),
                    state="failed",
                    error_code=exc.code,
                    error=exc.detail[:500],
                )
                last_error = exc.detail
                continue
            await self.limits.succeeded(provider.name)
            await outbox.end_attempt(
                engine,
                request_id,
                self.clock(),
                state="accepted",
                provider_message_id=accepted.provider_message_id,
            )
            await self._sent(
                notice.id,
                provider.name,
                accepted.provider_message_id,
                rendered.text,
                rendered.segments,
            )
            log.info(
                "notice sent",
                extra={
                    "notice": notice.id,
                    "provider": provider.name,
                    "to": mask_phone(notice.phone_e164),
                },
            )
            return None

        now = self.clock()
        delay = retry_delay(notice.attempts) if temporary else None
        if delay is None:
            await outbox.finish(engine, notice.id, now, state="failed", last_error=last_error[:500])
            return None
        await outbox.release(engine, notice.id, now, not_before=now + delay, error=last_error[:500])
        return now + delay

    async def _sent(
        self, notice_id: str, provider: str, message_id: str | None, text: str | None, segments: int
    ) -> None:
        engine = self.engine
        values: dict[str, object] = {
            "state": "sent",
            "channel": "sms",
            "provider": provider,
            "sent_at": self.clock(),
            "last_error": None,
        }
        if text is not None:
            values |= {"text": text, "segments": segments}
        await outbox.finish(engine, notice_id, self.clock(), **values)
