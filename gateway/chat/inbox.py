"""Inbound OA events and ZNS receipts between the webhook and the jobs, in Redis.

The webhook pushes; :func:`drain` takes one user's events in order under that user's
lock. An event is removed from the list only after it was handled, and handling is
idempotent (the stored message carries the webhook's deduplication key), so a worker
that dies mid-event leaves it for the next drain instead of losing it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from redis.asyncio import Redis

from gateway.chat.queue import SEEN_SECONDS, inbox_key, inboxes_key, receipts_key, seen_key
from gateway.settings import Settings

log = logging.getLogger(__name__)

# Marks the event as seen and queues it, in one step: queued once, or known as a duplicate.
_PUSH = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  if ARGV[3] ~= '' then redis.call('SADD', KEYS[3], ARGV[3]) end
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Forget the user in the set of inboxes only if nothing arrived meanwhile.
_FORGET = """
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) return 1 end
return 0
"""
LOCK_MS = 60_000


async def push_event(
    redis: Redis, s: Settings, user_id: str, dedupe_key: str, item: dict[str, Any]
) -> bool:
    """Queue one user's event; False if this webhook was seen before."""
    pushed = await redis.eval(
        _PUSH,
        3,
        seen_key(s, dedupe_key),
        inbox_key(s, user_id),
        inboxes_key(s),
        SEEN_SECONDS,
        orjson.dumps(item),
        user_id,
    )
    return bool(pushed)


async def push_receipt(redis: Redis, s: Settings, dedupe_key: str, item: dict[str, Any]) -> bool:
    """Queue a ZNS delivery receipt; False if it was seen before."""
    pushed = await redis.eval(
        _PUSH,
        3,
        seen_key(s, f"zns:{dedupe_key}"),
        receipts_key(s),
        inboxes_key(s),
        SEEN_SECONDS,
        orjson.dumps(item),
        "",
    )
    return bool(pushed)


async def drain(
    redis: Redis,
    s: Settings,
    user_id: str,
    handle: Callable[[dict[str, Any]], Awaitable[None]],
) -> int:
    """Handle the user's queued events in order; returns how many. Another worker holding
    the user's lock drains instead (and looks again after letting go, see below)."""
    lock = f"{s.redis_key_prefix}zalo:lock:{user_id}"
    inbox = inbox_key(s, user_id)
    handled = 0
    while True:
        token = secrets.token_hex(8)
        if not await redis.set(lock, token, nx=True, px=LOCK_MS):
            return handled
        try:
            while (raw := await redis.lindex(inbox, 0)) is not None:
                await handle(orjson.loads(raw))
                await redis.lpop(inbox)
                await redis.pexpire(lock, LOCK_MS)
                handled += 1
        finally:
            await redis.eval(_RELEASE, 1, lock, token)
        # An event pushed after our last look and before the release found the lock held
        # and left it to us: look once more before leaving.
        if await redis.eval(_FORGET, 2, inbox, inboxes_key(s), user_id):
            return handled


async def pending_users(redis: Redis, s: Settings) -> list[str]:
    """Users with queued events (for the relay, after a lost wake-up job)."""
    members = await redis.smembers(inboxes_key(s))
    return sorted(m.decode() if isinstance(m, bytes) else m for m in members)


async def take_receipts(redis: Redis, s: Settings, count: int = 200) -> list[dict[str, Any]]:
    """The oldest queued receipts (left in place until :func:`drop_receipts`)."""
    raw = await redis.lrange(receipts_key(s), 0, count - 1)
    return [orjson.loads(item) for item in raw]


async def drop_receipts(redis: Redis, s: Settings, count: int) -> None:
    await redis.ltrim(receipts_key(s), count, -1)
