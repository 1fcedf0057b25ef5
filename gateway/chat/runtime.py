"""What a chat or delivery job opens for its run: database, Redis, HTTP session, Zalo."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.chat.tokens import DatabaseTokenStore, operator_alert
from gateway.delivery.queues import QueueClient
from gateway.settings import Settings
from gateway.storage.db import create_engine
from providers.zalo.client import ZaloClient


@dataclass
class JobResources:
    """Opened once per job (RQ runs each job in a fresh event loop)."""

    settings: Settings
    engine: AsyncEngine
    redis: Redis
    session: aiohttp.ClientSession
    zalo: ZaloClient | None
    queue: QueueClient


def zalo_client(
    s: Settings, engine: AsyncEngine, redis: Redis, session: aiohttp.ClientSession
) -> ZaloClient | None:
    """The Zalo client, or None when no Zalo app is configured."""
    if not s.zalo.enabled:
        return None
    return ZaloClient(
        s.zalo,
        session,
        redis,
        key_prefix=s.redis_key_prefix,
        store=DatabaseTokenStore(engine, s.zalo.app_id),
        on_alert=operator_alert(redis, s.redis_key_prefix),
    )


@asynccontextmanager
async def job_resources(s: Settings, *, pool_size: int = 2) -> AsyncIterator[JobResources]:
    engine = create_engine(s.database_url, writer=True, pool_size=pool_size)
    redis = Redis.from_url(s.redis_url, socket_connect_timeout=2, socket_timeout=10)
    session = aiohttp.ClientSession()
    queue = QueueClient(s)
    try:
        zalo = zalo_client(s, engine, redis, session)
        yield JobResources(s, engine, redis, session, zalo, queue)
    finally:
        queue.close()
        await session.close()
        await redis.aclose()
        await engine.dispose()
