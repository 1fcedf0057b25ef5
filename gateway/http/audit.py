"""The audit API (``/v1/audit/*``): the violations ledger, decisions, statistics, lists.

Auditors and admins only: hotline staff get 403 on every route here (they see a
violation only through the report it came from). Every list answers JSON, or with
``format=csv|xlsx`` a spreadsheet download with Vietnamese headers. Times are ISO 8601
in ``TIME_ZONE``; faulty query parameters give one 422 naming each of them.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Final, cast

from aiohttp import web

from gateway.audit import exports
from gateway.audit.warnings import early_warnings
from gateway.domain.codes import parse_dossier_code
from gateway.domain.sanctions import SANCTIONS
from gateway.domain.violations import RULES
from gateway.errors import FieldError, NotFound, ValidationFailed
from gateway.http.keys import CALENDAR, CLOCK, DATABASE, SETTINGS
from gateway.http.staff import json_answer, json_body, require_staff, storage_errors
from gateway.storage import audit as audit_store
from gateway.storage import audit_reads, statistics
from gateway.storage.audit_reads import ConsultationRow, ViolationFilter, ViolationRow

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

AUDITORS: Final = ("auditor", "admin")
FORMATS: Final = ("json", "csv", "xlsx")
VIOLATION_STATUSES: Final = ("open", "applied", "dismissed")
DECISIONS: Final = ("applied", "dismissed")
LIMIT_DEFAULT: Final = 50
LIMIT_MAX: Final = 200
ID_MAX: Final = 2**63 - 1
NOTE_MAX: Final = 2000
TEXT_MAX: Final = 128
# An export is every matching row, read in pages of this many.
EXPORT_PAGE: Final = 1000
_ID = r"{id:\d{1,18}}"
# "+07:00" arrives as " 07:00" when a client does not percent-encode the query string.
_DECODED_PLUS: Final = re.compile(r" (\d{2}:?\d{2})$")


# --- query parsing ------------------------------------------------------------------------


class _Query:
    """Reads a query string field by field, collecting every fault before raising once."""

    def __init__(self, query: Mapping[str, str], zone: tzinfo) -> None:
        self.query = query
        self.zone = zone
        self.errors: list[FieldError] = []

    def raw(self, field: str) -> str | None:
        value = (self.query.get(field) or "").strip()
        return value or None

    def text(self, field: str, max_length: int = TEXT_MAX) -> str | None:
        value = self.raw(field)
        if value is not None and len(value) > max_length:
            self.errors.append(FieldError(field, f"must be at most {max_length} characters"))
            return None
        return value

    def choice(self, field: str, choices: Sequence[str], default: str | None = None) -> str | None:
        value = self.raw(field)
        if value is None:
            return default
        if value not in choices:
            self.errors.append(
                FieldError(field, f"must be one of {', '.join(choices)}, not {value!r}")
            )
            return default
        return value

    def number(self, field: str, default: int | None, top: int) -> int | None:
        value = self.raw(field)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.errors.append(FieldError(field, f"must be a whole number, not {value!r}"))
            return default
        if not 1 <= number <= top:
            self.errors.append(FieldError(field, f"must be between 1 and {top}"))
            return default
        return number

    def moment(self, field: str, *, end_of_day: bool = False) -> datetime | None:
        """A date (local midnight; with ``end_of_day`` the next one) or a date-time."""
        value = self.raw(field)
        if value is None:
            return None
        value = _DECODED_PLUS.sub(r"+\1", value)
        try:
            if len(value) == 10:
                day = date.fromisoformat(value) + timedelta(days=1 if end_of_day else 0)
                moment = datetime.combine(day, time(0), tzinfo=self.zone)
            else:
                moment = datetime.fromisoformat(value)
        except (ValueError, OverflowError):
            self.errors.append(
                FieldError(field, "must be a date (2026-03-01) or a date-time with offset")
            )
            return None
        if moment.tzinfo is None:
            self.errors.append(
                FieldError(field, "needs a UTC offset, e.g. 2026-03-01T00:00:00+07:00")
            )
            return None
        try:
            moment.astimezone(UTC)  # what the database is given; year 1 or 9999 may not fit
        except OverflowError:
            self.errors.append(FieldError(field, "is out of range"))
            return None
        return moment

    def done(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)


@dataclasses.dataclass(frozen=True, slots=True)
class ViolationQuery:
    """``GET /v1/audit/violations``: filters, output format and keyset page."""

    filters: ViolationFilter
    format: str
    limit: int
    after: int | None


def parse_violation_query(query: Mapping[str, str], zone: tzinfo) -> ViolationQuery:
    """The violations list's query string; raises one :class:`ValidationFailed`."""
    q = _Query(query, zone)
    dossier = q.text("dossier", 64)
    if dossier is not None:
        try:
            dossier = str(parse_dossier_code(dossier))
        except ValueError as exc:
            q.errors.append(FieldError("dossier", f"is not a dossier code: {exc}"))
    filters = ViolationFilter(
        officer=q.text("officer"),
        agency=q.text("agency", 32),
        rule=q.choice("rule", sorted(RULES)),
        dossier=dossier,
        status=q.choice("status", VIOLATION_STATUSES),
        since=q.moment("since"),
        until=q.moment("until", end_of_day=True),
    )
    if filters.since and filters.until and filters.until <= filters.since:
        q.errors.append(FieldError("until", "must be after since"))
    output = q.choice("format", FORMATS, "json")
    limit = q.number("limit", LIMIT_DEFAULT, LIMIT_MAX)
    after = q.number("after", None, ID_MAX)
    q.done()
    assert output is not None and limit is not None
    return ViolationQuery(filters, output, limit, after)


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """``POST /v1/audit/violations/{id}/decisions``."""

    decision: str
    sanction: str | None
    note: str | None


