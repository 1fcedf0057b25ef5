"""The console's report page: one citizen's report with everything needed to triage it.

The page shows the report, its messages and transitions, the dossier's timeline and
notices, the closing officer and earlier reports on the dossier; hotline and admin move
the report from it (the staff API's transition, :func:`gateway.http.staff.move_report`)
and may reveal the citizen's phone for one response, which is audited. A confirmed
false-closure finding's consequence is computed before saving with the very function the
save uses, so what the officer reads is what the ledger gets.

Each move the workflow allows has its own form with the citizen's message pre-filled: the
state's notice rendered from its template with the report's facts (as the OA sends it).
Left as pre-filled (or emptied), the template is sent, with the note in it; edited, the
text is sent as written (``reply_text`` in the notice's params) and must fit the SMS
segment budgets with and without accents. "Xem trước" re-renders the form with the
template filled with the note typed, changing nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import unicodedata
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any, Final

from aiohttp import web
from aiohttp_session import get_session

from gateway.domain import reports as workflow
from gateway.domain.phones import mask_phone, mask_phones_in_text
from gateway.domain.sanctions import load_ladder
from gateway.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from gateway.http.console.auth import audit, current_user, now_of, page
from gateway.http.keys import CALENDAR, DATABASE, SETTINGS, TEXTS
from gateway.http.staff import move_report
from gateway.storage import reports as report_store
from gateway.storage import staff as staff_store
from gateway.storage.staff import StaffUser
from gateway.texts.sms import REQUIRED_PARAMS, reply_fits
from gateway.texts.zalo import render_oa

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

READERS: Final = ("hotline", "auditor", "admin")
WRITERS: Final = ("hotline", "admin")
ROLES: Final[dict[str, tuple[str, ...]]] = {
    "report": READERS,
    "report_move": WRITERS,
    "report_reveal": WRITERS,
}
_ID: Final = r"{id:\d{1,18}}"
_FLASH: Final = "report_flash"
# Stands for the note in a pre-filled message whose template cannot do without one (the
# reason of a rejection) until the officer previews it with the note typed.
NOTE_PLACEHOLDER: Final = "…"


@dataclasses.dataclass(frozen=True, slots=True)
class Draft:
    """A move form as the officer sent it, shown again (preview, or refused with errors).

    ``errors`` maps a field (``reply``) to why it was refused, with the numbers the
    template's sentence needs (see :func:`_reply_errors`).
    """

    to: str
    note: str
    reply: str
    finding: str
    errors: Mapping[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


def _time(value: datetime | None, zone: tzinfo) -> str:
    return value.astimezone(zone).strftime("%d/%m/%Y %H:%M") if value else ""


def _report_id(request: web.Request) -> int:
    return int(request.match_info["id"])


def _moves(status: str, user: StaffUser) -> list[str]:
    """The states the workflow lets ``user`` move a report in ``status`` to."""
    allowed: list[str] = []
    for to in workflow.STATUSES:
        try:
            workflow.check_transition(status, to, may_reopen=user.role == "admin")
        except (Conflict, PermissionDenied):
            continue
        allowed.append(to)
    return allowed


def _template_reply(
    request: web.Request, report: report_store.ReportRow, to: str, note: str | None
) -> str:
    """The message the citizen gets when ``report`` moves to ``to`` with ``note`` and no
    reply of the officer's own: the notice's template with the report's facts, as the OA
    sends it (with accents, on one line). A template that needs the note gets
    :data:`NOTE_PLACEHOLDER` while there is none; "" if the report lacks a fact the
    template needs (the notice would fail the same way)."""
    kind = workflow.notice_kind_for(to)
    if not note and "status_note" in REQUIRED_PARAMS.get(kind, ()):
        note = NOTE_PLACEHOLDER
    moved = dataclasses.replace(report, status=to, expected_at=_expected_at(request, report, to))
    params = report_store.notice_params(moved, note or None)
    zone = request.config_dict[SETTINGS].tz
    try:
        return render_oa(request.config_dict[TEXTS], kind, params, zone).text
    except ValidationFailed:
        return ""


def _expected_at(request: web.Request, report: report_store.ReportRow, to: str) -> datetime | None:
    """The answer date the notice will name: a reopened report gets a new one, as
    :func:`gateway.http.staff.move_report` computes it."""
    if to != "open":
        return report.expected_at
    days = request.config_dict[SETTINGS].chat.report_answer_working_days
    moved: datetime = request.config_dict[CALENDAR].add_working_days(now_of(request), days)
    return moved


def _plain(text: str) -> str:
    """A message as compared: NFC, runs of white space as one space."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _own_reply(
    request: web.Request, report: report_store.ReportRow, to: str, note: str | None, reply: str
) -> str | None:
    """The officer's own text, or None when the template is to be sent: an empty reply,
    or one still as pre-filled (without the note, or previewed with it)."""
    if not reply.strip():
        return None
    sent = _plain(reply)
    templates = {
        _template_reply(request, report, to, None),
        _template_reply(request, report, to, note),
    }
    if any(sent == _plain(t) for t in templates):
        return None
    return reply.strip()


