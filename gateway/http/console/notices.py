"""The console's notices that need a person: outcomes lost (``unknown``) or ``failed``.

``/console/notices`` lists them newest first (filters: state, kind) with the vendor's
reason; ``/console/notices/{id}`` shows one notice, its text and every delivery attempt.
A resend is checked: the officer must tick ``confirm`` (for ``unknown``: the citizen may
already have the message), and it makes a new notice for the queue, never sends the same
row again (:mod:`gateway.storage.notice_review`). Phones are always masked here, and a
one-time code (kind ``otp``) is shown as ``••••••``.
"""

from __future__ import annotations

import logging
from datetime import datetime, tzinfo
from typing import Any, Final
from urllib.parse import urlencode

from aiohttp import web
from aiohttp_session import get_session

from gateway.domain.phones import mask_phone, mask_phones_in_text
from gateway.errors import Conflict, InputError, NotFound, ValidationFailed
from gateway.http.console.auth import audit, current_user, now_of, page
from gateway.http.keys import DATABASE, QUEUE, SETTINGS, TEXTS
from gateway.storage import notice_review
from gateway.storage.notice_review import NoticeReview
from gateway.texts.sms import KINDS, NO_DOSSIER_PARAMS, ZALO_ONLY_PARAMS
from gateway.texts.zalo import render_oa
from gateway.trust.otp import hide_code

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

HANDLERS: Final = ("hotline", "admin")
ROLES: Final[dict[str, tuple[str, ...]]] = {
    "notices": HANDLERS,
    "notice": HANDLERS,
    "notice_resend": HANDLERS,
}
# Notice ids are 32 hex characters (uuid4().hex).
_ID: Final = r"{id:[0-9a-f]{1,32}}"
PAGE_SIZE: Final = 200
NOTICE_KINDS: Final = (*KINDS, *ZALO_ONLY_PARAMS, *NO_DOSSIER_PARAMS)
_FLASH: Final = "notice_flash"


def _time(value: datetime | None, zone: tzinfo) -> str:
    return value.astimezone(zone).strftime("%d/%m/%Y %H:%M") if value else ""


def _dossier_link(review: NoticeReview) -> str:
    """Where the dossier code leads: the report the notice is about, else the search."""
    report_id = notice_review.report_id_of(review.notice)
    if report_id is not None:
        return f"/console/reports/{report_id}"
    return "/console/dossiers?" + urlencode({"q": review.notice.dossier_code})


def _attempt(d: notice_review.DeliveryRow, zone: tzinfo) -> dict[str, Any]:
    return {
        "channel": d.channel,
        "provider": d.provider,
        "state": d.state,
        "code": d.error_code or "",
        "error": mask_phones_in_text(d.error) if d.error else "",
        "at": _time(d.created_at, zone),
        "updated": _time(d.updated_at, zone),
    }


def _row(review: NoticeReview, zone: tzinfo) -> dict[str, Any]:
    """A notice as the list and the page show it (phone masked, reasons unmasked of
    nothing but phone numbers)."""
    n = review.notice
    attempts = [_attempt(d, zone) for d in review.deliveries]
    return {
        "id": n.id,
        "kind": n.kind,
        "state": n.state,
        "created": _time(n.created_at, zone),
        "updated": _time(n.updated_at, zone),
        "sent": _time(n.sent_at, zone),
        "channel": n.channel or "",
        "provider": n.provider or "",
        "attempts": n.attempts,
        "reason": mask_phones_in_text(n.last_error) if n.last_error else "",
        "route": mask_phones_in_text(n.route) if n.route else "",
        "vendor": [a for a in attempts if a["code"] or a["error"]],
        "deliveries": attempts,
        "phone": mask_phone(n.phone_e164) if n.phone_e164 else "",
        "zalo": bool(n.zalo_user_id),
        "dossier": n.dossier_code,
        "dossier_link": _dossier_link(review),
        "resend_of": str(n.params.get(notice_review.RESEND_PARAM) or ""),
        "resends": [{"id": i, "state": s} for i, s in review.resends],
        "pending_resend": review.pending_resend,
    }


