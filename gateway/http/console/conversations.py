"""The console's conversations: citizens who asked for a person, answered through the OA.

The privacy rule (docs/privacy.md): a conversation is read by hotline officers and admins
only (auditors audit dossiers, notices and the ledger, not citizens' private chat); every
opening of a thread is in the staff audit log; phone numbers in messages are masked (staff
answer in the chat and do not need them). Replies and closings are the staff API's own
(:func:`gateway.http.staff.reply_to_citizen`, :func:`gateway.http.staff.close_conversation`),
so the citizen gets the same messages whichever way staff answer.
"""

from __future__ import annotations

import logging
from datetime import datetime, tzinfo
from typing import Any, Final

from aiohttp import web
from aiohttp_session import get_session

from gateway.domain import reports as workflow
from gateway.domain.phones import mask_phone, mask_phones_in_text
from gateway.errors import Conflict, InputError, NotFound, StorageUnavailable, ValidationFailed
from gateway.http.console.auth import audit, current_user, now_of, page
from gateway.http.keys import DATABASE, SETTINGS, TEXTS
from gateway.http.staff import close_conversation, reply_to_citizen
from gateway.storage import handoffs as handoff_store
from gateway.storage import staff as staff_store
from gateway.storage.handoffs import HandoffRow

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

# Citizens' private chat: never the auditors' (see the module doc).
READERS: Final = ("hotline", "admin")
ROLES: Final[dict[str, tuple[str, ...]]] = {
    "conversations": READERS,
    "conversation": READERS,
    "conversation_reply": READERS,
    "conversation_close": READERS,
}
# The inbox's filters: open ones, recently closed ones, or both (open first).
FILTERS: Final = ("all", "open", "closed")
OPEN_LIMIT: Final = 200
CLOSED_LIMIT: Final = 50
PREVIEW_LENGTH: Final = 80
_ID: Final = r"{id:\d{1,18}}"
_FLASH: Final = "conversation_flash"


def _time(value: datetime | None, zone: tzinfo) -> str:
    return value.astimezone(zone).strftime("%d/%m/%Y %H:%M") if value else ""


def _masked(text: str | None) -> str:
    """A message's text with every phone number in it masked."""
    return mask_phones_in_text(text) if text else ""


def _preview(text: str | None) -> str:
    """The start of a message, masked, on one line."""
    short = " ".join(_masked(text).split())
    if len(short) <= PREVIEW_LENGTH:
        return short
    return short[: PREVIEW_LENGTH - 1].rstrip() + "…"


def _citizen(h: HandoffRow, zone: tzinfo) -> dict[str, Any]:
    """What the pages show of a handoff and its citizen (the phone always masked)."""
    return {
        "id": h.id,
        "status": h.status,
        "name": h.display_name or "",
        "phone": mask_phone(h.phone_e164) if h.phone_e164 else "",
        "dossier": h.dossier_code or "",
        "opened": _time(h.opened_at, zone),
        "closed": _time(h.closed_at, zone),
        "last": _time(h.last_message_at, zone),
    }


# --- the inbox ----------------------------------------------------------------------------


@routes.get("/conversations", name="conversations")
async def inbox(request: web.Request) -> web.StreamResponse:
    """Open conversations, then recently closed ones (``?status=open|closed|all``), each
    with its last message and unread count; the open ones' unread total in the heading."""
    shown = request.query.get("status", "all")
    if shown not in FILTERS:
        raise InputError(f"unknown conversation filter {shown[:20]!r}")
    reader = request.config_dict[DATABASE].reader
    found: list[tuple[HandoffRow, dict[str, Any] | None]] = []
    if shown in ("all", "open"):
        found += await handoff_store.list_handoffs(reader, "open", OPEN_LIMIT)
    if shown in ("all", "closed"):
        found += await handoff_store.list_handoffs(reader, "closed", CLOSED_LIMIT)
    unread = await handoff_store.unread_counts(reader, [h.id for h, _ in found])
    zone = request.config_dict[SETTINGS].tz
    rows = [
        _citizen(h, zone)
        | {
            "unread": unread[h.id],
            "preview": _preview(m["text"]) if m else "",
            "author": m["direction"] if m else "",
        }
        for h, m in found
    ]
    context = {
        "rows": rows,
        "shown": shown,
        "filters": FILTERS,
        "total_unread": await handoff_store.total_unread(reader),
    }
    return page(request, "conversations.html.j2", context)


# --- one conversation ---------------------------------------------------------------------


def _handoff_id(request: web.Request) -> int:
    return int(request.match_info["id"])


async def _staff_names(request: web.Request, messages: list[dict[str, Any]]) -> dict[int, str]:
    """The names of the officers who wrote in the thread."""
    reader = request.config_dict[DATABASE].reader
    names: dict[int, str] = {}
    for staff_id in {m["staff_id"] for m in messages if m["staff_id"] is not None}:
        user = await staff_store.get_user(reader, int(staff_id))
        names[int(staff_id)] = user.name if user else f"#{staff_id}"
    return names