def _reply_errors(request: web.Request, reply: str) -> dict[str, dict[str, Any]]:
    """Why ``reply`` cannot go out (too long for an SMS in either form), if it cannot."""
    if len(reply) > workflow.REPLY_MAX:
        return {"reply": {"reason": "too_long", "max": workflow.REPLY_MAX, "length": len(reply)}}
    settings = request.config_dict[SETTINGS]
    costs = reply_fits(
        reply,
        budget=settings.sms_segment_budget,
        unicode_budget=settings.sms_unicode_segment_budget,
    )
    if all(c.fits for c in costs):
        return {}
    plain, accented = costs
    return {
        "reply": {
            "reason": "segments",
            "plain": plain.segments,
            "plain_budget": plain.budget,
            "accented": accented.segments,
            "accented_budget": accented.budget,
        }
    }


def _move_forms(
    request: web.Request,
    report: report_store.ReportRow,
    moves: list[str],
    draft: Draft | None,
) -> list[dict[str, Any]]:
    """One form per allowed move: the note, the finding, and the pre-filled message
    (or, for the form the officer sent, what they sent)."""
    forms = []
    for to in moves:
        mine = draft if draft is not None and draft.to == to else None
        forms.append(
            {
                "to": to,
                "open": mine is not None,
                "note": mine.note if mine else "",
                "finding": mine.finding if mine else "",
                "reply": mine.reply if mine else _template_reply(request, report, to, None),
                "errors": dict(mine.errors) if mine else {},
            }
        )
    return forms


async def _assignee(request: web.Request, report: report_store.ReportRow) -> dict[str, Any] | None:
    """Who the report is assigned to (id and name), if anyone."""
    assignee_id = getattr(report, "assignee_id", None)
    if assignee_id is None:
        return None
    found = await staff_store.get_user(request.config_dict[DATABASE].reader, int(assignee_id))
    return {"id": int(assignee_id), "name": found.name if found else f"#{assignee_id}"}


async def _consequence(
    request: web.Request, report: report_store.ReportRow, user: StaffUser
) -> dict[str, Any] | None:
    """What confirming the false closure would record, for a report that may still take a
    finding; ``{"officer": None}`` when no closing officer can be found."""
    if report.kind != "false_closure" or report.dossier_code is None:
        return None
    if report.finding is not None and user.role != "admin":
        return None
    settings = request.config_dict[SETTINGS]
    try:
        found, suggestion = await report_store.preview_false_closure(
            request.config_dict[DATABASE].reader,
            report.dossier_code,
            report.id,
            load_ladder(settings.audit.ladder_file),
        )
    except Conflict:
        return {"officer": None}
    return {
        "officer": {"id": found.officer_id or "", "name": found.officer_name or ""},
        "sanction": suggestion.sanction if suggestion else None,
        "reassign": suggestion.reassign if suggestion else False,
        "supervisor": (
            {"id": suggestion.supervisor[0], "name": suggestion.supervisor[1]}
            if suggestion and suggestion.supervisor
            else None
        ),
        "repeat_of": suggestion.repeat_of if suggestion else None,
    }


