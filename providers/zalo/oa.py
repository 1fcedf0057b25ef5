"""OA ``cs`` messages: what we send a follower, and the request body Zalo expects.

Wire contract: ``docs/zalo.md`` (§ OA messages). Only these shapes are sent::

    OaMessage = OaText               text ≤ 2000 characters, up to 5 Buttons
                                     (``oa.query.hide``: the payload comes back as the
                                     user's text without showing in their chat)
              | OaRequestUserInfo    the ``request_user_info`` template; the answer
                                     arrives as a ``user_submit_info`` webhook

:func:`oa_message_body` builds the ``message`` object; the call itself is
:meth:`providers.zalo.client.ZaloClient.send_oa`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CS_PATH = "/v3.0/oa/message/cs"
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
