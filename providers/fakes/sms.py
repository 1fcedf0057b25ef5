"""Fake eSMS and SpeedSMS centres that speak the vendors' wire formats on loopback.

Tests, the demo and a newcomer's laptop use these instead of the real vendors. Each
fake is an aiohttp application around a :class:`FakeSmsCentre` (the recorded messages
and the switchable behaviour):

- vendor endpoint: eSMS ``POST /MainService.svc/json/SendMultipleMessage_V4_post_json/``,
  SpeedSMS ``POST /index.php/sms/send`` (HTTP Basic, token as user);
- ``GET /``: an HTML page of the received messages, newest first, refreshing every 2 s;
- ``POST /_fake/mode`` with any of ``{"mode", "count", "receipts", "receipt_delay",
  "late_receipt_delay", "timeout_delay", "callback_url"}`` (e.g. ``{"mode": "http500",
  "count": 2}``); it and ``GET /_fake/mode`` answer with the current state;
- ``GET /_fake/messages``: the recorded messages as a JSON array, oldest first;
- ``POST /_fake/reset``: forget the messages, back to mode ``ok`` / receipts ``normal``
  and the constructed delays (the account's ``callback_url`` stays).

Failure modes (for the next ``count`` send requests, or until changed):

=================  ================================================================
``ok``             accept (eSMS: a repeated ``RequestId`` answers CodeResult 124 and
                   records nothing)
``timeout``        accept and record, then answer only after ``timeout_delay``
                   seconds: the message *was* taken but the client gave up
``http500``        HTTP 500, nothing recorded
``throttle``       HTTP 429 with ``Retry-After: throttle_retry_after``
``error:<code>``   the vendor's error answer with that code, e.g. ``error:103``
=================  ================================================================

Receipt modes: ``normal`` (one delivery callback after ``receipt_delay`` s),
``duplicate`` (the same callback twice), ``late`` (after ``late_receipt_delay`` s),
``missing`` (none), ``failed`` (one callback reporting a rejected message). eSMS
callbacks are HTTP GETs to the ``CallbackUrl`` of the send; SpeedSMS callbacks are JSON
POSTs to the centre's ``callback_url`` (SpeedSMS sets it per account). A callback that
does not get a 2xx is retried up to 5 times, as eSMS does.
"""

from __future__ import annotations

import asyncio
import base64
import html
import itertools
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from yarl import URL

log = logging.getLogger(__name__)

MODES = ("ok", "timeout", "http500", "throttle")  # and "error:<vendor code>"
RECEIPT_MODES = ("normal", "duplicate", "late", "missing", "failed")
ESMS_SEND_PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"
SPEEDSMS_SEND_PATH = "/index.php/sms/send"
_ERROR_MODE = re.compile(r"^error:([0-9A-Za-z_]{1,10})$")
_ESMS_PHONE = re.compile(r"^(0|84)[1-9]\d{8}$")
_SPEEDSMS_PHONE = re.compile(r"^84[1-9]\d{8}$")
_CALLBACK_TRIES = 5
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = set("^{}\\[~]|€\f")
_ESMS_ERRORS = {
    "99": "Phone number is blocked",
    "101": "Authorize Failed",
    "102": "No price list",
    "103": "Not enough balance",
    "104": "Brand name code is not exist",
    "108": "Phone number is not in correct format",
    "140": "IP is not whitelisted",
    "146": "Sai template Brandname CSKH",
    "177": "Network is not registered",
}
_SPEEDSMS_ERRORS = {
    "007": "IP locked",
    "008": "Account locked",
    "009": "Account not allowed to call API",
    "101": "Invalid or missing parameters",
    "105": "Invalid phone number",
    "110": "Content encoding not supported",
    "113": "Content too long",
    "300": "Not enough balance",
    "500": "Internal error",
}
# eSMS telcoid by the two digits after the leading 0 (a hint only: numbers are portable).
_TELCO_BY_PREFIX = {
    **dict.fromkeys(("32", "33", "34", "35", "36", "37", "38", "39", "86", "96", "97", "98"), 1),
    **dict.fromkeys(("70", "76", "77", "78", "79", "89", "90", "93"), 2),
    **dict.fromkeys(("81", "82", "83", "84", "85", "88", "91", "94"), 3),
    **dict.fromkeys(("52", "56", "58", "92"), 4),
    **dict.fromkeys(("59", "99"), 5),
    "87": 6,
    "55": 7,
}


