"""Citizens' reports in the database: create, move through the workflow, list, read.

Each write is one transaction that records the report, its transition and the notice
telling the citizen, so a report never changes state without the citizen being told and
a notice never exists for a change that was rolled back. The caller puts the returned
notice ids on the delivery queue afterwards (best effort: the relay enqueues any notice
still ``created`` after its grace time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.domain.calendar import WorkingCalendar
from gateway.domain.reports import (
    check_finding,
    check_transition,
    notice_kind_for,
    report_number,
)
from gateway.domain.sanctions import Ladder, Prior, Suggestion, suggest, window_around
from gateway.domain.timeline import timeline_of
from gateway.domain.violations import Finding as ViolationFinding
from gateway.domain.violations import false_closure
from gateway.errors import Conflict, NotFound
from gateway.storage import audit as audit_store
from gateway.storage import outbox
from gateway.storage.outbox import GATEWAY_SOURCE, NewNotice
from gateway.storage.tables import (
    chat_messages,
    dossiers,
    events,
    notices,
    report_transitions,
    violations,
)
from gateway.storage.tables import reports as reports_table
from gateway.texts.sms import REPLY_PARAM

__all__ = [
    "ReportDetail",
    "ReportPage",
    "ReportRow",
    "TransitionRow",
    "create_report",
    "false_closure_consequence",
    "get_report",
    "list_reports",
    "notice_params",
    "preview_false_closure",
    "reports_on_dossier",
    "transition",
]


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One row of ``reports``."""

    id: int
    number: str
    kind: str
    source: str
    status: str
    status_notes: str | None
    dossier_code: str | None
    agency_code: str | None
    agency_name: str | None
    officer_id: str | None
    officer_name: str | None
    zalo_user_id: str | None
    phone_e164: str | None
    description: str
    expected_at: datetime | None
    # The hotline's finding on a false-closure report: "confirmed", "not_confirmed" or None.
    finding: str | None
    created_at: datetime
    updated_at: datetime
    # The staff user the report is assigned to at the console, and since when.
    assignee_id: int | None = None
    assigned_at: datetime | None = None
    # How the citizen proved to own the dossier's phone (see create_report).
    proof: str | None = None


@dataclass(frozen=True, slots=True)
class TransitionRow:
    """One state change of a report; ``from_status`` is None for its creation."""

    id: int
    from_status: str | None
    to_status: str
    note: str | None
    actor: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ReportPage:
    """A page of reports, oldest first; ``next_after`` is the cursor of the next page."""

    reports: list[ReportRow]
    next_after: int | None


@dataclass(frozen=True, slots=True)
class ReportDetail:
    """A report with everything a hotline officer needs on one screen.

    ``dossier`` holds the dossier's columns plus ``timeline`` and ``notices`` lists (or is
    None if the gateway never heard of it); ``messages`` are the OA messages linked to
    the report; ``notices`` are those sent to the citizen about the report. Values are as
    stored (aware UTC datetimes).
    """

    report: ReportRow
    transitions: list[TransitionRow]
    dossier: dict[str, Any] | None
    messages: list[dict[str, Any]]
    notices: list[dict[str, Any]]


_REPORT_FIELDS = tuple(ReportRow.__dataclass_fields__)


def _report(row: Any) -> ReportRow:
    return ReportRow(**{name: row[name] for name in _REPORT_FIELDS})