def _filters(request: web.Request) -> tuple[str, str]:
    """The list's filters (``state``, ``kind``; blank is no filter); 400 for another value."""
    state = request.query.get("state", "").strip()
    kind = request.query.get("kind", "").strip()
    if state and state not in notice_review.ATTENTION_STATES:
        raise InputError("state must be unknown or failed")
    if kind and kind not in NOTICE_KINDS:
        raise InputError("unknown notice kind")
    return state, kind


@routes.get("/notices", name="notices")
async def list_notices(request: web.Request) -> web.StreamResponse:
    """Notices in ``unknown`` or ``failed``, newest first, at most :data:`PAGE_SIZE`."""
    state, kind = _filters(request)
    found = await notice_review.list_attention(
        request.config_dict[DATABASE].reader,
        states=(state,) if state else notice_review.ATTENTION_STATES,
        kind=kind or None,
        limit=PAGE_SIZE,
    )
    zone = request.config_dict[SETTINGS].tz
    return page(
        request,
        "notices.html.j2",
        {
            "notices": [_row(r, zone) for r in found],
            "state": state,
            "kind": kind,
            "kinds": NOTICE_KINDS,
            "full": len(found) >= PAGE_SIZE,
        },
    )


def _notice_id(request: web.Request) -> str:
    return request.match_info["id"]


def _text_of(request: web.Request, review: NoticeReview) -> tuple[str, bool]:
    """The text sent (and True), or, for a notice never sent, the text it would send as an
    OA message (and False); phone numbers masked."""
    n = review.notice
    params, sent_text = hide_code(n.kind, n.params, n.text)  # a one-time code: ••••••
    if sent_text:
        return mask_phones_in_text(sent_text), True
    zone = request.config_dict[SETTINGS].tz
    try:
        text = render_oa(request.config_dict[TEXTS], n.kind, params, zone).text
    except ValidationFailed:
        return "", False
    return mask_phones_in_text(text), False


async def _render(
    request: web.Request, *, error: str | None = None, status: int = 200
) -> web.Response:
    review = await notice_review.get_review(
        request.config_dict[DATABASE].reader, _notice_id(request)
    )
    if review is None:
        raise NotFound("no such notice")
    zone = request.config_dict[SETTINGS].tz
    text, sent = _text_of(request, review)
    session = await get_session(request)
    flash = session.pop(_FLASH, None)
    return page(
        request,
        "notice.html.j2",
        {
            "notice": _row(review, zone),
            "text": text,
            "text_sent": sent,
            "may_resend": review.notice.state in notice_review.ATTENTION_STATES
            and review.pending_resend is None,
            "error": error,
            "flash": flash if isinstance(flash, dict) else None,
        },
        status=status,
    )


@routes.get(f"/notices/{_ID}", name="notice")
async def show_notice(request: web.Request) -> web.StreamResponse:
    """One notice: its facts, text, attempts, resends, and the resend form if it may be."""
    return await _render(request)


@routes.post(f"/notices/{_ID}/resend", name="notice_resend")
async def resend_notice(request: web.Request) -> web.StreamResponse:
    """A checked resend: ``confirm`` required (else 400, nothing sent); a new notice is
    made and queued; refused (409) while an earlier resend may still arrive."""
    user = current_user(request)
    notice_id = _notice_id(request)
    form = await request.post()
    if form.get("confirm") != "yes":  # nothing is sent unchecked (404 if no such notice)
        return await _render(request, error="confirm", status=400)
    try:
        new_id = await notice_review.resend(
            request.config_dict[DATABASE].writer, notice_id, now_of(request)
        )
    except Conflict:
        return await _render(request, error="conflict", status=409)
    await audit(
        request,
        "notice_resend",
        username=user.username,
        user=user,
        target=f"notice:{notice_id}",
        detail={"new_id": new_id},
    )
    log.info("notice resent", extra={"notice": notice_id, "new": new_id, "staff": user.id})
    await request.config_dict[QUEUE].offer_notices([(new_id, "urgent")])
    session = await get_session(request)
    session[_FLASH] = {"resent": new_id}
    raise web.HTTPSeeOther(request.app.router["notice"].url_for(id=notice_id))
