"""``tthc demo``: the whole gateway on one machine with sample traffic you can watch.

Embedded SQLite, the local Redis (or a private redis-server when none answers), the
HTTP service, local fakes of the eSMS and SpeedSMS APIs (each with a page listing the
SMS it received) and of the Zalo platform (OAuth, OA messages, ZNS, signed webhooks, and
a chat page to talk to the OA as a citizen), a worker, and a simulated one-stop-shop
posting signed events through the real API: scripted stories that make every audit rule
fire, then random ones. A scripted citizen then follows the OA, looks up their dossier
and reports a false closure.

The demo checks what it shows: when an event is refused, a notice is not delivered, a
rule did not fire or the citizen got no answer, it says so loudly and exits non-zero.
It may run again on the same ``var/``: the fresh fake Zalo's refresh token is stored
as ``tthc zalo set-refresh-token`` would, and dossier numbers continue. Logs go to
``var/demo.log``; SIGINT and SIGTERM stop every process it started.
"""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, TextIO
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import sqlalchemy as sa
from aiohttp import web

from gateway.chat.tokens import replace_refresh_token
from gateway.domain.calendar import DEFAULT_OVERRIDES_FILE, WorkingCalendar, load_overrides
from gateway.domain.phones import normalize_phone
from gateway.domain.sms_text import unaccent
from gateway.errors import ConfigError
from gateway.http.app import create_app
from gateway.http.ops import PAGE_LINKS
from gateway.http.signing import signed_headers_v2
from gateway.local.accountability import close_the_loop, console_accounts
from gateway.local.redis_server import PrivateRedis, free_port, reachable
from gateway.local.simulator import OneStopShop
from gateway.logs import JsonFormatter
from gateway.settings import Settings
from gateway.storage import migrate
from gateway.storage.db import create_engine
from gateway.storage.tables import dossiers as dossiers_table
from providers.fakes import FakeSmsCentre, create_esms_app, create_speedsms_app
from providers.fakes.zalo import FakeUser, FakeZalo
from providers.fakes.zalo import create_app as create_zalo_app

DEMO_SOURCE = "demo-onestop"
# Notice states that mean "still on its way".
MOVING = ("created", "queued", "sending", "sent")


def on_its_way(notice: dict[str, Any]) -> bool:
    """Still moving: an OA message is done once sent (Zalo sends no receipt for it)."""
    if notice.get("channel") == "oa" and notice["state"] == "sent":
        return False
    return notice["state"] in MOVING


# Every audit rule the scripted stories must make fire.
EXPECTED_RULES = (
    "phone_missing",
    "phone_landline",
    "pause_during_consultation",
    "withdrawal_without_approval",
    "second_rescheduling",
)


