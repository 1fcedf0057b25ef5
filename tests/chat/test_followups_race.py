"""Two crons scheduling the same result checks at once: the second one's insert yields.

On PostgreSQL two workers started without ``--no-cron`` ran the follow-ups at the same
moment; both picked the same finished dossiers and the second failed its whole job on the
result check's primary key. SQLite has one writer, so the race cannot happen there.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.chat import followups
from gateway.http.keys import CALENDAR, DATABASE
from gateway.storage.tables import result_checks
from tests.helpers import CODE, Gateway, event


async def test_two_crons_scheduling_the_same_checks_do_not_fail(gateway: Gateway) -> None:
    if gateway.settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite has a single writer: two schedulers cannot interleave")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    dates = {"received_at": start.isoformat(), "due_at": (start + timedelta(days=10)).isoformat()}
    for minutes, type_ in enumerate(("dossier.received", "dossier.finished")):
        at = (start + timedelta(minutes=minutes)).isoformat()
        status, body, _ = await gateway.post(event(type_, at=at, **dates))
        assert status == 202, body
    app = gateway.client.app
    engine, calendar = app[DATABASE].writer, app[CALENDAR]
    now = datetime.now(UTC) + timedelta(minutes=1)
    async with engine.connect() as first, engine.connect() as second:
        await first.begin()
        await second.begin()
        assert await followups._schedule(first, now, calendar, 2) == 1
        # The second sees no committed check yet, picks the same dossier and waits on the
        # first's uncommitted row.
        racing = asyncio.create_task(followups._schedule(second, now, calendar, 2))
        await asyncio.sleep(0.3)
        assert not racing.done()
        await first.commit()
        await racing  # before: UniqueViolation on pk_result_checks
        await second.commit()
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(result_checks))).all()
    assert [row.dossier_code for row in rows] == [CODE]
