"""Auditing dossiers: verdicts, the violations ledger and the officer directory, derived.

One idempotent step, :func:`audit_dossiers`, turns stored timelines into what the ledger
and the statistics read: it judges each dossier's lateness, writes its ``dossier_audit``
row, appends the findings not recorded yet (each with a suggested sanction, counted
against the officer's earlier violations of the rule that were not dismissed), dismisses
findings no longer detected, and adds the officers events name to the directory. It is
run by:

- :func:`audit_recent`, the sweep (every 30 s from the worker's cron) over the dossiers
  changed since a watermark kept in Redis, a little more than once each (a grace of 60 s
  covers transactions that committed after others that began later);
- :func:`rebuild` (``tthc audit rebuild``), over all dossiers or those changed since a
  day, in keyset pages of 500 codes, one transaction per page, so memory stays bounded
  whatever the size of the history.

Running either twice appends nothing the second time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.domain.calendar import DEFAULT_OVERRIDES_FILE, WorkingCalendar, load_overrides
from gateway.domain.lateness import Lateness, judge
from gateway.domain.sanctions import Ladder, Prior, load_ladder, suggest, window_around
from gateway.domain.timeline import TimelineEvent, timeline_of
from gateway.domain.violations import Finding, detect
from gateway.settings import Settings
from gateway.storage import audit as store

__all__ = [
    "PAGE_SIZE",
    "AuditResult",
    "Auditor",
    "RebuildResult",
    "audit_dossiers",
    "audit_recent",
    "rebuild",
    "watermark_key",
]

log = logging.getLogger(__name__)

PAGE_SIZE: Final = 500
# The sweep audits at most this many dossiers per run; the rest wait for the next run.
SWEEP_LIMIT: Final = 2000
# Transactions commit a little after the updated_at they wrote: look back this far.
GRACE: Final = timedelta(seconds=60)
_PHONE_RULES: Final = frozenset({"phone_missing", "phone_invalid", "phone_landline"})
_STALE_REASON: Final = "the dossier's timeline, audited again, does not show it any more"


@dataclass(frozen=True, slots=True)
class AuditResult:
    """What auditing some dossiers did."""

    dossiers: int = 0
    new_violations: int = 0
    dismissed: int = 0

    def __add__(self, other: AuditResult) -> AuditResult:
        return AuditResult(
            self.dossiers + other.dossiers,
            self.new_violations + other.new_violations,
            self.dismissed + other.dismissed,
        )


@dataclass(frozen=True, slots=True)
class Auditor:
    """What judging needs besides the timelines: read once per sweep or rebuild."""

    calendar: WorkingCalendar
    ladder: Ladder
    tz: tzinfo
    second_reminder_days: int

    @classmethod
    def of(cls, settings: Settings) -> Auditor:
        """Build it from the settings (holiday overrides, ladder file, time zone)."""
        overrides = load_overrides(settings.holiday_overrides_file or DEFAULT_OVERRIDES_FILE)
        return cls(
            WorkingCalendar(overrides, tz=settings.time_zone),
            load_ladder(settings.audit.ladder_file),
            settings.tz,
            settings.audit.consultation_second_reminder_days,
        )


def watermark_key(settings: Settings) -> str:
    """The Redis key of the sweep's watermark."""
    return settings.redis_key_prefix + "audit:watermark"


async def audit_dossiers(
    engine: AsyncEngine,
    codes: Sequence[str],
    settings: Settings,
    now: datetime,
    *,
    auditor: Auditor | None = None,
) -> AuditResult:
    """Audit these dossiers (a page: a few hundred at most) in one transaction."""
    if not codes:
        return AuditResult()
    auditor = auditor or Auditor.of(settings)
    async with engine.begin() as conn:
        return await _audit_page(conn, codes, auditor, now)


@dataclass(frozen=True, slots=True)
class RebuildResult:
    """What a rebuild did, and how long it took."""

    audit: AuditResult
    seconds: float

    @property
    def rate(self) -> float:
        """Dossiers per second."""
        return self.audit.dossiers / self.seconds if self.seconds > 0 else 0.0


async def rebuild(
    engine: AsyncEngine,
    settings: Settings,
    since: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    now: datetime | None = None,
    page_size: int = PAGE_SIZE,
    clock: Callable[[], float] = time.monotonic,
) -> RebuildResult:
    """Audit every dossier (or those changed at or after ``since``) in keyset pages of
    ``page_size`` codes, one transaction each; ``progress(done, total)`` after each page.
    Only one page of timelines is in memory at a time."""
    started = clock()
    now = now or datetime.now(UTC)
    auditor = Auditor.of(settings)
    async with engine.connect() as conn:
        total = await store.count_dossiers(conn, since)
    result = AuditResult()
    after: str | None = None
    while True:
        async with engine.begin() as conn:
            codes = await store.dossier_codes_page(conn, after, page_size, since)
            if not codes:
                break
            result += await _audit_page(conn, codes, auditor, now)
        after = codes[-1]
        if progress is not None:
            # Dossiers created during the rebuild may push "done" past the first count.
            progress(result.dossiers, max(total, result.dossiers))
    return RebuildResult(result, clock() - started)