def _notice(n: dict[str, Any], zone: tzinfo) -> dict[str, Any]:
    return {
        "id": n.get("id", ""),
        "kind": n.get("kind", ""),
        "channel": n.get("channel") or "",
        "state": n.get("state", ""),
        "created": _time(n.get("created_at"), zone),
        "sent": _time(n.get("sent_at"), zone),
        "delivered": _time(n.get("delivered_at"), zone),
        "error": n.get("last_error") or "",
    }


async def _actor(request: web.Request, actor: str) -> dict[str, str]:
    """Who made a transition: ``kind`` (citizen, system, staff) and a staff user's name."""
    kind, _, staff_id = actor.partition(":")
    if kind != "staff":
        return {"kind": kind, "name": ""}
    found = None
    if staff_id.isdigit() and len(staff_id) <= 18:
        found = await staff_store.get_user(request.config_dict[DATABASE].reader, int(staff_id))
    return {"kind": "staff", "name": found.name if found else actor}


async def _render(
    request: web.Request, *, revealed: bool, status: int = 200, draft: Draft | None = None
) -> web.Response:
    """The report page; the phone (in fields and in texts) is masked unless ``revealed``;
    ``draft`` is a move form to show again as the officer sent it."""
    user = current_user(request)
    reader = request.config_dict[DATABASE].reader
    detail = await report_store.get_report(reader, _report_id(request))
    if detail is None:
        raise web.HTTPNotFound()
    zone = request.config_dict[SETTINGS].tz
    r = detail.report

    def phone(value: str | None) -> str:
        return (value if revealed else mask_phone(value)) if value else ""

    def text(value: str | None) -> str:
        return (value if revealed else mask_phones_in_text(value)) if value else ""

    dossier = detail.dossier
    earlier = (
        await report_store.reports_on_dossier(reader, r.dossier_code, before_id=r.id)
        if r.dossier_code
        else []
    )
    session = await get_session(request)
    flash = session.pop(_FLASH, None)
    context: dict[str, Any] = {
        "report": {
            "id": r.id,
            "number": r.number,
            "kind": r.kind,
            "source": r.source,
            "proof": r.proof,
            "status": r.status,
            "status_notes": text(r.status_notes),
            "finding": r.finding,
            "description": text(r.description),
            "dossier": r.dossier_code or "",
            "agency": r.agency_name or r.agency_code or "",
            "received": _time(r.created_at, zone),
            "due": _time(r.expected_at, zone),
            "phone": phone(r.phone_e164),
        },
        "revealed": revealed,
        "may_write": user.role in WRITERS,
        "messages": [
            {
                "direction": m["direction"],
                "text": text(m["text"]),
                "at": _time(m["created_at"], zone),
            }
            for m in detail.messages
        ],
        "transitions": [
            {
                "from": t.from_status,
                "to": t.to_status,
                "note": text(t.note),
                "actor": await _actor(request, t.actor),
                "at": _time(t.at, zone),
            }
            for t in detail.transitions
        ],
        "report_notices": [_notice(n, zone) for n in detail.notices],
        "dossier": None,
        "earlier": [
            {
                "id": e.id,
                "number": e.number,
                "kind": e.kind,
                "status": e.status,
                "received": _time(e.created_at, zone),
            }
            for e in earlier
        ],
        "moves": _move_forms(request, r, _moves(r.status, user), draft)
        if user.role in WRITERS
        else [],
        "consequence": await _consequence(request, r, user) if user.role in WRITERS else None,
        "flash": flash if isinstance(flash, str) else None,
        "assignee": await _assignee(request, r),
        "me": user.id,
    }
    if dossier is not None:
        context["dossier"] = {
            "code": dossier["code"],
            "state": dossier["state"],
            "procedure": dossier["procedure_name"] or dossier["procedure_code"] or "",
            "agency": dossier["agency_name"] or dossier["agency_code"] or "",
            "applicant": dossier["applicant_name"] or "",
            "phone": phone(dossier["phone_e164"]),
            "received": _time(dossier["received_at"], zone),
            "due": _time(dossier["due_at"], zone),
            "finished": _time(dossier["finished_at"], zone),
            "closed_by": (
                {"id": dossier["finished_by_id"], "name": dossier["finished_by_name"] or ""}
                if dossier["finished_by_id"]
                else None
            ),
            "timeline": [
                {
                    "type": e["type"],
                    "at": _time(e["occurred_at"], zone),
                    "actor": e["actor_name"] or e["actor_id"] or "",
                    "superseded": bool(e["superseded"]),
                }
                for e in dossier["timeline"]
            ],
            "notices": [_notice(n, zone) for n in dossier["notices"]],
        }
    return page(request, "report.html.j2", context, status=status)


