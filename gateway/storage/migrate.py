"""Schema migrations: apply them (``tthc migrate``) and check them (``tthc serve`` refuses to
start on a database that is behind)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from gateway.storage.db import create_engine, parse_database_url

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # '%' is an interpolation character for configparser.
    config.set_main_option("database_url", database_url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to ``revision`` (blocking; call from a thread in async code)."""
    parsed = parse_database_url(database_url)
    if parsed.schema:
        asyncio.run(_create_schema(database_url, parsed.schema))
    command.upgrade(alembic_config(database_url), revision)


async def _create_schema(database_url: str, schema: str) -> None:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        await engine.dispose()


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    engine = create_engine(database_url, pool_size=1)

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(
            connection, opts={"version_table_schema": parse_database_url(database_url).schema}
        ).get_current_revision()

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(read)
    finally:
        await engine.dispose()
