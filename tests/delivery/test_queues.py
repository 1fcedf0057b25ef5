"""Putting work on RQ's queues from async code: lanes, best effort, a loop never blocked."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest
from redis import Redis, RedisError
from rq import Queue

from gateway.chat.queue import chat_queue_name, enqueue_outbound
from gateway.delivery.queues import DELIVER, QueueClient, queue_names
from gateway.local.redis_server import free_port
from gateway.settings import Settings


@pytest.fixture
def queue(settings: Settings) -> Iterator[QueueClient]:
    client = QueueClient(settings)
    yield client
    client.close()


def jobs(settings: Settings, name: str) -> list[tuple[str | None, object]]:
    redis = Redis.from_url(settings.redis_url)
    try:
        return [(j.func_name, j.args) for j in Queue(name, connection=redis).get_jobs()]
    finally:
        redis.close()


async def test_notices_go_to_their_lane_and_other_jobs_through_the_same_client(
    queue: QueueClient, settings: Settings
) -> None:
    assert await queue.offer_notices([("n-1", "urgent"), ("n-2", "bulk"), ("n-3", "urgent")])
    await queue.call(enqueue_outbound, [7])

    urgent, bulk = queue_names(settings)
    assert jobs(settings, urgent) == [(DELIVER, (["n-1", "n-3"],))]
    assert jobs(settings, bulk) == [(DELIVER, (["n-2"],))]
    assert jobs(settings, chat_queue_name(settings)) == [
        ("gateway.processes.jobs.chat_send", ([7],))
    ]


async def test_without_redis_notices_are_left_to_the_relay_and_other_jobs_fail_loudly(
    settings: Settings,
) -> None:
    dead = QueueClient(
        dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    )
    try:
        assert await dead.offer_notices([("n-1", "urgent")]) is False
        with pytest.raises(RedisError):
            await dead.call(enqueue_outbound, [7])
    finally:
        dead.close()


async def test_a_redis_that_does_not_answer_holds_up_a_thread_not_the_event_loop(
    settings: Settings,
) -> None:
    async def accept_and_stay_silent(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while await reader.read(1 << 16):  # until the client gives up and hangs up
                pass
        finally:
            writer.close()

    server = await asyncio.start_server(accept_and_stay_silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    silent = QueueClient(dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{port}/0"))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        offered = asyncio.create_task(silent.offer_notices([("n-1", "urgent")]))
        await asyncio.sleep(0.5)
        assert not offered.done()  # still waiting on the silent server...
        assert ticks >= 20  # ...while the loop went on serving everything else
        assert await offered is False  # and it gives up after the socket timeout
    finally:
        ticker.cancel()
        silent.close()
        server.close()
        await server.wait_closed()
