"""The chaos run: a mixed load while processes, Redis and PostgreSQL die and come back.

``python -m bench.chaos --events 10000`` (``make chaos``) starts, all private to the run:
a PostgreSQL cluster (``initdb`` in a temporary directory, a free port), a
``redis-server`` with an append-only file, ``tthc serve``, two ``tthc worker`` processes
(the first runs the cron) and, inside this process, the fakes of eSMS, SpeedSMS and
Zalo. A simulated one-stop-shop then posts signed events (at least ``--events``), and
simulated citizens write to the OA, while faults are injected: SIGKILL of the gateway or
a worker (restarted after a moment), a crash and restart of Redis and of PostgreSQL,
outages of the SMS vendors (HTTP 500) and eSMS swallowing answers (the ``MaybeSent``
path). Faults are spread over the run by progress, in an order drawn from ``--seed``.

The one-stop-shop behaves like a real integrator: an event without a 2xx answer
(connection refused, a timeout, a 5xx) is posted again with the same id until it is
answered. At the end the faults stop, every process is up, and the run waits (at most
``--drain-seconds``) for the outbox to empty and the citizens to be answered. Then:

- **events**: every accepted id (a 2xx answer) must be on its dossier's timeline;
- **notices**: read from the database, each matched with what the fakes *received*
  (eSMS by ``RequestId``, ZNS by ``tracking_id``, SpeedSMS by the message id recorded on
  the attempt, else by phone and text): *delivered* = one message at a vendor, *failed*
  = ``failed``/``no_recipient`` with a reason, *unknown* = may have been sent, left for
  a person (the design's answer to a SpeedSMS call cut off mid-way), *lost* = anything
  else, *duplicated* = more than one message for one notice (or a message no notice
  accounts for);
- **chat**: every message the webhook acknowledged gets exactly one OA reply. Citizens
  alternate a dossier code (the OA's answer names it) and "menu", so replies are matched
  to the message they answer. A reply whose worker died around the OA call is settled
  by the next drain, which asks Zalo (here the fake) for the user's recent OA messages:
  found, it is recorded sent; not there, it is sent then. Only a reply Zalo could not be
  asked about, or whose send Zalo answered too late, stays ``unknown`` and is never sent
  again: if the fake Zalo has it, the message counts as answered once; if not, as
  *unanswered (unknown, for a person)*, printed apart from plain unanswered and failing
  the run like them.

It prints those counts and the faults with their times; the exit status is 1 when
anything was lost, duplicated or left unanswered (2 when the run could not start).

Redis runs as deployed (``docker/compose.yml``): ``appendonly yes``, ``appendfsync
everysec``, and is killed with SIGKILL. Notices do not depend on it at all: the database
is the truth and the relay re-enqueues whatever Redis lost. A citizen's message, though,
lives only in Redis between the webhook's ``200`` and the drain job. Redis writes the
append-only file to the kernel before it answers, so a killed ``redis-server`` loses none
of them with either setting; ``everysec`` risks the last second only when the machine
itself stops (power, kernel), which one machine cannot simulate. ``--redis-fsync
always`` runs the same with an fsync per write.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from aiohttp import web

from gateway.http.signing import signed_headers_v2
from gateway.local.redis_server import free_port, reachable
from gateway.local.simulator import TZ, OneStopShop
from gateway.storage import migrate
from gateway.storage.db import create_engine
from gateway.storage.tables import chat_messages, deliveries, events, notices
from providers.fakes import FakeSmsCentre, create_esms_app, create_speedsms_app
from providers.fakes.zalo import FakeZalo
from providers.fakes.zalo import create_app as create_zalo_app
from providers.fakes.zalo.state import OA_SERVER

SOURCE = "chaos-onestop"
PREFIX = "chaos:"
# Notice states that mean "still on its way" (a sent SMS waits only for its receipt).
MOVING = ("created", "queued", "sending")
FAILED = ("failed", "no_recipient")
# Seconds without any change after which a missing chat answer is not coming any more.
CHAT_PATIENCE = 90
FAULT_KINDS = (
    "kill-serve",
    "kill-worker",
    "restart-redis",
    "restart-postgres",
    "esms-outage",
    "speedsms-outage",
    "esms-timeouts",
)
_KEPT_ENV = frozenset({"PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV"})


# --- the private services ---------------------------------------------------------------


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the ``postgres`` user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


class PrivatePostgres:
    """A throw-away cluster (trust auth, loopback, a free port) that can be crashed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "pg"
        self.port = free_port()
        self.log = root / "postgres.log"
        binaries = [shutil.which(name) for name in ("initdb", "pg_ctl")]
        if None in binaries:
            raise RuntimeError("initdb and pg_ctl are needed (PostgreSQL's server binaries)")
        self.initdb, self.pg_ctl = (str(b) for b in binaries)

    @property
    def server_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/chaos"

    def _run(self, *argv: str) -> None:
        subprocess.run(
            _as_postgres(list(argv)),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
        )

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._run(self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")
        self.start()
        asyncio.run(_create_database(self.server_url, "chaos"))

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"
        )

    def crash(self) -> None:
        """Stop without a checkpoint, as a power cut would: the restart replays the WAL."""
        self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._run(self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")


async def _create_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


class PersistentRedis:
    """A ``redis-server`` with an append-only file, killed and started again in place."""

    def __init__(self, root: Path, fsync: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is needed (Debian: apt-get install redis-server)")
        self.binary = binary
        self.dir = root / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.fsync = fsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "yes", "--appendfsync", self.fsync, "--dir", str(self.dir)]
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while not reachable(self.url, 0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Child:
    """A ``tthc`` process in its own session, so SIGKILL reaches its children too."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    cwd: Path
    process: subprocess.Popen[bytes] | None = None
    down_on_purpose: bool = False
    starts: int = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", *self.argv],
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        self.starts += 1
        self.down_on_purpose = False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (the cron child, HTTP children) at once."""
        self.down_on_purpose = True
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        self.down_on_purpose = True
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


# --- the run ----------------------------------------------------------------------------


@dataclass
class Options:
    events: int = 10_000
    chat_users: int = 100
    chat_messages: int = 10
    concurrency: int = 24
    seed: int = 1
    kills: int = 6
    redis_restarts: int = 2
    postgres_restarts: int = 2
    outages: int = 3
    drain_seconds: float = 900.0
    think_seconds: float = 1.0
    rate: float = 0.0  # events per second; 0: as fast as the gateway takes them
    chat_first: bool = False  # faults only once the citizens are done
    redis_fsync: str = "everysec"
    keep: bool = False
    json_path: Path | None = None


@dataclass
class Fault:
    at: float
    what: str


@dataclass
class Tally:
    """What the clients saw: accepted event ids, acknowledged chat messages, faults."""

    started: float = field(default_factory=time.monotonic)
    posted: int = 0  # distinct event ids the one-stop-shop tried to post
    accepted: dict[str, str] = field(default_factory=dict)  # event id -> dossier code
    refused: dict[str, int] = field(default_factory=dict)  # event id -> 4xx status
    gave_up: set[str] = field(default_factory=set)
    retries: int = 0
    chat_sent: int = 0
    chat_accepted: list[tuple[str, str]] = field(default_factory=list)  # (user, text)
    chat_dropped: int = 0
    faults: list[Fault] = field(default_factory=list)
    exited: list[str] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started

    def note(self, what: str) -> None:
        self.faults.append(Fault(self.now(), what))


class Chaos:
    """Everything the run starts, the load, the faults and the final count."""

    def __init__(self, options: Options, out: TextIO) -> None:
        self.o = options
        self.out = out
        self.rng = random.Random(options.seed)
        self.root = Path(tempfile.mkdtemp(prefix="tthc-chaos-"))
        self.tally = Tally()
        self.postgres = PrivatePostgres(self.root)
        self.redis = PersistentRedis(self.root, options.redis_fsync)
        self.zalo = FakeZalo(receipt_delay=0.2, daily_quota=10**7)
        self.esms = FakeSmsCentre(receipt_delay=0.5, timeout_delay=3.0)
        self.speedsms = FakeSmsCentre(receipt_delay=0.5)
        self.runners: list[web.AppRunner] = []
        self.children: list[Child] = []
        self.secret = secrets.token_urlsafe(32)
        self.http_port = free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.env: dict[str, str] = {}
        self.progress = 0.0  # share of the events posted so far
        self.next_slot = 0.0  # when the next event may go (--rate)

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    # -- start and stop

    async def start(self) -> None:
        await asyncio.to_thread(self.postgres.init)
        await asyncio.to_thread(self.redis.start)
        ports = {name: free_port() for name in ("esms", "speedsms", "zalo")}
        fakes = f"http://127.0.0.1:{ports['zalo']}"
        sms_secret = secrets.token_urlsafe(32)
        self.env = {
            # Only what a process needs: none of the operator's gateway settings leaks in
            # (and the children run in the run's directory, away from any .env file).
            **{k: v for k, v in os.environ.items() if k in _KEPT_ENV or k.startswith("LC_")},
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": self.redis.url,
            "REDIS_KEY_PREFIX": PREFIX,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.http_port),
            "EVENT_SOURCES": f"{SOURCE}:{self.secret}",
            "ACCEPT_V1_SIGNATURES": "false",
            "PUBLIC_BASE_URL": self.base,
            "SMS_PROVIDERS": "esms,speedsms",
            "ESMS_BASE_URL": f"http://127.0.0.1:{ports['esms']}",
            "ESMS_API_KEY": "chaos-key",
            "ESMS_SECRET_KEY": "chaos-secret",
            "ESMS_BRANDNAME": "TTHC-CHAOS",
            "SPEEDSMS_BASE_URL": f"http://127.0.0.1:{ports['speedsms']}",
            "SPEEDSMS_TOKEN": "chaos-token",
            "SPEEDSMS_SENDER": "TTHC-CHAOS",
            "SMS_WEBHOOK_SECRET": sms_secret,
            "SMS_RATE_PER_SECOND": "1000",
            # eSMS's swallowed answers must be noticed quickly (the fake answers after 3 s).
            "SMS_TIMEOUT_SECONDS": "2",
            # A killed worker's claims come back after this, not after the default 2 min.
            "DELIVERY_LEASE_SECONDS": "10",
            "RELAY_GRACE_SECONDS": "5",
            "OPS_TOKEN": secrets.token_urlsafe(32),
            "CITIZEN_SECRET": secrets.token_urlsafe(32),
            "ZALO_APP_ID": self.zalo.app_id,
            "ZALO_APP_SECRET": self.zalo.app_secret,
            "ZALO_OA_SECRET_KEY": self.zalo.oa_secret_key,
            "ZALO_REFRESH_TOKEN": next(iter(self.zalo.refresh_tokens)),
            "ZALO_OAUTH_BASE_URL": fakes,
            "ZALO_OA_BASE_URL": fakes,
            "ZALO_ZNS_BASE_URL": fakes,
            "ZNS_TEMPLATE_INVITATION": "250001",
            # Each citizen looks up many codes; the enumeration guard is not under test.
            "LOOKUP_MAX_CODES": "1000",
            "QUIET_HOURS": "",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
        }
        await asyncio.to_thread(migrate.upgrade, self.postgres.url)
        self.speedsms.callback_url = f"{self.base}/webhooks/sms/speedsms/{sms_secret}"
        self.zalo.webhook_url = f"{self.base}/webhooks/zalo"
        for app, port in (
            (create_esms_app(self.esms), ports["esms"]),
            (create_speedsms_app(self.speedsms), ports["speedsms"]),
            (create_zalo_app(self.zalo), ports["zalo"]),
        ):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            self.runners.append(runner)
            await web.TCPSite(runner, "127.0.0.1", port).start()
        log, here = self.root / "processes.log", self.root
        self.serve = Child("tthc serve", ["serve"], self.env, log, here)
        self.workers = [
            Child("tthc worker 1", ["worker"], self.env, log, here),
            Child("tthc worker 2", ["worker", "--no-cron"], self.env, log, here),
        ]
        self.children = [self.serve, *self.workers]
        for child in self.children:
            child.start()
        await self.wait_serving()

    async def wait_serving(self, limit: float = 60) -> None:
        deadline = time.monotonic() + limit
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{self.base}/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"tthc serve did not answer within {limit:.0f} s")

    async def stop(self) -> None:
        for child in self.children:
            await asyncio.to_thread(child.stop)
        await self.zalo.close()
        for runner in reversed(self.runners):
            with contextlib.suppress(Exception):
                await runner.cleanup()
        await asyncio.to_thread(self.redis.stop)
        await asyncio.to_thread(self.postgres.stop)
        if not self.o.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    async def supervise(self) -> None:
        """Start again what died by itself, as systemd would (and note it)."""
        while True:
            for child in self.children:
                if not child.down_on_purpose and not child.running():
                    code = child.process.returncode if child.process else None
                    self.tally.exited.append(f"{self.tally.now():6.1f}s {child.name} ({code})")
                    child.start()
            await asyncio.sleep(0.5)

    # -- the faults

    def plan(self) -> list[str]:
        o = self.o
        kinds = ["kill-serve" if i % 2 == 0 else "kill-worker" for i in range(o.kills)]
        kinds += ["restart-redis"] * o.redis_restarts + ["restart-postgres"] * o.postgres_restarts
        providers = ["esms-outage", "speedsms-outage", "esms-timeouts"]
        kinds += [providers[i % len(providers)] for i in range(o.outages)]
        self.rng.shuffle(kinds)
        return kinds

    async def show_progress(self, every: float = 15.0) -> None:
        """A line every ``every`` seconds while the load runs (the long form takes minutes)."""
        while True:
            await asyncio.sleep(every)
            t = self.tally
            self.say(
                f"  {t.now():5.0f}s  events accepted {len(t.accepted)}/{t.posted}, "
                f"chat acknowledged {len(t.chat_accepted)}, faults {len(t.faults)}"
            )

    async def inject(self, kinds: list[str], after: asyncio.Task[None] | None = None) -> None:
        """Fire the faults one by one as the events advance (between 10 % and 85 %; with
        ``after``, once that task is done, over what is left of that range)."""
        start = 0.1
        if after is not None:
            await after
            start = max(start, self.progress)
        for number, kind in enumerate(kinds, start=1):
            mark = start + (0.85 - start) * number / (len(kinds) + 1)
            while self.progress < mark:  # noqa: ASYNC110 - progress is a plain float
                await asyncio.sleep(0.05)
            await self.fault(kind)

    async def fault(self, kind: str) -> None:
        pause = self.rng.uniform(0.5, 2.0)
        if kind in ("kill-serve", "kill-worker"):
            child = self.serve if kind == "kill-serve" else self.rng.choice(self.workers)
            self.tally.note(f"SIGKILL {child.name}; restarted after {pause:.1f} s")
            await asyncio.to_thread(child.kill)
            await asyncio.sleep(pause)
            child.start()
        elif kind == "restart-redis":
            self.tally.note(f"SIGKILL redis-server; restarted after {pause:.1f} s")
            await asyncio.to_thread(self.redis.kill)
            await asyncio.sleep(pause)
            await asyncio.to_thread(self.redis.start)
        elif kind == "restart-postgres":
            self.tally.note(f"PostgreSQL stopped (immediate); restarted after {pause:.1f} s")
            await asyncio.to_thread(self.postgres.crash)
            await asyncio.sleep(pause)
            await asyncio.to_thread(self.postgres.start)
        elif kind in ("esms-outage", "speedsms-outage"):
            centre = self.esms if kind == "esms-outage" else self.speedsms
            seconds = self.rng.uniform(2.0, 5.0)
            self.tally.note(f"{kind.split('-')[0]} answers HTTP 500 for {seconds:.1f} s")
            centre.set_mode("http500")
            await asyncio.sleep(seconds)
            centre.set_mode("ok")
        elif kind == "esms-timeouts":
            self.tally.note("esms takes the next 5 messages but its answers never come")
            self.esms.set_mode("timeout", count=5)

    # -- the load

    def stories(self) -> list[list[dict[str, Any]]]:
        shop = OneStopShop(seed=self.o.seed, now=datetime.now(TZ))
        stories: list[list[dict[str, Any]]] = []
        total = 0
        while total < self.o.events:
            story = [p.body for p in shop.story(shop.dossier())]
            stories.append(story)
            total += len({b["id"] for b in story})
        return stories

    async def post_events(self, stories: list[list[dict[str, Any]]]) -> None:
        total = sum(len({b["id"] for b in s}) for s in stories)
        self.tally.posted = total
        pending = list(reversed(stories))
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(self.base, timeout=timeout) as session:

            async def lane() -> None:
                while pending:
                    story = pending.pop()
                    for body in story:
                        await self.post_event(session, body)
                        done = len(self.tally.accepted) + len(self.tally.refused)
                        self.progress = (done + len(self.tally.gave_up)) / total

            await asyncio.gather(*(lane() for _ in range(self.o.concurrency)))

    async def post_event(self, session: aiohttp.ClientSession, body: dict[str, Any]) -> None:
        """Post until answered, with the same id (and body) each time, as integrators do."""
        raw = json.dumps(body, ensure_ascii=False).encode()
        if self.o.rate > 0:
            now = time.monotonic()
            self.next_slot = max(self.next_slot + 1 / self.o.rate, now)
            await asyncio.sleep(self.next_slot - now)
        deadline = time.monotonic() + 180
        delay = 0.2
        while True:
            headers = signed_headers_v2(SOURCE, self.secret, "POST", "/v1/events", raw, time.time())
            headers["Content-Type"] = "application/json"
            try:
                async with session.post("/v1/events", data=raw, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            if 200 <= status < 300:
                self.tally.accepted[body["id"]] = body["dossier"]["code"]
                return
            if 400 <= status < 500:
                self.tally.refused[body["id"]] = status
                return
            if time.monotonic() > deadline:
                self.tally.gave_up.add(body["id"])
                return
            self.tally.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def chat(self, codes: list[str]) -> None:
        """Citizens alternate a dossier code and "menu", each waiting (a little) for the
        answer before going on; a webhook without a 200 is posted again unchanged."""
        users = [
            self.zalo.add_user(f"Công dân {n}", None, follows=True)
            for n in range(self.o.chat_users)
        ]
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def citizen(user_id: str) -> None:
                for turn in range(self.o.chat_messages):
                    text = "menu" if turn % 2 else f"tra cứu {self.rng.choice(codes)}"
                    before = len(self.zalo.messages_for(user_id))
                    if await self.say_to_oa(session, user_id, text):
                        await self.wait_for(partial(self.replied, user_id, before), 5)
                    # People read the answer and type the next message.
                    await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.o.think_seconds)

            await asyncio.gather(*(citizen(u.user_id) for u in users))

    async def say_to_oa(self, session: aiohttp.ClientSession, user_id: str, text: str) -> bool:
        """One ``user_send_text`` webhook, signed as Zalo signs it, until answered 200."""
        user = self.zalo.users[user_id]
        user.last_interaction = time.time()
        payload = {
            "app_id": self.zalo.app_id,
            "sender": {"id": user_id},
            "recipient": {"id": self.zalo.oa_id},
            "event_name": "user_send_text",
            "message": {"text": text, "msg_id": secrets.token_hex(10)},
            "timestamp": str(int(time.time() * 1000)),
            "user_id_by_app": user.user_id_by_app,
        }
        self.tally.chat_sent += 1
        deadline = time.monotonic() + 120
        delay = 0.2
        while time.monotonic() < deadline:
            statuses = await self.zalo.post_webhook(payload, OA_SERVER)
            if statuses[0] == 200:
                self.tally.chat_accepted.append((user_id, text))
                return True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        self.tally.chat_dropped += 1
        return False

    def replied(self, user_id: str, before: int) -> bool:
        return len(self.zalo.messages_for(user_id)) > before

    @staticmethod
    async def wait_for(condition: Callable[[], bool], limit: float) -> bool:
        deadline = time.monotonic() + limit
        while not condition():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    # -- the end

    async def settle(self) -> float:
        """Faults over, everything up: wait until nothing moves. Returns the seconds waited."""
        self.esms.set_mode("ok")
        self.speedsms.set_mode("ok")
        started = time.monotonic()
        report_at = started + 10
        last, changed = (-1, -1), started
        engine = create_engine(self.postgres.url)
        try:
            while time.monotonic() - started < self.o.drain_seconds:
                moving = await _scalar(
                    engine,
                    sa.select(sa.func.count())
                    .select_from(notices)
                    .where(notices.c.state.in_(MOVING)),
                )
                unanswered = self.chat_verdict()["unanswered"]
                if moving == 0 and not unanswered:
                    break
                if (moving, unanswered) != last:
                    last, changed = (moving, unanswered), time.monotonic()
                elif moving == 0 and time.monotonic() - changed > CHAT_PATIENCE:
                    break  # no answer is coming: a drain's lock (60 s) and the relay are past
                if time.monotonic() >= report_at:
                    self.say(
                        f"  … {moving} notices on their way, {unanswered} chat messages unanswered"
                    )
                    report_at += 10
                await asyncio.sleep(1.0)
        finally:
            await engine.dispose()
        await asyncio.sleep(1.0)  # a last duplicate would show up now
        return time.monotonic() - started

    def chat_verdict(
        self,
        recorded: set[str] | None = None,
        unknown: Sequence[tuple[str, str]] = (),
    ) -> dict[str, Any]:
        """Acknowledged messages matched with the OA's replies at the fake.

        ``recorded``: the OA message ids the gateway stored. A second answer whose first
        copy is not among them was taken by Zalo as the worker died, before the gateway
        could write it down: OA messages have no idempotency key (``mid_send``).
        ``unknown``: (user, text) of the text replies the gateway recorded ``unknown``; a
        missing answer with one of them is ``unanswered_unknown`` (left for a person), no
        longer in ``unanswered``; one the fake has is ``unknown_received``."""
        replies: dict[str, list[tuple[str, str]]] = {}
        for message in self.zalo.sent:
            text = str((message.body.get("message") or {}).get("text") or "")
            # A lookup's answer is a text and a "share your phone" card: the text counts.
            if message.channel == "oa" and message.user_id and text:
                replies.setdefault(message.user_id, []).append((text, message.message_id))
        verdict = Counter(
            answered=0,
            unanswered=0,
            unanswered_unknown=0,
            unknown_received=0,
            twice=0,
            mid_send=0,
        )
        problems: list[str] = []
        asked: dict[str, Counter[str]] = {}
        for user_id, text in self.tally.chat_accepted:
            asked.setdefault(user_id, Counter())[_topic(text)] += 1
        left: dict[str, Counter[str]] = {}
        for user_id, text in unknown:
            if user_id in asked:
                left.setdefault(user_id, Counter())[_reply_topic(text, asked[user_id])] += 1
        for user_id, topics in asked.items():
            answers: dict[str, list[str]] = {}
            for text, message_id in replies.get(user_id, []):
                answers.setdefault(_reply_topic(text, topics), []).append(message_id)
            got = Counter({topic: len(ids) for topic, ids in answers.items()})
            for topic, count in topics.items():
                missing = max(0, count - got[topic])
                # A reply recorded unknown that never reached Zalo: a person must check.
                for_a_person = min(missing, left.get(user_id, Counter())[topic])
                verdict["answered"] += min(count, got[topic])
                verdict["unanswered"] += missing - for_a_person
                verdict["unanswered_unknown"] += for_a_person
                verdict["unknown_received"] += left.get(user_id, Counter())[topic] - for_a_person
                verdict["twice"] += max(0, got[topic] - count)
                if got[topic] == count:
                    continue
                why = f" ({for_a_person} recorded unknown, for a person)" if for_a_person else ""
                if recorded is not None and got[topic] > count:
                    lost = [i for i in answers[topic] if f"oa:{i}" not in recorded]
                    verdict["mid_send"] += min(len(lost), got[topic] - count)
                    if lost:
                        why = f" ({len(lost)} taken by Zalo, never recorded: worker died mid-send)"
                problems.append(
                    f"citizen {user_id} asked {count} × {topic!r}, got {got[topic]} answer(s){why}"
                )
            verdict["twice"] += got["?"]
            if got["?"]:
                problems.append(f"citizen {user_id} got {got['?']} answer(s) to nothing asked")
        return {**verdict, "problems": problems}

    async def verdict(self) -> dict[str, Any]:
        engine = create_engine(self.postgres.url)
        try:
            async with engine.connect() as conn:
                timeline = {
                    (r.event_id, r.dossier_code)
                    for r in await conn.execute(
                        sa.select(events.c.event_id, events.c.dossier_code).where(
                            events.c.source_id == SOURCE
                        )
                    )
                }
                rows = (await conn.execute(sa.select(notices))).all()
                attempts = (await conn.execute(sa.select(deliveries))).all()
                bot_rows = (
                    await conn.execute(
                        sa.select(
                            chat_messages.c.dedupe_key,
                            chat_messages.c.user_id,
                            chat_messages.c.text,
                            chat_messages.c.payload,
                        ).where(chat_messages.c.direction == "bot")
                    )
                ).all()
                recorded = {r.dedupe_key for r in bot_rows}
                # The text replies left unknown (the phone card does not count, as at the fake).
                unknown = [
                    (r.user_id, r.text or "")
                    for r in bot_rows
                    if (r.payload or {}).get("state") == "unknown"
                    and not (r.payload or {}).get("card")
                ]
        finally:
            await engine.dispose()
        lost_events = [i for i, code in self.tally.accepted.items() if (i, code) not in timeline]
        return {
            "events": {
                "lost": lost_events,
                "on_timeline": len(self.tally.accepted) - len(lost_events),
            },
            "notices": self.notice_verdict(rows, attempts),
            "chat": self.chat_verdict(recorded, unknown),
        }

    def notice_verdict(self, rows: Sequence[Any], attempts: Sequence[Any]) -> dict[str, Any]:
        """Each notice with the messages the fakes received for it."""
        received: Counter[str] = Counter()
        strays: list[str] = []
        known = {r.id for r in rows}
        by_speedsms_id = {
            r.provider_message_id: r.notice_id
            for r in attempts
            if r.provider == "speedsms" and r.provider_message_id
        }
        by_text = {(_digits(r.phone_e164), r.text): r.id for r in rows if r.text}
        for m in self.esms.messages:
            # Our RequestId is "<notice>-sms-esms".
            notice = (m.request_id or "").partition("-sms-")[0]
            if notice not in known:
                notice = by_text.get((_digits(m.phone), m.content), "")
            _count(received, strays, notice, f"esms {m.request_id}")
        for m in self.speedsms.messages:
            notice = by_speedsms_id.get(m.provider_message_id) or by_text.get(
                (_digits(m.phone), m.content), ""
            )
            _count(received, strays, notice, f"speedsms {m.provider_message_id}")
        for z in self.zalo.sent:
            if z.channel == "zns":
                notice = (z.tracking_id or "").removesuffix("zns")
                _count(received, strays, notice if notice in known else "", f"zns {z.tracking_id}")
        states: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        problems: list[str] = []
        for row in rows:
            got = received[row.id]
            if got > 1:
                outcome = "duplicated"
            elif row.state in FAILED and (row.last_error or row.state == "no_recipient"):
                outcome = "failed" if got == 0 else "duplicated"
            elif row.state == "unknown":
                outcome = "unknown"
            elif got == 1 and row.state in ("sent", "delivered"):
                outcome = "delivered"
            else:
                outcome = "lost"
            states[outcome] += 1
            if outcome == "failed":
                reasons[f"{row.state}: {row.last_error or 'no usable mobile number'}"[:90]] += 1
            if outcome in ("lost", "duplicated"):
                problems.append(
                    f"{outcome}: notice {row.id} ({row.kind}, {row.dossier_code}) is {row.state}"
                    f" with {got} message(s) at the vendors; last error: {row.last_error}"
                )
        states["duplicated"] += len(strays)
        problems += [f"duplicated: {s} matches no notice" for s in strays]
        waits = sorted(
            (r.sent_at - r.created_at).total_seconds() for r in rows if r.sent_at is not None
        )
        return {
            "total": len(rows),
            "counts": states,
            "reasons": reasons,
            "problems": problems,
            "waits": waits,
        }


