"""Retention: erase personal data older than ``RETENTION_DAYS`` and keep the facts.

What is erased, counted back from ``now`` by ``RETENTION_DAYS`` (the *cutoff*):

* **Closed dossiers** — state ``finished``, ``delivered``, ``refused`` or ``withdrawn``
  and ``dossiers.updated_at`` (the last event, or the last time the gateway changed the
  row) before the cutoff:

  - ``dossiers.phone_raw`` and ``dossiers.phone_e164`` become NULL; ``phone_problem``
    (a reason code such as ``landline``, no digits) stays;
  - in every stored event of the dossier, ``dossier.applicant.phone`` is replaced by a
    fixed placeholder of the *same class* (:data:`PLACEHOLDERS`: a usable mobile stays
    "a usable mobile", a landline "a landline", an empty field "empty"...), so that the
    audit (phone rules, ``missing_phone``, verdicts) recomputes exactly the same from the
    timeline; the event's ``fingerprint`` is recomputed over the erased body, since a
    plain SHA-256 of a body whose only unknown is a phone number can be reversed by
    trying every number;
  - ``notices.phone_e164`` and ``notices.text`` (the rendered message) of the dossier
    become NULL; ``params`` (the dossier facts the text was made of) stay;
  - ``result_checks.phone_e164`` of the dossier becomes NULL.

* **Chat messages** created before the cutoff: ``text`` and ``payload`` (the raw Zalo
  webhook event) become NULL; who, when, which way and what it concerned stay.

* **Reports** closed (``resolved`` or ``rejected``) and last updated before the cutoff:
  ``phone_e164`` becomes NULL. The description, the finding and the transitions stay:
  they are the evidence behind the violations ledger.

* **Zalo users** whose last interaction (or, without one, last update) is before the
  cutoff and whose number no longer belongs to any dossier that is kept (open, or closed
  after the cutoff): ``phone_e164``, ``verified_at`` and ``subscribed_at`` become NULL;
  such a user proves their number again to be notified on Zalo.
  Whatever the dossiers, a number such a user only *claimed* (shared through the form,
  never proven by a code: ``claimed_phone_e164``, ``claimed_at``) becomes NULL too.

* **One-time codes** (``one_time_codes``) created more than :data:`CODES_KEPT` (one day)
  before ``now`` — not ``RETENTION_DAYS``: a code is useless after five minutes, and the
  day is all the sending limits look back on — are *deleted*; nothing about them is a
  fact worth keeping.

* **One-time code notices** (kind ``otp``) created more than :data:`CODES_KEPT` before
  ``now``: ``params.otp_code`` becomes ``"erased"`` and ``text`` NULL (a code checked
  ``ok`` was already erased then) and ``phone_e164`` NULL (a code that proved an OA
  user's number belongs to no dossier, so no other pass would erase it); the channel and
  the delivery stay.

* **"Notices moved to Zalo" notices** (kind ``channel_moved``, about a phone, not a
  dossier) created before the cutoff: ``phone_e164`` and ``text`` become NULL.

Kept untouched: everything else, in particular the dossiers' facts, the events' other
fields, deliveries, ratings, handoffs, ``dossier_audit``, the violations ledger and
``staff_audit_log``.

Every pass walks its rows in keyset pages of :data:`PAGE_SIZE`, one transaction per page,
so the job can run beside the gateway and be stopped at any time. Erased rows no longer
match, so a second run changes nothing (idempotent). ``dry_run`` walks the same pages and
counts without writing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.domain.events import body_fingerprint
from gateway.domain.phones import normalize_phone
from gateway.storage.tables import (
    chat_messages,
    dossiers,
    events,
    notices,
    one_time_codes,
    reports,
    result_checks,
    zalo_users,
)
from gateway.trust.otp import CODE_PARAM, ERASED, OTP_KIND, erase_code
from gateway.trust.subscriptions import CHANNEL_MOVED_KIND

log = logging.getLogger(__name__)

PAGE_SIZE = 300
# One-time codes and the code in their notices are kept this long, whatever RETENTION_DAYS.
CODES_KEPT = timedelta(days=1)

# Dossier states after which nothing is sent to the applicant any more.
CLOSED_STATES = ("finished", "delivered", "refused", "withdrawn")
# Report statuses after which the hotline no longer calls the citizen back.
CLOSED_REPORTS = ("resolved", "rejected")

# A placeholder per outcome of ``normalize_phone`` (``None``: a usable mobile), each of
# which normalises to that same outcome: the audit reads the placeholder as it read the
# number. None of them is anybody's number worth keeping: a usable-mobile placeholder
# is all zeros after the prefix. tests/storage/test_retention.py checks every reason.
PLACEHOLDERS: Mapping[str | None, str] = {
    None: "0900000000",
    "empty": "",
    "no_digits": "N/A",
    "letters": "09a0000000",
    "too_short": "090000",
    "too_long": "0900000000000000",
    "landline": "0251 0000 000",
    "m2m": "0101234567",
    "vsat": "0672000000",
    "unknown_prefix": "0800000000",
    "old_landline_suspected": "038 3822123",
    "not_vietnamese": "+44 20 7946 0000",
    "invalid": "090000000#",
    "precision_lost": "9.12346E+08",
    "service_number": "18000000",
}
_PLACEHOLDER_VALUES = frozenset(PLACEHOLDERS.values())


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """How many rows each pass erased (or, in a dry run, would erase)."""

    dossiers: int = 0
    events: int = 0
    notices: int = 0
    result_checks: int = 0
    chat_messages: int = 0
    reports: int = 0
    zalo_users: int = 0
    zalo_claims: int = 0
    one_time_codes: int = 0
    otp_notices: int = 0
    moved_notices: int = 0

    def counts(self) -> dict[str, int]:
        """The counts by name, for a log line or a summary."""
        return asdict(self)


def placeholder_for(raw: str) -> str:
    """The placeholder that replaces the phone field ``raw``: same audit outcome, no
    digits of the original."""
    outcome = normalize_phone(raw)
    key = None if outcome.ok else outcome.reason
    return PLACEHOLDERS.get(key, PLACEHOLDERS["invalid"])


def erased_body(body: Any) -> dict[str, Any] | None:
    """The event body with the applicant's phone replaced by its placeholder, or None
    when there is nothing to erase (no phone, or already a placeholder)."""
    if isinstance(body, str | bytes):
        body = orjson.loads(body)
    if not isinstance(body, dict):
        return None
    dossier = body.get("dossier")
    applicant = dossier.get("applicant") if isinstance(dossier, dict) else None
    phone = applicant.get("phone") if isinstance(applicant, dict) else None
    if not isinstance(phone, str) or phone in _PLACEHOLDER_VALUES:
        return None
    assert isinstance(dossier, dict) and isinstance(applicant, dict)
    return body | {
        "dossier": dossier | {"applicant": applicant | {"phone": placeholder_for(phone)}}
    }


async def run_retention(
    engine: AsyncEngine,
    now: datetime,
    days: int,
    *,
    dry_run: bool = False,
    page_size: int = PAGE_SIZE,
) -> RetentionResult:
    """Erase (or with ``dry_run`` count) what is older than ``days`` before ``now``."""
    cutoff = now - timedelta(days=days)
    dossier_counts = await _erase_dossiers(engine, cutoff, dry_run, page_size)
    result = RetentionResult(
        **dossier_counts,
        chat_messages=await _pages(
            engine, _chat_page(cutoff), _erase_chat_page, dry_run, page_size
        ),
        reports=await _pages(
            engine, _reports_page(cutoff), _erase_reports_page, dry_run, page_size
        ),
        zalo_users=await _pages(engine, _users_page(cutoff), _erase_users_page, dry_run, page_size),
        zalo_claims=await _pages(
            engine, _claims_page(cutoff), _erase_claims_page, dry_run, page_size
        ),
        one_time_codes=await _pages(
            engine, _codes_page(now - CODES_KEPT), _delete_codes_page, dry_run, page_size
        ),
        otp_notices=await _pages(
            engine, _otp_notices_page(now - CODES_KEPT), _erase_otp_page, dry_run, page_size
        ),
        moved_notices=await _pages(
            engine, _moved_notices_page(cutoff), _erase_moved_page, dry_run, page_size
        ),
    )
    log.info("retention run", extra={"dry_run": dry_run, "days": days, **result.counts()})
    return result


# --- the generic keyset walk ----------------------------------------------------------

_Page = Callable[[AsyncConnection, Any, int], Awaitable[list[Any]]]
_Erase = Callable[[AsyncConnection, list[Any], bool], Awaitable[int]]


async def _pages(
    engine: AsyncEngine, page: _Page, erase: _Erase, dry_run: bool, page_size: int
) -> int:
    """Walk the keys ``page`` yields after the last one seen, erasing each page in its
    own transaction; returns the total ``erase`` reported."""
    total, after = 0, None
    while True:
        async with engine.begin() as conn:
            keys = await page(conn, after, page_size)
            if not keys:
                return total
            total += await erase(conn, keys, dry_run)
        after = keys[-1]


def _after(column: sa.ColumnElement[Any], after: Any) -> sa.ColumnElement[bool]:
    return column > after if after is not None else sa.true()


async def _keys(conn: AsyncConnection, query: sa.Select[Any]) -> list[Any]:
    return list((await conn.execute(query)).scalars())


def _keyed_page(key: sa.Column[Any], *where: sa.ColumnElement[bool]) -> _Page:
    """The rows matching ``where``, by ``key``, a page at a time after the last key seen."""

    async def page(conn: AsyncConnection, after: Any, limit: int) -> list[Any]:
        query = sa.select(key).where(*where, _after(key, after)).order_by(key).limit(limit)
        return await _keys(conn, query)

    return page


# --- closed dossiers ------------------------------------------------------------------


def _closed_before(cutoff: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(dossiers.c.state.in_(CLOSED_STATES), dossiers.c.updated_at < cutoff)


async def _erase_dossiers(
    engine: AsyncEngine, cutoff: datetime, dry_run: bool, page_size: int
) -> dict[str, int]:
    """Erase phones and message texts of closed dossiers, page by page."""
    counts = {"dossiers": 0, "events": 0, "notices": 0, "result_checks": 0}
    after: str | None = None
    while True:
        async with engine.begin() as conn:
            codes = await _keys(
                conn,
                sa.select(dossiers.c.code)
                .where(
                    _closed_before(cutoff),
                    _after(dossiers.c.code, after),
                    sa.or_(dossiers.c.phone_raw.is_not(None), dossiers.c.phone_e164.is_not(None)),
                )
                .order_by(dossiers.c.code)
                .limit(page_size),
            )
            if not codes:
                return counts
            for name, n in (await _erase_dossier_page(conn, codes, dry_run)).items():
                counts[name] += n
        after = codes[-1]


async def _erase_dossier_page(
    conn: AsyncConnection, codes: list[str], dry_run: bool
) -> dict[str, int]:
    return {
        "events": await _erase_event_phones(conn, codes, dry_run),
        "notices": await _null(
            conn,
            notices,
            notices.c.dossier_code.in_(codes),
            (notices.c.phone_e164, notices.c.text),
            dry_run,
        ),
        "result_checks": await _null(
            conn,
            result_checks,
            result_checks.c.dossier_code.in_(codes),
            (result_checks.c.phone_e164,),
            dry_run,
        ),
        "dossiers": await _null(
            conn,
            dossiers,
            dossiers.c.code.in_(codes),
            (dossiers.c.phone_raw, dossiers.c.phone_e164),
            dry_run,
        ),
    }


async def _erase_event_phones(conn: AsyncConnection, codes: list[str], dry_run: bool) -> int:
    """Replace the applicant's phone in the events of ``codes``; returns how many."""
    rows = await conn.execute(
        sa.select(events.c.seq, events.c.body).where(events.c.dossier_code.in_(codes))
    )
    changed = [(row.seq, body) for row in rows if (body := erased_body(row.body)) is not None]
    if changed and not dry_run:
        await conn.execute(
            events.update()
            .where(events.c.seq == sa.bindparam("k_seq"))
            .values(
                body=sa.bindparam("k_body", type_=events.c.body.type),
                fingerprint=sa.bindparam("k_fp"),
            ),
            [{"k_seq": s, "k_body": b, "k_fp": body_fingerprint(b)} for s, b in changed],
        )
    return len(changed)


