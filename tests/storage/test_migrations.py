"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from gateway.storage import migrate
from gateway.storage.db import create_engine, parse_database_url
from gateway.storage.tables import metadata


async def test_migrated_schema_matches_metadata(database_url: str) -> None:
    assert await migrate.current_revision(database_url) == migrate.head_revision()
    engine = create_engine(database_url, pool_size=1)
    schema = parse_database_url(database_url).schema

    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "version_table_schema": schema,
                # Alembic's own bookkeeping table is not part of the declared schema.
                "include_name": lambda name, kind, _: name != "alembic_version",
            },
        )
        return list(compare_metadata(context, metadata))

    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()
