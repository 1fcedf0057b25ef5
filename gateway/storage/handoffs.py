"""Conversations handed to a person: the hotline reads them and answers through the OA.

The bot opens a handoff when a citizen asks for a person and links their messages to it.
Staff replies are stored here as ``chat_messages`` rows (direction ``staff``, not yet
handled); the chat job sends them and marks them handled, so a reply is sent once.

A citizen's message (direction ``in``) is unread until staff open the conversation
after it: ``handoffs.staff_read_at`` holds the last opening.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import Conflict, NotFound
from gateway.storage.tables import chat_messages, handoffs, zalo_users

__all__ = [
    "HandoffRow",
    "add_reply",
    "close_handoff",
    "get_handoff",
    "list_handoffs",
    "mark_read",
    "total_unread",
    "unread_counts",
    "withdraw_reply",
]


@dataclass(frozen=True, slots=True)
class HandoffRow:
    """A handoff with what is known of the citizen (a phone only once they proved it)."""

    id: int
    user_id: str
    dossier_code: str | None
    status: str
    opened_at: datetime
    closed_at: datetime | None
    last_message_at: datetime
    display_name: str | None
    phone_e164: str | None
    staff_read_at: datetime | None = None


def _select() -> sa.Select[Any]:
    verified_phone = sa.case(
        (zalo_users.c.verified_at.is_not(None), zalo_users.c.phone_e164), else_=None
    )
    return sa.select(
        handoffs, zalo_users.c.display_name, verified_phone.label("verified_phone")
    ).select_from(handoffs.outerjoin(zalo_users, zalo_users.c.user_id == handoffs.c.user_id))


def _handoff(row: Any) -> HandoffRow:
    return HandoffRow(
        row.id,
        row.user_id,
        row.dossier_code,
        row.status,
        row.opened_at,
        row.closed_at,
        row.last_message_at,
        row.display_name,
        row.verified_phone,
        row.staff_read_at,
    )


async def list_handoffs(
    reader: AsyncEngine, status: str, limit: int
) -> list[tuple[HandoffRow, dict[str, Any] | None]]:
    """Handoffs in ``status``, latest activity first, each with its last message."""
    async with reader.connect() as conn:
        rows = [
            _handoff(r)
            for r in await conn.execute(
                _select()
                .where(handoffs.c.status == status)
                .order_by(handoffs.c.last_message_at.desc(), handoffs.c.id.desc())
                .limit(limit)
            )
        ]
        last: dict[int, dict[str, Any]] = {}
        if rows:
            latest = (
                sa.select(sa.func.max(chat_messages.c.id))
                .where(chat_messages.c.handoff_id.in_([h.id for h in rows]))
                .group_by(chat_messages.c.handoff_id)
            )
            for m in await conn.execute(
                sa.select(chat_messages).where(chat_messages.c.id.in_(latest))
            ):
                last[m.handoff_id] = dict(m._mapping)
    return [(h, last.get(h.id)) for h in rows]


async def get_handoff(
    reader: AsyncEngine, handoff_id: int
) -> tuple[HandoffRow, list[dict[str, Any]]] | None:
    """A handoff and its messages, oldest first; None if there is no such handoff."""
    async with reader.connect() as conn:
        row = (await conn.execute(_select().where(handoffs.c.id == handoff_id))).first()
        if row is None:
            return None
        messages = [
            dict(m._mapping)
            for m in await conn.execute(
                sa.select(chat_messages)
                .where(chat_messages.c.handoff_id == handoff_id)
                .order_by(chat_messages.c.id)
            )
        ]
    return _handoff(row), messages


async def _locked(conn: AsyncConnection, handoff_id: int) -> Any:
    row = (
        await conn.execute(sa.select(handoffs).where(handoffs.c.id == handoff_id).with_for_update())
    ).first()
    if row is None:
        raise NotFound(f"no handoff {handoff_id}")
    return row


async def add_reply(
    engine: AsyncEngine, handoff_id: int, staff_id: int, text: str, now: datetime
) -> int:
    """Store a staff reply to send; returns its message id.

    Raises :class:`NotFound` for an unknown handoff and :class:`Conflict` for a closed one.
    """
    async with engine.begin() as conn:
        handoff = await _locked(conn, handoff_id)
        if handoff.status != "open":
            raise Conflict(f"handoff {handoff_id} is closed; the citizen must ask again")
        message_id = (
            await conn.execute(
                chat_messages.insert()
                .values(
                    user_id=handoff.user_id,
                    direction="staff",
                    text=text,
                    dossier_code=handoff.dossier_code,
                    handoff_id=handoff_id,
                    staff_id=staff_id,
                    handled_at=None,
                    created_at=now,
                )
                .returning(chat_messages.c.id)
            )
        ).scalar_one()
        await conn.execute(
            handoffs.update().where(handoffs.c.id == handoff_id).values(last_message_at=now)
        )
    return int(message_id)


async def withdraw_reply(engine: AsyncEngine, message_id: int) -> bool:
    """Delete a stored reply that was never handed to the chat queue (not yet handled)."""
    async with engine.begin() as conn:
        result = await conn.execute(
            chat_messages.delete().where(
                chat_messages.c.id == message_id,
                chat_messages.c.direction == "staff",
                chat_messages.c.handled_at.is_(None),
            )
        )
    return bool(result.rowcount)


async def close_handoff(engine: AsyncEngine, handoff_id: int, now: datetime) -> HandoffRow:
    """Close a handoff; closing a closed one changes nothing. Raises :class:`NotFound`."""
    async with engine.begin() as conn:
        handoff = await _locked(conn, handoff_id)
        if handoff.status == "open":
            await conn.execute(
                handoffs.update()
                .where(handoffs.c.id == handoff_id)
                .values(status="closed", closed_at=now)
            )
        row = (await conn.execute(_select().where(handoffs.c.id == handoff_id))).one()
    return _handoff(row)


def _unread() -> sa.ColumnElement[bool]:
    """A citizen's message in a handoff, sent after staff last opened it."""
    return sa.and_(
        chat_messages.c.handoff_id == handoffs.c.id,
        chat_messages.c.direction == "in",
        sa.or_(
            handoffs.c.staff_read_at.is_(None),
            chat_messages.c.created_at > handoffs.c.staff_read_at,
        ),
    )


