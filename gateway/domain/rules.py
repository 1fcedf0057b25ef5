"""Audit rules checked at ingest (from the province's letters); each breach is a flag.

- ``phone_missing`` — receipt without a phone (receiving officer)
- ``phone_invalid`` — receipt with an unusable phone: letters, length... (receiving officer)
- ``phone_landline`` — receipt with a landline or a suspected old landline (receiving officer)
- ``pause_during_consultation`` — pause while a consultation is pending (pausing officer)
- ``withdrawal_without_approval`` — no head of unit's approval (officer recording it)
- ``second_rescheduling`` — a second apology/new date; one is allowed (officer of the later)
- ``second_supplement_request`` — counts as late nationally (officer of the later)
- ``late_consultation_answer`` — answered after its deadline (the consulted agency)

"Later" is by ``occurred_at``: when an older event arrives after a newer one of the same
kind, the flag goes to the event that is chronologically second.

The per-event checks (``phone_breach``, ``pending_consultations``, ``withdrawal_approved``,
``answered_late`` and the detail texts) are shared with the audit's violation rules
(:mod:`gateway.domain.violations`), which apply them to whole stored timelines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.domain.events import Event

if TYPE_CHECKING:
    from gateway.domain.dossier import DossierState
    from gateway.domain.phones import PhoneResult

# Event types whose rules need more than the dossier row.
NEEDS_HISTORY = frozenset(
    {
        "dossier.paused",
        "dossier.consultation_requested",
        "dossier.consultation_answered",
        "dossier.delayed",
        "dossier.supplement_requested",
    }
)
_ONCE_ONLY = {
    "dossier.delayed": "second_rescheduling",
    "dossier.supplement_requested": "second_supplement_request",
}
_LANDLINE_REASONS = frozenset({"landline", "old_landline_suspected"})


@dataclass(frozen=True, slots=True)
class PastEvent:
    """An already recorded event of the same dossier, as far as the rules care."""

    id: str
    type: str
    occurred_at: datetime
    actor_id: str | None
    actor_name: str | None
    source_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConsultationView:
    """A consultation of another agency as currently recorded."""

    consultation_id: str
    agency_code: str | None
    requested_at: datetime | None
    due_at: datetime | None
    answered_at: datetime | None


@dataclass(frozen=True, slots=True)
class History:
    """What the rules need to know beyond the dossier row (empty for most events)."""

    same_type: tuple[PastEvent, ...] = ()
    consultations: tuple[ConsultationView, ...] = ()


@dataclass(frozen=True, slots=True)
class FlagDraft:
    """A rule breach to record, attributed to event ``event_id`` of ``source_id`` (None: the
    source of the event being recorded)."""

    rule: str
    detail: str
    event_id: str
    occurred_at: datetime
    officer_id: str | None
    officer_name: str | None
    agency_code: str | None
    source_id: str | None = None


def flags_for(
    event: Event, dossier: DossierState, history: History, phone: PhoneResult | None
) -> list[FlagDraft]:
    """Every rule breach that recording ``event`` reveals."""
    flags: list[FlagDraft] = []

    def flag(rule: str, detail: str, agency: str | None = None) -> None:
        actor = event.actor
        flags.append(
            FlagDraft(
                rule,
                detail,
                event.id,
                event.occurred_at,
                actor.id if actor else None,
                actor.name if actor else None,
                agency or dossier.agency_code,
            )
        )

    if event.type == "dossier.received" and phone is not None:
        breach = phone_breach(phone)
        if breach is not None:
            flag(*breach)
    elif event.type == "dossier.paused":
        pending = pending_consultations(history.consultations, event.occurred_at)
        if pending:
            flag("pause_during_consultation", pause_detail(pending))
    elif event.type == "dossier.withdrawn" and not withdrawal_approved(event.data):
        flag("withdrawal_without_approval", WITHDRAWAL_DETAIL)
    elif event.type in _ONCE_ONLY:
        flags.extend(_second_occurrence(event, dossier, history))
    elif event.type in ("dossier.consultation_requested", "dossier.consultation_answered"):
        late = _late_answer(event, history)
        if late is not None:
            flag("late_consultation_answer", late[1], agency=late[0])
    return flags


# -- the per-event checks, shared with the audit (gateway.domain.violations) ------------

WITHDRAWAL_DETAIL = "withdrawn without the head of unit's approval"


def phone_breach(phone: PhoneResult) -> tuple[str, str] | None:
    """``(rule, detail)`` when the phone entered at receipt breaks a phone rule."""
    if phone.ok:
        return None
    if phone.reason == "empty":
        return "phone_missing", "no mobile number was entered at receipt"
    if phone.reason == "no_digits":  # "N/A", "không có": said there is none
        return "phone_missing", "no mobile number was entered at receipt: text but no digits"
    if phone.reason in _LANDLINE_REASONS:
        return "phone_landline", f"the number entered cannot receive SMS ({phone.reason})"
    return "phone_invalid", f"the number entered is not a usable mobile ({phone.reason})"


def pending_consultations(consultations: Iterable[ConsultationView], at: datetime) -> list[str]:
    """The ids of the consultations requested and not yet answered at moment ``at``."""
    return sorted(c.consultation_id for c in consultations if _pending_at(c, at))


def pause_detail(pending: Sequence[str]) -> str:
    """The detail of a ``pause_during_consultation`` breach."""
    return "paused while waiting for consultation(s): " + ", ".join(pending)


def withdrawal_approved(data: Mapping[str, Any]) -> bool:
    """Whether a ``dossier.withdrawn`` event's data carries the head of unit's approval."""
    return bool(data.get("approved_by"))


def occurrence_detail(event_type: str, number: int) -> str:
    """The detail of a once-only event occurring for the ``number``-th time."""
    what = "rescheduling" if event_type == "dossier.delayed" else "supplement request"
    return f"{what} number {number} for this dossier (only one is allowed)"


def answered_late(due: datetime | None, answered: datetime | None) -> bool:
    """Whether a consultation answered at ``answered`` missed its deadline ``due``."""
    return due is not None and answered is not None and answered > due


def late_answer_detail(consultation_id: str, due: datetime, answered: datetime) -> str:
    """The detail of a ``late_consultation_answer`` breach."""
    hours = (answered - due).total_seconds() / 3600
    return f"consultation {consultation_id} answered {hours:.1f} h after its deadline"


def _pending_at(c: ConsultationView, at: datetime) -> bool:
    if c.requested_at is None or c.requested_at > at:
        return False
    return c.answered_at is None or c.answered_at > at


def _second_occurrence(event: Event, dossier: DossierState, history: History) -> list[FlagDraft]:
    rule = _ONCE_ONLY[event.type]
    earlier = [p for p in history.same_type if p.type == event.type and p.id != event.id]
    if not earlier:
        return []
    first = min(earlier, key=lambda p: p.occurred_at)
    if event.occurred_at >= first.occurred_at:
        actor = event.actor
        target = PastEvent(
            event.id,
            event.type,
            event.occurred_at,
            actor.id if actor else None,
            actor.name if actor else None,
        )
        # Its rank by occurred_at: an event arriving between two recorded ones is not last.
        number = 1 + sum(p.occurred_at <= event.occurred_at for p in earlier)
    else:
        # This older event arrived late: the previously-first one, never flagged, is now second.
        target, number = first, 2
    return [
        FlagDraft(
            rule,
            occurrence_detail(event.type, number),
            target.id,
            target.occurred_at,
            target.actor_id,
            target.actor_name,
            dossier.agency_code,
            target.source_id,
        )
    ]


def _late_answer(event: Event, history: History) -> tuple[str | None, str] | None:
    consultation_id = event.data["consultation_id"]
    known = next((c for c in history.consultations if c.consultation_id == consultation_id), None)
    if event.type == "dossier.consultation_answered":
        due, agency, answered = (
            (known.due_at, known.agency_code, event.occurred_at)
            if known
            else (
                None,
                None,
                None,
            )
        )
    else:
        due, agency = event.data["due_at"], event.data["agency"]["code"]
        answered = known.answered_at if known else None
    if due is None or answered is None or not answered_late(due, answered):
        return None
    return agency, late_answer_detail(consultation_id, due, answered)