def parse_decision(body: Any) -> Decision:
    """``{"decision", "sanction", "note"}``: applied needs a sanction, dismissed a note."""
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "the body must be a JSON object")])
    errors: list[FieldError] = []
    decision = body.get("decision")
    if decision not in DECISIONS:
        errors.append(FieldError("decision", f"is required: one of {', '.join(DECISIONS)}"))
    sanction = body.get("sanction")
    # Tested for a string first: a list or an object is unhashable for the set.
    if sanction is not None and (not isinstance(sanction, str) or sanction not in SANCTIONS):
        errors.append(FieldError("sanction", f"must be one of {', '.join(sorted(SANCTIONS))}"))
    elif decision == "applied" and sanction is None:
        errors.append(FieldError("sanction", "is required when the decision is applied"))
    elif decision == "dismissed" and sanction is not None:
        errors.append(FieldError("sanction", "must be left out when the decision is dismissed"))
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        errors.append(FieldError("note", "must be a string"))
        note = None
    note = note.strip() if note else None
    if note is not None and len(note) > NOTE_MAX:
        errors.append(FieldError("note", f"must be at most {NOTE_MAX} characters"))
    elif decision == "dismissed" and not note:
        errors.append(FieldError("note", "is required when the decision is dismissed: say why"))
    if errors:
        raise ValidationFailed(errors)
    return Decision(cast(str, decision), cast(str | None, sanction), note or None)


# --- answers ------------------------------------------------------------------------------


def _now(request: web.Request) -> datetime:
    return datetime.fromtimestamp(request.app[CLOCK](), UTC)


def _local(value: datetime | None, zone: tzinfo) -> str | None:
    return value.astimezone(zone).isoformat() if value is not None else None


def _plain(value: Any, zone: tzinfo) -> Any:
    """A dataclass, mapping or sequence as JSON values, times local ISO 8601."""
    if isinstance(value, datetime):
        return _local(value, zone)
    if isinstance(value, date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), zone) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v, zone) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, zone) for v in value]
    return value


