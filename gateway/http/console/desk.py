"""The auditors' desk in the console: the violations ledger with its decisions and each
entry's evidence, the monthly agency and officer tables, an agency's and an officer's
page with their twelve-month trend, overdue consultations, early warnings, and the
CSV/XLSX export of every table.

Everything is read and written through the same storage calls as the audit API
(``/v1/audit/*``); filters are parsed by the API's own parser, so a page, its export and
the API always agree. Every decision and every export is in the staff audit log.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Final, cast
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from gateway.audit import exports
from gateway.audit.warnings import early_warnings
from gateway.domain import violations as violation_rules
from gateway.domain.phones import mask_phones_in_text
from gateway.domain.sanctions import SANCTIONS, SANCTIONS_IN_ORDER
from gateway.domain.violations import RULES
from gateway.errors import FieldError, NotFound, ValidationFailed
from gateway.http.audit import (
    AUDITORS,
    EXPORT_PAGE,
    consultationjson_answer,
    parse_decision,
    parse_violation_query,
    violationjson_answer,
)
from gateway.http.console.auth import current_user, now_of, page
from gateway.http.keys import CALENDAR, DATABASE, SETTINGS
from gateway.storage import audit as audit_store
from gateway.storage import audit_reads, statistics
from gateway.storage import staff as staff_store
from gateway.storage.audit_reads import ViolationFilter, ViolationRow

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

ROLES: Final[dict[str, tuple[str, ...]]] = {
    "audit_violations": AUDITORS,
    "audit_violation": AUDITORS,
    "audit_violation_decide": AUDITORS,
    "audit_violations_export": AUDITORS,
    "audit_agencies": AUDITORS,
    "audit_agencies_export": AUDITORS,
    "audit_agency": AUDITORS,
    "audit_agency_export": AUDITORS,
    "audit_agency_officers_export": AUDITORS,
    "audit_trend_export": AUDITORS,
    "audit_officers": AUDITORS,
    "audit_officers_export": AUDITORS,
    "audit_officer": AUDITORS,
    "audit_officer_export": AUDITORS,
    "audit_consultations": AUDITORS,
    "audit_consultations_export": AUDITORS,
    "audit_warnings": AUDITORS,
    "audit_warnings_export": AUDITORS,
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
        "agency_code": v.agency_code or "",
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
    # The form on the entry's own page sends ``from=detail``: back there, not the ledger.
    from_detail = form.get("from") == "detail"
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
        if from_detail:
            return await _detail(request, violation_id, [e.field for e in exc.errors])
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
    if from_detail:
        target = request.app.router["audit_violation"].url_for(id=str(violation_id))
        raise web.HTTPSeeOther(target.with_fragment("decisions"))
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


async def _month_items(
    request: web.Request, month: str, table: Callable[..., Awaitable[list[dict[str, Any]]]]
) -> tuple[statistics.MonthRange, list[dict[str, Any]]]:
    """One month of ``table`` (the agency or the officer statistics) for the desk."""
    settings = request.config_dict[SETTINGS]
    span = statistics.MonthRange.parse(month, None, None)  # ValidationFailed for a bad month
    items = await table(
        request.config_dict[DATABASE].reader,
        span,
        threshold=settings.audit.late_rate_threshold,
        now=now_of(request).astimezone(UTC),
        tz=settings.tz,
    )
    return span, items


async def _agency_items(
    request: web.Request, month: str
) -> tuple[statistics.MonthRange, list[dict[str, Any]]]:
    return await _month_items(request, month, statistics.agency_statistics)


@routes.get("/audit/agencies", name="audit_agencies")
async def agencies_page(request: web.Request) -> web.StreamResponse:
    """The month's agency table (agencies over the late-rate threshold marked, each linked
    to its page) and the province's late rate over the last twelve months."""
    threshold = request.config_dict[SETTINGS].audit.late_rate_threshold
    month = _month_of(request)
    context: dict[str, Any] = {
        "month": month,
        "threshold": _percent(threshold),
        "rows": [],
        "error": False,
        "previous": None,
        "following": None,
        "trend": None,
    }
    try:
        span, items = await _agency_items(request, month)
    except ValidationFailed:
        context["error"] = True
        return page(request, "agencies.html.j2", context, status=422)
    # The province's late rate over the twelve months up to this one, as a compact chart.
    window = statistics.MonthRange(_shift(span.first, 1 - MONTHS_SHOWN), span.first)
    context["trend"] = _trend(await _series(request, window), threshold, height=180)
    context["trend_first"] = _month_label(window.first)
    context["previous"] = _shift(span.first, -1)
    context["following"] = _shift(span.first, 1)
    context["rows"] = [_with_percents(item) for item in items]
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