def _count(received: Counter[str], strays: list[str], notice: str | None, what: str) -> None:
    if notice:
        received[notice] += 1
    else:
        strays.append(what)


def _digits(phone: str | None) -> str:
    """The national significant number (the last nine digits), whatever the prefix."""
    return re.sub(r"\D", "", phone or "")[-9:]


_CODE = re.compile(r"\d{3}\.\d{2}\.\d{2}\.H\d{2}-\d{6}-\d{4}")


def _topic(text: str) -> str:
    """What a citizen's message asks about: a dossier code, or the menu."""
    found = _CODE.search(text)
    return found.group(0) if found else "menu"


def _reply_topic(reply: str, topics: Counter[str]) -> str:
    """Which message a reply answers: the code it names, the menu, or "?" (none)."""
    found = _CODE.search(reply)
    if found:
        return found.group(0) if found.group(0) in topics else "?"
    return "menu"


async def _scalar(engine: Any, query: Any) -> int:
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(query) or 0)
    except Exception:  # the database may be restarting
        return -1


# --- the report -------------------------------------------------------------------------


def report(chaos: Chaos, found: dict[str, Any], waited: float, elapsed: float) -> int:
    t, say = chaos.tally, chaos.say
    notices_found = found["notices"]
    counts: Counter[str] = notices_found["counts"]
    chat = found["chat"]
    lost_events = found["events"]["lost"]
    say(f"\nChaos run: {elapsed:.0f} s ({waited:.0f} s of it waiting for the outbox to drain)")
    say(
        f"events    sent {t.posted}, accepted {len(t.accepted)}, on timeline "
        f"{found['events']['on_timeline']}, lost {len(lost_events)}"
        f"  (refused {len(t.refused)}, given up {len(t.gave_up)}, re-posts {t.retries})"
    )
    say(
        f"notices   {notices_found['total']}: delivered {counts['delivered']}, failed with a "
        f"reason {counts['failed']}, unknown (for a person) {counts['unknown']}, "
        f"lost {counts['lost']}, duplicated {counts['duplicated']}"
    )
    if waits := notices_found["waits"]:
        say(
            f"          created → handed to a vendor: p50 {waits[len(waits) // 2]:.0f} s, "
            f"p99 {waits[int(len(waits) * 0.99)]:.0f} s, max {waits[-1]:.0f} s"
        )
    for reason, count in notices_found["reasons"].most_common(5):
        say(f"          failed {count} × {reason}")
    say(
        f"chat      sent {t.chat_sent}, acknowledged {len(t.chat_accepted)}, answered "
        f"{chat['answered']}, unanswered {chat['unanswered']}, unanswered (unknown, for a "
        f"person) {chat['unanswered_unknown']}, answered twice {chat['twice']}"
        + (f" ({chat['mid_send']} as a worker died mid-send)" if chat["mid_send"] else "")
        + f"  (never acknowledged {t.chat_dropped})"
    )
    if chat["unknown_received"]:
        say(
            f"          {chat['unknown_received']} answered once though recorded unknown "
            "(Zalo could not be asked, or answered the send too late; not sent again)"
        )
    say(f"faults    {len(t.faults)} injected:")
    for fault in t.faults:
        say(f"  {fault.at:6.1f}s  {fault.what}")
    for line in t.exited:
        say(f"  exited by itself, restarted: {line}")
    for problem in notices_found["problems"][:20]:
        say(f"  ✗ {problem}")
    for problem in chat["problems"][:20]:
        say(f"  ✗ chat: {problem}")
    for event_id in lost_events[:20]:
        say(f"  ✗ event {event_id} was accepted but is not on its timeline")
    for event_id, status in list(t.refused.items())[:10]:
        say(f"  ✗ event {event_id} refused with HTTP {status}")
    bad = (
        len(lost_events)
        + len(t.refused)
        + len(t.gave_up)
        + counts["lost"]
        + counts["duplicated"]
        + chat["unanswered"]
        + chat["unanswered_unknown"]  # honest: that citizen may have no answer
        + chat["twice"]
    )
    if chaos.o.json_path is not None:
        summary = {
            "events": {
                "sent": t.posted,
                "accepted": len(t.accepted),
                "on_timeline": found["events"]["on_timeline"],
                "lost": len(lost_events),
                "refused": len(t.refused),
                "given_up": len(t.gave_up),
            },
            "notices": {
                "total": notices_found["total"],
                **{k: counts[k] for k in ("delivered", "failed", "unknown", "lost", "duplicated")},
            },
            "chat": {
                "sent": t.chat_sent,
                "acknowledged": len(t.chat_accepted),
                **{k: v for k, v in chat.items() if k != "problems"},
            },
            "faults": [{"at": round(f.at, 1), "what": f.what} for f in t.faults],
            "exited": t.exited,
        }
        chaos.o.json_path.write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    say(
        "\n✓ nothing lost, nothing duplicated, every citizen answered once"
        if not bad
        else "\n✗ FAILED"
    )
    if chaos.o.keep:
        say(f"logs and data kept in {chaos.root}")
    return 1 if bad else 0