@dataclass
class Outcome:
    """What the demo saw; ``problems`` non-empty means a part of it is broken."""

    codes: list[str] = field(default_factory=list)
    scripted: int = 0
    views: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Demo:
    """Everything the demo starts, so it can all be stopped again."""

    def __init__(self, settings: Settings, out: TextIO, log_path: Path) -> None:
        self.base_settings = settings
        self.out = out
        self.log_path = log_path
        self.private_redis: PrivateRedis | None = None
        self.runners: list[web.AppRunner] = []
        self.worker: subprocess.Popen[bytes] | None = None
        self.worker_log: BinaryIO | None = None
        self.overrides: dict[str, str] = {}
        self.zalo = FakeZalo(receipt_delay=1.0)
        # The fake eSMS's messages: the scripted citizen reads their one-time code there.
        self.esms = FakeSmsCentre(receipt_delay=1.0)
        self.links: dict[str, str] = {}

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def prepare(self) -> Settings:
        """A Redis, a source to sign with, fake SMS vendors, a migrated database."""
        s = self.base_settings
        redis_url = s.redis_url
        if not reachable(redis_url):
            self.private_redis = PrivateRedis.start()
            redis_url = self.private_redis.url
            self.say(f"· no Redis at {s.redis_url}; started a private one at {redis_url}")
        port = s.http_port if _free(s.http_host, s.http_port) else free_port()
        if port != s.http_port:
            self.say(f"· port {s.http_port} is busy; using {port}")
        # `tthc worker` refuses weak secrets: the operator's only when strong, else ours.
        sources = _strong_or_fresh(
            s.env.get("EVENT_SOURCES", ""),
            "EVENT_SOURCES",
            f"{DEMO_SOURCE}:{secrets.token_hex(16)}",
        )
        ops_token = _strong_or_fresh(
            s.env.get("OPS_TOKEN", ""), "OPS_TOKEN", secrets.token_urlsafe(32)
        )
        citizen_secret = _strong_or_fresh(
            s.env.get("CITIZEN_SECRET", ""), "CITIZEN_SECRET", secrets.token_urlsafe(32)
        )
        self.esms_port, self.speedsms_port = free_port(), free_port()
        self.zalo_port = free_port()
        zalo_base = f"http://127.0.0.1:{self.zalo_port}"
        base = f"http://{s.http_host}:{port}"
        self.overrides = {
            "DATABASE_URL": s.database_url,
            "REDIS_URL": redis_url,
            "HTTP_PORT": str(port),
            "EVENT_SOURCES": sources,
            # The simulated one-stop-shop signs with v2=, as integrators should.
            "ACCEPT_V1_SIGNATURES": "false",
            "PUBLIC_BASE_URL": base,
            "SMS_PROVIDERS": "esms,speedsms",
            "ESMS_BASE_URL": f"http://127.0.0.1:{self.esms_port}",
            "ESMS_API_KEY": "demo-key",
            "ESMS_SECRET_KEY": "demo-secret",
            "ESMS_BRANDNAME": "TTHC-DEMO",
            "SPEEDSMS_BASE_URL": f"http://127.0.0.1:{self.speedsms_port}",
            "SPEEDSMS_TOKEN": "demo-token",
            "SPEEDSMS_SENDER": "TTHC-DEMO",
            "SMS_WEBHOOK_SECRET": secrets.token_urlsafe(32),
            "OPS_TOKEN": ops_token,
            # One-time codes, the links in SMS and the citizen page's cookies.
            "CITIZEN_SECRET": citizen_secret,
            "CITIZEN_BASE_URL": base,
            "ZALO_APP_ID": self.zalo.app_id,
            "ZALO_APP_SECRET": self.zalo.app_secret,
            "ZALO_OA_SECRET_KEY": self.zalo.oa_secret_key,
            "ZALO_REFRESH_TOKEN": next(iter(self.zalo.refresh_tokens)),
            "ZALO_OAUTH_BASE_URL": zalo_base,
            "ZALO_OA_BASE_URL": zalo_base,
            "ZALO_ZNS_BASE_URL": zalo_base,
            # The fake knows template 250001 (an invitation to collect the result).
            "ZNS_TEMPLATE_INVITATION": "250001",
            # At night every notice would (rightly) wait for the morning: not for a demo.
            "QUIET_HOURS": "",
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",
        }
        settings = Settings.from_mapping({**s.env, **self.overrides})
        migrate.upgrade(settings.database_url)
        self.say(f"· database {settings.database_url} migrated")
        return settings

    async def resume(self, settings: Settings) -> int:
        """Make an earlier run's state usable; return how many dossiers it left.

        This fake Zalo is new and refuses the refresh token an earlier run stored, so
        its own token is stored (what ``tthc zalo set-refresh-token`` does after an OA
        admin grants access again) and the operator alert cleared.
        """
        await replace_refresh_token(settings, settings.zalo.refresh_token)
        engine = create_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                count = await conn.scalar(sa.select(sa.func.count()).select_from(dossiers_table))
        finally:
            await engine.dispose()
        earlier = int(count or 0)
        if earlier:
            self.say(
                f"· {earlier} dossiers from earlier runs kept; the fake Zalo's refresh token "
                "stored and the Zalo alert cleared"
            )
        return earlier

    async def start(self, settings: Settings) -> str:
        base = settings.public_base_url
        receipts = f"{base}/webhooks/sms/speedsms/{settings.sms_webhook_secret}"
        # Named as the root page's template knows them.
        self.links = {
            "esms": f"http://127.0.0.1:{self.esms_port}/",
            "speedsms": f"http://127.0.0.1:{self.speedsms_port}/",
            "zalo": f"http://127.0.0.1:{self.zalo_port}/",
        }
        gateway = create_app(settings)
        gateway[PAGE_LINKS] = dict(self.links)
        apps = (
            (create_esms_app(self.esms), "127.0.0.1", self.esms_port),
            (
                create_speedsms_app(FakeSmsCentre(receipt_delay=1.0, callback_url=receipts)),
                "127.0.0.1",
                self.speedsms_port,
            ),
            (create_zalo_app(self.zalo), "127.0.0.1", self.zalo_port),
            (gateway, settings.http_host, settings.http_port),
        )
        self.zalo.webhook_url = f"{base}/webhooks/zalo"
        for app, host, port in apps:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            self.runners.append(runner)
            await web.TCPSite(runner, host, port).start()
        self.worker = self._start_worker()
        self.say(f"· gateway on {base}/  (health {base}/readyz, metrics {base}/metrics)")
        self.say(f"· watch the SMS arrive at the fake eSMS:  {self.links['esms']}")
        self.say(f"  (the fake SpeedSMS, used when eSMS fails: {self.links['speedsms']})")
        return base

    def _start_worker(self) -> subprocess.Popen[bytes]:
        self.worker_log = self.log_path.open("ab")
        # Its own session: a Ctrl+C in the terminal reaches the demo, which stops the
        # worker in order; and its cron child can be found again by process group.
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "worker"],
            env={**os.environ, **self.overrides},
            stdin=subprocess.DEVNULL,
            stdout=self.worker_log,
            stderr=self.worker_log,
            start_new_session=True,
        )

    async def stop(self) -> None:
        """Stop the worker (and its children), the servers and the private Redis."""
        if self.worker is not None:
            await asyncio.to_thread(_stop_group, self.worker)
            self.worker = None
        if self.worker_log is not None:
            self.worker_log.close()
            self.worker_log = None
        for runner in reversed(self.runners):
            with suppress(Exception):
                await runner.cleanup()
        self.runners.clear()
        if self.private_redis is not None:
            self.private_redis.stop()
            self.private_redis = None


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the leader, give it time to stop its children, then kill the group."""
    if process.poll() is None:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(10)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.wait(5)


def _strong_or_fresh(configured: str, variable: str, fresh: str) -> str:
    """The operator's ``variable`` when `tthc worker` would accept it, else ``fresh``."""
    if not configured:
        return fresh
    try:
        Settings.from_mapping({variable: configured}).check_secrets()
    except ConfigError:
        return fresh
    return configured