@dataclass
class FakeMessage:
    """One message a fake centre accepted."""

    vendor: str
    provider_message_id: str
    phone: str  # exactly as it came over the wire
    content: str
    unicode: bool
    request_id: str | None
    sender: str
    sms_type: str
    callback_url: str | None
    received_at: str  # ISO 8601, local time
    receipts_sent: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FakeSmsCentre:
    """What one fake vendor holds: accepted messages and switchable behaviour."""

    def __init__(
        self,
        *,
        timeout_delay: float = 15.0,
        receipt_delay: float = 0.5,
        late_receipt_delay: float = 5.0,
        throttle_retry_after: int = 2,
        callback_retry_delay: float = 1.0,
        callback_url: str | None = None,
        expected_key: str | None = None,
    ) -> None:
        # timeout_delay must exceed the client's timeout (10 s in production).
        self._delays = (timeout_delay, receipt_delay, late_receipt_delay)
        self.throttle_retry_after = throttle_retry_after
        self.callback_retry_delay = callback_retry_delay
        # SpeedSMS only: the account's status callback URL.
        self.callback_url = callback_url
        # When set, eSMS ApiKey / SpeedSMS token must equal it (otherwise any non-empty).
        self.expected_key = expected_key
        self._numbers = itertools.count(100001)
        self.reset()

    def reset(self) -> None:
        """Forget every message; mode ``ok``, receipts ``normal``, delays as constructed.

        The account settings (``callback_url``, ``expected_key``) stay.
        """
        self.messages: list[FakeMessage] = []
        self.mode = "ok"
        self.mode_remaining: int | None = None
        self.receipts = "normal"
        self.timeout_delay, self.receipt_delay, self.late_receipt_delay = self._delays
        self.send_requests = 0

    def set_mode(self, mode: str, count: int | None = None) -> None:
        """Answer the next ``count`` send requests (all, if None) in ``mode``."""
        check_mode(mode)
        if count is not None and count < 1:
            raise ValueError("count must be 1 or more")
        self.mode, self.mode_remaining = mode, count

    def set_receipts(self, receipts: str, delay: float | None = None) -> None:
        """Choose how delivery callbacks behave for messages accepted from now on."""
        if receipts not in RECEIPT_MODES:
            raise ValueError(f"receipts must be one of {', '.join(RECEIPT_MODES)}")
        if delay is not None and delay < 0:
            raise ValueError("receipt_delay must be 0 or more")
        self.receipts = receipts
        if delay is not None:
            self.receipt_delay = delay

    def take_mode(self) -> str:
        """The mode for one incoming send request; a counted mode runs out into ``ok``."""
        self.send_requests += 1
        mode = self.mode
        if self.mode_remaining is not None:
            self.mode_remaining -= 1
            if self.mode_remaining <= 0:
                self.mode, self.mode_remaining = "ok", None
        return mode

    def receipt_plan(self) -> tuple[list[float], bool]:
        """Seconds after acceptance at which to call back, and whether it was delivered."""
        plan = {
            "normal": [self.receipt_delay],
            "failed": [self.receipt_delay],
            "duplicate": [self.receipt_delay, self.receipt_delay],
            "late": [self.late_receipt_delay],
            "missing": [],
        }[self.receipts]
        return plan, self.receipts != "failed"

    def next_number(self) -> int:
        return next(self._numbers)

    def by_request_id(self, request_id: str) -> FakeMessage | None:
        return next((m for m in self.messages if m.request_id == request_id), None)

    def state(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "count": self.mode_remaining,
            "receipts": self.receipts,
            "receipt_delay": self.receipt_delay,
            "late_receipt_delay": self.late_receipt_delay,
            "timeout_delay": self.timeout_delay,
            "callback_url": self.callback_url,
            "messages": len(self.messages),
            "send_requests": self.send_requests,
        }


def check_mode(mode: str) -> None:
    """Raise ValueError unless ``mode`` is one of :data:`MODES` or ``error:<code>``."""
    if mode not in MODES and not _ERROR_MODE.match(mode):
        raise ValueError(f"mode must be one of {', '.join(MODES)} or error:<code>, got {mode!r}")


