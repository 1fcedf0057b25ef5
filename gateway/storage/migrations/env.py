"""Alembic environment: runs migrations over the async engine of DATABASE_URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from gateway.storage.db import create_engine, parse_database_url
from gateway.storage.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    schema = parse_database_url(config.get_main_option("database_url") or "").schema
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        version_table_schema=schema,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    url = config.get_main_option("database_url")
    if not url:
        raise RuntimeError("database_url is not set on the Alembic config")
    engine = create_engine(url, writer=True, pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run `tthc migrate`")
asyncio.run(_run_online())