def violationjson_answer(v: ViolationRow, zone: tzinfo) -> dict[str, Any]:
    """A ledger entry as the contract shows it."""
    return {
        "id": v.id,
        "rule": v.rule,
        "dossier": v.dossier_code,
        "officer": {"id": v.officer_id, "name": v.officer_name} if v.officer_id else None,
        "agency": {"code": v.agency_code, "name": v.agency_name},
        "occurred_at": _local(v.occurred_at, zone),
        "detected_at": _local(v.detected_at, zone),
        "evidence": list(v.evidence),
        "status": v.status,
        "suggestion": v.suggestion,
    }


def consultationjson_answer(c: ConsultationRow, zone: tzinfo) -> dict[str, Any]:
    """A consultation and its reminders."""
    return {
        "dossier": c.dossier_code,
        "consultation_id": c.consultation_id,
        "agency": {"code": c.agency_code, "name": c.agency_name},
        "requested_at": _local(c.requested_at, zone),
        "due_at": _local(c.due_at, zone),
        "answered_at": _local(c.answered_at, zone),
        "reminders": [
            {"number": r.number, "at": _local(r.at, zone), "copied_to": r.copied_to}
            for r in c.reminders
        ],
    }


def _download(
    kind: str, output: str, items: list[dict[str, Any]], stem: str, zone: tzinfo
) -> web.Response:
    """``items`` (as the JSON answer shows them) as a CSV or XLSX attachment."""
    headers, rows = exports.table(kind, items)
    if output == "csv":
        body, media = exports.to_csv(headers, rows, tz=zone), "text/csv; charset=utf-8"
    else:
        body = exports.to_xlsx(headers, rows, kind, tz=zone)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return web.Response(
        body=body,
        headers={
            "Content-Type": media,
            "Content-Disposition": f'attachment; filename="{stem}.{output}"',
        },
    )


# --- violations ---------------------------------------------------------------------------


@routes.get("/v1/audit/violations")
async def list_violations(request: web.Request) -> web.Response:
    await require_staff(request, *AUDITORS)
    zone = request.app[SETTINGS].tz
    query = parse_violation_query(request.query, zone)
    reader = request.app[DATABASE].reader
    if query.format != "json":
        # An export holds every matching entry, not one page.
        items: list[dict[str, Any]] = []
        after = query.after
        while True:
            async with storage_errors():
                page = await audit_reads.list_violations(
                    reader, query.filters, limit=EXPORT_PAGE, after=after
                )
            items.extend(violationjson_answer(v, zone) for v in page.items)
            if page.next_after is None:
                break
            after = page.next_after
        return _download("violations", query.format, items, "violations", zone)
    async with storage_errors():
        page = await audit_reads.list_violations(
            reader, query.filters, limit=query.limit, after=query.after
        )
    following = str(page.next_after) if page.next_after is not None else None
    return json_answer(
        {"items": [violationjson_answer(v, zone) for v in page.items], "next": following}
    )


@routes.get(f"/v1/audit/violations/{_ID}")
async def get_violation(request: web.Request) -> web.Response:
    await require_staff(request, *AUDITORS)
    zone = request.app[SETTINGS].tz
    violation_id = int(request.match_info["id"])
    async with storage_errors(), request.app[DATABASE].reader.connect() as conn:
        found = await audit_reads.get_violation(conn, violation_id)
        decisions = await audit_reads.violation_decisions_of(conn, violation_id)
    if found is None:
        raise NotFound(f"no violation {violation_id}")
    return json_answer(violationjson_answer(found, zone) | {"decisions": _plain(decisions, zone)})


