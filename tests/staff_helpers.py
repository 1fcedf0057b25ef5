"""Helpers for the tests of reports, handoffs and staff users.

``tests/conftest.py`` empties only the event tables between PostgreSQL tests; these
tests also need the report, chat and staff tables empty, which :func:`empty_staff_tables`
does (SQLite databases are fresh copies already).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from redis import Redis
from rq import Queue
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.chat.queue import chat_queue_name
from gateway.delivery.queues import queue_names
from gateway.settings import Settings
from gateway.storage.tables import chat_messages, dossiers, handoffs, zalo_users

STAFF_TABLES = (
    "reports",
    "report_transitions",
    "handoffs",
    "chat_messages",
    "staff_users",
    "zalo_users",
    "ratings",
    "result_checks",
)


async def empty_staff_tables(database_url: str) -> None:
    """Empty the report, chat and staff tables of a PostgreSQL test schema."""
    if not database_url.startswith("postgresql"):
        return
    server, _, schema = database_url.partition("?schema=")
    conn = await asyncpg.connect(server)
    try:
        names = ", ".join(f'"{schema}".{t}' for t in STAFF_TABLES)
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY")
    finally:
        await conn.close()


async def seed_dossier(
    engine: AsyncEngine,
    code: str,
    *,
    agency: tuple[str, str] = ("000.00.12.H19", "Sở Xây dựng"),
    finished_by: tuple[str, str] | None = ("cc-0123", "Trần Thị Bình"),
    phone: str | None = "+84912345678",
) -> None:
    """A finished dossier, written straight into the table."""
    now = datetime(2026, 4, 20, 2, 0, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(
            dossiers.insert().values(
                code=code,
                state="finished",
                dvcqg_status=9,
                state_at=now,
                procedure_code="1.004227",
                procedure_name="Cấp giấy phép xây dựng",
                agency_code=agency[0],
                agency_name=agency[1],
                applicant_name="Nguyễn Văn An",
                phone_e164=phone,
                received_at=now,
                due_at=now,
                finished_at=now,
                finished_by_id=finished_by[0] if finished_by else None,
                finished_by_name=finished_by[1] if finished_by else None,
                reschedule_count=0,
                supplement_count=0,
                event_count=2,
                created_at=now,
                updated_at=now,
            )
        )


async def seed_handoff(
    engine: AsyncEngine,
    user_id: str,
    *,
    status: str = "open",
    messages: tuple[str, ...] = ("Tôi muốn gặp cán bộ",),
    at: datetime = datetime(2026, 4, 29, 2, 0, tzinfo=UTC),
    phone: str | None = "+84912345678",
) -> int:
    """A handoff of an OA user who proved their phone, with the citizen's messages."""
    async with engine.begin() as conn:
        await conn.execute(
            zalo_users.insert().values(
                user_id=user_id,
                display_name="Nguyễn Văn An",
                follows=True,
                phone_e164=phone,
                verified_at=at if phone else None,
                created_at=at,
                updated_at=at,
            )
        )
        handoff_id = (
            await conn.execute(
                handoffs.insert()
                .values(
                    user_id=user_id,
                    status=status,
                    opened_at=at,
                    closed_at=at if status == "closed" else None,
                    last_message_at=at,
                )
                .returning(handoffs.c.id)
            )
        ).scalar_one()
        for index, text in enumerate(messages):
            await conn.execute(
                chat_messages.insert().values(
                    user_id=user_id,
                    direction="in",
                    dedupe_key=f"{user_id}-{index}",
                    event_name="user_send_text",
                    text=text,
                    handoff_id=handoff_id,
                    handled_at=at,
                    created_at=at,
                )
            )
    return int(handoff_id)


async def rows(engine: AsyncEngine, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
    """Every row of ``table`` (matching ``where``), by primary key."""
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(table).where(*where).order_by(*table.primary_key.columns)
        )
        return [dict(r._mapping) for r in result]


def queued_jobs(settings: Settings) -> dict[str, list[tuple[str, Any]]]:
    """The jobs waiting on this test's urgent, bulk and chat queues: (function, args)."""
    redis = Redis.from_url(settings.redis_url)
    try:
        return {
            name.removeprefix(settings.redis_key_prefix): [
                (str(job.func_name), tuple(job.args))
                for job in Queue(name, connection=redis).get_jobs()
            ]
            for name in (*queue_names(settings), chat_queue_name(settings))
        }
    finally:
        redis.close()
