"""The workflow of citizens' reports (phản ánh): states, numbers, notices, staff requests.

A report says a dossier was closed but not finished (``false_closure``) or something else
went wrong (``problem``). It comes from the OA (``zalo``), from the citizen's "no" to the
result check (``result_check``) or from a call to the hotline (``phone``).

Its states follow Open311 where they fit::

    open ──► in_progress ──► resolved
      │            └───────► rejected
      ├──────────────────────► resolved
      └──────────────────────► rejected
    resolved | rejected ──► open   (an admin reopens it)

Every state change sends the citizen a notice of the kind :func:`notice_kind_for` names.
A ``false_closure`` report is concluded with a *finding* (``confirmed`` or
``not_confirmed``, see :func:`check_finding`); a confirmed one puts the officer who
closed the dossier in the violations ledger.
This module also parses the staff API's bodies and query strings into typed requests,
collecting every faulty field into one :class:`~gateway.errors.ValidationFailed`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any, Final, Literal, cast

from gateway.domain.calendar import WorkingCalendar
from gateway.domain.codes import parse_dossier_code
from gateway.domain.phones import normalize_phone
from gateway.errors import Conflict, FieldError, PermissionDenied, ValidationFailed

__all__ = [
    "DESCRIPTION_MAX",
    "FINAL_STATUSES",
    "FINDINGS",
    "KINDS",
    "LIST_LIMIT_DEFAULT",
    "LIST_LIMIT_MAX",
    "NOTE_MAX",
    "OPEN_STATUSES",
    "REPLY_MAX",
    "SLA_STATES",
    "SOURCES",
    "STATUSES",
    "Finding",
    "PhoneForm",
    "PhoneReport",
    "QueueFilter",
    "ReportKind",
    "ReportQuery",
    "ReportSource",
    "ReportStatus",
    "Sla",
    "SlaState",
    "TransitionRequest",
    "check_finding",
    "check_transition",
    "notice_kind_for",
    "parse_handoff_query",
    "parse_phone_form",
    "parse_phone_report",
    "parse_queue_query",
    "parse_reply_text",
    "parse_report_query",
    "parse_transition",
    "report_number",
    "sla_due",
    "sla_of",
]

ReportStatus = Literal["open", "in_progress", "resolved", "rejected"]
ReportKind = Literal["false_closure", "problem"]
# "web": the citizen page /tra-cuu (a citizen without Zalo, from the link in an SMS).
ReportSource = Literal["zalo", "result_check", "phone", "web"]
# The hotline's conclusion on a false-closure report, once it has checked with the agency.
Finding = Literal["confirmed", "not_confirmed"]

STATUSES: Final[tuple[ReportStatus, ...]] = ("open", "in_progress", "resolved", "rejected")
KINDS: Final[tuple[ReportKind, ...]] = ("false_closure", "problem")
SOURCES: Final[tuple[ReportSource, ...]] = ("zalo", "result_check", "phone", "web")
FINDINGS: Final[tuple[Finding, ...]] = ("confirmed", "not_confirmed")
FINAL_STATUSES: Final = frozenset({"resolved", "rejected"})
# The states the hotline still has to act on: the queue's default.
OPEN_STATUSES: Final[tuple[ReportStatus, ...]] = ("open", "in_progress")
# Staff must say why when they close a report: the citizen reads it.
NOTE_REQUIRED: Final = frozenset({"resolved", "rejected"})

HANDOFF_STATUSES: Final = ("open", "closed")

DESCRIPTION_MAX: Final = 4000
NOTE_MAX: Final = 2000
# A staff member's own text for the citizen's notice: at most one OA message (2,000
# characters); the SMS segment budgets usually allow far less (checked when moving).
REPLY_MAX: Final = 2000
AGENCY_MAX: Final = 32
AGENCY_NAME_MAX: Final = 300
LIST_LIMIT_DEFAULT: Final = 50
LIST_LIMIT_MAX: Final = 200
# Ids are 64-bit in the database: a larger cursor is a client error, not a database one.
ID_MAX: Final = 2**63 - 1

_NEXT: Final[Mapping[str, frozenset[str]]] = {
    "open": frozenset({"in_progress", "resolved", "rejected"}),
    "in_progress": frozenset({"resolved", "rejected"}),
    "resolved": frozenset(),
    "rejected": frozenset(),
}
_NOTICE_KINDS: Final[Mapping[str, str]] = {
    "open": "report_received",
    "in_progress": "report_in_progress",
    "resolved": "report_resolved",
    "rejected": "report_rejected",
}
# "+07:00" arrives as " 07:00" when a client does not percent-encode the query string.
_DECODED_PLUS: Final = re.compile(r" (\d{2}:?\d{2})$")


def check_transition(current: str, to: str, *, may_reopen: bool = False) -> None:
    """Refuse a state change the workflow does not allow.

    Raises :class:`Conflict` naming the states the report may go to instead, or
    :class:`PermissionDenied` when a final report is reopened by someone who may not.
    """
    if to not in _NEXT:
        raise ValueError(f"unknown report status {to!r}")
    if current == to:
        raise Conflict(f"the report is already {current}")
    if current in FINAL_STATUSES:
        if to != "open":
            raise Conflict(
                f"the report is {current}, which is final; only reopening it (to: open) is possible"
            )
        if not may_reopen:
            raise PermissionDenied(f"only an admin may reopen a {current} report")
        return
    allowed = _NEXT.get(current)
    if allowed is None:
        raise Conflict(f"the report is in an unknown state {current!r}")
    if to not in allowed:
        choices = ", ".join(s for s in STATUSES if s in allowed)
        raise Conflict(f"a report cannot go from {current} to {to}; from {current}: {choices}")


def check_finding(
    kind: str, current: str | None, finding: str, *, may_change: bool = False
) -> None:
    """Refuse a finding the report cannot take.

    Only a ``false_closure`` report takes one (:class:`ValidationFailed` naming
    ``finding`` otherwise). Once given, only an admin may change it
    (:class:`PermissionDenied`): it is the basis of a violation in the ledger, which is
    corrected by a decision on that violation, not by a hotline officer changing its mind.
    """
    if kind != "false_closure":
        raise ValidationFailed(
            [FieldError("finding", f"only a false_closure report takes a finding, not a {kind}")]
        )
    if current is None:
        return
    if not may_change:
        raise PermissionDenied(
            f"the finding was already given ({current}); only an admin may change it"
        )
    if current == finding:
        raise Conflict(f"the finding is already {current}")


def report_number(report_id: int, year: int) -> str:
    """The number citizens see and quote: ``PA-2026-000123`` (the id, six digits or more)."""
    if report_id < 1:
        raise ValueError(f"report ids start at 1, got {report_id}")
    return f"PA-{year}-{report_id:06d}"


def notice_kind_for(status: str) -> str:
    """The notice kind that tells the citizen their report reached ``status``."""
    try:
        return _NOTICE_KINDS[status]
    except KeyError:
        raise ValueError(f"unknown report status {status!r}") from None


# --- staff requests (reports and handoffs) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class PhoneReport:
    """A report the hotline wrote down during a call."""

    dossier_code: str
    kind: ReportKind
    description: str
    phone_e164: str
    # The agency of a dossier the gateway has never seen (ignored for a known one).
    agency_code: str | None = None
    agency_name: str | None = None


@dataclass(frozen=True, slots=True)
class TransitionRequest:
    """A staff member moves a report to ``to``; ``note`` is shown to the citizen.

    ``finding`` concludes a false-closure report (``confirmed`` puts the closing officer
    in the violations ledger). ``reply``, if given, is the text the citizen receives
    instead of the state's template (sent as written on Zalo, unaccented as needed by SMS).
    """

    to: ReportStatus
    note: str | None
    finding: Finding | None = None
    reply: str | None = None


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """Filters and a keyset page of ``GET /v1/reports`` (oldest first, ids after ``after``)."""

    statuses: tuple[ReportStatus, ...] = ()
    agency: str | None = None
    since: datetime | None = None
    limit: int = LIST_LIMIT_DEFAULT
    after: int | None = None


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "the body must be a JSON object")])
    return body


def _text(
    body: Mapping[str, Any],
    field: str,
    errors: list[FieldError],
    *,
    required: bool,
    max_length: int,
    required_message: str = "is required",
) -> str | None:
    value = body.get(field)
    if value is None:
        if required:
            errors.append(FieldError(field, required_message))
        return None
    if not isinstance(value, str):
        errors.append(FieldError(field, "must be a string"))
        return None
    value = value.strip()
    if not value:
        if required:
            errors.append(FieldError(field, f"{required_message} and must not be blank"))
        return None
    if len(value) > max_length:
        errors.append(FieldError(field, f"must be at most {max_length} characters"))
        return None
    return value


def _choice(
    body: Mapping[str, Any], field: str, choices: tuple[str, ...], errors: list[FieldError]
) -> str | None:
    value = body.get(field)
    if value is None:
        errors.append(FieldError(field, f"is required: one of {', '.join(choices)}"))
        return None
    if value not in choices:
        errors.append(FieldError(field, f"must be one of {', '.join(choices)}, not {value!r}"))
        return None
    return cast(str, value)


def parse_phone_report(body: Any) -> PhoneReport:
    """``POST /v1/reports``: ``{"dossier", "kind", "description", "phone"}``, and for a
    dossier the gateway has never seen ``"agency_code"`` and/or ``"agency_name"``."""
    body = _object(body)
    errors: list[FieldError] = []
    code: str | None = None
    raw_code = _text(body, "dossier", errors, required=True, max_length=64)
    if raw_code is not None:
        try:
            code = str(parse_dossier_code(raw_code))
        except ValueError as exc:
            errors.append(FieldError("dossier", f"is not a dossier code: {exc}"))
    kind = _choice(body, "kind", KINDS, errors)
    description = _text(body, "description", errors, required=True, max_length=DESCRIPTION_MAX)
    phone: str | None = None
    raw_phone = _text(body, "phone", errors, required=True, max_length=64)
    if raw_phone is not None:
        result = normalize_phone(raw_phone)
        if result.ok and result.e164 is not None:
            phone = result.e164
        else:
            errors.append(
                FieldError("phone", f"is not a usable Vietnamese mobile number ({result.reason})")
            )
    agency_code = _text(body, "agency_code", errors, required=False, max_length=AGENCY_MAX)
    agency_name = _text(body, "agency_name", errors, required=False, max_length=AGENCY_NAME_MAX)
    if errors:
        raise ValidationFailed(errors)
    assert code is not None and kind is not None and description is not None
    assert phone is not None
    return PhoneReport(code, cast(ReportKind, kind), description, phone, agency_code, agency_name)


def parse_transition(body: Any) -> TransitionRequest:
    """``POST /v1/reports/{id}/transitions``: ``{"to", "note", "finding", "reply"}``.

    Closing needs a note; ``finding``, if given, is ``confirmed`` or ``not_confirmed``;
    ``reply``, if given and not blank, replaces the template's text for the citizen.
    """
    body = _object(body)
    errors: list[FieldError] = []
    to = _choice(body, "to", STATUSES, errors)
    finding = None
    if body.get("finding") is not None:
        finding = _choice(body, "finding", FINDINGS, errors)
    note = _text(
        body,
        "note",
        errors,
        required=to in NOTE_REQUIRED,
        max_length=NOTE_MAX,
        required_message=f"is required when the report is {to}: the citizen reads it",
    )
    reply = _text(body, "reply", errors, required=False, max_length=REPLY_MAX)
    if errors:
        raise ValidationFailed(errors)
    assert to is not None
    return TransitionRequest(cast(ReportStatus, to), note, cast(Finding | None, finding), reply)


def parse_reply_text(body: Any, *, max_length: int = NOTE_MAX) -> str:
    """A staff reply on the OA: ``{"text"}``, not blank, at most ``max_length`` characters."""
    body = _object(body)
    errors: list[FieldError] = []
    text = _text(body, "text", errors, required=True, max_length=max_length)
    if errors:
        raise ValidationFailed(errors)
    assert text is not None
    return text


def parse_report_query(query: Mapping[str, str], zone: tzinfo) -> ReportQuery:
    """``GET /v1/reports?status=&agency=&since=&limit=&after=``.

    ``status`` may list several states (``open,in_progress``); ``since`` is a date (from
    local midnight) or a date-time with its offset.
    """
    errors: list[FieldError] = []
    statuses: list[ReportStatus] = []
    for part in (query.get("status") or "").split(","):
        part = part.strip()
        if not part:
            continue
        if part in STATUSES:
            statuses.append(part)
        else:
            errors.append(
                FieldError("status", f"must be one of {', '.join(STATUSES)}, not {part!r}")
            )
    agency = (query.get("agency") or "").strip() or None
    if agency is not None and len(agency) > AGENCY_MAX:
        errors.append(FieldError("agency", f"must be at most {AGENCY_MAX} characters"))
    since = _since(query.get("since"), zone, errors)
    limit = _positive(query.get("limit"), "limit", errors, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX)
    after = _positive(query.get("after"), "after", errors, None, ID_MAX)
    if errors:
        raise ValidationFailed(errors)
    assert limit is not None
    return ReportQuery(tuple(dict.fromkeys(statuses)), agency, since, limit, after)


def parse_handoff_query(query: Mapping[str, str]) -> tuple[str, int]:
    """``GET /v1/handoffs?status=open|closed&limit=``: the status (default open), the limit."""
    errors: list[FieldError] = []
    status = (query.get("status") or "open").strip()
    if status not in HANDOFF_STATUSES:
        errors.append(
            FieldError("status", f"must be one of {', '.join(HANDOFF_STATUSES)}, not {status!r}")
        )
    limit = _positive(query.get("limit"), "limit", errors, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX)
    if errors:
        raise ValidationFailed(errors)
    assert limit is not None
    return status, limit


def _since(raw: str | None, zone: tzinfo, errors: list[FieldError]) -> datetime | None:
    if raw is None or not raw.strip():
        return None
    text = _DECODED_PLUS.sub(r"+\1", raw.strip())
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(0), tzinfo=zone)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        errors.append(FieldError("since", "must be a date (2026-03-01) or a date-time with offset"))
        return None
    if moment.tzinfo is None:
        errors.append(FieldError("since", "needs a UTC offset, e.g. 2026-03-01T00:00:00+07:00"))
        return None
    try:
        moment.astimezone(UTC)  # what the database is given; year 1 or 9999 may not fit
    except OverflowError:
        errors.append(FieldError("since", "is out of range"))
        return None
    return moment


def _positive(
    raw: str | None, field: str, errors: list[FieldError], default: int | None, top: int | None
) -> int | None:
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        errors.append(FieldError(field, f"must be a whole number, not {raw!r}"))
        return default
    if value < 1 or (top is not None and value > top):
        bounds = f"between 1 and {top}" if top is not None else "1 or more"
        errors.append(FieldError(field, f"must be {bounds}"))
        return default
    return value


# --- the hotline's queue: SLA clock and filters -----------------------------------------

# Where an open report stands against its SLA: past its due day, due today, due on the
# next working day, or later than that.
SlaState = Literal["overdue", "due_today", "due_soon", "on_time"]
SLA_STATES: Final[tuple[SlaState, ...]] = ("overdue", "due_today", "due_soon", "on_time")
ASSIGNEE_ID_MAX: Final = 18  # digits of a 64-bit id


@dataclass(frozen=True, slots=True)
class Sla:
    """An open report's SLA: when it is due and where it stands ``now``.

    ``days`` counts working days: overdue by (at least 1) for ``overdue``, left for
    ``due_soon`` (1) and ``on_time`` (2 or more), 0 for ``due_today``.
    """

    due_at: datetime
    state: SlaState
    days: int


def sla_due(
    kind: str,
    created_at: datetime,
    expected_at: datetime | None,
    sla_days: Mapping[str, int],
    calendar: WorkingCalendar,
) -> datetime:
    """When the hotline should have answered a report: ``sla_days[kind]`` working days
    after it was made (closing time of that day), but never later than the answer date
    promised to the citizen (``expected_at``). A kind missing from ``sla_days`` is held to
    the promised date alone (or the day it was made, if there is none)."""
    days = sla_days.get(kind)
    if days is None:
        return expected_at or calendar.add_working_days(created_at, 0)
    due = calendar.add_working_days(created_at, days)
    return min(due, expected_at) if expected_at is not None else due


def sla_of(due_at: datetime, now: datetime, calendar: WorkingCalendar) -> Sla:
    """Where a report due at ``due_at`` stands at ``now``, by local days as the national
    rating counts lateness: overdue from the day after its due day."""
    due_day = due_at.astimezone(calendar.tz).date()
    today = now.astimezone(calendar.tz).date()
    if today > due_day:
        return Sla(due_at, "overdue", max(1, calendar.working_days_between(due_day, today)))
    if today == due_day:
        return Sla(due_at, "due_today", 0)
    left = calendar.working_days_between(today, due_day)
    return Sla(due_at, "due_soon" if left <= 1 else "on_time", left)


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """The console queue's filters (``GET /console/reports``).

    ``assignee`` is ``"me"``, ``"none"`` (nobody), a staff id, or None (anyone).
    """

    statuses: tuple[ReportStatus, ...] = OPEN_STATUSES
    kind: ReportKind | None = None
    agency: str | None = None
    sla: SlaState | None = None
    assignee: Literal["me", "none"] | int | None = None

    def is_default(self) -> bool:
        """Whether this is the plain queue (no filter chosen)."""
        return self == QueueFilter()


def parse_queue_query(params: Sequence[tuple[str, str]]) -> QueueFilter:
    """The queue's filters from its query string's (name, value) pairs, in order.

    ``status`` may repeat (default: the open states); ``kind``, ``agency`` (an agency
    code), ``sla`` and ``assignee`` (``me``, ``none`` or a staff id) are single. Blank
    values are no filter; unknown names are ignored. Raises :class:`ValidationFailed`
    naming every faulty field.
    """
    errors: list[FieldError] = []
    single: dict[str, str] = {}
    statuses: list[ReportStatus] = []
    for name, raw in params:
        value = raw.strip()
        if not value:
            continue
        if name == "status":
            if value in STATUSES:
                statuses.append(value)
            else:
                errors.append(_not_one_of("status", STATUSES, value))
        elif name in ("kind", "agency", "sla", "assignee"):
            single[name] = value
    kind = single.get("kind")
    if kind is not None and kind not in KINDS:
        errors.append(_not_one_of("kind", KINDS, kind))
    agency = single.get("agency")
    if agency is not None and len(agency) > AGENCY_MAX:
        errors.append(FieldError("agency", f"must be at most {AGENCY_MAX} characters"))
    sla = single.get("sla")
    if sla is not None and sla not in SLA_STATES:
        errors.append(_not_one_of("sla", SLA_STATES, sla))
    assignee = _assignee(single.get("assignee"), errors)
    if errors:
        raise ValidationFailed(errors)
    return QueueFilter(
        tuple(dict.fromkeys(statuses)) or OPEN_STATUSES,
        cast(ReportKind | None, kind),
        agency,
        cast(SlaState | None, sla),
        assignee,
    )


def _not_one_of(field: str, choices: Sequence[str], value: str) -> FieldError:
    return FieldError(field, f"must be one of {', '.join(choices)}, not {value[:40]!r}")


def _assignee(raw: str | None, errors: list[FieldError]) -> Literal["me", "none"] | int | None:
    if raw is None:
        return None
    if raw in ("me", "none"):
        return cast(Literal["me", "none"], raw)
    if raw.isascii() and raw.isdigit() and len(raw) <= ASSIGNEE_ID_MAX and int(raw) > 0:
        return int(raw)
    errors.append(FieldError("assignee", "must be me, none or a staff id"))
    return None


# --- the console's phone-report form ------------------------------------------------------

_FORM_FIELDS: Final = (
    "kind",
    "dossier_code",
    "phone",
    "description",
    "agency_code",
    "agency_name",
)


@dataclass(frozen=True, slots=True)
class PhoneForm:
    """A report the hotline typed in during a call (console form).

    ``phone_e164`` is optional (the caller may not want to be called back);
    ``agency_code``/``agency_name`` are used only for a dossier the gateway has never
    seen, whose agency the caller names.
    """

    kind: ReportKind
    dossier_code: str
    description: str
    phone_e164: str | None
    agency_code: str | None
    agency_name: str | None


def parse_phone_form(form: Mapping[str, str]) -> PhoneForm:
    """The console's phone-report form; :class:`ValidationFailed` names every faulty field
    (``kind``, ``dossier_code``, ``phone``, ``description``, ``agency_code``,
    ``agency_name``). The code is read in its canonical form (upper case allowed to be
    typed in lower case); the phone is normalised to E.164."""
    values = {name: str(form.get(name, "")).strip() for name in _FORM_FIELDS}
    errors: list[FieldError] = []
    kind = values["kind"]
    if kind not in KINDS:
        errors.append(_not_one_of("kind", KINDS, kind))
    code = values["dossier_code"].upper()
    try:
        code = str(parse_dossier_code(code))
    except ValueError as exc:
        errors.append(FieldError("dossier_code", f"is not a dossier code: {exc}"))
    description = values["description"]
    if not description or len(description) > DESCRIPTION_MAX:
        errors.append(
            FieldError("description", f"is required, at most {DESCRIPTION_MAX} characters")
        )
    phone = None
    if values["phone"]:
        result = normalize_phone(values["phone"])
        if result.ok and result.e164 is not None:
            phone = result.e164
        else:
            errors.append(FieldError("phone", f"is not a usable mobile number ({result.reason})"))
    if len(values["agency_code"]) > AGENCY_MAX:
        errors.append(FieldError("agency_code", f"must be at most {AGENCY_MAX} characters"))
    if len(values["agency_name"]) > AGENCY_NAME_MAX:
        errors.append(FieldError("agency_name", f"must be at most {AGENCY_NAME_MAX} characters"))
    if errors:
        raise ValidationFailed(errors)
    return PhoneForm(
        cast(ReportKind, kind),
        code,
        description,
        phone,
        values["agency_code"] or None,
        values["agency_name"] or None,
    )
