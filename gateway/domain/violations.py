"""The violation rules: pure functions over a dossier's timeline, each with a stable id.

:func:`detect` applies every rule to a whole stored timeline (time-ordered, late
arrivals included) and returns :class:`Finding` s with a stable ``fingerprint``, so the
ledger records each one once however often a dossier is audited again. The per-event
checks are the ones ingest's flags use (:mod:`gateway.domain.rules`): the 202 answer and
the ledger agree. ``false_closure`` is not detected from events: it is created when the
hotline confirms a citizen's report (:func:`false_closure`).

Each rule's Vietnamese description and its source text live in
``templates/audit/rules.toml`` (:func:`rule_texts`); :data:`RULES` names the sources in
English for logs and code.
"""

from __future__ import annotations

import functools
import tomllib
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path

from gateway.domain.calendar import WorkingCalendar
from gateway.domain.lateness import (
    APOLOGY,
    ENDING_TYPES,
    SUPPLEMENT,
    Lateness,
    effective_due_date,
    previous_working_day,
)
from gateway.domain.lateness import add_working_days as add_days
from gateway.domain.phones import normalize_phone
from gateway.domain.rules import (
    WITHDRAWAL_DETAIL,
    ConsultationView,
    answered_late,
    late_answer_detail,
    occurrence_detail,
    pause_detail,
    pending_consultations,
    phone_breach,
    withdrawal_approved,
)
from gateway.domain.timeline import TimelineEvent
from gateway.errors import ConfigError


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A rule id and the text it comes from (English, for logs and code)."""

    id: str
    source: str


RULES: Mapping[str, RuleInfo] = types.MappingProxyType(
    {
        r.id: r
        for r in (
            RuleInfo("phone_missing", "provincial letter 1781/UBND-HCTC"),
            RuleInfo("phone_invalid", "provincial letter 1781/UBND-HCTC"),
            RuleInfo("phone_landline", "provincial letter 1781/UBND-HCTC"),
            RuleInfo("false_closure", "provincial letters 1781/UBND-HCTC and 448/UBND-HCC"),
            RuleInfo("pause_during_consultation", "provincial letter 448/UBND-HCC"),
            RuleInfo("withdrawal_without_approval", "provincial letter 448/UBND-HCC"),
            RuleInfo(
                "late_consultation_answer", "provincial letter 448/UBND-HCC; Decree 61/2018 Art. 19"
            ),
            RuleInfo(
                "consultation_unanswered", "provincial letter 448/UBND-HCC; Directive 03/CT-UBND"
            ),
            RuleInfo("second_rescheduling", "Decree 61/2018 Art. 19"),
            RuleInfo("second_supplement_request", "Decision 766/QD-TTg; Decree 61/2018"),
            RuleInfo("late_apology", "Decree 61/2018 Art. 19"),
            RuleInfo(
                "overdue_without_apology",
                "provincial letter 1781/UBND-HCTC; Decree 61/2018 Art. 19",
            ),
        )
    }
)


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule breach found on a dossier, ready for the ledger."""

    rule: str
    fingerprint: str  # f"{rule}:{dossier_code}:{subject}", stable across audits
    dossier_code: str
    officer_id: str | None
    officer_name: str | None
    agency_code: str | None
    agency_name: str | None
    occurred_at: datetime
    evidence: tuple[str, ...]  # event ids
    detail: str  # English, for logs and the API


@dataclass(frozen=True, slots=True)
class RuleText:
    """A rule's Vietnamese description and the text it comes from, for people."""

    description: str
    source: str


def detect(
    dossier_code: str,
    events: Sequence[TimelineEvent],
    lateness: Lateness,
    now: datetime,
    calendar: WorkingCalendar,
    tz: tzinfo,
    second_reminder_days: int,
) -> list[Finding]:
    """Every breach of the rules on the dossier whose time-ordered timeline is ``events``.

    ``lateness`` is :func:`gateway.domain.lateness.judge` of the same timeline; ``now``
    matters only for what time alone makes a breach (a consultation still unanswered, a
    dossier still open past its date). The result is deterministic: the same timeline
    gives the same findings, in the same order.
    """
    facts = _Facts(dossier_code, events, calendar, tz)
    findings = [
        *facts.phones(),
        *facts.pauses(),
        *facts.withdrawals(),
        *facts.consultations(now, second_reminder_days),
        *facts.repeats(APOLOGY, "second_rescheduling"),
        *facts.repeats(SUPPLEMENT, "second_supplement_request"),
        *facts.late_apologies(lateness),
        *facts.overdue(lateness, now),
    ]
    return findings


