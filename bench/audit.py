"""The accountability bench: `tthc audit rebuild` and the monthly statistics at scale.

Seeds N synthetic dossiers (default 200,000) with the simulated one-stop-shop's
timelines — the same event bodies the gateway stores, about four events a dossier,
received over the past five months — straight into the ``events`` and ``dossiers``
tables of a fresh SQLite file and a fresh PostgreSQL schema (bulk inserts: sqlite3
``executemany``, asyncpg ``COPY``). Then, on each database, next to baselines measured
in the same run:

* ``tthc audit rebuild`` as a subprocess: dossiers/s and peak RSS, next to reading the
  same timelines page by page without auditing (dossiers/s), a bare ``count(*)`` over
  the events table, and the peak RSS of the same interpreter that only loads the command;
* the monthly agency statistics (the busiest month), next to a bare ``count(*)`` over
  ``dossier_audit``.

``python -m bench.audit [--dossiers N]`` prints the rows; ``bench/run.py`` adds them to
``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench.common import drop_schema, pg_ok
from gateway.local.simulator import TZ, OneStopShop
from gateway.storage import migrate
from gateway.storage.audit import dossier_codes_page, load_timelines
from gateway.storage.db import create_engine, parse_database_url
from gateway.storage.ingest import EVENT_COLUMNS
from gateway.storage.statistics import MonthRange, agency_statistics

CHUNK = 2000
TIMER = "/usr/bin/time"
SOURCE = "bench-onestop"
DOSSIER_COLUMNS = (
    "code",
    "state",
    "dvcqg_status",
    "state_at",
    "procedure_code",
    "procedure_name",
    "agency_code",
    "agency_name",
    "applicant_name",
    "phone_raw",
    "received_at",
    "received_by",
    "due_at",
    "original_due_at",
    "reschedule_count",
    "supplement_count",
    "event_count",
    "created_at",
    "updated_at",
)
Rows = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def stories(
    count: int, now: datetime, *, days: int = 160, seconds_apart: float = 60
) -> Iterator[Rows]:
    """Chunks of (event rows, dossier rows) for ``count`` simulated dossiers, received one
    every ``seconds_apart`` of clock time (office hours only) from ``days`` before ``now``
    (by default one a minute from about five months before)."""
    start = (now - timedelta(days=days)).astimezone(TZ).replace(hour=8, minute=0)
    shop = OneStopShop(seed=9, start=start, first_sequence=0)
    seen: set[str] = set()
    events: list[tuple[Any, ...]] = []
    dossiers: list[tuple[Any, ...]] = []
    made = 0
    while made < count:
        dossier = shop.dossier()
        shop.clock += timedelta(seconds=seconds_apart)
        code = dossier["code"]
        if code in seen:
            continue
        seen.add(code)
        made += 1
        bodies = [p.body for p in shop.story(dossier) if not p.duplicate]
        for body in bodies:
            raw = orjson.dumps(body)
            at = datetime.fromisoformat(body["occurred_at"]).astimezone(UTC)
            events.append(
                (
                    SOURCE,
                    body["id"],
                    body["type"],
                    code,
                    at,
                    at + timedelta(seconds=1),
                    body["actor"]["id"],
                    body["actor"]["name"],
                    False,
                    hashlib.sha256(raw).hexdigest(),
                    raw.decode(),
                    '{"status":"accepted"}',
                )
            )
        dossiers.append(_dossier_row(bodies))
        if len(dossiers) >= CHUNK:
            yield events, dossiers
            events, dossiers = [], []
    if dossiers:
        yield events, dossiers


def _dossier_row(bodies: list[dict[str, Any]]) -> tuple[Any, ...]:
    first, last = bodies[0], bodies[-1]
    d, actor = last["dossier"], first["actor"]
    received = datetime.fromisoformat(first["dossier"]["received_at"]).astimezone(UTC)
    last_at = datetime.fromisoformat(last["occurred_at"]).astimezone(UTC)
    kinds = [b["type"] for b in bodies]
    return (
        d["code"],
        last["type"].split(".", 1)[1],
        2,
        last_at,
        d["procedure"]["code"],
        d["procedure"]["name"],
        d["agency"]["code"],
        d["agency"]["name"],
        d["applicant"]["name"],
        d["applicant"]["phone"],
        received,
        actor["id"],
        datetime.fromisoformat(d["due_at"]).astimezone(UTC),
        datetime.fromisoformat(first["dossier"]["due_at"]).astimezone(UTC),
        kinds.count("dossier.delayed"),
        kinds.count("dossier.supplement_requested"),
        len(bodies),
        received,
        last_at,
    )


# --- bulk writers ------------------------------------------------------------------------


class SqliteWriter:
    """sqlite3 ``executemany`` in the storage format SQLAlchemy reads back."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=OFF")

    @staticmethod
    def _value(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return value

    def write(self, events: list[tuple[Any, ...]], dossiers: list[tuple[Any, ...]]) -> None:
        for table, columns, rows in (
            ("events", EVENT_COLUMNS, events),
            ("dossiers", DOSSIER_COLUMNS, dossiers),
        ):
            marks = ", ".join("?" * len(columns))
            self.db.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                ([self._value(v) for v in row] for row in rows),
            )
        self.db.commit()

    def close(self) -> None:
        self.db.execute("ANALYZE")
        self.db.close()


