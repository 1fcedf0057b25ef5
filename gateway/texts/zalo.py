"""Notices as Zalo sees them: an OA message (text with accents, answer buttons) or the
parameters of a ZNS template.

The OA text comes from ``templates/oa/<kind>.txt.j2`` where one exists, else from the SMS
template with its accents kept and no length budget (an OA message holds 2,000
characters); a notice carrying a staff member's reply (``REPLY_PARAM``) sends that text as
written, with the kind's buttons. ZNS templates are written and approved on Zalo's side;
the gateway offers a fixed set of parameter names (below) and sends the ones a template
declares (never for a notice carrying a reply, which no template can hold).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from jinja2 import TemplateNotFound

from gateway.texts.sms import REPLY_PARAM, notice_context
from gateway.texts.templates import Texts

# What ZNS templates may use, filled from every notice that has the fact.
ZNS_PARAMETERS = (
    "customer_name",
    "dossier_code",
    "procedure_name",
    "agency_name",
    "received_date",
    "due_date",
    "new_due_date",
    "pickup",
    "reason",
    "amount",
    "report_number",
    "status_note",
    "expected_date",
)


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
    }
    return {name: str(value) for name, value in values.items() if value}
