"""What a citizen with an act-level proof does on ``/tra-cuu``: answer, report, rate.

Each form posts the dossier code ``ma`` (and the CSRF token); the session must hold a
proof that may act for that code (``otp``, ``sms_link``; see :mod:`gateway.trust.proofs`),
else a 403 page and nothing is recorded (:func:`acting`, around each handler). A report
or a rating also needs the dossier reported finished or delivered, else a 409 page.

- ``POST /tra-cuu/ket-qua`` (``tra_loi`` = ``da_nhan`` | ``chua_nhan``) answers the result
  check the gateway asked (as the bot records it, with ``answer_channel`` ``web``);
  ``chua_nhan`` opens a false-closure report with source ``result_check``.
- ``POST /tra-cuu/phan-anh`` (``mo_ta``) opens a false-closure report with source ``web``,
  for a dossier reported finished or delivered.
- ``POST /tra-cuu/danh-gia`` (``tien_do``, ``chat_luong``: 1 to 5; ``y_kien`` optional)
  records the rating of the dossier's handling, rater ``phone``, channel ``web``.

A report gets the dossier's phone (the citizen proved it is theirs) and the proof word,
and is acknowledged by SMS too (the report number); while a false-closure report about
the dossier from the web is still open, a second one is not opened: the page shows the
first. Confirmation pages show the report number and the date an answer is due.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from gateway.domain.reports import DESCRIPTION_MAX, OPEN_STATUSES
from gateway.errors import ValidationFailed
from gateway.http.citizen.lookup import CitizenDossier, load_dossier, typed_code
from gateway.http.citizen.visits import PageHandler, Visit, citizen_page
from gateway.http.keys import CALENDAR, QUEUE, TEXTS
from gateway.storage import reports as report_store
from gateway.storage.ratings import record_rating
from gateway.storage.tables import reports, result_checks

routes = web.RouteTableDef()

_ANSWERS = {"da_nhan": True, "chua_nhan": False}
_SCORES = ("1", "2", "3", "4", "5")


Form = Mapping[str, Any]  # the posted fields
ActHandler = Callable[[Visit, Form, CitizenDossier], Awaitable[web.StreamResponse]]


def acting(*, closed: bool) -> Callable[[ActHandler], PageHandler]:
    """A handler given the form and the dossier, called only when the visit may act for
    the posted code and (``closed``) the dossier is finished or delivered; otherwise the
    page refusing the action."""

    def wrap(handler: ActHandler) -> PageHandler:
        async def checked(visit: Visit) -> web.StreamResponse:
            form = await visit.request.post()
            code = typed_code(form.get("ma"))
            # The proof first: a session holds proofs of existing dossiers only, so an
            # unproven visitor learns nothing here about which codes exist (the lookup caps
            # that).
            if not visit.may_act(code):
                visit.log("citizen action refused: no act-level proof", dossier=code)
                return visit.problem("needs_proof", 403, code=code)
            dossier = await load_dossier(visit.engine, code)
            if dossier is None:
                return visit.problem("not_found", 404)
            if closed and not dossier.closed:
                return visit.problem("not_closed", 409, code=dossier.code)
            return await handler(visit, form, dossier)

        return checked

    return wrap


@routes.post("/tra-cuu/ket-qua", name="citizen_result_check")
@citizen_page
@acting(closed=False)
async def answer_result_check(
    visit: Visit, form: Form, dossier: CitizenDossier
) -> web.StreamResponse:
    received = _ANSWERS.get(str(form.get("tra_loi", "")))
    if received is None:
        return visit.problem("invalid", 400, field="tra_loi", code=dossier.code)
    async with visit.engine.begin() as conn:
        updated = await conn.execute(
            result_checks.update()
            .where(
                result_checks.c.dossier_code == dossier.code,
                result_checks.c.state.in_(("asked", "received", "not_received")),
            )
            .values(
                state="received" if received else "not_received",
                answered_at=visit.now,
                answer_channel="web",
            )
        )
    if not updated.rowcount:
        return visit.problem("no_question", 409, code=dossier.code)
    visit.log("citizen result check answered", dossier=dossier.code, received=received)
    if received:
        return visit.page("done.html.j2", {"what": "received", "code": dossier.code})
    return await _report(visit, dossier, source="result_check", description=None)


@routes.post("/tra-cuu/phan-anh", name="citizen_report")
@citizen_page
@acting(closed=True)
async def report_false_closure(
    visit: Visit, form: Form, dossier: CitizenDossier
) -> web.StreamResponse:
    text = " ".join(str(form.get("mo_ta", "")).split())
    if len(text) > DESCRIPTION_MAX:
        return visit.problem("invalid", 400, field="mo_ta", code=dossier.code)
    return await _report(visit, dossier, source="web", description=text or None)


async def _report(
    visit: Visit, dossier: CitizenDossier, *, source: str, description: str | None
) -> web.Response:
    existing = await _open_web_report(visit, dossier.code)
    if existing is not None:
        number, expected_at = existing
        return visit.page(
            "done.html.j2",
            {
                "what": "report",
                "code": dossier.code,
                "number": number,
                "expected_at": expected_at,
                "again": True,
            },
        )
    if description is None:
        texts = visit.request.config_dict[TEXTS]
        description = texts.render("bot/report_default_description.txt.j2", kind="false_closure")
    proof = visit.proof(dossier.code)
    report, notice_ids = await report_store.create_report(
        visit.engine,
        kind="false_closure",
        source=source,
        dossier_code=dossier.code,
        description=description,
        zalo_user_id=None,
        phone_e164=dossier.phone_e164,
        calendar=visit.request.config_dict[CALENDAR],
        answer_working_days=visit.settings.chat.report_answer_working_days,
        now=visit.now,
        acknowledge=True,
        proof=proof,
    )
    await visit.request.config_dict[QUEUE].offer_notices([(i, "urgent") for i in notice_ids])
    visit.log(
        "citizen report opened", dossier=dossier.code, report=report.id, source=source, proof=proof
    )
    return visit.page(
        "done.html.j2",
        {
            "what": "report",
            "code": dossier.code,
            "number": report.number,
            "expected_at": report.expected_at,
            "again": False,
        },
    )


async def _open_web_report(visit: Visit, code: str) -> tuple[str, Any] | None:
    """The open false-closure report a web visitor already made about ``code``."""
    async with visit.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(reports.c.number, reports.c.expected_at)
                .where(
                    reports.c.dossier_code == code,
                    reports.c.kind == "false_closure",
                    reports.c.source.in_(("web", "result_check")),
                    reports.c.zalo_user_id.is_(None),
                    reports.c.status.in_(OPEN_STATUSES),
                )
                .order_by(reports.c.id.desc())
                .limit(1)
            )
        ).first()
    return (row.number, row.expected_at) if row is not None else None


@routes.post("/tra-cuu/danh-gia", name="citizen_rating")
@citizen_page
@acting(closed=True)
async def rate(visit: Visit, form: Form, dossier: CitizenDossier) -> web.StreamResponse:
    scores: dict[str, int] = {}
    for name in ("tien_do", "chat_luong"):
        value = form.get(name)
        if value not in _SCORES:
            return visit.problem("invalid", 400, field=name, code=dossier.code)
        scores[name] = int(str(value))
    comment = " ".join(str(form.get("y_kien", "")).split()) or None
    try:
        await record_rating(
            visit.engine,
            dossier_code=dossier.code,
            channel="web",
            rater="phone",
            progress=scores["tien_do"],
            quality=scores["chat_luong"],
            comment=comment,
            now=visit.now,
        )
    except ValidationFailed:
        return visit.problem("invalid", 400, field="y_kien", code=dossier.code)
    visit.log("citizen rating recorded", dossier=dossier.code, **scores)
    return visit.page("done.html.j2", {"what": "rating", "code": dossier.code})
