"""The ingest writer's fast write path, on SQLite and PostgreSQL.

Statements compiled once and run with plain tuples must store byte for byte what
SQLAlchemy Core stores; on SQLite a dossier update names only the columns that changed (it
rewrites every index on a column named in SET, which made ingest slow down as the
database grew); on PostgreSQL the writer's round trips run on a loop of their own, so a
busy serving loop does not hold a group's transaction open.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine

from gateway.domain.events import body_fingerprint, parse_event
from gateway.storage import outbox
from gateway.storage.compiled import compile_write, insert_statement
from gateway.storage.db import Database
from gateway.storage.ingest import IngestWriter, Outcome, Submission
from gateway.storage.outbox import NewNotice
from gateway.storage.tables import dossiers, notices
from tests.helpers import CODE, event

# Not CODE: the PostgreSQL schema is shared with the tests above.
OTHER = "000.00.12.H19-240401-0077"
NOW = datetime(2024, 4, 2, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=7)))


def _submission(body: dict[str, Any]) -> Submission:
    return Submission("onestop", body_fingerprint(body), body, parse_event(body))


@contextmanager
def _statements(
    on_statement: Callable[[], object] | None = None,
) -> Iterator[list[tuple[str, str, float]]]:
    """Every SQL statement any engine runs meanwhile: (thread name, SQL, monotonic time)."""
    seen: list[tuple[str, str, float]] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append((threading.current_thread().name, statement, time.monotonic()))
        if on_statement is not None:
            on_statement()

    sa_event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(Engine, "before_cursor_execute", record)


async def _raw_rows(db: Database, ids: list[str]) -> list[dict[str, Any]]:
    """The stored notices as the driver returns them, no type processing."""
    async with db.reader.connect() as conn:
        result = await conn.execute(
            sa.text("SELECT * FROM notices WHERE id IN :ids ORDER BY id").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": ids},
        )
        columns = list(result.keys())
        raw = [dict(zip(columns, row, strict=True)) for row in result.all()]
    # asyncpg decodes JSONB to text either way; compare everything but the keys.
    return [{k: v for k, v in r.items() if k not in ("id", "dedupe_key")} for r in raw]


async def test_a_compiled_insert_stores_what_core_stores(database_url: str) -> None:
    db = Database.open(database_url)
    params = {"applicant_name": "Nguyễn Thị Ánh", "due": "10/04/2024", "n": 3, "ok": True}
    made = [
        NewNotice("receipt", CODE, "onestop", "evt-1", f"{CODE}/{n}", "+84912345678", params)
        for n in ("core", "compiled")
    ]
    core_row, fast_row = (outbox.notice_row(n, NOW) for n in made)
    try:
        async with db.writer.begin() as conn:
            await conn.run_sync(outbox.insert_all, made[:1], NOW)

            def fast(sync: Any) -> None:
                names = tuple(fast_row)
                compiled = compile_write(insert_statement(notices, names), names, sync.dialect)
                compiled.execute_many(sync, [fast_row])

            await conn.run_sync(fast)
        core, compiled = await _raw_rows(db, [core_row["id"], fast_row["id"]])
        by_id = {core_row["id"]: core, fast_row["id"]: compiled}
        assert by_id[core_row["id"]] == by_id[fast_row["id"]]
        assert by_id[fast_row["id"]]["created_at"] is not None
    finally:
        await db.close()


async def test_a_dossier_update_on_sqlite_names_only_the_columns_that_changed(
    database_url: str,
) -> None:
    db = Database.open(database_url)
    writer = IngestWriter(db)
    await writer.start()
    try:
        (received,) = await writer.submit([_submission(event("dossier.received"))])
        assert isinstance(received, Outcome)
        with _statements() as seen:
            (processing,) = await writer.submit([_submission(event("dossier.processing"))])
        assert isinstance(processing, Outcome) and not processing.replayed
        (update,) = [sql for _, sql, _ in seen if sql.startswith("UPDATE dossiers")]
        assigned = update.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
        names = {part.split("=", 1)[0].strip() for part in assigned.split(",")}
        assert {"state", "state_at", "event_count", "updated_at"} <= names
        untouched = {"phone_e164", "agency_code", "received_at", "due_at"}
        if db.dialect == "sqlite":
            # Unchanged: SQLite would rewrite these columns' index entries for nothing.
            assert not names & untouched
        else:
            # PostgreSQL skips the indexes of unchanged values itself: one statement.
            assert untouched <= names
        assert "code" not in names
        async with db.reader.connect() as conn:
            row = (await conn.execute(sa.select(dossiers).where(dossiers.c.code == CODE))).one()
        assert row.state == "processing"
        assert row.event_count == 2
        assert row.phone_e164 == "+84912345678"
        assert row.updated_at.tzinfo is not None
    finally:
        await writer.stop()
        await db.close()


@pytest.mark.postgres
async def test_postgres_writer_commits_while_the_serving_loop_is_busy(
    postgres_schema: str,
) -> None:
    db = Database.open(postgres_schema)
    writer = IngestWriter(db)
    await writer.start()
    try:
        await writer.submit([_submission(event("dossier.received", code=OTHER))])
        loop = asyncio.get_running_loop()
        started = asyncio.Event()
        with _statements(lambda: loop.call_soon_threadsafe(started.set)) as seen:
            submitted = asyncio.ensure_future(
                writer.submit([_submission(event("dossier.processing", code=OTHER))])
            )
            await asyncio.wait_for(started.wait(), 10)
            # The serving loop is stuck (a slow handler, a long JSON encode) for a while.
            blocked_until = time.monotonic() + 1.0
            time.sleep(1.0)  # noqa: ASYNC251 - blocking the loop is the point
            (outcome,) = await submitted
        assert isinstance(outcome, Outcome) and not outcome.replayed
        inserts = [(thread, at) for thread, sql, at in seen if sql.startswith("INSERT INTO events")]
        assert inserts and all(thread == "ingest-writer" for thread, _ in inserts)
        # Every statement of the group ran while the serving loop was blocked.
        assert max(at for _, _, at in seen) < blocked_until
        assert {thread for thread, _, _ in seen} == {"ingest-writer"}
    finally:
        await writer.stop()
        await db.close()