@routes.get(f"/reports/{_ID}", name="report")
async def report(request: web.Request) -> web.StreamResponse:
    """The report page, phone masked."""
    return await _render(request, revealed=False)


@routes.post(f"/reports/{_ID}/reveal", name="report_reveal")
async def reveal(request: web.Request) -> web.StreamResponse:
    """The report page with the phone shown, for this response only; audited first."""
    user = current_user(request)
    report_id = _report_id(request)
    await audit(
        request, "reveal_phone", username=user.username, user=user, target=f"report:{report_id}"
    )
    log.info("phone revealed", extra={"report": report_id, "staff": user.id})
    return await _render(request, revealed=True)


@routes.post(f"/reports/{_ID}/transitions", name="report_move")
async def move(request: web.Request) -> web.StreamResponse:
    """Move the report as the staff API would, then back to its page with a flash.

    ``action=preview`` shows the form again with the message filled from the template
    and the note typed (nothing changes); a message too long for an SMS shows the form
    again with the reason (400, nothing changes).
    """
    user = current_user(request)
    report_id = _report_id(request)
    form = await request.post()
    draft = Draft(
        to=str(form.get("to", "")),
        note=str(form.get("note", "")).strip(),
        reply=str(form.get("reply", "")),
        finding=str(form.get("finding", "")),
    )
    if form.get("action") == "preview":
        return await _preview(request, report_id, draft)
    session = await get_session(request)
    try:
        change = await _change(request, report_id, draft)
        if isinstance(change, Draft):
            return await _render(request, revealed=False, status=400, draft=change)
        moved = await move_report(request, user, report_id, change)
    except NotFound as exc:
        raise web.HTTPNotFound() from exc
    except ValidationFailed as exc:
        fields = {e.field for e in exc.errors}
        session[_FLASH] = "note_required" if fields == {"note"} else "invalid"
    except PermissionDenied:
        session[_FLASH] = "forbidden"
    except Conflict:
        session[_FLASH] = "conflict"
    else:
        session[_FLASH] = "moved"
        await audit(
            request,
            "report_transition",
            username=user.username,
            user=user,
            target=f"report:{report_id}",
            # An officer's own message is marked (its words are in the notice, not here).
            detail={"to": moved.status, "finding": change.finding}
            | ({"reply": "own"} if change.reply is not None else {}),
        )
    raise web.HTTPSeeOther(request.app.router["report"].url_for(id=str(report_id)))


async def _report_row(request: web.Request, report_id: int) -> report_store.ReportRow:
    detail = await report_store.get_report(request.config_dict[DATABASE].reader, report_id)
    if detail is None:
        raise web.HTTPNotFound()
    return detail.report


async def _change(
    request: web.Request, report_id: int, draft: Draft
) -> workflow.TransitionRequest | Draft:
    """The transition the form asks for, or the draft with its errors to show again.

    Raises :class:`ValidationFailed` for a form the workflow's parser refuses (flashed).
    """
    reply: str | None = None
    if draft.to in workflow.STATUSES and draft.reply.strip():
        report = await _report_row(request, report_id)
        reply = _own_reply(request, report, draft.to, draft.note or None, draft.reply)
        errors = _reply_errors(request, reply) if reply is not None else {}
        if errors:
            return dataclasses.replace(draft, errors=errors)
    return workflow.parse_transition(
        {
            "to": draft.to,
            "note": draft.note or None,
            "finding": draft.finding or None,
            "reply": reply,
        }
    )


async def _preview(request: web.Request, report_id: int, draft: Draft) -> web.Response:
    """The page again, the form's message filled from the template with the note typed."""
    if draft.to not in workflow.STATUSES:
        raise web.HTTPBadRequest()
    report = await _report_row(request, report_id)
    reply = _template_reply(request, report, draft.to, draft.note or None)
    return await _render(request, revealed=False, draft=dataclasses.replace(draft, reply=reply))
