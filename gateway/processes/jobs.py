"""RQ job functions: thin, idempotent, taking ids. Each runs its own event loop.

``deliver_batch`` sends a batch of notices (one job per batch amortises RQ's per-job
cost); ``relay`` puts back on the queue what should be there (after a Redis outage, a
crash, a deferral, a ZNS message without a receipt in time); ``sweep_deadlines`` records
late dossiers, creates automatic apologies and the follow-up questions; ``chat_drain``
answers one OA user's messages in order; ``chat_send`` sends staff replies;
``zns_receipts`` applies ZNS delivery receipts; ``audit_sweep`` audits the dossiers
changed since its last run (verdicts, the violations ledger); ``remind_consultations``
records the reminders owed to consulted agencies; ``retention`` erases the personal data
older than ``RETENTION_DAYS`` (see gateway.storage.retention). Running any of them twice
sends (or records, or erases) nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from rq import Queue

from gateway.audit import consultations, ledger
from gateway.chat import followups, inbox
from gateway.chat.conversation import Conversations, apply_zns_receipts
from gateway.chat.queue import ZNS_RECEIPTS, chat_queue_name, enqueue_drain, enqueue_receipts
from gateway.chat.runtime import job_resources
from gateway.delivery import deadlines, outbox
from gateway.delivery.limits import ProviderLimits
from gateway.delivery.queues import enqueue
from gateway.delivery.send import Sender
from gateway.delivery.zalo import ZaloChannels, zns_overdue
from gateway.domain.calendar import DEFAULT_OVERRIDES_FILE, WorkingCalendar, load_overrides
from gateway.domain.sanctions import load_ladder
from gateway.settings import Settings
from gateway.storage.db import create_engine
from gateway.storage.retention import RetentionResult, run_retention
from gateway.texts.templates import Texts
from gateway.trust.links import Links
from providers.registry import build_sms_providers

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@cache
def settings() -> Settings:
    """The worker process's settings, read once from the environment."""
    return Settings.from_env()


def _sync_redis(s: Settings) -> SyncRedis:
    return SyncRedis.from_url(s.redis_url, socket_connect_timeout=2, socket_timeout=5)


def _texts(s: Settings) -> Texts:
    return _texts_of(s.templates_dir, s.chat.hotline, s.chat.oa_name)


@cache
def _texts_of(directory: Path, hotline: str, oa_name: str) -> Texts:
    # Compiled templates live as long as the worker process, not one job.
    return Texts(directory, hotline=hotline, oa_name=oa_name)


def _calendar(s: Settings) -> WorkingCalendar:
    return _calendar_of(s.holiday_overrides_file, s.time_zone)


@cache
def _calendar_of(overrides: Path | None, time_zone: str) -> WorkingCalendar:
    return WorkingCalendar(load_overrides(overrides or DEFAULT_OVERRIDES_FILE), tz=time_zone)


@asynccontextmanager
async def _sender(s: Settings) -> AsyncIterator[Sender]:
    async with job_resources(s) as r:
        texts = _texts(s)
        yield Sender(
            settings=s,
            engine=r.engine,
            providers=build_sms_providers(s, r.session),
            limits=ProviderLimits(r.redis, s.redis_key_prefix, s.sms_rate_per_second),
            texts=texts,
            clock=_now,
            zalo=ZaloChannels(s, r.engine, r.zalo, texts, _now),
        )


async def _deliver(ids: list[str], s: Settings) -> dict[str, datetime]:
    async with _sender(s) as sender:
        try:
            return await sender.deliver_many(ids)
        except Exception:
            # Claimed notices keep their lease; when it runs out the relay brings them back.
            log.exception("delivery batch failed unexpectedly", extra={"count": len(ids)})
            return {}


def deliver_batch(notice_ids: list[str]) -> int:
    """Send the notices; schedule the temporarily failed ones again. Returns how many."""
    s = settings()
    retries = asyncio.run(_deliver(notice_ids, s))
    if retries:
        # One job at the latest time: back-offs in one batch are close to each other.
        enqueue(_sync_redis(s), s, [(i, "urgent") for i in retries], at=max(retries.values()))
    return len(notice_ids) - len(retries)


async def _relay(s: Settings) -> tuple[list[tuple[str, str]], list[str], bool]:
    async with job_resources(s, pool_size=1) as r:
        due = await outbox.due_for_relay(
            r.engine,
            _now(),
            grace=timedelta(seconds=s.relay_grace_seconds),
            lease=timedelta(seconds=s.delivery_lease_seconds),
            limit=5000,
        )
        overdue = await zns_overdue(r.engine, r.zalo, _now())
        due.extend((notice_id, "urgent") for notice_id in overdue)
        users = await inbox.pending_users(r.redis, s)
        receipts = bool(await inbox.take_receipts(r.redis, s, 1))
        return due, users, receipts


