"""The hotline's report queue (triage) and the form for a report taken by phone.

The queue is the console's landing page: open reports grouped by dossier, overdue ones
on top, then oldest first, with the SLA clock of each (working days per kind,
``REPORT_SLA_WORKING_DAYS``), filters in the query string and an assignment form on
each row. The phone form records what a caller said, also about a dossier the gateway
has never seen (never entered into the software: exactly what citizens call about).
Phones are masked everywhere here; the report page has the audited reveal.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from gateway.domain import reports as workflow
from gateway.domain.phones import mask_phone
from gateway.errors import FieldError, NotFound, ValidationFailed
from gateway.http.console.auth import audit, current_user, now_of, page
from gateway.http.keys import CALENDAR, DATABASE, QUEUE, SETTINGS
from gateway.http.staff import take_phone_report
from gateway.storage import report_queue
from gateway.storage import reports as report_store
from gateway.storage import staff as staff_store
from gateway.storage.staff import ROLES as ALL_ROLES
from gateway.storage.staff import StaffUser

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

# Exactly as the staff API: every staff role reads reports, auditors with phones masked;
# hotline officers and admins take reports and write them down.
READERS: Final = ("hotline", "auditor", "admin")
WRITERS: Final = ("hotline", "admin")
ROLES: Final[dict[str, tuple[str, ...]]] = {
    "home": ALL_ROLES,
    "logout": ALL_ROLES,
    "reports": READERS,
    "report_assign": WRITERS,
    "report_new": WRITERS,
    "report_new_post": WRITERS,
}
_ID: Final = r"{id:\d{1,18}}"
# The queue's filters as named in its query string (kept across an assignment).
_FILTERS: Final = ("status", "kind", "agency", "sla", "assignee")
_BACKS: Final = ("queue", "report")


def _time(value: datetime | None, zone: tzinfo, fmt: str = "%d/%m/%Y %H:%M") -> str:
    return value.astimezone(zone).strftime(fmt) if value else ""


def _field_errors(exc: ValidationFailed) -> list[str]:
    """The names of the faulty fields, in order, once each."""
    return list(dict.fromkeys(e.field for e in exc.errors))


# --- the queue ----------------------------------------------------------------------------


@routes.get("/", name="home")
async def home(request: web.Request) -> web.StreamResponse:
    """``/console/`` itself: the report queue."""
    raise web.HTTPSeeOther(request.app.router["reports"].url_for())


def _raw_filters(request: web.Request) -> dict[str, Any]:
    """The filters as typed, to fill the form again (valid or not)."""
    query = request.query
    return {
        "statuses": [s for s in query.getall("status", []) if s.strip()],
        "kind": query.get("kind", ""),
        "agency": query.get("agency", ""),
        "sla": query.get("sla", ""),
        "assignee": query.get("assignee", ""),
    }


def _filter_query(pairs: list[tuple[str, str]]) -> str:
    """Only the queue's filters of a query string, encoded again."""
    return urlencode([(k, v) for k, v in pairs if k in _FILTERS and v.strip()])


async def _assignable(request: web.Request) -> list[StaffUser]:
    """Active hotline officers and admins: who a report may be given to."""
    users = await staff_store.list_users(request.config_dict[DATABASE].reader)
    return [u for u in users if u.disabled_at is None and u.role in report_queue.ASSIGNABLE_ROLES]


def _item(item: report_queue.QueueItem, zone: tzinfo, names: Mapping[int, str]) -> dict[str, Any]:
    r = item.report
    return {
        "id": r.id,
        "number": r.number,
        "kind": r.kind,
        "source": r.source,
        "status": r.status,
        "agency": r.agency_name or r.agency_code or "",
        "received": _time(r.created_at, zone),
        "phone": mask_phone(r.phone_e164) if r.phone_e164 else "",
        "sla": (
            {
                "state": item.sla.state,
                "days": item.sla.days,
                "due": _time(item.sla.due_at, zone, "%d/%m/%Y"),
            }
            if item.sla
            else None
        ),
        "assignee_id": r.assignee_id,
        "assignee": names.get(r.assignee_id, f"#{r.assignee_id}") if r.assignee_id else "",
    }


