"""The staff API: the hotline's report queue and handoff inbox, read-only for auditors.

Every handler starts with :func:`require_staff`, which reads the personal API token
(``Authorization: Bearer tthc_…``) and checks the role. Auditors see phone numbers masked
and no OA user ids. Notices and replies are put on their queues after the database
commit; notices are best effort (the relay enqueues any notice left ``created``), a
reply that cannot be queued is withdrawn and the officer is asked to send it again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, tzinfo
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from gateway.chat.queue import enqueue_outbound
from gateway.delivery.queues import QUEUE_ERRORS
from gateway.domain import reports as workflow
from gateway.domain.phones import mask_phone, mask_phones_in_text
from gateway.domain.sanctions import load_ladder
from gateway.errors import (
    BearerTokenRefused,
    Conflict,
    FieldError,
    MalformedInput,
    NotFound,
    PermissionDenied,
    StorageUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from gateway.http.keys import CALENDAR, CLOCK, DATABASE, QUEUE, SETTINGS, TEXTS
from gateway.storage import handoffs as handoff_store
from gateway.storage import reports as report_store
from gateway.storage.staff import StaffUser, authenticate, record_action
from gateway.texts.sms import reply_fits

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

READERS = ("hotline", "auditor", "admin")
WRITERS = ("hotline", "admin")
_ID = r"{id:\d{1,18}}"


async def require_staff(request: web.Request, *roles: str) -> StaffUser:
    """The staff user behind the request's bearer token, if their role is in ``roles``.

    Raises :class:`AuthenticationFailed` (401) for a missing, unknown or disabled token and
    :class:`PermissionDenied` (403) for a role not allowed here.
    """
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BearerTokenRefused("send your staff API token: Authorization: Bearer <token>")
    async with storage_errors():
        user = await authenticate(request.app[DATABASE].reader, token.strip())
    if user is None:
        raise BearerTokenRefused("the token is unknown or its user is disabled")
    if user.role not in roles:
        raise PermissionDenied(
            f"the {user.role} role may not do this; it needs {' or '.join(roles)}"
        )
    return user


@asynccontextmanager
async def storage_errors() -> AsyncIterator[None]:
    """Database failures inside the block become :class:`StorageUnavailable` (503)."""
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        raise StorageUnavailable("the database is unavailable") from exc


async def json_body(request: web.Request) -> Any:
    """The request's JSON body; 415 for another media type, 400 for malformed JSON."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {request.content_type or 'none'}"
        )
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedInput(f"the body is not valid JSON: {exc}") from exc


def _now(request: web.Request) -> datetime:
    return datetime.fromtimestamp(request.app[CLOCK](), UTC)


def json_answer(body: Any, status: int = 200) -> web.Response:
    """``body`` as an ``application/json`` answer."""
    return web.json_response(body, status=status, dumps=lambda v: orjson.dumps(v).decode())


class _View:
    """Turns stored rows into answers for one user: local times, masking for auditors."""

    def __init__(self, user: StaffUser, zone: tzinfo) -> None:
        self.masked = user.role == "auditor"
        self.zone = zone

    def time(self, value: datetime | None) -> str | None:
        return value.astimezone(self.zone).isoformat() if value else None

    def phone(self, value: str | None) -> str | None:
        return mask_phone(value) if value and self.masked else value

    def text(self, value: str | None) -> str | None:
        return mask_phones_in_text(value) if value and self.masked else value

    def report(self, r: report_store.ReportRow) -> dict[str, Any]:
        return {
            "id": r.id,
            "service_request_id": r.number,
            "status": r.status,
            "status_notes": self.text(r.status_notes),
            "agency_responsible": r.agency_name,
            "agency_code": r.agency_code,
            "requested_datetime": self.time(r.created_at),
            "updated_datetime": self.time(r.updated_at),
            "expected_datetime": self.time(r.expected_at),
            "kind": r.kind,
            "finding": r.finding,
            "source": r.source,
            # How the citizen proved the dossier's phone is theirs (gateway.trust.proofs).
            "proof": r.proof,
            "dossier_code": r.dossier_code,
            "description": self.text(r.description),
            "officer": {"id": r.officer_id, "name": r.officer_name} if r.officer_id else None,
            "phone": self.phone(r.phone_e164),
            "zalo_user_id": None if self.masked else r.zalo_user_id,
        }

    def detail(self, d: report_store.ReportDetail) -> dict[str, Any]:
        return self.report(d.report) | {
            "transitions": [
                {
                    "from": t.from_status,
                    "to": t.to_status,
                    "note": self.text(t.note),
                    "actor": t.actor,
                    "at": self.time(t.at),
                }
                for t in d.transitions
            ],
            "dossier": self.dossier(d.dossier),
            "messages": [self.message(m) for m in d.messages],
            "notices": [self.notice(n) for n in d.notices],
        }

    def dossier(self, d: dict[str, Any] | None) -> dict[str, Any] | None:
        if d is None:
            return None
        return {
            "code": d["code"],
            "state": d["state"],
            "procedure": {"code": d["procedure_code"], "name": d["procedure_name"]},
            "agency": {"code": d["agency_code"], "name": d["agency_name"]},
            "applicant": {"name": d["applicant_name"], "phone": self.phone(d["phone_e164"])},
            "received_at": self.time(d["received_at"]),
            "due_at": self.time(d["due_at"]),
            "finished_at": self.time(d["finished_at"]),
            "finished_by": (
                {"id": d["finished_by_id"], "name": d["finished_by_name"]}
                if d["finished_by_id"]
                else None
            ),
            "deadline_state": d["deadline_state"],
            "timeline": [
                {
                    "id": e["event_id"],
                    "type": e["type"],
                    "occurred_at": self.time(e["occurred_at"]),
                    "actor": {"id": e["actor_id"], "name": e["actor_name"]}
                    if e["actor_id"]
                    else None,
                    "superseded": e["superseded"],
                }
                for e in d["timeline"]
            ],
            "notices": [self.notice(n) for n in d["notices"]],
        }

    def notice(self, n: dict[str, Any]) -> dict[str, Any]:
        keys = ("id", "kind", "channel", "route", "state", "attempts", "last_error")
        times = ("created_at", "sent_at", "delivered_at")
        return {k: n[k] for k in keys if k in n} | {k: self.time(n[k]) for k in times if k in n}

    def message(self, m: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": m["id"],
            "direction": m["direction"],
            "text": self.text(m["text"]),
            "event_name": m["event_name"],
            "dossier_code": m["dossier_code"],
            "staff_id": m["staff_id"],
            "sent": m["handled_at"] is not None if m["direction"] == "staff" else None,
            "created_at": self.time(m["created_at"]),
        }

    def handoff(self, h: handoff_store.HandoffRow) -> dict[str, Any]:
        return {
            "id": h.id,
            "status": h.status,
            "user_id": h.user_id,
            "display_name": h.display_name,
            "phone": self.phone(h.phone_e164),
            "dossier_code": h.dossier_code,
            "opened_at": self.time(h.opened_at),
            "closed_at": self.time(h.closed_at),
            "last_message_at": self.time(h.last_message_at),
        }


def _view(request: web.Request, user: StaffUser) -> _View:
    return _View(user, request.app[SETTINGS].tz)


# --- queues -------------------------------------------------------------------------------


async def _dispatch(request: web.Request, notice_ids: list[str]) -> None:
    """Best effort: a notice the queue misses stays ``created`` and the relay sends it."""
    await request.app[QUEUE].offer_notices([(notice_id, "urgent") for notice_id in notice_ids])


# --- reports ------------------------------------------------------------------------------


@routes.get("/v1/reports")
async def list_reports(request: web.Request) -> web.Response:
    user = await require_staff(request, *READERS)
    # ?status=open&status=in_progress means the same as ?status=open,in_progress.
    raw = dict(request.query) | {"status": ",".join(request.query.getall("status", []))}
    query = workflow.parse_report_query(raw, request.app[SETTINGS].tz)
    async with storage_errors():
        page = await report_store.list_reports(
            request.app[DATABASE].reader,
            statuses=query.statuses,
            agency=query.agency,
            since=query.since,
            limit=query.limit,
            after_id=query.after,
        )
    view = _view(request, user)
    following = None
    if page.next_after is not None:
        following = str(request.rel_url.update_query(after=str(page.next_after)))
    return json_answer({"reports": [view.report(r) for r in page.reports], "next": following})


@routes.post("/v1/reports")
async def create_report(request: web.Request) -> web.Response:
    user = await require_staff(request, *WRITERS)
    taken = workflow.parse_phone_report(await json_body(request))
    try:
        async with storage_errors():
            report, notice_ids = await take_phone_report(
                request,
                user,
                kind=taken.kind,
                dossier_code=taken.dossier_code,
                description=taken.description,
                phone_e164=taken.phone_e164,
                agency_code=taken.agency_code,
                agency_name=taken.agency_name,
            )
    except NotFound as exc:
        raise ValidationFailed(
            [
                FieldError(
                    "dossier",
                    "no dossier with this code is known to the gateway; for a dossier "
                    "never entered, give agency_code or agency_name",
                )
            ]
        ) from exc
    log.info("report taken by phone", extra={"report": report.id, "staff": user.id})
    await _dispatch(request, notice_ids)
    response = json_answer(_view(request, user).report(report), status=201)
    response.headers["Location"] = f"/v1/reports/{report.id}"
    return response


