"""Single-event ingest for `make bench`: `tthc serve` next to a bare handler doing the same
HTTP and JSON work under the same load, measured in the same run.

Load: wrk (2 threads, 64 connections) replays events of the simulated one-stop-shop
with ``bench/ingest.lua``. The requests are built and signed beforehand and the script
maps them from a file, so the load generator does no Python work during a run and both
of its threads start at once. The baseline is ``bench/bare_server.py``: it reads and
parses the very same bodies, sent by the same script with the same threads and
connections, and answers 202. Each measured run follows a 1-s warm-up on the same server
and goes on with new events where the warm-up stopped.

* **Saturation, interleaved.** Each round runs the bare handler, SQLite, PostgreSQL with
  ``HTTP_WORKERS=1`` and with ``HTTP_WORKERS=2``, then the bare handler, SQLite and
  PostgreSQL paced at 300 requests/s; every gateway run gets a fresh database. A figure
  is the median over the rounds, shown as a ratio of the bare median, because this
  machine's speed drifts by up to 2x within the hour: interleaving spreads the drift
  over every row alike.
* **Paced.** The same script with ``BENCH_RATE``: each wrk thread hands out send times
  spaced evenly and ``delay()`` holds a connection until its time, so the rate does not
  depend on the answers; p50/p99 of the answer time for each target, and how many sends
  went out late because every connection was still waiting (then wrk's latency leaves
  that wait out, and the p99 is flattered).
* **Flat rate.** One database, ``--windows`` consecutive wrk runs of ``--window-seconds``
  each; every window goes on in the request files where the previous one stopped, so
  each sends new events only. The bare handler runs for as long just before each
  window. Events/s, its ratio to that bare run and p99 per window; last ÷ first, and
  the mean of the last three over the first three, raw and as ratios.
* **Batch.** 20,000 events, 500 a request, two requests in flight, once per database.

The bare handler's file wraps around when it is used up (it keeps no state, so a
repeat costs the same).
Every gateway run is checked, or its figure refused: no thread ran out of requests and
started again (that would replay events, and an idempotent replay is cheaper than a new
event), and the events table holds a row for every request answered without an error.
Events are signed once, before the first run; the gateways accept signatures up to an
hour old (``CLOCK_SKEW_SECONDS``), which changes nothing in the work of checking them.

``python -m bench.ingest [--quick] [--rounds 3] [--seconds 10]`` prints the rows;
:func:`run` gives them to ``bench/run.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]
from redis import Redis

from bench.common import drop_schema, wait_http
from gateway.http.signing import signed_headers_v2
from gateway.local.redis_server import free_port
from gateway.local.simulator import OneStopShop

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "ingest.lua"
SOURCE, SECRET = "bench", "bench-secret-0123456789abcdef01234567"
THREADS, CONNECTIONS = 2, 64
PACED_RATE = 300
RECORD = 2048  # bytes per request in the request files (bench/ingest.lua: RECORD)
PREFIX = f"tthc-bench-ingest-{os.getpid()}:"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
# How the rows this module gives begin (``bench/run.py --only ingest`` replaces them).
ROW_PREFIXES = (
    "| bare aiohttp",
    "| signed single-event ingest",
    "| batch ingest",
    "| flat rate",
)


# The 1-minute load average after each wrk run: how busy the machine was.
LOAD_AVERAGES: list[float] = []


def log(message: str) -> None:
    print(f"[ingest {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- load --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One wrk run: what it measured and what its script reported."""

    rate: float  # answers/s
    p50_ms: float
    p99_ms: float
    answered: int
    errors: int  # answers with a status above 399
    socket_errors: int
    sent: tuple[int, ...]  # requests each thread took from its file
    wrapped: int
    late: int  # paced sends that went out after their time
    head_start_ms: float  # how long thread 0 ran alone while the others loaded

    def line(self) -> str:
        extra = f", {self.errors} errors" if self.errors else ""
        extra += f", {self.socket_errors} socket errors" if self.socket_errors else ""
        extra += f", {self.late} late" if self.late else ""
        extra += f", head start {self.head_start_ms:.0f} ms"
        return (
            f"{self.rate:,.0f}/s p50 {self.p50_ms:.1f} ms p99 {self.p99_ms:.1f} ms "
            f"({self.answered} answers{extra})"
        )