def remote_services(settings: Settings) -> list[str]:
    """The variables naming a database or Redis not on this machine (host only shown).

    Local: an SQLite file, a Unix socket, or a loopback host (localhost, 127.0.0.0/8,
    ::1). The demo writes sample dossiers and deletes nothing it did not make, but a
    shared server is no place for sample data, so it asks before using one.
    """
    found = []
    for variable, url in (
        ("DATABASE_URL", settings.database_url),
        ("REDIS_URL", settings.redis_url),
    ):
        host = _remote_host(url)
        if host is not None:
            found.append(f"{variable} (host {host})")
    return found


def _remote_host(url: str) -> str | None:
    """The host of ``url`` when it is not local; None for a local one."""
    parts = urlsplit(url)
    if parts.scheme.startswith(("sqlite", "unix")):
        return None
    host = parts.hostname or ""
    # PostgreSQL over a Unix socket: no host, or ?host=/run/postgresql.
    socket_dir = dict(parse_qsl(parts.query)).get("host", "")
    if not host and (not socket_dir or socket_dir.startswith("/")):
        return None
    host = host or socket_dir
    if host == "localhost":
        return None
    with suppress(ValueError):
        if ipaddress.ip_address(host).is_loopback:
            return None
    return host


def _free(host: str, port: int) -> bool:
    try:
        with socket.create_server((host, port)):
            return True
    except OSError:
        return False


