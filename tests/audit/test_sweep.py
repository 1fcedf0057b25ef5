"""The audit sweep: the dossiers changed since a watermark kept in Redis, a bounded number
per run, looking back a minute for late commits, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from redis.asyncio import Redis

from gateway.audit.ledger import GRACE, AuditResult, audit_recent, watermark_key
from gateway.settings import Settings
from gateway.storage.tables import dossiers
from tests.audit.ledger_helpers import audits, code, ledger, post_all, writer
from tests.helpers import Gateway, event


async def test_the_sweep_drains_a_backlog_then_looks_back_only_a_minute(
    gateway: Gateway, settings: Settings
) -> None:
    for n in (1, 2, 3):
        await post_all(gateway, [event("dossier.received", code=code(n), applicant={"name": "A"})])
    redis = Redis.from_url(settings.redis_url)
    async with writer(settings.database_url) as engine:
        async with engine.begin() as conn:  # three distinct change times, in code order
            for n in (1, 2, 3):
                moment = datetime(2024, 4, 1, 2, n, tzinfo=UTC)
                await conn.execute(
                    dossiers.update().where(dossiers.c.code == code(n)).values(updated_at=moment)
                )
        now = datetime(2024, 4, 1, 3, 0, tzinfo=UTC)
        try:
            first = await audit_recent(engine, redis, settings, now, limit=2)
            assert first == AuditResult(dossiers=2, new_violations=2)
            assert set(await audits(engine)) == {code(1), code(2)}
            # Cut short: the next run goes on right after the last dossier audited.
            mark = await redis.get(watermark_key(settings))
            assert (
                mark == f"{datetime(2024, 4, 1, 2, 2, tzinfo=UTC).isoformat()}|{code(2)}".encode()
            )

            second = await audit_recent(engine, redis, settings, now, limit=2)
            assert second == AuditResult(dossiers=1, new_violations=1)
            # Caught up: the watermark is a minute before the run.
            mark = await redis.get(watermark_key(settings))
            assert mark == f"{(now - GRACE).isoformat()}|".encode()
            assert await audit_recent(engine, redis, settings, now, limit=2) == AuditResult()

            # A change committed late, with an updated_at inside the last minute, is seen.
            async with engine.begin() as conn:
                await conn.execute(
                    dossiers.update()
                    .where(dossiers.c.code == code(1))
                    .values(updated_at=now - timedelta(seconds=30))
                )
            third = await audit_recent(engine, redis, settings, now + timedelta(seconds=20))
            assert third == AuditResult(dossiers=1)
            assert len(await ledger(engine)) == 3
        finally:
            await redis.aclose()


async def test_an_unreadable_watermark_sweeps_from_the_start(
    gateway: Gateway, settings: Settings
) -> None:
    await post_all(gateway, [event("dossier.received", code=code(9))])
    redis = Redis.from_url(settings.redis_url)
    try:
        await redis.set(watermark_key(settings), b"yesterday")
        async with writer(settings.database_url) as engine:
            result = await audit_recent(engine, redis, settings, datetime.now(UTC))
            async with engine.connect() as conn:
                count = (
                    await conn.execute(sa.select(sa.func.count()).select_from(dossiers))
                ).scalar()
    finally:
        await redis.aclose()
    assert result.dossiers == count == 1
