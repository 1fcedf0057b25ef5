"""Recording events: idempotency, dossier upsert, timeline, flags and outbox in one transaction.

Requests do not each open a transaction. They hand their parsed event to the
:class:`IngestWriter`, whose single task takes everything pending, writes the whole group in
one transaction (a handful of set-based statements, not a handful per event) and then
answers each request. This *group commit* keeps SQLite's one-writer lock short and turns
many fsyncs into one. If the group fails (a database error), each event is retried in a
transaction of its own, so one bad event never takes the others down and no event is ever
half written.

Several gateway processes (``HTTP_WORKERS``) may write the same dossier at once. SQLite
has one writer for the whole file. On PostgreSQL each group first takes a
transaction-scoped advisory lock per dossier code, all in one statement and in one global
order, before it reads anything: a dossier that does not exist yet (which ``FOR UPDATE``
cannot lock) is then created by one process and seen by the other, instead of both
inserting it and one group failing on the unique key.

The writes are statements compiled once per dialect (:mod:`gateway.storage.compiled`) and
run through the driver's ``executemany`` with plain tuples. On SQLite the transaction runs
in one writer thread, and a dossier update names only the columns that changed: SQLite
rewrites the entry of every index on a column named in ``SET``, and those pages would go
to the WAL at every commit. On PostgreSQL the transaction runs on an event loop and engine
of the writer's own, in its own thread, so its round trips never wait behind HTTP work.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.domain.dossier import ConsultationChange, Decision, DossierState, decide
from gateway.domain.events import Event
from gateway.domain.rules import NEEDS_HISTORY, ConsultationView, History, PastEvent
from gateway.errors import IdempotencyConflict, StorageUnavailable
from gateway.storage import outbox
from gateway.storage.compiled import Compiled, StatementCache, compile_write, insert_statement
from gateway.storage.db import Database, create_engine
from gateway.storage.outbox import NewNotice
from gateway.storage.tables import consultations, dossiers, events, flags, notices
from gateway.trust.links import Links

log = logging.getLogger(__name__)
T = TypeVar("T")

_DOSSIER_FIELDS = tuple(f.name for f in fields(DossierState))
_ONCE_TYPES = ("dossier.delayed", "dossier.supplement_requested")
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# An unreachable server surfaces as OSError (ConnectionRefusedError, TimeoutError...), not
# wrapped by SQLAlchemy when a pooled connection has to be opened again.
_DATABASE_ERRORS = (SQLAlchemyError, OSError)


@dataclass(frozen=True, slots=True)
class Submission:
    """One authenticated, validated event waiting to be recorded."""

    source_id: str
    fingerprint: str
    body: dict[str, Any]
    event: Event
    # "bulk" for back-fills through the batch API, so they never hold up live notices.
    lane: str = "urgent"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a submission was recorded: ``replayed`` when the id was already known."""

    answer: dict[str, Any]
    replayed: bool


@dataclass(slots=True)
class _Pending:
    submission: Submission
    future: asyncio.Future[Outcome]


@dataclass(slots=True)
class _GroupState:
    """What one group transaction has seen and written so far."""

    known_events: dict[tuple[str, str], tuple[str, dict[str, Any]]]
    dossiers: dict[str, DossierState]
    # The dossiers as they were stored before this group (new ones are absent).
    stored_dossiers: dict[str, DossierState]
    history_events: dict[str, list[PastEvent]]
    history_consultations: dict[str, dict[str, ConsultationView]]
    existing_notices: dict[str, dict[str, Any]]
    event_rows: list[dict[str, Any]] = field(default_factory=list)
    flag_rows: list[dict[str, Any]] = field(default_factory=list)
    notice_rows: list[NewNotice] = field(default_factory=list)
    consultation_changes: list[tuple[str, ConsultationChange]] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)