async def create_report(
    engine: AsyncEngine,
    *,
    kind: str,
    source: str,
    dossier_code: str,
    description: str,
    zalo_user_id: str | None,
    phone_e164: str | None,
    calendar: WorkingCalendar,
    answer_working_days: int,
    now: datetime,
    actor: str = "citizen",
    acknowledge: bool = True,
    agency_code: str | None = None,
    agency_name: str | None = None,
    proof: str | None = None,
) -> tuple[ReportRow, list[str]]:
    """Record a new ``open`` report about a dossier and the notice acknowledging it.

    The report is attributed to the dossier's agency and to the officer who closed it; the
    citizen is promised an answer ``answer_working_days`` working days from ``now``.
    Returns the report and the ids of notices to enqueue. A dossier the gateway has never
    seen (one never entered into the software: what citizens call the hotline about) is
    accepted when the caller names its agency (``agency_code`` and/or ``agency_name``;
    ignored for a known dossier, whose own agency wins); without them it raises
    :class:`NotFound` (nothing is written then). Without ``acknowledge`` no notice is
    made: the chatbot opened the report and already told the citizen its number.
    ``proof`` says how the citizen proved to own the dossier's phone (``reports.proof``:
    "otp", "proven_phone", "sms_link", "staff").
    """
    expected_at = calendar.add_working_days(now, answer_working_days)
    async with engine.begin() as conn:
        dossier = (
            await conn.execute(
                sa.select(
                    dossiers.c.agency_code,
                    dossiers.c.agency_name,
                    dossiers.c.finished_by_id,
                    dossiers.c.finished_by_name,
                ).where(dossiers.c.code == dossier_code)
            )
        ).first()
        if dossier is None and not (agency_code or agency_name):
            raise NotFound(f"no dossier {dossier_code}")
        values: dict[str, Any] = {
            "kind": kind,
            "source": source,
            "status": "open",
            "status_notes": None,
            "dossier_code": dossier_code,
            "agency_code": dossier.agency_code if dossier else agency_code,
            "agency_name": dossier.agency_name if dossier else agency_name,
            "officer_id": dossier.finished_by_id if dossier else None,
            "officer_name": dossier.finished_by_name if dossier else None,
            "zalo_user_id": zalo_user_id,
            "phone_e164": phone_e164,
            "description": description,
            "expected_at": expected_at,
            "finding": None,
            "proof": proof,
            "created_at": now,
            "updated_at": now,
        }
        report_id = int(
            (
                await conn.execute(
                    reports_table.insert().values(**values).returning(reports_table.c.id)
                )
            ).scalar_one()
        )
        number = report_number(report_id, now.astimezone(calendar.tz).year)
        await conn.execute(
            reports_table.update().where(reports_table.c.id == report_id).values(number=number)
        )
        report = ReportRow(id=report_id, number=number, **values)
        transition_id = await _insert_transition(conn, report_id, None, "open", None, actor, now)
        notice_id = None
        if acknowledge:
            notice_id = await _insert_notice(conn, report, transition_id, None, now)
    return report, [notice_id] if notice_id else []


async def transition(
    engine: AsyncEngine,
    report_id: int,
    to: str,
    note: str | None,
    actor: str,
    now: datetime,
    *,
    may_reopen: bool = False,
    expected_at: datetime | None = None,
    finding: str | None = None,
    ladder: Ladder | None = None,
    staff_id: int | None = None,
    reply_text: str | None = None,
) -> tuple[ReportRow, list[str]]:
    """Move a report to ``to`` and record the notice telling the citizen.

    ``note`` becomes the report's ``status_notes`` and the notice's ``status_note``;
    ``reply_text``, if given, is the staff member's own text for the citizen, sent instead
    of the template (the notice's ``reply_text`` param, see ``gateway.texts.sms``);
    ``expected_at``, if given, is a new answer date (when a report is reopened).
    ``finding`` concludes a false-closure report; ``confirmed`` appends the
    ``false_closure`` violation of the officer who posted ``dossier.finished``, with the
    ``ladder``'s suggestion, in the same transaction. Only an admin (``may_reopen``) may
    change a finding once given; a confirmed finding changed to ``not_confirmed`` appends
    a ``dismissed`` decision by ``staff_id`` on that violation (nothing is deleted).
    Raises :class:`NotFound`, :class:`Conflict`/:class:`PermissionDenied` from
    :func:`~gateway.domain.reports.check_transition` or
    :func:`~gateway.domain.reports.check_finding`, :class:`ValidationFailed` for a finding
    on another kind of report, or :class:`Conflict` when a confirmed false closure has no
    ``dossier.finished`` to attribute it to; nothing is written then.
    """
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                sa.select(reports_table).where(reports_table.c.id == report_id).with_for_update()
            )
        ).first()
        if row is None:
            raise NotFound(f"no report {report_id}")
        current = _report(row._mapping)
        if finding is not None:
            check_finding(current.kind, current.finding, finding, may_change=may_reopen)
        check_transition(current.status, to, may_reopen=may_reopen)
        changes: dict[str, Any] = {"status": to, "status_notes": note, "updated_at": now}
        if expected_at is not None:
            changes["expected_at"] = expected_at
        if finding is not None:
            changes["finding"] = finding
            await _record_finding(conn, current, finding, ladder, staff_id, note, now)
        await conn.execute(
            reports_table.update().where(reports_table.c.id == report_id).values(**changes)
        )
        report = ReportRow(**{**{n: getattr(current, n) for n in _REPORT_FIELDS}, **changes})
        transition_id = await _insert_transition(
            conn, report_id, current.status, to, note, actor, now
        )
        notice_id = await _insert_notice(
            conn, report, transition_id, note, now, reply_text=reply_text
        )
    return report, [notice_id] if notice_id else []