class _Runtime:
    """Per-app machinery: the session used for callbacks and the pending callback tasks."""

    def __init__(self) -> None:
        self.session: ClientSession | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def schedule(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


CENTRE = web.AppKey("fake_sms_centre", FakeSmsCentre)
_RUNTIME = web.AppKey("fake_sms_runtime", _Runtime)


def create_esms_app(centre: FakeSmsCentre | None = None) -> web.Application:
    """A fake eSMS.vn: ``SendMultipleMessage_V4_post_json`` plus the fake controls."""
    app = _base_app("Fake eSMS", centre or FakeSmsCentre())
    app.router.add_post(ESMS_SEND_PATH, _esms_send)
    app.router.add_post(ESMS_SEND_PATH.rstrip("/"), _esms_send)
    return app


def create_speedsms_app(centre: FakeSmsCentre | None = None) -> web.Application:
    """A fake SpeedSMS: ``/index.php/sms/send`` plus the fake controls."""
    app = _base_app("Fake SpeedSMS", centre or FakeSmsCentre())
    app.router.add_post(SPEEDSMS_SEND_PATH, _speedsms_send)
    return app


def _base_app(title: str, centre: FakeSmsCentre) -> web.Application:
    app = web.Application()
    app[CENTRE] = centre
    app[_RUNTIME] = _Runtime()
    app.cleanup_ctx.append(_runtime_ctx)

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=_page(title, request.app[CENTRE]), content_type="text/html")

    app.router.add_get("/", page)
    app.router.add_get("/_fake/mode", _control_state)
    app.router.add_post("/_fake/mode", _control_mode)
    app.router.add_get("/_fake/messages", _control_messages)
    app.router.add_post("/_fake/reset", _control_reset)
    return app


async def _runtime_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[_RUNTIME]
    runtime.session = ClientSession(timeout=ClientTimeout(total=5))
    yield
    for task in list(runtime.tasks):
        task.cancel()
    await asyncio.gather(*runtime.tasks, return_exceptions=True)
    await runtime.session.close()


# --- eSMS -------------------------------------------------------------------------------


async def _esms_send(request: web.Request) -> web.StreamResponse:
    centre = request.app[CENTRE]
    mode = centre.take_mode()
    if (early := _mode_failure(centre, mode, _esms_error)) is not None:
        return early
    body = await _json_object(request)
    if body is None or not str(body.get("Content") or ""):
        return web.json_response({"error": "Invalid request"}, status=400)
    answer = _esms_accept(request.app, centre, body)
    if mode == "timeout":
        await asyncio.sleep(centre.timeout_delay)
    return web.json_response(answer)


def _esms_accept(
    app: web.Application, centre: FakeSmsCentre, body: dict[str, Any]
) -> dict[str, Any]:
    key, secret = str(body.get("ApiKey") or ""), str(body.get("SecretKey") or "")
    if not key or not secret or centre.expected_key not in (None, key):
        return _esms_code("101")
    if not str(body.get("Brandname") or ""):
        return _esms_code("104")
    phone = str(body.get("Phone") or "")
    if not _ESMS_PHONE.match(phone):
        return _esms_code("108")
    request_id = str(body.get("RequestId") or "") or None
    if request_id is not None and centre.by_request_id(request_id) is not None:
        return {
            "CodeResult": "124",
            "CountRegenerate": 0,
            "ErrorMessage": "Request exist 1",
            "SendStatus": "5",
        }
    message = _record(
        centre,
        vendor="esms",
        provider_message_id=f"{centre.next_number():x}{secrets.token_hex(12)}",
        phone=phone,
        content=str(body["Content"]),
        unicode=str(body.get("IsUnicode") or "0") == "1",
        request_id=request_id,
        sender=str(body["Brandname"]),
        sms_type=str(body.get("SmsType") or ""),
        callback_url=str(body.get("CallbackUrl") or "") or None,
    )
    if message.callback_url:
        delays, delivered = centre.receipt_plan()
        url = URL(message.callback_url).extend_query(_esms_receipt_query(message, delivered))
        app[_RUNTIME].schedule(_call_back(app, centre, message, delays, "GET", url, None))
    return {"CodeResult": "100", "CountRegenerate": 0, "SMSID": message.provider_message_id}


def _esms_receipt_query(message: FakeMessage, delivered: bool) -> dict[str, str]:
    national = "0" + message.phone[2:] if message.phone.startswith("84") else message.phone
    return {
        "SMSID": message.provider_message_id,
        "SendFailed": "0" if delivered else "1",
        "SendStatus": "5" if delivered else "4",
        "SendSuccess": "1" if delivered else "0",
        "TotalPrice": f"{800 * _segments(message.content, message.unicode):.4f}",
        "TotalReceiver": "1",
        "TotalSent": "1",
        "RequestId": message.request_id or "",
        "TypeId": message.sms_type,
        "telcoid": str(_TELCO_BY_PREFIX.get(national[1:3], 0)),
        "phonenumber": national,
    }


