"""The console's dossier search, by code or phone number (exact match, audited), and the
dossier page.

One field ``q``: text with a letter in it is a dossier code (the canonical form of
:mod:`gateway.domain.codes`, upper-cased first since codes are stored upper case), any
other text a phone number (normalised to E.164 by :mod:`gateway.domain.phones`; exactly
one mobile number). Nothing is matched by pattern, so a search cannot be used to browse
citizens. Auditors search by code only: a phone search would tell them whose number it
is, so it is refused (403) and the refusal is audited too. Every search is recorded as
``dossier_search`` with ``{"by": "code"|"phone", "found": dossiers, "reports": reports}``,
never the number itself.

The dossier page shows the phone masked; hotline and admin may reveal it for one
response (``reveal_phone``, audited first), as on the report page.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, tzinfo
from typing import Any, Final

from aiohttp import web

from gateway.domain import violations as violation_rules
from gateway.domain.codes import is_dossier_code
from gateway.domain.phones import mask_phone, mask_phones_in_text, normalize_phone
from gateway.http.console.auth import audit, current_user, page
from gateway.http.keys import DATABASE, SETTINGS
from gateway.storage import audit_reads
from gateway.storage import dossier_view as store
from gateway.storage.audit_reads import ViolationFilter

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

READERS: Final = ("hotline", "auditor", "admin")
REVEALERS: Final = ("hotline", "admin")
LEDGER_READERS: Final = ("auditor", "admin")
ROLES: Final[dict[str, tuple[str, ...]]] = {
    "dossiers": READERS,
    "dossier": READERS,
    "dossier_reveal": REVEALERS,
}
# A dossier code's shape in a path; the code itself is checked by the domain's parser.
_CODE: Final = r"{code:[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z][0-9]{2}-[0-9]{6}-[0-9]{4,5}}"
_QUERY_MAX: Final = 64
# Any letter (Vietnamese ones too): such a query can only be a dossier code.
_LETTER: Final = re.compile(r"[^\W\d_]")
_LEDGER_LIMIT: Final = 200


def _date(value: datetime | None, zone: tzinfo) -> str:
    return value.astimezone(zone).strftime("%d/%m/%Y") if value else ""


def _time(value: datetime | None, zone: tzinfo) -> str:
    return value.astimezone(zone).strftime("%d/%m/%Y %H:%M") if value else ""


def link_to(request: web.Request, name: str, **parts: str) -> str | None:
    """The URL of the console route ``name`` (None while no page by that name exists)."""
    router = request.app.router
    if name not in router:
        return None
    return str(router[name].url_for(**parts))


# --- the search ---------------------------------------------------------------------------


def search_kind(text: str) -> str:
    """``code`` when ``text`` has a letter, else ``phone``."""
    return "code" if _LETTER.search(text) else "phone"


def search_value(kind: str, text: str) -> str | None:
    """The dossier code or the E.164 number ``text`` stands for, or None when invalid."""
    if len(text) > _QUERY_MAX:
        return None
    if kind == "code":
        code = text.upper()
        return code if is_dossier_code(code) else None
    result = normalize_phone(text)
    return result.e164 if result.ok and not result.others else None


def _dossier_hit(d: store.DossierFacts, zone: tzinfo) -> dict[str, Any]:
    return {
        "code": d.code,
        "procedure": d.procedure_name or d.procedure_code or "",
        "agency": d.agency_name or d.agency_code or "",
        "state": d.state,
        "received": _date(d.received_at, zone),
        "due": _date(d.due_at, zone),
        "phone": mask_phone(d.phone_e164) if d.phone_e164 else "",
    }


def _report_hit(r: store.ReportHit, zone: tzinfo, *, revealed: bool = False) -> dict[str, Any]:
    phone = r.phone_e164 or ""
    return {
        "id": r.id,
        "number": r.number,
        "kind": r.kind,
        "status": r.status,
        "dossier": r.dossier_code or "",
        "agency": r.agency_name or r.agency_code or "",
        "received": _date(r.created_at, zone),
        "phone": phone if revealed or not phone else mask_phone(phone),
    }


@routes.get("/dossiers", name="dossiers")
async def search(request: web.Request) -> web.StreamResponse:
    """The search form and, for a query, the dossiers and reports it matches exactly."""
    user = current_user(request)
    text = request.query.get("q", "").strip()
    context: dict[str, Any] = {
        "q": text[:_QUERY_MAX],
        "error": None,
        "searched": False,
        "by": None,
        "dossiers": [],
        "reports": [],
        "cut": False,
        "phone_allowed": user.role != "auditor",
    }
    if not text:
        return page(request, "dossiers.html.j2", context)
    kind = search_kind(text)
    context["by"] = kind
    if kind == "phone" and user.role == "auditor":
        await audit(
            request,
            "dossier_search_refused",
            username=user.username,
            user=user,
            detail={"by": kind},
        )
        context["error"] = "auditor_phone"
        return page(request, "dossiers.html.j2", context, status=403)
    value = search_value(kind, text)
    if value is None:
        context["error"] = kind
        return page(request, "dossiers.html.j2", context, status=400)
    reader = request.config_dict[DATABASE].reader
    found = await store.find_dossiers(reader, **{kind: value})
    about = await store.find_reports(reader, **{kind: value})
    cut = len(found) > store.SEARCH_LIMIT or len(about) > store.SEARCH_LIMIT
    found, about = found[: store.SEARCH_LIMIT], about[: store.SEARCH_LIMIT]
    await audit(
        request,
        "dossier_search",
        username=user.username,
        user=user,
        target=f"dossier:{value}" if kind == "code" else None,
        detail={"by": kind, "found": len(found), "reports": len(about)},
    )
    zone = request.config_dict[SETTINGS].tz
    context |= {
        "q": value if kind == "code" else context["q"],
        "searched": True,
        "dossiers": [_dossier_hit(d, zone) for d in found],
        "reports": [_report_hit(r, zone) for r in about],
        "cut": cut,
    }
    return page(request, "dossiers.html.j2", context)


# --- the dossier page ---------------------------------------------------------------------


def _facts(d: store.DossierFacts, zone: tzinfo, *, revealed: bool) -> dict[str, Any]:
    phone = d.phone_e164 or ""
    return _dossier_hit(d, zone) | {
        "applicant": d.applicant_name or "",
        "phone": phone if revealed or not phone else mask_phone(phone),
        "phone_problem": d.phone_problem or "",
        "received": _time(d.received_at, zone),
        "due": _time(d.due_at, zone),
        "original_due": _time(d.original_due_at, zone) if d.original_due_at != d.due_at else "",
        "finished": _time(d.finished_at, zone),
        "closed_by": (
            {"id": d.finished_by_id, "name": d.finished_by_name or ""} if d.finished_by_id else None
        ),
        "state_at": _time(d.state_at, zone),
        "deadline": d.deadline_state or "",
    }


async def _ledger(request: web.Request, code: str) -> list[dict[str, Any]]:
    """The ledger's entries about the dossier, for auditors and admins."""
    settings = request.config_dict[SETTINGS]
    found = await audit_reads.list_violations(
        request.config_dict[DATABASE].reader, ViolationFilter(dossier=code), limit=_LEDGER_LIMIT
    )
    rows = []
    for v in found.items:
        try:
            text = violation_rules.description(v.rule, settings.templates_dir)
        except KeyError:  # a rule retired from rules.toml still shows, by its id
            text = v.rule
        rows.append(
            {
                "id": v.id,
                "rule": v.rule,
                "description": text,
                "officer": v.officer_name or v.officer_id or "",
                "occurred": _time(v.occurred_at, settings.tz),
                "status": v.status,
                "link": link_to(request, "audit_violation", id=str(v.id)),
            }
        )
    return rows