class PostgresWriter:
    """asyncpg ``COPY`` into the bench's own schema."""

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema

    async def write(self, events: list[tuple[Any, ...]], dossiers: list[tuple[Any, ...]]) -> None:
        for table, columns, rows in (
            ("events", EVENT_COLUMNS, events),
            ("dossiers", DOSSIER_COLUMNS, dossiers),
        ):
            await self.conn.copy_records_to_table(
                table, records=rows, columns=list(columns), schema_name=self.schema
            )


def seed(count: int, sqlite_path: Path, postgres: tuple[str, str] | None) -> int:
    """Write ``count`` dossiers to both databases; returns the number of events."""
    sqlite_writer = SqliteWriter(sqlite_path)
    total = 0

    async def run() -> None:
        nonlocal total
        conn = writer = None
        if postgres is not None:
            conn = await asyncpg.connect(postgres[0])
            writer = PostgresWriter(conn, postgres[1])
        try:
            for events, dossiers in stories(count, datetime.now(UTC)):
                sqlite_writer.write(events, dossiers)
                if writer is not None:
                    await writer.write(events, dossiers)
                total += len(events)
            if conn is not None:
                await conn.execute(f'ANALYZE "{postgres[1]}".events')  # type: ignore[index]
                await conn.execute(f'ANALYZE "{postgres[1]}".dossiers')  # type: ignore[index]
        finally:
            if conn is not None:
                await conn.close()

    try:
        asyncio.run(run())
    finally:
        sqlite_writer.close()
    return total


# --- measurements ------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    output: str


def measured(command: list[str], env: dict[str, str], workdir: Path) -> Run:
    """Run ``command`` to the end: its wall time and its own peak RSS.

    ``/usr/bin/time`` execs the command from its own small process: ``wait4`` on a child
    forked from this (large) bench process could report this process's size instead.
    """
    if not Path(TIMER).exists():
        return _measured_by_wait4(command, env)
    report = workdir / "time.txt"
    timer = [TIMER, "-f", "%M", "-o", str(report)]
    started = time.perf_counter()
    done = subprocess.run(
        [*timer, *command],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command} exited with {done.returncode}: {done.stderr[-2000:]}")
    kilobytes = int(report.read_text().split()[-1])
    return Run(seconds, kilobytes / 1024, done.stdout)