def tthc_command() -> str:
    """How to run ``tthc`` from here: the script next to the running interpreter."""
    script = Path(sys.executable).parent / "tthc"
    if not script.exists():
        return f"{sys.executable} -m gateway"
    with suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script)


async def _post(
    session: aiohttp.ClientSession, source: str, secret: str, body: dict[str, Any]
) -> tuple[int, Any]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers = signed_headers_v2(source, secret, "POST", "/v1/events", raw, time.time())
    headers["Content-Type"] = "application/json"
    async with session.post("/v1/events", data=raw, headers=headers) as response:
        return response.status, await response.json()


async def _post_stories(
    demo: Demo,
    base: str,
    signer: tuple[str, str],
    shop: OneStopShop,
    dossiers: int,
    delay: float,
    outcome: Outcome,
) -> list[dict[str, Any]]:
    """Post the scripted stories, then random ones up to ``dossiers`` in all."""
    scripted = shop.scripted()
    stories = [(s.dossier, s.shows) for s in scripted]
    stories += [(shop.dossier(), "") for _ in range(max(0, dossiers - len(scripted)))]
    outcome.scripted = len(scripted)
    zone = shop.calendar.tz
    async with aiohttp.ClientSession(base) as session:
        for dossier, shows in stories:
            outcome.codes.append(dossier["code"])
            demo.say(
                f"\n{dossier['code']}  {dossier['procedure']['name']}, {dossier['agency']['name']}"
            )
            if shows:
                demo.say(f"  scripted: {shows}")
            for posting in shop.story(dossier):
                status, answer = await _post(session, *signer, posting.body)
                if status not in (200, 202):
                    outcome.problems.append(
                        f"event {posting.body['id']} refused: HTTP {status} {answer}"
                    )
                fresh = [n["kind"] for n in answer.get("notices", []) if not n.get("duplicate")]
                notices = "(re-posted)" if status == 200 else ",".join(fresh) or "-"
                flags = ",".join(f["rule"] for f in answer.get("flags", []))
                occurred = datetime.fromisoformat(posting.body["occurred_at"]).astimezone(zone)
                demo.say(
                    f"  {occurred:%d/%m %H:%M}  {posting.body['type']:<31} HTTP {status}"
                    f"  notices={notices}" + (f"  FLAG {flags}" if flags else "")
                )
                if delay:
                    await asyncio.sleep(delay)
    return [d for d, _ in stories]


# What the scripted citizen does: (what the terminal shows, the act).
_CHAT_SCRIPT = (
    ("follows the OA", "follow", ""),
    ("types: {text}", "text", "Cho tôi tra cứu hồ sơ {code}"),
    ("shares their Zalo phone number", "share", ""),
    ("types the one-time code the SMS brought: {text}", "code", ""),
    ("taps: Báo xong nhưng chưa có kết quả", "click", "#report_false {code}"),
    ("types: {text}", "text", "Tôi đến quầy nhưng cán bộ nói chưa có kết quả."),
)


