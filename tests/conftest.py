"""Shared fixtures: real Redis, real SQLite and PostgreSQL, the gateway on loopback HTTP."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from gateway.settings import Settings
    from tests.helpers import Gateway

# The infrastructure is imported where a fixture needs it, so that suites needing none
# (tests/bot, tests/domain) start without loading aiohttp, Redis, RQ or the database.


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    from tests.services import redis_url

    url, private = redis_url()
    yield url
    if private is not None:
        private.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str | None]:
    from tests.services import postgres_url

    url, why = postgres_url()
    if url is None:
        print(f"\nPostgreSQL tests skipped: {why}")
    yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gateway.storage import migrate

    path = tmp_path_factory.mktemp("template") / "tthc.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_schema(postgres_server: str | None) -> Iterator[str]:
    if postgres_server is None:
        pytest.skip("no PostgreSQL server could be had (see the message at the start of the run)")
    import asyncpg

    from gateway.storage import migrate

    schema = f"tthc_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = f"{postgres_server}?schema={schema}"
    migrate.upgrade(url)
    yield url

    async def drop() -> None:
        conn = await asyncpg.connect(postgres_server)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()

    asyncio.run(drop())


async def truncate_postgres(url: str) -> None:
    import asyncpg

    from gateway.storage.tables import metadata

    server, _, schema = url.partition("?schema=")
    conn = await asyncpg.connect(server)
    try:
        names = ", ".join(f'"{schema}".{t.name}' for t in metadata.sorted_tables)
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each kind; storage-facing tests run on both."""
    if request.param == "sqlite":
        target = tmp_path / "tthc.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("postgres_schema")
    asyncio.run(truncate_postgres(url))
    return url


@pytest.fixture
def settings(database_url: str, redis_server: str) -> Iterator[Settings]:
    from gateway.settings import Settings
    from tests.helpers import SOURCES

    settings = Settings.from_mapping(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_server,
            "EVENT_SOURCES": ",".join(f"{k}:{v}" for k, v in SOURCES.items()),
            "REDIS_KEY_PREFIX": f"tthc-test-{os.getpid()}-{uuid.uuid4().hex[:6]}:",
            "MAX_BODY_BYTES": "65536",
        }
    )
    yield settings
    forget_queues(settings)


def forget_queues(settings: Settings) -> None:
    """Delete the queues (and their jobs) this test created under its own prefix."""
    from redis import Redis
    from rq import Queue

    from gateway.chat.queue import chat_queue_name
    from gateway.delivery.queues import queue_names

    redis = Redis.from_url(settings.redis_url)
    try:
        for name in (chat_queue_name(settings), *queue_names(settings)):
            queue = Queue(name, connection=redis)
            queue.empty()
            queue.delete(delete_jobs=True)
        for key in redis.scan_iter(match=f"{settings.redis_key_prefix}*"):
            redis.delete(key)
    finally:
        redis.close()


@pytest.fixture
async def gateway(settings: Settings, aiohttp_client: object) -> AsyncIterator[Gateway]:
    from aiohttp.test_utils import TestClient

    from gateway.http.app import create_app
    from tests.helpers import Gateway

    client: TestClient = await aiohttp_client(create_app(settings))  # type: ignore[operator]
    yield Gateway(client, settings)