def _measured_by_wait4(command: list[str], env: dict[str, str]) -> Run:
    """Without ``/usr/bin/time`` (Debian package ``time``): the child's own rusage."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    with process.stdout:
        output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{command} exited with {process.returncode}")
    return Run(time.perf_counter() - started, usage.ru_maxrss / 1024, output)


def rebuild(database_url: str, redis_url: str, workdir: Path) -> tuple[Run, Run]:
    """(``tthc audit rebuild``, the same interpreter only loading the command)."""
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "REDIS_KEY_PREFIX": f"tthc-bench-audit-{os.getpid()}:",
    }
    command = [sys.executable, "-m", "gateway", "audit", "rebuild", "--no-progress"]
    full = measured(command, env, workdir)
    loaded = "import gateway.cli.audit, gateway.audit.ledger"
    idle = measured([sys.executable, "-c", loaded], env, workdir)
    return full, idle


async def _timed(action: Callable[[], Awaitable[Any]], rounds: int = 5) -> float:
    """The median seconds of ``rounds`` runs, after one warm-up."""
    await action()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def reads(database_url: str) -> dict[str, float]:
    """Baselines and the statistics query, on one database."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:

            async def count(table: str) -> Any:
                return (await conn.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar()

            events_count = await _timed(lambda: count("events"), 3)
            audit_count = await _timed(lambda: count("dossier_audit"))
            busiest = (
                await conn.exec_driver_sql(
                    "SELECT ended_month FROM dossier_audit WHERE ended_month IS NOT NULL "
                    "GROUP BY ended_month ORDER BY count(*) DESC LIMIT 1"
                )
            ).scalar()
            # Reading every timeline page by page, as the rebuild does, without auditing.
            started = time.perf_counter()
            after, dossiers = None, 0
            while codes := await dossier_codes_page(conn, after, 500):
                await load_timelines(conn, codes)
                dossiers += len(codes)
                after = codes[-1]
            read_rate = dossiers / (time.perf_counter() - started)
        span = MonthRange(busiest, busiest)
        now = datetime.now(UTC)
        items: list[dict[str, Any]] = []

        async def monthly() -> None:
            items[:] = await agency_statistics(engine, span, threshold=0.1, now=now, tz=TZ)

        query = await _timed(monthly)
        ended = sum(item["ended"] for item in items)
    finally:
        await engine.dispose()
    return {
        "events_count": events_count,
        "audit_count": audit_count,
        "read_rate": read_rate,
        "statistics": query,
        "agencies": len(items),
        "ended": ended,
        "month": busiest,
    }


def run(workdir: Path, postgres: str | None, redis_url: str, count: int) -> list[tuple[str, str]]:
    """Seed, rebuild and query on SQLite and (if ``postgres``) PostgreSQL; the rows."""
    sqlite_url = f"sqlite:///{workdir / 'audit.sqlite3'}"
    targets = [("SQLite", sqlite_url)]
    schema = f"tthc_bench_audit_{os.getpid()}"
    if postgres is not None:
        targets.append(("PostgreSQL", f"{postgres}?schema={schema}"))
    rows: list[tuple[str, str]] = []
    try:
        for _, url in targets:
            migrate.upgrade(url)
        started = time.perf_counter()
        sqlite_path = parse_database_url(sqlite_url).sqlite_path
        assert sqlite_path is not None
        events = seed(count, sqlite_path, (postgres, schema) if postgres else None)
        rows.append(
            (
                f"audit bench data: {count:,} simulated dossiers, {events:,} events "
                "(bulk-seeded into each database)",
                f"seeded in {time.perf_counter() - started:.0f} s",
            )
        )
        for name, url in targets:
            full, idle = rebuild(url, redis_url, workdir)
            rate = _summary_rate(full.output) or count / full.seconds
            measures = asyncio.run(reads(url))
            rows.append(
                (
                    f"`tthc audit rebuild` over {count:,} dossiers, {name}",
                    f"{rate:,.0f} dossiers/s ({full.seconds:.0f} s whole process) = "
                    f"{rate / measures['read_rate']:.2f} × reading the same timelines "
                    f"without auditing ({measures['read_rate']:,.0f} dossiers/s); "
                    f"peak RSS {full.peak_rss_mb:.0f} MB (the command only loaded: "
                    f"{idle.peak_rss_mb:.0f} MB); bare count(*) over the {events:,} events: "
                    f"{measures['events_count'] * 1000:.0f} ms",
                )
            )
            rows.append(
                (
                    f"monthly agency statistics at {count:,} dossiers, {name} "
                    f"({measures['month']}: {measures['ended']:,} ended, "
                    f"{measures['agencies']} agencies)",
                    f"{measures['statistics'] * 1000:.0f} ms (median of 5) = "
                    f"{measures['statistics'] / measures['audit_count']:.1f} × a bare "
                    f"count(*) over dossier_audit ({measures['audit_count'] * 1000:.1f} ms)",
                )
            )
    finally:
        if postgres is not None:
            drop_schema(postgres, schema)
    return rows


def _summary_rate(output: str) -> float | None:
    found = re.search(r"([\d,.]+) dossiers/s", output)
    return float(found.group(1).replace(",", "")) if found else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dossiers", type=int, default=200_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument(
        "--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    postgres = args.postgres if pg_ok(args.postgres) else None
    with tempfile.TemporaryDirectory(prefix="tthc-bench-audit-") as tmp:
        rows = run(Path(tmp), postgres, args.redis, args.dossiers)
    if postgres is None:
        rows.append(("PostgreSQL (audit bench)", f"skipped: no server at {args.postgres}"))
    for what, figure in rows:
        print(f"| {what} | {figure} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
