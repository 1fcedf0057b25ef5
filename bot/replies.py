"""What the bot answers: plain texts with optional buttons, and a phone-number request.

The gateway turns these into Zalo OA messages; the bot never builds Zalo JSON. Button
support on OA messages is not guaranteed, so every text that shows buttons also carries
a numbered fallback in its words (the bot's templates take care of that).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_TEXT_CHARS = 2000
MAX_BUTTONS = 5


@dataclass(frozen=True, slots=True)
class Button:
    """An ``oa.query.hide`` button: when tapped, Zalo sends ``payload`` back as the
    user's text."""

    title: str
    payload: str


@dataclass(frozen=True, slots=True)
class Text:
    """A text message (at most 2,000 characters) with at most 5 buttons."""

    text: str
    buttons: tuple[Button, ...] = ()

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError("a text reply must not be empty")
        if len(self.text) > MAX_TEXT_CHARS:
            raise ValueError(f"a text reply holds at most {MAX_TEXT_CHARS} characters")
        if len(self.buttons) > MAX_BUTTONS:
            raise ValueError(f"a text reply holds at most {MAX_BUTTONS} buttons")


@dataclass(frozen=True, slots=True)
class AskPhone:
    """Zalo's ``request_user_info`` card: the user may share their phone number; the
    answer comes back as :class:`bot.events.InfoShared`."""

    title: str
    subtitle: str


Reply = Text | AskPhone
