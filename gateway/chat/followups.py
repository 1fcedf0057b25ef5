"""Questions the gateway asks citizens later: "did you receive the result?" and "rate us".

Run by the cron every minute; idempotent. A finished dossier gets a result check
``RESULT_CHECK_WORKING_DAYS`` working days after it was finished, unless it was
delivered meanwhile (the citizen has the result). A delivered dossier whose number has
a Zalo subscriber gets a rating request. Both go by OA message (or a ZNS template if one
is configured); a result check also goes by SMS when it carries a signed link to the
citizen page (``links``, with ``CITIZEN_SECRET`` set), where a citizen without Zalo
answers it. A rating request never goes by SMS (the page offers the rating); with a ZNS
rating template configured (``ZNS_TEMPLATE_RATING_REQUEST``, ``zns_rating``) it also goes
to delivered dossiers whose number has no subscriber, by ZNS, and the stars come back by
webhook (gateway.chat.zns_ratings). Their dedupe keys make them once per dossier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.domain.calendar import WorkingCalendar
from gateway.storage import outbox
from gateway.storage.outbox import NewNotice
from gateway.storage.tables import dossiers, notices, result_checks, zalo_users
from gateway.trust.links import Links

# Dossiers finished longer ago than this are not asked any more (a gateway started late,
# or a backlog imported in bulk, must not ask about last year's results).
LOOKBACK = timedelta(days=30)
BATCH = 500


@dataclass(frozen=True, slots=True)
class FollowUps:
    """What one run did."""

    scheduled: int
    asked: list[str]
    skipped: int
    rating_requests: list[str]

    @property
    def notice_ids(self) -> list[str]:
        return [*self.asked, *self.rating_requests]


async def run(
    engine: AsyncEngine,
    now: datetime,
    calendar: WorkingCalendar,
    working_days: int,
    links: Links | None = None,
    *,
    zns_rating: bool = False,
) -> FollowUps:
    """Schedule, ask and request; returns the new notice ids to put on the queue.
    ``zns_rating``: a ZNS rating template is configured (rate by ZNS without the OA)."""
    async with engine.begin() as conn:
        scheduled = await _schedule(conn, now, calendar, working_days)
        asked, skipped = await _ask(conn, now, links)
        ratings = await _rating_requests(conn, now, zns_rating)
    return FollowUps(scheduled, asked, skipped, ratings)


async def _schedule(
    conn: AsyncConnection, now: datetime, calendar: WorkingCalendar, working_days: int
) -> int:
    rows = (
        await conn.execute(
            sa.select(dossiers.c.code, dossiers.c.phone_e164, dossiers.c.finished_at)
            .select_from(
                dossiers.outerjoin(result_checks, result_checks.c.dossier_code == dossiers.c.code)
            )
            .where(
                dossiers.c.state == "finished",
                dossiers.c.finished_at >= now - LOOKBACK,
                result_checks.c.dossier_code.is_(None),
            )
            .limit(BATCH)
        )
    ).all()
    if rows:
        # Two crons (two workers started without --no-cron) may pick the same dossiers:
        # the second leaves the first's rows alone instead of failing the whole job.
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        await conn.execute(
            insert(result_checks).on_conflict_do_nothing(index_elements=["dossier_code"]),
            [
                {
                    "dossier_code": row.code,
                    "phone_e164": row.phone_e164,
                    "due_at": calendar.add_working_days(row.finished_at, working_days),
                    "state": "scheduled",
                }
                for row in rows
            ],
        )
    return len(rows)


async def _ask(conn: AsyncConnection, now: datetime, links: Links | None) -> tuple[list[str], int]:
    rows = (
        await conn.execute(
            sa.select(result_checks.c.dossier_code, dossiers)
            .select_from(
                result_checks.join(dossiers, dossiers.c.code == result_checks.c.dossier_code)
            )
            .where(result_checks.c.state == "scheduled", result_checks.c.due_at <= now)
            .order_by(result_checks.c.due_at)
            .limit(BATCH)
        )
    ).all()
    asked: list[str] = []
    skipped = 0
    for row in rows:
        if row.state != "finished" or row.phone_e164 is None:
            # Delivered (the citizen has it), reopened, or no number to ask.
            await conn.execute(
                result_checks.update()
                .where(result_checks.c.dossier_code == row.code)
                .values(state="skipped")
            )
            skipped += 1
            continue
        notice_id = await _notice(conn, row, "result_check", now, links)
        await conn.execute(
            result_checks.update()
            .where(result_checks.c.dossier_code == row.code)
            .values(state="asked", asked_at=now, notice_id=notice_id)
        )
        if notice_id is not None:
            asked.append(notice_id)
    return asked, skipped


async def _rating_requests(conn: AsyncConnection, now: datetime, zns_rating: bool) -> list[str]:
    requested = sa.select(notices.c.dossier_code).where(notices.c.kind == "rating_request")
    subscribers = sa.select(zalo_users.c.phone_e164).where(zalo_users.c.subscribed_at.is_not(None))
    # A ZNS rating template reaches any number with a Zalo account, subscribed or not.
    reachable = (
        dossiers.c.phone_e164.is_not(None) if zns_rating else dossiers.c.phone_e164.in_(subscribers)
    )
    rows = (
        await conn.execute(
            sa.select(dossiers)
            .where(
                dossiers.c.state == "delivered",
                dossiers.c.state_at >= now - LOOKBACK,
                reachable,
                dossiers.c.code.not_in(requested),
            )
            .limit(BATCH)
        )
    ).all()
    created = [await _notice(conn, row, "rating_request", now) for row in rows]
    return [notice_id for notice_id in created if notice_id is not None]


async def _notice(
    conn: AsyncConnection, dossier: Any, kind: str, now: datetime, links: Links | None = None
) -> str | None:
    """Insert the once-per-dossier notice unless it exists; returns its id if new."""
    extra: dict[str, Any] = {}
    if kind == "result_check" and dossier.finished_at is not None:
        extra["finished_at"] = dossier.finished_at.isoformat()  # "has had its result since …"
    question = NewNotice.once_per_dossier(kind, dossier, f"{kind}-{dossier.code}", **extra)
    return await outbox.insert_once(conn, question, now, links)
