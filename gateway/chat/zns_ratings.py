"""Ratings given on a ZNS service-rating template, recorded as the dossier's rating.

Zalo reports a rating as a ``user_feedback`` webhook (:class:`providers.zalo.webhook.
ZnsFeedback`): the stars (1 to 5), the detail options the citizen ticked, a note, and the
``msg_id`` (with our ``tracking_id``) of the ZNS message rated. Rules:

- The webhook only queues it, on the ZNS receipts list (nothing there waits on the
  database); the receipts job records it here, deduplicated by message and moment.
- The message is found by our ``tracking_id`` (``<notice id>zns``), else by Zalo's
  ``msg_id``; its notice names the dossier. A rating for no ZNS message we sent, or for a
  dossier the gateway no longer knows, is logged and dropped.
- It is the rating of the dossier's own phone (``rater="phone"``, ``channel="zns"``): the
  template went to that number's Zalo account. Zalo gives one star rating of the service,
  which is recorded as the **quality** score (chất lượng tiếp nhận, giải quyết); the
  **progress** score is left for the citizen page or the OA to fill (the rating is an
  upsert that never wipes a score given elsewhere). The ticked options and the note make
  the comment.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import GatewayError
from gateway.storage.ratings import record_rating
from gateway.storage.tables import deliveries, notices
from providers.zalo.webhook import ZnsFeedback

log = logging.getLogger(__name__)

FEEDBACK = "feedback"
ZNS_PROVIDER = "zalo_zns"


def queued_item(event: ZnsFeedback) -> dict[str, Any]:
    """The rating as it waits on the receipts list (JSON)."""
    return {
        "kind": FEEDBACK,
        "msg_id": event.msg_id,
        "tracking_id": event.tracking_id,
        "rate": event.rate,
        "note": event.note,
        "feedbacks": list(event.feedbacks),
        "at": event.at.isoformat(),
    }


def is_feedback(item: dict[str, Any]) -> bool:
    """Whether a queued receipts-list item is a rating (not a delivery receipt)."""
    return item.get("kind") == FEEDBACK


def comment_of(item: dict[str, Any]) -> str | None:
    """The ticked options, then the note: ``"Nhân viên nhiệt tình; Nhanh. <note>"``."""
    options = "; ".join(str(text) for text in item.get("feedbacks") or [] if str(text).strip())
    note = str(item.get("note") or "").strip()
    parts = [f"{options}." if options and note else options, note]
    return " ".join(part for part in parts if part) or None


async def record_feedback(engine: AsyncEngine, item: dict[str, Any]) -> bool:
    """Record a queued ZNS rating as the dossier's; False if it was dropped (logged)."""
    dossier_code = await _dossier_of(engine, str(item["msg_id"]), item.get("tracking_id"))
    if dossier_code is None:
        log.warning("ZNS rating for no message we sent", extra={"msg_id": item["msg_id"]})
        return False
    try:
        await record_rating(
            engine,
            dossier_code=dossier_code,
            channel="zns",
            rater="phone",
            progress=None,
            quality=int(item["rate"]),
            comment=comment_of(item),
            now=datetime.fromisoformat(str(item["at"])),
        )
    except GatewayError as exc:
        log.warning(
            "ZNS rating not recorded",
            extra={"msg_id": item["msg_id"], "dossier": dossier_code, "error": exc.detail},
        )
        return False
    log.info("ZNS rating recorded", extra={"dossier": dossier_code, "rate": item["rate"]})
    return True


async def _dossier_of(engine: AsyncEngine, msg_id: str, tracking_id: str | None) -> str | None:
    """The dossier of the ZNS message rated: by our tracking id, else by Zalo's msg_id."""
    sent = deliveries.c.provider == ZNS_PROVIDER
    by_tracking = deliveries.c.request_id == tracking_id if tracking_id else sa.false()
    query = (
        sa.select(notices.c.dossier_code)
        .select_from(deliveries.join(notices, notices.c.id == deliveries.c.notice_id))
        .where(sent, sa.or_(by_tracking, deliveries.c.provider_message_id == msg_id))
        .limit(1)
    )
    async with engine.connect() as conn:
        code = (await conn.execute(query)).scalar()
    return str(code) if code else None
