"""The chat lane: OA webhooks in, staff replies out, ahead of notice batches.

Inbound events wait in a Redis list per OA user; a drain job per user takes them in
order under a per-user lock, so one citizen's messages are answered in the order sent
while different citizens are served in parallel. The deduplication mark and the list
push happen in one Lua call: an event is either queued once or known as a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis import Redis
from rq import Queue

from gateway.settings import Settings

DRAIN = "gateway.processes.jobs.chat_drain"
SEND = "gateway.processes.jobs.chat_send"
ZNS_RECEIPTS = "gateway.processes.jobs.zns_receipts"
# How long a delivered webhook's key is remembered (Zalo retries for hours at most).
SEEN_SECONDS = 7 * 86_400


def chat_queue_name(s: Settings) -> str:
    """Workers take this queue before the notice lanes: people are waiting for replies."""
    return f"{s.redis_key_prefix}chat"


def inbox_key(s: Settings, user_id: str) -> str:
    return f"{s.redis_key_prefix}zalo:inbox:{user_id}"


def inboxes_key(s: Settings) -> str:
    """The set of users with queued events (the relay wakes their drains after an outage)."""
    return f"{s.redis_key_prefix}zalo:inboxes"


def seen_key(s: Settings, dedupe_key: str) -> str:
    return f"{s.redis_key_prefix}zalo:seen:{dedupe_key}"


def receipts_key(s: Settings) -> str:
    return f"{s.redis_key_prefix}zalo:receipts"


def enqueue_drain(redis: Redis, s: Settings, user_ids: Iterable[str]) -> None:
    """Wake the drain job of each user (a drain finding an empty inbox does nothing)."""
    queue = Queue(chat_queue_name(s), connection=redis)
    with redis.pipeline() as pipe:
        for user_id in user_ids:
            queue.enqueue(DRAIN, user_id, job_timeout=120, pipeline=pipe)
        pipe.execute()


def enqueue_receipts(redis: Redis, s: Settings) -> None:
    """Wake the job that applies queued ZNS delivery receipts."""
    Queue(chat_queue_name(s), connection=redis).enqueue(ZNS_RECEIPTS, job_timeout=120)


def enqueue_outbound(redis: Redis, s: Settings, message_ids: list[int]) -> None:
    """Send stored outbound chat messages (``chat_messages`` rows with ``handled_at`` NULL)."""
    if message_ids:
        Queue(chat_queue_name(s), connection=redis).enqueue(SEND, message_ids, job_timeout=120)
