"""New notices into the outbox: the one place ``notices`` rows are built and inserted.

Ingest, the deadline sweep, the follow-up questions and report updates all create
notices. They describe each one as a :class:`NewNotice` and hand it here, so every row
starts the same way: ``created`` when there is someone to send it to (a phone number or
an OA user), ``no_recipient`` otherwise, no channel or provider yet, no attempts. The
``dedupe_key`` column is unique; :func:`insert_once` is for callers that may meet a key
already taken (sweeps run every minute) and must then create nothing.

Callers that have the settings pass ``links`` (:class:`gateway.trust.links.Links`, None
without ``CITIZEN_SECRET``): a notice of a kind that carries a signed link then gets its
``link_token`` and the URL in ``params["link"]`` as it is inserted.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.domain.notices import NoticeDraft
from gateway.storage.tables import notices
from gateway.trust.links import LINK_PARAM, Links

# The source of notices the gateway decides itself, not tied to a one-stop-shop event.
GATEWAY_SOURCE = "gateway"


def new_notice_id() -> str:
    """32 hex characters: microseconds since the epoch, then 72 random bits.

    Time-ordered ids land at the end of the notices' primary-key index instead of at a
    random page of it, so each commit writes fewer pages as the table grows (about a
    fifth less on SQLite); the random part keeps them unguessable and unique.
    """
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(9)}"


@dataclass(frozen=True, slots=True)
class NewNotice:
    """A notice to create: what, for which dossier and recipient, and why (source, event)."""

    kind: str
    dossier_code: str
    source_id: str
    event_id: str
    dedupe_key: str
    phone_e164: str | None
    params: dict[str, Any]
    # "urgent" (as events happen) or "bulk" (back-fills through the batch API).
    lane: str = "urgent"
    # The OA user a notice answers when it is not about a one-stop-shop event (a report).
    zalo_user_id: str | None = None
    id: str = field(default_factory=new_notice_id)

    @classmethod
    def from_draft(
        cls, draft: NoticeDraft, dossier_code: str, source_id: str, event_id: str, lane: str
    ) -> NewNotice:
        """The notice an ingested event's draft stands for."""
        return cls(
            kind=draft.kind,
            dossier_code=dossier_code,
            source_id=source_id,
            event_id=event_id,
            dedupe_key=draft.dedupe_key,
            phone_e164=draft.phone_e164,
            params=draft.params,
            lane=lane,
        )

    @classmethod
    def once_per_dossier(cls, kind: str, dossier: Any, event_id: str, **params: Any) -> NewNotice:
        """A notice the gateway decides itself and sends at most once per dossier (the
        automatic apology, the follow-up questions): its facts come from the ``dossiers``
        row, plus ``params``."""
        return cls(
            kind=kind,
            dossier_code=dossier.code,
            source_id=GATEWAY_SOURCE,
            event_id=event_id,
            dedupe_key=f"{dossier.code}/{kind}",
            phone_e164=dossier.phone_e164,
            params={
                "dossier_code": dossier.code,
                "procedure_name": dossier.procedure_name,
                "agency_name": dossier.agency_name,
                "applicant_name": dossier.applicant_name,
                **params,
            },
        )

    @property
    def state(self) -> str:
        """``created`` if it can be sent to someone, else ``no_recipient`` (final)."""
        return "created" if self.phone_e164 or self.zalo_user_id else "no_recipient"

    @property
    def sendable(self) -> bool:
        """Whether the notice goes on the delivery queue once committed."""
        return self.state == "created"


def notice_row(notice: NewNotice, now: datetime, links: Links | None = None) -> dict[str, Any]:
    """The complete ``notices`` row for a new notice (every row has the same keys, so a
    list of them inserts as one statement), with its signed link when it has one."""
    stamped = links.stamp(notice.kind, notice.id) if links is not None else None
    params = notice.params if stamped is None else {**notice.params, LINK_PARAM: stamped[1]}
    return {
        "id": notice.id,
        "dossier_code": notice.dossier_code,
        "source_id": notice.source_id,
        "event_id": notice.event_id,
        "kind": notice.kind,
        "dedupe_key": notice.dedupe_key,
        "phone_e164": notice.phone_e164,
        "zalo_user_id": notice.zalo_user_id,
        "params": params,
        "state": notice.state,
        "lane": notice.lane,
        "channel": None,
        "provider": None,
        "attempts": 0,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
        "link_token": stamped[0] if stamped is not None else None,
    }


def insert_all(
    conn: Connection, new: Sequence[NewNotice], now: datetime, links: Links | None = None
) -> None:
    """Insert ``new`` in one statement, inside the caller's (synchronous) transaction.

    The caller has already made sure no dedupe key is taken; a taken one raises
    :class:`~sqlalchemy.exc.IntegrityError` and the transaction is the caller's to undo.
    """
    if new:
        conn.execute(notices.insert(), [notice_row(n, now, links) for n in new])


async def insert(
    conn: AsyncConnection, notice: NewNotice, now: datetime, links: Links | None = None
) -> str:
    """Insert one notice inside the caller's transaction; returns its id."""
    await conn.execute(notices.insert(), [notice_row(notice, now, links)])
    return notice.id


async def insert_once(
    conn: AsyncConnection, notice: NewNotice, now: datetime, links: Links | None = None
) -> str | None:
    """Insert ``notice`` unless its dedupe key exists; returns its id if it was inserted."""
    taken = await conn.execute(
        sa.select(notices.c.id).where(notices.c.dedupe_key == notice.dedupe_key)
    )
    if taken.first() is not None:
        return None
    return await insert(conn, notice, now, links)
