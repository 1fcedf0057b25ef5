"""Send a batch of notices by SMS: claim, render, try each provider in failover order.

Never twice: before a provider is called, an attempt row keyed by (notice, channel,
provider) is committed. Finding it on a later run means we may already have sent: a
provider with an idempotency key (eSMS ``RequestId``) is simply asked again and answers
"duplicate"; a provider without one is not asked again and the notice becomes
``unknown`` for a person to check. A notice that an idempotent provider may have taken
(a crash mid-call, or ``MaybeSent``) is pinned to that provider: it is never failed over
to another one, which would send it twice, but retried there until it answers.

A batch costs a handful of transactions whatever its size: one claims it, and each
provider round writes its attempt rows in one and records its outcomes in another; the
sends themselves run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.delivery import outbox
from gateway.delivery.limits import ProviderLimits
from gateway.delivery.outbox import ClaimedNotice
from gateway.delivery.zalo import ZaloChannels
from gateway.domain.routing import NEVER_QUIET_KINDS
from gateway.domain.schedule import quiet_until, retry_delay
from gateway.errors import (
    GatewayError,
    MaybeSent,
    PermanentProviderError,
    RecipientUnreachable,
    TemporaryProviderError,
)
from gateway.settings import Settings
from gateway.texts.sms import RenderedSms, render_sms
from gateway.texts.templates import Texts
from gateway.trust.otp import CODE_PARAM, OTP_KIND, stale_reason
from providers.base import SmsAccepted, SmsMessage, SmsProvider

log = logging.getLogger(__name__)

CONCURRENCY = 16
# Attempt states after which the provider may have the message.
_MAYBE_SENT = ("sending", "unknown")


def _request_id(notice_id: str, provider: str) -> str:
    """The attempt key, also the idempotency key sent to providers that take one."""
    return f"{notice_id}-sms-{provider}"[:48]


def _code_in(notice: ClaimedNotice) -> str | None:
    """The one-time code an ``otp`` notice carries (to be kept out of any log)."""
    code = notice.params.get(CODE_PARAM) if notice.kind == OTP_KIND else None
    return code if isinstance(code, str) else None


@dataclass
class _Pending:
    """A claimed notice still looking for a provider."""

    notice: ClaimedNotice
    temporary: bool = False
    last_error: str = "no SMS provider is configured"
    # How the notice came to SMS (the Zalo steps before), stored on the notice.
    route: str | None = None
    # The idempotent provider that may already have this notice: the only one to ask.
    pinned: str | None = None


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
    zalo: ZaloChannels

    def callback_url(self, provider: str) -> str | None:
        secret = self.settings.sms_webhook_secret
        if not secret:
            return None
        return f"{self.settings.public_base_url}/webhooks/sms/{provider}/{secret}"

    async def deliver_many(self, ids: list[str]) -> dict[str, datetime]:
        """Send the due notices among ``ids``; return the ones to retry, with when."""
        now = self.clock()
        lease = timedelta(seconds=self.settings.delivery_lease_seconds)
        claimed, earlier = await outbox.claim_many(self.engine, ids, now, lease)
        claimed = await self._drop_stale_codes(claimed, now)
        if not claimed:
            return {}
        quiet = quiet_until(now, self.settings.quiet_hours, self.settings.tz)
        if quiet is not None:
            # A one-time code is awaited now: it goes at night too.
            held = [n for n in claimed if n.kind not in NEVER_QUIET_KINDS]
            for notice in held:
                await outbox.release(self.engine, notice.id, now, not_before=quiet)
            if held:
                log.info("notices deferred to the morning", extra={"count": len(held)})
            claimed = [n for n in claimed if n.kind in NEVER_QUIET_KINDS]
            if not claimed:
                return {}

        routed = await self.zalo.run(claimed, earlier)
        pending = [_Pending(r.notice, route=r.route()) for r in routed.for_sms]
        later = [
            _Pending(r.notice, temporary=True, last_error=r.notes[-1], route=r.route())
            for r in routed.retry
        ]
        for item in pending:
            item.pinned = self._maybe_taken_by(item.notice.id, earlier)
        for provider in self.providers:
            if not pending:
                break
            pending = await self._round(provider, pending, earlier)
        return await self._give_back(pending + later)

    async def _drop_stale_codes(
        self, claimed: list[ClaimedNotice], now: datetime
    ) -> list[ClaimedNotice]:
        """Fail the one-time code notices whose code was used or expired; the rest."""
        outcomes: list[dict[str, Any]] = []
        kept: list[ClaimedNotice] = []
        for notice in claimed:
            why = stale_reason(notice.params, now) if notice.kind == OTP_KIND else None
            if why is None:
                kept.append(notice)
            else:
                outcomes.append({"id": notice.id, "state": "failed", "last_error": why})
        if outcomes:
            await outbox.record(self.engine, [], outcomes, now)
        return kept

    def _maybe_taken_by(self, notice_id: str, earlier: dict[str, Any]) -> str | None:
        """The idempotent provider whose earlier attempt may have sent ``notice_id``."""
        for provider in self.providers:
            before = earlier.get(_request_id(notice_id, provider.name))
            if provider.idempotent and before is not None and before.state in _MAYBE_SENT:
                return provider.name
        return None

    async def _round(
        self, provider: SmsProvider, pending: list[_Pending], earlier: dict[str, Any]
    ) -> list[_Pending]:
        """Try one provider for every pending notice; return those still pending."""
        if await self.limits.is_open(provider.name):
            for item in pending:
                item.temporary, item.last_error = True, f"{provider.name}: circuit open"
            return pending
        left: list[_Pending] = []
        attempts: list[dict[str, Any]] = []
        outcomes: list[dict[str, Any]] = []
        to_send: list[tuple[_Pending, str, RenderedSms]] = []
        for item in pending:
            notice = item.notice
            if item.pinned not in (None, provider.name):
                left.append(item)
                continue
            request_id = _request_id(notice.id, provider.name)
            before = earlier.get(request_id)
            if before is not None and before.state in ("accepted", "delivered"):
                outcomes.append(self._sent(item, provider.name, None))
                continue
            if before is not None and before.state == "failed":
                left.append(item)
                continue
            if before is not None and before.state in _MAYBE_SENT and not provider.idempotent:
                outcomes.append(
                    {
                        "id": notice.id,
                        "state": "unknown",
                        "last_error": f"{provider.name}: may have been sent before a crash",
                    }
                )
                continue
            try:
                rendered = self._render(provider, notice)
            except GatewayError as exc:  # a notice whose facts cannot make a message
                outcomes.append(
                    {"id": notice.id, "state": "failed", "last_error": exc.detail[:500]}
                )
                continue
            to_send.append((item, request_id, rendered))

        await outbox.start_attempts(
            self.engine,
            [(r, i.notice.id, provider.name) for i, r, _ in to_send],
            "sms",
            self.clock(),
        )
        gate = asyncio.Semaphore(CONCURRENCY)

        async def send(
            item: _Pending, request_id: str, rendered: RenderedSms
        ) -> SmsAccepted | Exception:
            message = SmsMessage(
                item.notice.id,
                request_id,
                item.notice.phone_e164 or "",  # the plan sends no SMS without a number
                rendered.text,
                rendered.encoding == "UCS-2",
                rendered.segments,
                secret=_code_in(item.notice),
            )
            async with gate:
                try:
                    return await provider.send(
                        message, callback_url=self.callback_url(provider.name)
                    )
                except GatewayError as exc:
                    return exc

        await self.limits.acquire(provider.name, len(to_send))
        results = await asyncio.gather(*(send(*entry) for entry in to_send))
        failures = 0
        for (item, request_id, rendered), result in zip(to_send, results, strict=True):
            notice = item.notice
            if isinstance(result, SmsAccepted):
                attempts.append(
                    {
                        "request_id": request_id,
                        "state": "accepted",
                        "provider_message_id": result.provider_message_id,
                    }
                )
                outcomes.append(self._sent(item, provider.name, rendered))
                continue
            detail = getattr(result, "detail", str(result))[:500]
            code = getattr(result, "code", None)
            if isinstance(result, TemporaryProviderError):
                failures += 1
                maybe_sent = isinstance(result, MaybeSent)
                attempts.append(
                    {
                        "request_id": request_id,
                        "state": "unknown" if maybe_sent else "retry",
                        "error_code": code,
                        "error": detail,
                    }
                )
                if maybe_sent and not provider.idempotent:
                    outcomes.append({"id": notice.id, "state": "unknown", "last_error": detail})
                else:
                    if maybe_sent:  # ask this provider again later, with the same key
                        item.pinned = provider.name
                    item.temporary, item.last_error = True, detail
                    left.append(item)
            elif isinstance(result, RecipientUnreachable):
                attempts.append(
                    {
                        "request_id": request_id,
                        "state": "failed",
                        "error_code": code,
                        "error": detail,
                    }
                )
                outcomes.append({"id": notice.id, "state": "failed", "last_error": detail})
            elif isinstance(result, PermanentProviderError):
                attempts.append(
                    {
                        "request_id": request_id,
                        "state": "failed",
                        "error_code": code,
                        "error": detail,
                    }
                )
                item.last_error = detail
                left.append(item)
            else:  # another domain error: do not guess, let a person look
                attempts.append({"request_id": request_id, "state": "unknown", "error": detail})
                outcomes.append({"id": notice.id, "state": "unknown", "last_error": detail})
        await outbox.record(self.engine, attempts, outcomes, self.clock())
        if failures:
            await self.limits.failed(provider.name)
        elif to_send:
            await self.limits.succeeded(provider.name)
        return left

    async def _give_back(self, pending: list[_Pending]) -> dict[str, datetime]:
        """Notices no provider took: retry later after temporary errors, else fail them."""
        now = self.clock()
        retries: dict[str, datetime] = {}
        outcomes: list[dict[str, Any]] = []
        for item in pending:
            delay = retry_delay(item.notice.attempts) if item.temporary else None
            if delay is None:
                outcomes.append(
                    {
                        "id": item.notice.id,
                        "state": "failed",
                        "last_error": item.last_error[:500],
                        "route": item.route,
                    }
                )
            else:
                retries[item.notice.id] = now + delay
                outcomes.append(
                    {
                        "id": item.notice.id,
                        "state": "queued",
                        "not_before": now + delay,
                        "last_error": item.last_error[:500],
                        "route": item.route,
                    }
                )
        if outcomes:
            await outbox.record(self.engine, [], outcomes, now)
        return retries

    def _render(self, provider: SmsProvider, notice: ClaimedNotice) -> RenderedSms:
        budget = (
            self.settings.sms_unicode_segment_budget
            if provider.accents
            else self.settings.sms_segment_budget
        )
        return render_sms(
            self.texts,
            notice.kind,
            notice.params,
            accents=provider.accents,
            budget=budget,
            zone=self.settings.tz,
        )

    def _sent(self, item: _Pending, provider: str, rendered: RenderedSms | None) -> dict[str, Any]:
        values: dict[str, Any] = {
            "id": item.notice.id,
            "route": item.route,
            "state": "sent",
            "channel": "sms",
            "provider": provider,
            "sent_at": self.clock(),
            "last_error": None,
        }
        if rendered is not None:
            values |= {"text": rendered.text, "segments": rendered.segments}
        return values
