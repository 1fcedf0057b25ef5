"""RQ job functions: thin, idempotent, taking ids. Each runs its own event loop.

``deliver_batch`` sends a batch of notices (one job per batch amortises RQ's per-job
cost); ``relay`` puts back on the queue what should be there (after a Redis outage, a
crash, a deferral); ``sweep_deadlines`` records late dossiers and creates automatic
apologies. Running any of them twice sends nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import aiohttp
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from gateway.delivery import deadlines, outbox
from gateway.delivery.limits import ProviderLimits
from gateway.delivery.queues import enqueue
from gateway.delivery.send import Sender
from gateway.domain.calendar import DEFAULT_OVERRIDES_FILE, WorkingCalendar, load_overrides
from gateway.settings import Settings
from gateway.storage.db import create_engine
from gateway.texts import Texts
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


@cache
def _texts(directory: Path) -> Texts:
    # Compiled templates live as long as the worker process, not one job.
    return Texts(directory)


@asynccontextmanager
async def _sender(s: Settings) -> AsyncIterator[Sender]:
    engine = create_engine(s.database_url, writer=True, pool_size=2)
    redis = Redis.from_url(s.redis_url)
    session = aiohttp.ClientSession()
    try:
        yield Sender(
            settings=s,
            engine=engine,
            providers=build_sms_providers(s, session),
            limits=ProviderLimits(redis, s.redis_key_prefix, s.sms_rate_per_second),
            texts=_texts(s.templates_dir),
            clock=_now,
        )
    finally:
        await session.close()
        await redis.aclose()
        await engine.dispose()


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


async def _relay(s: Settings) -> list[tuple[str, str]]:
    engine = create_engine(s.database_url, writer=True, pool_size=1)
    try:
        return await outbox.due_for_relay(
            engine,
            _now(),
            grace=timedelta(seconds=s.relay_grace_seconds),
            lease=timedelta(seconds=s.delivery_lease_seconds),
            limit=5000,
        )
    finally:
        await engine.dispose()


def relay() -> int:
    """Re-enqueue notices that should be on the queue; returns how many."""
    s = settings()
    due = asyncio.run(_relay(s))
    if due:
        enqueue(_sync_redis(s), s, due)
        log.info("relay re-enqueued notices", extra={"count": len(due)})
    return len(due)


async def _sweep(s: Settings) -> deadlines.SweepResult:
    calendar = WorkingCalendar(
        load_overrides(s.holiday_overrides_file or DEFAULT_OVERRIDES_FILE), tz=s.time_zone
    )
    engine = create_engine(s.database_url, writer=True, pool_size=1)
    try:
        return await deadlines.sweep(engine, _now(), calendar)
    finally:
        await engine.dispose()


def sweep_deadlines() -> int:
    """Record dossiers past due; send automatic apologies. Returns the late count."""
    s = settings()
    result = asyncio.run(_sweep(s))
    if result.apologies:
        enqueue(_sync_redis(s), s, result.apologies)
    return result.late
