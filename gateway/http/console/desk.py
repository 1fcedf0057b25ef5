"""The auditors' desk in the console: the violations ledger with its decisions, the
monthly agency table, and their CSV/XLSX exports.

Everything is read and written through the same storage calls as the audit API
(``/v1/audit/*``); filters are parsed by the API's own parser, so a page, its export and
the API always agree. Every decision and every export is in the staff audit log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from gateway.audit import exports
from gateway.domain import violations as violation_rules
from gateway.domain.sanctions import SANCTIONS, SANCTIONS_IN_ORDER
from gateway.domain.violations import RULES
from gateway.errors import FieldError, NotFound, ValidationFailed
from gateway.http.audit import (
    AUDITORS,
    EXPORT_PAGE,
    parse_decision,
    parse_violation_query,
    violationjson_answer,
)
from gateway.http.console.auth import current_user, now_of, page
from gateway.http.keys import DATABASE, SETTINGS
from gateway.storage import audit as audit_store
from gateway.storage import audit_reads, statistics
from gateway.storage import staff as staff_store
from gateway.storage.audit_reads import ViolationRow

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

ROLES: Final[dict[str, tuple[str, ...]]] = {
    "audit_violations": AUDITORS,
    "audit_violation_decide": AUDITORS,
    "audit_violations_export": AUDITORS,
    "audit_agencies": AUDITORS,
    "audit_agencies_export": AUDITORS,
}
PAGE_SIZE: Final = 50
# The ledger's filters, as the API names them; anything else in a query is ignored.
FILTERS: Final = ("rule", "officer", "agency", "dossier", "status", "since", "until")
SANCTION_ORDER: Final = SANCTIONS_IN_ORDER
_DAY_FIRST: Final = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_MEDIA: Final = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_FORMAT = r"{format:csv|xlsx}"

assert set(SANCTION_ORDER) == SANCTIONS  # the form lists every sanction, mildest first


# --- query handling -----------------------------------------------------------------------


def _iso_day(value: str) -> str:
    """``dd/mm/yyyy`` (as staff type dates) as ISO; anything else as given, for the parser."""
    found = _DAY_FIRST.fullmatch(value.strip())
    if found is None:
        return value
    day, month, year = (int(part) for part in found.groups())
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return value  # the API's parser names the field


def _filters_of(query: Mapping[str, str]) -> dict[str, str]:
    """The ledger's filters in ``query``, blanks dropped (an empty form field is no filter)."""
    found = {name: query.get(name, "").strip() for name in FILTERS}
    return {name: value for name, value in found.items() if value}


def _api_query(filters: Mapping[str, str]) -> dict[str, str]:
    """The filters as the API's parser reads them (dates made ISO)."""
    return {k: _iso_day(v) if k in ("since", "until") else v for k, v in filters.items()}


def _after(query: Mapping[str, str]) -> int | None:
    raw = query.get("after", "")
    return int(raw) if raw.isdigit() and len(raw) <= 18 else None


def _when(value: datetime | None, zone: tzinfo) -> str:
    return value.astimezone(zone).strftime("%d/%m/%Y %H:%M") if value else ""


def _remote(request: web.Request) -> str:
    return (request.remote or "unknown")[:64]


# --- the violations ledger ----------------------------------------------------------------


