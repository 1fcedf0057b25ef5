"""The RQ queues notices travel on: an urgent lane and a bulk lane, per install prefix."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import datetime

from redis import Redis, RedisError
from rq import Queue

from gateway.settings import Settings

log = logging.getLogger(__name__)

# Notices per delivery job: large enough to spread RQ's per-job cost, small enough that
# a job ends well inside its timeout even when a vendor is slow.
BATCH = 200
DELIVER = "gateway.processes.jobs.deliver_batch"


def queue_names(s: Settings) -> tuple[str, str]:
    """The urgent lane first: workers drain it before touching back-fills."""
    return f"{s.redis_key_prefix}urgent", f"{s.redis_key_prefix}bulk"


def enqueue(
    redis: Redis, s: Settings, notices: Iterable[tuple[str, str]], *, at: datetime | None = None
) -> int:
    """Put notice ids on their lane's queue in batches; returns the number of jobs."""
    urgent, bulk = queue_names(s)
    lanes: dict[str, list[str]] = {urgent: [], bulk: []}
    for notice_id, lane in notices:
        lanes[bulk if lane == "bulk" else urgent].append(notice_id)
    jobs = 0
    with redis.pipeline() as pipe:
        for name, ids in lanes.items():
            queue = Queue(name, connection=redis)
            for start in range(0, len(ids), BATCH):
                chunk = ids[start : start + BATCH]
                if at is None:
                    queue.enqueue(DELIVER, chunk, job_timeout=600, pipeline=pipe)
                else:
                    queue.enqueue_at(at, DELIVER, chunk, job_timeout=600, pipeline=pipe)
                jobs += 1
        pipe.execute()
    return jobs


class Dispatcher:
    """Hands freshly committed notices to the queue without holding up the answer.

    Best effort by design: the database already holds the notices, and the relay
    enqueues whatever this misses. While Redis is down it stops trying for a few seconds
    instead of tying up threads on connection timeouts.
    """

    PAUSE_SECONDS = 5.0
    GATHER_SECONDS = 0.02

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._redis = Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=2)
        self._paused_until = 0.0
        self._buffer: list[tuple[str, str]] = []
        self._flushing: asyncio.Task[None] | None = None

    def __call__(self, notices: list[tuple[str, str]]) -> None:
        if not notices or time.monotonic() < self._paused_until:
            return
        self._buffer.extend(notices)
        if self._flushing is None:
            # Commits arrive many times a second under load: gather them for a moment and
            # hand them over in one pipelined call instead of one thread hop per commit.
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(self.GATHER_SECONDS)
        notices, self._buffer = self._buffer, []
        self._flushing = None
        await asyncio.to_thread(self._enqueue, notices)

    def _enqueue(self, notices: list[tuple[str, str]]) -> None:
        try:
            enqueue(self._redis, self._settings, notices)
        except RedisError as exc:
            self._paused_until = time.monotonic() + self.PAUSE_SECONDS
            log.warning("queue unavailable; the relay will enqueue", extra={"error": str(exc)})

    async def close(self) -> None:
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        self._redis.close()