# --- a ledger entry and its evidence ------------------------------------------------------


def _masked(text: str | None) -> str:
    """Free text (a decision's note, a rule's detail) with any phone number masked."""
    return mask_phones_in_text(text) if text else ""


async def _decisions(request: web.Request, violation_id: int) -> list[dict[str, Any]]:
    """The entry's decisions, oldest first, each with the name of the staff who made it."""
    reader = request.config_dict[DATABASE].reader
    zone = request.config_dict[SETTINGS].tz
    async with reader.connect() as conn:
        found = await audit_reads.violation_decisions_of(conn, violation_id)
    names: dict[int, str] = {}
    for staff_id in {d.staff_id for d in found if d.staff_id is not None}:
        staff = await staff_store.get_user(reader, staff_id)
        names[staff_id] = staff.name if staff is not None else f"#{staff_id}"
    return [
        {
            "decision": d.decision,
            "sanction": d.sanction,
            "note": _masked(d.note),
            "by": names.get(d.staff_id, "") if d.staff_id is not None else "",
            "at": _when(d.decided_at, zone),
        }
        for d in found
    ]


def _timeline(found: list[audit_reads.EventRow], cited: set[str], zone: tzinfo) -> list[Any]:
    """The dossier's events as the page lists them, those the entry cites marked."""
    return [
        {
            "id": e.event_id,
            "type": e.type,
            "at": _when(e.occurred_at, zone),
            "actor": e.actor_name or e.actor_id or "",
            "superseded": e.superseded,
            "cited": e.event_id in cited,
        }
        for e in found
    ]


async def _detail(
    request: web.Request, violation_id: int, errors: list[str] | None = None
) -> web.Response:
    """A ledger entry's page: what it says, its evidence among the dossier's events, its
    decisions and the form for another one; 422 with the faulty fields after a bad one."""
    settings = request.config_dict[SETTINGS]
    reader = request.config_dict[DATABASE].reader
    async with reader.connect() as conn:
        found = await audit_reads.get_violation(conn, violation_id)
    if found is None:
        raise web.HTTPNotFound()
    events = await audit_reads.dossier_events(reader, found.dossier_code or "")
    cited = set(found.evidence)
    texts = violation_rules.rule_texts(settings.templates_dir)
    context: dict[str, Any] = {
        "v": _row(found, request),
        "source": texts[found.rule].source if found.rule in texts else "",
        "report_id": found.report_id,
        "timeline": _timeline(events, cited, settings.tz),
        # Cited events the gateway never stored (the timeline cannot show them).
        "missing": sorted(cited - {e.event_id for e in events}),
        "decisions": await _decisions(request, violation_id),
        "sanctions": SANCTION_ORDER,
        "errors": errors or [],
    }
    return page(request, "violation.html.j2", context, status=422 if errors else 200)


@routes.get(r"/audit/violations/{id:\d{1,18}}", name="audit_violation")
async def violation_page(request: web.Request) -> web.StreamResponse:
    """One ledger entry with its evidence highlighted in the dossier's timeline."""
    return await _detail(request, int(request.match_info["id"]))


# --- twelve-month series and their chart --------------------------------------------------

MONTHS_SHOWN: Final = 12
# The chart's drawing box (SVG user units): room for the axis labels around the plot.
_CHART_WIDTH: Final = 640
_CHART_LEFT: Final = 48
_CHART_RIGHT: Final = 112
_CHART_TOP: Final = 12
_CHART_BOTTOM: Final = 28


def _number(value: float) -> str:
    """A coordinate as SVG text: one decimal at most, no trailing zero."""
    return f"{value:.1f}".removesuffix(".0")


def _month_label(month: str) -> str:
    """``2026-04`` as ``04/2026``."""
    return f"{month[5:]}/{month[:4]}"