def _suggestion(raw: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ledger's suggestion as the page shows it (the supervisor by name)."""
    if not raw:
        return None
    supervisor = raw.get("supervisor")
    if isinstance(supervisor, Mapping):
        supervisor = supervisor.get("name") or supervisor.get("id")
    return {
        "sanction": raw.get("sanction"),
        "reassign": bool(raw.get("reassign")),
        "supervisor": supervisor or None,
        "repeat_of": raw.get("repeat_of"),
    }


def _row(v: ViolationRow, request: web.Request) -> dict[str, Any]:
    """A ledger entry as the page shows it: the rule's Vietnamese text, local times."""
    settings = request.config_dict[SETTINGS]
    try:
        text = violation_rules.description(v.rule, settings.templates_dir)
    except KeyError:  # a rule retired from rules.toml still shows, by its id
        text = v.rule
    return {
        "id": v.id,
        "rule": v.rule,
        "description": text,
        "dossier": v.dossier_code or "",
        "officer": v.officer_name or v.officer_id or "",
        "officer_id": v.officer_id or "",
        "agency": v.agency_name or v.agency_code or "",
        "occurred": _when(v.occurred_at, settings.tz),
        "detected": _when(v.detected_at, settings.tz),
        "evidence": v.evidence,
        "status": v.status,
        "suggestion": _suggestion(v.suggestion),
    }


async def _ledger(
    request: web.Request,
    query: Mapping[str, str],
    *,
    decision_errors: tuple[int, list[FieldError]] | None = None,
) -> web.Response:
    """The ledger page for ``query``; 422 with the faulty fields named when it is bad."""
    zone = request.config_dict[SETTINGS].tz
    filters = _filters_of(query)
    context: dict[str, Any] = {
        "filters": filters,
        "rules": sorted(RULES),
        "sanctions": SANCTION_ORDER,
        "rows": [],
        "next": None,
        "errors": [],
        "decision_errors": None,
        "back": urlencode(list(filters.items()) + _after_pair(query)),
        "export": urlencode(list(filters.items())),
    }
    if decision_errors is not None:
        context["decision_errors"] = {
            "id": decision_errors[0],
            "fields": [e.field for e in decision_errors[1]],
        }
    try:
        parsed = parse_violation_query(_api_query(filters), zone)
    except ValidationFailed as exc:
        context["errors"] = sorted({e.field for e in exc.errors})
        return page(request, "violations.html.j2", context, status=422)
    found = await audit_reads.list_violations(
        request.config_dict[DATABASE].reader,
        parsed.filters,
        limit=PAGE_SIZE,
        after=_after(query),
    )
    context["rows"] = [_row(v, request) for v in found.items]
    if found.next_after is not None:
        context["next"] = "?" + urlencode([*filters.items(), ("after", found.next_after)])
    status = 422 if decision_errors is not None else 200
    return page(request, "violations.html.j2", context, status=status)


def _after_pair(query: Mapping[str, str]) -> list[tuple[str, str]]:
    after = _after(query)
    return [("after", str(after))] if after is not None else []


@routes.get("/audit/violations", name="audit_violations")
async def violations_page(request: web.Request) -> web.StreamResponse:
    """The violations ledger, filtered and paged by id, a decision form on each entry."""
    return await _ledger(request, request.query)


@routes.post(r"/audit/violations/{id:\d{1,18}}/decision", name="audit_violation_decide")
async def decide(request: web.Request) -> web.StreamResponse:
    """Record a decision (applied + sanction, or dismissed + note), audited; 303 back."""
    user = current_user(request)
    violation_id = int(request.match_info["id"])
    form = await request.post()
    back = dict(parse_qsl(str(form.get("back", ""))[:2000]))
    decision = str(form.get("decision", "")) or None
    sanction = str(form.get("sanction", "")) or None
    note = str(form.get("note", ""))
    body = {
        "decision": decision,
        # A sanction left chosen in the form means nothing when the entry is dismissed.
        "sanction": None if decision == "dismissed" else sanction,
        "note": note or None,
    }
    try:
        parsed = parse_decision(body)
    except ValidationFailed as exc:
        return await _ledger(request, back, decision_errors=(violation_id, exc.errors))
    now = now_of(request)
    try:
        async with request.config_dict[DATABASE].writer.begin() as conn:
            # Appended, never updated, as through the API; the log entry stands or falls
            # with it.
            await audit_store.record_decision(
                conn, violation_id, parsed.decision, parsed.sanction, parsed.note, user.id, now
            )
            await staff_store.record_action(
                conn,
                at=now,
                action="violation_decision",
                username=user.username,
                staff_id=user.id,
                target=f"violation:{violation_id}",
                detail={"decision": parsed.decision, "sanction": parsed.sanction},
                remote_addr=_remote(request),
            )
    except NotFound as exc:
        raise web.HTTPNotFound() from exc
    log.info(
        "violation decided",
        extra={"violation": violation_id, "decision": parsed.decision, "staff": user.id},
    )
    target = request.app.router["audit_violations"].url_for().with_query(back)
    raise web.HTTPSeeOther(target.with_fragment(f"v-{violation_id}"))


@routes.get(f"/audit/violations.{_FORMAT}", name="audit_violations_export")
async def export_violations(request: web.Request) -> web.StreamResponse:
    """Every entry matching the page's filters, as CSV or XLSX; audited."""
    zone = request.config_dict[SETTINGS].tz
    filters = _filters_of(request.query)
    try:
        parsed = parse_violation_query(_api_query(filters), zone)
    except ValidationFailed:
        return await _ledger(request, request.query)
    items: list[dict[str, Any]] = []
    after: int | None = None
    while True:
        found = await audit_reads.list_violations(
            request.config_dict[DATABASE].reader, parsed.filters, limit=EXPORT_PAGE, after=after
        )
        items.extend(violationjson_answer(v, zone) for v in found.items)
        if found.next_after is None:
            break
        after = found.next_after
    return await _download(request, "violations", items, "violations", filters)


# --- the monthly agency table -------------------------------------------------------------


def _month_of(request: web.Request) -> str:
    """``?month=``, or this month in ``TIME_ZONE``."""
    month = request.query.get("month", "").strip()
    if month:
        return month
    return now_of(request).astimezone(request.config_dict[SETTINGS].tz).strftime("%Y-%m")


def _percent(rate: float) -> str:
    """``0.125`` as ``12,5 %`` (a Vietnamese decimal comma)."""
    return f"{rate * 100:.1f}".replace(".", ",").removesuffix(",0") + " %"


def _shift(month: str, by: int) -> str:
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + number - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


async def _agency_items(
    request: web.Request, month: str
) -> tuple[statistics.MonthRange, list[dict[str, Any]]]:
    settings = request.config_dict[SETTINGS]
    span = statistics.MonthRange.parse(month, None, None)  # ValidationFailed for a bad month
    items = await statistics.agency_statistics(
        request.config_dict[DATABASE].reader,
        span,
        threshold=settings.audit.late_rate_threshold,
        now=now_of(request).astimezone(UTC),
        tz=settings.tz,
    )
    return span, items


@routes.get("/audit/agencies", name="audit_agencies")
async def agencies_page(request: web.Request) -> web.StreamResponse:
    """The month's agency table; agencies over the late-rate threshold are marked."""
    threshold = request.config_dict[SETTINGS].audit.late_rate_threshold
    month = _month_of(request)
    context: dict[str, Any] = {
        "month": month,
        "threshold": _percent(threshold),
        "rows": [],
        "error": False,
        "previous": None,
        "following": None,
    }
    try:
        span, items = await _agency_items(request, month)
    except ValidationFailed:
        context["error"] = True
        return page(request, "agencies.html.j2", context, status=422)
    context["previous"] = _shift(span.first, -1)
    context["following"] = _shift(span.first, 1)
    context["rows"] = [
        item
        | {
            "late_percent": _percent(item["late_rate"]),
            "missing_percent": _percent(item["missing_phone_rate"]),
        }
        for item in items
    ]
    return page(request, "agencies.html.j2", context)


@routes.get(f"/audit/agencies.{_FORMAT}", name="audit_agencies_export")
async def export_agencies(request: web.Request) -> web.StreamResponse:
    """The month's agency table as CSV or XLSX; audited."""
    month = _month_of(request)
    try:
        span, items = await _agency_items(request, month)
    except ValidationFailed as exc:
        raise web.HTTPUnprocessableEntity() from exc
    return await _download(request, "agencies", items, f"agencies-{span.first}", {"month": month})


# --- downloads ----------------------------------------------------------------------------


async def _download(
    request: web.Request,
    kind: str,
    items: list[dict[str, Any]],
    stem: str,
    filters: Mapping[str, str],
) -> web.Response:
    """``items`` (as the API answers them) as an attachment, the export audited first."""
    output = request.match_info["format"]
    zone = request.config_dict[SETTINGS].tz
    headers, rows = exports.table(kind, items)
    if output == "csv":
        body = exports.to_csv(headers, rows, tz=zone)
    else:
        body = exports.to_xlsx(headers, rows, kind, tz=zone)
    user = current_user(request)
    await staff_store.record_action(
        request.config_dict[DATABASE].writer,
        at=now_of(request),
        action="export",
        username=user.username,
        staff_id=user.id,
        target=kind,
        detail={"format": output, "rows": len(rows), "filters": dict(filters)},
        remote_addr=_remote(request),
    )
    return web.Response(
        body=body,
        headers={
            "Content-Type": _MEDIA[output],
            "Content-Disposition": f'attachment; filename="{stem}.{output}"',
        },
    )