async def _null(
    conn: AsyncConnection,
    table: sa.Table,
    where: sa.ColumnElement[bool],
    columns: Sequence[sa.Column[Any]],
    dry_run: bool,
) -> int:
    """Set ``columns`` to SQL NULL in the rows matching ``where`` that still hold one;
    returns how many rows."""
    holding = sa.and_(where, sa.or_(*(c.is_not(None) for c in columns)))
    if dry_run:
        return int(
            (
                await conn.execute(sa.select(sa.func.count()).select_from(table).where(holding))
            ).scalar_one()
        )
    # sa.null(): on a JSON column None would be stored as the JSON value null.
    result = await conn.execute(
        table.update().where(holding).values({c.name: sa.null() for c in columns})
    )
    return int(result.rowcount)


def _moved_notices_page(cutoff: datetime) -> _Page:
    return _keyed_page(
        notices.c.id,
        notices.c.kind == CHANNEL_MOVED_KIND,
        notices.c.created_at < cutoff,
        sa.or_(notices.c.phone_e164.is_not(None), notices.c.text.is_not(None)),
    )


async def _erase_moved_page(conn: AsyncConnection, ids: list[Any], dry_run: bool) -> int:
    columns = (notices.c.phone_e164, notices.c.text)
    return await _null(conn, notices, notices.c.id.in_(ids), columns, dry_run)


