"""The OpenAPI 3.1 document of the gateway's machine APIs, and its reference page.

``GET /v1/openapi.json`` answers :func:`document`; ``GET /v1/docs`` renders the same
document as one plain HTML page (``templates/api/reference.html.j2``: no JavaScript, no
CDN). Both are public: they describe the contracts, never a secret.

Rules that keep the document truthful:

* It is built in code, from the constants the handlers and validators use (event
  types, report states and limits, audit filters, header names, the batch and body
  limits of these settings), so a changed limit changes the document with it.
* ``tests/http/test_openapi.py`` checks that it is valid OpenAPI 3.1, that its paths and
  methods are exactly the app's routes (outside the console and the citizen page, which
  are HTML for people), and that every example sent for real gets a documented status
  with a body that matches the documented schema.
* The console (``/console/``) and the citizen page (``/tra-cuu``, ``/l/{token}``) are
  Vietnamese HTML with their own sessions and CSRF: not APIs, so not listed. The root
  page ``/`` is, marked as HTML, since it shares the API's address space.
"""

from __future__ import annotations

import json
from typing import Any, Final

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway import __version__
from gateway.domain import reports as workflow
from gateway.domain.codes import DOSSIER_CODE_RE
from gateway.domain.events import EVENT_TYPES
from gateway.domain.sanctions import SANCTIONS_IN_ORDER
from gateway.domain.violations import RULES
from gateway.http import audit, staff
from gateway.http.keys import SETTINGS
from gateway.http.signing import (
    MAX_FUTURE_SECONDS,
    SIGNATURE_HEADER,
    SOURCE_HEADER,
    TIMESTAMP_HEADER,
)
from gateway.settings import DEFAULT_TEMPLATES_DIR, Settings
from gateway.storage.audit_reads import CONSULTATION_STATES
from gateway.storage.statistics import MAX_MONTHS, MONTH_PATTERN

routes = web.RouteTableDef()

OPENAPI_PATH: Final = "/v1/openapi.json"
DOCS_PATH: Final = "/v1/docs"
PROBLEM: Final = "application/problem+json"
# The text limit of every free-text field of an event (gateway.domain.events).
EVENT_TEXT_MAX: Final = 2000
# Tags, in the order the reference page shows them.
TAGS: Final = (
    ("events", "The events API: the one-stop-shop software posts dossier events, signed."),
    ("reports", "The staff API: the hotline's report queue (staff token)."),
    ("handoffs", "The staff API: the OA's 'talk to a person' inbox (staff token)."),
    ("audit", "The audit API: violations ledger, statistics, warnings (auditor, admin)."),
    ("webhooks", "Vendors' callbacks: SMS delivery receipts and Zalo OA events."),
    ("operations", "Probes, metrics, the root page and this document."),
)

