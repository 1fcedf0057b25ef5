"""Subscriptions: a proven phone's notices on the Official Account instead of SMS.

Rules:

- Only an OA user whose number was proven by a one-time code (``zalo_users.phone_e164``
  with ``verified_at``) subscribes, and only that number: the caller (the bot) makes
  sure of it; :func:`subscribe` records ``subscribed_at``.
- When a phone's notices move to an OA user, the channel they went by before hears of it
  exactly once, by a notice of kind ``channel_moved`` (lane ``urgent``): an OA message
  to each OA user who was subscribed to that phone before (their subscription ends; the
  notice names them, so it never goes to the new subscriber, and it falls back to an SMS
  to the phone if their OA cannot be reached), or else an SMS to the phone itself (the
  notice names no OA user, and the delivery plan never hands a ``channel_moved`` notice to
  the phone's subscriber nor sends it by ZNS). The SMS says how to undo it: the signed link
  of the notice (``{{ link }}``, where configured) and the hotline.
- Subscribing again to the same number changes nothing and sends nothing.
- :func:`stop` ends a subscription from either side: from the OA (by the user's id) or
  from the page behind the SMS link (by the phone). Notices then go by ZNS or SMS again.

Nothing here logs a phone number.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.storage import outbox
from gateway.storage.outbox import GATEWAY_SOURCE, NewNotice
from gateway.storage.tables import zalo_users
from gateway.trust.links import Links

log = logging.getLogger(__name__)

CHANNEL_MOVED_KIND = "channel_moved"


async def subscribe(
    engine: AsyncEngine,
    *,
    user_id: str,
    phone_e164: str,
    now: datetime,
    links: Links | None = None,
) -> list[str]:
    """Move ``phone_e164``'s notices to OA user ``user_id`` (see the module doc); returns
    the ids of the ``channel_moved`` notices to offer to the queue (urgent). ``links``
    (``Links.for_settings``) stamps each notice's signed link to the citizen page."""
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                sa.select(zalo_users.c.user_id, zalo_users.c.phone_e164).where(
                    zalo_users.c.subscribed_at.is_not(None),
                    sa.or_(zalo_users.c.phone_e164 == phone_e164, zalo_users.c.user_id == user_id),
                )
            )
        ).all()
        if any(r.user_id == user_id and r.phone_e164 == phone_e164 for r in rows):
            return []
        previous = sorted(r.user_id for r in rows if r.user_id != user_id)
        if previous:
            await conn.execute(
                zalo_users.update()
                .where(zalo_users.c.user_id.in_(previous))
                .values(subscribed_at=None, updated_at=now)
            )
        await conn.execute(
            zalo_users.update()
            .where(zalo_users.c.user_id == user_id)
            .values(subscribed_at=now, updated_at=now)
        )
        recipients: list[str | None] = list(previous) or [None]
        ids = [await _moved_notice(conn, phone_e164, who, now, links) for who in recipients]
    log.info(
        "notices moved to an OA user",
        extra={"user": user_id, "previous_users": previous, "notices": ids},
    )
    return ids


async def stop(
    engine: AsyncEngine,
    *,
    phone_e164: str | None = None,
    user_id: str | None = None,
    by: str,
    now: datetime,
) -> str | None:
    """End the subscription of OA user ``user_id``, or of whoever is subscribed to
    ``phone_e164``; returns the OA user id whose subscription ended (None: there was
    none). ``by`` says who stopped it ("oa", "web", ...), for the log."""
    if (phone_e164 is None) == (user_id is None):
        raise ValueError("stop takes exactly one of phone_e164 and user_id")
    condition: Any = (
        zalo_users.c.user_id == user_id
        if user_id is not None
        else zalo_users.c.phone_e164 == phone_e164
    )
    async with engine.begin() as conn:
        stopped = (
            (
                await conn.execute(
                    sa.select(zalo_users.c.user_id)
                    .where(condition, zalo_users.c.subscribed_at.is_not(None))
                    .order_by(zalo_users.c.subscribed_at.desc())
                )
            )
            .scalars()
            .all()
        )
        if not stopped:
            return None
        await conn.execute(
            zalo_users.update()
            .where(zalo_users.c.user_id.in_(list(stopped)))
            .values(subscribed_at=None, updated_at=now)
        )
    log.info("subscription stopped", extra={"users": list(stopped), "by": by})
    return str(stopped[0])


async def _moved_notice(
    conn: AsyncConnection,
    phone_e164: str,
    previous_user: str | None,
    now: datetime,
    links: Links | None,
) -> str:
    """One ``channel_moved`` notice: to the previous OA user, or (None) by SMS."""
    notice_id = uuid.uuid4().hex
    notice = NewNotice(
        kind=CHANNEL_MOVED_KIND,
        dossier_code="",
        source_id=GATEWAY_SOURCE,
        event_id=f"channel-moved-{notice_id}",
        dedupe_key=f"channel_moved/{notice_id}",
        phone_e164=phone_e164,
        params={},
        lane="urgent",
        zalo_user_id=previous_user,
        id=notice_id,
    )
    return await outbox.insert(conn, notice, now, links)
