"""An event is recorded whole or not at all, even when the database fails mid-transaction.

A real database trigger aborts the insert of one dossier's notice: by then its event,
dossier and flag rows have already been written in the same transaction. None of them
may survive, the other events of the same group commit, and the failed one is accepted
once the fault is gone.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from gateway.storage.db import create_engine
from tests.helpers import Gateway, event

DOOMED = "000.00.12.H19-240401-0666"

SQLITE_TRIGGER = f"""
CREATE TRIGGER inject_failure BEFORE INSERT ON notices
WHEN NEW.dossier_code = '{DOOMED}'
BEGIN SELECT RAISE(ABORT, 'injected failure'); END
"""
PG_FUNCTION = f"""
CREATE FUNCTION inject_failure() RETURNS trigger AS $$
BEGIN
  IF NEW.dossier_code = '{DOOMED}' THEN RAISE EXCEPTION 'injected failure'; END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql
"""
PG_TRIGGER = (
    "CREATE TRIGGER inject_failure BEFORE INSERT ON notices "
    "FOR EACH ROW EXECUTE FUNCTION inject_failure()"
)


async def _sql(url: str, *statements: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.exec_driver_sql(statement)
    finally:
        await engine.dispose()


async def _count(url: str, table: str, code: str) -> int:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            column = "code" if table == "dossiers" else "dossier_code"
            query = sa.text(f"SELECT COUNT(*) FROM {table} WHERE {column} = :code")
            return int((await conn.execute(query, {"code": code})).scalar_one())
    finally:
        await engine.dispose()


async def test_failure_midway_leaves_nothing_of_the_event(gateway: Gateway) -> None:
    url = gateway.settings.database_url
    if url.startswith("sqlite"):
        await _sql(url, SQLITE_TRIGGER)
    else:
        await _sql(url, PG_FUNCTION, PG_TRIGGER)

    doomed = event("dossier.received", code=DOOMED, applicant={"name": "Lê Thị Hoa", "phone": ""})
    others = [event("dossier.received", code=f"000.00.12.H19-240401-{n:04d}") for n in range(1, 9)]
    # Posted together so they share a group transaction with the doomed one.
    answers = await asyncio.gather(
        *(gateway.post(body) for body in [*others[:4], doomed, *others[4:]])
    )
    statuses = [status for status, _, _ in answers]
    assert statuses[4] == 503
    assert answers[4][2].headers["Retry-After"].isdigit()
    assert answers[4][1]["type"] == "urn:tthc:problem:unavailable"
    assert statuses[:4] + statuses[5:] == [202] * 8

    for table in ("events", "dossiers", "flags", "notices"):
        assert await _count(url, table, DOOMED) == 0, table
    for body in others:
        assert await _count(url, "notices", body["dossier"]["code"]) == 1

    if url.startswith("sqlite"):
        await _sql(url, "DROP TRIGGER inject_failure")
    else:
        await _sql(url, "DROP TRIGGER inject_failure ON notices", "DROP FUNCTION inject_failure()")
    status, answer, _ = await gateway.post(doomed)
    assert status == 202, answer
    assert [f["rule"] for f in answer["flags"]] == ["phone_missing"]
    view = await gateway.dossier(DOOMED)
    assert [e["type"] for e in view["timeline"]] == ["dossier.received"]
    assert [n["kind"] for n in view["notices"]] == ["receipt"]
