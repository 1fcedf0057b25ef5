"""`make bench`: throughput and latency as ratios of this machine's own limits, one run.

Every figure is measured in the same run as its baseline:

* a bare aiohttp JSON handler (requests/s with wrk, 64 connections) is the HTTP ceiling;
* signed single-event ingest through `tthc serve` (SQLite, then PostgreSQL) is reported
  in events/s, p50/p99 latency and as a ratio of that ceiling;
* batch ingest (500 events a request) in events/s;
* phone normalisation per number vs a bare ``phonenumbers.parse`` + ``is_valid_number``,
  and the ``tthc phones`` command end to end over a file;
* ``tthc audit rebuild`` (dossiers/s, peak RSS) and the monthly agency statistics over
  200,000 simulated dossiers, next to reading the same timelines without auditing and a
  bare ``count(*)`` (``bench/audit.py``);
* Zalo webhook acknowledgement p50/p99 at 500 events/s next to the bare handler paced the
  same way, and the p95 from a citizen's message to the OA reply at the fake Zalo next
  to a no-op RQ job's enqueue-to-done time (``bench/chat.py``).

wrk drives HTTP load from a second process; requests are signed beforehand and replayed
by a small Lua script, so the load generator does no Python work during the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import phonenumbers

from bench import audit, chat, delivery
from bench.common import wait_http
from gateway.domain.phones import normalize_phone
from gateway.http.signing import signed_headers_v2
from gateway.local.redis_server import PrivateRedis, free_port, reachable
from gateway.local.simulator import OneStopShop

HERE = Path(__file__).resolve().parent
SOURCE, SECRET = "bench", "bench-secret-0123456789abcdef01234567"
CONNECTIONS = 64


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(
    url: str, seconds: int, script: Path | None = None, env: dict[str, str] | None = None
) -> WrkResult:
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run(
        [*command, url],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(rps, p50, p99, int(bad.group(1)) if bad else 0)


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


def bare_handler(seconds: int) -> WrkResult:
    port = free_port()
    with serving(
        [sys.executable, str(HERE / "bare_server.py"), str(port)], {}, f"http://127.0.0.1:{port}/"
    ):
        return wrk(f"http://127.0.0.1:{port}/", seconds)


def _events(count: int) -> list[dict[str, Any]]:
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
    events: list[dict[str, Any]] = []
    width = 64
    for start in range(0, len(stories), width):
        window = stories[start : start + width]
        for step in range(max(len(s) for s in window)):
            events.extend(s[step] for s in window if step < len(s))
    return events[:count]


def write_requests(path: Path, events: list[dict[str, Any]]) -> None:
    now = time.time()
    with path.open("w", encoding="utf-8") as out:
        for body in events:
            raw = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
            headers = signed_headers_v2(SOURCE, SECRET, "POST", "/v1/events", raw.encode(), now)
            out.write(f"{headers['X-Timestamp']}\t{headers['X-Signature']}\t{raw}\n")


WORKERS = 1
BENCH_PREFIX = f"tthc-bench-ingest-{os.getpid()}:"


def gateway_env(database_url: str, redis_url: str, port: int) -> dict[str, str]:
    return {
        "HTTP_WORKERS": str(WORKERS),
        # Its own queues, deleted after the run: never the machine's default prefix.
        "REDIS_KEY_PREFIX": BENCH_PREFIX,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "EVENT_SOURCES": f"{SOURCE}:{SECRET}",
        "HTTP_PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }


@contextmanager
def gateway(database_url: str, redis_url: str) -> Iterator[str]:
    """A migrated `tthc serve` on a free port; yields its base URL."""
    port = free_port()
    env = gateway_env(database_url, redis_url, port)
    subprocess.run(
        [sys.executable, "-m", "gateway", "migrate"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    base = f"http://127.0.0.1:{port}"
    with serving([sys.executable, "-m", "gateway", "serve"], env, f"{base}/healthz"):
        yield base


def ingest(database_url: str, redis_url: str, seconds: int, workdir: Path) -> WrkResult:
    requests = workdir / "requests.tsv"
    write_requests(requests, _events(12000 * seconds))
    with gateway(database_url, redis_url) as base:
        return wrk(
            f"{base}/v1/events",
            seconds,
            HERE / "ingest.lua",
            {"BENCH_REQUESTS": str(requests), "BENCH_SOURCE": SOURCE},
        )


async def _post_batches(base: str, events: list[dict[str, Any]], size: int) -> float:
    bodies = []
    for start in range(0, len(events), size):
        raw = json.dumps({"events": events[start : start + size]}, ensure_ascii=False).encode()
        bodies.append(raw)
    async with aiohttp.ClientSession(base) as session:
        started = time.perf_counter()

        async def post(raw: bytes) -> None:
            headers = signed_headers_v2(
                SOURCE, SECRET, "POST", "/v1/events/batch", raw, time.time()
            )
            headers["Content-Type"] = "application/json"
            async with session.post("/v1/events/batch", data=raw, headers=headers) as response:
                answer = await response.json()
                assert response.status == 200 and answer["rejected"] == 0, answer

        # Two batches in flight, as a one-stop-shop back-filling with a little overlap would.
        for start in range(0, len(bodies), 2):
            await asyncio.gather(*(post(raw) for raw in bodies[start : start + 2]))
        return len(events) / (time.perf_counter() - started)


def batch_ingest(database_url: str, redis_url: str) -> float:
    events = _events(20000)
    with gateway(database_url, redis_url) as base:
        return asyncio.run(_post_batches(base, events, 500))


PHONES = [
    "0912 345 678",
    "+84 987.654.321",
    "SĐT: 0903-123-456",
    "01623456789",
    "912345678.0",
    "0251 3822 123",
    "0988123456 / 0912345678",
    "84367123456",
    "",
    "0912 345 xxx",
]


def phones_in_process(rounds: int = 3000) -> tuple[float, float]:
    """(normalize_phone numbers/s, bare phonenumbers parse+is_valid numbers/s)."""

    def ours() -> None:
        for raw in PHONES:
            normalize_phone(raw)

    def bare() -> None:
        for raw in PHONES:
            with suppress(phonenumbers.NumberParseException):
                phonenumbers.is_valid_number(phonenumbers.parse(raw, "VN"))

    n = len(PHONES) * rounds
    return n / min(timeit.repeat(ours, number=rounds, repeat=3)), n / min(
        timeit.repeat(bare, number=rounds, repeat=3)
    )


def phones_command(workdir: Path, count: int = 100_000) -> float:
    source = workdir / "phones.txt"
    source.write_text("\n".join(PHONES[i % len(PHONES)] for i in range(count)) + "\n")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "gateway", "phones", "--no-progress", str(source)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return count / (time.perf_counter() - started)


async def _pg_ok(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except Exception:
        return False
    await conn.close()
    return True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--output", type=Path, default=HERE / "latest.md")
    parser.add_argument(
        "--audit-dossiers", type=int, default=200_000, help="dossiers seeded for the audit bench"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2

    private = None
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    if not reachable(redis_url):
        private = PrivateRedis.start()
        redis_url = private.url
    rows: list[tuple[str, str]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="tthc-bench-") as tmp:
            workdir = Path(tmp)
            bare = bare_handler(args.seconds)
            rows.append(
                (
                    "bare aiohttp JSON handler (wrk, 64 connections)",
                    f"{bare.requests_per_second:,.0f} req/s, p50 {bare.p50_ms:.1f} ms, "
                    f"p99 {bare.p99_ms:.1f} ms",
                )
            )
            targets = [("SQLite", f"sqlite:///{workdir / 'bench.sqlite3'}")]
            schema = f"tthc_bench_{os.getpid()}"
            if asyncio.run(_pg_ok(args.postgres)):
                targets.append(("PostgreSQL", f"{args.postgres}?schema={schema}"))
            else:
                rows.append(("PostgreSQL", f"skipped: no server at {args.postgres}"))
            try:
                for name, url in targets:
                    result = ingest(url, redis_url, args.seconds, workdir)
                    rows.append(
                        (
                            f"signed single-event ingest, {name} (wrk, 64 connections, "
                            f"HTTP_WORKERS={WORKERS})",
                            f"{result.requests_per_second:,.0f} events/s = "
                            f"{result.requests_per_second / bare.requests_per_second:.2f} × bare, "
                            f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
                            f"non-2xx {result.non_2xx}",
                        )
                    )
                    fresh = url.replace("bench.sqlite3", "batch.sqlite3").replace(
                        schema, schema + "_batch"
                    )
                    rate = batch_ingest(fresh, redis_url)
                    rows.append(
                        (
                            f"batch ingest, {name} (500 events a request, 2 in flight)",
                            f"{rate:,.0f} events/s = "
                            f"{rate / bare.requests_per_second:.2f} × bare req/s",
                        )
                    )
            finally:
                if len(targets) > 1:
                    asyncio.run(_drop_schemas(args.postgres, [schema, schema + "_batch"]))
            noop = delivery.rq_noop_rate(redis_url)
            rows.append(("RQ no-op jobs through one SimpleWorker process", f"{noop:,.0f} jobs/s"))
            rate = delivery.notices_per_second(
                f"sqlite:///{workdir / 'deliver.sqlite3'}", redis_url
            )
            rows.append(
                (
                    "notices outbox → fake eSMS, one `tthc worker` process, SQLite",
                    f"{rate:,.0f} notices/s = {rate / noop:.2f} × RQ no-op jobs/s",
                )
            )
            p50, p95 = delivery.event_to_sms_latency(
                f"sqlite:///{workdir / 'latency.sqlite3'}", redis_url
            )
            rows.append(
                (
                    "event accepted → SMS at the fake, ~10 events/s",
                    f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms",
                )
            )
            (ack50, ack99), (bare50, bare99) = chat.webhook_ack(
                f"sqlite:///{workdir / 'webhook.sqlite3'}", redis_url, 500, args.seconds
            )
            rows.append(
                (
                    "Zalo webhook acknowledged, signed events paced at 500/s (`tthc serve`)",
                    f"p50 {ack50:.1f} ms, p99 {ack99:.1f} ms; bare handler paced the same: "
                    f"p50 {bare50:.1f} ms, p99 {bare99:.1f} ms (= {ack99 / bare99:.1f} × at p99)",
                )
            )
            reply95 = chat.message_to_reply(f"sqlite:///{workdir / 'chat.sqlite3'}", redis_url)
            noop95 = chat.rq_noop_latency(redis_url)
            rows.append(
                (
                    "citizen message → OA reply at the fake Zalo, 20 messages/s, one worker",
                    f"p95 {reply95:.0f} ms = {reply95 / noop95:.0f} × a no-op RQ job's "
                    f"enqueue → done p95 ({noop95:.1f} ms)",
                )
            )
            ours, bare_parse = phones_in_process()
            rows.append(
                (
                    "phone normaliser (in process, 10 messy inputs)",
                    f"{ours:,.0f} numbers/s = {ours / bare_parse:.2f} × bare "
                    f"phonenumbers.parse+is_valid ({bare_parse:,.0f}/s)",
                )
            )
            command = phones_command(workdir)
            rows.append(
                (
                    "`tthc phones` over a 100,000-line file (whole process)",
                    f"{command:,.0f} numbers/s = {command / bare_parse:.2f} × bare parse",
                )
            )
            rows += audit.run(
                workdir,
                args.postgres if len(targets) > 1 else None,
                redis_url,
                args.audit_dossiers,
            )
    finally:
        _forget_queues(redis_url)
        if private is not None:
            private.stop()

    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        f"Measured {stamp} on {os.cpu_count()} cores with `make bench` "
        f"({args.seconds} s per wrk run).",
        "",
        "| what | figure |",
        "|---|---|",
    ]
    lines += [f"| {what} | {figure} |" for what, figure in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.write_text(text, encoding="utf-8")
    _update_readme(text)
    return 0


def _forget_queues(redis_url: str) -> None:
    """Delete the jobs the ingest runs queued (no worker ran for them)."""
    from redis import Redis
    from rq import Queue

    redis = Redis.from_url(redis_url)
    for lane in ("urgent", "bulk"):
        Queue(f"{BENCH_PREFIX}{lane}", connection=redis).delete(delete_jobs=True)
    redis.close()


def _update_readme(text: str) -> None:
    """Put the figures between the README's bench markers."""
    readme = HERE.parent / "README.md"
    content = readme.read_text(encoding="utf-8")
    start, end = "<!-- bench:start -->\n", "<!-- bench:end -->"
    if start in content and end in content:
        head, rest = content.split(start, 1)
        readme.write_text(head + start + text + rest[rest.index(end) :], encoding="utf-8")


async def _drop_schemas(url: str, schemas: list[str]) -> None:
    conn = await asyncpg.connect(url)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


if __name__ == "__main__":
    raise SystemExit(main())
