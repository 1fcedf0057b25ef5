"""``/tra-cuu``: a dossier's public status, the proofs of ownership, its details.

Rules:

- ``GET /tra-cuu?ma=<code>`` without proof shows only the state (a Vietnamese label) and
  the due date: nothing that says who applied or for what. An unknown code gets a plain
  "không tìm thấy" (404). Each client address may ask about
  ``LOOKUP_MAX_CODES`` distinct codes per ``LOOKUP_WINDOW_SECONDS`` (the bot's rule;
  :meth:`Guards.code_asked` with requester ``webip:<address digest>``).
- ``POST /tra-cuu`` (fields ``ma``, and ``so_cuoi``, or ``ma_otp``, or the button
  ``gui_ma``) proves ownership. ``so_cuoi``, the last four digits of the dossier's phone,
  gives the read level, unless :meth:`Guards.needs_code` (too many wrong guesses of this
  dossier or phone, by anyone): then only a one-time code does. A wrong ``so_cuoi``
  counts in :meth:`Guards.failed`; an address whose wrong proofs reached
  ``LOOKUP_MAX_FAILURES`` is refused every proof for the window. ``gui_ma`` sends a
  one-time code to the dossier's phone (:meth:`OneTimeCodes.send_for_dossier`, requester
  ``web:<session digest>``; the page answers alike whether a code went out), and the
  right ``ma_otp`` gives the act level (proof ``otp``).
- With a proof the page shows the procedure, the agency, the received, due and finished
  dates and the notices sent (kind, channel, date); with an act-level proof also the
  answers of :mod:`gateway.http.citizen.actions`.

Every attempt is logged with the dossier code and the address digest, never the phone
number, the digits typed or the code.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.http.citizen.visits import Visit, citizen_page, see_other
from gateway.http.keys import QUEUE
from gateway.storage.tables import dossiers, result_checks
from gateway.trust.news import dossier_notices
from gateway.trust.otp import OneTimeCodes, TooManyCodes

routes = web.RouteTableDef()

CODE_MAX = 40
# The states in which a citizen may say the result did not reach them, and rate.
CLOSED_STATES = frozenset({"finished", "delivered"})


@dataclass(frozen=True, slots=True)
class SentNotice:
    kind: str
    channel: str | None
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class CitizenDossier:
    """What the page may show of a dossier (the phone is for proofs only)."""

    code: str
    state: str
    due_at: datetime | None
    procedure_name: str | None
    agency_name: str | None
    received_at: datetime | None
    finished_at: datetime | None
    phone_e164: str | None
    result_check: str | None  # the result check's state, if one was scheduled
    notices: tuple[SentNotice, ...]

    @property
    def closed(self) -> bool:
        return self.state in CLOSED_STATES

    @property
    def question_open(self) -> bool:
        """Whether "đã nhận / chưa nhận" may be answered (the question was asked)."""
        return self.result_check in ("asked", "received", "not_received")


def typed_code(value: Any) -> str:
    """The dossier code as typed, trimmed (a code is ASCII; case as the one-stop shop)."""
    return value.strip().upper()[:CODE_MAX] if isinstance(value, str) else ""


async def load_dossier(engine: AsyncEngine, code: str) -> CitizenDossier | None:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(dossiers).where(dossiers.c.code == code))).first()
        if row is None:
            return None
        check = (
            await conn.execute(
                sa.select(result_checks.c.state).where(result_checks.c.dossier_code == code)
            )
        ).scalar()
        sent = await dossier_notices(conn, code, sent_only=True)
    return CitizenDossier(
        code=row.code,
        state=row.state,
        due_at=row.due_at,
        procedure_name=row.procedure_name,
        agency_name=row.agency_name,
        received_at=row.received_at,
        finished_at=row.finished_at,
        phone_e164=row.phone_e164,
        result_check=check,
        notices=tuple(SentNotice(n.kind, n.channel, n.sent_at) for n in sent),
    )


def lookup_url(code: str) -> str:
    return f"/tra-cuu?ma={quote(code, safe='')}"


def dossier_page(
    visit: Visit,
    dossier: CitizenDossier,
    *,
    message: str | None = None,
    status: int = 200,
    **extra: Any,
) -> web.Response:
    """The dossier as this visit may see it, with ``message`` (a notice key) on top."""
    proof = visit.proof(dossier.code)
    return visit.page(
        "lookup.html.j2",
        {
            "code": dossier.code,
            "dossier": dossier,
            "proof": proof,
            "may_act": visit.may_act(dossier.code),
            "code_sent": visit.code_sent(dossier.code),
            "message": message,
            **extra,
        },
        status=status,
    )


async def _enumeration_capped(visit: Visit, code: str) -> bool:
    if visit.proof(code) is not None:
        return False  # already proven here: not a guess
    asked = await visit.guards.code_asked(visit.address_requester, code)
    if asked > visit.settings.chat.lookup_max_codes:
        visit.log("citizen lookups capped", dossier=code, codes=asked)
        return True
    return False


@routes.get("/tra-cuu", name="citizen_lookup")
@citizen_page
async def lookup(visit: Visit) -> web.StreamResponse:
    code = typed_code(visit.request.query.get("ma"))
    if not code:
        return visit.page("lookup.html.j2", {"code": "", "dossier": None, "message": None})
    if await _enumeration_capped(visit, code):
        return visit.problem("codes_capped", 429)
    dossier = await load_dossier(visit.engine, code)
    visit.log("citizen lookup", dossier=code, found=dossier is not None)
    if dossier is None:
        return visit.page(
            "lookup.html.j2", {"code": code, "dossier": None, "message": "not_found"}, status=404
        )
    return dossier_page(visit, dossier)


@routes.post("/tra-cuu", name="citizen_proof")
@citizen_page
async def prove(visit: Visit) -> web.StreamResponse:
    form = await visit.request.post()
    code = typed_code(form.get("ma"))
    if not code:
        return visit.page(
            "lookup.html.j2", {"code": "", "dossier": None, "message": None}, status=400
        )
    if await _enumeration_capped(visit, code):
        return visit.problem("codes_capped", 429)
    dossier = await load_dossier(visit.engine, code)
    if dossier is None:
        return visit.page(
            "lookup.html.j2", {"code": code, "dossier": None, "message": "not_found"}, status=404
        )
    if await visit.guards.locked(visit.address_requester):
        visit.log("citizen proof refused: locked", dossier=code)
        return visit.problem("locked", 429)
    if "gui_ma" in form:
        return await _send_code(visit, dossier)
    typed_otp = form.get("ma_otp")
    if isinstance(typed_otp, str) and typed_otp.strip():
        return await _check_code(visit, dossier, typed_otp.strip())
    four = form.get("so_cuoi")
    if isinstance(four, str) and four.strip():
        return await _check_last_four(visit, dossier, four.strip())
    return dossier_page(visit, dossier, message="proof_missing", status=400)


async def _check_last_four(visit: Visit, dossier: CitizenDossier, typed: str) -> web.Response:
    code = dossier.code
    if await visit.guards.needs_code(code, dossier.phone_e164):
        visit.log(
            "citizen proof refused: a one-time code is needed", dossier=code, proof="last_four"
        )
        return dossier_page(visit, dossier, message="needs_code", status=403)
    digits = "".join(c for c in typed if c.isdigit())
    right = (
        dossier.phone_e164 is not None
        and len(digits) == 4
        and hmac.compare_digest(dossier.phone_e164[-4:].encode(), digits.encode())
    )
    if not right:
        failures = await visit.guards.failed(visit.address_requester, code, dossier.phone_e164)
        visit.log("citizen proof wrong", dossier=code, proof="last_four", failures=failures)
        if failures >= visit.settings.chat.lookup_max_failures:
            return visit.problem("locked", 429)
        return dossier_page(visit, dossier, message="wrong_four", status=403)
    visit.grant(code, "last_four")
    visit.log("citizen proof ok", dossier=code, proof="last_four")
    return see_other(lookup_url(code))


async def _send_code(visit: Visit, dossier: CitizenDossier) -> web.Response:
    codes = OneTimeCodes(visit.engine, visit.settings, lambda: visit.now)
    try:
        sent = await codes.send_for_dossier(visit.code_requester, dossier.code)
    except TooManyCodes as exc:
        visit.log("citizen one-time code refused", dossier=dossier.code, scope=exc.scope)
        minutes = max(1, -(-exc.retry_after_seconds // 60))
        return dossier_page(visit, dossier, message="too_many_codes", status=429, minutes=minutes)
    if sent.notice_id is not None:
        await visit.request.config_dict[QUEUE].offer_notices([(sent.notice_id, "urgent")])
    visit.mark_code_sent(dossier.code)
    visit.log("citizen one-time code asked", dossier=dossier.code, channel=sent.channel)
    return dossier_page(visit, dossier, message="code_sent")


async def _check_code(visit: Visit, dossier: CitizenDossier, typed: str) -> web.Response:
    codes = OneTimeCodes(visit.engine, visit.settings, lambda: visit.now)
    checked = await codes.check(visit.code_requester, typed, dossier_code=dossier.code)
    visit.log("citizen one-time code checked", dossier=dossier.code, outcome=checked.outcome)
    if checked.outcome == "ok":
        visit.grant(dossier.code, "otp")
        return see_other(lookup_url(dossier.code))
    return dossier_page(
        visit,
        dossier,
        message=f"code_{checked.outcome}",
        status=403,
        attempts_left=checked.attempts_left,
    )
