"""Zalo webhooks: check the signature on the raw body, then turn the JSON into our types.

Pure functions, no I/O (``docs/zalo.md`` (§ Webhooks)). The signature header is
``X-ZEvent-Signature: mac=<64 hex>`` with
``mac = hex(SHA256(app_id + raw_body + timestamp + key))`` — plain SHA-256, not HMAC —
where ``app_id`` and ``timestamp`` are the string values in the body and ``key`` is the
OA Secret Key. There is no timestamp header.

:func:`parse_webhook` gives a :mod:`bot.events` event for what a user did, a
:class:`ZnsReceipt` for a ZNS delivery report, a :class:`ZnsFeedback` for a rating given
on a ZNS service-rating template (``user_feedback``) and :class:`Ignored` for everything
else (OA chat receipts, "seen", echoes of our own messages, event names we do not know).
A known event with a missing or ill-typed field raises ``MalformedInput`` naming the field.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from bot.events import (
    AttachmentSent,
    ChatOpened,
    Followed,
    InboundEvent,
    InfoShared,
    TextSent,
    Unfollowed,
)
from gateway.errors import AuthenticationFailed, MalformedInput

SIGNATURE_HEADER = "X-ZEvent-Signature"
SERVER_HEADER = "X-ZEvent-Server"
ZNS_SERVER = "ZNS"
_MAC = re.compile(r"^mac=([0-9a-fA-F]{64})$")
_ATTACHMENT_EVENTS = {
    "user_send_image": "image",
    "user_send_file": "file",
    "user_send_sticker": "sticker",
    "user_send_gif": "gif",
    "user_send_link": "link",
    "user_send_location": "location",
}
# Up to year 5138: anything longer is not a timestamp (and would overflow datetime).
_EPOCH_MS = re.compile(r"^[0-9]{1,14}$")
_IGNORED_SENDERS = ("sender", "follower", "recipient")
# Stars sent as text: ASCII digits only ("²".isdigit() is true, but int() refuses it).
_RATE_TEXT = re.compile(r"[0-9]{1,2}")


@dataclass(frozen=True, slots=True)
class ZnsReceipt:
    """A ZNS message reached the citizen's phone (``user_received_message`` from ZNS)."""

    msg_id: str
    tracking_id: str | None
    phone: str | None
    delivered_at: datetime
    dedupe_key: str

    @property
    def at(self) -> datetime:
        """When it was delivered (the moment of the event, like ``UserEvent.at``)."""
        return self.delivered_at


@dataclass(frozen=True, slots=True)
class ZnsFeedback:
    """A citizen rated a ZNS service-rating template (``user_feedback``): 1 to 5 stars,
    the detail options they ticked (``feedbacks``) and a note, for the message ``msg_id``
    (our ``tracking_id`` when Zalo echoes it)."""

    msg_id: str
    tracking_id: str | None
    rate: int
    note: str | None
    feedbacks: tuple[str, ...]
    submitted_at: datetime
    dedupe_key: str

    @property
    def at(self) -> datetime:
        """When the citizen sent the rating."""
        return self.submitted_at


@dataclass(frozen=True, slots=True)
class Ignored:
    """An event we acknowledge and drop: receipts of OA chat, seen, echoes, unknown names."""

    event_name: str
    dedupe_key: str


WebhookEvent = InboundEvent | ZnsReceipt | ZnsFeedback | Ignored
# The stars of a ZNS service-rating template.
FEEDBACK_RATES = range(1, 6)


def sign(raw_body: bytes, app_id: str, timestamp: str, key: str) -> str:
    """The 64-hex ``mac`` Zalo puts in ``X-ZEvent-Signature`` for this body."""
    digest = hashlib.sha256(app_id.encode() + raw_body + timestamp.encode() + key.encode())
    return digest.hexdigest()


def verify_signature(raw_body: bytes, header_value: str | None, key: str) -> dict[str, Any]:
    """Check ``X-ZEvent-Signature`` against the raw body; return the parsed JSON object.

    Raises ``AuthenticationFailed`` (no key configured, header missing or not
    ``mac=<64 hex>``, wrong mac) or ``MalformedInput`` (not JSON, not an object, no
    string ``app_id``/``timestamp`` to check the mac with).
    """
    if not key:
        raise AuthenticationFailed("no webhook key is configured (ZALO_OA_SECRET_KEY)")
    if header_value is None or not header_value.strip():
        raise AuthenticationFailed(f"the {SIGNATURE_HEADER} header is missing")
    match = _MAC.match(header_value.strip())
    if match is None:
        raise AuthenticationFailed(f"{SIGNATURE_HEADER} must be mac=<64 hex digits>")
    try:
        payload = orjson.loads(raw_body)
    except orjson.JSONDecodeError as exc:
        raise MalformedInput(f"the body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise MalformedInput("the body is not a JSON object")
    app_id = _string(payload, "app_id")
    timestamp = _string(payload, "timestamp")
    expected = sign(raw_body, app_id, timestamp, key)
    if not hmac.compare_digest(expected, match.group(1).lower()):
        raise AuthenticationFailed(f"{SIGNATURE_HEADER} does not match the body")
    return payload


def parse_webhook(payload: dict[str, Any], server: str | None) -> WebhookEvent:
    """Turn a verified webhook payload into our event types (see the module doc).

    ``server`` is the ``X-ZEvent-Server`` header (``OA OpenAPI`` or ``ZNS``).
    """
    if not isinstance(payload, dict):
        raise MalformedInput("the body is not a JSON object")
    name = _string(payload, "event_name")
    if name == "user_received_message" and _is_zns(payload, server):
        return _zns_receipt(payload)
    if name == "user_feedback":
        return _zns_feedback(payload)
    if name in ("follow", "unfollow"):
        user_id = _string(payload, "follower", "id")
        kind = Followed if name == "follow" else Unfollowed
        return kind(user_id, _dedupe(payload, name, user_id), _moment(payload))
    if name == "user_click_chatnow":
        user_id = _string(payload, "user_id")
        return ChatOpened(user_id, _dedupe(payload, name, user_id), _moment(payload))
    if name == "user_send_text":
        user_id = _string(payload, "sender", "id")
        text = _string(payload, "message", "text", empty=True)
        return TextSent(user_id, _dedupe(payload, name, user_id), _moment(payload), text)
    if name == "user_submit_info":
        user_id = _string(payload, "sender", "id")
        info = _field(payload, "info")
        if not isinstance(info, dict):
            raise MalformedInput("info is not an object")
        return InfoShared(
            user_id,
            _dedupe(payload, name, user_id),
            _moment(payload),
            _loose(info.get("phone")),
            _loose(info.get("name")),
        )
    if name in _ATTACHMENT_EVENTS:
        return _attachment(payload, name)
    return Ignored(name, _dedupe(payload, name, _anyone(payload)))


def _is_zns(payload: dict[str, Any], server: str | None) -> bool:
    if server is not None and server.strip().upper() == ZNS_SERVER:
        return True
    message = payload.get("message")
    return isinstance(message, dict) and "tracking_id" in message


def _zns_receipt(payload: dict[str, Any]) -> ZnsReceipt:
    msg_id = _string(payload, "message", "msg_id")
    tracking = payload["message"].get("tracking_id")
    if tracking is not None and not isinstance(tracking, str):
        raise MalformedInput("message.tracking_id is not a string")
    recipient = payload.get("recipient")
    phone = recipient.get("id") if isinstance(recipient, dict) else None
    if phone is not None and not isinstance(phone, str):
        raise MalformedInput("recipient.id is not a string")
    delivered = (
        _moment(payload, "message", "delivery_time")
        if "delivery_time" in payload["message"]
        else _moment(payload)
    )
    return ZnsReceipt(msg_id, tracking or None, phone or None, delivered, msg_id)


def _zns_feedback(payload: dict[str, Any]) -> ZnsFeedback:
    msg_id = _string(payload, "message", "msg_id")
    message = payload["message"]
    tracking = message.get("tracking_id")
    if tracking is not None and not isinstance(tracking, str):
        raise MalformedInput("message.tracking_id is not a string")
    rate = message.get("rate")
    if isinstance(rate, str) and _RATE_TEXT.fullmatch(rate):
        rate = int(rate)
    if isinstance(rate, bool) or not isinstance(rate, int) or rate not in FEEDBACK_RATES:
        raise MalformedInput("message.rate is not a whole number from 1 to 5")
    raw_feedbacks = message.get("feedbacks")
    if raw_feedbacks is not None and not isinstance(raw_feedbacks, list):
        raise MalformedInput("message.feedbacks is not a list")
    feedbacks = tuple(text for text in map(_loose, raw_feedbacks or []) if text)
    submitted = (
        _moment(payload, "message", "submit_time")
        if message.get("submit_time") not in (None, "")
        else _moment(payload)
    )
    moment = str(int(submitted.timestamp() * 1000))
    return ZnsFeedback(
        msg_id,
        tracking or None,
        rate,
        _loose(message.get("note")),
        feedbacks,
        submitted,
        f"feedback:{msg_id}:{moment}",
    )


def _attachment(payload: dict[str, Any], name: str) -> AttachmentSent:
    user_id = _string(payload, "sender", "id")
    attachments = _field(payload, "message", "attachments")
    if not isinstance(attachments, list) or not attachments:
        raise MalformedInput("message.attachments is not a non-empty list")
    first = attachments[0]
    if not isinstance(first, dict):
        raise MalformedInput("message.attachments[0] is not an object")
    kind = first.get("type")
    if not isinstance(kind, str) or not kind:
        kind = _ATTACHMENT_EVENTS[name]
    content = first.get("payload")
    content = content if isinstance(content, dict) else {}
    url = _loose(content.get("url"))
    caption = _loose(payload["message"].get("text"))
    description = caption or _loose(content.get("name"))
    coordinates = content.get("coordinates")
    if isinstance(coordinates, dict):
        latitude, longitude = (
            _loose(coordinates.get("latitude")),
            _loose(coordinates.get("longitude")),
        )
        if latitude and longitude:
            description = description or f"{latitude},{longitude}"
    return AttachmentSent(
        user_id, _dedupe(payload, name, user_id), _moment(payload), kind, url, description
    )


def _dedupe(payload: dict[str, Any], name: str, user_id: str) -> str:
    """``message.msg_id`` when there is one, else event name, user and timestamp."""
    message = payload.get("message")
    if isinstance(message, dict):
        msg_id = message.get("msg_id")
        if isinstance(msg_id, str) and msg_id:
            return msg_id
    timestamp = payload.get("timestamp")
    return f"{name}:{user_id}:{timestamp if isinstance(timestamp, str | int) else ''}"


def _anyone(payload: dict[str, Any]) -> str:
    """The user an ignored event is about, as far as it says (never raises)."""
    user_id = payload.get("user_id")
    if isinstance(user_id, str):
        return user_id
    for key in _IGNORED_SENDERS:
        party = payload.get(key)
        if isinstance(party, dict) and isinstance(party.get("id"), str):
            return str(party["id"])
    return ""


def _field(payload: dict[str, Any], *path: str) -> object:
    value: object = payload
    for depth, key in enumerate(path):
        if not isinstance(value, dict):
            raise MalformedInput(f"{'.'.join(path[:depth])} is not an object")
        if key not in value:
            raise MalformedInput(f"{'.'.join(path[: depth + 1])} is missing")
        value = value[key]
    return value


def _string(payload: dict[str, Any], *path: str, empty: bool = False) -> str:
    value = _field(payload, *path)
    if not isinstance(value, str):
        raise MalformedInput(f"{'.'.join(path)} is not a string")
    if not value and not empty:
        raise MalformedInput(f"{'.'.join(path)} is empty")
    return value


def _moment(payload: dict[str, Any], *path: str) -> datetime:
    path = path or ("timestamp",)
    raw = _string(payload, *path)
    if not _EPOCH_MS.match(raw):
        raise MalformedInput(f"{'.'.join(path)} is not epoch milliseconds")
    return datetime.fromtimestamp(int(raw) / 1000, UTC)


def _loose(value: object) -> str | None:
    """A free-form string field: numbers become text, anything else is absent."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None
