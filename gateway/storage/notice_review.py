"""Notices that need a person: read them with their attempts, and resend one, checked.

A notice ends ``unknown`` when a send lost its outcome (the provider may have taken it:
sending again could give the citizen two messages) and ``failed`` when no channel could
take it. Neither is ever retried by the gateway. A staff member may resend one: that
makes a *new* notice (new id, dedupe key ``resend:<original id>:<n>``, same kind, params,
phone and OA user, params carrying ``resend_of``) for the delivery queue; the original
row is never touched, so its attempts stay as evidence. While an earlier resend of the
same notice may still reach the citizen (anything but ``failed``/``unknown``/
``no_recipient``/``skipped``), another is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import Conflict, NotFound
from gateway.storage import outbox
from gateway.storage.outbox import NewNotice
from gateway.storage.tables import deliveries, notices

__all__ = [
    "ATTENTION_STATES",
    "DeliveryRow",
    "NoticeReview",
    "NoticeRow",
    "get_review",
    "list_attention",
    "report_id_of",
    "resend",
    "resend_key_prefix",
]

# The states a person must look at; only these may be resent.
ATTENTION_STATES: Final = ("unknown", "failed")
# A resend in one of these states will not reach the citizen: another may be made.
_DEAD: Final = ("failed", "unknown", "no_recipient", "skipped")
RESEND_PARAM: Final = "resend_of"
_REPORT_EVENT: Final = re.compile(r"report-(\d{1,18})-\d+")


@dataclass(frozen=True, slots=True)
class NoticeRow:
    """The columns of ``notices`` a person reviewing one needs."""

    id: str
    kind: str
    state: str
    dossier_code: str
    source_id: str
    event_id: str
    dedupe_key: str
    phone_e164: str | None
    zalo_user_id: str | None
    params: dict[str, Any]
    channel: str | None
    provider: str | None
    attempts: int
    last_error: str | None
    route: str | None
    text: str | None
    segments: int | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One attempt to hand the notice to one provider on one channel."""

    request_id: str
    channel: str
    provider: str
    state: str
    error_code: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NoticeReview:
    """A notice with its attempts (oldest first) and its resends (id, state; oldest first)."""

    notice: NoticeRow
    deliveries: list[DeliveryRow] = field(default_factory=list)
    resends: list[tuple[str, str]] = field(default_factory=list)

    @property
    def pending_resend(self) -> str | None:
        """The id of an earlier resend that may still reach the citizen, if any."""
        for notice_id, state in self.resends:
            if state not in _DEAD:
                return notice_id
        return None


_NOTICE_FIELDS: Final = tuple(NoticeRow.__dataclass_fields__)
_DELIVERY_FIELDS: Final = tuple(DeliveryRow.__dataclass_fields__)


def _notice(row: Any) -> NoticeRow:
    values = {name: row[name] for name in _NOTICE_FIELDS}
    values["params"] = dict(values["params"] or {})
    return NoticeRow(**values)


def _delivery(row: Any) -> DeliveryRow:
    return DeliveryRow(**{name: row[name] for name in _DELIVERY_FIELDS})


def resend_key_prefix(notice_id: str) -> str:
    """Every resend of ``notice_id`` has a dedupe key starting so."""
    return f"resend:{notice_id}:"


def report_id_of(notice: NoticeRow) -> int | None:
    """The report a notice tells the citizen about (its event id names it), if any."""
    found = _REPORT_EVENT.fullmatch(notice.event_id)
    return int(found.group(1)) if found else None


