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
import os
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import phonenumbers

from bench import audit, chat, delivery, ingest, scale, seed, soak
from bench.common import pg_ok
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


def distinct_phones(count: int) -> list[str]:
    """``count`` different raw values shaped like :data:`PHONES` (their last digits vary), so
    the normaliser's cache of recent inputs (8,192) never answers for it."""
    values = []
    for i in range(count):
        raw = PHONES[i % len(PHONES)]
        digits = [k for k, ch in enumerate(raw) if ch.isdigit()]
        if len(digits) >= 4:
            tail = f"{(i // len(PHONES)) % 10_000:04d}"
            chars = list(raw)
            for k, ch in zip(digits[-4:], tail, strict=True):
                chars[k] = ch
            raw = "".join(chars)
        values.append(raw)
    return values


def phones_in_process(count: int = 30_000) -> tuple[float, float, float]:
    """(normalize_phone numbers/s on distinct inputs, the same on the 10 inputs repeated
    (cache hits), bare phonenumbers parse+is_valid numbers/s on the distinct inputs)."""
    values = distinct_phones(count)

    def ours() -> None:
        for raw in values:
            normalize_phone(raw)

    def repeated() -> None:
        for _ in range(count // len(PHONES)):
            for raw in PHONES:
                normalize_phone(raw)

    def bare() -> None:
        for raw in values:
            with suppress(phonenumbers.NumberParseException):
                phonenumbers.is_valid_number(phonenumbers.parse(raw, "VN"))

    def rate(work: Callable[[], None]) -> float:
        return count / min(timeit.repeat(work, number=1, repeat=3))

    return rate(ours), rate(repeated), rate(bare)


def phones_command(workdir: Path, count: int = 100_000) -> float:
    source = workdir / "phones.txt"
    source.write_text("\n".join(distinct_phones(count)) + "\n")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "gateway", "phones", "--no-progress", str(source)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return count / (time.perf_counter() - started)


@dataclass(frozen=True)
class Context:
    workdir: Path
    postgres: str | None
    redis_url: str
    args: argparse.Namespace


def _ingest(c: Context) -> list[tuple[str, str]]:
    return ingest.run(c.workdir, c.postgres, c.redis_url, _ingest_settings(c.args))


def _delivery(c: Context) -> list[tuple[str, str]]:
    noop = delivery.rq_noop_rate(c.redis_url)
    rate = delivery.notices_per_second(f"sqlite:///{c.workdir / 'deliver.sqlite3'}", c.redis_url)
    p50, p95 = delivery.event_to_sms_latency(
        f"sqlite:///{c.workdir / 'latency.sqlite3'}", c.redis_url
    )
    return [
        ("RQ no-op jobs through one SimpleWorker process", f"{noop:,.0f} jobs/s"),
        (
            "notices outbox → fake eSMS, one `tthc worker` process, SQLite",
            f"{rate:,.0f} notices/s = {rate / noop:.2f} × RQ no-op jobs/s",
        ),
        (
            "event accepted → SMS at the fake, ~10 events/s",
            f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms",
        ),
    ]


def _chat(c: Context) -> list[tuple[str, str]]:
    (ack50, ack99), (bare50, bare99) = chat.webhook_ack(
        f"sqlite:///{c.workdir / 'webhook.sqlite3'}", c.redis_url, 500, c.args.seconds
    )
    reply95 = chat.message_to_reply(f"sqlite:///{c.workdir / 'chat.sqlite3'}", c.redis_url)
    noop95 = chat.rq_noop_latency(c.redis_url)
    return [
        (
            "Zalo webhook acknowledged, signed events paced at 500/s (`tthc serve`; "
            "medians of 3 interleaved rounds)",
            f"p50 {ack50:.1f} ms, p99 {ack99:.1f} ms; bare handler reading and parsing the same "
            f"bodies, paced the same: p50 {bare50:.1f} ms, p99 {bare99:.1f} ms "
            f"(= {ack99 / bare99:.1f} × at p99)",
        ),
        (
            "citizen message → OA reply at the fake Zalo, 20 messages/s, one worker",
            f"p95 {reply95:.0f} ms = {reply95 / noop95:.0f} × a no-op RQ job's "
            f"enqueue → done p95 ({noop95:.1f} ms)",
        ),
    ]


def _phones(c: Context) -> list[tuple[str, str]]:
    ours, cached, bare_parse = phones_in_process()
    command = phones_command(c.workdir)
    return [
        (
            "phone normaliser (in process, 30,000 distinct messy inputs)",
            f"{ours:,.0f} numbers/s = {ours / bare_parse:.2f} × bare "
            f"phonenumbers.parse+is_valid on the same inputs ({bare_parse:,.0f}/s); the same 10 "
            f"inputs repeated (answered by its cache): {cached:,.0f}/s",
        ),
        (
            "`tthc phones` over a 100,000-line file of distinct inputs (whole process)",
            f"{command:,.0f} numbers/s = {command / bare_parse:.2f} × bare parse",
        ),
    ]


def _audit(c: Context) -> list[tuple[str, str]]:
    return audit.run(c.workdir, c.postgres, c.redis_url, c.args.audit_dossiers)


def _scale(c: Context) -> list[tuple[str, str]]:
    return scale.run(c.postgres, c.redis_url)


def _seed(c: Context) -> list[tuple[str, str]]:
    return seed.run(c.workdir, c.postgres, c.redis_url, c.args.seed_dossiers)


def _soak(c: Context) -> list[tuple[str, str]]:
    return soak.run(c.workdir, c.postgres, c.redis_url, c.args.soak_minutes)


# name → (title, rows); run in this order.
SECTIONS: dict[str, tuple[str, Callable[[Context], list[tuple[str, str]]]]] = {
    "ingest": ("Ingest (`bench/ingest.py`)", _ingest),
    "delivery": ("Delivery (`bench/delivery.py`)", _delivery),
    "chat": ("Zalo webhook and chat (`bench/chat.py`)", _chat),
    "phones": ("Phone normaliser", _phones),
    "audit": ("Audit over simulated dossiers (`bench/audit.py`)", _audit),
    "scale": ("Worker processes and gateway processes (`bench/scale.py`)", _scale),
    "seed": ("A million dossiers (`tthc bench seed`, `bench/seed.py`)", _seed),
    "soak": ("Memory under a steady load (`bench/soak.py`)", _soak),
}
_START = "<!-- section:{} -->"
_END = "<!-- /section:{} -->"


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Every figure next to a baseline measured in the same run."
    )
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--output", type=Path, default=HERE / "latest.md")
    parser.add_argument(
        "--audit-dossiers", type=int, default=200_000, help="dossiers seeded for the audit bench"
    )
    parser.add_argument(
        "--seed-dossiers", type=int, default=1_000_000, help="dossiers seeded for the seed bench"
    )
    parser.add_argument("--soak-minutes", type=float, default=10, help="length of the soak")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved ingest rounds")
    parser.add_argument(
        "--quick", action="store_true", help="ingest: 3-s runs, 1 round, 4 windows (development)"
    )
    parser.add_argument(
        "--only",
        help="comma-separated sections to run (" + ", ".join(SECTIONS) + "); their blocks in "
        "--output are replaced, the others kept",
    )
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    args = parser.parse_args()
    names = list(SECTIONS) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(unknown)}")
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2

    private = None
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    if not reachable(redis_url):
        private = PrivateRedis.start()
        redis_url = private.url
    old = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    blocks = _blocks(old)
    try:
        postgres = args.postgres if pg_ok(args.postgres) else None
        for name in names:
            title, rows_of = SECTIONS[name]
            with tempfile.TemporaryDirectory(prefix="tthc-bench-") as tmp:
                loads = [os.getloadavg()[0]]
                started = time.monotonic()
                rows = rows_of(Context(Path(tmp), postgres, redis_url, args))
                loads.append(os.getloadavg()[0])
            if postgres is None:
                rows.append(("PostgreSQL", f"skipped: no server at {args.postgres}"))
            blocks[name] = _block(name, title, rows, time.monotonic() - started, loads, args)
            text = _document(blocks)
            args.output.write_text(text, encoding="utf-8")  # each section as it ends
            print(blocks[name], flush=True)
    finally:
        if private is not None:
            private.stop()
    if not args.no_readme:
        _update_readme(_document(blocks))
    return 0


def _block(
    name: str,
    title: str,
    rows: list[tuple[str, str]],
    seconds: float,
    loads: list[float],
    args: argparse.Namespace,
) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = "make bench" if not args.only else f"python -m bench.run --only {args.only}"
    lines = [
        _START.format(name),
        f"**{title}**: measured {stamp} with `{command}` on {os.cpu_count()} cores "
        f"({seconds / 60:.0f} min; 1-minute load average {min(loads):.1f}–{max(loads):.1f} "
        "at its start and end).",
        "",
        "| what | figure |",
        "|---|---|",
        *(f"| {what} | {figure} |" for what, figure in rows),
        _END.format(name),
    ]
    return "\n".join(lines)


def _blocks(text: str) -> dict[str, str]:
    """The section blocks of an earlier latest.md, by name."""
    found = {}
    for name in SECTIONS:
        start, end = _START.format(name), _END.format(name)
        if start in text and end in text:
            found[name] = start + text.split(start, 1)[1].split(end, 1)[0] + end
    return found


def _document(blocks: dict[str, str]) -> str:
    return "\n\n".join(blocks[name] for name in SECTIONS if name in blocks) + "\n"


def _ingest_settings(args: argparse.Namespace) -> ingest.Settings:
    if args.quick:
        return ingest.Settings(seconds=3, rounds=1, windows=4, window_seconds=3)
    return ingest.Settings(seconds=args.seconds, rounds=args.rounds)


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