class IngestWriter:
    """The single writer task behind ``POST /v1/events``."""

    def __init__(
        self,
        db: Database,
        *,
        max_group: int = 512,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_notices: Callable[[list[tuple[str, str]]], None] | None = None,
        links: Links | None = None,
    ) -> None:
        self._db = db
        # Signed links on new notices of the kinds that carry one (None: no CITIZEN_SECRET).
        self._links = links
        self._on_notices = on_notices
        self._max_group = max_group
        self._clock = clock
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        # PostgreSQL: the writer's own event loop, thread and engine (see _transaction).
        self._pg_loop: _LoopThread | None = None
        self._pg_engine: AsyncEngine | None = None
        # Groups committed whole, and groups that failed and were retried event by event
        # (a database error; never a race between gateways, which serialise per dossier).
        self.groups_written = 0
        self.groups_retried = 0

    async def start(self) -> None:
        if self._db.sync_writer is not None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
        else:
            self._pg_loop = _LoopThread("ingest-writer")
            # asyncpg connections belong to the loop that opened them: an engine of its own.
            self._pg_engine = create_engine(self._db.url, pool_size=1)
        self._task = asyncio.create_task(self._run(), name="ingest-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        if self._pg_loop is not None:
            if self._pg_engine is not None:
                with contextlib.suppress(*_DATABASE_ERRORS):
                    await self._pg_loop.run(self._pg_engine.dispose())
                self._pg_engine = None
            self._pg_loop.stop()
            self._pg_loop = None
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(StorageUnavailable("the gateway is shutting down"))

    async def submit(self, submissions: Sequence[Submission]) -> list[Outcome | Exception]:
        """Record ``submissions`` (in order); each gets an outcome or its own error."""
        if self._task is None or self._task.done():
            raise StorageUnavailable("the ingest writer is not running")
        loop = asyncio.get_running_loop()
        pendings = [_Pending(s, loop.create_future()) for s in submissions]
        for pending in pendings:
            self._queue.put_nowait(pending)
        results = await asyncio.gather(*(p.future for p in pendings), return_exceptions=True)
        return [
            r if isinstance(r, Outcome | Exception) else StorageUnavailable(str(r)) for r in results
        ]

    async def _run(self) -> None:
        while True:
            group = [await self._queue.get()]
            while len(group) < self._max_group and not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                await self._write(group)
            except Exception:
                # A bug may cost this group its answer, never the writer its life.
                log.exception("ingest group of %d failed unexpectedly", len(group))
                for pending in group:
                    if not pending.future.done():
                        pending.future.set_exception(
                            StorageUnavailable("the event could not be stored; retry it")
                        )

    async def _write(self, group: list[_Pending]) -> None:
        try:
            outcomes = await self._transaction([p.submission for p in group])
        except _DATABASE_ERRORS as exc:
            if len(group) == 1:
                self._fail(group[0], exc)
                return
            self.groups_retried += 1
            log.warning(
                "group of %d failed (%s); retrying one by one", len(group), type(exc).__name__
            )
            for pending in group:
                await self._write_alone(pending)
            return
        self.groups_written += 1
        self._dispatch([p.submission for p in group], outcomes)
        for pending, outcome in zip(group, outcomes, strict=True):
            if not pending.future.done():
                if isinstance(outcome, Exception):
                    pending.future.set_exception(outcome)
                else:
                    pending.future.set_result(outcome)

    async def _write_alone(self, pending: _Pending) -> None:
        # Two tries: a unique-key race the dossier locks do not cover (the same event id
        # posted for two dossiers by two processes at once) resolves on the second read.
        for attempt in (1, 2):
            try:
                (outcome,) = await self._transaction([pending.submission])
            except IntegrityError as exc:
                if attempt == 2:
                    self._fail(pending, exc)
                continue
            except _DATABASE_ERRORS as exc:
                self._fail(pending, exc)
                return
            self._dispatch([pending.submission], [outcome])
            # The request may have gone away (cancelled) while the group was retried.
            if pending.future.done():
                return
            if isinstance(outcome, Exception):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)
            return

    def _dispatch(self, batch: list[Submission], outcomes: list[Outcome | Exception]) -> None:
        """Tell the queue about the notices this commit created (best effort)."""
        if self._on_notices is None:
            return
        fresh = [
            (notice["id"], submission.lane)
            for submission, outcome in zip(batch, outcomes, strict=True)
            if isinstance(outcome, Outcome) and not outcome.replayed
            for notice in outcome.answer["notices"]
            if notice["state"] == "created" and not notice.get("duplicate")
        ]
        if fresh:
            self._on_notices(fresh)

    def _fail(self, pending: _Pending, exc: Exception) -> None:
        log.error(
            "event not recorded",
            extra={"event_id": pending.submission.event.id, "error": type(exc).__name__},
        )
        connection_lost = isinstance(exc, OSError) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated
        )
        detail = (
            "the database is unavailable" if connection_lost else "the event could not be stored"
        )
        if not pending.future.done():
            pending.future.set_exception(StorageUnavailable(f"{detail}; nothing was recorded"))

    async def _transaction(self, batch: list[Submission]) -> list[Outcome | Exception]:
        now = self._clock()
        if self._db.sync_writer is not None:
            # SQLite: the whole transaction in the writer thread, one hop from the loop
            # instead of one per statement, each of which would queue behind HTTP work.
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._thread, self._in_thread, batch, now)
        # PostgreSQL: the transaction's dozen round trips run on the writer's own loop, so
        # their answers never wait behind HTTP work on the serving loop.
        assert self._pg_loop is not None
        return await self._pg_loop.run(self._pg_transaction(batch, now))

    async def _pg_transaction(
        self, batch: list[Submission], now: datetime
    ) -> list[Outcome | Exception]:
        assert self._pg_engine is not None
        async with self._pg_engine.begin() as conn:
            return await conn.run_sync(_transaction, batch, now, self._links)

    def _in_thread(self, batch: list[Submission], now: datetime) -> list[Outcome | Exception]:
        assert self._db.sync_writer is not None
        with self._db.sync_writer.begin() as conn:
            return _transaction(conn, batch, now, self._links)