async def audit_recent(
    engine: AsyncEngine,
    redis: Redis,
    settings: Settings,
    now: datetime,
    *,
    limit: int = SWEEP_LIMIT,
    auditor: Auditor | None = None,
) -> AuditResult:
    """The sweep: audit up to ``limit`` dossiers changed since the watermark, oldest
    change first, and move the watermark on.

    The watermark is a ``(updated_at, code)`` cursor. A run that reached the end of the
    changes sets it to ``now - 60 s``, so the next run looks again at that last minute
    (a transaction may commit after a later one); a run cut short by ``limit`` sets it
    just after the last dossier it audited, so a backlog drains run after run.
    """
    key = watermark_key(settings)
    cursor = _parse_watermark(await redis.get(key))
    async with engine.connect() as conn:
        changed = await store.changed_dossiers(conn, cursor, limit)
    if not changed:
        return AuditResult()
    auditor = auditor or Auditor.of(settings)
    result = AuditResult()
    codes = [code for _, code in changed]
    for start in range(0, len(codes), PAGE_SIZE):
        result += await audit_dossiers(
            engine, codes[start : start + PAGE_SIZE], settings, now, auditor=auditor
        )
    following = changed[-1] if len(changed) >= limit else (now - GRACE, "")
    await redis.set(key, _format_watermark(following))
    return result


def _parse_watermark(raw: bytes | str | None) -> tuple[datetime, str] | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    at, _, code = text.partition("|")
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        log.warning("audit watermark unreadable; sweeping from the start", extra={"raw": text})
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), code


def _format_watermark(cursor: tuple[datetime, str]) -> str:
    return f"{cursor[0].astimezone(UTC).isoformat()}|{cursor[1]}"


# --- one page -------------------------------------------------------------------------


async def _audit_page(
    conn: AsyncConnection, codes: Sequence[str], auditor: Auditor, now: datetime
) -> AuditResult:
    timelines = await store.load_timelines(conn, codes)
    audits: list[dict[str, Any]] = []
    findings: dict[str, Finding] = {}
    actors: list[store.Actor] = []
    for code, rows in timelines.items():
        if not rows:  # a dossier row always comes with its events; nothing to judge
            continue
        timeline = timeline_of(rows)
        lateness = judge(timeline, auditor.calendar, auditor.tz)
        found = detect(
            code,
            timeline,
            lateness,
            now,
            auditor.calendar,
            auditor.tz,
            auditor.second_reminder_days,
        )
        audits.append(_audit_row(code, timeline, lateness, found, auditor.tz, now))
        findings.update((f.fingerprint, f) for f in found)
        actors.extend(
            store.Actor(e.actor_id, e.actor_name, e.agency_code) for e in timeline if e.actor_id
        )
    del timelines
    await store.save_audits(conn, audits)
    await store.upsert_officers_from_events(conn, actors, now)
    stored = await store.stored_violations(conn, codes)
    taken = {v.fingerprint for v in stored}
    new = sorted(
        (f for f in findings.values() if f.fingerprint not in taken),
        key=lambda f: (f.occurred_at, f.fingerprint),
    )
    appended = await _append(conn, new, auditor.ladder, now)
    dismissed = await store.dismiss_stale(conn, stored, findings.keys(), now, _STALE_REASON)
    return AuditResult(len(audits), appended, len(dismissed))


async def _append(
    conn: AsyncConnection, findings: Sequence[Finding], ladder: Ladder, now: datetime
) -> int:
    """Append ``findings`` (new ones, oldest first), each with its suggestion; a repeat
    within the page counts the one appended just before it."""
    if not findings:
        return 0
    laddered = [f for f in findings if f.officer_id and f.rule in ladder.rules]
    # Violations charged to an agency, or of rules without steps: nothing to suggest.
    plain = [(f, None) for f in findings if not (f.officer_id and f.rule in ladder.rules)]
    appended = sum(i is not None for i in await store.append_violations(conn, plain, now))
    if not laddered:
        return appended
    pairs = {(f.officer_id, f.rule) for f in laddered if f.officer_id}
    priors = await store.priors_of(
        conn,
        pairs,
        since=min(window_around(f.occurred_at, ladder.window_months)[0] for f in laddered),
        until=max(window_around(f.occurred_at, ladder.window_months)[1] for f in laddered),
    )
    supervisors = await store.supervisors_of(conn, {officer for officer, _ in pairs})
    for finding in laddered:
        assert finding.officer_id is not None
        key = (finding.officer_id, finding.rule)
        earlier = priors.setdefault(key, [])
        suggestion = suggest(
            ladder,
            finding.rule,
            finding.occurred_at,
            earlier,
            supervisors.get(finding.officer_id),
        )
        [new_id] = await store.append_violations(conn, [(finding, suggestion)], now)
        if new_id is not None:
            appended += 1
            earlier.append(Prior(new_id, finding.occurred_at))
    return appended


def _audit_row(
    code: str,
    timeline: Sequence[TimelineEvent],
    lateness: Lateness,
    findings: Sequence[Finding],
    tz: tzinfo,
    now: datetime,
) -> dict[str, Any]:
    received = next((e for e in timeline if e.type == "dossier.received"), None)
    # The agency as the latest event states it.
    agency = next((e for e in reversed(timeline) if e.agency_code), None)
    received_at = received.occurred_at if received else None
    return {
        "dossier_code": code,
        "agency_code": agency.agency_code if agency else None,
        "agency_name": agency.agency_name if agency else None,
        "received_by": received.actor_id if received else None,
        "closed_by": lateness.closed_by[0] if lateness.closed_by else None,
        "received_at": received_at,
        "received_month": _month(received_at, tz),
        "due_date": lateness.due_date,
        "effective_due_date": lateness.effective_due_date,
        "ended_at": lateness.ended_at,
        "ended_month": _month(lateness.ended_at, tz),
        "end_kind": lateness.end_kind,
        "verdict": lateness.verdict,
        "supplement_requests": lateness.supplement_requests,
        "apologies": lateness.apologies,
        "missing_phone": any(f.rule in _PHONE_RULES for f in findings),
        "audited_at": now,
    }


def _month(moment: datetime | None, tz: tzinfo) -> str | None:
    return moment.astimezone(tz).strftime("%Y-%m") if moment is not None else None
