"""Many processes: notices/s with 1, 2 and 4 ``tthc worker`` processes, and a small grid of
gateway processes × worker processes under ingest load, on PostgreSQL.

* Worker scaling. For each count N (interleaved rounds: 1, 2, 4, 4, 2, 1, …) a fresh
  PostgreSQL schema gets its outbox filled through ``tthc serve`` (the simulated shop's
  receipts, one SMS notice each, batch ingest); the server is stopped and its delivery
  jobs are parked (taken off the RQ lists). N ``tthc worker --no-cron`` processes start;
  once all listen the jobs are put back at once, and the time until every job has
  finished gives notices/s (every SMS is checked at the fake eSMS), start-up excluded.
  The baseline is RQ's own, measured the same way in the same rounds: no-op jobs/s
  through N ``SimpleWorker`` processes sharing one queue. Medians of the rounds, and
  the median of each round's own ratios (the machine's load moves between rounds).
* Grid. ``HTTP_WORKERS`` 1 and 2 × workers 1 and 2 (running, no cron): batch ingest for
  a fixed time; events/s accepted and notices/s at the fake over the same window.
* What saturates first: CPU seconds over wall seconds (cores used) of each process kind
  (the gateway, the workers, the fake vendor, this bench process posting the load,
  every ``postgres`` and ``redis-server`` process on the machine — other users' included)
  read from ``/proc``, next to the whole machine's busy cores from ``/proc/stat`` (on a
  shared machine what is not ours shows as "other").

``python -m bench.scale [--notices 8000] [--rounds 3] [--grid-seconds 10]`` (``--rounds 0``
or ``--grid-seconds 0`` skips a part); :func:`run` gives the rows for ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from redis import Redis
from rq import Queue

from bench.common import drop_schema, pg_ok, wait_http
from bench.delivery import (
    SECRET,
    SOURCE,
    _env,
    _fake_control,
    _fake_messages,
    _post_all,
    _receipts_only,
    _start,
    noop,
)
from gateway.http.signing import signed_headers_v2
from gateway.local.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
TICKS = os.sysconf("SC_CLK_TCK")


# --- CPU accounting from /proc ------------------------------------------------------------


def _cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` (and of its children it waited for), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(v) for v in fields[11:15])


def _pids_named(*names: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() in names:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _machine_busy() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Cores:
    """Cores used by each kind of process over a window."""

    used: dict[str, float]
    machine: float  # busy cores, whole machine

    def text(self) -> str:
        ours = sum(self.used.values())
        parts = [f"{k} {v:.2f}" for k, v in sorted(self.used.items(), key=lambda kv: -kv[1])]
        other = max(0.0, self.machine - ours)
        return f"cores used: {', '.join(parts)}, other {other:.2f} (machine {self.machine:.2f})"


class CpuWindow:
    """CPU ticks of named process groups between :meth:`start` and :meth:`stop`.

    A group is a function returning its current pids, asked again at the end so that
    processes which started meanwhile count; ticks of processes that exit meanwhile are
    kept from the last :meth:`poll`.
    """

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.kind: dict[int, str] = {}

    def poll(self) -> None:
        for name, pids in self.groups.items():
            for pid in pids():
                ticks = _cpu_ticks(pid)
                if ticks or pid not in self.last:
                    self.kind[pid] = name
                    self.first.setdefault(pid, ticks)
                    self.last[pid] = ticks

    def start(self) -> None:
        self.poll()
        self.started = time.perf_counter()
        self.machine_start = _machine_busy()

    def stop(self) -> Cores:
        self.poll()
        wall = time.perf_counter() - self.started
        busy, total = _machine_busy()
        used: dict[str, float] = {}
        for pid, kind in self.kind.items():
            used[kind] = used.get(kind, 0.0) + (self.last[pid] - self.first[pid]) / TICKS / wall
        cpus = os.cpu_count() or 1
        machine = (busy - self.machine_start[0]) / max(1, total - self.machine_start[1]) * cpus
        return Cores(used, machine)


def _poller(window: CpuWindow, stop: list[bool]) -> None:
    while not stop[0]:
        window.poll()
        time.sleep(0.25)


# --- parked queues: workers start first, then the jobs are released at once -------------


def _park(redis: Redis, names: list[str]) -> dict[str, list[bytes]]:
    """Take the job ids off the queues ``names`` (the jobs stay), to release later."""
    parked = {}
    for name in names:
        key = f"rq:queue:{name}"
        with redis.pipeline() as pipe:
            pipe.lrange(key, 0, -1)
            pipe.delete(key)
            ids, _ = pipe.execute()
        parked[key] = ids
    return parked


def _release(redis: Redis, parked: dict[str, list[bytes]]) -> None:
    with redis.pipeline() as pipe:
        for key, ids in parked.items():
            if ids:
                pipe.rpush(key, *ids)
        pipe.execute()


def _wait_workers(redis: Redis, queue: str, count: int, timeout: float = 180) -> None:
    """Until ``count`` RQ workers listen on ``queue`` (their start-up is not measured)."""
    from rq import Worker

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(Worker.all(connection=redis, queue=Queue(queue, connection=redis))) >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{count} workers did not start")


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- RQ's baseline ------------------------------------------------------------------------


def rq_noop_rate(redis_url: str, workers: int, jobs: int = 300) -> float:
    """No-op jobs/s through ``workers`` SimpleWorker processes sharing one queue, from the
    moment the jobs are released to listening workers until the last has finished."""
    name = f"tthc-bench-scale-noop-{os.getpid()}-{time.monotonic_ns()}"
    redis = Redis.from_url(redis_url)
    queue = Queue(name, connection=redis)
    with redis.pipeline() as pipe:
        for _ in range(jobs):
            queue.enqueue(noop, pipeline=pipe)
        pipe.execute()
    parked = _park(redis, [name])
    script = (
        "from redis import Redis; from rq import Queue, SimpleWorker;"
        f"r = Redis.from_url({redis_url!r});"
        f"SimpleWorker([Queue({name!r}, connection=r)], connection=r).work("
        "logging_level='WARNING')"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    try:
        _wait_workers(redis, name, workers)
        registry = queue.finished_job_registry
        started = time.perf_counter()
        _release(redis, parked)
        while registry.count < jobs:
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        _stop_all(processes)
        queue.delete(delete_jobs=True)
        _forget(redis, name, [i for ids in parked.values() for i in ids])
    return jobs / elapsed


def _forget(redis: Redis, name: str, job_ids: list[bytes]) -> None:
    """Delete RQ's keys of the queue ``name`` (registries) and of the jobs ``job_ids``."""
    keys = list(redis.scan_iter(f"rq:*{name}*", count=1000))
    keys += [b"rq:job:" + i for i in job_ids]
    for start in range(0, len(keys), 500):
        redis.delete(*keys[start : start + 500])