async def take_phone_report(
    request: web.Request,
    user: StaffUser,
    *,
    kind: str,
    dossier_code: str,
    description: str,
    phone_e164: str | None,
    agency_code: str | None,
    agency_name: str | None,
) -> tuple[report_store.ReportRow, list[str]]:
    """Record a report a hotline officer took by phone (the API's and the console's one
    path); returns it and the acknowledgement's notice ids, not yet queued. Raises
    :class:`NotFound` for an unknown dossier without an agency."""
    settings = request.config_dict[SETTINGS]
    return await report_store.create_report(
        request.config_dict[DATABASE].writer,
        kind=kind,
        source="phone",
        dossier_code=dossier_code,
        description=description,
        zalo_user_id=None,
        phone_e164=phone_e164,
        calendar=request.config_dict[CALENDAR],
        answer_working_days=settings.chat.report_answer_working_days,
        now=datetime.fromtimestamp(request.config_dict[CLOCK](), UTC),
        actor=user.actor,
        agency_code=agency_code,
        agency_name=agency_name,
        proof="staff",
    )


@routes.get(f"/v1/reports/{_ID}")
async def get_report(request: web.Request) -> web.Response:
    user = await require_staff(request, *READERS)
    report_id = int(request.match_info["id"])
    async with storage_errors():
        detail = await report_store.get_report(request.app[DATABASE].reader, report_id)
    if detail is None:
        raise NotFound(f"no report {report_id}")
    return json_answer(_view(request, user).detail(detail))


@routes.post(f"/v1/reports/{_ID}/transitions")
async def transition_report(request: web.Request) -> web.Response:
    user = await require_staff(request, *WRITERS)
    change = workflow.parse_transition(await json_body(request))
    async with storage_errors():
        report = await move_report(request, user, int(request.match_info["id"]), change)
    return json_answer(_view(request, user).report(report))


async def move_report(
    request: web.Request, user: StaffUser, report_id: int, change: workflow.TransitionRequest
) -> report_store.ReportRow:
    """Apply ``change`` to a report for ``user`` and queue the citizen's notice: the one
    transition both the API and the console make. ``change.reply``, if given, is sent
    instead of the template; it must fit the SMS segment budgets with and without accents
    (:class:`ValidationFailed` on ``reply`` otherwise, nothing written). Raises what
    :func:`gateway.storage.reports.transition` raises."""
    settings = request.config_dict[SETTINGS]
    now = datetime.fromtimestamp(request.config_dict[CLOCK](), UTC)
    if change.reply is not None:
        costs = reply_fits(
            change.reply,
            budget=settings.sms_segment_budget,
            unicode_budget=settings.sms_unicode_segment_budget,
        )
        over = [
            f"{c.segments} > {c.budget} {'with' if c.accents else 'without'} accents"
            for c in costs
            if not c.fits
        ]
        if over:
            raise ValidationFailed(
                [FieldError("reply", f"is too long for an SMS (segments: {', '.join(over)})")]
            )
    expected_at = None
    if change.to == "open":  # reopened: the citizen is promised a new answer date
        expected_at = request.config_dict[CALENDAR].add_working_days(
            now, settings.chat.report_answer_working_days
        )
    report, notice_ids = await report_store.transition(
        request.config_dict[DATABASE].writer,
        report_id,
        change.to,
        change.note,
        user.actor,
        now,
        may_reopen=user.role == "admin",
        expected_at=expected_at,
        finding=change.finding,
        # Read per finding, so a ladder edited on disk applies without a restart.
        ladder=load_ladder(settings.audit.ladder_file) if change.finding else None,
        staff_id=user.id,
        reply_text=change.reply,
    )
    log.info("report moved", extra={"report": report.id, "status": report.status, "staff": user.id})
    if change.finding is not None:
        log.info("report finding", extra={"report": report.id, "finding": change.finding})
    await request.config_dict[QUEUE].offer_notices([(n, "urgent") for n in notice_ids])
    return report


# --- handoffs -----------------------------------------------------------------------------


@routes.get("/v1/handoffs")
async def list_handoffs(request: web.Request) -> web.Response:
    user = await require_staff(request, *WRITERS)
    status, limit = workflow.parse_handoff_query(request.query)
    async with storage_errors():
        rows = await handoff_store.list_handoffs(request.app[DATABASE].reader, status, limit)
    view = _view(request, user)
    return json_answer(
        {
            "handoffs": [
                view.handoff(h) | {"last_message": view.message(m) if m else None} for h, m in rows
            ]
        }
    )


