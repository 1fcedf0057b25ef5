"""Typed keys for the objects an application shares with its handlers."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web
from redis.asyncio import Redis

from gateway.delivery.queues import QueueClient
from gateway.domain.calendar import WorkingCalendar
from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.storage.db import Database
from gateway.storage.ingest import IngestWriter
from gateway.texts.templates import Texts
from providers.base import Receipt

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
REDIS = web.AppKey("redis", Redis)
# RQ's queues (notices, chat jobs), enqueued to from handlers without blocking the loop.
QUEUE = web.AppKey("queue", QueueClient)
WRITER = web.AppKey("writer", IngestWriter)
METRICS = web.AppKey("metrics", Metrics)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
TEXTS = web.AppKey("texts", Texts)
CALENDAR = web.AppKey("calendar", WorkingCalendar)
ReceiptParser = Callable[[Mapping[str, str], bytes], list[Receipt]]
RECEIPT_PARSERS: web.AppKey[dict[str, ReceiptParser]] = web.AppKey("receipt_parsers")
