"""OA ``cs`` messages: what we send a follower, and the request body Zalo expects.

Wire contract: ``docs/zalo.md`` (§ OA messages). Only these shapes are sent::

    OaMessage = OaText               text ≤ 2000 characters, up to 5 Buttons
                                     (``oa.query.hide``: the payload comes back as the
                                     user's text without showing in their chat)
              | OaRequestUserInfo    the ``request_user_info`` template; the answer
                                     arrives as a ``user_submit_info`` webhook

:func:`oa_message_body` builds the ``message`` object; the call itself is
:meth:`providers.zalo.client.ZaloClient.send_oa`.

The messages of a conversation with one user (``GET /v2.0/oa/conversation``, newest
first) are read by :func:`parse_conversation` into :class:`OaListed`; the answer's field
meanings are **not confirmed** (``docs/zalo.md``), so the parser keeps what it can read
and skips the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from providers.zalo.transport import int_or_none

CS_PATH = "/v3.0/oa/message/cs"
CONVERSATION_PATH = "/v2.0/oa/conversation"
MAX_LISTED = 10  # messages per conversation page (Zalo's limit; not confirmed)
MAX_TEXT = 2000
MAX_BUTTONS = 5


@dataclass(frozen=True, slots=True)
class Button:
    """An ``oa.query.hide`` button: ``payload`` comes back to us as the user's text, without
    showing in their chat (the raw ``#command CODE`` would puzzle a citizen)."""

    title: str
    payload: str


@dataclass(frozen=True, slots=True)
class OaText:
    """A ``cs`` text of at most 2000 characters with up to five answer buttons."""

    text: str
    buttons: tuple[Button, ...] = ()

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError("an OA text must not be empty")
        if len(self.text) > MAX_TEXT:
            raise ValueError(
                f"an OA text holds at most {MAX_TEXT} characters, not {len(self.text)}"
            )
        if len(self.buttons) > MAX_BUTTONS:
            raise ValueError(f"at most {MAX_BUTTONS} buttons, not {len(self.buttons)}")
        for button in self.buttons:
            if not button.title.strip() or not button.payload:
                raise ValueError("a button needs a title and a payload")


@dataclass(frozen=True, slots=True)
class OaRequestUserInfo:
    """The ``request_user_info`` template; the answer arrives as ``user_submit_info``."""

    title: str
    subtitle: str
    image_url: str


OaMessage = OaText | OaRequestUserInfo


@dataclass(frozen=True, slots=True)
class OaSent:
    """Zalo took an OA message."""

    message_id: str
    user_id: str


def oa_message_body(message: OaMessage) -> dict[str, Any]:
    """The ``message`` object of a ``cs`` request."""
    if isinstance(message, OaRequestUserInfo):
        element = {
            "title": message.title,
            "subtitle": message.subtitle,
            "image_url": message.image_url,
        }
        payload = {"template_type": "request_user_info", "elements": [element]}
        return {"attachment": {"type": "template", "payload": payload}}
    body: dict[str, Any] = {"text": message.text}
    if message.buttons:
        buttons = [
            {"title": b.title, "type": "oa.query.hide", "payload": b.payload}
            for b in message.buttons
        ]
        body["attachment"] = {"type": "template", "payload": {"buttons": buttons}}
    return body


@dataclass(frozen=True, slots=True)
class OaListed:
    """One message of an OA conversation as Zalo lists it (fields not confirmed).

    ``from_oa``: sent by the OA (``src`` 0); ``at_ms``: epoch milliseconds, None when
    unreadable; ``text``: the ``message`` field when it is a string, else empty."""

    message_id: str
    from_oa: bool
    at_ms: int | None
    kind: str
    text: str


def parse_conversation(data: object) -> list[OaListed]:
    """The messages in a conversation answer's ``data``: a list, or an object holding one
    (under ``messages``, ``data`` or ``items``). Entries that are not objects, or whose
    ``src`` is neither 0 nor 1, are skipped; the order is kept (newest first)."""
    items: object = data
    if isinstance(data, dict):
        items = next(
            (data[k] for k in ("messages", "data", "items") if isinstance(data.get(k), list)), []
        )
    if not isinstance(items, list):
        return []
    listed = []
    for item in items:
        if not isinstance(item, dict):
            continue
        src = int_or_none(item.get("src"))
        if src not in (0, 1):
            continue
        message = item.get("message")
        listed.append(
            OaListed(
                message_id=str(item.get("message_id") or item.get("msg_id") or ""),
                from_oa=src == 0,
                at_ms=int_or_none(item.get("time")),
                kind=str(item.get("type") or ""),
                text=message if isinstance(message, str) else "",
            )
        )
    return listed
