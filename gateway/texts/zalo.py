"""Notices as Zalo sees them: an OA message (text with accents, answer buttons) or the
parameters of a ZNS template.

The OA text comes from ``templates/oa/<kind>.txt.j2`` where one exists, else from the SMS
template with its accents kept and no length budget (an OA message holds 2,000
characters); a notice carrying a staff member's reply (``REPLY_PARAM``) sends that text as
written, with the kind's buttons. ZNS templates are written and approved on Zalo's side;
the gateway offers a fixed set of facts (:data:`ZNS_FACTS`, below) and fills the template
parameters mapped to them (``ZNS_PARAMS_<KIND>``, see :mod:`gateway.delivery.zns_params`),
or named like them; never for a notice carrying a reply, which no template can hold.

Each fact has a kind: ``text`` may be shortened to a parameter's ``maxLength``; ``code``
(a dossier code, a one-time code, a link) is sent whole or not at all; ``date`` is
``dd/mm/yyyy`` in the gateway's time zone, what a ``DATE`` parameter takes; ``number`` is
shown with ``.`` between thousands in a text parameter and sent as bare digits to a
``NUMBER`` parameter (:func:`zns_numbers`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Literal

from jinja2 import TemplateNotFound

from gateway.texts.sms import REPLY_PARAM, notice_context
from gateway.texts.templates import Texts

ZnsFactKind = Literal["text", "code", "date", "number"]

# The facts ZNS templates may use (fact -> kind), filled from every notice that has them;
# the one list ZNS_PARAMS_<KIND> is checked against. ``otp_code`` and ``otp_minutes`` (how
# long the code is valid) are on one-time code notices only, ``link`` (the signed URL of
# the citizen page) on notices that carry one.
ZNS_FACTS: Mapping[str, ZnsFactKind] = {
    "customer_name": "text",
    "dossier_code": "code",
    "procedure_name": "text",
    "agency_name": "text",
    "received_date": "date",
    "due_date": "date",
    "new_due_date": "date",
    "pickup": "text",
    "reason": "text",
    "amount": "number",
    "report_number": "code",
    "status_note": "text",
    "expected_date": "date",
    "otp_code": "code",
    "otp_minutes": "number",
    "link": "code",
}


@dataclass(frozen=True, slots=True)
class OaButton:
    """An ``oa.query.hide`` button: its payload comes back as the citizen's text."""

    title: str
    payload: str


@dataclass(frozen=True, slots=True)
class OaNotice:
    """A notice rendered for the OA."""

    text: str
    buttons: tuple[OaButton, ...] = ()


def render_oa(texts: Texts, kind: str, params: Mapping[str, Any], zone: tzinfo) -> OaNotice:
    """The OA message for a notice; raises ``ValidationFailed`` like the SMS renderer."""
    context = notice_context(kind, params, zone)
    reply = params.get(REPLY_PARAM)
    if isinstance(reply, str) and reply.strip():
        raw = reply
    else:
        try:
            raw = texts.render(f"oa/{kind}.txt.j2", **context)
        except TemplateNotFound:
            raw = " ".join(texts.render(f"sms/{kind}.txt.j2", **context).split())
    text = unicodedata.normalize("NFC", raw.strip())
    return OaNotice(text[:2000], _buttons(texts, kind, context))


def _buttons(texts: Texts, kind: str, context: dict[str, Any]) -> tuple[OaButton, ...]:
    code = context["dossier_code"]
    if kind == "result_check":
        return (
            OaButton(texts.render("oa/button_received.txt.j2").strip(), f"#received {code}"),
            OaButton(
                texts.render("oa/button_not_received.txt.j2").strip(), f"#not_received {code}"
            ),
        )
    if kind == "rating_request":
        # The first of the two scores, progress; the bot then asks the quality with
        # ``#rate_quality <code> <n>`` buttons (bot.router).
        return tuple(OaButton(f"{n} ★", f"#rate {code} {n}") for n in range(5, 0, -1))
    if kind.startswith("report_") or kind in ("invitation", "apology", "auto_apology"):
        return (OaButton(texts.render("oa/button_lookup.txt.j2").strip(), f"#lookup {code}"),)
    return ()


def zns_data(params: Mapping[str, Any], zone: tzinfo) -> dict[str, str]:
    """Every ZNS parameter this notice has a value for, as strings (Zalo wants strings)."""

    def day(name: str) -> str | None:
        value = params.get(name)
        if not value:
            return None
        return datetime.fromisoformat(value).astimezone(zone).strftime("%d/%m/%Y")

    amount = params.get("amount")
    values: dict[str, str | None] = {
        "customer_name": params.get("applicant_name"),
        "dossier_code": params.get("dossier_code"),
        "procedure_name": params.get("procedure_name"),
        "agency_name": params.get("agency_name"),
        "received_date": day("received_at"),
        "due_date": day("due_at"),
        "new_due_date": day("new_due_at"),
        "pickup": params.get("pickup"),
        "reason": params.get("reason"),
        "amount": f"{amount:,}".replace(",", ".") if isinstance(amount, int) else None,
        "report_number": params.get("report_number"),
        "status_note": params.get("status_note"),
        "expected_date": day("expected_at"),
        "otp_code": params.get("otp_code"),
        "otp_minutes": _count(params.get("minutes")),
        "link": params.get("link"),
    }
    return {name: str(value) for name, value in values.items() if value}


def zns_numbers(params: Mapping[str, Any]) -> dict[str, str]:
    """The ``number`` facts as a ``NUMBER`` parameter takes them: bare digits."""
    numbers = {"amount": _count(params.get("amount")), "otp_minutes": _count(params.get("minutes"))}
    return {name: value for name, value in numbers.items() if value is not None}


def _count(value: object) -> str | None:
    """A whole number of 0 or more as bare digits; anything else is absent."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return str(value)
