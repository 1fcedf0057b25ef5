"""Whatever breaks, no notice is lost and none is sent twice — counted at the vendor fakes."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from gateway.delivery.send import CONCURRENCY
from gateway.local.redis_server import PrivateRedis
from gateway.settings import Settings
from gateway.storage.db import create_engine
from gateway.storage.tables import notices
from tests.conftest import forget_queues
from tests.delivery.conftest import SMS_ENV, Rig, running_rig
from tests.helpers import CODE, event

pytestmark = pytest.mark.slow

OTHER = "000.00.12.H19-240401-0002"


async def post_story(rig: Rig, code: str = CODE) -> None:
    for body in (
        event("dossier.received", code=code),
        event("dossier.finished", code=code, at="2024-04-10T09:15:00+07:00"),
    ):
        status, answer, _ = await rig.gateway.post(body)
        assert status == 202, answer


def one_message_per_notice(rig: Rig, expected: int) -> None:
    per_request = Counter(m.request_id for m in [*rig.esms.messages, *rig.speedsms.messages])
    notices = Counter(request_id.split("-")[0] for request_id in per_request if request_id)
    assert sum(per_request.values()) == expected, per_request
    assert all(count == 1 for count in notices.values()), notices


async def test_a_failing_first_provider_fails_over_to_the_second(rig: Rig) -> None:
    rig.esms.set_mode("http500")
    await post_story(rig)
    await rig.work()
    notices = await rig.until(CODE, {"delivered"})
    assert {(n["provider"], n["state"]) for n in notices} == {("speedsms", "delivered")}
    assert rig.esms.messages == []
    assert rig.esms.send_requests == 2  # each notice tried eSMS once, then moved on
    assert len(rig.speedsms.messages) == 2
    assert {m.phone for m in rig.speedsms.messages} == {"84912345678"}


async def test_a_message_esms_may_have_taken_is_asked_again_there_never_elsewhere(
    sms_settings: Settings,
) -> None:
    """eSMS takes the message but its answer never comes: failing over to SpeedSMS could
    send it twice. The notice stays with eSMS and is asked again with the same RequestId,
    which eSMS answers as a duplicate."""
    async with running_rig(sms_settings, SMS_TIMEOUT_SECONDS="1") as rig:
        rig.esms.timeout_delay = 3
        # eSMS retries a refused callback; give it longer than the retry round below takes.
        rig.esms.callback_retry_delay = 4
        rig.esms.set_mode("timeout", count=1)
        status, _, _ = await rig.gateway.post(event("dossier.received"))
        assert status == 202
        await rig.work()
        (notice,) = await rig.notices(CODE)
        assert notice["state"] == "queued" and "after sending" in notice["last_error"]
        assert rig.speedsms.send_requests == 0 and rig.speedsms.messages == []
        assert len(rig.esms.messages) == 1  # the fake kept it, the answer was lost

        await make_due(sms_settings.database_url, notice["id"])
        assert await rig.relay() == 1
        await rig.work()
        # The receipt of the first send waited (the vendor retries it) and now counts.
        (notice,) = await rig.until(CODE, {"delivered"})
        assert notice["provider"] == "esms"
        assert rig.esms.send_requests == 2
        assert len(rig.esms.messages) == 1
        assert rig.speedsms.send_requests == 0


async def make_due(database_url: str, notice_id: str) -> None:
    """Bring a retry forward instead of waiting for its back-off."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                notices.update().where(notices.c.id == notice_id).values(not_before=None)
            )
    finally:
        await engine.dispose()


async def test_duplicate_receipts_change_nothing(rig: Rig) -> None:
    rig.esms.set_receipts("duplicate")
    await post_story(rig)
    await rig.work()
    notices = await rig.until(CODE, {"delivered"})
    assert len(notices) == 2
    await asyncio.sleep(0.6)  # the second copies arrive
    assert [n["state"] for n in await rig.notices(CODE)] == ["delivered", "delivered"]
    assert len(rig.esms.messages) == 2


async def test_late_receipts_arrive_and_missing_ones_leave_the_notice_sent(rig: Rig) -> None:
    rig.esms.set_receipts("late", delay=1.5)
    await post_story(rig)
    await rig.work()
    assert {n["state"] for n in await rig.notices(CODE)} == {"sent"}
    await rig.until(CODE, {"delivered"}, limit=10)

    rig.esms.set_receipts("missing")
    await post_story(rig, OTHER)
    await rig.work()
    await asyncio.sleep(1.0)
    assert {n["state"] for n in await rig.notices(OTHER)} == {"sent"}
    await rig.relay()
    await rig.work()  # a missing receipt is no reason to send again
    assert len(rig.esms.messages) == 4


async def test_a_worker_killed_mid_send_loses_nothing_and_duplicates_nothing(rig: Rig) -> None:
    # The fake takes each message, then holds its answer: the worker dies waiting.
    rig.esms.timeout_delay = 30
    rig.esms.set_mode("timeout")
    # Two notices a dossier, more than the worker sends at once: some are never taken.
    codes = [f"000.00.12.H19-240401-{n:04d}" for n in range(1, CONCURRENCY // 2 + 5)]
    expected = 2 * len(codes)
    for code in codes:
        await post_story(rig, code)
    worker = rig.start_worker()
    try:
        for _ in range(200):
            if rig.esms.messages:
                break
            await asyncio.sleep(0.05)
        assert rig.esms.messages, "the worker never reached the vendor"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    taken = len(rig.esms.messages)
    assert taken <= CONCURRENCY < expected

    rig.esms.set_mode("ok")
    await asyncio.sleep(2.5)  # the dead worker's lease runs out
    assert await rig.relay() >= 1  # at least the notice the dead worker held
    await rig.work()
    for code in codes:
        notices = await rig.until(code, {"sent", "delivered"})
        assert {n["provider"] for n in notices} == {"esms"}
    # The message the vendor took before the kill was recognised by its RequestId.
    one_message_per_notice(rig, expected)


@pytest.fixture
async def outage_rig(settings: Settings) -> AsyncIterator[tuple[Rig, PrivateRedis]]:
    redis = PrivateRedis.start()
    merged = Settings.from_mapping({**settings.env, **SMS_ENV, "REDIS_URL": redis.url})
    try:
        async with running_rig(merged) as rig:
            yield rig, redis
    finally:
        if redis.process.poll() is None:
            forget_queues(merged)
        redis.stop()


async def test_a_redis_outage_delays_notices_but_loses_none(
    outage_rig: tuple[Rig, PrivateRedis],
) -> None:
    rig, redis = outage_rig
    port = redis.port
    redis.process.terminate()
    redis.process.wait(10)
    codes = [f"000.00.12.H19-240401-{n:04d}" for n in range(1, 11)]
    started = asyncio.get_running_loop().time()
    for code in codes:  # events keep arriving during the outage
        await post_story(rig, code)
    assert asyncio.get_running_loop().time() - started < 10, "ingest waited on Redis"
    status, ready = await rig.gateway.client.get("/readyz"), None
    ready = await status.json()
    # Which part is down is the detail, for operators with OPS_TOKEN (tests/http).
    assert status.status == 503 and ready == {"status": "unavailable"}
    await asyncio.sleep(max(0.0, 10 - (asyncio.get_running_loop().time() - started)))

    restarted = PrivateRedis.start(port)
    redis.process = restarted.process
    assert await rig.relay() == 20
    await rig.work()
    for code in codes:
        await rig.until(code, {"delivered"})
    one_message_per_notice(rig, 20)