# Security requirements: one of the schemes below, or none (public).
Security = list[dict[str, list[str]]]
_SIGNED: Final[Security] = [{"eventSource": []}]
_STAFF: Final[Security] = [{"staffToken": []}]
_OPS: Final[Security] = [{"opsToken": []}]
_OPEN: Final[Security] = []


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(
    properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema | extra


def _text(max_length: int = EVENT_TEXT_MAX, **extra: Any) -> dict[str, Any]:
    """A required text field: not blank, at most ``max_length`` characters once trimmed."""
    return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": r"\S"} | extra


_MOMENT: Final = {
    "type": "string",
    "format": "date-time",
    "description": "RFC 3339 date-time with its UTC offset, e.g. 2024-04-10T09:15:00+07:00",
}
_LOCAL_TIME: Final = _nullable({"type": "string", "format": "date-time"})
_DOSSIER_CODE: Final = {
    "type": "string",
    "pattern": DOSSIER_CODE_RE.pattern.replace(r"\d", "[0-9]"),
    "description": "A dossier code <agency>-<YYMMDD>-<sequence> (Circular 01/2018/TT-VPCP); "
    "the date must exist.",
    "examples": ["000.00.12.H19-240401-0001"],
}
_ID_PATTERN: Final = r"^[0-9]{1,18}$"


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": _ref("Problem")}}}


def _json(description: str, schema: dict[str, Any], **headers: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        answer["headers"] = headers
    return answer


_RETRY_AFTER: Final = {
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
}
_UNAVAILABLE: Final = {
    "description": "The database (or queue) is unavailable; nothing was recorded. Retry later.",
    "headers": _RETRY_AFTER,
    "content": {PROBLEM: {"schema": _ref("Problem")}},
}
_SIGNED_401: Final = _problem(
    "Missing or malformed signature headers, unknown source, a timestamp out of the window, "
    "or a signature that does not match the request"
)
_STAFF_401: Final = _problem("No bearer token, an unknown one, or a disabled user's")
_STAFF_403: Final = _problem("The token's role may not do this")
# A body in a Content-Encoding other than gzip or deflate (or several) is 415; one that is
# not valid data of its encoding is 400; decoded, it is held to MAX_BODY_BYTES (413).
_ENCODING_ERRORS: Final = {
    "400": _problem("The body is not valid data of its Content-Encoding"),
    "413": _problem("The body (decoded) is larger than MAX_BODY_BYTES"),
    "415": _problem("A Content-Encoding other than gzip or deflate"),
}
_BODY_ERRORS: Final = {
    "400": _problem(
        "The body is not valid JSON (or not UTF-8), or not valid data of its Content-Encoding"
    ),
    "413": _problem("The body (decoded) is larger than MAX_BODY_BYTES"),
    "415": _problem(
        "The body is not application/json, or its Content-Encoding is not gzip or deflate"
    ),
}


def _staff_errors(*extra: str) -> dict[str, Any]:
    errors: dict[str, Any] = {"401": _STAFF_401, "403": _STAFF_403}
    notes = {
        "404": _problem("No such resource"),
        "409": _problem("The request contradicts the stored state"),
        "422": _problem("Invalid fields or query parameters, all of them named in errors"),
    }
    for status in extra:
        errors[status] = notes[status]
    errors["503"] = _UNAVAILABLE
    return errors


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    # Every query parser of the gateway reads an empty value as the parameter left out.
    return {
        "name": name,
        "in": "query",
        "required": False,
        "allowEmptyValue": True,
        "description": description,
        "schema": schema,
    }


def _path_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


_ID_PARAM: Final = _path_param("id", "The numeric id", {"type": "string", "pattern": _ID_PATTERN})
_LIMIT: Final = _query(
    "limit",
    f"Page size (default {workflow.LIST_LIMIT_DEFAULT})",
    {"type": "integer", "minimum": 1, "maximum": workflow.LIST_LIMIT_MAX},
)
_AFTER: Final = _query(
    "after",
    "The cursor: pass the previous page's next",
    {"type": "integer", "minimum": 1, "maximum": workflow.ID_MAX},
)
# A local date or an RFC 3339 date-time with its offset (what the query parsers accept).
_DAY_OR_MOMENT: Final = {
    "type": "string",
    "anyOf": [{"format": "date"}, {"format": "date-time"}],
    "examples": ["2026-03-01", "2026-03-01T00:00:00+07:00"],
}
_SINCE: Final = _query(
    "since", "A local date (from its midnight) or a date-time with its offset", _DAY_OR_MOMENT
)
_FORMAT: Final = _query(
    "format",
    "json (default), or csv (UTF-8 with BOM) / xlsx as an attachment of every matching row",
    {"type": "string", "enum": list(audit.FORMATS)},
)
_MONTH: Final = {"type": "string", "pattern": f"^{MONTH_PATTERN}$"}
_MONTH_PARAMS: Final = [
    _query(
        "month",
        "One month (YYYY-MM); or give from and to",
        _MONTH,
    ),
    _query(
        "from",
        "First month of a range (YYYY-MM)",
        _MONTH,
    ),
    _query(
        "to",
        f"Last month of a range (YYYY-MM), at most {MAX_MONTHS} months",
        _MONTH,
    ),
]
_DOWNLOAD: Final = {
    "text/csv": {"schema": {"type": "string"}},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
        "schema": {"type": "string", "contentMediaType": "application/octet-stream"}
    },
}


# --- schemas ------------------------------------------------------------------------------


def _event_schemas() -> dict[str, Any]:
    party = _obj({"code": _text(), "name": _text()}, ("code", "name"))
    person = _obj({"id": _text(), "name": _text(), "unit": _nullable(_text())}, ("id", "name"))
    reason = {"reason": _text()}
    data: dict[str, dict[str, Any]] = {
        "dossier.received": {},
        "dossier.supplement_requested": _obj(
            reason | {"documents": {"type": "array", "minItems": 1, "items": _text()}},
            ("reason", "documents"),
        ),
        "dossier.refused": _obj(reason, ("reason",)),
        "dossier.processing": _obj({"unit": _text()}, ("unit",)),
        "dossier.consultation_requested": _obj(
            {"consultation_id": _text(), "agency": _ref("Party"), "due_at": _MOMENT},
            ("consultation_id", "agency", "due_at"),
        ),
        "dossier.consultation_answered": _obj({"consultation_id": _text()}, ("consultation_id",)),
        "dossier.fees_due": _obj(
            {"amount": {"type": "integer", "minimum": 0, "description": "In đồng"}} | reason,
            ("amount", "reason"),
        ),
        "dossier.paused": _obj(reason, ("reason",)),
        "dossier.resumed": {},
        "dossier.withdrawn": _obj({"approved_by": _nullable(_ref("Person"))}),
        "dossier.delayed": _obj(
            {"new_due_at": _MOMENT | {"description": "Later than occurred_at"}} | reason,
            ("new_due_at", "reason"),
        ),
        "dossier.finished": _obj(
            {"pickup": _text(), "delivery": {"type": "string", "enum": ["post", "online"]}},
            description="Either pickup (where to collect the result) or delivery, not both",
            oneOf=[
                {"required": ["pickup"], "not": {"required": ["delivery"]}},
                {"required": ["delivery"], "not": {"required": ["pickup"]}},
            ],
        ),
        "dossier.delivered": {},
    }
    schemas: dict[str, Any] = {"Party": party, "Person": person}
    variants = []
    for name, spec in EVENT_TYPES.items():
        receipt = name == "dossier.received"
        schema_name = "Event_" + name.removeprefix("dossier.")
        required = ["id", "type", "occurred_at", "dossier"]
        if name in {"dossier.received", "dossier.finished", "dossier.withdrawn"}:
            required.append("actor")
        event_data = data[name] or {"type": ["object", "null"], "description": "Not read"}
        if data[name].get("required") or data[name].get("oneOf"):
            required.append("data")
        notice = f"notice `{spec.notice_kind}`" if spec.notice_kind else "no notice"
        schemas[schema_name] = _obj(
            {
                "type": {"const": name},
                "dossier": _ref("DossierReceived" if receipt else "DossierRef"),
                "data": event_data,
            },
            tuple(required),
            allOf=[_ref("EventCommon")],
            description=f"DVCQG status {spec.dvcqg_status}, state `{spec.state}`, {notice}",
        )
        variants.append(_ref(schema_name))
    common = _obj(
        {
            "id": {
                "type": "string",
                "pattern": r"^[\x21-\x7e]{1,128}$",
                "description": "Unique per source: the idempotency key is (X-Source-Id, id)",
            },
            "type": {"type": "string", "enum": list(EVENT_TYPES)},
            "occurred_at": _MOMENT,
            "actor": _nullable(_ref("Person")),
        }
    )
    applicant = _obj(
        {
            "name": _nullable(_text()),
            "phone": _nullable(
                {"type": "string", "description": "As typed; never a reason to refuse the event"}
            ),
        }
    )
    # Optional text is read as absent when blank, as the parser does.
    blank = {"type": "string", "pattern": r"^\s*$"}
    dossier_props = {
        "code": _DOSSIER_CODE,
        "procedure": _nullable(_ref("Party")),
        "agency": _nullable(_ref("Party")),
        "applicant": _nullable(applicant),
        "received_at": {"anyOf": [_MOMENT, {"type": "null"}, blank]},
        "due_at": {
            "anyOf": [_MOMENT, {"type": "null"}, blank],
            "description": "Later than received_at",
        },
    }
    schemas["DossierRef"] = _obj(dossier_props, ("code",))
    schemas["DossierReceived"] = _obj(
        dossier_props
        | {
            "procedure": _ref("Party"),
            "agency": _ref("Party"),
            "applicant": applicant | {"required": ["name"]},
            "received_at": _MOMENT,
            "due_at": _MOMENT | {"description": "Later than received_at"},
        },
        ("code", "procedure", "agency", "applicant", "received_at", "due_at"),
    )
    schemas["EventCommon"] = common
    schemas["Event"] = {
        "oneOf": variants,
        "discriminator": {
            "propertyName": "type",
            "mapping": {
                name: f"#/components/schemas/Event_{name.removeprefix('dossier.')}"
                for name in EVENT_TYPES
            },
        },
    }
    return schemas


def _answer_schemas(settings: Settings) -> dict[str, Any]:
    notice = _obj(
        {
            "id": {"type": "string"},
            "kind": {"type": "string"},
            "channel": _nullable({"type": "string"}),
            "state": {"type": "string", "enum": ["created", "no_recipient"]},
            "duplicate": {"type": "boolean"},
        },
        ("id", "kind", "channel", "state"),
    )
    accepted = _obj(
        {
            "id": {"type": "string"},
            "status": {"const": "accepted"},
            "dossier": _obj(
                {
                    "code": {"type": "string"},
                    "state": {"type": "string"},
                    "dvcqg_status": {"type": "integer"},
                    "due_at": _LOCAL_TIME,
                },
                ("code", "state", "dvcqg_status", "due_at"),
            ),
            "superseded": {"type": "boolean"},
            "notices": {"type": "array", "items": notice},
            "flags": {
                "type": "array",
                "items": _obj(
                    {"rule": {"type": "string"}, "detail": {"type": "string"}}, ("rule", "detail")
                ),
            },
        },
        ("id", "status", "dossier", "superseded", "notices", "flags"),
    )
    item = _obj(
        {
            "index": {"type": "integer", "minimum": 0},
            "id": {"description": "The item's id as sent (null when it had none)"},
            "status": {"type": "integer", "enum": [200, 202, 409, 422, 503]},
            "replayed": {"const": True},
            "answer": _ref("EventAccepted"),
            "problem": _ref("Problem"),
        },
        ("index", "id", "status"),
    )
    count = {"type": "integer", "minimum": 0}
    return {
        "EventAccepted": accepted,
        "Batch": _obj(
            {
                "events": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": settings.max_batch_events,
                    "items": {
                        "description": "An event, validated item by item",
                        "anyOf": [_ref("Event"), {}],
                    },
                }
            },
            ("events",),
        ),
        "BatchAnswer": _obj(
            {
                "results": {"type": "array", "items": item},
                "accepted": count,
                "replayed": count,
                "rejected": count,
            },
            ("results", "accepted", "replayed", "rejected"),
        ),
        "DossierView": _obj(
            {
                "code": {"type": "string"},
                "state": {"type": "string"},
                "dvcqg_status": {"type": "integer"},
                "due_at": _LOCAL_TIME,
                "original_due_at": _LOCAL_TIME,
                "deadline": {"type": "object"},
                "timeline": {"type": "array", "items": {"type": "object"}},
                "flags": {"type": "array", "items": {"type": "object"}},
                "notices": {"type": "array", "items": {"type": "object"}},
                "consultations": {"type": "array", "items": {"type": "object"}},
                "reports": {"type": "array", "items": {"type": "object"}},
            },
            ("code", "state", "dvcqg_status", "due_at", "timeline", "flags", "notices"),
            description="The dossier, its timeline, flags, notices, consultations and "
            "reports; times in TIME_ZONE",
        ),
        "PauseCheck": _obj({"dossier": _DOSSIER_CODE}, ("dossier",)),
        "PauseAnswer": _obj(
            {
                "dossier": {"type": "string"},
                "allowed": {"type": "boolean"},
                "reason": _nullable(
                    {
                        "type": "string",
                        "enum": ["consultation_pending", "dossier_closed", "already_paused"],
                    }
                ),
                "pending": {"type": "array"},
                "message": {"type": "string", "description": "Vietnamese, for the clerk"},
            },
            ("dossier", "allowed", "reason", "pending", "message"),
        ),
    }