@routes.post(f"/v1/audit/violations/{_ID}/decisions")
async def decide(request: web.Request) -> web.Response:
    user = await require_staff(request, *AUDITORS)
    decision = parse_decision(await json_body(request))
    violation_id = int(request.match_info["id"])
    now = _now(request)
    async with storage_errors(), request.app[DATABASE].writer.begin() as conn:
        # Appended, never updated: a later decision corrects an earlier one.
        await audit_store.record_decision(  # NotFound (404) for an unknown violation
            conn, violation_id, decision.decision, decision.sanction, decision.note, user.id, now
        )
        found = await audit_reads.get_violation(conn, violation_id)
    assert found is not None
    log.info(
        "violation decided",
        extra={"violation": violation_id, "decision": decision.decision, "staff": user.id},
    )
    return json_answer(violationjson_answer(found, request.app[SETTINGS].tz), status=201)


# --- statistics ---------------------------------------------------------------------------


async def _statistics(request: web.Request, kind: str) -> web.Response:
    await require_staff(request, *AUDITORS)
    settings = request.app[SETTINGS]
    q = _Query(request.query, settings.tz)
    output = q.choice("format", FORMATS, "json")
    span: statistics.MonthRange | None = None
    try:
        span = statistics.MonthRange.from_query(request.query)
    except ValidationFailed as exc:
        q.errors.extend(exc.errors)
    q.done()
    assert span is not None and output is not None
    compute = statistics.agency_statistics if kind == "agencies" else statistics.officer_statistics
    threshold = settings.audit.late_rate_threshold
    async with storage_errors():
        items = await compute(
            request.app[DATABASE].reader,
            span,
            threshold=threshold,
            now=_now(request),
            tz=settings.tz,
        )
    if output != "json":
        return _download(kind, output, items, f"{kind}-{span.first}-{span.last}", settings.tz)
    return json_answer(
        {"from": span.first, "to": span.last, "threshold": threshold, "items": items}
    )


@routes.get("/v1/audit/agencies")
async def agency_table(request: web.Request) -> web.Response:
    return await _statistics(request, "agencies")


@routes.get("/v1/audit/officers")
async def officer_table(request: web.Request) -> web.Response:
    return await _statistics(request, "officers")


# --- consultations and early warnings -----------------------------------------------------


@routes.get("/v1/audit/consultations")
async def list_consultations(request: web.Request) -> web.Response:
    await require_staff(request, *AUDITORS)
    zone = request.app[SETTINGS].tz
    q = _Query(request.query, zone)
    state = q.choice("state", audit_reads.CONSULTATION_STATES)
    if state is None and not q.errors:
        q.errors.append(
            FieldError("state", f"is required: one of {', '.join(audit_reads.CONSULTATION_STATES)}")
        )
    agency = q.text("agency", 32)
    output = q.choice("format", FORMATS, "json")
    limit = q.number("limit", 500, 5000)
    q.done()
    assert state is not None and output is not None and limit is not None
    async with storage_errors():
        rows = await audit_reads.list_consultations(
            request.app[DATABASE].reader,
            cast(audit_reads.ConsultationState, state),
            _now(request),
            agency=agency,
            limit=limit,
        )
    items = [consultationjson_answer(c, zone) for c in rows]
    if output != "json":
        return _download("consultations", output, items, f"consultations-{state}", zone)
    return json_answer({"items": items, "next": None})


@routes.get("/v1/audit/warnings")
async def warnings(request: web.Request) -> web.Response:
    await require_staff(request, *AUDITORS)
    settings = request.app[SETTINGS]
    q = _Query(request.query, settings.tz)
    output = q.choice("format", FORMATS, "json")
    q.done()
    async with storage_errors():
        found = await early_warnings(
            request.app[DATABASE].reader, _now(request), settings, calendar=request.app[CALENDAR]
        )
    lists = cast(dict[str, Any], _plain(found, settings.tz))
    if output != "json":
        items = [
            {"list": name} | row for name in ("due_soon", "undelivered") for row in lists[name]
        ]
        return _download("warnings", cast(str, output), items, "warnings", settings.tz)
    return json_answer({"due_soon": lists["due_soon"], "undelivered": lists["undelivered"]})