def _esms_code(code: str) -> dict[str, Any]:
    return {
        "CodeResult": code,
        "CountRegenerate": 0,
        "ErrorMessage": _ESMS_ERRORS.get(code, "Error"),
    }


def _esms_error(code: str) -> web.Response:
    return web.json_response(_esms_code(code))


# --- SpeedSMS ---------------------------------------------------------------------------


async def _speedsms_send(request: web.Request) -> web.StreamResponse:
    centre = request.app[CENTRE]
    mode = centre.take_mode()
    if (early := _mode_failure(centre, mode, _speedsms_error)) is not None:
        return early
    if not _speedsms_authorised(request, centre):
        return web.json_response(
            {"status": "error", "code": "401", "message": "Unauthorized"}, status=401
        )
    body = await _json_object(request)
    to, content = (body or {}).get("to"), (body or {}).get("content")
    if body is None or not isinstance(to, list) or not to or not isinstance(content, str):
        return _speedsms_error("101")
    if not content:
        return _speedsms_error("101")
    valid = [p for p in to if isinstance(p, str) and _SPEEDSMS_PHONE.match(p)]
    invalid = [str(p) for p in to if p not in valid]
    if not valid:
        return _speedsms_error("105", invalidPhone=invalid)
    tran_id = centre.next_number()
    unicode = _needs_ucs2(content)
    for phone in valid:
        message = _record(
            centre,
            vendor="speedsms",
            provider_message_id=str(tran_id),
            phone=phone,
            content=content,
            unicode=unicode,
            request_id=None,
            sender=str(body.get("sender") or ""),
            sms_type=str(body.get("sms_type") or ""),
            callback_url=centre.callback_url,
        )
        if message.callback_url:
            delays, delivered = centre.receipt_plan()
            status = 0 if delivered else 1
            report = {"type": "report", "tranId": tran_id, "phone": phone, "status": status}
            request.app[_RUNTIME].schedule(
                _call_back(
                    request.app, centre, message, delays, "POST", message.callback_url, report
                )
            )
    parts = len(valid) * _segments(content, unicode)
    answer = {
        "status": "success",
        "code": "00",
        "data": {
            "tranId": tran_id,
            "totalSMS": parts,
            "totalPrice": parts * 250,
            "invalidPhone": invalid,
        },
    }
    if mode == "timeout":
        await asyncio.sleep(centre.timeout_delay)
    return web.json_response(answer)


def _speedsms_authorised(request: web.Request, centre: FakeSmsCentre) -> bool:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except ValueError:
        return False
    token, colon, _password = decoded.partition(":")
    return (
        scheme.lower() == "basic" and bool(colon and token) and centre.expected_key in (None, token)
    )


def _speedsms_error(code: str, **extra: Any) -> web.Response:
    message = _SPEEDSMS_ERRORS.get(code, "Error")
    return web.json_response({"status": "error", "code": code, "message": message, **extra})


# --- shared -----------------------------------------------------------------------------


def _mode_failure(
    centre: FakeSmsCentre, mode: str, vendor_error: Callable[[str], web.Response]
) -> web.Response | None:
    if mode == "http500":
        return web.Response(status=500, text="Internal Server Error")
    if mode == "throttle":
        return web.json_response(
            {"error": "Too many requests"},
            status=429,
            headers={"Retry-After": str(centre.throttle_retry_after)},
        )
    if match := _ERROR_MODE.match(mode):
        return vendor_error(match.group(1))
    return None


def _record(centre: FakeSmsCentre, **fields: Any) -> FakeMessage:
    message = FakeMessage(**fields, received_at=datetime.now().astimezone().isoformat())
    centre.messages.append(message)
    return message


async def _call_back(
    app: web.Application,
    centre: FakeSmsCentre,
    message: FakeMessage,
    delays: list[float],
    method: str,
    url: URL | str,
    payload: dict[str, Any] | None,
) -> None:
    session = app[_RUNTIME].session
    assert session is not None
    waited = 0.0
    for delay in delays:
        await asyncio.sleep(max(0.0, delay - waited))
        waited = max(waited, delay)
        for attempt in range(1, _CALLBACK_TRIES + 1):
            try:
                async with session.request(method, url, json=payload) as response:
                    if response.status < 300:
                        message.receipts_sent += 1
                        break
                    why = f"HTTP {response.status}"
            except (TimeoutError, ClientError) as exc:
                why = type(exc).__name__
            log.info("fake %s callback try %d failed: %s", message.vendor, attempt, why)
            if attempt < _CALLBACK_TRIES:
                await asyncio.sleep(centre.callback_retry_delay)


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _needs_ucs2(text: str) -> bool:
    return any(ch not in _GSM7 and ch not in _GSM7_EXTENSION for ch in text)