def relay() -> int:
    """Re-enqueue notices that should be on the queue (and ZNS notices without a receipt
    in time, for SMS); wake chat drains an outage may have missed. Returns how many notices."""
    s = settings()
    due, users, receipts = asyncio.run(_relay(s))
    redis = _sync_redis(s)
    if due:
        enqueue(redis, s, due)
        log.info("relay re-enqueued notices", extra={"count": len(due)})
    if users:
        enqueue_drain(redis, s, users)
    if receipts:
        enqueue_receipts(redis, s)
    return len(due)


async def _sweep(s: Settings) -> tuple[deadlines.SweepResult, followups.FollowUps]:
    calendar = _calendar(s)
    engine = create_engine(s.database_url, writer=True, pool_size=1)
    try:
        swept = await deadlines.sweep(engine, _now(), calendar)
        asked = await followups.run(
            engine,
            _now(),
            calendar,
            s.chat.result_check_working_days,
            Links.for_settings(s),
            zns_rating=bool(s.zalo.enabled and s.zalo.zns_templates.get("rating_request")),
        )
        return swept, asked
    finally:
        await engine.dispose()


def sweep_deadlines() -> int:
    """Record dossiers past due; send automatic apologies; ask the follow-up questions
    (result received? rating?). Returns the late count."""
    s = settings()
    result, asked = asyncio.run(_sweep(s))
    notices = [*result.apologies, *((i, "urgent") for i in asked.notice_ids)]
    if notices:
        enqueue(_sync_redis(s), s, notices)
    return result.late


async def _drain(s: Settings, user_id: str) -> int:
    async with job_resources(s) as r:
        conversation = Conversations(r, _texts(s), _calendar(s), _now)
        return await inbox.drain(r.redis, s, user_id, conversation.handle)


def chat_drain(user_id: str) -> int:
    """Answer one OA user's queued events, in order. Returns how many were handled."""
    return asyncio.run(_drain(settings(), user_id))


async def _chat_send(s: Settings, message_ids: list[int]) -> int:
    async with job_resources(s) as r:
        conversation = Conversations(r, _texts(s), _calendar(s), _now)
        return await conversation.send_stored(message_ids)


def chat_send(message_ids: list[int]) -> int:
    """Send stored staff replies through the OA. Returns how many went out."""
    return asyncio.run(_chat_send(settings(), message_ids))


async def _zns_receipts(s: Settings) -> tuple[int, bool]:
    async with job_resources(s, pool_size=1) as r:
        return await apply_zns_receipts(r, _now())


def zns_receipts() -> int:
    """Apply queued ZNS delivery receipts. Returns how many."""
    s = settings()
    applied, early = asyncio.run(_zns_receipts(s))
    if early:  # some attempts are still being recorded: come back shortly
        Queue(chat_queue_name(s), connection=_sync_redis(s)).enqueue_in(
            timedelta(seconds=2), ZNS_RECEIPTS, job_timeout=120
        )
    return applied


@cache
def _auditor() -> ledger.Auditor:
    # The ladder file is read once per worker process, like the calendar.
    s = settings()
    return ledger.Auditor(
        _calendar(s),
        load_ladder(s.audit.ladder_file),
        s.tz,
        s.audit.consultation_second_reminder_days,
    )


async def _audit(s: Settings) -> ledger.AuditResult:
    engine = create_engine(s.database_url, writer=True, pool_size=1)
    redis = Redis.from_url(s.redis_url, socket_connect_timeout=2, socket_timeout=10)
    try:
        return await ledger.audit_recent(engine, redis, s, _now(), auditor=_auditor())
    finally:
        await redis.aclose()
        await engine.dispose()


def audit_sweep() -> int:
    """Audit the dossiers changed since the last run (events, deadlines passed, reminders):
    verdicts, new violations with their suggested sanctions, findings no longer detected
    dismissed. Returns how many dossiers were audited."""
    result = asyncio.run(_audit(settings()))
    if result.new_violations or result.dismissed:
        log.info(
            "audit sweep",
            extra={
                "dossiers": result.dossiers,
                "new_violations": result.new_violations,
                "dismissed": result.dismissed,
            },
        )
    return result.dossiers


async def _remind(s: Settings) -> consultations.Reminders:
    engine = create_engine(s.database_url, writer=True, pool_size=1)
    try:
        return await consultations.sweep(
            engine, _now(), _calendar(s), s.audit.consultation_second_reminder_days
        )
    finally:
        await engine.dispose()


def remind_consultations() -> int:
    """Record the reminders owed to consulted agencies whose answer is overdue (the
    second copied to the Department of Home Affairs). Returns how many were new."""
    done = asyncio.run(_remind(settings()))
    if done.first or done.second:
        log.info("consultation reminders", extra={"first": done.first, "second": done.second})
    return done.first + done.second


async def _retention(s: Settings) -> RetentionResult:
    engine = create_engine(s.database_url, writer=True, pool_size=1)
    try:
        return await run_retention(engine, _now(), s.retention_days)
    finally:
        await engine.dispose()


def retention() -> int:
    """Erase chat texts, raw webhook payloads and the phone numbers of closed dossiers
    older than ``RETENTION_DAYS`` (it logs the counts). Returns how many rows changed."""
    return sum(asyncio.run(_retention(settings())).counts().values())