class _LoopThread:
    """An event loop running in a thread of its own; coroutines are handed to it and
    awaited from the caller's loop."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on this loop; cancelling the caller cancels it there too."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def _transaction(
    conn: Connection, batch: list[Submission], now: datetime, links: Links | None = None
) -> list[Outcome | Exception]:
    """Load, decide and write one group; runs inside the caller's transaction."""
    state = _load(conn, batch)
    outcomes = [_record(state, s, now) for s in batch]
    _flush(conn, state, now, links)
    return outcomes


def _in(conn: Connection, column: sa.ColumnElement[Any], values: Sequence[str]) -> Any:
    """``column IN values``; on PostgreSQL ``= ANY(array)`` so the SQL text (and asyncpg's
    prepared statement) is the same whatever the number of values."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.literal(list(values), postgresql.ARRAY(sa.String())))
    return column.in_(values)


def dossier_lock_key(code: str) -> int:
    """The advisory lock key of a dossier: 64 bits of its code's hash, as a signed bigint.
    A collision only makes two dossiers wait for each other now and then."""
    digest = hashlib.blake2b(code.encode(), digest_size=8, person=b"tthc-dossier").digest()
    return int.from_bytes(digest, "big", signed=True)


# PostgreSQL evaluates a volatile output column after the ORDER BY sort (9.6 and later), so
# the locks are taken in key order; the keys are sorted here too, whatever the planner.
_LOCK_DOSSIERS = sa.text(
    "SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k"
)


def _lock_dossiers(conn: Connection, codes: Sequence[str]) -> None:
    """PostgreSQL: hold every dossier of the group until the transaction ends, before
    anything is read. ``FOR UPDATE`` cannot lock a dossier that does not exist yet: two
    gateway processes would both read "new", both insert it, and one group would fail on
    the unique key. One statement for the whole group; all keys in one order, so two
    groups never wait for each other in a cycle. SQLite has one writer already."""
    if conn.dialect.name != "postgresql" or not codes:
        return
    conn.execute(_LOCK_DOSSIERS, {"keys": sorted({dossier_lock_key(c) for c in codes})})


def _load(conn: Connection, batch: list[Submission]) -> _GroupState:
    codes = sorted({s.event.dossier.code for s in batch})
    # First: what this group reads below (its events, dossiers, notices) is then final.
    _lock_dossiers(conn, codes)
    known: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    ids_by_source: dict[str, set[str]] = defaultdict(set)
    for sub in batch:
        ids_by_source[sub.source_id].add(sub.event.id)
    for source_id, ids in ids_by_source.items():
        # (source_id, event_id) is the unique index: both columns, or a full scan.
        rows = conn.execute(
            sa.select(events.c.event_id, events.c.fingerprint, events.c.answer).where(
                events.c.source_id == source_id, _in(conn, events.c.event_id, sorted(ids))
            )
        )
        for row in rows:
            known[(source_id, row.event_id)] = (row.fingerprint, row.answer)

    query = sa.select(dossiers).where(_in(conn, dossiers.c.code, codes))
    if conn.dialect.name == "postgresql":
        # Serialise concurrent gateways on the same dossier; lock in a fixed order.
        query = query.order_by(dossiers.c.code).with_for_update()
    loaded = {row.code: _state_from_row(row._mapping) for row in conn.execute(query)}

    history_codes = sorted({s.event.dossier.code for s in batch if s.event.type in NEEDS_HISTORY})
    history_events: dict[str, list[PastEvent]] = defaultdict(list)
    history_consultations: dict[str, dict[str, ConsultationView]] = defaultdict(dict)
    if history_codes:
        rows = conn.execute(
            sa.select(
                events.c.dossier_code,
                events.c.event_id,
                events.c.type,
                events.c.occurred_at,
                events.c.actor_id,
                events.c.actor_name,
                events.c.source_id,
            ).where(_in(conn, events.c.dossier_code, history_codes), events.c.type.in_(_ONCE_TYPES))
        )
        for past in rows:
            history_events[past.dossier_code].append(
                PastEvent(
                    past.event_id,
                    past.type,
                    past.occurred_at,
                    past.actor_id,
                    past.actor_name,
                    past.source_id,
                )
            )
        for row in conn.execute(
            sa.select(consultations).where(_in(conn, consultations.c.dossier_code, history_codes))
        ):
            history_consultations[row.dossier_code][row.consultation_id] = ConsultationView(
                row.consultation_id, row.agency_code, row.requested_at, row.due_at, row.answered_at
            )

    existing_notices: dict[str, dict[str, Any]] = {}
    if any(s.event.spec.notice_kind is not None for s in batch):
        rows = conn.execute(
            sa.select(
                notices.c.id,
                notices.c.dedupe_key,
                notices.c.kind,
                notices.c.state,
                notices.c.channel,
            ).where(_in(conn, notices.c.dossier_code, codes))
        )
        existing_notices = {row.dedupe_key: dict(row._mapping) for row in rows}
    return _GroupState(
        known, dict(loaded), loaded, history_events, history_consultations, existing_notices
    )


def _record(state: _GroupState, sub: Submission, now: datetime) -> Outcome | Exception:
    event = sub.event
    key = (sub.source_id, event.id)
    if key in state.known_events:
        fingerprint, answer = state.known_events[key]
        if fingerprint != sub.fingerprint:
            return IdempotencyConflict(event.id)
        return Outcome(answer, replayed=True)

    code = event.dossier.code
    history = History(
        tuple(state.history_events.get(code, ())),
        tuple(state.history_consultations.get(code, {}).values()),
    )
    decision = decide(state.dossiers.get(code), event, history)
    state.dossiers[code] = decision.dossier
    state.touched.add(code)
    if event.type in _ONCE_TYPES:
        state.history_events[code].append(
            PastEvent(
                event.id,
                event.type,
                event.occurred_at,
                event.actor.id if event.actor else None,
                event.actor.name if event.actor else None,
                sub.source_id,
            )
        )
    if decision.consultation is not None:
        _merge_consultation(state, code, decision.consultation)

    notice_answers = _notice_rows(state, sub, decision)
    for f in decision.flags:
        state.flag_rows.append(
            {
                "dossier_code": code,
                "source_id": f.source_id or sub.source_id,
                "event_id": f.event_id,
                "rule": f.rule,
                "detail": f.detail,
                "occurred_at": f.occurred_at,
                "officer_id": f.officer_id,
                "officer_name": f.officer_name,
                "agency_code": f.agency_code,
                "created_at": now,
            }
        )
    d = decision.dossier
    answer = {
        "id": event.id,
        "status": "accepted",
        "dossier": {
            "code": d.code,
            "state": d.state,
            "dvcqg_status": d.dvcqg_status,
            "due_at": d.due_at.isoformat() if d.due_at else None,
        },
        "superseded": decision.superseded,
        "notices": notice_answers,
        "flags": [{"rule": f.rule, "detail": f.detail} for f in decision.flags],
    }
    actor = event.actor
    state.event_rows.append(
        {
            "source_id": sub.source_id,
            "event_id": event.id,
            "type": event.type,
            "dossier_code": code,
            "occurred_at": event.occurred_at,
            "recorded_at": now,
            "actor_id": actor.id if actor else None,
            "actor_name": actor.name if actor else None,
            "superseded": decision.superseded,
            "fingerprint": sub.fingerprint,
            "body": sub.body,
            "answer": answer,
        }
    )
    state.known_events[key] = (sub.fingerprint, answer)
    return Outcome(answer, replayed=False)


def _notice_rows(state: _GroupState, sub: Submission, decision: Decision) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    for draft in decision.notices:
        existing = state.existing_notices.get(draft.dedupe_key)
        if existing is not None:
            answers.append(
                {
                    "id": existing["id"],
                    "kind": existing["kind"],
                    "channel": existing["channel"],
                    "state": existing["state"],
                    "duplicate": True,
                }
            )
            continue
        notice = NewNotice.from_draft(
            draft, decision.dossier.code, sub.source_id, sub.event.id, sub.lane
        )
        state.notice_rows.append(notice)
        answer = {"id": notice.id, "kind": notice.kind, "channel": None, "state": notice.state}
        state.existing_notices[draft.dedupe_key] = answer
        answers.append(dict(answer))
    return answers


def _merge_consultation(state: _GroupState, code: str, change: ConsultationChange) -> None:
    views = state.history_consultations[code]
    old = views.get(change.consultation_id) or ConsultationView(
        change.consultation_id, None, None, None, None
    )
    views[change.consultation_id] = ConsultationView(
        change.consultation_id,
        change.agency_code or old.agency_code,
        change.requested_at or old.requested_at,
        change.due_at or old.due_at,
        change.answered_at or old.answered_at,
    )
    state.consultation_changes.append((code, change))


_STATEMENTS = StatementCache()
EVENT_COLUMNS = (
    "source_id",
    "event_id",
    "type",
    "dossier_code",
    "occurred_at",
    "recorded_at",
    "actor_id",
    "actor_name",
    "superseded",
    "fingerprint",
    "body",
    "answer",
)
_FLAG_COLUMNS = (
    "dossier_code",
    "source_id",
    "event_id",
    "rule",
    "detail",
    "occurred_at",
    "officer_id",
    "officer_name",
    "agency_code",
    "created_at",
)
_NOTICE_COLUMNS = tuple(outbox.notice_row(NewNotice("k", "c", "s", "e", "d", None, {}), _EPOCH))
_UPDATED_FIELDS = tuple(name for name in _DOSSIER_FIELDS if name != "code")
_NEW_DOSSIER_COLUMNS = (*_DOSSIER_FIELDS, "created_at", "updated_at")
_CONSULTATION_VALUES = ("agency_code", "agency_name", "requested_at", "due_at", "answered_at")


def _flush(conn: Connection, state: _GroupState, now: datetime, links: Links | None) -> None:
    dialect = conn.dialect
    _STATEMENTS.get(dialect, "events", _events_insert).execute_many(conn, state.event_rows)
    # PostgreSQL leaves an index alone when its columns keep their values (a HOT update),
    # so one statement for every dossier saves round trips; SQLite looks at SET instead.
    every_column = dialect.name == "postgresql"
    new_rows: list[dict[str, Any]] = []
    changed_rows: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for code in sorted(state.touched):
        after = state.dossiers[code]
        before = state.stored_dossiers.get(code)
        if before is None:
            new_rows.append({**_row_from_state(after), "created_at": now, "updated_at": now})
            continue
        if every_column:
            changed = _UPDATED_FIELDS
        else:
            # Only the columns that changed: SQLite rewrites the entry of every index on a
            # column named in SET, changed or not, and those pages then go to the WAL.
            changed = tuple(
                name for name in _UPDATED_FIELDS if getattr(after, name) != getattr(before, name)
            )
        row = {name: getattr(after, name) for name in changed}
        changed_rows[changed].append(row | {"updated_at": now, "b_code": code})
    _STATEMENTS.get(dialect, "dossiers", _dossiers_insert).execute_many(conn, new_rows)
    for changed, rows in changed_rows.items():
        update = _STATEMENTS.get(dialect, ("dossiers", changed), _dossiers_update(changed))
        update.execute_many(conn, rows)
    _upsert_consultations(conn, state.consultation_changes)
    _STATEMENTS.get(dialect, "flags", _flags_insert).execute_many(conn, state.flag_rows)
    if state.notice_rows:
        rows = [outbox.notice_row(n, now, links) for n in state.notice_rows]
        _STATEMENTS.get(dialect, "notices", _notices_insert).execute_many(conn, rows)


def _dialect_insert(dialect: Dialect, table: sa.Table) -> Any:
    return (postgresql.insert if dialect.name == "postgresql" else sqlite.insert)(table)


def _binds(table: sa.Table, names: Sequence[str]) -> dict[str, Any]:
    return {n: sa.bindparam(n, type_=table.c[n].type) for n in names}


def _events_insert(dialect: Dialect) -> Compiled:
    return compile_write(insert_statement(events, EVENT_COLUMNS), EVENT_COLUMNS, dialect)


def _dossiers_insert(dialect: Dialect) -> Compiled:
    statement = insert_statement(dossiers, _NEW_DOSSIER_COLUMNS)
    return compile_write(statement, _NEW_DOSSIER_COLUMNS, dialect)


def _dossiers_update(changed: tuple[str, ...]) -> Callable[[Dialect], Compiled]:
    columns = (*changed, "updated_at")

    def build(dialect: Dialect) -> Compiled:
        statement = (
            dossiers.update()
            .where(dossiers.c.code == sa.bindparam("b_code", type_=dossiers.c.code.type))
            .values(_binds(dossiers, columns))
        )
        return compile_write(statement, (*columns, "b_code"), dialect)

    return build


def _flags_insert(dialect: Dialect) -> Compiled:
    # A flag raised again by a replayed story is already there: keep the first.
    statement = _dialect_insert(dialect, flags).values(_binds(flags, _FLAG_COLUMNS))
    return compile_write(statement.on_conflict_do_nothing(), _FLAG_COLUMNS, dialect)


def _notices_insert(dialect: Dialect) -> Compiled:
    # The rows come from outbox.notice_row, the one place a notice row is built.
    return compile_write(insert_statement(notices, _NOTICE_COLUMNS), _NOTICE_COLUMNS, dialect)


def _consultation_upsert(present: tuple[str, ...]) -> Callable[[Dialect], Compiled]:
    names = ("dossier_code", "consultation_id", *_CONSULTATION_VALUES)

    def build(dialect: Dialect) -> Compiled:
        statement = _dialect_insert(dialect, consultations).values(_binds(consultations, names))
        keys = [consultations.c.dossier_code, consultations.c.consultation_id]
        if present:
            # What the event says overwrites; what it leaves out stays as it was.
            statement = statement.on_conflict_do_update(
                index_elements=keys, set_={k: statement.excluded[k] for k in present}
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=keys)
        return compile_write(statement, names, dialect)

    return build


def _upsert_consultations(
    conn: Connection, changes: Sequence[tuple[str, ConsultationChange]]
) -> None:
    """One upsert per change, in the order the events came (a later change of the same
    consultation must land after an earlier one); compiled once per set of fields given."""
    for code, change in changes:
        values = {k: getattr(change, k) for k in _CONSULTATION_VALUES}
        present = tuple(k for k, v in values.items() if v is not None)
        row = {"dossier_code": code, "consultation_id": change.consultation_id, **values}
        upsert = _STATEMENTS.get(
            conn.dialect, ("consultations", present), _consultation_upsert(present)
        )
        upsert.execute_many(conn, [row])


def _state_from_row(row: Any) -> DossierState:
    return DossierState(**{name: row[name] for name in _DOSSIER_FIELDS})


def _row_from_state(state: DossierState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in _DOSSIER_FIELDS}
