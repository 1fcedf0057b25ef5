"""What the bot needs from the outside world, as one Protocol the gateway implements.

The gateway backs :class:`Services` with the database (citizens, dossiers, reports,
ratings, handoffs, one-time codes, subscriptions) and Redis (guessing guards,
conversation state); the tests back it with plain dictionaries. Everything handed to
the bot is a frozen dataclass, so the bot never sees a row, a connection or a Redis
reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

ReportKind = Literal["false_closure", "problem"]
ReportSource = Literal["zalo", "result_check"]


@dataclass(frozen=True, slots=True)
class BotPolicy:
    """The limits the bot enforces and the facts it quotes.

    ``max_failures`` wrong ownership proofs lock lookups (the gateway keeps the count
    for its window); more than ``max_codes`` distinct dossier codes asked in the window
    is refused as enumeration; ``hotline`` is the number citizens are told to call.
    """

    max_failures: int
    max_codes: int
    hotline: str
    # A one-time code allows this many tries and is valid this long (the bot counts the
    # tries of a dossier code itself, so an unknown dossier answers like a known one).
    otp_attempts: int = 3
    otp_minutes: int = 5


@dataclass(frozen=True, slots=True)
class Citizen:
    """One OA user as the gateway knows them."""

    user_id: str
    follows: bool
    # E.164, proven by a one-time code sent to it (a shared number is only a claim).
    verified_phone: str | None
    # Notices for ``verified_phone`` go to this OA user instead of SMS.
    subscribed: bool
    # The open conversation with hotline staff, if any.
    handoff_id: int | None
    # E.164, the number last shared through ``request_user_info`` (its fields can be
    # typed by the user: a claim, until a one-time code sent to it comes back).
    claimed_phone: str | None = None


@dataclass(frozen=True, slots=True)
class NoticeFacts:
    """A notice sent (or being sent) about a dossier."""

    kind: str  # receipt, supplement, invitation, apology, result_check, report_received…
    channel: str | None  # "oa", "zns", "sms"; None while no channel was tried
    state: str  # created, queued, sending, sent, delivered, failed…
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class DossierFacts:
    """What the bot may tell the dossier's owner, once ownership is proven."""

    code: str
    procedure_name: str | None
    agency_code: str | None
    agency_name: str | None
    state: str  # an internal state of ``gateway.domain.events.EVENT_TYPES``
    received_at: datetime | None
    due_at: datetime | None
    finished_at: datetime | None
    finished_by_name: str | None
    phone_e164: str | None
    last_step: str | None  # the event type of the last step, e.g. "dossier.delayed"
    last_step_at: datetime | None
    notices: tuple[NoticeFacts, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportFacts:
    """A citizen report (phản ánh) as opened."""

    id: int
    number: str  # shown to the citizen, e.g. PA-2024-000123
    dossier_code: str
    status: str
    expected_at: datetime | None  # the date the citizen can expect an answer by


@dataclass(frozen=True, slots=True)
class CodeOffer:
    """What asking for a one-time code did.

    ``retry_after_seconds`` is set when too many codes were asked lately (nothing was
    sent). Otherwise the code went out, or, for a dossier that is unknown or has no
    usable phone, nothing did: the bot answers both alike, with ``expires_at``.
    """

    expires_at: datetime
    retry_after_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class CodeResult:
    """The check of a typed one-time code."""

    outcome: Literal["ok", "wrong", "expired", "exhausted", "none"]
    attempts_left: int = 0


@dataclass(frozen=True, slots=True)
class Question:
    """A question a notice just asked the user (the last message they received)."""

    kind: Literal["result_check", "rating_request"]
    dossier_code: str


class Services(Protocol):
    """Look-ups and records the bot asks for; every method concerns one OA user."""

    async def citizen(self, user_id: str) -> Citizen:
        """The user, with defaults (not verified, not subscribed) if never seen."""
        ...

    async def set_following(self, user_id: str, follows: bool) -> None:
        """Record a follow or an unfollow."""
        ...

    async def claim_phone(self, user_id: str, phone_e164: str, name: str | None) -> None:
        """Record the phone number the user shared (already normalised to E.164) as a
        claim; it proves nothing until a code sent to it is typed back."""
        ...

    async def send_phone_code(self, user_id: str, phone_e164: str) -> CodeOffer:
        """Send a one-time code to the user's claimed number (ZNS or SMS)."""
        ...

    async def send_dossier_code(self, user_id: str, dossier_code: str) -> CodeOffer:
        """Send a one-time code to the phone declared in the dossier (the number is never
        shown to the user); nothing is sent for an unknown dossier, alike."""
        ...

    async def check_code(
        self, user_id: str, typed: str, dossier_code: str | None = None
    ) -> CodeResult:
        """Check a typed code: the one sent for ``dossier_code``, or else the one sent to
        the user's claimed number, which a right code makes the user's proven number."""
        ...

    async def dossier(self, code: str) -> DossierFacts | None:
        """The dossier with this canonical code, or None."""
        ...

    async def lookup_locked(self, user_id: str) -> bool:
        """Whether the user made too many wrong proofs in the current window."""
        ...

    async def lookup_failed(self, user_id: str, dossier_code: str, phone_e164: str | None) -> int:
        """Record one wrong ownership proof (counted per user, per dossier and per
        phone); return the user's failures in the window."""
        ...

    async def needs_code(self, dossier_code: str, phone_e164: str | None) -> bool:
        """Whether so many wrong proofs were made for this dossier or phone (by anyone)
        that only a one-time code proves ownership now."""
        ...

    async def lookup_code_asked(self, user_id: str, code: str) -> int:
        """Record that the user asked about ``code``; return the distinct codes asked
        in the window, this one included."""
        ...

    async def subscribe(self, user_id: str, phone_e164: str) -> None:
        """Send future notices for the user's proven ``phone_e164`` to this OA user; the
        previous channel (SMS, or another OA user) is told once."""
        ...

    async def unsubscribe(self, user_id: str) -> bool:
        """End the user's subscription; False if there was none."""
        ...

    async def open_report(
        self,
        user_id: str,
        dossier_code: str,
        kind: ReportKind,
        description: str,
        source: ReportSource,
        proof: str,
    ) -> ReportFacts:
        """Open a report for the hotline's queue; ``proof`` says how ownership was
        proven ("proven_phone" or "otp")."""
        ...

    async def record_result_check(
        self, user_id: str, dossier_code: str, received: bool, proof: str
    ) -> bool:
        """Record the answer to "did you receive the result?"; False if no such question
        is open for this dossier, or (``proof`` "proven_phone") it was not asked of the
        user's proven number: nothing is recorded then."""
        ...

    async def record_rating(
        self,
        user_id: str,
        dossier_code: str,
        progress: int | None,
        quality: int | None,
        comment: str | None,
    ) -> None:
        """Record the user's rating of a dossier's handling, or complete it: the progress
        (tiến độ) and the quality (chất lượng tiếp nhận, giải quyết) scores, 1-5, and a
        comment; what is given replaces the stored value, what is None keeps it."""
        ...

    async def open_handoff(self, user_id: str, dossier_code: str | None) -> int:
        """Open a conversation with hotline staff (or return the one open); its id."""
        ...

    async def close_handoff(self, user_id: str) -> None:
        """Close the user's open conversation with hotline staff, if any."""
        ...

    async def pending_question(self, user_id: str) -> Question | None:
        """The question the last message sent to the user asked, if it was a result
        check or a rating request; None once anything else was sent after it."""
        ...

    async def load_state(self, user_id: str) -> dict[str, Any]:
        """The conversation state last saved for the user, or an empty dict."""
        ...

    async def save_state(self, user_id: str, state: dict[str, Any]) -> None:
        """Keep the (JSON-serialisable) conversation state for a while."""
        ...

    async def clear_state(self, user_id: str) -> None:
        """Forget the conversation state."""
        ...
