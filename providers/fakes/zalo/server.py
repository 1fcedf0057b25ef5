"""The fake Zalo platform's HTTP face: OAuth v4, OA ``cs`` messages and ZNS on loopback.

One aiohttp application serves the three base URLs at once (their paths do not
collide), so the gateway's ``ZALO_OAUTH_BASE_URL``, ``ZALO_OA_BASE_URL`` and
``ZALO_ZNS_BASE_URL`` all point at it. The state (users, tokens, templates, sent
messages, modes) is :class:`FakeZalo` (``state.py``); the paths below are the fake's own
copies, so a wrong path in the client cannot pass against the fake.

- ``POST /v4/oa/access_token`` (form-encoded, header ``secret_key``): refresh grant only;
  refresh tokens are single-use (a reused one is refused with -14014), every refresh
  issues a new pair with ``expires_in`` as a string. ``refresh_calls`` counts every
  request, ``refresh_refused`` the refused ones; ``refresh_delay`` holds each answer.
- ``POST /v3.0/oa/message/cs``: valid access token (else -216, -220 when expired), the
  user follows (else -213) and interacted within 7 days (else -230; never: -232), text
  of at most 2000 characters, at most 5 buttons (else -201). A refusal for a known user
  shows in their chat as Zalo's system line.
- ``POST /message/template`` (ZNS): token (else -124), known enabled template (-109,
  -146, -131), ``template_data`` as Zalo checks it (-111 empty, -112 not a string or not
  in its parameter's ``NUMBER``/``DATE`` form, -1121 too long, -1122 required missing),
  ``tracking_id``, a phone with a Zalo account (else -118). A repeated ``tracking_id``
  is answered with the first ``msg_id``.
- ``GET /v2.0/oa/conversation?data={"user_id", "offset", "count"}``: the OA token as
  for ``cs``; the OA messages it took for that user (``src`` 0, a ``request_user_info``
  card as ``type`` ``template`` with its title and subtitle as ``message``) and the user's
  texts (``src`` 1), newest first, ``count`` at most 10 (else -201).
- ``GET /template/info/v2?template_id=``, ``GET /message/status?message_id=``.

Errors are HTTP 200 with ``{"error": <code>, "message": ...}``. Every API request is in
``calls`` (with its token and the mode it met); every OA and ZNS message taken is in
``sent`` with its request body. An ``appsecret_proof`` header, when sent, must match.

Failure modes, for the next ``count`` API calls they apply to (all, if no count):
``token_expired`` (the token carried dies: -220, ZNS -124), ``outside_window`` (-230, OA
only), ``no_zalo_account`` (-118, ZNS only), ``rate_limited`` (-32), ``slow`` (answer
after ``slow_delay``), ``http_500``, ``timeout`` (take the message, answer after
``timeout_delay``). Webhook mode ``duplicates`` posts every webhook twice; receipt modes
``immediate`` (after ``receipt_delay``), ``late`` (after ``late_receipt_delay``),
``never``, ``duplicate``. ``refresh_mode`` ``http_500`` or ``refused`` makes the token
endpoint fail. The control API and the chat page are ``controls.py`` and ``page.py``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from providers.fakes.control import DEFAULT_TIME_ZONE, json_object, json_response
from providers.fakes.zalo.controls import FAKE, add_zalo_controls
from providers.fakes.zalo.state import (
    OA_ENDPOINTS,
    WINDOW_SECONDS,
    ApiCall,
    FakeTemplate,
    FakeZalo,
    SentMessage,
)

log = logging.getLogger(__name__)

OAUTH_PATH = "/v4/oa/access_token"
CS_PATH = "/v3.0/oa/message/cs"
CONVERSATION_PATH = "/v2.0/oa/conversation"
MAX_LISTED = 10
ZNS_SEND_PATH = "/message/template"
ZNS_TEMPLATE_PATH = "/template/info/v2"
ZNS_STATUS_PATH = "/message/status"
MAX_TEXT = 2000
MAX_BUTTONS = 5
# Codes Zalo does not document, chosen to look like its own:
REFRESH_TOKEN_INVALID = -14014  # reused, unknown or revoked refresh token
APP_CREDENTIALS_INVALID = -14002  # wrong app_id / secret_key / grant_type / encoding
ZNS_BAD_PARAMETER = -100  # missing or ill-formed tracking_id, unknown message_id
_ZNS_PHONE = re.compile(r"^84[1-9]\d{8}$")
# What a typed template parameter takes (the fake's reading of Zalo's examples, docs/zns.md).
_TYPED_VALUES = {
    "NUMBER": (re.compile(r"[0-9]+"), "a number written as bare digits"),
    "DATE": (re.compile(r"[0-3][0-9]/[01][0-9]/[0-9]{4}"), "a date as dd/mm/yyyy"),
}
_TRACKING_ID = re.compile(r"^[A-Za-z0-9]{1,48}$")
# Button type -> the keys its ``payload`` object needs (None: the payload is a string).
_BUTTON_PAYLOADS: dict[str, tuple[str, ...] | None] = {
    "oa.query.show": None,
    "oa.query.hide": None,
    "oa.open.url": ("url",),
    "oa.open.phone": ("phone_code",),
    "oa.open.sms": ("phone_code", "content"),
}


def create_app(
    fake: FakeZalo | None = None, *, time_zone: ZoneInfo | None = None
) -> web.Application:
    """The fake Zalo platform (all three base URLs) with its control API and chat page.

    ``time_zone`` is the one the chat page shows times in (default Asia/Ho_Chi_Minh).
    """
    app = web.Application()
    app[FAKE] = fake or FakeZalo()
    app.cleanup_ctx.append(_close_ctx)
    app.router.add_post(OAUTH_PATH, _access_token)
    app.router.add_post(CS_PATH, _send_cs)
    app.router.add_get(CONVERSATION_PATH, _conversation)
    app.router.add_post(ZNS_SEND_PATH, _send_zns)
    app.router.add_get(ZNS_TEMPLATE_PATH, _template_info)
    app.router.add_get(ZNS_STATUS_PATH, _message_status)
    add_zalo_controls(app, app[FAKE], time_zone or ZoneInfo(DEFAULT_TIME_ZONE))
    return app


async def _close_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[FAKE].close()


# --- OAuth v4 ---------------------------------------------------------------------------


async def _access_token(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    form = await request.post()
    if fake.refresh_delay > 0:
        await asyncio.sleep(fake.refresh_delay)
    # From here to the answer nothing awaits: check-and-rotate is atomic, as at Zalo.
    fake.refresh_calls += 1
    if fake.refresh_mode == "http_500":
        return web.Response(status=500, text="Internal Server Error")
    refresh_token = str(form.get("refresh_token") or "")
    problem = _grant_problem(fake, request, {k: str(v) for k, v in form.items()})
    if problem is None and fake.refresh_mode == "refused":
        problem = REFRESH_TOKEN_INVALID, "Refresh token is revoked"
    if problem is None and refresh_token not in fake.refresh_tokens:
        reused = refresh_token in fake.used_refresh_tokens
        reason = "Refresh token was already used" if reused else "Refresh token is invalid"
        problem = REFRESH_TOKEN_INVALID, reason
    if problem is not None:
        fake.refresh_refused += 1
        code, description = problem
        log.info("fake zalo refused a refresh: %s", description)
        return json_response(
            {
                "error": code,
                "error_name": "Invalid parameter",
                "error_reason": description,
                "error_description": description,
            }
        )
    return json_response(fake.issue_pair(refresh_token))


def _grant_problem(
    fake: FakeZalo, request: web.Request, form: dict[str, str]
) -> tuple[int, str] | None:
    if request.content_type != "application/x-www-form-urlencoded":
        return APP_CREDENTIALS_INVALID, "the body must be application/x-www-form-urlencoded"
    if form.get("app_id") != fake.app_id:
        return APP_CREDENTIALS_INVALID, "app_id is invalid"
    if request.headers.get("secret_key") != fake.app_secret:
        return APP_CREDENTIALS_INVALID, "secret_key is invalid"
    if form.get("grant_type") != "refresh_token":
        return APP_CREDENTIALS_INVALID, "grant_type must be refresh_token (this fake)"
    if not form.get("refresh_token"):
        return REFRESH_TOKEN_INVALID, "refresh_token is missing"
    return None


# --- what every OA / ZNS API call meets first -------------------------------------------


async def _api_call(request: web.Request, endpoint: str) -> tuple[str, web.Response | None]:
    """Record the call, apply its mode and check the token; an early answer if it fails."""
    fake = request.app[FAKE]
    mode = fake.take_mode(endpoint)
    token = request.headers.get("access_token", "")
    fake.calls.append(ApiCall(endpoint, token, mode))
    zns = endpoint not in OA_ENDPOINTS
    if mode == "slow":
        await asyncio.sleep(fake.slow_delay)
    if mode == "http_500":
        return mode, web.Response(status=500, text="Internal Server Error")
    if mode == "rate_limited":
        return mode, _error(-32, "reached limit call api")
    if mode == "token_expired":
        if token in fake.access_tokens:  # it really dies: later calls with it fail too
            fake.access_tokens[token] = min(fake.access_tokens[token], fake.clock())
        return mode, _error(-124 if zns else -220, "Access token has expired")
    problem = fake.token_error(endpoint, token, request.headers.get("appsecret_proof"))
    if problem is not None:
        return mode, _error(*problem)
    if mode == "outside_window":
        return mode, _error(-230, "User has not interacted with the OA in the last 7 days")
    if mode == "no_zalo_account":
        return mode, _error(-118, "Zalo account does not exist")
    return mode, None


# --- OA messages ------------------------------------------------------------------------


async def _send_cs(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    mode, early = await _api_call(request, "oa")
    if early is not None:
        return early
    body = await json_object(request)
    problem = _cs_problem(fake, body)
    if problem is not None:
        user_id = ((body or {}).get("recipient") or {}).get("user_id")
        if isinstance(user_id, str) and user_id in fake.users:
            fake.refuse(user_id, *problem)
        return _error(*problem)
    assert body is not None
    user_id = str(body["recipient"]["user_id"])
    message = SentMessage("oa", fake.new_id(), user_id, None, None, body, fake.clock())
    fake.sent.append(message)
    if mode == "timeout":
        await asyncio.sleep(fake.timeout_delay)
    return _ok({"message_id": message.message_id, "user_id": user_id})


async def _conversation(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    mode, early = await _api_call(request, "conversation")
    if early is not None:
        return early
    try:
        query = orjson.loads(request.query.get("data", ""))
    except orjson.JSONDecodeError:
        query = None
    if not isinstance(query, dict):
        return _error(-201, "Parameters are invalid: data is not a JSON object")
    user_id, offset, count = query.get("user_id"), query.get("offset"), query.get("count")
    if not isinstance(user_id, str | int) or str(user_id) not in fake.users:
        return _error(-201, "user_id is invalid")
    if not isinstance(offset, int) or offset < 0:
        return _error(-201, "Parameters are invalid: offset")
    if not isinstance(count, int) or not 1 <= count <= MAX_LISTED:
        return _error(-201, f"Parameters are invalid: count must be 1 to {MAX_LISTED}")
    listed = fake.conversation(str(user_id))[offset : offset + count]
    if mode == "timeout":
        await asyncio.sleep(fake.timeout_delay)
    return json_response({"error": 0, "message": "Success", "data": listed})


def _cs_problem(fake: FakeZalo, body: dict[str, Any] | None) -> tuple[int, str] | None:
    if body is None:
        return -201, "Parameters are invalid: the body is not a JSON object"
    recipient = body.get("recipient")
    user_id = recipient.get("user_id") if isinstance(recipient, dict) else None
    if not isinstance(user_id, str) or not user_id:
        return -201, "Parameters are invalid: recipient.user_id is missing"
    if (shape := _message_problem(body.get("message"))) is not None:
        return -201, f"Parameters are invalid: {shape}"
    user = fake.users.get(user_id)
    if user is None:
        return -201, "user_id is invalid"
    if not user.follows:
        return -213, "User has not followed the OA"
    if not user.last_interaction:
        return -232, "User has not interacted with the OA"
    if fake.clock() - user.last_interaction > WINDOW_SECONDS:
        return -230, "User has not interacted with the OA in the last 7 days"
    return None


def _message_problem(message: object) -> str | None:
    """What is wrong with a ``cs`` ``message`` object, if anything."""
    if not isinstance(message, dict):
        return "message is not an object"
    text, attachment = message.get("text"), message.get("attachment")
    if text is not None and (not isinstance(text, str) or not text.strip()):
        return "message.text is empty"
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return f"message.text is longer than {MAX_TEXT} characters"
    if attachment is None:
        return None if text is not None else "message has neither text nor attachment"
    if not isinstance(attachment, dict) or attachment.get("type") != "template":
        return "message.attachment.type must be template"
    payload = attachment.get("payload")
    if not isinstance(payload, dict):
        return "message.attachment.payload is not an object"
    if payload.get("template_type") == "request_user_info":
        elements = payload.get("elements")
        if not isinstance(elements, list) or len(elements) != 1:
            return "request_user_info needs exactly one element"
        element = elements[0]
        if not isinstance(element, dict) or not all(
            isinstance(element.get(k), str) and element[k] for k in ("title", "subtitle")
        ):
            return "request_user_info element needs a title and a subtitle"
        return None
    return _buttons_problem(payload.get("buttons"), text)


def _buttons_problem(buttons: object, text: object) -> str | None:
    if not isinstance(buttons, list) or not buttons:
        return "message.attachment.payload.buttons is not a non-empty list"
    if len(buttons) > MAX_BUTTONS:
        return f"at most {MAX_BUTTONS} buttons"
    if text is None:
        return "buttons need a message.text"
    for index, button in enumerate(buttons):
        where = f"buttons[{index}]"
        if not isinstance(button, dict):
            return f"{where} is not an object"
        title, kind, payload = button.get("title"), button.get("type"), button.get("payload")
        if not isinstance(title, str) or not title.strip():
            return f"{where}.title is empty"
        if kind not in _BUTTON_PAYLOADS:
            return f"{where}.type {kind!r} is unknown"
        keys = _BUTTON_PAYLOADS[kind]
        if keys is None and (not isinstance(payload, str) or not payload):
            return f"{where}.payload must be a non-empty string"
        if keys is not None and (
            not isinstance(payload, dict) or not all(isinstance(payload.get(k), str) for k in keys)
        ):
            return f"{where}.payload needs {', '.join(keys)}"
    return None


# --- ZNS --------------------------------------------------------------------------------


async def _send_zns(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    mode, early = await _api_call(request, "zns")
    if early is not None:
        return early
    body = await json_object(request)
    problem = _zns_problem(fake, body)
    if problem is not None:
        return _error(*problem)
    assert body is not None
    tracking_id, phone = str(body["tracking_id"]), str(body["phone"])
    first = fake.zns_by_tracking_id(tracking_id)
    if first is not None:  # Zalo's idempotency: the same answer, nothing sent again
        return _ok(_zns_answer(fake, first))
    if "+" + phone in fake.no_zalo:
        return _error(-118, "Zalo account does not exist")
    if fake.remaining_quota <= 0:
        return _error(-144, "OA has reached its daily ZNS limit")
    fake.remaining_quota -= 1
    message = SentMessage("zns", fake.new_id(), None, phone, tracking_id, body, fake.clock())
    fake.sent.append(message)
    fake.schedule(fake.send_receipts(message, fake.receipt_delays()))
    if mode == "timeout":
        await asyncio.sleep(fake.timeout_delay)
    return _ok(_zns_answer(fake, message))


def _zns_problem(fake: FakeZalo, body: dict[str, Any] | None) -> tuple[int, str] | None:
    if body is None:
        return ZNS_BAD_PARAMETER, "The body is not a JSON object"
    phone = body.get("phone")
    if not isinstance(phone, str) or not _ZNS_PHONE.match(phone):
        return -108, "Phone number is invalid (84 and the national number)"
    template = fake.templates.get(str(body.get("template_id") or ""))
    if template is None:
        return -109, "Template id is invalid"
    if template.status == "DISABLE":
        return -146, "Template is disabled"
    if template.status != "ENABLE":
        return -131, f"Template is not approved ({template.status})"
    if (data_problem := _template_data_problem(template, body.get("template_data"))) is not None:
        return data_problem
    tracking_id = body.get("tracking_id")
    if not isinstance(tracking_id, str) or not _TRACKING_ID.match(tracking_id):
        return ZNS_BAD_PARAMETER, "tracking_id is required: 1 to 48 letters or digits"
    return None


def _template_data_problem(template: FakeTemplate, data: object) -> tuple[int, str] | None:
    if not isinstance(data, dict) or not data:
        return -111, "Template data is empty"
    for name, value in data.items():
        if not isinstance(value, str):
            return -112, f"Template data {name} must be a string"
    for param in template.params:
        name = str(param["name"])
        value = data.get(name)
        if value is None or (not value and not param.get("acceptNull")):
            if param.get("require"):
                return -1122, f"Template data {name} is missing"
            continue
        max_length = param.get("maxLength")
        if isinstance(max_length, int) and len(value) > max_length:
            return -1121, f"Template data {name} is longer than {max_length}"
        wanted = _TYPED_VALUES.get(str(param.get("type") or "").upper())
        if value and wanted is not None and not wanted[0].fullmatch(value):
            return -112, f"Template data {name} must be {wanted[1]}"
    return None


def _zns_answer(fake: FakeZalo, message: SentMessage) -> dict[str, Any]:
    return {
        "msg_id": message.message_id,
        "sent_time": str(int(message.at * 1000)),
        "sending_mode": str(message.body.get("sending_mode") or "1"),
        "quota": {
            "dailyQuota": str(fake.daily_quota),
            "remainingQuota": str(fake.remaining_quota),
        },
    }


async def _template_info(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    mode, early = await _api_call(request, "template")
    if early is not None:
        return early
    template = fake.templates.get(request.query.get("template_id", ""))
    if template is None:
        return _error(-109, "Template id is invalid")
    if mode == "timeout":
        await asyncio.sleep(fake.timeout_delay)
    return _ok(template.info())


async def _message_status(request: web.Request) -> web.Response:
    fake = request.app[FAKE]
    mode, early = await _api_call(request, "status")
    if early is not None:
        return early
    message = fake.message(request.query.get("message_id", ""))
    if message is None or message.channel != "zns":
        return _error(ZNS_BAD_PARAMETER, "message_id is invalid")
    if mode == "timeout":
        await asyncio.sleep(fake.timeout_delay)
    delivered = message.delivered_at
    return _ok(
        {
            "delivery_time": str(int(delivered * 1000)) if delivered is not None else "",
            "status": message.status,
            "message": {1: "Delivered", 0: "Pending", -1: "Failed"}.get(message.status, ""),
        }
    )


# --- helpers ----------------------------------------------------------------------------


def _ok(data: dict[str, Any]) -> web.Response:
    return json_response({"error": 0, "message": "Success", "data": data})


def _error(code: int, message: str) -> web.Response:
    return json_response({"error": code, "message": message})


def settings_lines(fake: FakeZalo, base: str) -> list[str]:
    """``NAME=value`` lines that point the gateway at this fake."""
    return [
        f"ZALO_OAUTH_BASE_URL={base}",
        f"ZALO_OA_BASE_URL={base}",
        f"ZALO_ZNS_BASE_URL={base}",
        f"ZALO_APP_ID={fake.app_id}",
        f"ZALO_APP_SECRET={fake.app_secret}",
        f"ZALO_OA_SECRET_KEY={fake.oa_secret_key}",
        f"ZALO_REFRESH_TOKEN={next(iter(sorted(fake.refresh_tokens)), '')}",
    ]