async def _chat_story(
    demo: Demo, posted: list[dict[str, Any]], outcome: Outcome
) -> FakeUser | None:
    """The citizen of the first (scripted) dossier talks to the OA; prints both sides.

    Every demo citizen with a usable mobile number gets a Zalo account, under a fresh
    user id so that an earlier run's conversations do not carry over.
    """
    zalo = demo.zalo
    owners: list[tuple[FakeUser, dict[str, Any]]] = []
    for dossier in posted:
        phone = normalize_phone(dossier["applicant"]["phone"])
        if phone.ok and phone.e164 and phone.e164 not in {u.phone_e164 for u, _ in owners}:
            user_id = str(6_750_591_000_000_000_000 + secrets.randbelow(10**15))
            user = zalo.add_user(dossier["applicant"]["name"], phone.e164, user_id=user_id)
            owners.append((user, dossier))
    if not owners:
        outcome.problems.append("no demo citizen has a mobile number: no chat")
        return None
    user, dossier = owners[0]
    demo.say(f"\nOn Zalo, {user.name} (owner of {dossier['code']}):")
    for shown, act, argument in _CHAT_SCRIPT:
        text = argument.format(code=dossier["code"])
        if act == "code":
            text = await _code_sent_to(demo.esms, user.phone_e164 or "")
        demo.say(f"  👤 {shown.format(text=text)}")
        before = len(zalo.messages_for(user.user_id))
        if act == "follow":
            await zalo.follow(user.user_id)
        elif act == "share":
            await zalo.share_info(user.user_id)
        elif act == "click":
            await zalo.click(user.user_id, text)
        else:  # typed text, or the one-time code
            await zalo.send_text(user.user_id, text)
        replies = await _replies(zalo, user.user_id, before)
        if not replies:
            demo.say("  ✗  (no answer)")
            outcome.problems.append(f"the citizen got no answer after: {shown.format(text=text)}")
        for reply in replies:
            demo.say("  🏛  " + reply.replace("\n", "\n     "))
    return user


async def _code_sent_to(esms: FakeSmsCentre, phone: str, limit: float = 10) -> str:
    """The newest one-time code the fake eSMS took for ``phone`` (the demo has no ZNS
    template for codes, so they go by SMS); "------" if none came within ``limit``."""
    deadline = time.monotonic() + limit
    tail = phone[-9:]
    while time.monotonic() < deadline:
        for message in reversed(esms.messages):
            found = _OTP_IN_SMS.search(unaccent(message.content))
            if found and re.sub(r"\D", "", message.phone).endswith(tail):
                return found.group(1)
        await asyncio.sleep(0.05)
    return "------"


# The code in the one-time code SMS (templates/sms/otp.txt.j2), unaccented.
_OTP_IN_SMS = re.compile(r"\b(\d{6}) la ma xac thuc\b", re.IGNORECASE)


async def _replies(zalo: FakeZalo, user_id: str, before: int, limit: float = 10) -> list[str]:
    """The OA's answers to one act: wait for the first, then for a quiet moment."""
    deadline = time.monotonic() + limit
    seen = before
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        count = len(zalo.messages_for(user_id))
        if count != seen:
            seen, quiet_since = count, time.monotonic()
        elif count > before and time.monotonic() - quiet_since > 0.4:
            break
        await asyncio.sleep(0.05)
    bubbles = [item for item in zalo.thread(user_id) if item["from"] != "user"]
    return [str(item["text"]) for item in bubbles[before:]]


async def _views(
    session: aiohttp.ClientSession, signer: tuple[str, str], codes: list[str]
) -> list[dict[str, Any]]:
    views = []
    for code in codes:
        path = f"/v1/dossiers/{code}"  # a dossier code needs no percent-encoding
        headers = signed_headers_v2(*signer, "GET", path, b"", time.time())
        async with session.get(path, headers=headers) as response:
            views.append(await response.json())
    return views


async def _wait_delivered(
    base: str, signer: tuple[str, str], codes: list[str], limit: float
) -> list[dict[str, Any]]:
    """Poll the dossiers until no notice is still on its way; return their views."""
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession(base) as session:
        while True:
            views = await _views(session, signer, codes)
            moving = [n for v in views for n in v.get("notices", []) if on_its_way(n)]
            if not moving or time.monotonic() > deadline:
                return views
            await asyncio.sleep(0.5)


