"""The soak: memory of every process at a steady load, sampled every 30 seconds.

``tthc serve`` and two ``tthc worker`` processes (each with its cron child) against the
fake eSMS, on a fresh PostgreSQL schema (SQLite file when no server answers), while the
simulated one-stop-shop posts its dossiers' events one at a time at a steady paced rate
(default 20 events/s) for ``--minutes`` (default 10). Every ``--every`` seconds (default
30) the resident set size (``VmRSS`` in ``/proc``) of each gateway process is read. The
series is printed, with the mean of the last minute over the mean of the first for each
process: 1.00 is flat. Only growth that goes on after warm-up is a leak; the first
samples include imports and pools filling.

``python -m bench.soak [--minutes 10] [--rate 20]`` prints the series and the row;
:func:`run` gives the rows for ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from redis import Redis
from rq import Queue

from bench.common import drop_schema, pg_ok, wait_http
from bench.delivery import SECRET, SOURCE, _fake_control, _fake_messages, _start, start_stack
from gateway.http.signing import signed_headers_v2
from gateway.local.simulator import OneStopShop

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def rss_kb(pid: int) -> int:
    """The resident set size of ``pid`` in kB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def role(pid: int) -> str:
    """What a worker's child is, from its command line."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            line = f.read()
    except OSError:
        return "gone"
    if b"resource_tracker" in line:
        return "spawn tracker"
    if b"spawn_main" in line:
        return "cron"
    return "RQ scheduler"


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (the worker's cron, RQ's scheduler, spawn's tracker)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(p) for p in f.read().split()]
        except OSError:
            continue
    return found


@dataclass
class Series:
    """RSS samples (kB) of named processes at elapsed seconds."""

    names: list[str]
    times: list[float] = field(default_factory=list)
    samples: list[list[int]] = field(default_factory=list)

    def add(self, at: float, values: list[int]) -> None:
        self.times.append(at)
        self.samples.append(values)

    def column(self, index: int) -> list[int]:
        return [row[index] for row in self.samples]

    def ratio(self, index: int) -> float:
        """Mean of the last minute's samples over the first minute's."""
        first = [v for t, v in zip(self.times, self.column(index), strict=True) if t <= 60]
        end = self.times[-1]
        last = [v for t, v in zip(self.times, self.column(index), strict=True) if t > end - 60]
        return statistics.mean(last) / statistics.mean(first or self.column(index)[:1])

    def second_half(self, index: int) -> float:
        """MB gained from the middle sample to the last (growth left after warm-up)."""
        column = self.column(index)
        return (column[-1] - column[len(column) // 2]) / 1024

    def table(self) -> str:
        head = "| elapsed | " + " | ".join(f"{n} RSS MB" for n in self.names) + " |"
        rule = "|---|" + "---|" * len(self.names)
        lines = [head, rule]
        for at, row in zip(self.times, self.samples, strict=True):
            lines.append(f"| {at:.0f} s | " + " | ".join(f"{v / 1024:.1f}" for v in row) + " |")
        return "\n".join(lines)


def _events(seed: int = 41) -> Iterator[dict[str, Any]]:
    """The simulated shop's events, dossier after dossier, without end."""
    shop = OneStopShop(seed=seed)
    while True:
        dossier = shop.dossier()
        for posting in shop.story(dossier):
            yield posting.body
        shop.advance(1)


