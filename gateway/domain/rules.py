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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

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

    if event.type == "dossier.received" and phone is not None and not phone.ok:
        if phone.reason == "empty":
            flag("phone_missing", "no mobile number was entered at receipt")
        elif phone.reason == "no_digits":  # "N/A", "không có": said there is none
            flag("phone_missing", "no mobile number was entered at receipt: text but no digits")
        elif phone.reason in _LANDLINE_REASONS:
            flag("phone_landline", f"the number entered cannot receive SMS ({phone.reason})")
        else:
            flag("phone_invalid", f"the number entered is not a usable mobile ({phone.reason})")
    elif event.type == "dossier.paused":
        pending = [c.consultation_id for c in history.consultations if _pending_at(c, event)]
        if pending:
            flag(
                "pause_during_consultation",
                "paused while waiting for consultation(s): " + ", ".join(sorted(pending)),
            )
    elif event.type == "dossier.withdrawn" and not event.data.get("approved_by"):
        flag("withdrawal_without_approval", "withdrawn without the head of unit's approval")
    elif event.type in _ONCE_ONLY:
        flags.extend(_second_occurrence(event, dossier, history))
    elif event.type in ("dossier.consultation_requested", "dossier.consultation_answered"):
        late = _late_answer(event, history)
        if late is not None:
            flag("late_consultation_answer", late[1], agency=late[0])
    return flags


def _pending_at(c: ConsultationView, event: Event) -> bool:
    if c.requested_at is None or c.requested_at > event.occurred_at:
        return False
    return c.answered_at is None or c.answered_at > event.occurred_at


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
    what = "rescheduling" if event.type == "dossier.delayed" else "supplement request"
    return [
        FlagDraft(
            rule,
            f"{what} number {number} for this dossier (only one is allowed)",
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
    if due is None or answered is None or answered <= due:
        return None
    hours = (answered - due).total_seconds() / 3600
    return agency, f"consultation {consultation_id} answered {hours:.1f} h after its deadline"