def _summary(demo: Demo, outcome: Outcome) -> None:
    """Dossiers, notices by channel and state, flags by rule with the officer."""
    views = outcome.views
    random_count = len(outcome.codes) - outcome.scripted
    demo.say(
        f"\nSummary: {len(outcome.codes)} dossiers posted "
        f"({outcome.scripted} scripted, {random_count} random)"
    )
    notices = Counter(
        (n.get("channel") or "no channel", n["state"]) for v in views for n in v.get("notices", [])
    )
    channels = sorted({channel for channel, _ in notices})
    demo.say("  notices:")
    for channel in channels:
        states = ", ".join(
            f"{count} {state}" for (c, state), count in sorted(notices.items()) if c == channel
        )
        demo.say(f"    {channel:<12} {states}")
    flags = [(f, v["code"]) for v in views for f in v.get("flags", [])]
    demo.say(f"  audit flags: {len(flags)}")
    for flag, code in sorted(flags, key=lambda item: item[0]["rule"]):
        officer = flag.get("officer") or {}
        who = f"{officer.get('name')} ({officer.get('id')})" if officer else "-"
        # Named when another agency is at fault (a late consultation answer).
        agency = flag.get("agency")
        agency = f", agency {agency}" if agency and not code.startswith(agency) else ""
        demo.say(f"    {flag['rule']:<30} {who:<28} {code}{agency}")


def find_problems(outcome: Outcome, alerts: dict[str, Any]) -> None:
    """Add a problem for each part of the demo that did not do what it shows."""
    fired = {f["rule"] for v in outcome.views for f in v.get("flags", [])}
    for rule in EXPECTED_RULES:
        if rule not in fired:
            outcome.problems.append(f"the audit rule {rule} did not fire")
    for view in outcome.views:
        for notice in view.get("notices", []):
            if on_its_way(notice) or notice["state"] == "failed":
                outcome.problems.append(
                    f"notice {notice['kind']} of {view['code']} is {notice['state']}"
                    + (f": {notice['last_error']}" if notice.get("last_error") else "")
                )
    for name, alert in alerts.items():
        outcome.problems.append(f"/readyz reports a {name} alert: {alert}")


async def _alerts(base: str, ops_token: str) -> dict[str, Any]:
    """The detail of /readyz (it needs the ops token): alerts, and checks when not ready."""
    bearer = {"Authorization": f"Bearer {ops_token}"}
    async with (
        aiohttp.ClientSession(base) as session,
        session.get("/readyz", headers=bearer) as response,
    ):
        body = await response.json()
    alerts: dict[str, Any] = body.get("alerts", {})
    if response.status != 200:
        alerts["readiness"] = body.get("checks")
    return alerts


def _report_problems(demo: Demo, problems: list[str]) -> None:
    bar = "!" * 78
    demo.say(f"\n{bar}\n✗ THE DEMO IS BROKEN — {len(problems)} problem(s):")
    for problem in problems:
        demo.say(f"  ✗ {problem}")
    demo.say(f"  details in {demo.log_path}\n{bar}")