async def _queue_context(
    request: web.Request, user: StaffUser, wanted: workflow.QueueFilter
) -> dict[str, Any]:
    settings = request.config_dict[SETTINGS]
    reader = request.config_dict[DATABASE].reader
    assignee = user.id if wanted.assignee == "me" else wanted.assignee
    queue = await report_queue.load_queue(
        reader,
        statuses=wanted.statuses,
        kind=wanted.kind,
        agency=wanted.agency,
        assignee=assignee,
        sla=wanted.sla,
        now=now_of(request),
        calendar=request.config_dict[CALENDAR],
        sla_days=settings.chat.report_sla_working_days,
    )
    users = await staff_store.list_users(reader)
    names = {u.id: u.name for u in users}
    zone = settings.tz
    return {
        "groups": [
            {
                "dossier": g.dossier_code or "",
                "known": g.items[0].dossier_known,
                "count": len(g.items),
                "reports": [_item(i, zone, names) for i in g.items],
            }
            for g in queue.groups
        ],
        "shown": queue.shown,
        "total": queue.total,
        "capped": queue.capped,
    }


@routes.get("/reports", name="reports")
async def reports(request: web.Request) -> web.StreamResponse:
    """The queue: grouped by dossier, overdue first then oldest first, filtered by the
    query string (``status`` repeatable, ``kind``, ``agency``, ``sla``, ``assignee``). A
    faulty filter gives a 400 page naming it and nothing else; a filtered view is audited
    (``queue_filter``)."""
    user = current_user(request)
    context: dict[str, Any] = {
        "filters": _raw_filters(request),
        "errors": [],
        "groups": [],
        "shown": 0,
        "total": 0,
        "capped": False,
        "cap": report_queue.SHOW_MAX,
        "agencies": await report_queue.known_agencies(
            request.config_dict[DATABASE].reader, dossiers_too=False
        ),
        # Who a report may be given to: the assign forms' and the assignee filter's choices.
        "staff": [{"id": u.id, "name": u.name} for u in await _assignable(request)],
        "may_write": user.role in WRITERS,
        "query": _filter_query(list(request.query.items())),
        "sla_days": request.config_dict[SETTINGS].chat.report_sla_working_days,
    }
    try:
        wanted = workflow.parse_queue_query(list(request.query.items()))
    except ValidationFailed as exc:
        context["errors"] = _field_errors(exc)
        return page(request, "reports.html.j2", context, status=400)
    context |= await _queue_context(request, user, wanted)
    if not wanted.is_default():
        await audit(
            request,
            "queue_filter",
            username=user.username,
            user=user,
            detail={
                "status": list(wanted.statuses),
                "kind": wanted.kind,
                "agency": wanted.agency,
                "sla": wanted.sla,
                "assignee": wanted.assignee,
            },
        )
    return page(request, "reports.html.j2", context)


# --- assignment ---------------------------------------------------------------------------


def _assignee_of(raw: str, user: StaffUser) -> int | None:
    """``""`` (nobody), ``me`` or a staff id; :class:`ValidationFailed` otherwise."""
    if raw == "":
        return None
    if raw == "me":
        return user.id
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return int(raw)
    raise ValidationFailed([FieldError("assignee_id", "must be empty, me or a staff id")])


