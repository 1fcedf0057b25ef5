"""Which notices an event calls for, with the parameters their templates will need.

A notice is decided at ingest and stored as an outbox row in the same transaction as the
event; rendering and delivery come later. Each notice has a *dedupe key*: the database
keeps it unique, so the citizen never gets the same notice twice even if the one-stop-shop
posts the same fact under two event ids (a clerk pressing "finish" twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.domain.events import Event

if TYPE_CHECKING:
    from gateway.domain.dossier import DossierState

NOTICE_KINDS = (
    "receipt",
    "supplement",
    "refusal",
    "fees",
    "withdrawal",
    "apology",
    "auto_apology",
    "invitation",
)

# Notices that can only be true once per dossier; the others are per event.
_ONCE_PER_DOSSIER = frozenset({"receipt", "refusal", "withdrawal", "invitation"})


@dataclass(frozen=True, slots=True)
class NoticeDraft:
    """A notice to create: what kind, for which phone, and the facts to render."""

    kind: str
    dedupe_key: str
    phone_e164: str | None
    params: dict[str, Any]


def dedupe_key(dossier_code: str, kind: str, event: Event) -> str:
    """The key that makes one notice unique for its dossier."""
    if kind in _ONCE_PER_DOSSIER:
        return f"{dossier_code}/{kind}"
    if kind == "apology":
        return f"{dossier_code}/apology/{event.data['new_due_at'].date().isoformat()}"
    return f"{dossier_code}/{kind}/{event.id}"


def notices_for(
    event: Event, dossier: DossierState, previous_due_at: datetime | None = None
) -> list[NoticeDraft]:
    """The notices to the citizen that ``event`` calls for (none for most internal steps).

    ``dossier`` is the state after the event; ``previous_due_at`` the due date before it,
    the date an apology moves away from (an earlier promise, not the first appointment).
    """
    kind = event.spec.notice_kind
    if kind is None:
        return []
    params: dict[str, Any] = {
        "dossier_code": dossier.code,
        "procedure_name": dossier.procedure_name,
        "agency_name": dossier.agency_name,
        "applicant_name": dossier.applicant_name,
        "received_at": _iso(dossier.received_at),
        "due_at": _iso(dossier.due_at),
    }
    data = event.data
    if kind in ("supplement", "refusal", "fees", "apology"):
        params["reason"] = data.get("reason")
    if kind == "supplement":
        params["documents"] = list(data["documents"])
    elif kind == "fees":
        params["amount"] = data["amount"]
    elif kind == "apology":
        params["old_due_at"] = _iso(previous_due_at or dossier.original_due_at)
        params["new_due_at"] = _iso(data["new_due_at"])
    elif kind == "invitation":
        params["pickup"] = data.get("pickup")
        params["delivery"] = data.get("delivery")
    return [NoticeDraft(kind, dedupe_key(dossier.code, kind, event), dossier.phone_e164, params)]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