def chart(items: list[dict[str, Any]], threshold: float, *, height: int = 240) -> dict[str, Any]:
    """The geometry of a late-rate bar chart of monthly ``items`` (``month``, ``ended``,
    ``late_rate``, ``over_threshold``) with the threshold line, for the template's SVG.

    The scale runs from 0 to at least twice the threshold (so the line sits halfway up
    when every month is under it), rounded up to a whole ten per cent above the highest
    rate; a month with nothing ended has no bar.
    """
    top, bottom = _CHART_TOP, height - _CHART_BOTTOM
    plot = bottom - top
    highest = max((float(i["late_rate"]) for i in items), default=0.0)
    scale = max(2 * threshold, math.ceil(round(highest * 10, 6)) / 10, 0.1)
    slot = (_CHART_WIDTH - _CHART_LEFT - _CHART_RIGHT) / max(len(items), 1)

    def y(rate: float) -> float:
        return bottom - plot * min(rate, scale) / scale

    bars = []
    for index, item in enumerate(items):
        rate = float(item["late_rate"])
        x = _CHART_LEFT + slot * index
        bars.append(
            {
                "month": item["month"],
                "label": _month_label(item["month"]),
                "short": f"{item['month'][5:]}/{item['month'][2:4]}",
                "x": _number(x + slot * 0.2),
                "width": _number(slot * 0.6),
                "y": _number(y(rate)),
                "height": _number(bottom - y(rate)),
                "middle": _number(x + slot / 2),
                "rate": _percent(rate),
                "value": rate,
                "ended": item["ended"],
                "over": bool(item["over_threshold"]),
            }
        )
    ticks = [
        {"y": _number(y(scale * part / 4)), "label": _percent(scale * part / 4)}
        for part in range(5)
    ]
    return {
        "width": _CHART_WIDTH,
        "height": height,
        "left": _CHART_LEFT,
        "right": _number(_CHART_WIDTH - _CHART_RIGHT),
        "top": top,
        "bottom": bottom,
        "label_y": _number(bottom + 18),
        "threshold": threshold,
        "threshold_y": _number(y(threshold)),
        "threshold_label": f"ngưỡng {_percent(threshold)}",
        "bars": bars,
        "ticks": ticks,
    }


def _window_of(request: web.Request) -> tuple[statistics.MonthRange, bool]:
    """The twelve months up to ``?month=`` (default: this month); False with this
    month's window when ``?month=`` is not a month."""
    month = _month_of(request)
    try:
        statistics.MonthRange.parse(month, None, None)
    except ValidationFailed:
        month, good = _this_month(request), False
    else:
        good = True
    return statistics.MonthRange(_shift(month, 1 - MONTHS_SHOWN), month), good


def _this_month(request: web.Request) -> str:
    return now_of(request).astimezone(request.config_dict[SETTINGS].tz).strftime("%Y-%m")


async def _series(
    request: web.Request,
    span: statistics.MonthRange,
    *,
    agency: str | None = None,
    officer: str | None = None,
) -> list[dict[str, Any]]:
    """The monthly figures of the province, an agency or an officer, as the API's items."""
    return await statistics.monthly_series(
        request.config_dict[DATABASE].reader,
        span,
        threshold=request.config_dict[SETTINGS].audit.late_rate_threshold,
        agency=agency,
        officer=officer,
    )


def _trend(items: list[dict[str, Any]], threshold: float, *, height: int = 240) -> dict[str, Any]:
    """A series as the pages show it: its rows (percentages in words) and its chart."""
    rows = [
        item
        | {
            "label": _month_label(item["month"]),
            "late_percent": _percent(item["late_rate"]),
            "missing_percent": _percent(item["missing_phone_rate"]),
        }
        for item in items
    ]
    return {"rows": rows, "chart": chart(items, threshold, height=height)}


@routes.get(f"/audit/trend.{_FORMAT}", name="audit_trend_export")
async def export_trend(request: web.Request) -> web.StreamResponse:
    """The province's twelve months (as on the agency table's page) as CSV or XLSX."""
    span, _ = _window_of(request)
    items = await _series(request, span)
    return await _download(
        request,
        "months",
        items,
        f"province-{span.first}-{span.last}",
        {"month": span.last},
        target="province",
    )


# --- an agency's page ---------------------------------------------------------------------

_AGENCY = r"{code:[^/]{1,32}}"


