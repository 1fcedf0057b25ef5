"""The application factory: ``create_app(settings)`` builds the whole HTTP service."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Final

import aiohttp
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from gateway.delivery.queues import Dispatcher, QueueClient
from gateway.domain.calendar import DEFAULT_OVERRIDES_FILE, WorkingCalendar, load_overrides
from gateway.domain.sanctions import load_ladder
from gateway.errors import ConfigError
from gateway.http import api, audit, openapi, ops, staff, webhooks, zalo
from gateway.http.citizen import setup_citizen
from gateway.http.console.app import create_console
from gateway.http.encoding import content_encoding_middleware
from gateway.http.keys import (
    CALENDAR,
    CLOCK,
    DATABASE,
    METRICS,
    QUEUE,
    RECEIPT_PARSERS,
    REDIS,
    SETTINGS,
    TEXTS,
    WRITER,
    ReceiptParser,
)
from gateway.http.problems import problem_middleware
from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.storage import migrate
from gateway.storage.db import Database
from gateway.storage.ingest import IngestWriter
from gateway.texts.templates import Texts
from gateway.trust.links import Links
from providers.registry import build_sms_providers


async def _queue(app: web.Application) -> AsyncIterator[None]:
    # One synchronous client for every enqueue of this process; used from threads only.
    client = QueueClient(app[SETTINGS])
    app[QUEUE] = client
    yield
    client.close()


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    current = await migrate.current_revision(settings.database_url)
    head = migrate.head_revision()
    if current != head:
        raise ConfigError(
            "DATABASE_URL",
            f"the database is at schema revision {current or 'none'}, this gateway needs {head}; "
            "run `tthc migrate` first",
        )
    db = Database.open(settings.database_url)
    app[DATABASE] = db
    dispatcher = Dispatcher(app[QUEUE])
    writer = IngestWriter(db, on_notices=dispatcher, links=Links.for_settings(settings))
    await writer.start()
    app[WRITER] = writer
    yield
    await writer.stop()
    await dispatcher.close()
    await db.close()


async def _providers(app: web.Application) -> AsyncIterator[None]:
    # Only their receipt parsers are used here; sending happens in the worker.
    async with aiohttp.ClientSession() as session:
        providers = build_sms_providers(app[SETTINGS], session)
        parsers: dict[str, ReceiptParser] = {p.name: p.parse_receipts for p in providers}
        app[RECEIPT_PARSERS] = parsers
        yield


_REDIS_CONNECTIONS: Final = 100


async def _redis(app: web.Application) -> AsyncIterator[None]:
    # A burst of webhooks waits (up to 2 s) for one of the pool's connections instead of
    # being refused with "Too many connections" once 100 are in use.
    pool = BlockingConnectionPool.from_url(
        app[SETTINGS].redis_url,
        max_connections=_REDIS_CONNECTIONS,
        timeout=2,
        socket_connect_timeout=2,
        socket_timeout=5,
    )
    client: Redis = Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
    app[REDIS] = client
    yield
    await client.aclose()


def create_app(settings: Settings, *, clock: Callable[[], float] = time.time) -> web.Application:
    """Build the gateway's HTTP application; resources open in ``cleanup_ctx``."""
    app = web.Application(
        middlewares=[problem_middleware, content_encoding_middleware, ops.timing_middleware],
        client_max_size=settings.max_body_bytes,
        # Content-Encoding is decoded by content_encoding_middleware, not by the HTTP
        # parser, whose failures cannot be answered as problems (gateway.http.encoding).
        handler_args={"auto_decompress": False},
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[METRICS] = Metrics()
    app[TEXTS] = Texts.for_settings(settings)
    # Loaded now so a malformed overrides file stops the start, naming the variable.
    app[CALENDAR] = WorkingCalendar(
        load_overrides(settings.holiday_overrides_file or DEFAULT_OVERRIDES_FILE),
        tz=settings.time_zone,
    )
    # Read again at each finding (an edited ladder applies without a restart); checked now
    # so that a malformed one stops the start, naming the variable.
    load_ladder(settings.audit.ladder_file)
    # The queue first: ingest, the staff API and the webhook waker all enqueue through it.
    app.cleanup_ctx.append(_queue)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_redis)
    app.cleanup_ctx.append(_providers)
    app.cleanup_ctx.append(zalo.waker_ctx)
    app.add_routes(api.routes)
    app.add_routes(ops.routes)
    app.add_routes(webhooks.routes)
    app.add_routes(zalo.routes)
    app.add_routes(staff.routes)
    app.add_routes(audit.routes)
    # The OpenAPI document of the routes above and its reference page (public).
    app.add_routes(openapi.routes)
    # The citizen page (/tra-cuu, /l/<token>): Vietnamese HTML, its own sessions and CSRF.
    setup_citizen(app, settings)
    # The staff console: its own middlewares (sessions, CSRF), the main app's resources.
    app.add_subapp("/console/", create_console(settings))
    return app
