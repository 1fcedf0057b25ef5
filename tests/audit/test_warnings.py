"""Early warnings (due soon, finished but not delivered), on SQLite and PostgreSQL.

"Now" is Thursday 11/04/2024 unless a test says otherwise; Thursday 18/04/2024 is a
public holiday (Giỗ Tổ Hùng Vương).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.warnings import early_warnings
from gateway.settings import AuditSettings, Settings
from gateway.storage.db import create_engine
from gateway.storage.tables import dossiers, officers

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2024, 4, 11, 10, 0, tzinfo=VN)
AGENCY = {"code": "000.00.12.H19", "name": "Sở Xây dựng"}
PROCEDURE = {"code": "1.004227", "name": "Cấp giấy phép xây dựng"}


def at(day: int, hour: int = 17, minute: int = 0) -> datetime:
    return datetime(2024, 4, day, hour, minute, tzinfo=VN)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    writer = create_engine(database_url, writer=True, pool_size=1)
    yield writer
    await writer.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Only the database and the audit settings matter here (no Redis)."""
    return Settings(database_url=database_url, redis_url="redis://127.0.0.1:1/0")


async def seed(
    engine: AsyncEngine,
    code: str,
    state: str,
    due_at: datetime,
    *,
    received_by: str | None = "cc-0123",
    finished: tuple[datetime, str, str | None] | None = None,
    reschedule_count: int = 0,
) -> None:
    """A dossier row written straight into the table."""
    finished_at, finished_by_id, finished_by_name = finished or (None, None, None)
    async with engine.begin() as conn:
        await conn.execute(
            dossiers.insert().values(
                code=code,
                state=state,
                dvcqg_status=4,
                state_at=finished_at or at(1, 9),
                procedure_code=PROCEDURE["code"],
                procedure_name=PROCEDURE["name"],
                agency_code=AGENCY["code"],
                agency_name=AGENCY["name"],
                received_at=at(1, 8),
                received_by=received_by,
                due_at=due_at,
                finished_at=finished_at,
                finished_by_id=finished_by_id,
                finished_by_name=finished_by_name,
                reschedule_count=reschedule_count,
                supplement_count=0,
                event_count=2,
                created_at=at(1, 8),
                updated_at=at(1, 8),
            )
        )


async def seed_officer(engine: AsyncEngine, officer_id: str, name: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            officers.insert().values(
                id=officer_id,
                name=name,
                agency_code=AGENCY["code"],
                origin="import",
                created_at=at(1, 8),
                updated_at=at(1, 8),
            )
        )


def codes(rows: list[dict[str, Any]]) -> list[str]:
    return [r["dossier"] for r in rows]


async def test_due_soon_lists_open_dossiers_due_today_or_next_working_day_without_apology(
    engine: AsyncEngine, settings: Settings
) -> None:
    await seed_officer(engine, "cc-0123", "Trần Thị Bình")
    await seed(engine, "today", "processing", at(11))
    await seed(engine, "tomorrow-paused", "paused", at(12, 9), received_by="cc-9")
    await seed(engine, "tomorrow-late-evening", "received", at(12, 23, 30), received_by=None)
    await seed(engine, "monday", "processing", at(15))
    await seed(engine, "overdue", "processing", at(10))
    await seed(engine, "apologised", "processing", at(12), reschedule_count=1)
    await seed(engine, "citizen-owes-documents", "supplement_requested", at(11))
    await seed(engine, "citizen-owes-fees", "fees_due", at(12))
    await seed(engine, "finished", "finished", at(12), finished=(at(10), "cc-0123", None))
    await seed(engine, "withdrawn", "withdrawn", at(12))

    found = await early_warnings(engine, NOW, settings)
    rows = found["due_soon"]
    assert codes(rows) == ["today", "tomorrow-paused", "tomorrow-late-evening"]
    assert rows[0] == {
        "dossier": "today",
        "procedure": PROCEDURE,
        "agency": AGENCY,
        "due_date": date(2024, 4, 11),
        "finished_date": None,
        "officer": {"id": "cc-0123", "name": "Trần Thị Bình"},
        "days": 0,
    }
    assert rows[1]["officer"] == {"id": "cc-9", "name": None}  # not in the directory
    assert [r["days"] for r in rows] == [0, 1, 1]
    assert rows[2]["officer"] is None
    assert found["undelivered"] == []


async def test_due_soon_looks_past_weekends_and_holidays_to_the_next_working_day(
    engine: AsyncEngine, settings: Settings
) -> None:
    await seed(engine, "friday", "processing", at(12))
    await seed(engine, "monday", "processing", at(15))
    await seed(engine, "tuesday", "processing", at(16))
    await seed(engine, "holiday-friday", "processing", at(19))
    friday = await early_warnings(engine, at(12, 8), settings)
    assert codes(friday["due_soon"]) == ["friday", "monday"]
    assert [r["days"] for r in friday["due_soon"]] == [0, 1]
    wednesday = await early_warnings(engine, at(17, 8), settings)  # Thursday is off
    assert codes(wednesday["due_soon"]) == ["holiday-friday"]
    assert wednesday["due_soon"][0]["days"] == 1


async def test_undelivered_lists_dossiers_finished_more_than_n_working_days_ago(
    engine: AsyncEngine, settings: Settings
) -> None:
    await seed_officer(engine, "cc-0200", "Lê Văn Cường (danh bạ)")
    # Finished Wednesday 03/04 late in the evening: six working days to Thursday 11/04.
    await seed(
        engine, "six-days", "finished", at(5), finished=(at(3, 23, 30), "cc-0200", "Lê Văn Cường")
    )
    await seed(
        engine, "seven-days", "finished", at(5), finished=(at(2, 9), "cc-0300", "Phạm Thị Dung")
    )
    await seed(
        engine, "five-days", "finished", at(5), finished=(at(4, 9), "cc-0300", "Phạm Thị Dung")
    )
    await seed(engine, "delivered", "delivered", at(5), finished=(at(1, 9), "cc-0300", None))
    found = await early_warnings(engine, NOW, settings)
    rows = found["undelivered"]
    assert codes(rows) == ["seven-days", "six-days"]
    assert rows[1] == {
        "dossier": "six-days",
        "procedure": PROCEDURE,
        "agency": AGENCY,
        "due_date": date(2024, 4, 5),
        "finished_date": date(2024, 4, 3),
        "officer": {"id": "cc-0200", "name": "Lê Văn Cường (danh bạ)"},  # the directory wins
        "days": 6,
    }
    assert rows[0]["officer"] == {"id": "cc-0300", "name": "Phạm Thị Dung"}
    assert rows[0]["days"] == 7

    stricter = dataclasses.replace(settings, audit=AuditSettings(undelivered_warning_days=4))
    assert codes((await early_warnings(engine, NOW, stricter))["undelivered"]) == [
        "seven-days",
        "six-days",
        "five-days",
    ]