def _sending(m: dict[str, Any]) -> str | None:
    """An outbound message's progress: waiting on the chat queue (staff), being sent, sent,
    failed, or unknown (the OA call was cut off: Zalo may have shown it). A bot reply
    shows only what is not plainly sent."""
    payload = m["payload"] if isinstance(m["payload"], dict) else {}
    state = payload.get("state")
    if m["direction"] == "bot":
        return state if state in ("sending", "failed", "unknown") else None
    if m["direction"] != "staff":
        return None
    if m["handled_at"] is None:
        return "queued"
    return "failed" if payload.get("error") else "sent"


async def _show(
    request: web.Request,
    *,
    error: str | None = None,
    text: str = "",
    status: int = 200,
) -> web.Response:
    """The thread, marked read and audited: every time staff see a conversation, the staff
    audit log says who and when (``conversation_read``)."""
    user = current_user(request)
    handoff_id = _handoff_id(request)
    reader = request.config_dict[DATABASE].reader
    found = await handoff_store.get_handoff(reader, handoff_id)
    if found is None:
        raise web.HTTPNotFound()
    handoff, messages = found
    unread = (await handoff_store.unread_counts(reader, [handoff_id]))[handoff_id]
    now = now_of(request)
    await handoff_store.mark_read(request.config_dict[DATABASE].writer, handoff_id, now)
    await audit(
        request,
        "conversation_read",
        username=user.username,
        user=user,
        target=f"handoff:{handoff_id}",
        detail={"via": "console", "unread": unread},
    )
    settings = request.config_dict[SETTINGS]
    zone = settings.tz
    names = await _staff_names(request, messages)
    session = await get_session(request)
    flash = session.pop(_FLASH, None)
    context: dict[str, Any] = {
        "conversation": _citizen(handoff, zone),
        "messages": [
            {
                "id": m["id"],
                "direction": m["direction"],
                "text": _masked(m["text"]),
                "at": _time(m["created_at"], zone),
                "staff": names.get(int(m["staff_id"])) if m["staff_id"] is not None else None,
                "sending": _sending(m),
            }
            for m in messages
        ],
        "unread_before": unread,
        "farewell": request.config_dict[TEXTS].render(
            "bot/handoff_closed.txt.j2", hotline=settings.chat.hotline
        ),
        "note_max": workflow.NOTE_MAX,
        "flash": flash if isinstance(flash, str) else None,
        "error": error,
        "text": text,
    }
    return page(request, "conversation.html.j2", context, status=status)


@routes.get(f"/conversations/{_ID}", name="conversation")
async def conversation(request: web.Request) -> web.StreamResponse:
    """The whole thread; opening it marks the citizen's messages read (audited)."""
    return await _show(request)


@routes.post(f"/conversations/{_ID}/replies", name="conversation_reply")
async def reply(request: web.Request) -> web.StreamResponse:
    """Send a reply through the OA as the staff API does; 303 back to the thread, or the
    thread again with the reason when nothing was sent."""
    user = current_user(request)
    handoff_id = _handoff_id(request)
    form = await request.post()
    raw = str(form.get("text", ""))
    try:
        text = workflow.parse_reply_text({"text": raw})
    except ValidationFailed:
        error = "required" if not raw.strip() else "too_long"
        return await _show(request, error=error, text=raw, status=400)
    try:
        message_id = await reply_to_citizen(request, user, handoff_id, text)
    except NotFound as exc:
        raise web.HTTPNotFound() from exc
    except Conflict:
        return await _show(request, error="closed", text=raw, status=409)
    except StorageUnavailable:
        return await _show(request, error="unavailable", text=raw, status=503)
    await audit(
        request,
        "conversation_reply",
        username=user.username,
        user=user,
        target=f"handoff:{handoff_id}",
        detail={"message": message_id},
    )
    session = await get_session(request)
    session[_FLASH] = "replied"
    raise web.HTTPSeeOther(request.app.router["conversation"].url_for(id=str(handoff_id)))


@routes.post(f"/conversations/{_ID}/close", name="conversation_close")
async def close(request: web.Request) -> web.StreamResponse:
    """Close the conversation and tell the citizen (the API's farewell), audited; 303 back."""
    user = current_user(request)
    handoff_id = _handoff_id(request)
    found = await handoff_store.get_handoff(request.config_dict[DATABASE].reader, handoff_id)
    if found is None:
        raise web.HTTPNotFound()
    session = await get_session(request)
    if found[0].status != "open":
        session[_FLASH] = "already_closed"
    else:
        try:
            _, told = await close_conversation(request, user, handoff_id)
        except NotFound as exc:
            raise web.HTTPNotFound() from exc
        await audit(
            request,
            "conversation_close",
            username=user.username,
            user=user,
            target=f"handoff:{handoff_id}",
            detail={"farewell_queued": told},
        )
        session[_FLASH] = "closed" if told else "closed_untold"
    raise web.HTTPSeeOther(request.app.router["conversation"].url_for(id=str(handoff_id)))
