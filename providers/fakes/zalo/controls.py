"""The fake Zalo's control API and chat page: drive simulated citizens, read their chats.

Besides the common ``/_fake/mode``, ``/_fake/messages`` (``?user_id=`` or ``?phone=``)
and ``/_fake/reset`` (``providers/fakes/control.py``):

- ``GET /_fake/state``: the mode plus the API calls seen and the token bookkeeping;
- ``GET /_fake/thread?user_id=``: the user's chat as the page shows it;
- ``GET|POST /_fake/users`` (``{"name", "phone"?, "user_id"?, "follows"?}``);
- ``POST /_fake/users/{user_id}/{follow|unfollow|text|click|share|chat_now}``
  (``{"text"}`` to type, ``{"payload", "title"?}`` to tap a button);
- ``POST /_fake/zns/{message_id}/rate`` (``{"rate": 1-5, "note"?, "feedbacks"?}``): the
  citizen rates a ZNS service-rating message (a ``user_feedback`` webhook);
- ``GET /``: the chat page (``page.py``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from zoneinfo import ZoneInfo

from aiohttp import web

from providers.fakes.control import add_controls, bad_request, json_object, json_response
from providers.fakes.zalo.page import render_page
from providers.fakes.zalo.state import FakeZalo

FAKE = web.AppKey("fake_zalo", FakeZalo)
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


def add_zalo_controls(app: web.Application, fake: FakeZalo, time_zone: ZoneInfo) -> None:
    """Serve the control API and the chat page (times in ``time_zone``) for ``fake``."""
    page = render_page(time_zone)

    async def chat_page(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    add_controls(app, fake)
    app.router.add_get("/", chat_page)
    app.router.add_get("/_fake/state", _full_state)
    app.router.add_get("/_fake/thread", _thread)
    app.router.add_get("/_fake/users", _users)
    app.router.add_post("/_fake/users", _add_user)
    app.router.add_post("/_fake/users/{user_id}/{action}", _user_action)
    app.router.add_post("/_fake/zns/{message_id}/rate", _rate)


async def _full_state(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    return json_response(
        {
            **fake.state(),
            "calls": [asdict(call) for call in fake.calls],
            "live_refresh_tokens": len(fake.refresh_tokens),
            "used_refresh_tokens": len(fake.used_refresh_tokens),
            "no_zalo": sorted(fake.no_zalo),
        }
    )


async def _thread(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    user_id = request.query.get("user_id", "")
    if user_id not in fake.users:
        return json_response({"error": f"no user {user_id!r}"}, status=404)
    return json_response(fake.thread(user_id))


async def _users(request: web.Request) -> web.Response:
    return json_response([user.to_json() for user in request.app[FAKE].users.values()])


async def _add_user(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    body = await json_object(request)
    name = (body or {}).get("name")
    if body is None or not isinstance(name, str) or not name.strip():
        return bad_request('send {"name", "phone"?, "user_id"?, "follows"?}')
    phone = _e164(body.get("phone"))
    if body.get("phone") and phone is None:
        return bad_request("phone must be a Vietnamese number: +84… or 0…")
    user_id = body.get("user_id")
    if user_id is not None and (not isinstance(user_id, str) or not user_id.isdigit()):
        return bad_request("user_id must be a string of digits")
    if user_id in fake.users:
        return json_response({"error": f"user {user_id} exists"}, status=409)
    user = fake.add_user(
        name.strip(), phone, user_id=user_id, follows=bool(body.get("follows", False))
    )
    return json_response(user.to_json(), status=201)


def _e164(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    digits = re.sub(r"[\s.\-]", "", value.strip())
    if digits.startswith("0"):
        digits = "+84" + digits[1:]
    elif digits.startswith("84"):
        digits = "+" + digits
    return digits if _E164.match(digits) else None


async def _user_action(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    user_id, action = request.match_info["user_id"], request.match_info["action"]
    if user_id not in fake.users:
        return json_response({"error": f"no user {user_id!r}"}, status=404)
    body = await json_object(request) or {}
    title = body.get("title") if isinstance(body.get("title"), str) else None
    acts: dict[str, Callable[[], Awaitable[int]]] = {
        "follow": lambda: fake.follow(user_id),
        "unfollow": lambda: fake.unfollow(user_id),
        "chat_now": lambda: fake.chat_now(user_id),
        "share": lambda: fake.share_info(user_id),
        "text": lambda: fake.send_text(user_id, str(body.get("text") or "")),
        "click": lambda: fake.click(user_id, str(body.get("payload") or ""), title),
    }
    if action not in acts:
        return json_response({"error": f"action must be one of {', '.join(acts)}"}, status=404)
    if action in ("text", "click") and not (body.get("text") or body.get("payload")):
        return bad_request('send {"text"} (text) or {"payload"} (click)')
    if not fake.webhook_url:
        return json_response(
            {"error": "no webhook_url: POST /_fake/mode {webhook_url}"}, status=409
        )
    return json_response({"status": await acts[action]()})


async def _rate(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    body = await json_object(request) or {}
    rate, note, feedbacks = body.get("rate"), body.get("note", ""), body.get("feedbacks", [])
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int)
        or not isinstance(note, str)
        or not isinstance(feedbacks, list)
        or not all(isinstance(f, str) for f in feedbacks)
    ):
        return bad_request('send {"rate": 1-5, "note"?: "...", "feedbacks"?: ["..."]}')
    if not fake.webhook_url:
        return json_response(
            {"error": "no webhook_url: POST /_fake/mode {webhook_url}"}, status=409
        )
    try:
        statuses = await fake.rate(request.match_info["message_id"], rate, note, feedbacks)
    except KeyError as exc:
        return json_response({"error": str(exc)}, status=404)
    except ValueError as exc:
        return bad_request(str(exc))
    return json_response({"statuses": statuses})