async def _show(
    demo: Demo, settings: Settings, outcome: Outcome, dossiers: int, delay: float, stay: bool
) -> None:
    earlier = await demo.resume(settings)
    base = await demo.start(settings)
    signer = next(iter(settings.event_sources.items()))
    calendar = WorkingCalendar(
        load_overrides(settings.holiday_overrides_file or DEFAULT_OVERRIDES_FILE),
        tz=settings.time_zone,
    )
    shop = OneStopShop(
        seed=secrets.randbits(32),
        first_sequence=earlier,
        now=datetime.now(calendar.tz),
        calendar=calendar,
    )
    demo.say("\nThe one-stop-shop posts what happened (times are when it happened):")
    posted = await _post_stories(demo, base, signer, shop, dossiers, delay, outcome)
    user = await _chat_story(demo, posted, outcome)
    if user is not None and not outcome.problems:
        now = datetime.now(calendar.tz)
        outcome.problems += await close_the_loop(
            demo.say, base, settings, posted[0]["code"], outcome.codes, _months(now), now
        )
    outcome.views = await _wait_delivered(base, signer, outcome.codes, limit=60)
    _summary(demo, outcome)
    find_problems(outcome, await _alerts(base, settings.ops_token))
    if demo.worker is not None and demo.worker.poll() is not None:
        outcome.problems.append(f"the worker exited with status {demo.worker.returncode}")
    if outcome.problems:
        _report_problems(demo, outcome.problems)
    else:
        demo.say(
            "\n✓ every event accepted, every notice delivered, every rule fired, "
            "every chat answered"
        )
    if stay:
        tthc = tthc_command()
        source, secret = signer
        demo.say("\nLook at a dossier's whole story (signed request, printed as JSON):")
        for code in outcome.codes[:3]:
            demo.say(
                f"  {tthc} get /v1/dossiers/{code} --url {base} --source {source} --secret {secret}"
            )
        if user is not None:
            demo.say(f"\nChat as {user.name} (or any demo citizen) on {demo.links['zalo']}")
        demo.say(f"What runs, with every link: {base}/")
        demo.say(
            f"The citizen page (no Zalo needed): {base}/tra-cuu, or the link in any"
            f" invitation SMS on {demo.links['esms']}"
        )
        demo.say("Metrics and readiness detail need the ops token (OPS_TOKEN):")
        demo.say(f'  curl -H "Authorization: Bearer {settings.ops_token}" {base}/metrics')
        demo.say(f"\nThe staff console (1022 desk, auditors, admin): {base}/console/")
        for username, password, role in await console_accounts(settings, datetime.now(UTC)):
            demo.say(f"  {role:<8} {username} / {password}")
        demo.say("\nEverything keeps running; Ctrl+C stops it.")
        await asyncio.Event().wait()


async def run(demo: Demo, settings: Settings, *, dossiers: int, delay: float, stay: bool) -> int:
    """Run the demo until done (``stay=False``) or until SIGINT/SIGTERM."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    outcome = Outcome()
    try:
        await _show(demo, settings, outcome, dossiers, delay, stay)
    except asyncio.CancelledError:
        demo.say("\nStopping…")
        if not stay:
            return 130  # interrupted before it could check everything
    finally:
        await demo.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return 1 if outcome.problems else 0


def _months(now: datetime) -> tuple[str, str]:
    """Last month and this one: the demo's stories happened over the past weeks."""
    last = (now.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    return last, now.strftime("%Y-%m")


def _log_to(path: Path) -> None:
    """Send every log line (JSON, phones masked) to ``path`` instead of the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(
    settings: Settings, *, dossiers: int, delay: float, stay: bool, allow_remote: bool = False
) -> int:
    """``tthc demo``: returns 1 when a part of the demo is broken, 2 when it refuses to run."""
    remote = remote_services(settings)
    if remote and not allow_remote:
        print(
            f"tthc demo: {' and '.join(remote)} not on this machine; the demo writes sample "
            "dossiers there. Use local ones, or pass --allow-remote if that is what you want",
            file=sys.stderr,
        )
        return 2
    var = Path.cwd() / "var"
    var.mkdir(parents=True, exist_ok=True)
    lock = _hold_lock(var / "demo.lock")
    if lock is None:
        print(
            f"tthc demo: another demo is running on {var} (its database, Redis keys and "
            "worker would be shared); stop it first",
            file=sys.stderr,
        )
        return 2
    log_path = var / "demo.log"
    _log_to(log_path)
    demo = Demo(settings, sys.stdout, log_path)
    demo.say(f"· logs (JSON) go to {log_path}")
    # Until the event loop takes over, SIGTERM stops the demo like Ctrl+C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        ready = demo.prepare()
        return asyncio.run(run(demo, ready, dossiers=dossiers, delay=delay, stay=stay))
    except KeyboardInterrupt:
        return 0 if stay else 130
    finally:
        if demo.worker is not None:
            _stop_group(demo.worker)
        if demo.private_redis is not None:
            demo.private_redis.stop()
        lock.close()


def _hold_lock(path: Path) -> TextIO | None:
    """An exclusive lock on ``path`` for as long as the file stays open; None if another
    process holds it. The kernel releases it when the process ends, however it ends."""
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
