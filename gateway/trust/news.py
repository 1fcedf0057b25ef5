"""What a citizen is told about a dossier: the notices sent about it.

One rule for the OA bot's answers (:mod:`gateway.chat.services`) and the citizen page
(:mod:`gateway.http.citizen.lookup`): one-time codes are not news about the dossier, so
neither lists them, whoever asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.storage.tables import notices
from gateway.trust.otp import OTP_KIND

__all__ = ["dossier_notices"]


async def dossier_notices(
    conn: AsyncConnection, code: str, *, sent_only: bool = False
) -> Sequence[Any]:
    """The notices about dossier ``code`` but one-time codes (``kind``, ``channel``,
    ``state``, ``sent_at``), in the order they were made; with ``sent_only``, those sent,
    in the order they were sent."""
    query = sa.select(notices.c.kind, notices.c.channel, notices.c.state, notices.c.sent_at).where(
        notices.c.dossier_code == code, notices.c.kind != OTP_KIND
    )
    if sent_only:
        query = query.where(notices.c.sent_at.is_not(None)).order_by(notices.c.sent_at)
    else:
        query = query.order_by(notices.c.created_at)
    return (await conn.execute(query)).all()
