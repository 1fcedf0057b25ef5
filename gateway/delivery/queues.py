"""The RQ queues notices travel on (an urgent lane and a bulk lane, per install prefix),
and the non-blocking way async code puts work on RQ's queues."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Concatenate, ParamSpec, TypeVar

from redis import Redis, RedisError
from rq import Queue

from gateway.settings import Settings

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
# What an unreachable or failing Redis raises through redis-py and RQ.
QUEUE_ERRORS = (RedisError, OSError)

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


class QueueClient:
    """RQ's synchronous enqueue, awaited from async code without blocking the event loop.

    One synchronous Redis client per application (or per job), opened once: its
    connection pool is thread-safe, and each call runs in a worker thread, so a slow or
    unreachable Redis holds up a thread, never the loop that answers requests.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._redis = Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=2)

    async def call(
        self,
        put: Callable[Concatenate[Redis, Settings, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``put(redis, settings, *args, **kwargs)`` in a thread; Redis errors propagate."""
        return await asyncio.to_thread(put, self._redis, self.settings, *args, **kwargs)

    async def offer_notices(self, notices: Sequence[tuple[str, str]]) -> bool:
        """Put (notice id, lane) pairs on their queues, best effort: the notices are in the
        database already and the relay enqueues whatever this misses. Returns whether
        they were queued; a Redis failure is logged, not raised."""
        if not notices:
            return True
        try:
            await self.call(enqueue, notices)
        except QUEUE_ERRORS as exc:
            log.warning(
                "notices not enqueued; the relay will",
                extra={"count": len(notices), "error": str(exc)},
            )
            return False
        return True

    def close(self) -> None:
        self._redis.close()


class Dispatcher:
    """Hands freshly committed notices to the queue without holding up the answer.

    Best effort by design: the database already holds the notices, and the relay
    enqueues whatever this misses. While Redis is down it stops trying for a few seconds
    instead of tying up threads on connection timeouts.

    :meth:`close` waits for every hand-over already started — gathering or already in a
    thread talking to Redis — for at most ``CLOSE_SECONDS``, so the owner never closes the
    Redis client under an enqueue in flight; one still running then is abandoned (the
    relay enqueues its notices) and nothing is handed over after close.
    """

    PAUSE_SECONDS = 5.0
    GATHER_SECONDS = 0.02
    CLOSE_SECONDS = 5.0

    def __init__(self, queue: QueueClient) -> None:
        self._queue = queue
        self._paused_until = 0.0
        self._buffer: list[tuple[str, str]] = []
        # The hand-over still gathering commits (at most one)...
        self._flushing: asyncio.Task[None] | None = None
        # ...and every hand-over not finished yet, gathering or enqueuing.
        self._in_flight: set[asyncio.Task[None]] = set()
        self._closed = False

    def __call__(self, notices: list[tuple[str, str]]) -> None:
        if not notices or self._closed or time.monotonic() < self._paused_until:
            return
        self._buffer.extend(notices)
        if self._flushing is None:
            # Commits arrive many times a second under load: gather them for a moment and
            # hand them over in one pipelined call instead of one thread hop per commit.
            task = asyncio.get_running_loop().create_task(self._flush())
            self._flushing = task
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _flush(self) -> None:
        await asyncio.sleep(self.GATHER_SECONDS)
        notices, self._buffer = self._buffer, []
        # Commits from now on start the next hand-over; this one is still in flight.
        self._flushing = None
        if not await self._queue.offer_notices(notices):
            self._paused_until = time.monotonic() + self.PAUSE_SECONDS

    async def close(self) -> None:
        """Wait (boundedly) for the hand-overs in progress; the queue client is its
        owner's to close, once this returns."""
        self._closed = True
        pending = set(self._in_flight)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=self.CLOSE_SECONDS)
        if late:
            log.warning(
                "notices not enqueued before shutdown; the relay will",
                extra={"handovers": len(late)},
            )
            for task in late:
                task.cancel()
        # Collects every outcome, so that no task's error goes unretrieved.
        await asyncio.gather(*pending, return_exceptions=True)