async def list_attention(
    reader: AsyncEngine,
    *,
    states: tuple[str, ...] = ATTENTION_STATES,
    kind: str | None = None,
    limit: int = 100,
) -> list[NoticeReview]:
    """Notices in ``states`` (a subset of :data:`ATTENTION_STATES`), newest first, at most
    ``limit``, each with its attempts and resends."""
    query = (
        sa.select(notices)
        .where(notices.c.state.in_([s for s in states if s in ATTENTION_STATES]))
        .order_by(notices.c.created_at.desc(), notices.c.id.desc())
        .limit(limit)
    )
    if kind is not None:
        query = query.where(notices.c.kind == kind)
    async with reader.connect() as conn:
        rows = [_notice(r._mapping) for r in await conn.execute(query)]
        attempts = await _deliveries(conn, [r.id for r in rows])
        resends = await _resends(conn, [r.id for r in rows])
    return [NoticeReview(r, attempts.get(r.id, []), resends.get(r.id, [])) for r in rows]


async def get_review(reader: AsyncEngine, notice_id: str) -> NoticeReview | None:
    """One notice (in any state) with every attempt and every resend, or None."""
    async with reader.connect() as conn:
        row = (await conn.execute(sa.select(notices).where(notices.c.id == notice_id))).first()
        if row is None:
            return None
        notice = _notice(row._mapping)
        attempts = await _deliveries(conn, [notice_id])
        resends = await _resends(conn, [notice_id])
    return NoticeReview(notice, attempts.get(notice_id, []), resends.get(notice_id, []))


async def _deliveries(conn: AsyncConnection, ids: list[str]) -> dict[str, list[DeliveryRow]]:
    found: dict[str, list[DeliveryRow]] = {}
    if not ids:
        return found
    rows = await conn.execute(
        sa.select(deliveries)
        .where(deliveries.c.notice_id.in_(ids))
        .order_by(deliveries.c.created_at, deliveries.c.request_id)
    )
    for row in rows:
        found.setdefault(row.notice_id, []).append(_delivery(row._mapping))
    return found


async def _resends(conn: AsyncConnection, ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """The resends of each notice in ``ids``, by the dedupe keys they were made with."""
    found: dict[str, list[tuple[str, str]]] = {}
    if not ids:
        return found
    prefixes = sa.or_(*(notices.c.dedupe_key.startswith(resend_key_prefix(i)) for i in ids))
    rows = await conn.execute(
        sa.select(notices.c.id, notices.c.state, notices.c.dedupe_key)
        .where(prefixes)
        .order_by(notices.c.created_at, notices.c.id)
    )
    for row in rows:
        original = row.dedupe_key.split(":")[1]
        found.setdefault(original, []).append((row.id, row.state))
    return found


async def resend(engine: AsyncEngine, notice_id: str, now: datetime) -> str:
    """Make a new notice resending ``notice_id`` (``unknown`` or ``failed``); returns the
    new id, which the caller puts on the delivery queue.

    Raises :class:`NotFound`, or :class:`Conflict` when the notice is in another state or
    an earlier resend of it may still reach the citizen (two resends at once included:
    the dedupe key is unique). Nothing is written then.
    """
    try:
        async with engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(notices).where(notices.c.id == notice_id).with_for_update()
                )
            ).first()
            if row is None:
                raise NotFound(f"no notice {notice_id}")
            original = _notice(row._mapping)
            if original.state not in ATTENTION_STATES:
                raise Conflict(f"notice {notice_id} is {original.state}: only unknown or failed")
            earlier = (await _resends(conn, [notice_id])).get(notice_id, [])
            pending = NoticeReview(original, [], earlier).pending_resend
            if pending is not None:
                raise Conflict(f"notice {notice_id} was resent already as {pending}")
            new = NewNotice(
                kind=original.kind,
                dossier_code=original.dossier_code,
                source_id=original.source_id,
                event_id=original.event_id,
                dedupe_key=f"{resend_key_prefix(notice_id)}{len(earlier) + 1}",
                phone_e164=original.phone_e164,
                params={**original.params, RESEND_PARAM: notice_id},
                lane="urgent",
                zalo_user_id=original.zalo_user_id,
            )
            await outbox.insert(conn, new, now)
    except IntegrityError as exc:  # another resend of it was made at the same moment
        raise Conflict(f"notice {notice_id} is being resent by someone else") from exc
    return new.id
