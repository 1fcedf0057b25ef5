"""A million dossiers: seeding, look-ups, the deadline sweep and the monthly statistics.

``tthc bench seed`` (or ``python -m bench.seed``) bulk-seeds ``--dossiers`` (default
1,000,000) simulated dossiers with the one-stop-shop simulator's timelines — the
generator and bulk writers of ``bench/audit.py``, spread over a year of office hours
(about 2,700 dossiers a working day at a million) — into a fresh SQLite file and a fresh
PostgreSQL schema (dropped at the end). Each dossier the sweep has already judged is
marked so, as a running gateway would have it, and ``dossier_audit`` rows are derived
in SQL from the dossiers (verdict by local due date; no violations ledger), so the
statistics query has its input. Then, on each database, every figure next to a baseline
from the same run, interleaved rounds:

* Look-up p50/p99 of random dossier codes: a signed ``GET /v1/dossiers/{code}`` to
  ``tthc serve`` (timeline, flags, notices), the bot's look-up (``ChatServices.dossier``:
  the row, the last step, the notices sent); baseline: a bare primary-key select on the
  same connection pool, and a bare aiohttp handler over HTTP.
* The deadline sweep's cost with the same 500 dossiers falling due, at a tenth of the
  size (seeded first) and at the full size: it follows the dossiers falling due (a
  partial index), so the two should be about equal.
* The monthly agency statistics (busiest month) next to a bare ``count(*)`` over
  ``dossier_audit``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.audit import PostgresWriter, Rows, SqliteWriter, stories
from bench.common import drop_schema, pg_ok, wait_http
from bench.delivery import SECRET, SOURCE, _env
from gateway.domain.calendar import WorkingCalendar
from gateway.http.signing import signed_headers_v2
from gateway.local.redis_server import free_port
from gateway.local.simulator import TZ
from gateway.storage import migrate
from gateway.storage.db import create_engine, parse_database_url
from gateway.storage.statistics import MonthRange, agency_statistics

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DAYS = 380  # the first dossier was received this many days ago
SPAN = 360  # and the last one twenty days ago
FALLING_DUE = 500  # the sweep's own batch
ENDED = ("finished", "delivered", "refused", "withdrawn")


def _say(text: str) -> None:
    print(f"seed: {text}", file=sys.stderr, flush=True)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


# --- seeding ------------------------------------------------------------------------------


class Seeder:
    """Writes the generator's chunks to the full-size databases and, for the first tenth,
    to the tenth-size ones too (the same dossiers, so the same ones can fall due)."""

    def __init__(
        self,
        count: int,
        sqlite_paths: tuple[Path, Path],
        postgres: tuple[str, str, str] | None,
    ) -> None:
        self.count = count
        self.chunks: Iterator[Rows] = stories(
            count, datetime.now(UTC), days=DAYS, seconds_apart=SPAN * 86400 / count
        )
        self.sqlite = [SqliteWriter(path) for path in sqlite_paths]
        self.postgres = postgres
        self.dossiers = self.events = 0
        self.seconds = 0.0

    async def until(self, dossiers: int, *, small_too: bool) -> None:
        """Write chunks until ``dossiers`` are in (or the generator ends)."""
        started = time.perf_counter()
        conn = None
        writers: list[PostgresWriter] = []
        if self.postgres is not None:
            url, big, small = self.postgres
            conn = await asyncpg.connect(url)
            writers = [PostgresWriter(conn, big)] + [PostgresWriter(conn, small)] * small_too
        try:
            while self.dossiers < dossiers:
                chunk = next(self.chunks, None)
                if chunk is None:
                    break
                events, rows = chunk
                for sqlite in self.sqlite[: 1 + small_too]:
                    sqlite.write(events, rows)
                for writer in writers:
                    await writer.write(events, rows)
                self.dossiers += len(rows)
                self.events += len(events)
                if self.dossiers % 10_000 < len(rows):
                    rate = self.dossiers / (self.seconds + time.perf_counter() - started)
                    _say(f"{self.dossiers:,} dossiers ({rate:,.0f}/s)")
        finally:
            if conn is not None:
                await conn.close()
        self.seconds += time.perf_counter() - started

    def close(self) -> None:
        for sqlite in self.sqlite:
            sqlite.close()


def _judged_sql(dialect: str) -> list[str]:
    """Mark what a running gateway's sweep would have judged; derive ``dossier_audit``."""
    ended = ", ".join(f"'{s}'" for s in ENDED)
    now = "strftime('%Y-%m-%d %H:%M:%f', 'now')" if dialect == "sqlite" else "now()"
    mark = (
        "UPDATE dossiers SET deadline_state = CASE "
        f"WHEN state IN ({ended}) AND state_at <= due_at THEN 'met' ELSE 'late' END "
        f"WHERE deadline_state IS NULL AND due_at < {now}"
    )
    if dialect == "sqlite":

        def month(column: str) -> str:
            return f"strftime('%Y-%m', {column}, '+7 hours')"

        def day(column: str) -> str:
            return f"date({column}, '+7 hours')"

        empty = "(phone_raw IS NULL OR phone_raw = '')"
    else:
        zone = "AT TIME ZONE 'Asia/Ho_Chi_Minh'"

        def month(column: str) -> str:
            return f"to_char({column} {zone}, 'YYYY-MM')"

        def day(column: str) -> str:
            return f"({column} {zone})::date"

        empty = "(phone_raw IS NULL OR phone_raw = '')"
    audit = (
        "INSERT INTO dossier_audit (dossier_code, agency_code, agency_name, received_by, "
        "closed_by, received_at, received_month, due_date, effective_due_date, ended_at, "
        "ended_month, end_kind, verdict, supplement_requests, apologies, missing_phone, "
        "audited_at) SELECT code, agency_code, agency_name, received_by, "
        f"CASE WHEN state IN ({ended}) THEN received_by END, received_at, "
        f"{month('received_at')}, {day('original_due_at')}, {day('due_at')}, "
        f"CASE WHEN state IN ({ended}) THEN state_at END, "
        f"CASE WHEN state IN ({ended}) THEN {month('state_at')} END, "
        f"CASE WHEN state IN ({ended}) THEN state END, "
        f"CASE WHEN state NOT IN ({ended}) THEN 'open' "
        f"WHEN {day('state_at')} <= {day('due_at')} THEN 'on_time' "
        "WHEN reschedule_count > 0 THEN 'late_with_apology' ELSE 'late' END, "
        f"supplement_count, reschedule_count, {empty}, {now} "
        "FROM dossiers WHERE code NOT IN (SELECT dossier_code FROM dossier_audit)"
    )
    return [mark, audit]


