"""Webhooks from providers. Thin: authenticate, parse with the provider, record, answer.

SMS receipts arrive at ``/webhooks/sms/{provider}/{secret}``: the vendors sign nothing,
so an unguessable per-install path secret (``SMS_WEBHOOK_SECRET``) is what lets a
receipt in. Receipts are idempotent (a duplicate or late one changes nothing more).
Nothing here logs the path, the URL or the given secret (a near miss is nearly the real
one); problem answers show the path redacted (gateway.logs.redact_secret_paths).
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime

from aiohttp import web

from gateway.delivery import outbox
from gateway.errors import AuthenticationFailed, NotFound, StorageUnavailable
from gateway.http.keys import CLOCK, DATABASE, RECEIPT_PARSERS, SETTINGS

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.route("*", "/webhooks/sms/{provider}/{secret}")
async def sms_receipt(request: web.Request) -> web.Response:
    if request.method not in ("GET", "POST"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
    settings = request.app[SETTINGS]
    expected = settings.sms_webhook_secret
    given = request.match_info["secret"]
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        log.warning("receipt with a wrong path secret", extra={"remote": request.remote})
        raise AuthenticationFailed("unknown receipt address")
    name = request.match_info["provider"]
    parser = request.app[RECEIPT_PARSERS].get(name)
    if parser is None:
        raise NotFound(f"no SMS provider {name!r} is configured")
    body = await request.read() if request.method == "POST" else b""
    receipts = parser(dict(request.query), body)
    engine = request.app[DATABASE].writer
    now = datetime.fromtimestamp(request.app[CLOCK](), UTC)
    results = [
        await outbox.apply_receipt(
            engine,
            name,
            receipt.provider_message_id,
            receipt.request_id,
            receipt.status,
            receipt.detail,
            now,
        )
        for receipt in receipts
    ]
    if "early" in results:
        # The worker has not yet recorded that the vendor took the message: ask the vendor
        # to come back (it retries) rather than lose the receipt.
        raise StorageUnavailable("the message is still being recorded; retry", 5)
    unmatched = results.count("unknown")
    if unmatched:
        log.warning("receipts for unknown messages", extra={"provider": name, "count": unmatched})
    # Vendors retry on anything but 200; an unknown message will not become known.
    return web.json_response({"received": len(receipts), "unmatched": unmatched})