def _staff_schemas() -> dict[str, Any]:
    named = _nullable(_obj({"id": {"type": "string"}, "name": {"type": "string"}}))
    report = _obj(
        {
            "id": {"type": "integer"},
            "service_request_id": {"type": "string"},
            "status": {"type": "string", "enum": list(workflow.STATUSES)},
            "status_notes": _nullable({"type": "string"}),
            "agency_responsible": _nullable({"type": "string"}),
            "agency_code": _nullable({"type": "string"}),
            "requested_datetime": _LOCAL_TIME,
            "updated_datetime": _LOCAL_TIME,
            "expected_datetime": _LOCAL_TIME,
            "kind": {"type": "string", "enum": list(workflow.KINDS)},
            "finding": _nullable({"type": "string", "enum": list(workflow.FINDINGS)}),
            "source": {"type": "string", "enum": list(workflow.SOURCES)},
            "proof": _nullable(
                {"type": "string", "enum": ["otp", "proven_phone", "sms_link", "staff"]}
            ),
            "dossier_code": {"type": "string"},
            "description": {"type": "string"},
            "officer": named,
            "phone": _nullable({"type": "string", "description": "E.164; masked for auditors"}),
            "zalo_user_id": _nullable({"type": "string", "description": "null for auditors"}),
        },
        ("id", "service_request_id", "status", "kind", "source", "dossier_code", "phone"),
    )
    handoff = _obj(
        {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": list(workflow.HANDOFF_STATUSES)},
            "user_id": {"type": "string"},
            "display_name": _nullable({"type": "string"}),
            "phone": _nullable({"type": "string", "description": "Set once proven on the OA"}),
            "dossier_code": _nullable({"type": "string"}),
            "opened_at": _LOCAL_TIME,
            "closed_at": _LOCAL_TIME,
        },
        ("id", "status", "user_id", "phone", "opened_at"),
    )
    message = _obj(
        {
            "id": {"type": "integer"},
            "direction": {"type": "string", "enum": ["in", "bot", "staff", "notice"]},
            "text": _nullable({"type": "string"}),
            "sent": _nullable({"type": "boolean"}),
            "created_at": _LOCAL_TIME,
        },
        ("id", "direction", "text", "created_at"),
    )
    return {
        "Report": report,
        "ReportList": _obj(
            {
                "reports": {"type": "array", "items": _ref("Report")},
                "next": _nullable({"type": "string", "description": "The next page's path"}),
            },
            ("reports", "next"),
        ),
        "ReportDetail": {
            "allOf": [_ref("Report")],
            "type": "object",
            "properties": {
                "transitions": {"type": "array", "items": {"type": "object"}},
                "dossier": _nullable({"type": "object"}),
                "messages": {"type": "array", "items": _ref("Message")},
                "notices": {"type": "array", "items": {"type": "object"}},
            },
            "required": ["transitions", "dossier", "messages", "notices"],
        },
        "NewReport": _obj(
            {
                "dossier": _DOSSIER_CODE,
                "kind": {"type": "string", "enum": list(workflow.KINDS)},
                "description": _text(workflow.DESCRIPTION_MAX),
                "phone": _text(64, description="A usable Vietnamese mobile number"),
                "agency_code": _text(workflow.AGENCY_MAX),
                "agency_name": _text(workflow.AGENCY_NAME_MAX),
            },
            ("dossier", "kind", "description", "phone"),
        ),
        "Transition": _obj(
            {
                "to": {"type": "string", "enum": list(workflow.STATUSES)},
                "note": _text(workflow.NOTE_MAX, description="Required for resolved, rejected"),
                "finding": {"type": "string", "enum": list(workflow.FINDINGS)},
                "reply": _text(workflow.REPLY_MAX, description="Replaces the templated text"),
            },
            ("to",),
            # Closing needs a note: the citizen reads it.
            **{
                "if": {
                    "properties": {"to": {"enum": sorted(workflow.NOTE_REQUIRED)}},
                    "required": ["to"],
                },
                "then": {"required": ["note"]},
            },
        ),
        "Handoff": handoff,
        "HandoffList": _obj(
            {"handoffs": {"type": "array", "items": _ref("Handoff")}}, ("handoffs",)
        ),
        "HandoffDetail": {
            "allOf": [_ref("Handoff")],
            "type": "object",
            "properties": {"messages": {"type": "array", "items": _ref("Message")}},
            "required": ["messages"],
        },
        "Message": message,
        "Reply": _obj({"text": _text(workflow.NOTE_MAX)}, ("text",)),
        "ReplyQueued": _obj(
            {"id": {"type": "integer"}, "state": {"const": "queued"}}, ("id", "state")
        ),
    }