async def run(options: Options, out: TextIO = sys.stdout) -> int:
    chaos = Chaos(options, out)
    started = time.monotonic()
    supervisor: asyncio.Task[None] | None = None
    try:
        chaos.say(
            f"· starting PostgreSQL, Redis, the fakes, tthc serve and 2 workers in {chaos.root}"
        )
        await chaos.start()
        chaos.tally.started = time.monotonic()
        supervisor = asyncio.create_task(chaos.supervise())
        stories = await asyncio.to_thread(chaos.stories)
        codes = [s[0]["dossier"]["code"] for s in stories]
        chaos.say(
            f"· posting {sum(len({b['id'] for b in s}) for s in stories)} events of "
            f"{len(stories)} dossiers, {options.chat_users * options.chat_messages} chat messages"
        )
        chat = asyncio.create_task(chaos.chat(codes))
        load: list[Awaitable[None]] = [
            chaos.post_events(stories),
            chat,
            chaos.inject(chaos.plan(), after=chat if options.chat_first else None),
        ]
        progress = asyncio.create_task(chaos.show_progress())
        try:
            await asyncio.gather(*load)
        finally:
            progress.cancel()
        chaos.say(f"· load done at {chaos.tally.now():.0f} s; waiting for the outbox to drain")
        waited = await chaos.settle()
        found = await chaos.verdict()
        return report(chaos, found, waited, time.monotonic() - started)
    finally:
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        await chaos.stop()