async def _record_finding(
    conn: AsyncConnection,
    report: ReportRow,
    finding: str,
    ladder: Ladder | None,
    staff_id: int | None,
    note: str | None,
    now: datetime,
) -> None:
    """The ledger side of a finding: a confirmed false closure is a violation."""
    code = report.dossier_code
    if code is None:  # every false_closure report names its dossier; defensive
        raise Conflict("the report names no dossier, so no officer can be held to it")
    if finding == "confirmed":
        if ladder is None:
            raise ValueError("a confirmed finding needs the sanction ladder")
        found, suggestion = await false_closure_consequence(conn, code, report.id, ladder)
        await audit_store.append_violations(conn, [(found, suggestion)], now, report_id=report.id)
    elif report.finding == "confirmed":
        # An admin corrects a confirmed finding: the violation it made is dismissed.
        taken = await conn.execute(
            sa.select(violations.c.id).where(
                violations.c.rule == "false_closure", violations.c.report_id == report.id
            )
        )
        for violation_id in taken.scalars():
            await audit_store.record_decision(
                conn,
                int(violation_id),
                "dismissed",
                None,
                f"finding changed to not_confirmed: {note}" if note else "finding changed",
                staff_id,
                now,
            )


async def false_closure_consequence(
    conn: AsyncConnection, code: str, report_id: int, ladder: Ladder
) -> tuple[ViolationFinding, Suggestion | None]:
    """The violation a confirmed finding on report ``report_id`` would record, and the
    ladder's suggestion for it: what the console shows before saving, and what is saved.

    Raises :class:`Conflict` when dossier ``code`` has no ``dossier.finished`` event.
    """
    rows = (await audit_store.load_timelines(conn, [code]))[code]
    found = false_closure(code, timeline_of(rows), report_id)
    if found is None:
        raise Conflict(
            f"dossier {code} has no dossier.finished event: there is no closing officer "
            "to hold to a false closure"
        )
    prior: list[Prior] = []
    supervisor = None
    if found.officer_id is not None:
        prior = await audit_store.prior_violations(
            conn,
            found.officer_id,
            found.rule,
            window_around(found.occurred_at, ladder.window_months)[1],
        )
        bosses = await audit_store.supervisors_of(conn, [found.officer_id])
        supervisor = bosses.get(found.officer_id)
    return found, suggest(ladder, found.rule, found.occurred_at, prior, supervisor)


async def _insert_transition(
    conn: AsyncConnection,
    report_id: int,
    from_status: str | None,
    to_status: str,
    note: str | None,
    actor: str,
    now: datetime,
) -> int:
    result = await conn.execute(
        report_transitions.insert()
        .values(
            report_id=report_id,
            from_status=from_status,
            to_status=to_status,
            note=note,
            actor=actor,
            at=now,
        )
        .returning(report_transitions.c.id)
    )
    return int(result.scalar_one())


def notice_dedupe_key(report_id: int, transition_id: int) -> str:
    """One notice per transition of a report."""
    return f"report:{report_id}:{transition_id}"


def notice_params(
    report: ReportRow, note: str | None, reply_text: str | None = None
) -> dict[str, Any]:
    """The params of the notice telling the citizen about ``report`` (in its new state):
    what the notice is rendered from, and what the console renders its preview from."""
    params: dict[str, Any] = {
        "report_number": report.number,
        "dossier_code": report.dossier_code,
        "expected_at": report.expected_at.isoformat() if report.expected_at else None,
    }
    if note is not None:
        params["status_note"] = note
    if reply_text is not None:
        params[REPLY_PARAM] = reply_text
    return params


async def _insert_notice(
    conn: AsyncConnection,
    report: ReportRow,
    transition_id: int,
    note: str | None,
    now: datetime,
    *,
    reply_text: str | None = None,
) -> str | None:
    """The notice for the report's new state; returns its id if it can be sent."""
    params = notice_params(report, note, reply_text)
    notice = NewNotice(
        kind=notice_kind_for(report.status),
        dossier_code=report.dossier_code or "",
        source_id=GATEWAY_SOURCE,
        event_id=f"report-{report.id}-{transition_id}",
        dedupe_key=notice_dedupe_key(report.id, transition_id),
        phone_e164=report.phone_e164,
        zalo_user_id=report.zalo_user_id,
        params=params,
    )
    await outbox.insert(conn, notice, now)
    return notice.id if notice.sendable else None