async def judged(url: str) -> None:
    """Mark and derive, then tidy up as a running database would be: statistics fresh,
    SQLite's write-ahead log checkpointed, PostgreSQL's dead rows vacuumed (autovacuum's
    work on a live system)."""
    engine = create_engine(url, writer=True)
    try:
        async with engine.begin() as conn:
            for statement in _judged_sql(conn.dialect.name):
                await conn.exec_driver_sql(statement)
        if engine.dialect.name == "postgresql":
            async with engine.connect() as conn:
                raw = await conn.get_raw_connection()
                driver = raw.driver_connection
                assert driver is not None
                for table in ("dossiers", "events", "dossier_audit"):
                    await driver.execute(f"VACUUM ANALYZE {table}")
    finally:
        await engine.dispose()
    path = parse_database_url(url).sqlite_path
    if path is not None:
        db = sqlite3.connect(path)
        db.execute("ANALYZE")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()


# --- measurements -------------------------------------------------------------------------


async def _median(action: Callable[[], Awaitable[Any]], rounds: int = 5) -> float:
    await action()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def sweep_costs(urls: list[str], codes: list[str], rounds: int = 5) -> list[float]:
    """Median seconds of the deadline sweep with exactly ``codes`` falling due, on each
    database of ``urls`` in turn (interleaved rounds after one warm-up round)."""
    from gateway.delivery import deadlines
    from gateway.storage.tables import dossiers

    engines = [create_engine(url, writer=True) for url in urls]
    calendar = WorkingCalendar()
    times: list[list[float]] = [[] for _ in urls]
    try:
        for _ in range(rounds + 1):
            for engine, mine in zip(engines, times, strict=True):
                async with engine.begin() as conn:
                    await conn.execute(
                        dossiers.update()
                        .where(dossiers.c.code.in_(codes))
                        .values(deadline_state=None, late_at=None)
                    )
                started = time.perf_counter()
                result = await deadlines.sweep(engine, datetime.now(UTC), calendar)
                mine.append(time.perf_counter() - started)
                judged_now = result.late + result.met + result.waiting
                if judged_now != len(codes):
                    raise RuntimeError(f"the sweep judged {judged_now}, not {len(codes)}")
    finally:
        for engine in engines:
            await engine.dispose()
    return [statistics.median(mine[1:]) for mine in times]