def parse(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos", description=__doc__.split("\n")[0]
    )
    d = Options()
    parser.add_argument("--events", type=int, default=d.events, help="events to post, at least")
    parser.add_argument("--chat-users", type=int, default=d.chat_users)
    parser.add_argument("--chat-messages", type=int, default=d.chat_messages, help="per citizen")
    parser.add_argument("--concurrency", type=int, default=d.concurrency, help="dossiers in flight")
    parser.add_argument("--rate", type=float, default=d.rate, help="events/s (0: no limit)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--kills", type=int, default=d.kills, help="SIGKILLs of serve/workers")
    parser.add_argument("--redis-restarts", type=int, default=d.redis_restarts)
    parser.add_argument("--postgres-restarts", type=int, default=d.postgres_restarts)
    parser.add_argument("--outages", type=int, default=d.outages, help="SMS vendor faults")
    parser.add_argument("--drain-seconds", type=float, default=d.drain_seconds)
    parser.add_argument(
        "--think-seconds", type=float, default=d.think_seconds, help="between a citizen's messages"
    )
    parser.add_argument("--redis-fsync", choices=("always", "everysec"), default=d.redis_fsync)
    parser.add_argument(
        "--chat-first", action="store_true", help="no fault before the citizens are done"
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs and data directory")
    parser.add_argument("--json", type=Path, help="also write the counts to this file")
    a = parser.parse_args(argv)
    return Options(
        events=a.events,
        chat_users=a.chat_users,
        chat_messages=a.chat_messages,
        concurrency=a.concurrency,
        seed=a.seed,
        kills=a.kills,
        redis_restarts=a.redis_restarts,
        postgres_restarts=a.postgres_restarts,
        outages=a.outages,
        drain_seconds=a.drain_seconds,
        think_seconds=a.think_seconds,
        rate=a.rate,
        chat_first=a.chat_first,
        redis_fsync=a.redis_fsync,
        keep=a.keep,
        json_path=a.json,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    try:
        return asyncio.run(run(options))
    except RuntimeError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