def false_closure(
    dossier_code: str, events: Sequence[TimelineEvent], report_id: int
) -> Finding | None:
    """The ``false_closure`` a hotline finding confirms, on the officer of ``dossier.finished``.

    The closing claim is the latest ``dossier.finished`` (one that was not superseded if
    any): the one the citizen saw. None when the dossier was never marked finished.
    """
    finished = [e for e in events if e.type == "dossier.finished"]
    current = [e for e in finished if not e.superseded] or finished
    if not current:
        return None
    closing = current[-1]
    code, name = _agency(events)
    return Finding(
        rule="false_closure",
        fingerprint=f"false_closure:{dossier_code}:report-{report_id}",
        dossier_code=dossier_code,
        officer_id=closing.actor_id,
        officer_name=closing.actor_name,
        agency_code=code,
        agency_name=name,
        occurred_at=closing.occurred_at,
        evidence=(closing.id,),
        detail=f"marked finished but not finished, confirmed by the hotline (report {report_id})",
    )


@functools.cache
def rule_texts(templates_dir: Path) -> Mapping[str, RuleText]:
    """The rules' texts from ``<templates_dir>/audit/rules.toml``, read once per folder."""
    path = templates_dir / "audit" / "rules.toml"
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("TEMPLATES_DIR", f"cannot read {path}: {exc}") from exc
    texts: dict[str, RuleText] = {}
    for rule, entry in raw.items():
        description = entry.get("description") if isinstance(entry, dict) else None
        source = entry.get("source") if isinstance(entry, dict) else None
        if not isinstance(description, str) or not isinstance(source, str):
            raise ConfigError("TEMPLATES_DIR", f"{path}: [{rule}] needs description and source")
        texts[rule] = RuleText(description.strip(), source.strip())
    return types.MappingProxyType(texts)


def description(rule: str, templates_dir: Path) -> str:
    """The Vietnamese description of ``rule`` (KeyError for an unknown rule)."""
    return rule_texts(templates_dir)[rule].description