# --- chat messages, reports, Zalo users -------------------------------------------------


def _chat_page(cutoff: datetime) -> _Page:
    return _keyed_page(
        chat_messages.c.id,
        chat_messages.c.created_at < cutoff,
        sa.or_(chat_messages.c.text.is_not(None), chat_messages.c.payload.is_not(None)),
    )


async def _erase_chat_page(conn: AsyncConnection, ids: list[Any], dry_run: bool) -> int:
    where = chat_messages.c.id.in_(ids)
    columns = (chat_messages.c.text, chat_messages.c.payload)
    return await _null(conn, chat_messages, where, columns, dry_run)


def _reports_page(cutoff: datetime) -> _Page:
    return _keyed_page(
        reports.c.id,
        reports.c.status.in_(CLOSED_REPORTS),
        reports.c.updated_at < cutoff,
        reports.c.phone_e164.is_not(None),
    )


async def _erase_reports_page(conn: AsyncConnection, ids: list[Any], dry_run: bool) -> int:
    return await _null(conn, reports, reports.c.id.in_(ids), (reports.c.phone_e164,), dry_run)


def _users_page(cutoff: datetime) -> _Page:
    # A number some kept dossier (open, or closed after the cutoff) still carries stays.
    kept = (
        sa.select(dossiers.c.code)
        .where(dossiers.c.phone_e164 == zalo_users.c.phone_e164)
        .where(sa.not_(_closed_before(cutoff)))
    )
    return _keyed_page(
        zalo_users.c.user_id,
        zalo_users.c.phone_e164.is_not(None),
        _last_seen() < cutoff,
        ~kept.exists(),
    )