async def sample_codes(url: str, count: int) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            total = (await conn.exec_driver_sql("SELECT count(*) FROM dossiers")).scalar_one()
            step = max(1, total // count)
            rows = await conn.exec_driver_sql(
                "SELECT code FROM (SELECT code, row_number() OVER (ORDER BY code) AS n "
                f"FROM dossiers) AS t WHERE n % {step} = 0"
            )
            codes = [r[0] for r in rows][:count]
    finally:
        await engine.dispose()
    return codes


def _serve_env(url: str, redis_url: str, port: int) -> dict[str, str]:
    """The delivery bench's settings (its vendor is never called here)."""
    return _env(url, redis_url, f"tthc-bench-seed-{os.getpid()}:", port, free_port())


async def lookups(
    url: str, redis_url: str, codes: list[str], api: int, bare: int, rounds: int = 3
) -> dict[str, list[float]]:
    """Interleaved rounds of each look-up over ``codes``; latencies in ms by kind."""
    from gateway.chat.runtime import job_resources
    from gateway.chat.services import ChatServices
    from gateway.settings import Settings
    from gateway.storage.tables import dossiers

    settings = Settings.from_env(_serve_env(url, redis_url, api), dotenv_path=None)
    found: dict[str, list[float]] = {"select": [], "bot": [], "api": [], "bare": []}
    async with (
        job_resources(settings) as resources,
        aiohttp.ClientSession() as session,
    ):
        bot = ChatServices(resources, WorkingCalendar(), lambda: datetime.now(UTC))
        engine: AsyncEngine = resources.engine

        async def select(code: str) -> None:
            async with engine.connect() as conn:
                row = (
                    await conn.execute(sa.select(dossiers).where(dossiers.c.code == code))
                ).first()
                assert row is not None

        async def chat(code: str) -> None:
            assert await bot.dossier(code) is not None

        async def get(code: str) -> None:
            path = f"/v1/dossiers/{code}"
            headers = signed_headers_v2(SOURCE, SECRET, "GET", path, b"", time.time())
            async with session.get(f"http://127.0.0.1:{api}{path}", headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status

        async def handler(code: str) -> None:
            async with session.get(f"http://127.0.0.1:{bare}/") as r:
                await r.read()

        kinds: dict[str, Callable[[str], Awaitable[None]]] = {
            "select": select,
            "bot": chat,
            "api": get,
            "bare": handler,
        }
        for code in codes[:20]:  # warm-up
            for action in kinds.values():
                await action(code)
        for r in range(rounds):
            part = codes[r::rounds]
            for kind, action in kinds.items():
                for code in part:
                    started = time.perf_counter()
                    await action(code)
                    found[kind].append((time.perf_counter() - started) * 1000)
    return found


async def monthly(url: str) -> tuple[float, float, str, int]:
    """(statistics median s, bare count(*) median s, month, dossiers ended in it)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:

            async def count() -> Any:
                return (await conn.exec_driver_sql("SELECT count(*) FROM dossier_audit")).scalar()

            bare = await _median(count)
            month = (
                await conn.exec_driver_sql(
                    "SELECT ended_month FROM dossier_audit WHERE ended_month IS NOT NULL "
                    "GROUP BY ended_month ORDER BY count(*) DESC LIMIT 1"
                )
            ).scalar_one()
        items: list[dict[str, Any]] = []
        now = datetime.now(UTC)

        async def query() -> None:
            items[:] = await agency_statistics(
                engine, MonthRange(month, month), threshold=0.1, now=now, tz=TZ
            )

        seconds = await _median(query)
    finally:
        await engine.dispose()
    return seconds, bare, month, sum(int(i["ended"]) for i in items)


def _lookup_rows(name: str, count: int, found: dict[str, list[float]]) -> list[tuple[str, str]]:
    def p(kind: str, share: float) -> float:
        return _percentile(found[kind], share)

    select99 = p("select", 0.99)
    bare99 = p("bare", 0.99)
    samples = len(found["api"])
    rows = []
    for kind, what in (
        ("api", "signed `GET /v1/dossiers/{code}` via `tthc serve`"),
        ("bot", "the bot's dossier look-up (`ChatServices.dossier`, in process)"),
    ):
        extra = f", {p(kind, 0.99) / bare99:.1f} × a bare aiohttp handler's p99 ({bare99:.2f} ms)"
        rows.append(
            (
                f"dossier look-up at {count:,} dossiers, {name}: {what}, "
                f"{samples:,} random codes, 3 interleaved rounds",
                f"p50 {p(kind, 0.5):.2f} ms, p99 {p(kind, 0.99):.2f} ms = "
                f"{p(kind, 0.99) / select99:.1f} × a bare primary-key select's p99 "
                f"({select99:.2f} ms; p50 {p('select', 0.5):.2f} ms)"
                + (extra if kind == "api" else ""),
            )
        )
    return rows


# --- orchestration ------------------------------------------------------------------------


def run(
    workdir: Path, postgres: str | None, redis_url: str, count: int = 1_000_000, samples: int = 900
) -> list[tuple[str, str]]:
    """Seed, measure on each database; the rows. The PostgreSQL schemas are dropped."""
    paths = (workdir / "seed.sqlite3", workdir / "seed-tenth.sqlite3")
    schemas = (f"tthc_bench_seed_{os.getpid()}", f"tthc_bench_seed_tenth_{os.getpid()}")
    # (name, full-size URL, tenth-size URL)
    targets = [("SQLite", f"sqlite:///{paths[0]}", f"sqlite:///{paths[1]}")]
    if postgres is not None:
        targets.append(
            ("PostgreSQL", f"{postgres}?schema={schemas[0]}", f"{postgres}?schema={schemas[1]}")
        )
    rows: list[tuple[str, str]] = []
    tenth = max(FALLING_DUE * 2, count // 10)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for _, url, small_url in targets:
            migrate.upgrade(url)
            migrate.upgrade(small_url)
        seeder = Seeder(count, paths, (postgres, *schemas) if postgres else None)
        asyncio.run(seeder.until(tenth, small_too=True))
        small_count = seeder.dossiers
        asyncio.run(seeder.until(count, small_too=False))
        seeder.close()
        started = time.perf_counter()
        for _, url, small_url in targets:
            asyncio.run(judged(url))
            asyncio.run(judged(small_url))
        judging = time.perf_counter() - started
        rows.append(
            (
                f"seed: {seeder.dossiers:,} simulated dossiers over a year, {seeder.events:,} "
                f"events, into {' and '.join(t[0] for t in targets)} (bulk)",
                f"{seeder.seconds:.0f} s ({seeder.dossiers / seeder.seconds:,.0f} dossiers/s "
                f"into both databases, and the first {small_count:,} into a tenth-size copy "
                f"of each); marking judged dossiers and deriving dossier_audit in SQL, then "
                f"ANALYZE/VACUUM: {judging:.0f} s",
            )
        )
        # The same dossiers fall due in both sizes: the oldest, already judged ones.
        due = asyncio.run(sample_codes(targets[0][2], FALLING_DUE))
        bare_port = free_port()
        bare = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "bare_server.py"), str(bare_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(bare)
        wait_http(f"http://127.0.0.1:{bare_port}/", bare)
        for name, url, small_url in targets:
            big_sweep, small_sweep = asyncio.run(sweep_costs([url, small_url], due))
            rows.append(
                (
                    f"deadline sweep, the same {FALLING_DUE} dossiers falling due, {name}",
                    f"at {seeder.dossiers:,} dossiers: {big_sweep * 1000:.0f} ms; at "
                    f"{small_count:,}: {small_sweep * 1000:.0f} ms (ratio "
                    f"{big_sweep / small_sweep:.2f}; medians of 5 interleaved runs)",
                )
            )
            codes = asyncio.run(sample_codes(url, samples))
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve"],
                env=_serve_env(url, redis_url, port),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes.append(server)
            wait_http(f"http://127.0.0.1:{port}/healthz", server, timeout=60)
            found = asyncio.run(lookups(url, redis_url, codes, port, bare_port))
            server.terminate()
            server.wait(15)
            rows += _lookup_rows(name, seeder.dossiers, found)
            seconds, bare_count, month, ended = asyncio.run(monthly(url))
            rows.append(
                (
                    f"monthly agency statistics at {seeder.dossiers:,} dossiers, {name} "
                    f"({month}: {ended:,} ended)",
                    f"{seconds * 1000:.0f} ms (median of 5) = {seconds / bare_count:.1f} × a "
                    f"bare count(*) over dossier_audit ({bare_count * 1000:.1f} ms)",
                )
            )
            _say(f"{name} measured")
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(15)
        if postgres is not None:
            for schema in schemas:
                drop_schema(postgres, schema)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tthc bench seed", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dossiers", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=900, help="random codes looked up")
    parser.add_argument(
        "--postgres", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    parser.add_argument("--workdir", help="where the SQLite file goes (default: a temporary one)")
    args = parser.parse_args(argv)
    postgres = None
    if not args.no_postgres and pg_ok(args.postgres):
        postgres = args.postgres
    if args.workdir:
        rows = run(Path(args.workdir), postgres, args.redis, args.dossiers, args.samples)
    else:
        with tempfile.TemporaryDirectory(prefix="tthc-bench-seed-") as tmp:
            rows = run(Path(tmp), postgres, args.redis, args.dossiers, args.samples)
    if postgres is None:
        rows.append(("PostgreSQL (seed bench)", "skipped"))
    for what, figure in rows:
        print(f"| {what} | {figure} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
