"""Back-fills travel on the bulk lane; temporary failures everywhere mean a later retry."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry

from gateway.delivery.queues import queue_names
from tests.delivery.conftest import Rig
from tests.helpers import CODE, event

OTHER = "000.00.12.H19-240401-0002"


async def test_batch_back_fills_go_on_the_bulk_lane(rig: Rig) -> None:
    raw = json.dumps(
        {"events": [event("dossier.received"), event("dossier.received", code=OTHER)]},
        ensure_ascii=False,
    ).encode()
    response = await rig.gateway.post_raw("/v1/events/batch", raw)
    assert response.status == 200
    status, _, _ = await rig.gateway.post(
        event("dossier.received", code="000.00.12.H19-240401-0003")
    )
    assert status == 202

    assert {n["lane"] for n in await rig.notices(CODE)} == {"bulk"}
    urgent, bulk = queue_names(rig.gateway.settings)
    redis = Redis.from_url(rig.gateway.settings.redis_url)
    try:
        for _ in range(50):  # the gateway enqueues right after its commit, off the answer path
            if Queue(bulk, connection=redis).count and Queue(urgent, connection=redis).count:
                break
            await asyncio.sleep(0.05)
        bulk_ids = [i for job in Queue(bulk, connection=redis).jobs for i in job.args[0]]
        urgent_ids = [i for job in Queue(urgent, connection=redis).jobs for i in job.args[0]]
    finally:
        redis.close()
    assert len(bulk_ids) == 2 and len(urgent_ids) == 1
    await rig.work()
    assert len(rig.esms.messages) == 3


async def test_every_provider_failing_for_now_schedules_a_retry(rig: Rig) -> None:
    rig.esms.set_mode("http500")
    rig.speedsms.set_mode("http500")
    status, _, _ = await rig.gateway.post(event("dossier.received"))
    assert status == 202
    before = datetime.now(UTC)
    await rig.work()

    (notice,) = await rig.notices(CODE)
    assert notice["state"] == "queued"
    assert notice["attempts"] == 1
    assert "500" in notice["last_error"]
    retry_at = datetime.fromisoformat(notice["not_before"])
    assert before + timedelta(seconds=9) < retry_at < before + timedelta(seconds=30)
    urgent, _ = queue_names(rig.gateway.settings)
    redis = Redis.from_url(rig.gateway.settings.redis_url)
    try:
        scheduled = ScheduledJobRegistry(urgent, connection=redis).get_job_ids()
    finally:
        redis.close()
    assert len(scheduled) == 1  # RQ's scheduler brings it back
    assert rig.esms.messages == [] and rig.speedsms.messages == []