async def _load(base: str, rate: float, seconds: float, counts: dict[str, int]) -> None:
    """Post single events open-loop at ``rate`` a second for ``seconds``."""
    events = _events()
    started = time.perf_counter()

    async def post(session: aiohttp.ClientSession, body: dict[str, Any]) -> None:
        raw = json.dumps(body, ensure_ascii=False).encode()
        headers = signed_headers_v2(SOURCE, SECRET, "POST", "/v1/events", raw, time.time())
        headers["Content-Type"] = "application/json"
        try:
            async with session.post("/v1/events", data=raw, headers=headers) as response:
                await response.read()
                key = "accepted" if response.status < 300 else f"http {response.status}"
        except aiohttp.ClientError:
            key = "errors"
        counts[key] = counts.get(key, 0) + 1

    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(base) as session:
        sent = 0
        while (now := time.perf_counter() - started) < seconds:
            due = sent / rate
            if due > now:
                await asyncio.sleep(due - now)
            task = asyncio.create_task(post(session, next(events)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.gather(*tasks)


async def _sample(pids: list[int], series: Series, seconds: float, every: float) -> None:
    started = time.perf_counter()
    tick = 1
    while (due := tick * every) <= seconds + 0.5:
        await asyncio.sleep(max(0.0, due - (time.perf_counter() - started)))
        series.add(time.perf_counter() - started, [rss_kb(p) for p in pids])
        print(
            f"soak: {due:.0f} s "
            + " ".join(
                f"{n}={v // 1024}MB" for n, v in zip(series.names, series.samples[-1], strict=True)
            ),
            file=sys.stderr,
            flush=True,
        )
        tick += 1


def soak(
    database_url: str, redis_url: str, minutes: float, rate: float, every: float
) -> tuple[Series, dict[str, int], int]:
    """Run the soak; (RSS series, answers by kind, SMS at the fake)."""
    prefix = f"tthc-bench-soak-{os.getpid()}:"
    env, port, esms, fake, server = start_stack(database_url, redis_url, prefix)
    workers = [_start([sys.executable, "-m", "gateway", "worker"], env) for _ in range(2)]
    processes = [fake, server, *workers]
    try:
        wait_http(f"http://127.0.0.1:{esms}/_fake/mode", fake)
        _fake_control(esms, {"receipts": "missing"})  # the fake keeps no receipt timers
        wait_http(f"http://127.0.0.1:{port}/healthz", server)
        time.sleep(5)  # the workers are listening and have started their cron/scheduler
        pids, names = [server.pid], ["serve"]
        for number, worker in enumerate(workers, start=1):
            pids.append(worker.pid)
            names.append(f"worker {number}")
            for child in children(worker.pid):
                pids.append(child)
                names.append(f"worker {number} {role(child)}")
        series = Series(names)
        counts: dict[str, int] = {}
        seconds = minutes * 60

        async def both() -> None:
            await asyncio.gather(
                _load(f"http://127.0.0.1:{port}", rate, seconds, counts),
                _sample(pids, series, seconds, every),
            )

        asyncio.run(both())
        time.sleep(3)
        sent = len(_fake_messages(esms))
        return series, counts, sent
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        redis = Redis.from_url(redis_url)
        for name in (f"{prefix}urgent", f"{prefix}bulk", f"{prefix}chat"):
            Queue(name, connection=redis).delete(delete_jobs=True)
        keys = list(redis.scan_iter(f"{prefix}*", count=1000))
        keys += list(redis.scan_iter(f"rq:*{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            redis.delete(*keys[start : start + 500])


def run(
    workdir: Path,
    postgres: str | None,
    redis_url: str,
    minutes: float = 10,
    rate: float = 20,
    every: float = 30,
) -> list[tuple[str, str]]:
    """The soak's rows, for ``bench/run.py`` (the series goes to stderr as it is read)."""
    return measure(workdir, postgres, redis_url, minutes, rate, every)[0]


def measure(
    workdir: Path,
    postgres: str | None,
    redis_url: str,
    minutes: float = 10,
    rate: float = 20,
    every: float = 30,
) -> tuple[list[tuple[str, str]], Series]:
    """The soak on PostgreSQL (own schema) or, without a server, SQLite; rows and series."""
    schema = f"tthc_bench_soak_{os.getpid()}"
    if postgres is not None:
        url, name = f"{postgres}?schema={schema}", "PostgreSQL"
    else:
        url, name = f"sqlite:///{workdir / 'soak.sqlite3'}", "SQLite"
    try:
        series, counts, sent = soak(url, redis_url, minutes, rate, every)
    finally:
        if postgres is not None:
            drop_schema(postgres, schema)
    figures = "; ".join(
        f"{n} {series.column(i)[0] / 1024:.0f}→{series.column(i)[-1] / 1024:.0f} MB "
        f"(last/first minute {series.ratio(i):.2f}; second half {series.second_half(i):+.1f} MB)"
        for i, n in enumerate(series.names)
    )
    answers = ", ".join(f"{v:,} {k}" for k, v in sorted(counts.items()))
    rows = [
        (
            f"soak: `tthc serve` + 2 `tthc worker`, {name}, {rate:g} events/s for "
            f"{minutes:g} min ({answers}; {sent:,} SMS at the fake), RSS every {every:g} s",
            figures,
        )
    ]
    return rows, series


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=20, help="events a second")
    parser.add_argument("--every", type=float, default=30, help="seconds between samples")
    parser.add_argument(
        "--postgres", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    parser.add_argument("--sqlite", action="store_true", help="use SQLite even if PG answers")
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    args = parser.parse_args(argv)
    postgres = None if args.sqlite or not pg_ok(args.postgres) else args.postgres
    with tempfile.TemporaryDirectory(prefix="tthc-bench-soak-") as tmp:
        rows, series = measure(Path(tmp), postgres, args.redis, args.minutes, args.rate, args.every)
    print(series.table())
    print()
    for what, figure in rows:
        print(f"| {what} | {figure} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
