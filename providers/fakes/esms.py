"""A fake eSMS.vn on loopback: ``SendMultipleMessage_V4_post_json`` and its callbacks.

``POST /MainService.svc/json/SendMultipleMessage_V4_post_json/`` takes the JSON body
eSMS documents (``ApiKey``, ``SecretKey``, ``Phone``, ``Content``, ``Brandname``,
``SmsType``, ``IsUnicode``, ``RequestId``, ``CallbackUrl``) and answers ``CodeResult``
100 with an ``SMSID``, or the vendor's error code. A repeated ``RequestId`` answers
CodeResult 124 and records nothing. Delivery receipts are HTTP GETs to the send's
``CallbackUrl`` with eSMS's query fields. The page, the control endpoints and the
failure and receipt modes are the shared ones (``sms.py``).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

from aiohttp import web
from yarl import URL

from providers.fakes.control import json_object
from providers.fakes.sms import (
    CENTRE,
    FakeMessage,
    FakeSmsCentre,
    mode_failure,
    schedule_receipts,
    segments,
    sms_app,
)

# The fake's own copy of the wire path: a wrong path in the client cannot pass against it.
SEND_PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"
_PHONE = re.compile(r"^(0|84)[1-9]\d{8}$")
_ERRORS = {
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


def create_esms_app(centre: FakeSmsCentre | None = None) -> web.Application:
    """A fake eSMS.vn: ``SendMultipleMessage_V4_post_json`` plus the fake controls."""
    app = sms_app("Fake eSMS", centre or FakeSmsCentre())
    app.router.add_post(SEND_PATH, _send)
    app.router.add_post(SEND_PATH.rstrip("/"), _send)
    return app


async def _send(request: web.Request) -> web.StreamResponse:
    centre = request.app[CENTRE]
    mode = centre.take_mode()
    if (early := mode_failure(centre, mode, _error)) is not None:
        return early
    body = await json_object(request)
    if body is None or not str(body.get("Content") or ""):
        return web.json_response({"error": "Invalid request"}, status=400)
    answer = _accept(request.app, centre, body)
    if mode == "timeout":
        await asyncio.sleep(centre.timeout_delay)
    return web.json_response(answer)


def _accept(app: web.Application, centre: FakeSmsCentre, body: dict[str, Any]) -> dict[str, Any]:
    key, secret = str(body.get("ApiKey") or ""), str(body.get("SecretKey") or "")
    if not key or not secret or centre.expected_key not in (None, key):
        return _code("101")
    if not str(body.get("Brandname") or ""):
        return _code("104")
    phone = str(body.get("Phone") or "")
    if not _PHONE.match(phone):
        return _code("108")
    request_id = str(body.get("RequestId") or "") or None
    if request_id is not None and centre.by_request_id(request_id) is not None:
        return {
            "CodeResult": "124",
            "CountRegenerate": 0,
            "ErrorMessage": "Request exist 1",
            "SendStatus": "5",
        }
    message = centre.record(
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
        message.delivered = delivered
        url = URL(message.callback_url).extend_query(_receipt_query(message, delivered))
        schedule_receipts(app, message, "GET", url, None, delays)
    return {"CodeResult": "100", "CountRegenerate": 0, "SMSID": message.provider_message_id}


def _receipt_query(message: FakeMessage, delivered: bool) -> dict[str, str]:
    national = "0" + message.phone[2:] if message.phone.startswith("84") else message.phone
    return {
        "SMSID": message.provider_message_id,
        "SendFailed": "0" if delivered else "1",
        "SendStatus": "5" if delivered else "4",
        "SendSuccess": "1" if delivered else "0",
        "TotalPrice": f"{800 * segments(message.content, message.unicode):.4f}",
        "TotalReceiver": "1",
        "TotalSent": "1",
        "RequestId": message.request_id or "",
        "TypeId": message.sms_type,
        "telcoid": str(_TELCO_BY_PREFIX.get(national[1:3], 0)),
        "phonenumber": national,
    }


def _code(code: str) -> dict[str, Any]:
    return {"CodeResult": code, "CountRegenerate": 0, "ErrorMessage": _ERRORS.get(code, "Error")}


def _error(code: str) -> web.Response:
    return web.json_response(_code(code))
