"""An in-memory :class:`bot.ports.Services`, and a driver that talks to the bot through it.

The port keeps everything the bot records in plain dictionaries and lists, and answers
with the same rules as the gateway's implementation (guessing guards per user, per
dossier and per phone in their windows, one-time codes with tries, expiry and a limit
per phone, state with a TTL, a result-check answer accepted only from the phone it was
asked of or with a code, a subscription moving a phone's notices and telling the
previous channel once), on a clock the test moves. The codes "sent" are kept in
``codes``: a test reads the one a phone received with :meth:`MemoryServices.code_for`.
The driver plays the gateway's part around the bot: it feeds events, keeps the replies
sent, forgets a pending question once anything else was sent, and stores forwarded
messages on the open handoff.
"""

from __future__ import annotations

import itertools
import secrets
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
    CodeOffer,
    CodeResult,
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
    phone: str | None = None  # proven: a one-time code sent to it was typed back
    name: str | None = None
    subscribed: bool = False
    claimed: str | None = None  # shared through request_user_info: only a claim


@dataclass
class SentCode:
    """A one-time code the port "sent" (``phone`` None: an unknown dossier, nothing went)."""

    user_id: str
    purpose: str  # "phone" or "dossier"
    phone: str | None
    dossier_code: str | None
    code: str
    expires: datetime
    attempts: int = 0
    used: bool = False


