"""What the bot needs from the outside world, as one Protocol the gateway implements.

The gateway backs :class:`Services` with the database (citizens, dossiers, reports,
ratings, handoffs) and Redis (lookup guards, conversation state); the tests back it
with plain dictionaries. Everything handed to the bot is a frozen dataclass, so the
bot never sees a row, a connection or a Redis reply.
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


@dataclass(frozen=True, slots=True)
class Citizen:
    """One OA user as the gateway knows them."""

    user_id: str
    follows: bool
    # E.164, shared by the user through ``request_user_info``; never a typed number.
    verified_phone: str | None
    # Notices for ``verified_phone`` go to this OA user instead of SMS.
    subscribed: bool
    # The open conversation with hotline staff, if any.
    handoff_id: int | None


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

    async def verify_phone(self, user_id: str, phone_e164: str, name: str | None) -> None:
        """Record the phone number the user shared (already normalised to E.164)."""
        ...

    async def dossier(self, code: str) -> DossierFacts | None:
        """The dossier with this canonical code, or None."""
        ...

    async def lookup_locked(self, user_id: str) -> bool:
        """Whether the user made too many wrong proofs in the current window."""
        ...

    async def lookup_failed(self, user_id: str) -> int:
        """Record one wrong ownership proof; return the failures in the window."""
        ...

    async def lookup_code_asked(self, user_id: str, code: str) -> int:
        """Record that the user asked about ``code``; return the distinct codes asked
        in the window, this one included."""
        ...

    async def subscribe(self, user_id: str, phone_e164: str) -> None:
        """Send future notices for ``phone_e164`` to this OA user instead of SMS."""
        ...

    async def open_report(
        self,
        user_id: str,
        dossier_code: str,
        kind: ReportKind,
        description: str,
        source: ReportSource,
    ) -> ReportFacts:
        """Open a report for the hotline's queue."""
        ...

    async def record_result_check(self, user_id: str, dossier_code: str, received: bool) -> bool:
        """Record the answer to "did you receive the result?"; False if no such question
        was sent to this user about this dossier (nothing is recorded then)."""
        ...

    async def record_rating(
        self, user_id: str, dossier_code: str, score: int, comment: str | None
    ) -> None:
        """Record (or replace) the user's 1-5 rating of a dossier's handling."""
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