async def list_reports(
    reader: AsyncEngine,
    *,
    statuses: Sequence[str] = (),
    agency: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    after_id: int | None = None,
) -> ReportPage:
    """Reports matching the filters, oldest first, at most ``limit`` after ``after_id``.

    Paging is by id (keyset), so reports created while a client pages never shift it.
    ``since`` compares with the time the report was made.
    """
    query = sa.select(reports_table).order_by(reports_table.c.id).limit(limit + 1)
    if statuses:
        query = query.where(reports_table.c.status.in_(list(statuses)))
    if agency is not None:
        query = query.where(reports_table.c.agency_code == agency)
    if since is not None:
        query = query.where(reports_table.c.created_at >= since)
    if after_id is not None:
        query = query.where(reports_table.c.id > after_id)
    async with reader.connect() as conn:
        rows = [_report(r._mapping) for r in await conn.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    return ReportPage(rows, rows[-1].id if more else None)


async def reports_on_dossier(
    reader: AsyncEngine, code: str, *, before_id: int, limit: int = 50
) -> list[ReportRow]:
    """The reports about dossier ``code`` made before report ``before_id``, newest first."""
    query = (
        sa.select(reports_table)
        .where(reports_table.c.dossier_code == code, reports_table.c.id < before_id)
        .order_by(reports_table.c.id.desc())
        .limit(limit)
    )
    async with reader.connect() as conn:
        return [_report(r._mapping) for r in await conn.execute(query)]


async def preview_false_closure(
    reader: AsyncEngine, code: str, report_id: int, ladder: Ladder
) -> tuple[ViolationFinding, Suggestion | None]:
    """:func:`false_closure_consequence` outside a write: what confirming would record."""
    async with reader.connect() as conn:
        return await false_closure_consequence(conn, code, report_id, ladder)


async def get_report(reader: AsyncEngine, report_id: int) -> ReportDetail | None:
    """The report, its transitions, its dossier's story, linked OA messages and notices."""
    async with reader.connect() as conn:
        row = (
            await conn.execute(sa.select(reports_table).where(reports_table.c.id == report_id))
        ).first()
        if row is None:
            return None
        report = _report(row._mapping)
        steps = [
            TransitionRow(t.id, t.from_status, t.to_status, t.note, t.actor, t.at)
            for t in await conn.execute(
                sa.select(report_transitions)
                .where(report_transitions.c.report_id == report_id)
                .order_by(report_transitions.c.id)
            )
        ]
        messages = [
            dict(m._mapping)
            for m in await conn.execute(
                sa.select(chat_messages)
                .where(chat_messages.c.report_id == report_id)
                .order_by(chat_messages.c.id)
            )
        ]
        # In the order of the transitions: two moves in the same second are common.
        order = {notice_dedupe_key(report_id, t.id): i for i, t in enumerate(steps)}
        sent = sorted(
            (
                dict(n._mapping)
                for n in await conn.execute(
                    sa.select(notices).where(notices.c.dedupe_key.in_(list(order)))
                )
            ),
            key=lambda n: order[n["dedupe_key"]],
        )
        dossier = await _dossier(conn, report.dossier_code) if report.dossier_code else None
    return ReportDetail(report, steps, dossier, messages, sent)


async def timeline_rows(conn: AsyncConnection, code: str) -> Sequence[Any]:
    """A dossier's events as staff read them (``event_id, type, occurred_at, actor_id,
    actor_name, superseded``), in the order they happened."""
    result = await conn.execute(
        sa.select(
            events.c.event_id,
            events.c.type,
            events.c.occurred_at,
            events.c.actor_id,
            events.c.actor_name,
            events.c.superseded,
        )
        .where(events.c.dossier_code == code)
        .order_by(events.c.occurred_at, events.c.seq)
    )
    return result.all()


async def _dossier(conn: AsyncConnection, code: str) -> dict[str, Any] | None:
    row = (await conn.execute(sa.select(dossiers).where(dossiers.c.code == code))).first()
    if row is None:
        return None
    summary = dict(row._mapping)
    summary["timeline"] = [dict(e._mapping) for e in await timeline_rows(conn, code)]
    summary["notices"] = [
        dict(n._mapping)
        for n in await conn.execute(
            sa.select(
                notices.c.id,
                notices.c.kind,
                notices.c.channel,
                notices.c.state,
                notices.c.sent_at,
                notices.c.delivered_at,
                notices.c.created_at,
            )
            .where(notices.c.dossier_code == code, notices.c.event_id.not_like("report-%"))
            .order_by(notices.c.created_at)
        )
    ]
    return summary
