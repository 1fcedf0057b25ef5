"""A fake SpeedSMS on loopback: ``/index.php/sms/send`` and its status callbacks.

``POST /index.php/sms/send`` takes HTTP Basic (the API token as user) and a JSON body
``{"to": ["84…"], "content", "sms_type", "sender"}``; it answers ``status`` ``success``
with a ``tranId`` (numbers it could not use listed in ``invalidPhone``) or ``error``
with the vendor's code. SpeedSMS sets the status callback per account, so receipts are
JSON POSTs to the centre's ``callback_url``. The page, the control endpoints and the
failure and receipt modes are the shared ones (``sms.py``).
"""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

from aiohttp import web

from providers.fakes.control import json_object
from providers.fakes.sms import (
    CENTRE,
    FakeSmsCentre,
    mode_failure,
    needs_ucs2,
    schedule_receipts,
    segments,
    sms_app,
)

# The fake's own copy of the wire path: a wrong path in the client cannot pass against it.
SEND_PATH = "/index.php/sms/send"
_PHONE = re.compile(r"^84[1-9]\d{8}$")
_ERRORS = {
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


def create_speedsms_app(centre: FakeSmsCentre | None = None) -> web.Application:
    """A fake SpeedSMS: ``/index.php/sms/send`` plus the fake controls."""
    app = sms_app("Fake SpeedSMS", centre or FakeSmsCentre())
    app.router.add_post(SEND_PATH, _send)
    return app


async def _send(request: web.Request) -> web.StreamResponse:
    centre = request.app[CENTRE]
    mode = centre.take_mode()
    if (early := mode_failure(centre, mode, _error)) is not None:
        return early
    if not _authorised(request, centre):
        return web.json_response(
            {"status": "error", "code": "401", "message": "Unauthorized"}, status=401
        )
    body = await json_object(request)
    to, content = (body or {}).get("to"), (body or {}).get("content")
    if body is None or not isinstance(to, list) or not to or not isinstance(content, str):
        return _error("101")
    if not content:
        return _error("101")
    valid = [p for p in to if isinstance(p, str) and _PHONE.match(p)]
    invalid = [str(p) for p in to if p not in valid]
    if not valid:
        return _error("105", invalidPhone=invalid)
    tran_id = centre.next_number()
    unicode = needs_ucs2(content)
    for phone in valid:
        message = centre.record(
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
            message.delivered = delivered
            report = {
                "type": "report",
                "tranId": tran_id,
                "phone": phone,
                "status": 0 if delivered else 1,
            }
            schedule_receipts(request.app, message, "POST", message.callback_url, report, delays)
    parts = len(valid) * segments(content, unicode)
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


def _authorised(request: web.Request, centre: FakeSmsCentre) -> bool:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except ValueError:
        return False
    token, colon, _password = decoded.partition(":")
    return (
        scheme.lower() == "basic" and bool(colon and token) and centre.expected_key in (None, token)
    )


def _error(code: str, **extra: Any) -> web.Response:
    message = _ERRORS.get(code, "Error")
    return web.json_response({"status": "error", "code": code, "message": message, **extra})