@routes.post(f"/reports/{_ID}/assign", name="report_assign")
async def assign(request: web.Request) -> web.StreamResponse:
    """Give the report to someone (``assignee_id``: ``""`` nobody, ``me``, a staff id of
    an active hotline officer or admin), audited; then back (303) to the queue (with the
    filters in ``q``) or to the report page (``back``)."""
    user = current_user(request)
    report_id = int(request.match_info["id"])
    form = await request.post()
    back = str(form.get("back", "queue"))
    if back not in _BACKS:
        raise ValidationFailed([FieldError("back", "must be queue or report")])
    assignee = _assignee_of(str(form.get("assignee_id", "")).strip(), user)
    await report_queue.assign(
        request.config_dict[DATABASE].writer, report_id, assignee, now_of(request)
    )
    await audit(
        request,
        "report_assign",
        username=user.username,
        user=user,
        target=f"report:{report_id}",
        detail={"assignee_id": assignee},
    )
    log.info("report assigned", extra={"report": report_id, "staff": user.id})
    if back == "report":
        raise web.HTTPSeeOther(request.app.router["report"].url_for(id=str(report_id)))
    location = request.app.router["reports"].url_for()
    query = _filter_query(parse_qsl(str(form.get("q", ""))))
    raise web.HTTPSeeOther(f"{location}?{query}" if query else location)


# --- a report taken by phone --------------------------------------------------------------

_BLANK_FORM: Final = {
    "kind": "false_closure",
    "dossier_code": "",
    "phone": "",
    "description": "",
    "agency_code": "",
    "agency_name": "",
}


async def _form_page(
    request: web.Request, values: Mapping[str, str], errors: list[str], *, status: int = 200
) -> web.Response:
    agencies = await report_queue.known_agencies(request.config_dict[DATABASE].reader)
    context = {"values": values, "errors": errors, "agencies": agencies}
    return page(request, "report_new.html.j2", context, status=status)


@routes.get("/reports/new", name="report_new")
async def new_report(request: web.Request) -> web.StreamResponse:
    """The empty phone-report form."""
    return await _form_page(request, _BLANK_FORM, [])


def _agency_of(
    taken: workflow.PhoneForm, agencies: list[tuple[str, str]]
) -> tuple[str | None, str | None]:
    """The agency named on the form: a known code (its name unless one was typed) or a
    typed name alone. :class:`ValidationFailed` for a code nobody knows."""
    if taken.agency_code is None:
        return None, taken.agency_name
    known = dict(agencies)
    if taken.agency_code not in known:
        raise ValidationFailed([FieldError("agency_code", "is not a known agency")])
    return taken.agency_code, taken.agency_name or known[taken.agency_code] or None


@routes.post("/reports", name="report_new_post")
async def create_report(request: web.Request) -> web.StreamResponse:
    """Record the report (source ``phone``, by ``staff:<id>``), queue its acknowledgement,
    audit it (``report_create``) and show its page; faulty fields re-render the form
    (400) with the typed values."""
    user = current_user(request)
    form = await request.post()
    values = {name: str(form.get(name, "")) for name in _BLANK_FORM}
    try:
        taken = workflow.parse_phone_form(values)
        agencies = await report_queue.known_agencies(request.config_dict[DATABASE].reader)
        agency_code, agency_name = _agency_of(taken, agencies)
        report, notice_ids = await _store(request, user, taken, agency_code, agency_name)
    except ValidationFailed as exc:
        return await _form_page(request, values, _field_errors(exc), status=400)
    except NotFound:  # a dossier never seen, and no agency named
        return await _form_page(request, values, ["agency"], status=400)
    await request.config_dict[QUEUE].offer_notices([(n, "urgent") for n in notice_ids])
    await audit(
        request,
        "report_create",
        username=user.username,
        user=user,
        target=f"report:{report.id}",
        detail={
            "kind": report.kind,
            "dossier_code": report.dossier_code,
            "source": "phone",
        },
    )
    log.info("report taken by phone", extra={"report": report.id, "staff": user.id})
    raise web.HTTPSeeOther(request.app.router["report"].url_for(id=str(report.id)))


async def _store(
    request: web.Request,
    user: StaffUser,
    taken: workflow.PhoneForm,
    agency_code: str | None,
    agency_name: str | None,
) -> tuple[report_store.ReportRow, list[str]]:
    return await take_phone_report(
        request,
        user,
        kind=taken.kind,
        dossier_code=taken.dossier_code,
        description=taken.description,
        phone_e164=taken.phone_e164,
        agency_code=agency_code,
        agency_name=agency_name,
    )