# --- one deployment -----------------------------------------------------------------------


class Deployment:
    """A fresh schema, the fake eSMS, and whatever gateway processes a figure needs."""

    def __init__(self, postgres: str, redis_url: str, tag: str) -> None:
        self.postgres = postgres
        self.redis_url = redis_url
        self.schema = f"tthc_bench_scale_{os.getpid()}_{tag}"
        self.prefix = f"tthc-bench-scale-{os.getpid()}-{tag}:"
        self.port, self.esms = free_port(), free_port()
        url = f"{postgres}?schema={self.schema}"
        self.env = _env(url, redis_url, self.prefix, self.port, self.esms)
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Deployment:
        subprocess.run(
            [sys.executable, "-m", "gateway", "migrate"],
            env=self.env,
            check=True,
            capture_output=True,
        )
        self.fake = self.start(
            [
                sys.executable,
                "-m",
                "providers.fakes",
                "--esms-port",
                str(self.esms),
                "--speedsms-port",
                "0",
            ]
        )
        wait_http(f"http://127.0.0.1:{self.esms}/_fake/mode", self.fake)
        _fake_control(self.esms, {"receipts": "missing"})
        return self

    def start(self, args: list[str], **extra: str) -> subprocess.Popen[bytes]:
        process = _start(args, {**self.env, **extra})
        self.processes.append(process)
        return process

    def serve(self, http_workers: int = 1) -> subprocess.Popen[bytes]:
        server = self.start(
            [sys.executable, "-m", "gateway", "serve"], HTTP_WORKERS=str(http_workers)
        )
        wait_http(f"http://127.0.0.1:{self.port}/healthz", server)
        return server

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def sent(self) -> int:
        return len(_fake_messages(self.esms))

    def __exit__(self, *exc: object) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                self.stop(process)
        redis = Redis.from_url(self.redis_url)
        for name in ("urgent", "bulk", "chat"):
            Queue(f"{self.prefix}{name}", connection=redis).delete(delete_jobs=True)
        keys = list(redis.scan_iter(f"{self.prefix}*", count=1000))
        keys += list(redis.scan_iter(f"rq:*{self.prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            redis.delete(*keys[start : start + 500])
        drop_schema(self.postgres, self.schema)


def _descendants(root: int) -> list[int]:
    """``root`` and every process under it."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo += [int(p) for p in f.read().split()]
        except OSError:
            continue
    return found


def worker_rate(postgres: str, redis_url: str, workers: int, notices: int, tag: str) -> Any:
    """(notices/s through ``workers`` listening workers, cores used meanwhile).

    The outbox is filled through the gateway, whose jobs are parked; the workers start,
    and once all listen the jobs are released: the time until the last SMS reaches the
    fake is measured, not the workers' start-up.
    """
    with Deployment(postgres, redis_url, tag) as d:
        server = d.serve()
        asyncio.run(_post_all(f"http://127.0.0.1:{d.port}", _receipts_only(notices)))
        time.sleep(1.0)  # the gateway's enqueues are in flight
        d.stop(server)
        redis = Redis.from_url(redis_url)
        names = [f"{d.prefix}urgent", f"{d.prefix}bulk"]
        parked = _park(redis, names)
        procs = [
            d.start([sys.executable, "-m", "gateway", "worker", "--no-cron"])
            for _ in range(workers)
        ]
        _wait_workers(redis, names[0], workers)
        window = CpuWindow(_groups(procs, d.fake))
        window.start()
        flag = [False]
        thread = threading.Thread(target=_poller, args=(window, flag), daemon=True)
        thread.start()
        jobs = sum(len(ids) for ids in parked.values())
        registries = [Queue(n, connection=redis).finished_job_registry for n in names]
        started = time.perf_counter()
        _release(redis, parked)
        deadline = time.monotonic() + 600
        while sum(r.count for r in registries) < jobs and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        sent = d.sent()
        flag[0] = True
        thread.join()
        cores = window.stop()
        if sent != notices:
            raise RuntimeError(f"{sent} SMS at the fake for {notices} notices")
        return notices / elapsed, cores


def _groups(
    workers: list[subprocess.Popen[bytes]],
    fake: subprocess.Popen[bytes],
    server: subprocess.Popen[bytes] | None = None,
) -> dict[str, Callable[[], list[int]]]:
    groups: dict[str, Callable[[], list[int]]] = {
        "workers": lambda: [p for w in workers for p in _descendants(w.pid)],
        "fake eSMS": lambda: [fake.pid],
        "postgres": lambda: _pids_named("postgres"),
        "redis": lambda: _pids_named("redis-server"),
        "bench client": lambda: [os.getpid()],
    }
    if server is not None:
        groups["gateway"] = lambda: _descendants(server.pid)
    return groups


async def _ingest_for(base: str, bodies: list[dict[str, Any]], seconds: float) -> int:
    """Batches of 500 events, 2 in flight, until ``seconds`` pass; events accepted."""
    accepted = 0
    stop_at = time.perf_counter() + seconds
    batches = [bodies[i : i + 500] for i in range(0, len(bodies), 500)]

    async def lane(session: aiohttp.ClientSession, mine: list[list[dict[str, Any]]]) -> None:
        nonlocal accepted
        for batch in mine:
            if time.perf_counter() >= stop_at:
                return
            raw = json.dumps({"events": batch}, ensure_ascii=False).encode()
            headers = signed_headers_v2(
                SOURCE, SECRET, "POST", "/v1/events/batch", raw, time.time()
            )
            headers["Content-Type"] = "application/json"
            async with session.post("/v1/events/batch", data=raw, headers=headers) as response:
                answer = await response.json()
                if response.status == 200:
                    accepted += len(batch) - int(answer.get("rejected", 0))

    async with aiohttp.ClientSession(base) as session:
        await asyncio.gather(lane(session, batches[0::2]), lane(session, batches[1::2]))
    return accepted


def grid_cell(
    postgres: str, redis_url: str, http_workers: int, workers: int, seconds: float, tag: str
) -> tuple[float, float, Cores]:
    """(events/s accepted, notices/s at the fake, cores) under batch ingest for ``seconds``."""
    with Deployment(postgres, redis_url, tag) as d:
        server = d.serve(http_workers)
        procs = [
            d.start([sys.executable, "-m", "gateway", "worker", "--no-cron"])
            for _ in range(workers)
        ]
        time.sleep(3)  # the workers are listening
        bodies = _receipts_only(int(seconds * 6000))
        window = CpuWindow(_groups(procs, d.fake, server))
        window.start()
        before = d.sent()
        started = time.perf_counter()
        accepted = asyncio.run(_ingest_for(f"http://127.0.0.1:{d.port}", bodies, seconds))
        elapsed = time.perf_counter() - started
        sent = d.sent() - before
        cores = window.stop()
        return accepted / elapsed, sent / elapsed, cores


def _say(text: str) -> None:
    print(f"scale: {text}", file=sys.stderr, flush=True)


def scaling(
    postgres: str, redis_url: str, notices: int, rounds: int, counts: tuple[int, ...] = (1, 2, 4)
) -> list[tuple[str, str]]:
    """The worker-scaling rows (interleaved rounds, medians)."""
    rates: dict[int, list[float]] = {n: [] for n in counts}
    noops: dict[int, list[float]] = {n: [] for n in counts}
    cores: dict[int, list[Cores]] = {n: [] for n in counts}
    for r in range(rounds):
        order = counts if r % 2 == 0 else tuple(reversed(counts))
        for n in order:
            noops[n].append(rq_noop_rate(redis_url, n))
            rate, used = worker_rate(postgres, redis_url, n, notices, f"w{n}r{r}")
            rates[n].append(rate)
            cores[n].append(used)
            _say(f"round {r + 1}, {n} workers: {rate:,.0f} notices/s, {noops[n][-1]:,.0f} no-op/s")
    one = statistics.median(rates[counts[0]])
    one_noop = statistics.median(noops[counts[0]])
    rows = []
    for n in counts:
        rate, noop_rate = statistics.median(rates[n]), statistics.median(noops[n])
        # Each round's own ratio, then their median: robust to the machine's load moving.
        paired = statistics.median(a / b for a, b in zip(rates[n], noops[n], strict=True))
        to_one = statistics.median(a / b for a, b in zip(rates[n], rates[counts[0]], strict=True))
        last = cores[n][len(cores[n]) // 2]
        rows.append(
            (
                f"notices outbox → fake eSMS, {n} `tthc worker` process{'es' * (n > 1)}, "
                f"PostgreSQL ({notices:,} notices, median of {rounds})",
                f"{rate:,.0f} notices/s = {rate / one:.2f} × 1 worker (same-round median "
                f"{to_one:.2f}) = {rate / noop_rate:.2f} × RQ no-op jobs/s with {n} worker"
                f"{'s' * (n > 1)} ({noop_rate:,.0f}/s = {noop_rate / one_noop:.2f} × 1; "
                f"same-round median {paired:.2f}); {last.text()}",
            )
        )
    return rows


def grid(postgres: str, redis_url: str, seconds: float) -> list[tuple[str, str]]:
    rows = []
    for http_workers in (1, 2):
        for workers in (1, 2):
            ingest, sent, used = grid_cell(
                postgres, redis_url, http_workers, workers, seconds, f"g{http_workers}{workers}"
            )
            _say(f"HTTP_WORKERS={http_workers} × {workers} workers: {ingest:,.0f} events/s")
            rows.append(
                (
                    f"batch ingest + delivery, PostgreSQL, HTTP_WORKERS={http_workers} × "
                    f"{workers} `tthc worker` ({seconds:g} s)",
                    f"{ingest:,.0f} events/s accepted, {sent:,.0f} notices/s at the fake; "
                    f"{used.text()}",
                )
            )
    return rows


def run(
    postgres: str | None,
    redis_url: str,
    notices: int = 8000,
    rounds: int = 3,
    grid_seconds: float = 10,
) -> list[tuple[str, str]]:
    """Scaling rows and grid rows (PostgreSQL only)."""
    if postgres is None:
        return [("worker scaling (PostgreSQL)", "skipped: no PostgreSQL server")]
    rows = scaling(postgres, redis_url, notices, rounds)
    if grid_seconds > 0:
        rows += grid(postgres, redis_url, grid_seconds)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--notices", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=3, help="0 skips the worker scaling")
    parser.add_argument("--grid-seconds", type=float, default=10, help="0 skips the grid")
    parser.add_argument(
        "--postgres", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    args = parser.parse_args(argv)
    postgres = args.postgres if pg_ok(args.postgres) else None
    if postgres is None:
        print("| worker scaling (PostgreSQL) | skipped: no PostgreSQL server |")
        return 0
    if args.rounds > 0:
        for what, figure in scaling(postgres, args.redis, args.notices, args.rounds):
            print(f"| {what} | {figure} |", flush=True)
    if args.grid_seconds > 0:
        for what, figure in grid(postgres, args.redis, args.grid_seconds):
            print(f"| {what} | {figure} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
