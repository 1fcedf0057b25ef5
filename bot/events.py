"""What a citizen does on the Official Account, as typed events the bot is fed with.

``providers/zalo/webhook.py`` turns Zalo's webhook payloads into these; the bot never
sees Zalo's JSON. Every event carries the OA-scoped user id (``sender.id`` /
``follower.id``: the id to reply to), a deduplication key and the moment it happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class UserEvent:
    """Something one OA user did."""

    user_id: str
    # Zalo's ``message.msg_id`` where there is one, else a key built from the event name,
    # the user and the timestamp; a webhook delivered twice has the same key.
    dedupe_key: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Followed(UserEvent):
    """``follow``: the user followed the OA."""


@dataclass(frozen=True, slots=True)
class Unfollowed(UserEvent):
    """``unfollow``: the user stopped following the OA."""


@dataclass(frozen=True, slots=True)
class ChatOpened(UserEvent):
    """``user_click_chatnow``: the user opened the chat window (counts as interaction)."""


@dataclass(frozen=True, slots=True)
class TextSent(UserEvent):
    """``user_send_text``: typed text, or the payload of an ``oa.query.*`` button."""

    text: str


@dataclass(frozen=True, slots=True)
class InfoShared(UserEvent):
    """``user_submit_info``: the answer to a ``request_user_info`` message."""

    phone: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class AttachmentSent(UserEvent):
    """An image, file, sticker, gif, link or location: stored, not understood."""

    kind: str
    url: str | None
    description: str | None


InboundEvent = Followed | Unfollowed | ChatOpened | TextSent | InfoShared | AttachmentSent