def _ms(value: str) -> float:
    found = re.match(r"([\d.]+)(\w+)", value)
    assert found is not None, value
    number, unit = found.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _search(pattern: str, text: str) -> re.Match[str]:
    found = re.search(pattern, text, re.M)
    if found is None:
        raise RuntimeError(f"wrk output without {pattern!r}:\n{text}")
    return found


def wrk(
    url: str,
    seconds: int,
    requests: Path,
    *,
    skip: tuple[int, ...] = (),
    limit: int | None = None,
    rate: float | None = None,
) -> Run:
    """Drive ``url`` with ``bench/ingest.lua`` over the files ``requests.<thread>``."""
    env = {
        **os.environ,
        "BENCH_REQUESTS": str(requests),
        "BENCH_THREADS": str(THREADS),
        "BENCH_SKIP": ",".join(map(str, skip)),
    }
    if limit is not None:
        env["BENCH_LIMIT"] = str(limit)
    if rate is not None:
        env["BENCH_RATE"] = str(rate)
    command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    out = subprocess.run(
        [*command, "-s", str(SCRIPT), url], capture_output=True, text=True, check=True, env=env
    ).stdout
    LOAD_AVERAGES.append(os.getloadavg()[0])
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    threads = re.findall(
        r"^bench-thread (\d+) sent (\d+) wrapped (\d+) late (\d+) init (\d+)$", out, re.M
    )
    if len(threads) != THREADS:
        raise RuntimeError(f"the script did not report its threads:\n{out}")
    threads.sort(key=lambda t: int(t[0]))
    return Run(
        rate=float(_search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        p50_ms=_ms(_search(r"^\s+50%\s+(\S+)", out).group(1)),
        p99_ms=_ms(_search(r"^\s+99%\s+(\S+)", out).group(1)),
        answered=int(_search(r"^\s+(\d+) requests in", out).group(1)),
        errors=int(bad.group(1)) if bad else 0,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
        sent=tuple(int(t[1]) for t in threads),
        wrapped=sum(int(t[2]) for t in threads),
        late=sum(int(t[3]) for t in threads),
        head_start_ms=sum(float(t[4]) for t in threads[1:]),
    )


def events(count: int) -> list[dict[str, Any]]:
    """Simulated dossier stories, interleaved so each dossier's events stay in order."""
    shop = OneStopShop(seed=11, first_sequence=0)
    stories: list[list[dict[str, Any]]] = []
    total = 0
    while total < count:
        dossier = shop.dossier()
        story = [p.body for p in shop.story(dossier) if not p.duplicate]
        stories.append(story)
        total += len(story)
        shop.advance(1)
    ordered: list[dict[str, Any]] = []
    width = 64
    for start in range(0, len(stories), width):
        window = stories[start : start + width]
        for step in range(max(len(s) for s in window)):
            ordered.extend(s[step] for s in window if step < len(s))
    return ordered[:count]


def write_requests(prefix: Path, bodies: list[dict[str, Any]]) -> Path:
    """Sign ``bodies`` now as whole ``POST /v1/events`` requests, one file a wrk thread
    (``prefix.0``, ``prefix.1``...), each request in a record of :data:`RECORD` bytes:
    its length as ``%7d\\n``, the request, zero padding (``bench/ingest.lua`` maps the
    file and finds request *i* at *i* × RECORD)."""
    now = time.time()
    with ExitStack() as stack:
        outs = [stack.enter_context(Path(f"{prefix}.{n}").open("wb")) for n in range(THREADS)]
        for index, body in enumerate(bodies):
            raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            headers = signed_headers_v2(SOURCE, SECRET, "POST", "/v1/events", raw, now)
            head = (
                "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\n"
                + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
                + f"Content-Length: {len(raw)}\r\n\r\n"
            )
            request = head.encode("ascii") + raw
            if len(request) + 8 > RECORD:
                raise ValueError(f"event {body.get('id')}: {len(request)} bytes, over a record")
            outs[index % THREADS].write((b"%7d\n" % len(request) + request).ljust(RECORD, b"\0"))
    return prefix


# -- servers -----------------------------------------------------------------------------


@contextmanager
def serving(args: list[str], env: dict[str, str], health: str) -> Iterator[None]:
    process = subprocess.Popen(
        args, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_http(health, process)
        yield
    finally:
        process.terminate()
        process.wait(15)


@contextmanager
def bare_server() -> Iterator[str]:
    """``bench/bare_server.py`` on a free port; yields its events URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serving([sys.executable, str(HERE / "bare_server.py"), str(port)], {}, f"{base}/"):
        yield f"{base}/v1/events"


def gateway_env(database_url: str, redis_url: str, port: int, workers: int) -> dict[str, str]:
    return {
        "HTTP_WORKERS": str(workers),
        # Its own queues, deleted after the run: never the machine's default prefix.
        "REDIS_KEY_PREFIX": PREFIX,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "EVENT_SOURCES": f"{SOURCE}:{SECRET}",
        "CLOCK_SKEW_SECONDS": "3600",
        "HTTP_PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }


@contextmanager
def gateway(database_url: str, redis_url: str, workers: int = 1) -> Iterator[str]:
    """A migrated `tthc serve` on a free port; yields its events URL."""
    port = free_port()
    env = gateway_env(database_url, redis_url, port, workers)
    subprocess.run(
        [sys.executable, "-m", "gateway", "migrate"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    base = f"http://127.0.0.1:{port}"
    with serving([sys.executable, "-m", "gateway", "serve"], env, f"{base}/healthz"):
        yield f"{base}/v1/events"


# -- databases ---------------------------------------------------------------------------


@dataclass
class Databases:
    """Fresh databases for gateway runs: SQLite files in ``workdir``, PostgreSQL schemas."""

    workdir: Path
    postgres: str | None
    made: int = 0

    @contextmanager
    def fresh(self, kind: str) -> Iterator[str]:
        self.made += 1
        if kind == "SQLite":
            path = self.workdir / f"ingest-{self.made}.sqlite3"
            try:
                yield f"sqlite:///{path}"
            finally:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        assert self.postgres is not None
        schema = f"tthc_bench_ingest_{os.getpid()}_{self.made}"
        try:
            yield f"{self.postgres}?schema={schema}"
        finally:
            drop_schema(self.postgres, schema)


async def _pg_count(url: str) -> int:
    base, schema = url.split("?schema=")
    conn = await asyncpg.connect(base)
    try:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".events'))
    finally:
        await conn.close()


def stored_events(database_url: str) -> int:
    if database_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    return asyncio.run(_pg_count(database_url))


def checked(run: Run, database_url: str, stored_before: int = 0) -> Run:
    """``run`` if it sent new events only; otherwise raise, saying why."""
    if run.wrapped:
        raise RuntimeError(f"the request files ran out {run.wrapped} times: replays in the run")
    stored = settled_count(database_url) - stored_before
    if stored < run.answered - run.errors:
        raise RuntimeError(
            f"{run.answered - run.errors} answered without error, {stored} events stored"
        )
    return run


def settled_count(database_url: str) -> int:
    """The events stored once the answers still in flight when wrk stopped are written."""
    time.sleep(0.5)
    return stored_events(database_url)


# -- the bench ---------------------------------------------------------------------------


@dataclass
class Settings:
    seconds: int = 10
    rounds: int = 3
    windows: int = 12
    window_seconds: int = 5
    paced_rate: int = PACED_RATE
    warmup: int = 1


def measure(
    url: str, requests: Path, s: Settings, rate: float | None, database_url: str | None
) -> Run:
    """A warm-up run, then the measured one going on with new events where it stopped."""
    skip: tuple[int, ...] = ()
    before = 0
    if s.warmup:
        warm = wrk(url, s.warmup, requests, rate=rate)
        skip = warm.sent
        if database_url is not None:
            checked(warm, database_url)  # waits for the warm-up's last answers
            before = stored_events(database_url)
    run = wrk(url, s.seconds, requests, skip=skip, rate=rate)
    return run if database_url is None else checked(run, database_url, before)


def _median(runs: list[Run], field: str) -> float:
    return float(statistics.median(getattr(r, field) for r in runs))


def _runs(runs: list[Run]) -> str:
    return " / ".join(f"{r.rate:,.0f}" for r in runs)


def saturation_and_paced(
    requests: Path, dbs: Databases, redis_url: str, settings: Settings
) -> dict[str, list[Run]]:
    """The interleaved rounds; runs by name ("bare", "SQLite", "PostgreSQL", "PostgreSQL 2",
    "paced bare", "paced SQLite", "paced PostgreSQL")."""
    results: dict[str, list[Run]] = {}
    targets = [("SQLite", 1)] + ([("PostgreSQL", 1), ("PostgreSQL", 2)] if dbs.postgres else [])
    with bare_server() as bare:
        for round_number in range(1, settings.rounds + 1):
            for paced in (False, True):
                rate = settings.paced_rate if paced else None
                prefix = "paced " if paced else ""
                run = measure(bare, requests, settings, rate, None)
                results.setdefault(f"{prefix}bare", []).append(run)
                log(f"round {round_number} {prefix}bare: {run.line()}")
                for kind, workers in targets:
                    if paced and workers > 1:
                        continue
                    name = f"{prefix}{kind}" + (f" {workers}" if workers > 1 else "")
                    with dbs.fresh(kind) as url, gateway(url, redis_url, workers) as events_url:
                        run = measure(events_url, requests, settings, rate, url)
                    results.setdefault(name, []).append(run)
                    log(f"round {round_number} {name}: {run.line()}")
    return results


@dataclass(frozen=True)
class Window:
    """One flat-rate window and the bare-handler run just before it."""

    gateway: Run
    bare: Run

    @property
    def ratio(self) -> float:
        return self.gateway.rate / self.bare.rate


def flat(
    kind: str, requests: Path, per_window: int, dbs: Databases, redis_url: str, s: Settings
) -> list[Window]:
    """Consecutive windows against one database, each with new events, after a warm-up;
    before each, the bare handler for as long, so machine drift can be told from a
    slowing gateway."""
    windows: list[Window] = []
    skip = (0,) * THREADS
    with (
        bare_server() as bare_url,
        dbs.fresh(kind) as url,
        gateway(url, redis_url) as events_url,
    ):
        for number in range(s.windows + 1):
            seconds = s.window_seconds if number else s.warmup
            if not seconds:
                continue
            bare = wrk(bare_url, seconds, requests)
            before = settled_count(url)
            run = wrk(events_url, seconds, requests, skip=skip, limit=per_window)
            checked(run, url, before)
            skip = tuple(a + b for a, b in zip(skip, run.sent, strict=True))
            if number:
                windows.append(Window(run, bare))
            log(f"flat {kind} window {number or 'warm-up'}: {run.line()}; bare {bare.line()}")
    return windows


async def _post_batches(events_url: str, bodies: list[dict[str, Any]], size: int) -> float:
    raws = [
        json.dumps({"events": bodies[start : start + size]}, ensure_ascii=False).encode()
        for start in range(0, len(bodies), size)
    ]
    url = events_url + "/batch"
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()

        async def post(raw: bytes) -> None:
            headers = signed_headers_v2(
                SOURCE, SECRET, "POST", "/v1/events/batch", raw, time.time()
            )
            headers["Content-Type"] = "application/json"
            async with session.post(url, data=raw, headers=headers) as response:
                answer = await response.json()
                assert response.status == 200 and answer["rejected"] == 0, answer

        # Two batches in flight, as a one-stop-shop back-filling with a little overlap would.
        for start in range(0, len(raws), 2):
            await asyncio.gather(*(post(raw) for raw in raws[start : start + 2]))
        return len(bodies) / (time.perf_counter() - started)


def batch(kind: str, dbs: Databases, redis_url: str, count: int = 20_000) -> float:
    """Events/s posting ``count`` events 500 a request, two requests in flight."""
    bodies = events(count)
    with dbs.fresh(kind) as url, gateway(url, redis_url) as events_url:
        rate = asyncio.run(_post_batches(events_url, bodies, 500))
        if stored_events(url) != count:
            raise RuntimeError(f"batch: {stored_events(url)} of {count} events stored")
    log(f"batch {kind}: {rate:,.0f} events/s")
    return rate


def _ends(windows: list[Window], value: Callable[[Window], float]) -> float:
    """The mean of the last three windows' ``value`` over the first three's."""
    span = min(3, len(windows))
    first = statistics.fmean(value(w) for w in windows[:span])
    return statistics.fmean(value(w) for w in windows[-span:]) / first


def rows(
    results: dict[str, list[Run]],
    flats: dict[str, list[Window]],
    batches: dict[str, float],
    s: Settings,
) -> list[tuple[str, str]]:
    n = s.rounds
    load = f"wrk, {THREADS} threads, {CONNECTIONS} connections, median of {n} interleaved runs"
    bare = _median(results["bare"], "rate")
    out = [
        (
            f"bare aiohttp handler reading and parsing the same signed events ({load})",
            f"{bare:,.0f} req/s (runs {_runs(results['bare'])}), "
            f"p50 {_median(results['bare'], 'p50_ms'):.1f} ms, "
            f"p99 {_median(results['bare'], 'p99_ms'):.1f} ms",
        )
    ]
    aims = {"SQLite": 0.30, "PostgreSQL": 0.25}
    for name, aim in aims.items():
        runs = results.get(name)
        if not runs:
            continue
        rate = _median(runs, "rate")
        errors = sum(r.errors + r.socket_errors for r in runs)
        out.append(
            (
                f"signed single-event ingest, {name} (same load, HTTP_WORKERS=1)",
                f"{rate:,.0f} events/s = {rate / bare:.2f} × bare (aim ≥ {aim:.2f}; "
                f"runs {_runs(runs)}), p50 {_median(runs, 'p50_ms'):.1f} ms, "
                f"p99 {_median(runs, 'p99_ms'):.1f} ms, errors {errors}",
            )
        )
    if results.get("PostgreSQL 2"):
        one, two = _median(results["PostgreSQL"], "rate"), _median(results["PostgreSQL 2"], "rate")
        runs = results["PostgreSQL 2"]
        out.append(
            (
                "signed single-event ingest, PostgreSQL, HTTP_WORKERS=2 (same load)",
                f"{two:,.0f} events/s = {two / bare:.2f} × bare (runs {_runs(runs)}), "
                f"p50 {_median(runs, 'p50_ms'):.1f} ms, p99 {_median(runs, 'p99_ms'):.1f} ms; "
                f"2 processes ÷ 1 = {two / one:.2f} (aim ≥ 1)",
            )
        )
    paced_bare = results["paced bare"]
    bare99 = _median(paced_bare, "p99_ms")
    for name in ("SQLite", "PostgreSQL"):
        runs = results.get(f"paced {name}")
        if not runs:
            continue
        p99 = _median(runs, "p99_ms")
        late = sum(r.late for r in runs)
        out.append(
            (
                f"signed single-event ingest paced at {s.paced_rate:.0f} events/s, {name} "
                f"(same script, {CONNECTIONS} connections, median of {n})",
                f"p50 {_median(runs, 'p50_ms'):.1f} ms, p99 {p99:.1f} ms (aim < 50 ms) "
                f"= {p99 / bare99:.1f} × bare at p99; bare paced the same: "
                f"p50 {_median(paced_bare, 'p50_ms'):.1f} ms, p99 {bare99:.1f} ms; "
                f"{_median(runs, 'rate'):,.0f} answers/s"
                + (f", {late} sends late" if late else ""),
            )
        )
    for name, rate in batches.items():
        out.append(
            (
                f"batch ingest, {name} (500 events a request, 2 in flight, one run)",
                f"{rate:,.0f} events/s = {rate / bare:.2f} × bare req/s",
            )
        )
    for name, windows in flats.items():
        first, last = windows[0], windows[-1]
        out.append(
            (
                f"flat rate, {name}: {len(windows)} consecutive {s.window_seconds}-s wrk runs "
                "on one database, new events in each, the bare handler run just before each",
                "events/s "
                + " · ".join(f"{w.gateway.rate:,.0f}" for w in windows)
                + "; × bare "
                + " · ".join(f"{w.ratio:.3f}" for w in windows)
                + "; p99 ms "
                + " · ".join(f"{w.gateway.p99_ms:.0f}" for w in windows)
                + f"; last ÷ first = {last.gateway.rate / first.gateway.rate:.2f} "
                f"(as × bare: {last.ratio / first.ratio:.2f}); last 3 ÷ first 3 = "
                f"{_ends(windows, lambda w: w.gateway.rate):.2f} "
                f"(as × bare: {_ends(windows, lambda w: w.ratio):.2f}); "
                f"{sum(w.gateway.answered for w in windows):,} events stored",
            )
        )
    return out


def run(
    workdir: Path, postgres: str | None, redis_url: str, settings: Settings
) -> list[tuple[str, str]]:
    """All ingest rows: saturation and paced rounds, then the flat-rate runs."""
    dbs = Databases(workdir, postgres)
    capacity = int(10_000 * (settings.seconds + settings.warmup))
    log(f"signing {capacity:,} events")
    requests = write_requests(workdir / "requests", events(capacity))
    try:
        results = saturation_and_paced(requests, dbs, redis_url, settings)
        flats: dict[str, list[Window]] = {}
        kinds = ["SQLite"] + (["PostgreSQL"] if postgres else [])
        if settings.windows:
            fastest = max(_median(results[kind], "rate") for kind in kinds)
            # Room for each window to run 2x the saturation median, and for all of them
            # together at 1.5x; a run that still runs out is refused, never replayed.
            per_window = int(2 * fastest * settings.window_seconds / THREADS) + 100
            total = int(1.5 * fastest * settings.window_seconds * settings.windows) + 1000
            log(f"signing {total:,} events for the flat-rate runs")
            requests = write_requests(workdir / "flat", events(total))
            for kind in kinds:
                flats[kind] = flat(kind, requests, per_window, dbs, redis_url, settings)
        batches = {kind: batch(kind, dbs, redis_url) for kind in kinds}
    finally:
        forget_queues(redis_url)
    return rows(results, flats, batches, settings)


def forget_queues(redis_url: str) -> None:
    """Delete what the gateways queued under this run's prefix (no worker ran for it)."""
    redis = Redis.from_url(redis_url)
    try:
        for key in redis.scan_iter(match=f"{PREFIX}*", count=1000):
            redis.delete(key)
    finally:
        redis.close()


async def postgres_ok(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except Exception:
        return False
    await conn.close()
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="each saturation/paced run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--windows", type=int, default=12, help="flat-rate windows (0: none)")
    parser.add_argument("--window-seconds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3-s runs, 1 round, 4 windows")
    parser.add_argument(
        "--postgres", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    args = parser.parse_args()
    settings = Settings(args.seconds, args.rounds, args.windows, args.window_seconds)
    if args.quick:
        settings = Settings(3, 1, min(args.windows, 4), 3)
    postgres = args.postgres if asyncio.run(postgres_ok(args.postgres)) else None
    with tempfile.TemporaryDirectory(prefix="tthc-bench-ingest-") as tmp:
        found = run(Path(tmp), postgres, args.redis, settings)
    print("| what | figure |\n|---|---|")
    for what, figure in found:
        print(f"| {what} | {figure} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
