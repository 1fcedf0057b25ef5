"""Where the OA's rotating token pair lives, and how an operator hears it was lost.

The pair is kept in the database (a Redis without persistence would forget it, and a
lost refresh token means an OA admin must grant access again); the refresh itself is
single-flight under a Redis lock inside the Zalo client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.settings import Settings
from gateway.storage.db import create_engine
from gateway.storage.tables import zalo_tokens
from providers.zalo.tokens import TokenPair

log = logging.getLogger(__name__)


class DatabaseTokenStore:
    """The token pair of one Zalo app, one row of ``zalo_tokens``."""

    def __init__(self, engine: AsyncEngine, app_id: str) -> None:
        self._engine = engine
        self._app_id = app_id

    async def load(self) -> TokenPair | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(zalo_tokens).where(zalo_tokens.c.app_id == self._app_id)
                )
            ).first()
        if row is None:
            return None
        return TokenPair(row.access_token, row.refresh_token, row.expires_at.timestamp())

    async def save(self, pair: TokenPair) -> None:
        values = {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "expires_at": datetime.fromtimestamp(pair.expires_at, UTC),
            "updated_at": datetime.now(UTC),
        }
        async with self._engine.begin() as conn:
            updated = await conn.execute(
                zalo_tokens.update().where(zalo_tokens.c.app_id == self._app_id).values(**values)
            )
            if not updated.rowcount:
                await conn.execute(zalo_tokens.insert().values(app_id=self._app_id, **values))


def alert_key(prefix: str) -> str:
    return f"{prefix}zalo:alert"


async def replace_refresh_token(settings: Settings, refresh_token: str) -> None:
    """Store ``refresh_token`` with an expired access token, so the next call refreshes
    with it, and clear the operator alert: what an operator does after an OA admin
    granted access again (``tthc zalo set-refresh-token``)."""
    engine = create_engine(settings.database_url, writer=True)
    try:
        await DatabaseTokenStore(engine, settings.zalo.app_id).save(
            TokenPair("", refresh_token, 0.0)
        )
    finally:
        await engine.dispose()
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2)
    try:
        await redis.delete(alert_key(settings.redis_key_prefix))
    finally:
        await redis.aclose()


def operator_alert(redis: Redis, prefix: str) -> Callable[[str], Awaitable[None]]:
    """Log the failure loudly and keep it in Redis, where ``/readyz`` reports it."""

    async def alert(reason: str) -> None:
        log.error("zalo token refresh failed: an OA admin must act", extra={"reason": reason})
        try:
            await redis.set(alert_key(prefix), f"{datetime.now(UTC).isoformat()} {reason}")
        except Exception:  # the log line above is the alert of last resort
            log.exception("could not record the zalo alert in redis")

    return alert