class _Facts:
    """One timeline and what several rules read from it."""

    def __init__(
        self,
        code: str,
        events: Sequence[TimelineEvent],
        calendar: WorkingCalendar,
        tz: tzinfo,
    ) -> None:
        self.code = code
        self.events = events
        self.calendar = calendar
        self.tz = tz
        self.agency = _agency(events)
        requests: dict[str, TimelineEvent] = {}
        answers: dict[str, TimelineEvent] = {}
        for e in events:
            cid = e.data.get("consultation_id")
            if not cid:
                continue
            if e.type == "dossier.consultation_requested":
                requests.setdefault(cid, e)
            elif e.type == "dossier.consultation_answered":
                answers.setdefault(cid, e)
        self.requests = requests
        self.answers = answers

    def finding(
        self,
        rule: str,
        subject: str,
        at: datetime,
        evidence: Sequence[TimelineEvent],
        detail: str,
        officer: TimelineEvent | None = None,
        agency: tuple[str | None, str | None] | None = None,
    ) -> Finding:
        code, name = agency or self.agency
        return Finding(
            rule=rule,
            fingerprint=f"{rule}:{self.code}:{subject}",
            dossier_code=self.code,
            officer_id=officer.actor_id if officer else None,
            officer_name=officer.actor_name if officer else None,
            agency_code=code,
            agency_name=name,
            occurred_at=at,
            evidence=tuple(e.id for e in evidence),
            detail=detail,
        )

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def start_of(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self.tz)

    # -- the rules --------------------------------------------------------------------

    def phones(self) -> list[Finding]:
        found = []
        for e in self.events:
            if e.type != "dossier.received":
                continue
            # The receipt is where a phone must be entered: absent means none was.
            breach = phone_breach(normalize_phone(e.phone or ""))
            if breach is not None:
                rule, detail = breach
                found.append(self.finding(rule, e.id, e.occurred_at, (e,), detail, officer=e))
        return found

    def pauses(self) -> list[Finding]:
        views = [
            ConsultationView(
                cid,
                None,
                request.occurred_at,
                None,
                self.answers[cid].occurred_at if cid in self.answers else None,
            )
            for cid, request in self.requests.items()
        ]
        found = []
        for e in self.events:
            if e.type != "dossier.paused":
                continue
            pending = pending_consultations(views, e.occurred_at)
            if pending:
                proof = (e, *(self.requests[cid] for cid in pending))
                found.append(
                    self.finding(
                        "pause_during_consultation",
                        e.id,
                        e.occurred_at,
                        proof,
                        pause_detail(pending),
                        officer=e,
                    )
                )
        return found

    def withdrawals(self) -> list[Finding]:
        return [
            self.finding(
                "withdrawal_without_approval",
                e.id,
                e.occurred_at,
                (e,),
                WITHDRAWAL_DETAIL,
                officer=e,
            )
            for e in self.events
            if e.type == "dossier.withdrawn" and not withdrawal_approved(e.data)
        ]

    def consultations(self, now: datetime, second_reminder_days: int) -> list[Finding]:
        found = []
        for cid in sorted(self.requests):
            request = self.requests[cid]
            due = request.data.get("due_at")
            if not isinstance(due, datetime):
                continue
            party = request.data.get("agency") or {}
            agency = (party.get("code"), party.get("name"))
            # The second reminder goes out this many working days after the due date; not
            # answered by the end of that day, the consultation counts as unanswered.
            limit = add_days(self.calendar, self.local_date(due), second_reminder_days)
            answer = self.answers.get(cid)
            proof = (request, answer) if answer else (request,)
            if answer is not None and not answered_late(due, answer.occurred_at):
                continue
            if answer is not None and self.local_date(answer.occurred_at) <= limit:
                found.append(
                    self.finding(
                        "late_consultation_answer",
                        cid,
                        answer.occurred_at,
                        proof,
                        late_answer_detail(cid, due, answer.occurred_at),
                        agency=agency,
                    )
                )
            elif answer is not None or self.local_date(now) > limit:
                found.append(
                    self.finding(
                        "consultation_unanswered",
                        cid,
                        self.start_of(limit + timedelta(days=1)),
                        proof,
                        f"consultation {cid} not answered within {second_reminder_days} "
                        f"working day(s) after its deadline {self.local_date(due).isoformat()}",
                        agency=agency,
                    )
                )
        return found

    def repeats(self, event_type: str, rule: str) -> list[Finding]:
        same = [e for e in self.events if e.type == event_type]
        return [
            self.finding(
                rule,
                e.id,
                e.occurred_at,
                (same[0], e),
                occurrence_detail(event_type, number),
                officer=e,
            )
            for number, e in enumerate(same[1:], start=2)
        ]

    def late_apologies(self, lateness: Lateness) -> list[Finding]:
        found = []
        in_force: date | None = None
        for e in self.events:
            if e.type != APOLOGY:
                continue
            due = in_force or effective_due_date(
                lateness.due_date, self.events, self.calendar, self.tz, until=e.occurred_at
            )
            new_due = e.data.get("new_due_at")
            if isinstance(new_due, datetime):
                in_force = self.local_date(new_due)
            if due is None:
                continue
            deadline = previous_working_day(self.calendar, due)
            if self.local_date(e.occurred_at) > deadline:
                found.append(
                    self.finding(
                        "late_apology",
                        e.id,
                        e.occurred_at,
                        (e,),
                        f"apology sent on {self.local_date(e.occurred_at).isoformat()}, later "
                        f"than one working day before the due date {due.isoformat()}",
                        officer=e,
                    )
                )
        return found

    def overdue(self, lateness: Lateness, now: datetime) -> list[Finding]:
        due = lateness.effective_due_date
        if due is None or lateness.timely_apology:
            return []
        if lateness.ended_at is not None:
            if self.local_date(lateness.ended_at) <= due:
                return []
        elif self.local_date(now) <= due:
            return []
        proof = [e for e in self.events if e.due_at is not None][:1]
        proof += [e for e in self.events if e.type in ENDING_TYPES][:1]
        return [
            self.finding(
                "overdue_without_apology",
                "dossier",
                self.start_of(due + timedelta(days=1)),
                proof,
                f"past its due date {due.isoformat()} with no apology on or before it",
            )
        ]


def _agency(events: Sequence[TimelineEvent]) -> tuple[str | None, str | None]:
    # The agency the latest event that named one says; it rarely changes.
    for e in reversed(events):
        if e.agency_code is not None:
            return e.agency_code, e.agency_name
    return None, None
