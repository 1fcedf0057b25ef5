"""An in-memory :class:`bot.ports.Services`, and a driver that talks to the bot through it.

The port keeps everything the bot records in plain dictionaries and lists, and answers
with the same rules as the gateway's implementation (lookup guards in a window, state
with a TTL, a result-check answer accepted only from the phone it was asked of), on a
clock the test moves. The driver plays the gateway's part around the bot: it feeds
events, keeps the replies sent, forgets a pending question once anything else was sent,
and stores forwarded messages on the open handoff.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.events import (
    AttachmentSent,
    ChatOpened,
    Followed,
    InboundEvent,
    InfoShared,
    TextSent,
    Unfollowed,
)
from bot.ports import (
    Citizen,
    DossierFacts,
    Question,
    ReportFacts,
    ReportKind,
    ReportSource,
)
from bot.replies import AskPhone, Reply, Text
from bot.router import Bot, Outcome

START = datetime(2024, 4, 15, 2, 0, tzinfo=UTC)


@dataclass
class UserRecord:
    """One OA user as the gateway's ``zalo_users`` row would hold them."""

    follows: bool = False
    phone: str | None = None  # verified: shared through request_user_info
    name: str | None = None
    subscribed: bool = False


@dataclass
class OpenedReport:
    """A report the bot opened, with everything it passed."""

    user_id: str
    dossier_code: str
    kind: ReportKind
    description: str
    source: ReportSource
    facts: ReportFacts


@dataclass
class Handoff:
    """A conversation with hotline staff and the messages forwarded to it."""

    id: int
    user_id: str
    dossier_code: str | None
    open: bool = True
    messages: list[str] = field(default_factory=list)


class MemoryServices:
    """:class:`bot.ports.Services` over dictionaries, on a clock the test sets."""

    def __init__(
        self,
        *,
        max_failures: int = 5,
        window: timedelta = timedelta(hours=1),
        state_ttl: timedelta = timedelta(hours=24),
    ) -> None:
        self.now = START
        self.max_failures = max_failures
        self.window = window
        self.state_ttl = state_ttl
        self.users: dict[str, UserRecord] = {}
        self.dossiers: dict[str, DossierFacts] = {}
        self.failures: dict[str, list[datetime]] = {}
        self.codes_asked: dict[str, dict[str, datetime]] = {}
        self.reports: list[OpenedReport] = []
        # A result check sent: dossier code → the phone it was asked of.
        self.result_checks: dict[str, str] = {}
        self.result_answers: dict[str, bool] = {}
        self.ratings: dict[tuple[str, str], tuple[int, str | None]] = {}
        self.handoffs: list[Handoff] = []
        self.questions: dict[str, Question] = {}
        self.states: dict[str, tuple[dict[str, Any], datetime]] = {}

    def advance(self, **delta: float) -> None:
        """Move the clock forward (``minutes=11``, ``hours=2``…)."""
        self.now += timedelta(**delta)

    def open_handoff_of(self, user_id: str) -> Handoff | None:
        """The user's open handoff, if any."""
        return next((h for h in self.handoffs if h.user_id == user_id and h.open), None)

    def step(self, user_id: str) -> str | None:
        """The step of the user's saved (unexpired) conversation state."""
        state, expires = self.states.get(user_id, ({}, self.now))
        return state.get("step") if expires > self.now else None

    def _user(self, user_id: str) -> UserRecord:
        return self.users.setdefault(user_id, UserRecord(follows=True))

    def _recent(self, moments: list[datetime]) -> list[datetime]:
        return [m for m in moments if self.now - m < self.window]

    # --- Services -------------------------------------------------------------------

    async def citizen(self, user_id: str) -> Citizen:
        user = self.users.get(user_id, UserRecord())
        handoff = self.open_handoff_of(user_id)
        return Citizen(
            user_id, user.follows, user.phone, user.subscribed, handoff.id if handoff else None
        )

    async def set_following(self, user_id: str, follows: bool) -> None:
        self._user(user_id).follows = follows

    async def verify_phone(self, user_id: str, phone_e164: str, name: str | None) -> None:
        user = self._user(user_id)
        if user.phone != phone_e164:
            user.subscribed = False
        user.phone, user.name = phone_e164, name or user.name

    async def dossier(self, code: str) -> DossierFacts | None:
        return self.dossiers.get(code)

    async def lookup_locked(self, user_id: str) -> bool:
        return len(self._recent(self.failures.get(user_id, []))) >= self.max_failures

    async def lookup_failed(self, user_id: str) -> int:
        moments = [*self._recent(self.failures.get(user_id, [])), self.now]
        self.failures[user_id] = moments
        return len(moments)

    async def lookup_code_asked(self, user_id: str, code: str) -> int:
        asked = {c: at for c, at in self.codes_asked.get(user_id, {}).items() if self._recent([at])}
        asked.setdefault(code, self.now)
        self.codes_asked[user_id] = asked
        return len(asked)

    async def subscribe(self, user_id: str, phone_e164: str) -> None:
        user = self._user(user_id)
        user.phone, user.subscribed = phone_e164, True

    async def open_report(
        self,
        user_id: str,
        dossier_code: str,
        kind: ReportKind,
        description: str,
        source: ReportSource,
    ) -> ReportFacts:
        number = len(self.reports) + 1
        facts = ReportFacts(
            number, f"PA-2024-{number:06d}", dossier_code, "open", self.now + timedelta(days=7)
        )
        self.reports.append(OpenedReport(user_id, dossier_code, kind, description, source, facts))
        return facts

    async def record_result_check(self, user_id: str, dossier_code: str, received: bool) -> bool:
        asked = self.result_checks.get(dossier_code)
        if asked is None or asked != self._user(user_id).phone:
            return False
        self.result_answers[dossier_code] = received
        return True

    async def record_rating(
        self, user_id: str, dossier_code: str, score: int, comment: str | None
    ) -> None:
        self.ratings[(user_id, dossier_code)] = (score, comment)

    async def open_handoff(self, user_id: str, dossier_code: str | None) -> int:
        handoff = self.open_handoff_of(user_id)
        if handoff is None:
            handoff = Handoff(len(self.handoffs) + 1, user_id, dossier_code)
            self.handoffs.append(handoff)
        return handoff.id

    async def close_handoff(self, user_id: str) -> None:
        handoff = self.open_handoff_of(user_id)
        if handoff is not None:
            handoff.open = False

    async def pending_question(self, user_id: str) -> Question | None:
        return self.questions.get(user_id)

    async def load_state(self, user_id: str) -> dict[str, Any]:
        state, expires = self.states.get(user_id, ({}, self.now))
        return dict(state) if expires > self.now else {}

    async def save_state(self, user_id: str, state: dict[str, Any]) -> None:
        self.states[user_id] = (dict(state), self.now + self.state_ttl)

    async def clear_state(self, user_id: str) -> None:
        self.states.pop(user_id, None)


