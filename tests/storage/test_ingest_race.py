"""Two gateway processes on one PostgreSQL ingest events of the same *new* dossiers.

``SELECT … FOR UPDATE`` cannot lock a row that does not exist yet, so without more both
writers would read "no such dossier", both insert it, and one group would fail on the
unique key and be retried event by event. The writer serialises per dossier code
(transaction-scoped advisory locks, taken in sorted order) before it reads anything: here
two writers with engines of their own — as two ``HTTP_WORKERS`` processes have — race on
the same dossiers, and every event is recorded exactly once, with no group failing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.domain.events import body_fingerprint, parse_event
from gateway.storage.db import Database
from gateway.storage.ingest import IngestWriter, Outcome, Submission
from tests.conftest import truncate_postgres
from tests.helpers import event

pytestmark = pytest.mark.postgres

ROUNDS = 4
CODES_PER_ROUND = 24


def _submission(body: dict[str, Any]) -> Submission:
    return Submission("onestop", body_fingerprint(body), body, parse_event(body))


def _bodies(code: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What each process is posted for one new dossier: the shared events reach both."""
    received = event("dossier.received", code=code)
    delayed = event("dossier.delayed", code=code, at="2024-04-08T10:00:00+07:00")
    processing = event("dossier.processing", code=code, id=f"a-{code}")
    fees = event("dossier.fees_due", code=code, id=f"b-{code}", at="2024-04-03T09:00:00+07:00")
    return [received, processing, delayed], [received, fees, delayed]


async def _post_all(writer: IngestWriter, bodies: list[dict[str, Any]]) -> list[Any]:
    # One submit per event, all at once, as concurrent HTTP requests would.
    answers = await asyncio.gather(*(writer.submit([_submission(b)]) for b in bodies))
    return [outcome for (outcome,) in answers]


async def _count(db: Database, table: str) -> int:
    async with db.reader.connect() as conn:
        return int((await conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}"))).scalar_one())


async def test_two_writers_on_the_same_new_dossiers_record_every_event_once(
    postgres_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    await truncate_postgres(postgres_schema)
    caplog.set_level(logging.INFO, logger="gateway.storage.ingest")
    first, second = Database.open(postgres_schema), Database.open(postgres_schema)
    # Small groups: many transactions per round, each holding several dossiers at once.
    writers = [IngestWriter(first, max_group=8), IngestWriter(second, max_group=8)]
    for writer in writers:
        await writer.start()
    recorded: Counter[str] = Counter()
    replayed: Counter[str] = Counter()
    posted: set[str] = set()
    try:
        for round_ in range(ROUNDS):
            codes = [f"000.00.12.H19-24040{round_ + 1}-{n:04d}" for n in range(CODES_PER_ROUND)]
            a_bodies, b_bodies = [], []
            for code in codes:
                a, b = _bodies(code)
                a_bodies += a
                b_bodies += b
            answers = await asyncio.gather(
                _post_all(writers[0], a_bodies), _post_all(writers[1], b_bodies)
            )
            for bodies, outcomes in zip((a_bodies, b_bodies), answers, strict=True):
                for body, outcome in zip(bodies, outcomes, strict=True):
                    assert isinstance(outcome, Outcome), (body["id"], outcome)
                    (replayed if outcome.replayed else recorded)[body["id"]] += 1
                    posted.add(body["id"])
        events_stored = await _count(first, "events")
        dossiers_stored = await _count(first, "dossiers")
    finally:
        for writer in writers:
            await writer.stop()
        await first.close()
        await second.close()

    assert set(recorded) == posted
    assert set(recorded.values()) == {1}, "an event recorded twice"
    # The shared received and delayed events were posted twice: once new, once a replay.
    assert sum(replayed.values()) == 2 * ROUNDS * CODES_PER_ROUND
    assert events_stored == len(posted) == 4 * ROUNDS * CODES_PER_ROUND
    assert dossiers_stored == ROUNDS * CODES_PER_ROUND
    assert [w.groups_retried for w in writers] == [0, 0], "a group fell back to one by one"
    assert sum(w.groups_written for w in writers) > 2 * ROUNDS, "the writers never raced"
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == []
