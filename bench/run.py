"""`make bench`: throughput and latency as ratios of this machine's own limits, one run.

Every figure is measured in the same run as its baseline:

* ingest (``bench/ingest.py``): signed single events through `tthc serve` on SQLite and
  PostgreSQL (1 and 2 HTTP processes), at saturation and paced at 300/s, in interleaved
  rounds next to a bare aiohttp handler that reads and parses the same JSON bodies
  under the same wrk load; the rate over consecutive windows on one growing database;
  batch ingest (500 events a request) in events/s;
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
import os
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from contextlib import suppress
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import phonenumbers

from bench import audit, chat, delivery, ingest
from gateway.domain.phones import normalize_phone
from gateway.local.redis_server import PrivateRedis, reachable

HERE = Path(__file__).resolve().parent


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
    parser.add_argument("--rounds", type=int, default=3, help="interleaved ingest rounds")
    parser.add_argument(
        "--quick", action="store_true", help="ingest: 3-s runs, 1 round, 4 windows (development)"
    )
    parser.add_argument(
        "--only",
        choices=["ingest"],
        help="run only these rows and put them into --output in place of the old ones",
    )
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2

    if args.only == "ingest":
        return _ingest_only(args)
    private = None
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    if not reachable(redis_url):
        private = PrivateRedis.start()
        redis_url = private.url
    rows: list[tuple[str, str]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="tthc-bench-") as tmp:
            workdir = Path(tmp)
            postgres = args.postgres if asyncio.run(_pg_ok(args.postgres)) else None
            if postgres is None:
                rows.append(("PostgreSQL", f"skipped: no server at {args.postgres}"))
            rows += ingest.run(workdir, postgres, redis_url, _ingest_settings(args))
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
                postgres,
                redis_url,
                args.audit_dossiers,
            )
    finally:
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
    if not args.no_readme:
        _update_readme(text)
    return 0


def _ingest_settings(args: argparse.Namespace) -> ingest.Settings:
    if args.quick:
        return ingest.Settings(seconds=3, rounds=1, windows=4, window_seconds=3)
    return ingest.Settings(seconds=args.seconds, rounds=args.rounds)


def _ingest_only(args: argparse.Namespace) -> int:
    """``--only ingest``: the ingest rows, put into ``--output`` in place of the old ones."""
    private = None
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    if not reachable(redis_url):
        private = PrivateRedis.start()
        redis_url = private.url
    try:
        postgres = args.postgres if asyncio.run(_pg_ok(args.postgres)) else None
        with tempfile.TemporaryDirectory(prefix="tthc-bench-") as tmp:
            rows = ingest.run(Path(tmp), postgres, redis_url, _ingest_settings(args))
    finally:
        if private is not None:
            private.stop()
    settings = _ingest_settings(args)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    note = (
        f"The ingest rows: measured {stamp} on the same machine with "
        f"`python -m bench.run --only ingest` ({settings.rounds} interleaved rounds of "
        f"{settings.seconds} s wrk runs; 1-minute load average "
        f"{min(ingest.LOAD_AVERAGES):.1f}–{max(ingest.LOAD_AVERAGES):.1f} on "
        f"{os.cpu_count()} cores: other processes were loading the machine)."
    )
    old = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    text = _with_ingest_rows(old, rows, note)
    print(text)
    args.output.write_text(text, encoding="utf-8")
    if not args.no_readme:
        _update_readme(text)
    return 0


def _with_ingest_rows(old: str, rows: list[tuple[str, str]], note: str) -> str:
    """``old`` (a latest.md) with its ingest rows and note replaced by ``rows`` and ``note``."""
    lines = old.splitlines()
    table = [i for i, line in enumerate(lines) if line.startswith("| ")]
    if not table:
        head = ["| what | figure |", "|---|---|"]
        body = [f"| {what} | {figure} |" for what, figure in rows]
        return "\n".join([*head, *body, "", note]) + "\n"
    first_row = table[0] + 2  # after the header and the |---| line
    kept = [
        line
        for line in lines[first_row : table[-1] + 1]
        if not line.startswith(ingest.ROW_PREFIXES) and not line.startswith("| PostgreSQL |")
    ]
    new = [f"| {what} | {figure} |" for what, figure in rows]
    after = [line for line in lines[table[-1] + 1 :] if not line.startswith("The ingest rows:")]
    while after and not after[-1]:
        after.pop()
    out = [*lines[:first_row], *new, *kept, *after, "", note]
    return "\n".join(out) + "\n"


def _update_readme(text: str) -> None:
    """Put the figures between the README's bench markers."""
    readme = HERE.parent / "README.md"
    content = readme.read_text(encoding="utf-8")
    start, end = "<!-- bench:start -->\n", "<!-- bench:end -->"
    if start in content and end in content:
        head, rest = content.split(start, 1)
        readme.write_text(head + start + text + rest[rest.index(end) :], encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
