"""Shared pieces of the ledger tests: dossier codes, posting, reading the ledger back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.db import create_engine
from gateway.storage.tables import dossier_audit, officers, violation_decisions, violations
from tests.helpers import Gateway

AGENCY = "000.00.12.H19"
# Consulted agency of tests.helpers' consultation events.
CONSULTED = "000.00.05.H19"
# In a working week (Mon 8 - Fri 12 April 2024): before the dossiers' due date of the
# 12th, after the working days the consultation due on the 5th may be answered in.
NOW = datetime.fromisoformat("2024-04-11T12:00:00+07:00")


def code(n: int) -> str:
    """The n-th test dossier code."""
    return f"{AGENCY}-240401-{n:04d}"


async def post_all(gateway: Gateway, bodies: list[dict[str, Any]]) -> None:
    """Post events one by one; each must be accepted (or replayed)."""
    for body in bodies:
        status, answer, _ = await gateway.post(body)
        assert status in (200, 202), answer


@asynccontextmanager
async def writer(url: str) -> AsyncIterator[AsyncEngine]:
    """A writer engine on the test database, disposed of afterwards."""
    engine = create_engine(url, writer=True, pool_size=1)
    try:
        yield engine
    finally:
        await engine.dispose()


async def ledger(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every violation, oldest id first."""
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(violations).order_by(violations.c.id))
        return [dict(r._mapping) for r in rows]


async def decisions(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every decision, oldest first."""
    async with engine.connect() as conn:
        query = sa.select(violation_decisions).order_by(violation_decisions.c.id)
        return [dict(r._mapping) for r in await conn.execute(query)]


async def audits(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    """``dossier_audit`` rows by dossier code."""
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(dossier_audit))
        return {r.dossier_code: dict(r._mapping) for r in rows}


async def directory(engine: AsyncEngine) -> dict[str, dict[str, Any]]:
    """The officer directory by id."""
    async with engine.connect() as conn:
        return {r.id: dict(r._mapping) for r in await conn.execute(sa.select(officers))}