@dataclass
class OpenedReport:
    """A report the bot opened, with everything it passed."""

    user_id: str
    dossier_code: str
    kind: ReportKind
    description: str
    source: ReportSource
    facts: ReportFacts
    proof: str = ""


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
        dossier_max_failures: int = 5,
        dossier_window: timedelta = timedelta(days=1),
        codes_per_phone_hour: int = 3,
        code_ttl: timedelta = timedelta(minutes=5),
        code_attempts: int = 3,
    ) -> None:
        self.now = START
        self.max_failures = max_failures
        self.window = window
        self.state_ttl = state_ttl
        self.dossier_max_failures = dossier_max_failures
        self.dossier_window = dossier_window
        self.codes_per_phone_hour = codes_per_phone_hour
        self.code_ttl = code_ttl
        self.code_attempts = code_attempts
        self.users: dict[str, UserRecord] = {}
        self.dossiers: dict[str, DossierFacts] = {}
        self.failures: dict[str, list[datetime]] = {}
        # Wrong proofs by anyone, per dossier code and per phone.
        self.dossier_failures: dict[str, list[datetime]] = {}
        self.phone_failures: dict[str, list[datetime]] = {}
        self.codes: list[SentCode] = []
        # "channel_moved" notices: (the previous OA user, or None for an SMS; the phone).
        self.moved: list[tuple[str | None, str]] = []
        self.codes_asked: dict[str, dict[str, datetime]] = {}
        self.reports: list[OpenedReport] = []
        # A result check sent: dossier code → the phone it was asked of.
        self.result_checks: dict[str, str] = {}
        self.result_answers: dict[str, bool] = {}
        # (user, dossier) → (progress, quality, comment), filled in as the gateway does.
        self.ratings: dict[tuple[str, str], tuple[int | None, int | None, str | None]] = {}
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

    def _recent(self, moments: list[datetime], window: timedelta | None = None) -> list[datetime]:
        return [m for m in moments if self.now - m < (window or self.window)]

    def code_for(self, phone: str) -> str:
        """The newest code sent to ``phone`` (what its owner reads on their phone)."""
        return next(c.code for c in reversed(self.codes) if c.phone == phone)

    def codes_to(self, phone: str) -> int:
        """How many codes were sent to ``phone``."""
        return sum(1 for c in self.codes if c.phone == phone)

    # --- Services -------------------------------------------------------------------

    async def citizen(self, user_id: str) -> Citizen:
        user = self.users.get(user_id, UserRecord())
        handoff = self.open_handoff_of(user_id)
        return Citizen(
            user_id,
            user.follows,
            user.phone,
            user.subscribed and user.phone is not None,
            handoff.id if handoff else None,
            user.claimed,
        )

    async def set_following(self, user_id: str, follows: bool) -> None:
        self._user(user_id).follows = follows

    async def claim_phone(self, user_id: str, phone_e164: str, name: str | None) -> None:
        user = self._user(user_id)
        user.claimed, user.name = phone_e164, name or user.name

    async def send_phone_code(self, user_id: str, phone_e164: str) -> CodeOffer:
        return self._send(user_id, "phone", phone_e164, None)

    async def send_dossier_code(self, user_id: str, dossier_code: str) -> CodeOffer:
        dossier = self.dossiers.get(dossier_code)
        phone = dossier.phone_e164 if dossier is not None else None
        return self._send(user_id, "dossier", phone, dossier_code)

    def _send(
        self, user_id: str, purpose: str, phone: str | None, dossier_code: str | None
    ) -> CodeOffer:
        hour = timedelta(hours=1)
        recent = [c.expires - self.code_ttl for c in self.codes if c.phone == phone]
        if phone is not None and len(self._recent(recent, hour)) >= self.codes_per_phone_hour:
            oldest = min(self._recent(recent, hour))
            return CodeOffer(self.now, int((oldest + hour - self.now).total_seconds()) + 1)
        code = f"{secrets.randbelow(10**6):06d}"
        expires = self.now + self.code_ttl
        self.codes.append(SentCode(user_id, purpose, phone, dossier_code, code, expires))
        return CodeOffer(expires)

    async def check_code(
        self, user_id: str, typed: str, dossier_code: str | None = None
    ) -> CodeResult:
        purpose = "phone" if dossier_code is None else "dossier"
        mine = [
            c
            for c in self.codes
            if c.user_id == user_id and c.purpose == purpose and c.dossier_code == dossier_code
        ]
        if not mine or mine[-1].used:
            return CodeResult("none")
        sent = mine[-1]
        if sent.expires <= self.now:
            return CodeResult("expired")
        if sent.attempts >= self.code_attempts:
            return CodeResult("exhausted")
        sent.attempts += 1
        if sent.phone is None or typed != sent.code:
            return CodeResult("wrong", self.code_attempts - sent.attempts)
        sent.used = True
        if purpose == "phone":
            user = self._user(user_id)
            if user.phone != sent.phone:
                user.subscribed = False
            user.phone = sent.phone
        return CodeResult("ok")

    async def dossier(self, code: str) -> DossierFacts | None:
        return self.dossiers.get(code)

    async def lookup_locked(self, user_id: str) -> bool:
        return len(self._recent(self.failures.get(user_id, []))) >= self.max_failures

    async def lookup_failed(self, user_id: str, dossier_code: str, phone_e164: str | None) -> int:
        self.dossier_failures.setdefault(dossier_code, []).append(self.now)
        if phone_e164 is not None:
            self.phone_failures.setdefault(phone_e164, []).append(self.now)
        moments = [*self._recent(self.failures.get(user_id, [])), self.now]
        self.failures[user_id] = moments
        return len(moments)

    async def needs_code(self, dossier_code: str, phone_e164: str | None) -> bool:
        counted = [self.dossier_failures.get(dossier_code, [])]
        if phone_e164 is not None:
            counted.append(self.phone_failures.get(phone_e164, []))
        return any(
            len(self._recent(moments, self.dossier_window)) >= self.dossier_max_failures
            for moments in counted
        )

    async def lookup_code_asked(self, user_id: str, code: str) -> int:
        asked = {c: at for c, at in self.codes_asked.get(user_id, {}).items() if self._recent([at])}
        asked.setdefault(code, self.now)
        self.codes_asked[user_id] = asked
        return len(asked)

    async def subscribe(self, user_id: str, phone_e164: str) -> None:
        user = self._user(user_id)
        assert user.phone == phone_e164, "only the proven number may be subscribed"
        if user.subscribed:
            return
        previous = [
            uid
            for uid, other in self.users.items()
            if uid != user_id and other.subscribed and other.phone == phone_e164
        ]
        for uid in previous:
            self.users[uid].subscribed = False
        recipients: list[str | None] = [*previous] or [None]
        self.moved.extend((uid, phone_e164) for uid in recipients)
        user.subscribed = True

    async def unsubscribe(self, user_id: str) -> bool:
        user = self._user(user_id)
        stopped, user.subscribed = user.subscribed, False
        return stopped

    async def open_report(
        self,
        user_id: str,
        dossier_code: str,
        kind: ReportKind,
        description: str,
        source: ReportSource,
        proof: str,
    ) -> ReportFacts:
        number = len(self.reports) + 1
        facts = ReportFacts(
            number, f"PA-2024-{number:06d}", dossier_code, "open", self.now + timedelta(days=7)
        )
        self.reports.append(
            OpenedReport(user_id, dossier_code, kind, description, source, facts, proof)
        )
        return facts

    async def record_result_check(
        self, user_id: str, dossier_code: str, received: bool, proof: str
    ) -> bool:
        asked = self.result_checks.get(dossier_code)
        if asked is None or (asked != self._user(user_id).phone and proof != "otp"):
            return False
        self.result_answers[dossier_code] = received
        return True

    async def record_rating(
        self,
        user_id: str,
        dossier_code: str,
        progress: int | None,
        quality: int | None,
        comment: str | None,
    ) -> None:
        # What is given replaces, what is None keeps; scores are 1-5, as the gateway's
        # storage insists (gateway.storage.ratings).
        assert all(score is None or 1 <= score <= 5 for score in (progress, quality))
        was_progress, was_quality, was_comment = self.ratings.get(
            (user_id, dossier_code), (None, None, None)
        )
        assert (progress, quality, was_progress, was_quality) != (None, None, None, None)
        self.ratings[(user_id, dossier_code)] = (
            was_progress if progress is None else progress,
            was_quality if quality is None else quality,
            was_comment if comment is None else comment,
        )

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