async def _render(request: web.Request, *, revealed: bool) -> web.Response:
    """The dossier page; its phone is masked unless ``revealed``."""
    user = current_user(request)
    code = request.match_info["code"]
    if not is_dossier_code(code):
        raise web.HTTPNotFound()
    story = await store.dossier_story(request.config_dict[DATABASE].reader, code)
    if story is None:
        raise web.HTTPNotFound()
    zone = request.config_dict[SETTINGS].tz
    revealed = revealed and user.role in REVEALERS
    context: dict[str, Any] = {
        "code": code,
        "dossier": _facts(story.dossier, zone, revealed=revealed) if story.dossier else None,
        "revealed": revealed,
        "may_reveal": user.role in REVEALERS and bool(story.dossier and story.dossier.phone_e164),
        "timeline": [
            {
                "type": e.type,
                "at": _time(e.occurred_at, zone),
                "actor": e.actor_name or e.actor_id or "",
                "superseded": e.superseded,
            }
            for e in story.timeline
        ],
        "notices": [
            {
                "kind": n.kind,
                "channel": n.channel or "",
                "state": n.state,
                "attempts": n.attempts,
                "created": _time(n.created_at, zone),
                "sent": _time(n.sent_at, zone),
                "delivered": _time(n.delivered_at, zone),
                "error": mask_phones_in_text(n.last_error) if n.last_error else "",
                "link": link_to(request, "notice", id=n.id),
            }
            for n in story.notices
        ],
        "reports": [_report_hit(r, zone) for r in story.reports],
        "ledger": await _ledger(request, code) if user.role in LEDGER_READERS else None,
    }
    return page(request, "dossier.html.j2", context)


@routes.get(f"/dossiers/{_CODE}", name="dossier")
async def dossier(request: web.Request) -> web.StreamResponse:
    """The dossier page, phone masked."""
    return await _render(request, revealed=False)


@routes.post(f"/dossiers/{_CODE}/reveal", name="dossier_reveal")
async def reveal(request: web.Request) -> web.StreamResponse:
    """The dossier page with the applicant's phone shown, this response only; audited
    first (a dossier the gateway does not know is a 404, and nothing is recorded)."""
    user = current_user(request)
    code = request.match_info["code"]
    if not is_dossier_code(code):
        raise web.HTTPNotFound()
    if await store.dossier_story(request.config_dict[DATABASE].reader, code) is None:
        raise web.HTTPNotFound()
    await audit(
        request, "reveal_phone", username=user.username, user=user, target=f"dossier:{code}"
    )
    log.info("phone revealed", extra={"dossier": code, "staff": user.id})
    return await _render(request, revealed=True)