def _audit_schemas() -> dict[str, Any]:
    violation = _obj(
        {
            "id": {"type": "integer"},
            "rule": {"type": "string", "enum": sorted(RULES)},
            "dossier": {"type": "string"},
            "officer": _nullable(_obj({"id": {"type": "string"}, "name": {"type": "string"}})),
            "agency": _obj(
                {"code": _nullable({"type": "string"}), "name": _nullable({"type": "string"})}
            ),
            "occurred_at": _LOCAL_TIME,
            "detected_at": _LOCAL_TIME,
            "evidence": {"type": "array", "items": {"type": "string"}},
            "status": {"type": "string", "enum": list(audit.VIOLATION_STATUSES)},
            "suggestion": _nullable({"type": "object"}),
        },
        ("id", "rule", "dossier", "officer", "agency", "evidence", "status", "suggestion"),
    )
    items = {"type": "array", "items": {"type": "object"}}
    return {
        "Violation": violation,
        "ViolationDetail": {
            "allOf": [_ref("Violation")],
            "type": "object",
            "properties": {"decisions": items},
            "required": ["decisions"],
        },
        "ViolationList": _obj(
            {
                "items": {"type": "array", "items": _ref("Violation")},
                "next": _nullable({"type": "string", "description": "Pass back as after="}),
            },
            ("items", "next"),
        ),
        "Decision": _obj(
            {
                "decision": {"type": "string", "enum": list(audit.DECISIONS)},
                "sanction": {
                    "type": "string",
                    "enum": list(SANCTIONS_IN_ORDER),
                    "description": "Required to apply, left out to dismiss",
                },
                "note": {
                    "type": "string",
                    "maxLength": audit.NOTE_MAX,
                    "description": "Required to dismiss",
                },
            },
            ("decision",),
            oneOf=[
                {"properties": {"decision": {"const": "applied"}}, "required": ["sanction"]},
                {
                    "properties": {
                        "decision": {"const": "dismissed"},
                        "note": _text(audit.NOTE_MAX),
                    },
                    "required": ["note"],
                    "not": {"required": ["sanction"]},
                },
            ],
        ),
        "Statistics": _obj(
            {
                "from": {"type": "string"},
                "to": {"type": "string"},
                "threshold": {"type": "number"},
                "items": items,
            },
            ("from", "to", "threshold", "items"),
        ),
        "ConsultationList": _obj({"items": items, "next": {"type": "null"}}, ("items", "next")),
        "Warnings": _obj({"due_soon": items, "undelivered": items}, ("due_soon", "undelivered")),
    }


