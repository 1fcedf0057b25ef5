"""The deadline sweep and quiet hours, through the real worker and fakes; the honest
deadline rules (late by local date, a pause does not stop the clock) at chosen moments."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.delivery import deadlines
from gateway.domain.calendar import WorkingCalendar
from gateway.storage.db import create_engine
from gateway.storage.tables import dossiers
from tests.delivery.conftest import Rig
from tests.helpers import CODE, Gateway, event

VN = ZoneInfo("Asia/Ho_Chi_Minh")
ON_TIME = "000.00.12.H19-240401-0002"
RESCHEDULED = "000.00.12.H19-240401-0003"


async def test_overdue_dossiers_are_late_and_get_one_automatic_apology(rig: Rig) -> None:
    for body in (
        event("dossier.received"),  # due 12/04/2024, never finished
        event("dossier.received", code=ON_TIME),
        event("dossier.finished", code=ON_TIME, at="2024-04-10T09:15:00+07:00"),
        event("dossier.received", code=RESCHEDULED),
        event("dossier.delayed", code=RESCHEDULED, at="2024-04-11T09:00:00+07:00"),
    ):
        status, answer, _ = await rig.gateway.post(body)
        assert status == 202, answer
    assert await rig.run_job("sweep_deadlines") == 2
    assert await rig.run_job("sweep_deadlines") == 0  # each dossier is judged once

    late = await rig.gateway.dossier(CODE)
    assert late["deadline"]["state"] == "late"
    assert [n["kind"] for n in late["notices"]] == ["receipt", "auto_apology"]
    on_time = await rig.gateway.dossier(ON_TIME)
    assert on_time["deadline"] == {"state": "met", "late_at": None}
    rescheduled = await rig.gateway.dossier(RESCHEDULED)
    assert rescheduled["deadline"]["state"] == "late"
    assert "auto_apology" not in [n["kind"] for n in rescheduled["notices"]]

    await rig.work()
    apology = next(m for m in rig.esms.messages if "qua han" in m.content.lower())
    assert CODE in apology.content
    assert sum(CODE in m.content for m in rig.esms.messages) == 2


async def test_notices_due_at_night_wait_for_the_morning(rig: Rig) -> None:
    now = datetime.now(VN)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    rig.worker_env["QUIET_HOURS"] = f"{start:%H:%M}-{end:%H:%M}"
    status, _, _ = await rig.gateway.post(event("dossier.received"))
    assert status == 202
    await rig.work()
    (notice,) = await rig.notices(CODE)
    assert notice["state"] == "queued"
    waits_until = datetime.fromisoformat(notice["not_before"])
    assert abs(waits_until - end.replace(second=0, microsecond=0)) < timedelta(minutes=1)
    assert rig.esms.messages == []

    rig.worker_env["QUIET_HOURS"] = ""
    assert await rig.relay() == 0  # not before the morning, even with quiet hours lifted


# --- honest deadlines: the sweep at chosen moments (CODE is due Friday 12/04/2024 17:00) ---

CALENDAR = WorkingCalendar()
DUE_DAY_EVENING = datetime(2024, 4, 12, 23, 0, tzinfo=VN)
AFTER_MIDNIGHT = datetime(2024, 4, 13, 0, 0, 1, tzinfo=VN)


@pytest.fixture
async def engine(gateway: Gateway) -> AsyncIterator[AsyncEngine]:
    writer = create_engine(gateway.settings.database_url, writer=True, pool_size=1)
    yield writer
    await writer.dispose()


async def post_all(gateway: Gateway, *bodies: dict[str, Any]) -> None:
    for body in bodies:
        status, answer, _ = await gateway.post(body)
        assert status == 202, answer


async def kinds(gateway: Gateway, code: str = CODE) -> list[str]:
    # Sorted: the sweep's notices are created at the chosen (past) moment.
    return sorted(n["kind"] for n in (await gateway.dossier(code))["notices"])


async def updated_at(engine: AsyncEngine, code: str = CODE) -> datetime:
    async with engine.connect() as conn:
        value: datetime = (
            await conn.execute(sa.select(dossiers.c.updated_at).where(dossiers.c.code == code))
        ).scalar_one()
    return value


async def test_a_pause_across_the_due_date_does_not_stop_the_clock(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    await post_all(
        gateway,
        event("dossier.received"),
        event("dossier.paused", at="2024-04-10T10:00:00+07:00"),
    )
    swept = await deadlines.sweep(engine, AFTER_MIDNIGHT, CALENDAR)
    assert (swept.late, swept.met, swept.waiting, len(swept.apologies)) == (1, 0, 0, 1)
    view = await gateway.dossier()
    assert view["state"] == "paused"
    assert view["deadline"]["state"] == "late"
    assert await kinds(gateway) == ["auto_apology", "receipt"]
    assert await updated_at(engine) == AFTER_MIDNIGHT  # the audit sweep looks again


async def test_a_dossier_finished_on_the_evening_of_its_due_day_is_on_time(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    await post_all(
        gateway,
        event("dossier.received"),
        event("dossier.finished", at="2024-04-12T19:00:00+07:00"),
    )
    assert (await deadlines.sweep(engine, DUE_DAY_EVENING, CALENDAR)).met == 0
    swept = await deadlines.sweep(engine, AFTER_MIDNIGHT, CALENDAR)
    assert (swept.late, swept.met, swept.apologies) == (0, 1, [])
    assert (await gateway.dossier())["deadline"] == {"state": "met", "late_at": None}
    assert "auto_apology" not in await kinds(gateway)


async def test_an_open_dossier_gets_its_apology_only_once_its_due_day_is_over(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    await post_all(gateway, event("dossier.received"))
    evening = await deadlines.sweep(engine, DUE_DAY_EVENING, CALENDAR)
    assert (evening.late, evening.apologies) == (0, [])
    assert (await gateway.dossier())["deadline"]["state"] is None
    assert await kinds(gateway) == ["receipt"]

    swept = await deadlines.sweep(engine, AFTER_MIDNIGHT, CALENDAR)
    assert (swept.late, len(swept.apologies)) == (1, 1)
    assert (await gateway.dossier())["deadline"]["state"] == "late"
    assert await kinds(gateway) == ["auto_apology", "receipt"]
    again = await deadlines.sweep(engine, AFTER_MIDNIGHT + timedelta(days=1), CALENDAR)
    assert (again.late, again.apologies) == (0, [])


async def test_the_sweep_follows_the_date_promised_in_an_apology(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    await post_all(
        gateway,
        event("dossier.received"),
        event("dossier.delayed", at="2024-04-11T09:00:00+07:00"),  # promised 17/04/2024
        # The one-stop-shop re-sends the first appointment; the promise stands.
        event("dossier.processing", at="2024-04-11T10:00:00+07:00"),
    )
    assert (await deadlines.sweep(engine, AFTER_MIDNIGHT, CALENDAR)).late == 0
    promised_day_evening = datetime(2024, 4, 17, 23, 0, tzinfo=VN)
    assert (await deadlines.sweep(engine, promised_day_evening, CALENDAR)).late == 0
    swept = await deadlines.sweep(engine, promised_day_evening + timedelta(hours=2), CALENDAR)
    # Late again, but the rules allow one rescheduling: no second, automatic apology.
    assert (swept.late, swept.apologies) == (1, [])
    assert "auto_apology" not in await kinds(gateway)


async def test_a_dossier_waiting_for_the_citizens_supplement_is_not_late(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    await post_all(
        gateway,
        event("dossier.received"),
        event("dossier.supplement_requested", at="2024-04-05T10:00:00+07:00"),
    )
    swept = await deadlines.sweep(engine, AFTER_MIDNIGHT, CALENDAR)
    assert (swept.late, swept.waiting, swept.apologies) == (0, 1, [])
    assert (await gateway.dossier())["deadline"]["state"] == "waiting"
    assert await updated_at(engine) == AFTER_MIDNIGHT
