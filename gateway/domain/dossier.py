"""What one event does to a dossier: new state, flags, notices — decided without I/O.

The storage layer loads the dossier and the little history the rules need
(:class:`History`), calls :func:`decide`, and writes the :class:`Decision` in the same
transaction as the event. Events may arrive out of order: an event older than the
dossier's current state is kept on the timeline but changes neither state nor
snapshot and sends no notice (it is *superseded*).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from gateway.domain.events import Event, Person
from gateway.domain.notices import NoticeDraft, notices_for
from gateway.domain.phones import PhoneResult, normalize_phone
from gateway.domain.rules import FlagDraft, History, flags_for


@dataclass(frozen=True, slots=True)
class DossierState:
    """A dossier as the gateway knows it after the events so far."""

    code: str
    state: str
    dvcqg_status: int
    state_at: datetime
    procedure_code: str | None = None
    procedure_name: str | None = None
    agency_code: str | None = None
    agency_name: str | None = None
    applicant_name: str | None = None
    phone_raw: str | None = None
    phone_e164: str | None = None
    phone_problem: str | None = None
    received_at: datetime | None = None
    received_by: str | None = None
    due_at: datetime | None = None
    original_due_at: datetime | None = None
    finished_at: datetime | None = None
    finished_by_id: str | None = None
    finished_by_name: str | None = None
    reschedule_count: int = 0
    supplement_count: int = 0
    event_count: int = 0
    # Set by the deadline sweep ("late", "met", "waiting"); a new due date watches again.
    deadline_state: str | None = None


@dataclass(frozen=True, slots=True)
class ConsultationChange:
    """A consultation opened or answered by this event."""

    consultation_id: str
    agency_code: str | None = None
    agency_name: str | None = None
    requested_at: datetime | None = None
    due_at: datetime | None = None
    answered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """Everything one event changes; written atomically with the event."""

    dossier: DossierState
    superseded: bool
    flags: list[FlagDraft] = field(default_factory=list)
    notices: list[NoticeDraft] = field(default_factory=list)
    consultation: ConsultationChange | None = None


def decide(current: DossierState | None, event: Event, history: History) -> Decision:
    """Apply ``event`` to ``current`` (None for a dossier seen for the first time)."""
    spec = event.spec
    superseded = current is not None and event.occurred_at < current.state_at
    phone = _phone_of(event)
    base = current or DossierState(
        code=event.dossier.code,
        state=spec.state,
        dvcqg_status=spec.dvcqg_status,
        state_at=event.occurred_at,
    )
    dossier = base if superseded else _apply(base, event, phone)
    dossier = _count(dossier, event)
    flags = flags_for(event, dossier, history, phone)
    notices = [] if superseded else notices_for(event, dossier, base.due_at)
    return Decision(dossier, superseded, flags, notices, _consultation_change(event))


def _phone_of(event: Event) -> PhoneResult | None:
    applicant = event.dossier.applicant
    if applicant is None or applicant.phone is None:
        # The receipt is where a phone must be entered; elsewhere absence means "unchanged".
        return normalize_phone("") if event.type == "dossier.received" else None
    return normalize_phone(applicant.phone)


def _apply(d: DossierState, event: Event, phone: PhoneResult | None) -> DossierState:
    snap = event.dossier
    spec = event.spec
    changes: dict[str, object] = {
        "state": spec.state,
        "dvcqg_status": spec.dvcqg_status,
        "state_at": event.occurred_at,
    }
    if snap.procedure:
        changes |= {"procedure_code": snap.procedure.code, "procedure_name": snap.procedure.name}
    if snap.agency:
        changes |= {"agency_code": snap.agency.code, "agency_name": snap.agency.name}
    if snap.applicant and snap.applicant.name:
        changes["applicant_name"] = snap.applicant.name
    if phone is not None:
        changes |= {
            "phone_raw": phone.input,
            "phone_e164": phone.e164 if phone.ok else None,
            "phone_problem": phone.reason,
        }
    if snap.received_at:
        changes["received_at"] = snap.received_at
    if snap.due_at:
        if not promised(d):
            changes["due_at"] = snap.due_at
        if d.original_due_at is None:
            changes["original_due_at"] = snap.due_at
    if event.type == "dossier.received" and event.actor:
        changes["received_by"] = event.actor.id
    if event.type == "dossier.delayed":
        changes["due_at"] = event.data["new_due_at"]
        if d.original_due_at is None:
            changes["original_due_at"] = snap.due_at or d.due_at
    if event.type == "dossier.finished":
        actor: Person | None = event.actor
        changes |= {
            "finished_at": event.occurred_at,
            "finished_by_id": actor.id if actor else None,
            "finished_by_name": actor.name if actor else None,
        }
    if changes.get("due_at", d.due_at) != d.due_at or (
        d.deadline_state == "waiting" and spec.state not in ("supplement_requested", "fees_due")
    ):
        changes["deadline_state"] = None
    return replace(d, **changes)  # type: ignore[arg-type]


def promised(d: DossierState) -> bool:
    """Whether the citizen was promised a new date in an apology (``dossier.delayed``).

    That date is what the citizen holds, so it stays the dossier's due date — in the
    lookup, the API and the next reminder — whatever date later snapshots re-send; only
    another apology moves it. The first appointment stays in ``original_due_at``.
    """
    return d.reschedule_count > 0


def _count(d: DossierState, event: Event) -> DossierState:
    # Counters include superseded events: a late-arriving second apology is still second.
    return replace(
        d,
        event_count=d.event_count + 1,
        reschedule_count=d.reschedule_count + (event.type == "dossier.delayed"),
        supplement_count=d.supplement_count + (event.type == "dossier.supplement_requested"),
    )


def _consultation_change(event: Event) -> ConsultationChange | None:
    if event.type == "dossier.consultation_requested":
        agency = event.data["agency"]
        return ConsultationChange(
            consultation_id=event.data["consultation_id"],
            agency_code=agency["code"],
            agency_name=agency["name"],
            requested_at=event.occurred_at,
            due_at=event.data["due_at"],
        )
    if event.type == "dossier.consultation_answered":
        return ConsultationChange(event.data["consultation_id"], answered_at=event.occurred_at)
    return None