def _common_schemas() -> dict[str, Any]:
    return {
        "FieldError": _obj(
            {
                "field": {
                    "type": "string",
                    "description": "Dotted path, e.g. dossier.due_at or events[3].data",
                },
                "message": {"type": "string"},
            },
            ("field", "message"),
        ),
        "Problem": _obj(
            {
                "type": {"type": "string", "pattern": "^urn:tthc:problem:[a-z0-9-]+$"},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
                "instance": {"type": "string", "description": "The path (secrets redacted)"},
                "errors": {
                    "type": "array",
                    "items": _ref("FieldError"),
                    "description": "On 422 only: every faulty field",
                },
            },
            ("type", "title", "status", "detail", "instance"),
            description="RFC 9457 problem details; type urn:tthc:problem:<slug>",
        ),
        "Status": _obj({"status": {"type": "string"}}, ("status",)),
        "Readiness": _obj(
            {
                "status": {"type": "string", "enum": ["ok", "unavailable", "ready", "not ready"]},
                "checks": _obj({"database": {"type": "string"}, "redis": {"type": "string"}}),
                "alerts": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            ("status",),
        ),
    }


# --- operations ---------------------------------------------------------------------------


_EVENT_EXAMPLE: Final = {
    "id": "evt-000.00.12.H19-240401-0001-1",
    "type": "dossier.received",
    "occurred_at": "2024-04-01T08:05:00+07:00",
    "dossier": {
        "code": "000.00.12.H19-240401-0001",
        "procedure": {"code": "1.004227", "name": "Cấp giấy phép xây dựng"},
        "agency": {"code": "000.00.12.H19", "name": "Sở Xây dựng"},
        "applicant": {"name": "Nguyễn Văn An", "phone": "0912 345 678"},
        "received_at": "2024-04-01T08:05:00+07:00",
        "due_at": "2024-04-12T17:00:00+07:00",
    },
    "actor": {"id": "cc-0123", "name": "Trần Thị Bình", "unit": "Bộ phận một cửa"},
}


def _op(
    tag: str,
    summary: str,
    responses: dict[str, Any],
    *,
    security: Security,
    description: str = "",
    body: dict[str, Any] | None = None,
    example: Any = None,
    parameters: list[dict[str, Any]] | None = None,
    roles: tuple[str, ...] = (),
) -> dict[str, Any]:
    operation: dict[str, Any] = {"tags": [tag], "summary": summary}
    if roles:
        note = f"Roles: {', '.join(roles)}."
        description = f"{description}\n\n{note}" if description else note
        operation["x-roles"] = list(roles)
    if description:
        operation["description"] = description
    operation["operationId"] = summary.lower().replace(" ", "_").replace("'", "")
    operation["security"] = security
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        media: dict[str, Any] = {"schema": body}
        if example is not None:
            media["example"] = example
        operation["requestBody"] = {"required": True, "content": {"application/json": media}}
    # In status order, as the reference page lists them.
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def _events_paths(settings: Settings) -> dict[str, Any]:
    signed_body_errors = {**_BODY_ERRORS, "401": _SIGNED_401}
    replayed = {
        "Idempotent-Replayed": {"description": "true on a replay", "schema": {"const": "true"}}
    }
    return {
        "/v1/events": {
            "post": _op(
                "events",
                "Post one event",
                {
                    "202": _json("Accepted and recorded", _ref("EventAccepted")),
                    "200": _json(
                        "The same event again: the first answer, replayed",
                        _ref("EventAccepted"),
                        **replayed,
                    ),
                    **signed_body_errors,
                    "409": _problem("The id was already used with another body"),
                    "422": _problem("Invalid fields, all of them named in errors"),
                    "503": _UNAVAILABLE,
                },
                security=_SIGNED,
                description="A dossier status change. An event older than the dossier's "
                "state is recorded with superseded: true and sends no notice.",
                body=_ref("Event"),
                example=_EVENT_EXAMPLE,
            )
        },
        "/v1/events/batch": {
            "post": _op(
                "events",
                "Post a batch of events",
                {
                    "200": _json(
                        "Answered item by item: each status is what POST /v1/events "
                        "would have answered",
                        _ref("BatchAnswer"),
                    ),
                    **signed_body_errors,
                    "422": _problem("events is missing, empty or too long"),
                },
                security=_SIGNED,
                description=f"Up to MAX_BATCH_EVENTS ({settings.max_batch_events}) events; an "
                "invalid item's problem names its fields as events[3].data.reason.",
                body=_ref("Batch"),
                example={"events": [_EVENT_EXAMPLE]},
            )
        },
        "/v1/dossiers/{code}": {
            "get": _op(
                "events",
                "Read a dossier",
                {
                    "200": _json("The dossier", _ref("DossierView")),
                    "401": _SIGNED_401,
                    "404": _problem("The gateway knows no such dossier"),
                    "422": _problem("code is not a dossier code"),
                    "503": _UNAVAILABLE,
                },
                security=_SIGNED,
                description="Signed with an empty body; the signature binds the path "
                "and query as sent.",
                parameters=[_path_param("code", "The dossier code", _DOSSIER_CODE)],
            )
        },
        "/v1/checks/pause": {
            "post": _op(
                "events",
                "Check whether a dossier may be paused",
                {
                    "200": _json(
                        "The verdict and the Vietnamese sentence for the clerk", _ref("PauseAnswer")
                    ),
                    **signed_body_errors,
                    "404": _problem("The gateway knows no such dossier"),
                    "422": _problem("dossier is missing or not a dossier code"),
                    "503": _UNAVAILABLE,
                },
                security=_SIGNED,
                body=_ref("PauseCheck"),
                example={"dossier": "000.00.12.H19-240401-0001"},
            )
        },
    }


def _staff_paths() -> dict[str, Any]:
    readers, writers = staff.READERS, staff.WRITERS
    # MAX_BODY_BYTES holds for every body of the app (413), not only events.
    body_errors = _BODY_ERRORS
    return {
        "/v1/reports": {
            "get": _op(
                "reports",
                "List reports",
                {
                    "200": _json("One page, oldest first", _ref("ReportList")),
                    **_staff_errors("422"),
                },
                security=_STAFF,
                description="Auditors see phones masked and no OA user ids.",
                parameters=[
                    _query(
                        "status",
                        "One or more states, comma-separated or repeated",
                        {"type": "string", "examples": ["open,in_progress"]},
                    ),
                    _query(
                        "agency",
                        "An agency code",
                        {"type": "string", "maxLength": workflow.AGENCY_MAX},
                    ),
                    _SINCE,
                    _LIMIT,
                    _AFTER,
                ],
                roles=readers,
            ),
            "post": _op(
                "reports",
                "Take a report by phone",
                {
                    "201": _json(
                        "The report",
                        _ref("Report"),
                        Location={"description": "/v1/reports/{id}", "schema": {"type": "string"}},
                    ),
                    **body_errors,
                    **_staff_errors("422"),
                },
                security=_STAFF,
                description="The dossier must be known, unless agency_code or agency_name "
                "is given. Its proof is staff.",
                body=_ref("NewReport"),
                example={
                    "dossier": "000.00.12.H19-260401-0001",
                    "kind": "false_closure",
                    "description": "Hồ sơ báo đã trả nhưng tôi chưa nhận được giấy phép.",
                    "phone": "0912 345 678",
                },
                roles=writers,
            ),
        },
        "/v1/reports/{id}": {
            "get": _op(
                "reports",
                "Read a report",
                {
                    "200": _json(
                        "The report, its transitions, dossier, messages and notices",
                        _ref("ReportDetail"),
                    ),
                    **_staff_errors("404"),
                },
                security=_STAFF,
                parameters=[_ID_PARAM],
                roles=readers,
            )
        },
        "/v1/reports/{id}/transitions": {
            "post": _op(
                "reports",
                "Move a report",
                {
                    "200": _json("The report", _ref("Report")),
                    **body_errors,
                    **_staff_errors("404", "409", "422"),
                },
                security=_STAFF,
                description="A move the workflow refuses is 409; only an admin reopens a "
                "final report (403 otherwise). finding applies to false_closure reports.",
                body=_ref("Transition"),
                example={"to": "in_progress", "note": "Đã chuyển Sở Xây dựng kiểm tra"},
                parameters=[_ID_PARAM],
                roles=writers,
            )
        },
        "/v1/handoffs": {
            "get": _op(
                "handoffs",
                "List handoffs",
                {
                    "200": _json("Latest activity first", _ref("HandoffList")),
                    **_staff_errors("422"),
                },
                security=_STAFF,
                parameters=[
                    _query(
                        "status",
                        "open (default) or closed",
                        {"type": "string", "enum": list(workflow.HANDOFF_STATUSES)},
                    ),
                    _LIMIT,
                ],
                roles=writers,
            )
        },
        "/v1/handoffs/{id}": {
            "get": _op(
                "handoffs",
                "Read a handoff",
                {
                    "200": _json("The handoff and its messages", _ref("HandoffDetail")),
                    **_staff_errors("404"),
                },
                security=_STAFF,
                description="Each reading is recorded in the staff audit log.",
                parameters=[_ID_PARAM],
                roles=writers,
            )
        },
        "/v1/handoffs/{id}/replies": {
            "post": _op(
                "handoffs",
                "Reply to a citizen",
                {
                    "202": _json("Stored and queued on the chat lane", _ref("ReplyQueued")),
                    **body_errors,
                    **_staff_errors("404", "409", "422"),
                },
                security=_STAFF,
                description="A closed handoff is 409. When the chat queue is unreachable "
                "the reply is withdrawn (503): send it again.",
                body=_ref("Reply"),
                example={"text": "Chào anh, em là Hoa."},
                parameters=[_ID_PARAM],
                roles=writers,
            )
        },
        "/v1/handoffs/{id}/close": {
            "post": _op(
                "handoffs",
                "Close a handoff",
                {"200": _json("The handoff", _ref("Handoff")), **_staff_errors("404")},
                security=_STAFF,
                description="Closing it again changes nothing.",
                parameters=[_ID_PARAM],
                roles=writers,
            )
        },
    }


def _audit_paths() -> dict[str, Any]:
    roles = audit.AUDITORS
    text = {"type": "string", "maxLength": audit.TEXT_MAX}

    def listing(
        summary: str, schema: str, parameters: list[dict[str, Any]], description: str = ""
    ) -> dict[str, Any]:
        answer = _json("The list (or, with format, an attachment)", _ref(schema))
        answer["content"] |= _DOWNLOAD
        return {
            "get": _op(
                "audit",
                summary,
                {"200": answer, **_staff_errors("422")},
                security=_STAFF,
                parameters=[*parameters, _FORMAT],
                description=description,
                roles=roles,
            )
        }

    return {
        "/v1/audit/violations": listing(
            "List violations",
            "ViolationList",
            [
                _query("officer", "An officer id", text),
                _query("agency", "An agency code", {"type": "string", "maxLength": 32}),
                _query("rule", "A rule id", {"type": "string", "enum": sorted(RULES)}),
                _query("dossier", "A dossier code", _DOSSIER_CODE),
                _query(
                    "status",
                    "open, applied or dismissed",
                    {"type": "string", "enum": list(audit.VIOLATION_STATUSES)},
                ),
                _SINCE,
                _query("until", "A local date (that day included) or a date-time", _DAY_OR_MOMENT),
                _query(
                    "limit",
                    f"Page size (default {audit.LIMIT_DEFAULT})",
                    {"type": "integer", "minimum": 1, "maximum": audit.LIMIT_MAX},
                ),
                _AFTER,
            ],
            "Hotline officers get 403 on every /v1/audit route.",
        ),
        "/v1/audit/violations/{id}": {
            "get": _op(
                "audit",
                "Read a violation",
                {
                    "200": _json(
                        "The entry and its decisions, oldest first", _ref("ViolationDetail")
                    ),
                    **_staff_errors("404"),
                },
                security=_STAFF,
                parameters=[_ID_PARAM],
                roles=roles,
            )
        },
        "/v1/audit/violations/{id}/decisions": {
            "post": _op(
                "audit",
                "Decide on a violation",
                {
                    "201": _json("The violation as it now stands", _ref("Violation")),
                    **_BODY_ERRORS,
                    **_staff_errors("404", "422"),
                },
                security=_STAFF,
                description="Appended, never updated: a later decision is a correction.",
                body=_ref("Decision"),
                example={"decision": "dismissed", "note": "Đã xác minh, không vi phạm"},
                parameters=[_ID_PARAM],
                roles=roles,
            )
        },
        "/v1/audit/agencies": listing("Statistics by agency", "Statistics", _MONTH_PARAMS),
        "/v1/audit/officers": listing("Statistics by officer", "Statistics", _MONTH_PARAMS),
        "/v1/audit/consultations": listing(
            "List consultations",
            "ConsultationList",
            [
                {
                    **_query(
                        "state",
                        "Which consultations",
                        {"type": "string", "enum": list(CONSULTATION_STATES)},
                    ),
                    "required": True,
                },
                _query(
                    "agency", "The consulted agency's code", {"type": "string", "maxLength": 32}
                ),
                _query(
                    "limit",
                    "At most this many (default 500)",
                    {"type": "integer", "minimum": 1, "maximum": 5000},
                ),
            ],
        ),
        "/v1/audit/warnings": listing("Early warnings", "Warnings", []),
    }


def _other_paths() -> dict[str, Any]:
    html = {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}
    ops_401 = _problem("A wrong operations token")
    return {
        "/": {
            "get": _op(
                "operations",
                "Root page",
                {"200": html},
                security=_OPEN,
                description="An HTML page for operators (Vietnamese), not an API.",
            )
        },
        "/healthz": {
            "get": _op(
                "operations",
                "Liveness",
                {"200": _json("The process is alive", _ref("Status"))},
                security=_OPEN,
            )
        },
        "/readyz": {
            "get": _op(
                "operations",
                "Readiness",
                {
                    "200": _json("Ready", _ref("Readiness")),
                    "503": _json(
                        "Not ready (with the ops token: which check failed)", _ref("Readiness")
                    ),
                    "401": ops_401,
                },
                security=[{}, *_OPS],
                description="Without a token only ok/unavailable; with the ops token the "
                "checks and operator alerts.",
            )
        },
        "/metrics": {
            "get": _op(
                "operations",
                "Prometheus metrics",
                {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _problem("No ops token, or a wrong one"),
                    "404": _problem("OPS_TOKEN is unset: metrics are off"),
                },
                security=_OPS,
            )
        },
        OPENAPI_PATH: {
            "get": _op(
                "operations",
                "This document",
                {"200": _json("OpenAPI 3.1", {"type": "object"})},
                security=_OPEN,
            )
        },
        DOCS_PATH: {
            "get": _op(
                "operations",
                "The reference page",
                {"200": html},
                security=_OPEN,
                description="This document as one HTML page.",
            )
        },
        "/webhooks/sms/{provider}/{secret}": {
            method: _op(
                "webhooks",
                f"SMS delivery receipt ({method.upper()})",
                {
                    "200": _json(
                        "Recorded (unknown messages are counted, not retried)",
                        _obj(
                            {"received": {"type": "integer"}, "unmatched": {"type": "integer"}},
                            ("received", "unmatched"),
                        ),
                    ),
                    "401": _problem("Not the receipt secret"),
                    "404": _problem("No such SMS provider is configured"),
                    "503": _UNAVAILABLE,
                    **(_ENCODING_ERRORS if method == "post" else {}),
                },
                security=_OPEN,
                description="The vendor calls the address it was given; the path secret "
                "(SMS_WEBHOOK_SECRET) is what lets it in. Fields are the vendor's own. "
                "Other methods are 405.",
                parameters=[
                    _path_param("provider", "The SMS provider's name", {"type": "string"}),
                    _path_param("secret", "SMS_WEBHOOK_SECRET", {"type": "string"}),
                ],
            )
            for method in ("get", "post")
        },
        "/webhooks/zalo": {
            "post": _op(
                "webhooks",
                "Zalo OA event",
                {
                    "200": _json(
                        "queued, duplicate or ignored",
                        _obj(
                            {
                                "status": {
                                    "type": "string",
                                    "enum": ["queued", "duplicate", "ignored"],
                                }
                            },
                            ("status",),
                        ),
                    ),
                    "401": _problem("Bad X-ZEvent-Signature, another app, or a stale event"),
                    "404": _problem("Zalo is not configured on this gateway"),
                    **_ENCODING_ERRORS,
                    "400": _problem(
                        "The body is not a JSON object Zalo would send, or not valid data "
                        "of its Content-Encoding"
                    ),
                    "503": _UNAVAILABLE,
                },
                security=[{"zaloSignature": []}],
                description="Zalo's webhook, signed by Zalo with the OA secret key.",
                body=_obj(
                    {
                        "app_id": _text(64),
                        "event_name": _text(64),
                        "timestamp": {"type": "string", "pattern": "^[0-9]{1,15}$"},
                    },
                    ("app_id", "event_name", "timestamp"),
                    description="Zalo's event payload; the other fields are Zalo's own",
                ),
            )
        },
    }


def document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of this gateway, with these settings' limits."""
    signing = (
        f"Three headers: `{SOURCE_HEADER}` (a source id of EVENT_SOURCES), "
        f"`{TIMESTAMP_HEADER}` (unix seconds, ASCII digits) and `{SIGNATURE_HEADER}: "
        "v2=<hex HMAC-SHA256(secret of that source, signing string)>`, where the signing "
        "string is `<X-Timestamp>.<METHOD>.<path and query>.<raw body>`: the request target "
        "exactly as sent (percent-encoding and query included, no host), and the body as "
        "sent (empty for a GET). Example: `1712109600.GET./v1/dossiers/000.00.12.H19-"
        f"240401-0001.`. A timestamp more than CLOCK_SKEW_SECONDS ({settings.clock_skew_seconds}) "
        f"old or {MAX_FUTURE_SECONDS} s ahead is refused. The first form, `sha256=<hex "
        'HMAC-SHA256(secret, "<X-Timestamp>.<raw body>")>`, is accepted for POST only while '
        "ACCEPT_V1_SIGNATURES is on."
    )
    schemas = (
        _common_schemas()
        | _event_schemas()
        | _answer_schemas(settings)
        | _staff_schemas()
        | _audit_schemas()
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tthc-gateway",
            "version": __version__,
            "summary": "Notification gateway and Zalo OA chatbot of a one-stop-shop system",
            "description": "Every error is application/problem+json (RFC 9457) with type "
            "urn:tthc:problem:<slug>, and on 422 errors: [{field, message}] naming every "
            "faulty field. Times are answered in TIME_ZONE. The console (/console/) and "
            "the citizen page (/tra-cuu, /l/{token}) are HTML for people, not APIs.",
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "paths": (_events_paths(settings) | _staff_paths() | _audit_paths() | _other_paths()),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "eventSource": {
                    "type": "apiKey",
                    "in": "header",
                    "name": SIGNATURE_HEADER,
                    "description": signing,
                },
                "staffToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal token (tthc_…) from `tthc user add`; the "
                    "user's role (hotline, auditor, admin) decides what it may do.",
                },
                "opsToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "OPS_TOKEN, for operators and Prometheus.",
                },
                "zaloSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-ZEvent-Signature",
                    "description": "mac=<hex SHA-256 of app_id + raw body + timestamp + OA "
                    "secret key>, as Zalo signs its webhooks (ZALO_OA_SECRET_KEY).",
                },
            },
        },
    }


# --- routes -------------------------------------------------------------------------------


@routes.get(OPENAPI_PATH)
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document(request.app[SETTINGS]))


@routes.get(DOCS_PATH)
async def reference_page(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    env = Environment(
        # An operator's TEMPLATES_DIR may predate the page: fall back to the shipped one.
        loader=FileSystemLoader([settings.templates_dir, DEFAULT_TEMPLATES_DIR]),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty"] = lambda value: json.dumps(value, ensure_ascii=False, indent=2)
    spec = document(settings)
    page = env.get_template("api/reference.html.j2").render(
        spec=spec, operations=_operations_by_tag(spec)
    )
    return web.Response(text=page, content_type="text/html", charset="utf-8")


def _operations_by_tag(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """[{"name", "description", "operations": [{"method", "path", "op"}]}] in TAGS order."""
    groups = [
        {"name": tag["name"], "description": tag["description"], "operations": []}
        for tag in spec["tags"]
    ]
    by_name = {group["name"]: group for group in groups}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            by_name[operation["tags"][0]]["operations"].append(
                {"method": method.upper(), "path": path, "op": operation}
            )
    return groups