async def unread_counts(reader: AsyncEngine, handoff_ids: list[int]) -> dict[int, int]:
    """The unread citizen messages of each handoff in ``handoff_ids`` (0s included)."""
    counts = dict.fromkeys(handoff_ids, 0)
    if not handoff_ids:
        return counts
    query = (
        sa.select(handoffs.c.id, sa.func.count(chat_messages.c.id))
        .select_from(handoffs.join(chat_messages, _unread()))
        .where(handoffs.c.id.in_(handoff_ids))
        .group_by(handoffs.c.id)
    )
    async with reader.connect() as conn:
        for handoff_id, count in await conn.execute(query):
            counts[int(handoff_id)] = int(count)
    return counts


async def total_unread(reader: AsyncEngine) -> int:
    """The unread citizen messages of every open handoff: what is waiting for staff."""
    query = (
        sa.select(sa.func.count(chat_messages.c.id))
        .select_from(handoffs.join(chat_messages, _unread()))
        .where(handoffs.c.status == "open")
    )
    async with reader.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def mark_read(engine: AsyncEngine, handoff_id: int, now: datetime) -> None:
    """Staff opened the handoff at ``now``: its citizen messages until then are read.

    The time only moves forward, so a slow request cannot make read messages unread.
    """
    async with engine.begin() as conn:
        await conn.execute(
            handoffs.update()
            .where(
                handoffs.c.id == handoff_id,
                sa.or_(handoffs.c.staff_read_at.is_(None), handoffs.c.staff_read_at < now),
            )
            .values(staff_read_at=now)
        )
