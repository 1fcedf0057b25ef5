"""The outbox as delivery sees it: short transactions that move notices and attempts on.

Notice states: ``created`` (written at ingest) → ``queued`` (handed to the queue, maybe
deferred by ``not_before``) → ``sending`` (claimed by one worker, under a lease) →
``sent`` → ``delivered`` | ``failed``. ``no_recipient`` and ``unknown`` (a provider
without an idempotency key may have taken it before a crash: a person decides) are final.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.storage.tables import deliveries, notices

CLAIMABLE = ("created", "queued")


@dataclass(frozen=True, slots=True)
class ClaimedNotice:
    """A notice this worker now holds the lease on."""

    id: str
    dossier_code: str
    kind: str
    phone_e164: str | None
    params: dict[str, Any]
    attempts: int
    lane: str
    # Set on notices that answer something the citizen started on the OA (a report).
    zalo_user_id: str | None = None


async def release(
    engine: AsyncEngine,
    notice_id: str,
    now: datetime,
    *,
    not_before: datetime | None,
    error: str | None = None,
) -> None:
    """Give the notice back to the queue, to be tried again at ``not_before``."""
    async with engine.begin() as conn:
        await conn.execute(
            notices.update()
            .where(notices.c.id == notice_id, notices.c.state == "sending")
            .values(state="queued", not_before=not_before, last_error=error, updated_at=now)
        )


async def due_for_relay(
    engine: AsyncEngine, now: datetime, *, grace: timedelta, lease: timedelta, limit: int
) -> list[tuple[str, str]]:
    """Notices that should be on the queue but may not be: (id, lane), oldest first.

    ``created`` rows older than ``grace`` (the gateway enqueues new ones itself), ``queued``
    rows whose time has come and that were not touched for ``grace``, and ``sending`` rows
    whose worker's lease ran out. Each is stamped so the next run skips it for a while.
    """
    due = sa.or_(notices.c.not_before.is_(None), notices.c.not_before <= now)
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                sa.select(notices.c.id, notices.c.lane)
                .where(
                    sa.or_(
                        sa.and_(
                            notices.c.state.in_(CLAIMABLE), notices.c.updated_at < now - grace, due
                        ),
                        sa.and_(notices.c.state == "sending", notices.c.updated_at < now - lease),
                    )
                )
                .order_by(notices.c.created_at)
                .limit(limit)
            )
        ).all()
        ids = [row.id for row in rows]
        if ids:
            await conn.execute(
                notices.update()
                .where(notices.c.id.in_(ids), notices.c.state.in_(CLAIMABLE))
                .values(state="queued", updated_at=now)
            )
    return [(row.id, row.lane) for row in rows]


async def apply_receipt(
    engine: AsyncEngine,
    provider: str,
    provider_message_id: str | None,
    request_id: str | None,
    status: str,
    detail: str,
    now: datetime,
) -> str:
    """Move the attempt and its notice to delivered/failed.

    Returns ``applied``, ``unknown`` (no attempt matches) or ``early`` (the attempt is
    still being recorded as accepted: the caller should ask the vendor to retry).

    Duplicate and late receipts are harmless: only ``sent`` notices move on (and
    ``unknown`` ones, whose send lost its answer: the receipt proves the vendor had it),
    and a ``delivered`` notice never goes back.
    """
    if status == "pending":
        return "applied"
    async with engine.begin() as conn:
        match = (
            deliveries.c.request_id == request_id
            if request_id
            else sa.and_(
                deliveries.c.provider == provider,
                deliveries.c.provider_message_id == provider_message_id,
            )
        )
        row = (await conn.execute(sa.select(deliveries).where(match))).first()
        if row is None:
            return "unknown"
        if row.state == "sending":
            return "early"
        if row.state == "unknown":
            # The vendor had the message after all. A notice left for a person to check is
            # settled by it; one being asked again waits until that answer is recorded.
            notice_state = (
                await conn.execute(sa.select(notices.c.state).where(notices.c.id == row.notice_id))
            ).scalar()
            if notice_state != "unknown":
                return "early"
        elif row.state != "accepted":
            if row.state == "failed" and status == "delivered":
                # The notice went on by another channel (no ZNS receipt in time): keep the
                # evidence of the double delivery, leave the notice as it is.
                await conn.execute(
                    deliveries.update()
                    .where(deliveries.c.request_id == row.request_id)
                    .values(state="delivered_late", updated_at=now)
                )
            return "applied"
        await conn.execute(
            deliveries.update()
            .where(
                deliveries.c.request_id == row.request_id,
                deliveries.c.state.in_(("accepted", "unknown")),
            )
            .values(state=status, error=None if status == "delivered" else detail, updated_at=now)
        )
        values: dict[str, Any] = {"state": status, "updated_at": now, "receipt_due_at": None}
        if status == "delivered":
            values["delivered_at"] = now
        else:
            values["last_error"] = detail
        await conn.execute(
            notices.update()
            .where(
                notices.c.id == row.notice_id,
                notices.c.state.in_(("sent", "unknown")),
                notices.c.channel == row.channel,
            )
            .values(**values)
        )
    return "applied"


async def claim_many(
    engine: AsyncEngine, ids: list[str], now: datetime, lease: timedelta
) -> tuple[list[ClaimedNotice], dict[str, Any]]:
    """Claim every due, free notice among ``ids`` in one transaction.

    Returns the claimed notices and their earlier attempts by request id.
    """
    free = sa.or_(
        notices.c.state.in_(CLAIMABLE),
        sa.and_(notices.c.state == "sending", notices.c.updated_at < now - lease),
    )
    due = sa.or_(notices.c.not_before.is_(None), notices.c.not_before <= now)
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                sa.select(notices).where(
                    notices.c.id.in_(ids),
                    free,
                    due,
                    sa.or_(notices.c.phone_e164.is_not(None), notices.c.zalo_user_id.is_not(None)),
                )
            )
        ).all()
        ids_free = [row.id for row in rows]
        claimed: list[ClaimedNotice] = []
        if ids_free:
            # One statement for the batch; the same conditions again so that a row another
            # worker took in between is not taken twice (its state or lease changed).
            await conn.execute(
                notices.update()
                .where(notices.c.id.in_(ids_free), free, due)
                .values(state="sending", attempts=notices.c.attempts + 1, updated_at=now)
            )
            mine = {
                row.id
                for row in await conn.execute(
                    sa.select(notices.c.id).where(
                        notices.c.id.in_(ids_free),
                        notices.c.state == "sending",
                        notices.c.updated_at == now,
                    )
                )
            }
            claimed = [
                ClaimedNotice(
                    row.id,
                    row.dossier_code,
                    row.kind,
                    row.phone_e164,
                    row.params,
                    row.attempts + 1,
                    row.lane,
                    row.zalo_user_id,
                )
                for row in rows
                if row.id in mine
            ]
        earlier = {}
        if claimed:
            for attempt_row in await conn.execute(
                sa.select(deliveries).where(deliveries.c.notice_id.in_([c.id for c in claimed]))
            ):
                earlier[attempt_row.request_id] = attempt_row
    return claimed, earlier


async def start_attempts(
    engine: AsyncEngine, attempts: list[tuple[str, str, str]], channel: str, now: datetime
) -> None:
    """Write (request id, notice id, provider) attempts as ``sending`` before any is sent."""
    if not attempts:
        return
    async with engine.begin() as conn:
        known = {
            row.request_id
            for row in await conn.execute(
                sa.select(deliveries.c.request_id).where(
                    deliveries.c.request_id.in_([a[0] for a in attempts])
                )
            )
        }
        fresh = [
            {
                "request_id": request_id,
                "notice_id": notice_id,
                "channel": channel,
                "provider": provider,
                "state": "sending",
                "created_at": now,
                "updated_at": now,
            }
            for request_id, notice_id, provider in attempts
            if request_id not in known
        ]
        if fresh:
            await conn.execute(deliveries.insert(), fresh)
        if known:
            await conn.execute(
                deliveries.update()
                .where(deliveries.c.request_id.in_(sorted(known)))
                .values(state="sending", updated_at=now)
            )


async def record(
    engine: AsyncEngine,
    attempts: list[dict[str, Any]],
    outcomes: list[dict[str, Any]],
    now: datetime,
) -> None:
    """Write attempt results and notice outcomes of one round in one transaction.

    ``attempts``: dicts with ``request_id`` and the columns to set; ``outcomes``: dicts with
    ``id`` and the notice columns to set.
    """
    async with engine.begin() as conn:
        for rows, table, key in ((attempts, deliveries, "request_id"), (outcomes, notices, "id")):
            # executemany per set of columns: one statement for many rows.
            by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for values in rows:
                columns = tuple(sorted(k for k in values if k != key))
                by_columns.setdefault(columns, []).append(
                    {**{f"v_{k}": v for k, v in values.items() if k != key}, "b_key": values[key]}
                )
            for columns, params in by_columns.items():
                statement = (
                    table.update()
                    .where(table.c[key] == sa.bindparam("b_key"))
                    .values(updated_at=now, **{c: sa.bindparam(f"v_{c}") for c in columns})
                )
                await conn.execute(statement, params)
