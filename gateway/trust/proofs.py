"""Levels of proof that a citizen owns a dossier, and what each level allows.

- ``last_four``: the last four digits of the dossier's phone. Enough to READ a dossier
  (status, dates, procedure, agency, notices sent), never to act on it. Not accepted for a
  dossier once :meth:`gateway.trust.guards.Guards.needs_code` says so.
- ``otp``: a one-time code sent to the dossier's phone (or to the user's own number when
  it matches the dossier's).
- ``proven_phone``: an OA user whose number was proven by a one-time code and equals the
  dossier's phone.
- ``sms_link``: the citizen opened the signed link of an SMS sent to the dossier's phone.
- ``staff``: the hotline took the report by phone.

Any proof may read; only the proofs in :data:`ACT_PROOFS` may act (subscribe, report,
rate, answer a result check, attach a dossier to a handoff). ``reports.proof`` stores the
word.
"""

from __future__ import annotations

from typing import Literal

Proof = Literal["last_four", "otp", "proven_phone", "sms_link", "staff"]

ACT_PROOFS: frozenset[str] = frozenset({"otp", "proven_phone", "sms_link", "staff"})


def may_read(proof: str | None) -> bool:
    """Whether this proof shows a dossier's details: any proof at all."""
    return proof is not None


def may_act(proof: str | None) -> bool:
    """Whether this proof may subscribe, report, rate, answer a result check or attach."""
    return proof in ACT_PROOFS