def _segments(text: str, unicode: bool) -> int:
    if unicode:
        length, single, part = len(text), 70, 67
    else:
        length = sum(2 if ch in _GSM7_EXTENSION else 1 for ch in text)
        single, part = 160, 153
    return 1 if length <= single else -(-length // part)


# --- control endpoints and page ---------------------------------------------------------

_CONTROL_KEYS = {
    "mode",
    "count",
    "receipts",
    "receipt_delay",
    "late_receipt_delay",
    "timeout_delay",
    "callback_url",
}


async def _control_state(request: web.Request) -> web.Response:
    return web.json_response(request.app[CENTRE].state())


async def _control_mode(request: web.Request) -> web.Response:
    centre = request.app[CENTRE]
    body = await _json_object(request)
    if body is None or not body or set(body) - _CONTROL_KEYS:
        allowed = ", ".join(sorted(_CONTROL_KEYS))
        return web.json_response({"error": f"send a JSON object with {allowed}"}, status=400)
    try:  # validate everything before changing anything
        mode = str(body.get("mode", centre.mode))
        count = None if body.get("count") is None else int(body["count"])
        receipts = str(body.get("receipts", centre.receipts))
        delay = _seconds(body, "receipt_delay", centre.receipt_delay)
        late_delay = _seconds(body, "late_receipt_delay", centre.late_receipt_delay)
        timeout_delay = _seconds(body, "timeout_delay", centre.timeout_delay)
        callback_url = body.get("callback_url", centre.callback_url)
        if callback_url is not None and not isinstance(callback_url, str):
            raise ValueError("callback_url must be a string or null")
        check_mode(mode)
        if count is not None and count < 1:
            raise ValueError("count must be 1 or more")
        centre.set_receipts(receipts, delay)
    except (TypeError, ValueError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    if "mode" in body or "count" in body:
        centre.set_mode(mode, count)
    centre.late_receipt_delay, centre.timeout_delay = late_delay, timeout_delay
    centre.callback_url = callback_url or None
    return web.json_response(centre.state())


def _seconds(body: dict[str, Any], key: str, current: float) -> float:
    value = current if body.get(key) is None else float(body[key])
    if not 0 <= value < 3600:
        raise ValueError(f"{key} must be between 0 and 3600 seconds")
    return value


async def _control_messages(request: web.Request) -> web.Response:
    messages = [m.to_json() for m in request.app[CENTRE].messages]
    return web.json_response(messages, dumps=_dumps)


async def _control_reset(request: web.Request) -> web.Response:
    centre = request.app[CENTRE]
    centre.reset()
    return web.json_response(centre.state())


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _page(title: str, centre: FakeSmsCentre) -> str:
    rows = "\n".join(
        "<tr>"
        f"<td>{html.escape(m.received_at[11:19])}</td>"
        f"<td>{html.escape(m.phone)}</td>"
        f'<td class="text">{html.escape(m.content)}</td>'
        f"<td>{'UCS-2' if m.unicode else 'GSM-7'}</td>"
        f"<td>{html.escape(m.provider_message_id)}</td>"
        f"<td>{html.escape(m.request_id or '')}</td>"
        f"<td>{m.receipts_sent}</td>"
        "</tr>"
        for m in reversed(centre.messages)
    )
    state = centre.state()
    summary = html.escape(
        f"mode {state['mode']}"
        + (f" (next {state['count']})" if state["count"] else "")
        + f" · receipts {state['receipts']} · {state['messages']} message(s)"
    )
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5rem}}
table{{border-collapse:collapse;width:100%}}
th,td{{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}}
td.text{{white-space:pre-wrap;max-width:40rem}}
</style></head>
<body><h1>{html.escape(title)}</h1><p>{summary}</p>
<table><thead><tr><th>time</th><th>phone</th><th>text</th><th>encoding</th><th>id</th>
<th>request id</th><th>receipts</th></tr></thead>
<tbody>
{rows}
</tbody></table></body></html>
"""
