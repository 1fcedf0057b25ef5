"""``POST /webhooks/zalo``: verify, parse, hand off, acknowledge — the work comes after.

The signature is checked on the raw body exactly as received (Zalo signs those bytes),
the event must be for our app and not older than the deduplication memory, and the
event is queued with its deduplication mark in one Redis step. Zalo wants an answer
within 2 s; nothing here waits on the database or on Zalo.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from redis import Redis as SyncRedis
from redis import RedisError

from gateway.chat import inbox, zns_ratings
from gateway.chat.queue import SEEN_SECONDS, enqueue_drain, enqueue_receipts
from gateway.delivery.queues import QUEUE_ERRORS, QueueClient
from gateway.errors import AuthenticationFailed, GatewayError, NotFound, StorageUnavailable
from gateway.http.keys import CLOCK, METRICS, QUEUE, REDIS, SETTINGS
from gateway.settings import Settings
from providers.zalo.webhook import (
    Ignored,
    ZnsFeedback,
    ZnsReceipt,
    parse_webhook,
    verify_signature,
)

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

# Events from further ahead than this are refused (Zalo's clock and ours agree closely).
FUTURE_SKEW = timedelta(minutes=5)


class ChatWaker:
    """Wakes drain jobs without holding up the answer; coalesces bursts into one call.

    Best effort: the events are already queued in Redis, and the relay wakes any drain
    this misses.
    """

    GATHER_SECONDS = 0.002

    def __init__(self, queue: QueueClient) -> None:
        self._queue = queue
        self._users: set[str] = set()
        self._receipts = False
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def wake(self, user_id: str | None) -> None:
        if user_id is None:
            self._receipts = True
        else:
            self._users.add(user_id)
        if not self._scheduled:
            self._scheduled = True
            task = asyncio.get_running_loop().create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        await asyncio.sleep(self.GATHER_SECONDS)
        users, self._users = sorted(self._users), set()
        receipts, self._receipts = self._receipts, False
        self._scheduled = False
        try:
            await self._queue.call(_wake, users, receipts)
        except QUEUE_ERRORS as exc:
            log.warning("chat queue unavailable; the relay will wake", extra={"error": str(exc)})

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _wake(redis: SyncRedis, s: Settings, users: list[str], receipts: bool) -> None:
    """One thread hop for both kinds of wake-up."""
    if users:
        enqueue_drain(redis, s, users)
    if receipts:
        enqueue_receipts(redis, s)


WAKER = web.AppKey("chat_waker", ChatWaker)


async def waker_ctx(app: web.Application) -> AsyncIterator[None]:
    app[WAKER] = ChatWaker(app[QUEUE])
    yield
    await app[WAKER].close()


@routes.post("/webhooks/zalo")
async def zalo_webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if not settings.zalo.enabled:
        raise NotFound("Zalo is not configured on this gateway")
    raw = await request.read()
    try:
        payload = verify_signature(
            raw, request.headers.get("X-ZEvent-Signature"), settings.zalo.oa_secret_key
        )
        if str(payload.get("app_id")) != settings.zalo.app_id:
            raise AuthenticationFailed("the event is for another Zalo app")
        now = datetime.fromtimestamp(request.app[CLOCK](), UTC)
        event = parse_webhook(payload, request.headers.get("X-ZEvent-Server"))
        moment = getattr(event, "at", now)
        if moment < now - timedelta(seconds=SEEN_SECONDS) or moment > now + FUTURE_SKEW:
            raise AuthenticationFailed("the event's timestamp is outside the accepted window")
    except GatewayError as exc:
        request.app[METRICS].zalo_webhooks.labels("refused").inc()
        log.warning(
            "zalo webhook refused",
            extra={"remote": request.remote, "reason": exc.detail, "bytes": len(raw)},
        )
        raise
    redis = request.app[REDIS]
    waker = request.app[WAKER]
    try:
        if isinstance(event, Ignored):
            result = "ignored"
        elif isinstance(event, ZnsReceipt):
            receipt: dict[str, Any] = {
                "msg_id": event.msg_id,
                "tracking_id": event.tracking_id,
                "at": event.at.isoformat(),
            }
            fresh = await inbox.push_receipt(redis, settings, event.dedupe_key, receipt)
            result = "queued" if fresh else "duplicate"
            if fresh:
                waker.wake(None)
        elif isinstance(event, ZnsFeedback):
            # A rating on a ZNS template: applied with the receipts (gateway.chat.zns_ratings).
            fresh = await inbox.push_receipt(
                redis, settings, event.dedupe_key, zns_ratings.queued_item(event)
            )
            result = "queued" if fresh else "duplicate"
            if fresh:
                waker.wake(None)
        else:
            item: dict[str, Any] = {
                "payload": payload,
                "server": request.headers.get("X-ZEvent-Server"),
            }
            fresh = await inbox.push_event(redis, settings, event.user_id, event.dedupe_key, item)
            result = "queued" if fresh else "duplicate"
            if fresh:
                waker.wake(event.user_id)
    except RedisError as exc:
        log.error("zalo webhook could not be queued", extra={"error": str(exc)})
        raise StorageUnavailable("the queue is unavailable; retry", 5) from exc
    request.app[METRICS].zalo_webhooks.labels(result).inc()
    if result == "duplicate":
        log.info("zalo webhook delivered again, dropped", extra={"key": event.dedupe_key})
    return web.json_response({"status": result})