@routes.get(f"/audit/agencies/{_AGENCY}", name="audit_agency")
async def agency_page(request: web.Request) -> web.StreamResponse:
    """An agency's twelve months (table and chart), its officers and its open entries."""
    settings = request.config_dict[SETTINGS]
    reader = request.config_dict[DATABASE].reader
    code = request.match_info["code"]
    span, good = _window_of(request)
    items = await _series(request, span, agency=code)
    staff, figures = await _agency_officers(request, code, span.last)
    ledger = await audit_reads.list_violations(
        reader, ViolationFilter(agency=code, status="open"), limit=PAGE_SIZE
    )
    name = (await statistics.agency_names(reader, [code])).get(code)
    if name is None and not staff and not ledger.items and not _counted(items):
        raise web.HTTPNotFound()
    context: dict[str, Any] = {
        "agency": {"code": code, "name": name or code},
        "month": span.last,
        "first": _month_label(span.first),
        "last": _month_label(span.last),
        "month_error": not good,
        "threshold": _percent(settings.audit.late_rate_threshold),
        "trend": _trend(items, settings.audit.late_rate_threshold),
        "officers": [
            _officer_row(o) | {"month": _with_percents(f)}
            for o, f in zip(staff, figures, strict=True)
        ],
        "ledger": [_row(v, request) for v in ledger.items],
        "more": ledger.next_after is not None,
        "ledger_query": urlencode({"agency": code, "status": "open"}),
    }
    return page(request, "agency.html.j2", context, status=200 if good else 400)


async def _agency_officers(
    request: web.Request, code: str, month: str
) -> tuple[list[audit_reads.OfficerRow], list[dict[str, Any]]]:
    """The directory's officers of an agency and each one's figures for ``month`` (as the
    monthly officer table gives them; zeros for an officer with nothing counted)."""
    staff = await audit_reads.officers_of_agency(request.config_dict[DATABASE].reader, code)
    if not staff:
        return [], []
    _, items = await _officer_items(request, month)
    by_id = {item["officer"]["id"]: item for item in items}
    threshold = request.config_dict[SETTINGS].audit.late_rate_threshold
    figures = [
        by_id.get(o.id) or statistics.blank_officer_item(o.id, o.name, threshold) for o in staff
    ]
    return staff, figures


def _with_percents(item: dict[str, Any]) -> dict[str, Any]:
    """A statistics item with its rates as the pages write them (``12,5 %``) and its
    ratings' averages as scores (``4,5``; ``—`` for an average of nothing)."""
    rated = item.get("ratings") or {}
    return item | {
        "late_percent": _percent(item["late_rate"]),
        "missing_percent": _percent(item["missing_phone_rate"]),
        "scores": {name: _score(rated.get(name)) for name in _AVERAGES},
    }


# The averages of a statistics item's ``ratings`` the pages show.
_AVERAGES = ("average", "progress_avg", "quality_avg")


def _score(mean: float | None) -> str:
    """``4.3333`` as ``4,3`` (a Vietnamese decimal comma), None as ``—``."""
    return "—" if mean is None else f"{mean:.1f}".replace(".", ",")


@routes.get(f"/audit/agencies/{_AGENCY}/officers.{_FORMAT}", name="audit_agency_officers_export")
async def export_agency_officers(request: web.Request) -> web.StreamResponse:
    """The agency page's officer table (the month's figures) as CSV or XLSX; audited."""
    code = request.match_info["code"]
    span, _ = _window_of(request)
    _, figures = await _agency_officers(request, code, span.last)
    return await _download(
        request,
        "officers",
        figures,
        f"agency-{_file_part(code)}-officers-{span.last}",
        {"month": span.last},
        target=f"agency_officers:{code}",
    )


def _counted(items: list[dict[str, Any]]) -> bool:
    return any(item["received"] or item["ended"] for item in items)


def _officer_row(o: audit_reads.OfficerRow) -> dict[str, Any]:
    return {
        "id": o.id,
        "name": o.name or o.id,
        "unit": o.unit or "",
        "supervisor": (
            {"id": o.supervisor_id, "name": o.supervisor_name or o.supervisor_id}
            if o.supervisor_id
            else None
        ),
    }


@routes.get(f"/audit/agencies/{_AGENCY}/months.{_FORMAT}", name="audit_agency_export")
async def export_agency(request: web.Request) -> web.StreamResponse:
    """An agency's twelve months as CSV or XLSX; audited."""
    code = request.match_info["code"]
    span, _ = _window_of(request)
    items = await _series(request, span, agency=code)
    return await _download(
        request,
        "months",
        items,
        f"agency-{_file_part(code)}-{span.first}-{span.last}",
        {"month": span.last},
        target=f"agency:{code}",
    )


def _file_part(value: str) -> str:
    """An id made safe for a download's file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", value)[:64]


# --- the officers' table and an officer's page --------------------------------------------


async def _officer_items(
    request: web.Request, month: str
) -> tuple[statistics.MonthRange, list[dict[str, Any]]]:
    return await _month_items(request, month, statistics.officer_statistics)


@routes.get("/audit/officers", name="audit_officers")
async def officers_page(request: web.Request) -> web.StreamResponse:
    """The month's officer table; officers over the late-rate threshold are marked."""
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
        span, items = await _officer_items(request, month)
    except ValidationFailed:
        context["error"] = True
        return page(request, "officers.html.j2", context, status=422)
    context["previous"] = _shift(span.first, -1)
    context["following"] = _shift(span.first, 1)
    context["rows"] = [_with_percents(item) for item in items]
    return page(request, "officers.html.j2", context)


