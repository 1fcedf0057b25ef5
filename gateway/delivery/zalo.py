"""The Zalo steps of delivery: OA message, then ZNS, before a notice is left to SMS.

For each claimed notice the channel plan (``gateway.domain.routing``) is made from the
OA user linked to its phone (or named on the notice) and the channels tried before. OA
and ZNS attempts are written as ``sending`` before the call, like SMS attempts, so a
crash never sends twice: a ZNS call is repeated with the same ``tracking_id`` (Zalo
answers a duplicate with the first message), an OA call is never repeated blind.

A ZNS message counts as sent when Zalo accepts it; its delivery receipt arrives later by
webhook. Without a receipt by ``ZNS_RECEIPT_DEADLINE_SECONDS`` the relay asks Zalo for
the status and, unless it was delivered, sends the notice by SMS (:func:`zns_overdue`);
for a one-time code the deadline is at most :data:`OTP_RECEIPT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.delivery import outbox, zns_params
from gateway.delivery.outbox import ClaimedNotice
from gateway.domain.routing import NAMED_USER_ONLY_KINDS, Plan, ZaloContact, plan_channels
from gateway.errors import GatewayError, MaybeSent, TemporaryProviderError
from gateway.settings import Settings
from gateway.storage.tables import chat_messages, deliveries, notices, zalo_users
from gateway.texts.sms import REPLY_PARAM
from gateway.texts.templates import Texts
from gateway.texts.zalo import render_oa
from gateway.trust.links import LINK_PARAM
from gateway.trust.otp import OTP_KIND
from providers.zalo.client import ZaloClient
from providers.zalo.oa import Button, OaText

log = logging.getLogger(__name__)

OA = "zalo_oa"
ZNS = "zalo_zns"
CONCURRENCY = 16
# A one-time code sent by ZNS without a receipt by then goes by SMS too (it lives 5 min).
OTP_RECEIPT_SECONDS = 60
# A temporary Zalo failure keeps the notice on its channel for this many claims; after
# that it falls back, so a long Zalo outage delays notices instead of failing them.
TEMPORARY_TRIES = 3


def oa_request_id(notice_id: str) -> str:
    return f"{notice_id}-oa"


def zns_tracking_id(notice_id: str) -> str:
    """Letters and digits only, at most 48: what Zalo accepts as ``tracking_id``."""
    return f"{notice_id}zns"


@dataclass
class Routed:
    """A notice on its way: the plan, what happened so far, and what is left."""

    notice: ClaimedNotice
    plan: Plan
    notes: list[str] = field(default_factory=list)

    def route(self) -> str:
        return "; ".join([self.plan.describe(), *self.notes])[:300]


@dataclass
class ZaloOutcome:
    """What the Zalo steps decided for a batch."""

    for_sms: list[Routed]
    retry: list[Routed]


@dataclass
class ZaloChannels:
    """OA and ZNS sending for one delivery job (``client`` is None without Zalo settings)."""

    settings: Settings
    engine: AsyncEngine
    client: ZaloClient | None
    texts: Texts
    clock: Callable[[], datetime]

    async def run(self, claimed: list[ClaimedNotice], earlier: dict[str, Any]) -> ZaloOutcome:
        """Send what goes by Zalo; return the notices left for SMS and those to retry."""
        contacts = await self._contacts(claimed)
        outcomes: list[dict[str, Any]] = []
        oa_batch: list[Routed] = []
        zns_batch: list[Routed] = []
        for_sms: list[Routed] = []
        for notice in claimed:
            oa_before = earlier.get(oa_request_id(notice.id))
            zns_before = earlier.get(zns_tracking_id(notice.id))
            for before, channel, provider in ((oa_before, "oa", OA), (zns_before, "zns", ZNS)):
                if before is not None and before.state in ("accepted", "delivered"):
                    outcomes.append(
                        self._sent(notice.id, channel, provider, "sent before a restart")
                    )
                    break
            else:
                if oa_before is not None and oa_before.state in ("sending", "unknown"):
                    outcomes.append(
                        {
                            "id": notice.id,
                            "state": "unknown",
                            "last_error": "zalo_oa: may have been sent before a crash",
                        }
                    )
                    continue
                failed = {
                    channel: f"failed before ({before.error or before.error_code or 'no detail'})"
                    for before, channel in ((oa_before, "oa"), (zns_before, "zns"))
                    if before is not None and before.state == "failed"
                }
                plan = self._plan(notice, contacts, failed)
                routed = Routed(notice, plan)
                if zns_before is not None and zns_before.state == "sending":
                    zns_batch.append(routed)  # same tracking id: Zalo will not send it twice
                elif not plan.steps:
                    outcomes.append(
                        {
                            "id": notice.id,
                            "state": "failed",
                            "route": routed.route(),
                            "last_error": "no channel can reach the citizen",
                        }
                    )
                elif plan.steps[0].channel == "oa":
                    oa_batch.append(routed)
                elif plan.steps[0].channel == "zns":
                    zns_batch.append(routed)
                else:
                    for_sms.append(routed)
        if outcomes:
            await outbox.record(self.engine, [], outcomes, self.clock())

        retry: list[Routed] = []
        after_oa = await self._send_oa(oa_batch, contacts, retry)
        for routed in after_oa:
            nxt = _next_channel(routed.plan, "oa")
            (zns_batch if nxt == "zns" else for_sms if nxt == "sms" else []).append(routed)
            if nxt is None:
                await self._exhausted(routed)
        after_zns = await self._send_zns(zns_batch, retry)
        for routed in after_zns:
            if _next_channel(routed.plan, "zns") == "sms":
                for_sms.append(routed)
            else:
                await self._exhausted(routed)
        return ZaloOutcome(for_sms, retry)

    def _plan(
        self, notice: ClaimedNotice, contacts: dict[str, ZaloContact], failed: dict[str, str]
    ) -> Plan:
        zalo = self.settings.zalo
        contact = contacts.get(notice.zalo_user_id or "")
        if contact is None and notice.kind not in NAMED_USER_ONLY_KINDS:
            contact = contacts.get(notice.phone_e164 or "")
        if self.client is None:
            contact = None
        return plan_channels(
            notice.kind,
            phone_e164=notice.phone_e164,
            contact=contact,
            # A ZNS template is fixed on Zalo's side: a staff member's own reply cannot go in it.
            zns_template=(
                zalo.zns_templates.get(notice.kind)
                if self.client and not notice.params.get(REPLY_PARAM)
                else None
            ),
            failed=failed,
            now=self.clock(),
            window_days=zalo.window_days,
            has_link=bool(notice.params.get(LINK_PARAM)),
        )

    async def _contacts(self, claimed: list[ClaimedNotice]) -> dict[str, ZaloContact]:
        """OA users by notice user id (they started it on the OA) and by subscribed phone."""
        user_ids = {n.zalo_user_id for n in claimed if n.zalo_user_id}
        phones = {n.phone_e164 for n in claimed if n.phone_e164 and not n.zalo_user_id}
        if self.client is None or not (user_ids or phones):
            return {}
        found: dict[str, ZaloContact] = {}
        async with self.engine.connect() as conn:
            if user_ids:
                for row in await conn.execute(
                    sa.select(zalo_users).where(zalo_users.c.user_id.in_(sorted(user_ids)))
                ):
                    found[row.user_id] = ZaloContact(
                        row.user_id, row.follows, row.last_interaction_at, True
                    )
            if phones:
                rows = await conn.execute(
                    sa.select(zalo_users)
                    .where(
                        zalo_users.c.phone_e164.in_(sorted(phones)),
                        zalo_users.c.subscribed_at.is_not(None),
                    )
                    .order_by(zalo_users.c.last_interaction_at)
                )
                for row in rows:  # the most recent interaction wins
                    found[row.phone_e164] = ZaloContact(
                        row.user_id, row.follows, row.last_interaction_at, True
                    )
        return found

    async def _send_oa(
        self, batch: list[Routed], contacts: dict[str, ZaloContact], retry: list[Routed]
    ) -> list[Routed]:
        """Send OA messages; return the notices that must try their next channel."""
        if not batch or self.client is None:
            return batch
        client = self.client
        now = self.clock()
        await outbox.start_attempts(
            self.engine, [(oa_request_id(r.notice.id), r.notice.id, OA) for r in batch], "oa", now
        )
        gate = asyncio.Semaphore(CONCURRENCY)

        async def send(routed: Routed) -> tuple[str, str, str] | Exception:
            notice = routed.notice
            contact = contacts.get(notice.zalo_user_id or "") or contacts[notice.phone_e164 or ""]
            try:
                rendered = render_oa(self.texts, notice.kind, notice.params, self.settings.tz)
                message = OaText(
                    rendered.text, tuple(Button(b.title, b.payload) for b in rendered.buttons)
                )
                async with gate:
                    sent = await client.send_oa(contact.user_id, message)
            except GatewayError as exc:
                return exc
            return sent.message_id, contact.user_id, rendered.text

        results = await asyncio.gather(*(send(r) for r in batch))
        attempts: list[dict[str, Any]] = []
        outcomes: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        left: list[Routed] = []
        for routed, result in zip(batch, results, strict=True):
            notice_id = routed.notice.id
            if isinstance(result, tuple):
                message_id, user_id, text = result
                attempts.append(
                    {
                        "request_id": oa_request_id(notice_id),
                        "state": "accepted",
                        "provider_message_id": message_id,
                    }
                )
                outcome = self._sent(notice_id, "oa", OA, routed.route())
                outcomes.append(outcome | {"text": text, "segments": None})
                history.append(
                    {
                        "user_id": user_id,
                        "direction": "notice",
                        "dedupe_key": f"oa:{message_id}",
                        "text": text,
                        "dossier_code": routed.notice.dossier_code,
                        "payload": {"notice_id": notice_id, "kind": routed.notice.kind},
                        "handled_at": now,
                        "created_at": now,
                    }
                )
                continue
            if isinstance(result, MaybeSent):
                # Zalo may have shown it: neither again nor by SMS; a person checks.
                detail = f"zalo_oa: {result}"[:500]
                attempts.append(
                    {"request_id": oa_request_id(notice_id), "state": "unknown", "error": detail}
                )
                outcomes.append(
                    {
                        "id": notice_id,
                        "state": "unknown",
                        "route": routed.route(),
                        "last_error": detail,
                    }
                )
                continue
            self._failed_step(routed, "oa", result, attempts, oa_request_id(notice_id), left, retry)
        await outbox.record(self.engine, attempts, outcomes, self.clock())
        if history:
            async with self.engine.begin() as conn:
                await conn.execute(chat_messages.insert(), history)
        return left

    async def _send_zns(self, batch: list[Routed], retry: list[Routed]) -> list[Routed]:
        """Send ZNS messages; return the notices that must try SMS."""
        if not batch or self.client is None:
            return batch
        client = self.client
        now = self.clock()
        await outbox.start_attempts(
            self.engine,
            [(zns_tracking_id(r.notice.id), r.notice.id, ZNS) for r in batch],
            "zns",
            now,
        )
        gate = asyncio.Semaphore(CONCURRENCY)
        templates = self.settings.zalo.zns_templates

        async def send(routed: Routed) -> str | Exception:
            notice = routed.notice
            mapping = self.settings.zalo.zns_params.get(notice.kind, {})
            try:
                template_id = templates[notice.kind]
                template = await client.template_info(template_id)
                # The start-up check again, against the template as Zalo has it now.
                zns_params.refuse_if_mismatched(notice.kind, template, mapping)
                data = zns_params.template_data(template, mapping, notice.params, self.settings.tz)
                assert notice.phone_e164 is not None  # the plan has no ZNS step without one
                async with gate:
                    accepted = await client.send_zns(
                        notice.phone_e164, template_id, data, zns_tracking_id(notice.id)
                    )
            except GatewayError as exc:
                return exc
            return accepted.msg_id

        results = await asyncio.gather(*(send(r) for r in batch))
        deadline = now + timedelta(seconds=self.settings.zalo.zns_receipt_deadline_seconds)
        attempts: list[dict[str, Any]] = []
        outcomes: list[dict[str, Any]] = []
        left: list[Routed] = []
        for routed, result in zip(batch, results, strict=True):
            tracking_id = zns_tracking_id(routed.notice.id)
            if isinstance(result, str):
                attempts.append(
                    {"request_id": tracking_id, "state": "accepted", "provider_message_id": result}
                )
                outcome = self._sent(routed.notice.id, "zns", ZNS, routed.route())
                due = deadline
                if routed.notice.kind == OTP_KIND:  # a code is awaited: SMS sooner
                    due = min(deadline, now + timedelta(seconds=OTP_RECEIPT_SECONDS))
                outcomes.append(outcome | {"receipt_due_at": due})
                continue
            self._failed_step(routed, "zns", result, attempts, tracking_id, left, retry)
        await outbox.record(self.engine, attempts, outcomes, self.clock())
        return left

    def _failed_step(
        self,
        routed: Routed,
        channel: str,
        error: Exception,
        attempts: list[dict[str, Any]],
        request_id: str,
        left: list[Routed],
        retry: list[Routed],
    ) -> None:
        """Record a failed OA/ZNS call: retry later on temporary errors, else fall back."""
        detail = getattr(error, "detail", str(error))[:500]
        code = getattr(error, "code", None)
        if isinstance(error, TemporaryProviderError) and routed.notice.attempts < TEMPORARY_TRIES:
            attempts.append(
                {"request_id": request_id, "state": "retry", "error_code": code, "error": detail}
            )
            routed.notes.append(f"{channel}: {detail}; will retry")
            retry.append(routed)
            return
        attempts.append(
            {"request_id": request_id, "state": "failed", "error_code": code, "error": detail}
        )
        routed.notes.append(f"{channel} failed: {detail}")
        log.info(
            "zalo channel failed, falling back",
            extra={"notice": routed.notice.id, "channel": channel, "code": code},
        )
        left.append(routed)

    async def _exhausted(self, routed: Routed) -> None:
        await outbox.record(
            self.engine,
            [],
            [
                {
                    "id": routed.notice.id,
                    "state": "failed",
                    "route": routed.route(),
                    "last_error": "no channel left: " + (routed.notes[-1] if routed.notes else ""),
                }
            ],
            self.clock(),
        )

    def _sent(self, notice_id: str, channel: str, provider: str, route: str) -> dict[str, Any]:
        return {
            "id": notice_id,
            "state": "sent",
            "channel": channel,
            "provider": provider,
            "sent_at": self.clock(),
            "last_error": None,
            "route": route,
        }


def _next_channel(plan: Plan, after: str) -> str | None:
    channels = [step.channel for step in plan.steps]
    index = channels.index(after) + 1 if after in channels else 0
    return channels[index] if index < len(channels) else None


async def zns_overdue(
    engine: AsyncEngine, client: ZaloClient | None, now: datetime, *, limit: int = 200
) -> list[str]:
    """ZNS notices whose receipt is overdue: delivered ones are recorded, the others fall
    back to SMS. Returns the ids to put back on the queue."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(notices.c.id, notices.c.route)
                .where(notices.c.receipt_due_at <= now, notices.c.state == "sent")
                .order_by(notices.c.receipt_due_at)
                .limit(limit)
            )
        ).all()
    requeue: list[str] = []
    for row in rows:
        status = "pending"
        async with engine.connect() as conn:
            message_id = (
                await conn.execute(
                    sa.select(deliveries.c.provider_message_id).where(
                        deliveries.c.request_id == zns_tracking_id(row.id)
                    )
                )
            ).scalar()
        if client is not None and message_id:
            try:
                status = await client.zns_status(message_id)
            except GatewayError as exc:
                log.warning("ZNS status unavailable", extra={"notice": row.id, "error": exc.detail})
        if status == "delivered":
            await outbox.apply_receipt(engine, ZNS, message_id, None, "delivered", "", now)
            continue
        async with engine.begin() as conn:
            await conn.execute(
                deliveries.update()
                .where(
                    deliveries.c.request_id == zns_tracking_id(row.id),
                    deliveries.c.state == "accepted",
                )
                .values(state="failed", error="no delivery receipt by the deadline", updated_at=now)
            )
            moved = await conn.execute(
                notices.update()
                .where(notices.c.id == row.id, notices.c.state == "sent")
                .values(
                    state="queued",
                    receipt_due_at=None,
                    channel=None,
                    provider=None,
                    route=f"{row.route or ''}; zns: no receipt by the deadline"[:300],
                    updated_at=now,
                )
            )
        if moved.rowcount:
            requeue.append(row.id)
    return requeue