@routes.get(f"/v1/handoffs/{_ID}")
async def get_handoff(request: web.Request) -> web.Response:
    user = await require_staff(request, *WRITERS)
    handoff_id = int(request.match_info["id"])
    async with storage_errors():
        found = await handoff_store.get_handoff(request.app[DATABASE].reader, handoff_id)
        if found is None:
            raise NotFound(f"no handoff {handoff_id}")
        # docs/privacy.md: every reading of a citizen's conversation is in the staff audit
        # log, through the console or here.
        await record_action(
            request.app[DATABASE].writer,
            at=_now(request),
            action="conversation_read",
            username=user.username,
            staff_id=user.id,
            target=f"handoff:{handoff_id}",
            detail={"via": "api"},
            remote_addr=(request.remote or "unknown")[:64],
        )
    handoff, messages = found
    view = _view(request, user)
    return json_answer(view.handoff(handoff) | {"messages": [view.message(m) for m in messages]})


@routes.post(f"/v1/handoffs/{_ID}/replies")
async def reply_to_handoff(request: web.Request) -> web.Response:
    user = await require_staff(request, *WRITERS)
    text = workflow.parse_reply_text(await json_body(request))
    message_id = await reply_to_citizen(request, user, int(request.match_info["id"]), text)
    return json_answer({"id": message_id, "state": "queued"}, status=202)


async def reply_to_citizen(
    request: web.Request, user: StaffUser, handoff_id: int, text: str
) -> int:
    """Store ``user``'s reply in a handoff and queue it for the OA: the one reply both the
    API and the console send. Returns the message id.

    Raises :class:`NotFound`, :class:`Conflict` (the handoff is closed) and
    :class:`StorageUnavailable` (database or chat queue down; a reply the queue did not
    take is withdrawn, since nothing would ever send it).
    """
    engine = request.config_dict[DATABASE].writer
    now = datetime.fromtimestamp(request.config_dict[CLOCK](), UTC)
    async with storage_errors():
        message_id = await handoff_store.add_reply(engine, handoff_id, user.id, text, now)
    try:
        await request.config_dict[QUEUE].call(enqueue_outbound, [message_id])
    except QUEUE_ERRORS as exc:
        # Nothing would ever send it: take it back rather than leave it silently unsent.
        log.warning("staff reply not enqueued; withdrawn", extra={"error": str(exc)})
        async with storage_errors():
            await handoff_store.withdraw_reply(engine, message_id)
        raise StorageUnavailable("the chat queue is unavailable; send the reply again") from exc
    log.info("staff reply queued", extra={"handoff": handoff_id, "staff": user.id})
    return message_id


@routes.post(f"/v1/handoffs/{_ID}/close")
async def close_handoff(request: web.Request) -> web.Response:
    user = await require_staff(request, *WRITERS)
    handoff, _ = await close_conversation(request, user, int(request.match_info["id"]))
    return json_answer(_view(request, user).handoff(handoff))


async def close_conversation(
    request: web.Request, user: StaffUser, handoff_id: int
) -> tuple[handoff_store.HandoffRow, bool]:
    """Close a handoff for ``user`` and queue the citizen's farewell: the one closing both
    the API and the console make. Returns the handoff and whether a farewell was queued
    (not when it was closed already). Raises :class:`NotFound` and
    :class:`StorageUnavailable` (database down)."""
    engine = request.config_dict[DATABASE].writer
    now = datetime.fromtimestamp(request.config_dict[CLOCK](), UTC)
    farewell = request.config_dict[TEXTS].render(
        "bot/handoff_closed.txt.j2", hotline=request.config_dict[SETTINGS].chat.hotline
    )
    message_id: int | None = None
    async with storage_errors():
        # The citizen is told the officer left, so they know the bot answers again.
        with suppress(Conflict):
            message_id = await handoff_store.add_reply(engine, handoff_id, user.id, farewell, now)
        handoff = await handoff_store.close_handoff(engine, handoff_id, now)
    queued = False
    if message_id is not None:
        try:
            await request.config_dict[QUEUE].call(enqueue_outbound, [message_id])
            queued = True
        except QUEUE_ERRORS as exc:  # closed anyway; the farewell is only a courtesy
            log.warning("handoff farewell not enqueued", extra={"error": str(exc)})
    log.info("handoff closed", extra={"handoff": handoff.id, "staff": user.id})
    return handoff, queued
