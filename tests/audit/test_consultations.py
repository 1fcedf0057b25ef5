"""The consultation reminders sweep, on SQLite and PostgreSQL.

The consultation of the main dossier is due Tuesday 16/04/2024; Thursday 18/04/2024 is a
public holiday (Giỗ Tổ Hùng Vương), so with three working days before the second
reminder (Wed 17, Fri 19, Mon 22) it goes out once Monday 22/04/2024 is over.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import consultations as reminders
from gateway.domain.calendar import WorkingCalendar
from gateway.storage.db import create_engine
from gateway.storage.tables import consultation_reminders, consultations, dossiers
from tests.helpers import Gateway, event

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CALENDAR = WorkingCalendar()
DAYS = 3
SEEDED = datetime(2024, 4, 1, 9, 0, tzinfo=VN)
CODE = "000.00.12.H19-240401-0001"
OTHER = "000.00.12.H19-240401-0002"
CONSULTED = ("000.00.05.H19", "Sở Tài nguyên và Môi trường")


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2024, 4, day, hour, minute, second, tzinfo=VN)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    writer = create_engine(database_url, writer=True, pool_size=1)
    yield writer
    await writer.dispose()


async def seed(
    engine: AsyncEngine,
    code: str,
    consultation_id: str,
    due_at: datetime | None,
    answered_at: datetime | None = None,
) -> None:
    """A dossier (once) and one of its consultations, written straight into the tables."""
    async with engine.begin() as conn:
        known = await conn.execute(sa.select(dossiers.c.code).where(dossiers.c.code == code))
        if known.first() is None:
            await conn.execute(
                dossiers.insert().values(
                    code=code,
                    state="processing",
                    dvcqg_status=4,
                    state_at=SEEDED,
                    agency_code="000.00.12.H19",
                    agency_name="Sở Xây dựng",
                    due_at=at(30, 17),
                    reschedule_count=0,
                    supplement_count=0,
                    event_count=2,
                    created_at=SEEDED,
                    updated_at=SEEDED,
                )
            )
        await conn.execute(
            consultations.insert().values(
                dossier_code=code,
                consultation_id=consultation_id,
                agency_code=CONSULTED[0],
                agency_name=CONSULTED[1],
                requested_at=SEEDED,
                due_at=due_at,
                answered_at=answered_at,
            )
        )


async def stored(engine: AsyncEngine) -> list[dict[str, Any]]:
    r = consultation_reminders.c
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(
                r.dossier_code, r.consultation_id, r.number, r.agency_code, r.copied_to
            ).order_by(r.dossier_code, r.consultation_id, r.number)
        )
        return [dict(row._mapping) for row in result]


async def updated(engine: AsyncEngine) -> dict[str, datetime]:
    async with engine.connect() as conn:
        result = await conn.execute(sa.select(dossiers.c.code, dossiers.c.updated_at))
        return {row.code: row.updated_at for row in result}


async def run(engine: AsyncEngine, now: datetime) -> tuple[int, int, int]:
    done = await reminders.sweep(engine, now, CALENDAR, DAYS)
    return done.first, done.second, done.dossiers


def test_the_second_reminder_waits_for_working_days_after_the_due_date() -> None:
    due = at(16).date()
    assert reminders.second_reminder_day(CALENDAR, due, 3) == at(22).date()
    assert reminders.second_reminder_day(CALENDAR, due, 1) == at(17).date()
    assert reminders.second_reminder_day(CALENDAR, at(17).date(), 1) == at(19).date()


async def test_the_first_reminder_comes_once_the_due_day_is_over(engine: AsyncEngine) -> None:
    await seed(engine, CODE, "yk-1", due_at=at(16, 17))
    assert await run(engine, at(16, 23, 59)) == (0, 0, 0)
    assert await stored(engine) == []
    assert (await updated(engine))[CODE] == SEEDED

    morning = at(17, 0, 0, 1)
    assert await run(engine, morning) == (1, 0, 1)
    assert await stored(engine) == [
        {
            "dossier_code": CODE,
            "consultation_id": "yk-1",
            "number": 1,
            "agency_code": CONSULTED[0],
            "copied_to": None,
        }
    ]
    assert (await updated(engine))[CODE] == morning  # the audit sweep looks again
    assert await run(engine, at(19, 10)) == (0, 0, 0)  # idempotent
    assert (await updated(engine))[CODE] == morning


async def test_the_second_reminder_is_copied_to_home_affairs_after_working_days(
    engine: AsyncEngine,
) -> None:
    await seed(engine, CODE, "yk-1", due_at=at(16, 17))
    assert await run(engine, at(17, 8)) == (1, 0, 1)
    # Thursday's holiday does not count: still nothing on the evening of Monday 22.
    assert await run(engine, at(22, 23, 59)) == (0, 0, 0)

    later = at(23, 0, 0, 1)
    assert await run(engine, later) == (0, 1, 1)
    assert [(r["number"], r["copied_to"]) for r in await stored(engine)] == [
        (1, None),
        (2, "Sở Nội vụ"),
    ]
    assert (await updated(engine))[CODE] == later
    assert await run(engine, at(30, 9)) == (0, 0, 0)


async def test_a_late_run_records_both_reminders_at_once(engine: AsyncEngine) -> None:
    await seed(engine, CODE, "yk-1", due_at=at(16, 17))
    assert await run(engine, at(25, 9)) == (1, 1, 1)
    assert [r["number"] for r in await stored(engine)] == [1, 2]
    assert await run(engine, at(25, 9)) == (0, 0, 0)


async def test_answered_and_not_yet_due_consultations_get_no_reminder(
    engine: AsyncEngine,
) -> None:
    await seed(engine, CODE, "answered-late", due_at=at(5, 17), answered_at=at(9, 10))
    await seed(engine, CODE, "answered", due_at=at(16, 17), answered_at=at(15, 10))
    await seed(engine, CODE, "no-due-date", due_at=None)
    await seed(engine, OTHER, "not-due", due_at=at(26, 17))
    await seed(engine, OTHER, "overdue", due_at=at(22, 17))
    assert await run(engine, at(25, 9)) == (1, 0, 1)
    assert [(r["dossier_code"], r["consultation_id"]) for r in await stored(engine)] == [
        (OTHER, "overdue")
    ]
    assert await updated(engine) == {CODE: SEEDED, OTHER: at(25, 9)}


async def test_a_run_reminds_the_oldest_first_and_the_next_runs_the_rest(
    engine: AsyncEngine,
) -> None:
    for number, day in enumerate((12, 10, 11), start=1):
        await seed(engine, CODE, f"yk-{number}", due_at=at(day, 17))
    first = await reminders.sweep(engine, at(15, 9), CALENDAR, DAYS, limit=2)
    assert (first.first, first.second) == (2, 0)
    assert {r["consultation_id"] for r in await stored(engine)} == {"yk-2", "yk-3"}
    rest = await reminders.sweep(engine, at(15, 9), CALENDAR, DAYS, limit=2)
    assert (rest.first, rest.second) == (1, 0)


async def run_job(gateway: Gateway, name: str) -> int:
    """Run a job of ``gateway.processes.jobs`` in a process of its own, as the cron does."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"from gateway.processes.jobs import {name}; print({name}())",
        env={**os.environ, **gateway.settings.env, "LOG_LEVEL": "WARNING"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()[-3000:]
    return int(stdout.decode().strip().splitlines()[-1])


async def test_the_cron_jobs_remind_then_audit_the_reminded_dossier(gateway: Gateway) -> None:
    for body in (
        event("dossier.received", code=CODE),
        event("dossier.consultation_requested", code=CODE),  # due 05/04/2024, unanswered
    ):
        status, answer, _ = await gateway.post(body)
        assert status == 202, answer
    assert await run_job(gateway, "remind_consultations") == 2  # long overdue: both
    assert await run_job(gateway, "remind_consultations") == 0
    assert await run_job(gateway, "audit_sweep") == 1
