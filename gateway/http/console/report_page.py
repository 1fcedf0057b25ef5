"""The console's report page: one citizen's report with everything needed to triage it.

The page shows the report, its messages and transitions, the dossier's timeline and
notices, the closing officer and earlier reports on the dossier; hotline and admin move
the report from it (the staff API's transition, :func:`gateway.http.staff.move_report`)
and may reveal the citizen's phone for one response, which is audited. A confirmed
false-closure finding's consequence is computed before saving with the very function the
save uses, so what the officer reads is what the ledger gets.
"""

from __future__ import annotations

import logging
from datetime import datetime, tzinfo
from typing import Any, Final

from aiohttp import web
from aiohttp_session import get_session

from gateway.domain import reports as workflow
from gateway.domain.phones import mask_phone, mask_phones_in_text
from gateway.domain.sanctions import load_ladder
from gateway.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from gateway.http.console.auth import audit, current_user, page
from gateway.http.keys import DATABASE, SETTINGS
from gateway.http.staff import move_report
from gateway.storage import reports as report_store
from gateway.storage.staff import StaffUser

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
        "kind": n.get("kind", ""),
        "channel": n.get("channel") or "",
        "state": n.get("state", ""),
        "created": _time(n.get("created_at"), zone),
        "sent": _time(n.get("sent_at"), zone),
        "delivered": _time(n.get("delivered_at"), zone),
        "error": n.get("last_error") or "",
    }


async def _render(request: web.Request, *, revealed: bool, status: int = 200) -> web.Response:
    """The report page; the phone (in fields and in texts) is masked unless ``revealed``."""
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
                "actor": t.actor,
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
        "moves": _moves(r.status, user) if user.role in WRITERS else [],
        "consequence": await _consequence(request, r, user) if user.role in WRITERS else None,
        "flash": flash if isinstance(flash, str) else None,
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
    """Move the report as the staff API would, then back to its page with a flash."""
    user = current_user(request)
    report_id = _report_id(request)
    form = await request.post()
    body = {
        "to": str(form.get("to", "")),
        "note": str(form.get("note", "")).strip() or None,
        "finding": str(form.get("finding", "")) or None,
    }
    session = await get_session(request)
    try:
        change = workflow.parse_transition(body)
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
            detail={"to": moved.status, "finding": change.finding},
        )
    raise web.HTTPSeeOther(request.app.router["report"].url_for(id=str(report_id)))