def _last_seen() -> sa.ColumnElement[Any]:
    """A Zalo user's last interaction, else the last change to their row."""
    return sa.func.coalesce(zalo_users.c.last_interaction_at, zalo_users.c.updated_at)


async def _erase_users_page(conn: AsyncConnection, ids: list[Any], dry_run: bool) -> int:
    columns = (zalo_users.c.phone_e164, zalo_users.c.verified_at, zalo_users.c.subscribed_at)
    return await _null(conn, zalo_users, zalo_users.c.user_id.in_(ids), columns, dry_run)


def _claims_page(cutoff: datetime) -> _Page:
    return _keyed_page(
        zalo_users.c.user_id,
        zalo_users.c.claimed_phone_e164.is_not(None),
        _last_seen() < cutoff,
    )


async def _erase_claims_page(conn: AsyncConnection, ids: list[Any], dry_run: bool) -> int:
    columns = (zalo_users.c.claimed_phone_e164, zalo_users.c.claimed_at)
    return await _null(conn, zalo_users, zalo_users.c.user_id.in_(ids), columns, dry_run)


# --- one-time codes ---------------------------------------------------------------------


def _codes_page(cutoff: datetime) -> _Page:
    return _keyed_page(one_time_codes.c.id, one_time_codes.c.created_at < cutoff)


async def _delete_codes_page(conn: AsyncConnection, ids: list[Any], dry_run: bool) -> int:
    if not dry_run:
        await conn.execute(one_time_codes.delete().where(one_time_codes.c.id.in_(ids)))
    return len(ids)


def _otp_notices_page(cutoff: datetime) -> _Page:
    return _keyed_page(
        notices.c.id,
        notices.c.kind == OTP_KIND,
        notices.c.created_at < cutoff,
        sa.or_(
            notices.c.text.is_not(None),
            notices.c.phone_e164.is_not(None),
            notices.c.params[CODE_PARAM].as_string() != ERASED,
        ),
    )


async def _erase_otp_page(conn: AsyncConnection, ids: list[Any], dry_run: bool) -> int:
    if not dry_run:
        await erase_code(conn, ids)
        # The number a code went to: only the code's own notice has it when the code
        # proved a phone (no dossier), so no other pass would ever erase it.
        await conn.execute(notices.update().where(notices.c.id.in_(ids)).values(phone_e164=None))
    return len(ids)
