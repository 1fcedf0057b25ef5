"""Database engines for the embedded SQLite default and for PostgreSQL.

SQLite runs in WAL mode with full fsync; the single writer engine opens its transactions
with ``BEGIN IMMEDIATE`` so two processes never deadlock upgrading a read lock, while
readers use their own pool and never block on the writer. ``DATABASE_URL`` may carry a
``schema=`` query parameter for PostgreSQL (tests and multi-tenant installs use it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
)
# The ingest writer's page cache, 64 MiB (a negative size is in KiB; SQLite's default is
# 2 MiB): the index pages a group touches stay in memory as the file grows, instead of
# being read again from the OS. Readers keep the default; there may be many of them.
_SQLITE_WRITER_CACHE = "PRAGMA cache_size=-65536"


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """A DATABASE_URL split into what SQLAlchemy needs."""

    async_url: str
    dialect: str
    schema: str | None
    sqlite_path: Path | None


def parse_database_url(url: str) -> DatabaseUrl:
    """Turn the operator's DATABASE_URL into an async driver URL (and schema, if any)."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        # SQLAlchemy's convention: sqlite:///relative/path, sqlite:////absolute/path.
        raw_path = url.split("://", 1)[1].split("?", 1)[0]
        path = Path(raw_path[1:] if raw_path.startswith("/") else raw_path)
        return DatabaseUrl(f"sqlite+aiosqlite:///{path}", "sqlite", None, path)
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", None)
    rebuilt = urlunsplit(
        ("postgresql+asyncpg", parts.netloc, parts.path, urlencode(query), parts.fragment)
    )
    return DatabaseUrl(rebuilt, "postgresql", schema, None)


def _on_sqlite_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" listener decide how transactions start.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# orjson is several times faster than the standard library on the ingest hot path.
_JSON = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def create_engine(url: str, *, writer: bool = False, pool_size: int = 5) -> AsyncEngine:
    """An async engine; ``writer=True`` makes the single-connection SQLite writer."""
    parsed = parse_database_url(url)
    if parsed.dialect == "sqlite":
        assert parsed.sqlite_path is not None
        parsed.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            parsed.async_url,
            pool_size=1 if writer else pool_size,
            max_overflow=0 if writer else 10,
            connect_args={"timeout": 10},
            **_JSON,
        )
        begin = "BEGIN IMMEDIATE" if writer else "BEGIN"
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql(begin)

        return engine
    # asyncpg prepares every statement; a generic plan cached while a table was empty (a
    # sequential scan) would otherwise stay in use as the table grows.
    server_settings = {"plan_cache_mode": "force_custom_plan"}
    if parsed.schema:
        server_settings["search_path"] = parsed.schema
    connect_args: dict[str, Any] = {"command_timeout": 30, "server_settings": server_settings}
    return create_async_engine(
        parsed.async_url,
        pool_size=pool_size,
        max_overflow=10,
        pool_pre_ping=True,
        connect_args=connect_args,
        **_JSON,
    )


def create_sqlite_writer(url: str) -> Engine:
    """The synchronous single-connection SQLite writer, used from one dedicated thread."""
    parsed = parse_database_url(url)
    assert parsed.sqlite_path is not None
    parsed.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    engine = sqlalchemy.create_engine(
        f"sqlite:///{parsed.sqlite_path}",
        pool_size=1,
        max_overflow=0,
        connect_args={"timeout": 10, "check_same_thread": False},
        **_JSON,
    )
    event.listen(engine, "connect", _on_sqlite_connect)

    @event.listens_for(engine, "connect")
    def _writer_cache(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        dbapi_connection.execute(_SQLITE_WRITER_CACHE).close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@dataclass(slots=True)
class Database:
    """Engines: ``reader`` for queries; ``writer`` for small read-then-write transactions
    (on SQLite they begin IMMEDIATE, so a read lock is never upgraded under another
    writer); ``sync_writer`` for the ingest thread on SQLite. On PostgreSQL all three
    roles share one async engine and ``sync_writer`` is None."""

    url: str
    reader: AsyncEngine
    writer: AsyncEngine
    sync_writer: Engine | None = None

    @property
    def dialect(self) -> str:
        return self.reader.dialect.name

    @classmethod
    def open(cls, url: str) -> Database:
        reader = create_engine(url)
        if reader.dialect.name == "sqlite":
            writer = create_engine(url, writer=True, pool_size=1)
            return cls(url, reader, writer, create_sqlite_writer(url))
        return cls(url, reader, reader)

    async def close(self) -> None:
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()
        if self.sync_writer is not None:
            self.sync_writer.dispose()