@routes.get(f"/audit/officers.{_FORMAT}", name="audit_officers_export")
async def export_officers(request: web.Request) -> web.StreamResponse:
    """The month's officer table as CSV or XLSX; audited."""
    month = _month_of(request)
    try:
        span, items = await _officer_items(request, month)
    except ValidationFailed as exc:
        raise web.HTTPUnprocessableEntity() from exc
    return await _download(request, "officers", items, f"officers-{span.first}", {"month": month})


_OFFICER = r"{officer_id:[^/]{1,128}}"


@routes.get(f"/audit/officers/{_OFFICER}", name="audit_officer")
async def officer_page(request: web.Request) -> web.StreamResponse:
    """An officer: the directory's facts, twelve months of dossiers they ended (on time
    or late) with a chart, and their ledger entries of all months."""
    settings = request.config_dict[SETTINGS]
    reader = request.config_dict[DATABASE].reader
    officer_id = request.match_info["officer_id"]
    span, good = _window_of(request)
    directory = await audit_reads.get_officer(reader, officer_id)
    items = await _series(request, span, officer=officer_id)
    ledger = await audit_reads.list_violations(
        reader, ViolationFilter(officer=officer_id), limit=PAGE_SIZE
    )
    if directory is None and not ledger.items and not _counted(items):
        raise web.HTTPNotFound()
    named = [v.officer_name for v in ledger.items if v.officer_name]
    agency_code = directory.agency_code if directory else None
    if agency_code is None and ledger.items:
        agency_code = ledger.items[-1].agency_code
    agency_name = None
    if agency_code:
        agency_name = (await statistics.agency_names(reader, [agency_code])).get(agency_code)
    context: dict[str, Any] = {
        "officer": {
            "id": officer_id,
            "name": (directory.name if directory else None) or (named[-1] if named else ""),
            "in_directory": directory is not None,
            "unit": directory.unit if directory else None,
            "supervisor": _officer_row(directory)["supervisor"] if directory else None,
            "agency": (
                {"code": agency_code, "name": agency_name or agency_code} if agency_code else None
            ),
        },
        "month": span.last,
        "first": _month_label(span.first),
        "last": _month_label(span.last),
        "month_error": not good,
        "threshold": _percent(settings.audit.late_rate_threshold),
        "trend": _trend(items, settings.audit.late_rate_threshold),
        "ledger": [_row(v, request) for v in ledger.items],
        "more": ledger.next_after is not None,
        "ledger_query": urlencode({"officer": officer_id}),
    }
    return page(request, "officer.html.j2", context, status=200 if good else 400)


@routes.get(f"/audit/officers/{_OFFICER}/months.{_FORMAT}", name="audit_officer_export")
async def export_officer(request: web.Request) -> web.StreamResponse:
    """An officer's twelve months as CSV or XLSX; audited."""
    officer_id = request.match_info["officer_id"]
    span, _ = _window_of(request)
    items = await _series(request, span, officer=officer_id)
    return await _download(
        request,
        "months",
        items,
        f"officer-{_file_part(officer_id)}-{span.first}-{span.last}",
        {"month": span.last},
        target=f"officer:{officer_id}",
    )


# --- consultations overdue ----------------------------------------------------------------

CONSULTATION_LIMIT: Final = 500


