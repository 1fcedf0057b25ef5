"""Shutting down while notices are on their way to Redis.

The dispatcher hands committed notices to RQ from a thread. On shutdown the gateway closes
the dispatcher and then the Redis client: the close must wait for an enqueue already in
flight (here made slow by a real Redis behind a loopback relay that holds every packet a
moment), so the job reaches its queue and nothing fails under it — and it must not wait
for ever on a Redis that never answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis import Redis
from rq import Queue

from gateway.delivery.queues import DELIVER, Dispatcher, QueueClient, queue_names
from gateway.settings import Settings
from tests.conftest import forget_queues

DELAY = 0.25


@pytest.fixture
def settings(redis_server: str, tmp_path: Path) -> Iterator[Settings]:
    prefix = f"tthc-test-dispatcher-{time.monotonic_ns()}:"
    settings = Settings.from_mapping(
        {"REDIS_URL": redis_server, "REDIS_KEY_PREFIX": prefix}, workdir=tmp_path
    )
    yield settings
    forget_queues(settings)


class _SlowRelay:
    """A loopback relay to the real Redis that holds each client packet ``DELAY`` seconds."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._db = parts.path or "/0"
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self.traffic = asyncio.Event()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}{self._db}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self._target)
        for source, sink, delay in ((client_r, server_w, DELAY), (server_r, client_w, 0.0)):
            pipe = asyncio.create_task(self._pipe(source, sink, delay))
            self._pipes.add(pipe)

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, delay: float
    ) -> None:
        try:
            while data := await source.read(65536):
                if delay:
                    self.traffic.set()
                    await asyncio.sleep(delay)
                sink.write(data)
                await sink.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            sink.close()


@pytest.fixture
async def relay(redis_server: str) -> AsyncIterator[_SlowRelay]:
    relay = _SlowRelay(redis_server)
    await relay.start()
    yield relay
    await relay.stop()


def _jobs(settings: Settings) -> list[tuple[str | None, object]]:
    redis = Redis.from_url(settings.redis_url)
    try:
        queue = Queue(queue_names(settings)[0], connection=redis)
        return [(j.func_name, j.args) for j in queue.get_jobs()]
    finally:
        redis.close()


async def test_close_waits_for_the_enqueue_in_flight_before_redis_is_closed(
    settings: Settings, relay: _SlowRelay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.delivery.queues")
    client = QueueClient(dataclasses.replace(settings, redis_url=relay.url))
    dispatcher = Dispatcher(client)
    dispatcher([("n-1", "urgent")])
    # The hand-over has left the gathering pause and is talking to Redis from its thread.
    await asyncio.wait_for(relay.traffic.wait(), 5)

    await dispatcher.close()
    client.close()  # what the application does next

    assert _jobs(settings) == [(DELIVER, (["n-1"],))]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    # Closed: later commits are left to the relay instead of reopening the client.
    tasks = len(asyncio.all_tasks())
    dispatcher([("n-2", "urgent")])
    assert len(asyncio.all_tasks()) == tasks


async def test_close_gives_up_on_a_redis_that_never_answers(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    reached = asyncio.Event()

    async def stay_silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(1 << 16):  # until the client hangs up
                reached.set()
        finally:
            writer.close()

    server = await asyncio.start_server(stay_silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = QueueClient(dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{port}/0"))
    dispatcher = Dispatcher(client)
    dispatcher.CLOSE_SECONDS = 0.3
    try:
        dispatcher([("n-1", "urgent")])
        await asyncio.wait_for(reached.wait(), 5)
        started = time.monotonic()
        await dispatcher.close()
        assert time.monotonic() - started < 1.5
    finally:
        client.close()
        server.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["notices not enqueued before shutdown; the relay will"]