class Chat:
    """One citizen talking to the bot: the gateway's part around ``Bot.handle``."""

    def __init__(self, bot: Bot, services: MemoryServices, user_id: str) -> None:
        self.bot = bot
        self.services = services
        self.user_id = user_id
        self.sent: list[Reply] = []
        self.outcome = Outcome()
        self._keys = itertools.count(1)

    async def say(self, text: str) -> list[Reply]:
        """The citizen types ``text`` (a tapped button sends its payload the same way)."""
        return await self._handle(TextSent(self.user_id, self._key(), self.services.now, text))

    tap = say

    async def follow(self) -> list[Reply]:
        return await self._handle(Followed(self.user_id, self._key(), self.services.now))

    async def unfollow(self) -> list[Reply]:
        return await self._handle(Unfollowed(self.user_id, self._key(), self.services.now))

    async def open_chat(self) -> list[Reply]:
        return await self._handle(ChatOpened(self.user_id, self._key(), self.services.now))

    async def share(self, phone: str | None, name: str | None = "Nguyễn Văn An") -> list[Reply]:
        """The citizen answers a request_user_info card with ``phone``."""
        event = InfoShared(self.user_id, self._key(), self.services.now, phone, name)
        return await self._handle(event)

    async def attach(self, kind: str = "image") -> list[Reply]:
        event = AttachmentSent(
            self.user_id, self._key(), self.services.now, kind, "https://example.invalid/a", None
        )
        return await self._handle(event)

    def notice_asks(self, kind: str, code: str) -> None:
        """A notice asking a result check or a rating request was just sent to the user."""
        assert kind in ("result_check", "rating_request")
        self.services.questions[self.user_id] = Question(
            "result_check" if kind == "result_check" else "rating_request", code
        )
        phone = self.services.users.get(self.user_id, UserRecord()).phone
        if kind == "result_check" and phone is not None:
            self.services.result_checks[code] = phone

    def _key(self) -> str:
        return f"{self.user_id}:{next(self._keys)}"

    async def _handle(self, event: InboundEvent) -> list[Reply]:
        self.outcome = await self.bot.handle(event)
        replies = list(self.outcome.replies)
        if replies:  # the last message the user got is no longer the notice's question
            self.services.questions.pop(self.user_id, None)
        self.sent.extend(replies)
        handoff = self.services.open_handoff_of(self.user_id)
        if self.outcome.forwarded and handoff is not None:
            text = event.text if isinstance(event, TextSent) else f"[{type(event).__name__}]"
            handoff.messages.append(text)
        return replies


def text_of(reply: Reply) -> str:
    """A reply's text; a phone-number request card is ``[share phone]``."""
    return "[share phone]" if isinstance(reply, AskPhone) else reply.text


def payloads(reply: Reply) -> list[str]:
    """The payloads of a reply's buttons."""
    return [b.payload for b in reply.buttons] if isinstance(reply, Text) else []


def everything(replies: list[Reply]) -> str:
    """All the replies' texts, one after the other."""
    return "\n".join(text_of(r) for r in replies)