def _consultation_filters(query: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """``state`` (default ``overdue``) and ``agency`` as the API takes them, and the names
    of the faulty ones."""
    state = query.get("state", "").strip() or "overdue"
    agency = query.get("agency", "").strip()
    errors = []
    if state not in audit_reads.CONSULTATION_STATES:
        errors.append("state")
    if len(agency) > 32:
        errors.append("agency")
    filters = {"state": state} | ({"agency": agency} if agency else {})
    return filters, errors


async def _consultation_items(request: web.Request, filters: Mapping[str, str]) -> list[Any]:
    """The consultations in the filters' state, as the API answers them."""
    rows = await audit_reads.list_consultations(
        request.config_dict[DATABASE].reader,
        cast(audit_reads.ConsultationState, filters["state"]),
        now_of(request),
        agency=filters.get("agency"),
        limit=CONSULTATION_LIMIT,
    )
    zone = request.config_dict[SETTINGS].tz
    return [consultationjson_answer(c, zone) for c in rows]


def _consultation_row(item: Mapping[str, Any]) -> dict[str, Any]:
    """An API item as the page shows it: its local times as dd/mm/yyyy HH:MM."""
    return {
        "dossier": item["dossier"],
        "consultation_id": item["consultation_id"],
        "agency": item["agency"],
        "requested": _iso_text(item["requested_at"]),
        "due": _iso_text(item["due_at"]),
        "answered": _iso_text(item["answered_at"]),
        "reminders": [
            {
                "number": r["number"],
                "at": _iso_text(r["at"]),
                "copied_to": r.get("copied_to") or "",
            }
            for r in item["reminders"]
        ],
    }


def _iso_text(value: str | None) -> str:
    """An API time (local ISO 8601) as the page and the CSV write it."""
    return _text(datetime.fromisoformat(value)) if value else ""


def _text(value: Any) -> str:
    """A cell as the CSV writes it (dates dd/mm/yyyy HH:MM)."""
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return "" if value is None else str(value)


@routes.get("/audit/consultations", name="audit_consultations")
async def consultations_page(request: web.Request) -> web.StreamResponse:
    """Consultations overdue (or reminded, or answered late) with their reminders."""
    filters, errors = _consultation_filters(request.query)
    context: dict[str, Any] = {
        "filters": filters,
        "states": audit_reads.CONSULTATION_STATES,
        "errors": errors,
        "rows": [],
        "limit": CONSULTATION_LIMIT,
        "export": urlencode(filters),
    }
    if errors:
        return page(request, "consultations.html.j2", context, status=400)
    items = await _consultation_items(request, filters)
    context["rows"] = [_consultation_row(item) for item in items]
    return page(request, "consultations.html.j2", context)


@routes.get(f"/audit/consultations.{_FORMAT}", name="audit_consultations_export")
async def export_consultations(request: web.Request) -> web.StreamResponse:
    """The page's consultations as CSV or XLSX; audited."""
    filters, errors = _consultation_filters(request.query)
    if errors:
        raise web.HTTPBadRequest()
    items = await _consultation_items(request, filters)
    stem = f"consultations-{filters['state']}"
    return await _download(request, "consultations", items, stem, filters)


# --- early warnings -----------------------------------------------------------------------

WARNING_LISTS: Final = ("due_soon", "undelivered")


async def _warning_lists(request: web.Request) -> dict[str, list[dict[str, Any]]]:
    """Both lists of early warnings at the gateway's clock, as the API computes them."""
    return await early_warnings(
        request.config_dict[DATABASE].reader,
        now_of(request),
        request.config_dict[SETTINGS],
        calendar=request.config_dict[CALENDAR],
    )


def _warning_row(item: Mapping[str, Any]) -> dict[str, Any]:
    return {**item, "due": _text(item["due_date"]), "finished": _text(item["finished_date"])}


@routes.get("/audit/warnings", name="audit_warnings")
async def warnings_page(request: web.Request) -> web.StreamResponse:
    """Dossiers due today or on the next working day without an apology, and finished
    dossiers not handed over for too long: to act on before they become violations."""
    found = await _warning_lists(request)
    context = {
        "due_soon": [_warning_row(item) for item in found["due_soon"]],
        "undelivered": [_warning_row(item) for item in found["undelivered"]],
        "days": request.config_dict[SETTINGS].audit.undelivered_warning_days,
        "today": _text(now_of(request).astimezone(request.config_dict[SETTINGS].tz).date()),
    }
    return page(request, "warnings.html.j2", context)


@routes.get(f"/audit/warnings.{_FORMAT}", name="audit_warnings_export")
async def export_warnings(request: web.Request) -> web.StreamResponse:
    """Both lists as one table (a column names the list), as CSV or XLSX; audited."""
    found = await _warning_lists(request)
    items = [{"list": name} | row for name in WARNING_LISTS for row in found[name]]
    return await _download(request, "warnings", items, "warnings", {})


# --- downloads ----------------------------------------------------------------------------


async def _download(
    request: web.Request,
    kind: str,
    items: list[dict[str, Any]],
    stem: str,
    filters: Mapping[str, str],
    *,
    target: str | None = None,
) -> web.Response:
    """``items`` (as the API answers them) as an attachment, the export audited first
    (``target``: what was exported, by default the kind of table)."""
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
        target=target or kind,
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
