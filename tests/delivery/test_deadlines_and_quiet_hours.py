"""The deadline sweep and quiet hours, through the real worker and fakes."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.delivery.conftest import Rig
from tests.helpers import CODE, event

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
