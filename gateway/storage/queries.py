"""Read models: a dossier's whole story, and the pause check."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.storage.tables import consultations, dossiers, events, flags, notices, reports

TERMINAL_STATES = frozenset({"refused", "withdrawn", "finished", "delivered"})


async def dossier_view(conn: AsyncConnection, code: str, zone: tzinfo) -> dict[str, Any] | None:
    """State, due date, DVCQG status, timeline, flags, notices and consultations.

    Times are given in the gateway's time zone, as the one-stop-shop sends them.
    """

    def _iso(value: datetime | None) -> str | None:
        return value.astimezone(zone).isoformat() if value else None

    row = (await conn.execute(sa.select(dossiers).where(dossiers.c.code == code))).first()
    if row is None:
        return None
    d = row._mapping
    timeline = await conn.execute(
        sa.select(
            events.c.event_id,
            events.c.source_id,
            events.c.type,
            events.c.occurred_at,
            events.c.recorded_at,
            events.c.actor_id,
            events.c.actor_name,
            events.c.superseded,
            events.c.body,
        )
        .where(events.c.dossier_code == code)
        .order_by(events.c.occurred_at, events.c.seq)
    )
    flag_rows = await conn.execute(
        sa.select(flags)
        .where(flags.c.dossier_code == code)
        .order_by(flags.c.occurred_at, flags.c.id)
    )
    notice_rows = await conn.execute(
        sa.select(notices).where(notices.c.dossier_code == code).order_by(notices.c.created_at)
    )
    return {
        "code": d["code"],
        "state": d["state"],
        "dvcqg_status": d["dvcqg_status"],
        "state_at": _iso(d["state_at"]),
        "procedure": {"code": d["procedure_code"], "name": d["procedure_name"]},
        "agency": {"code": d["agency_code"], "name": d["agency_name"]},
        "applicant": {
            "name": d["applicant_name"],
            "phone": d["phone_e164"],
            "phone_problem": d["phone_problem"],
        },
        "received_at": _iso(d["received_at"]),
        "due_at": _iso(d["due_at"]),
        "original_due_at": _iso(d["original_due_at"]),
        "finished_at": _iso(d["finished_at"]),
        "finished_by": (
            {"id": d["finished_by_id"], "name": d["finished_by_name"]}
            if d["finished_by_id"]
            else None
        ),
        "deadline": {"state": d["deadline_state"], "late_at": _iso(d["late_at"])},
        "reschedule_count": d["reschedule_count"],
        "supplement_count": d["supplement_count"],
        "timeline": [
            {
                "id": e.event_id,
                "source": e.source_id,
                "type": e.type,
                "occurred_at": _iso(e.occurred_at),
                "recorded_at": _iso(e.recorded_at),
                "actor": {"id": e.actor_id, "name": e.actor_name} if e.actor_id else None,
                "superseded": e.superseded,
                "data": e.body.get("data") or {},
            }
            for e in timeline
        ],
        "flags": [
            {
                "rule": f.rule,
                "detail": f.detail,
                "source": f.source_id,
                "event_id": f.event_id,
                "occurred_at": _iso(f.occurred_at),
                "officer": {"id": f.officer_id, "name": f.officer_name} if f.officer_id else None,
                "agency": f.agency_code,
            }
            for f in flag_rows
        ],
        "notices": [
            {
                "id": n.id,
                "kind": n.kind,
                "event_id": n.event_id,
                "channel": n.channel,
                "route": n.route,
                "provider": n.provider,
                "state": n.state,
                "lane": n.lane,
                "segments": n.segments,
                "not_before": _iso(n.not_before),
                "sent_at": _iso(n.sent_at),
                "delivered_at": _iso(n.delivered_at),
                "receipt_due_at": _iso(n.receipt_due_at),
                "attempts": n.attempts,
                "last_error": n.last_error,
                "created_at": _iso(n.created_at),
                "updated_at": _iso(n.updated_at),
            }
            for n in notice_rows
        ],
        "consultations": await _consultations(conn, code, zone),
        "reports": await _reports(conn, code, zone),
    }


async def _reports(conn: AsyncConnection, code: str, zone: tzinfo) -> list[dict[str, Any]]:
    """Citizens' reports about the dossier (false closures, problems), oldest first."""

    def _iso(value: datetime | None) -> str | None:
        return value.astimezone(zone).isoformat() if value else None

    rows = await conn.execute(
        sa.select(reports).where(reports.c.dossier_code == code).order_by(reports.c.id)
    )
    return [
        {
            "id": r.id,
            "number": r.number,
            "kind": r.kind,
            "source": r.source,
            "status": r.status,
            "status_notes": r.status_notes,
            "officer": {"id": r.officer_id, "name": r.officer_name} if r.officer_id else None,
            "requested_at": _iso(r.created_at),
            "updated_at": _iso(r.updated_at),
            "expected_at": _iso(r.expected_at),
        }
        for r in rows
    ]


async def _consultations(conn: AsyncConnection, code: str, zone: tzinfo) -> list[dict[str, Any]]:
    def _iso(value: datetime | None) -> str | None:
        return value.astimezone(zone).isoformat() if value else None

    rows = await conn.execute(
        sa.select(consultations)
        .where(consultations.c.dossier_code == code)
        .order_by(consultations.c.requested_at, consultations.c.consultation_id)
    )
    return [
        {
            "consultation_id": c.consultation_id,
            "agency": {"code": c.agency_code, "name": c.agency_name},
            "requested_at": _iso(c.requested_at),
            "due_at": _iso(c.due_at),
            "answered_at": _iso(c.answered_at),
        }
        for c in rows
    ]


async def pause_check(
    conn: AsyncConnection, code: str, now: datetime, zone: tzinfo
) -> dict[str, Any] | None:
    """May the one-stop-shop confirm an SOS stop (pause) of this dossier now?"""
    row = (await conn.execute(sa.select(dossiers.c.state).where(dossiers.c.code == code))).first()
    if row is None:
        return None
    pending = [
        {**c, "overdue": c["due_at"] is not None and datetime.fromisoformat(c["due_at"]) < now}
        for c in await _consultations(conn, code, zone)
        if c["requested_at"] is not None and c["answered_at"] is None
    ]
    if row.state in TERMINAL_STATES:
        reason = "dossier_closed"  # nothing left to pause, whatever is still open
    elif pending:
        reason = "consultation_pending"
    elif row.state == "paused":
        reason = "already_paused"
    else:
        reason = None
    return {"dossier": code, "allowed": reason is None, "reason": reason, "pending": pending}
