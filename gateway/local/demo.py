"""``tthc demo``: the whole gateway on one machine with sample traffic you can watch.

Embedded SQLite, the local Redis (or a private redis-server when none answers), the
HTTP service, local fakes of the eSMS and SpeedSMS APIs (each with a page listing the
SMS it received) and of the Zalo platform (OAuth, OA messages, ZNS, signed webhooks, and
a chat page to talk to the OA as a citizen), a worker, and a simulated one-stop-shop
posting signed events through the real API. A scripted citizen then follows the OA,
looks up their dossier and reports a false closure, and the chat page's address is
printed so anyone can do the same.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from contextlib import suppress
from typing import Any, TextIO

import aiohttp
from aiohttp import web

from gateway.domain.phones import normalize_phone
from gateway.http.app import create_app
from gateway.http.signing import signed_headers
from gateway.local.redis_server import PrivateRedis, free_port, reachable
from gateway.local.simulator import OneStopShop
from gateway.settings import Settings
from gateway.storage import migrate
from providers.fakes.sms import FakeSmsCentre, create_esms_app, create_speedsms_app
from providers.fakes.zalo import create_app as create_zalo_app
from providers.fakes.zalo_state import FakeUser, FakeZalo

DEMO_SOURCE = "demo-onestop"


class Demo:
    """Everything the demo starts, so it can all be stopped again."""

    def __init__(self, settings: Settings, out: TextIO) -> None:
        self.base_settings = settings
        self.out = out
        self.private_redis: PrivateRedis | None = None
        self.runners: list[web.AppRunner] = []
        self.worker: subprocess.Popen[bytes] | None = None
        self.overrides: dict[str, str] = {}
        self.zalo = FakeZalo(receipt_delay=1.0)

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
        sources = s.env.get("EVENT_SOURCES") or f"{DEMO_SOURCE}:{secrets.token_hex(16)}"
        self.esms_port, self.speedsms_port = free_port(), free_port()
        self.zalo_port = free_port()
        zalo_base = f"http://127.0.0.1:{self.zalo_port}"
        base = f"http://{s.http_host}:{port}"
        self.overrides = {
            "DATABASE_URL": s.database_url,
            "REDIS_URL": redis_url,
            "HTTP_PORT": str(port),
            "EVENT_SOURCES": sources,
            "PUBLIC_BASE_URL": base,
            "SMS_PROVIDERS": "esms,speedsms",
            "ESMS_BASE_URL": f"http://127.0.0.1:{self.esms_port}",
            "ESMS_API_KEY": "demo-key",
            "ESMS_SECRET_KEY": "demo-secret",
            "ESMS_BRANDNAME": "TTHC-DEMO",
            "SPEEDSMS_BASE_URL": f"http://127.0.0.1:{self.speedsms_port}",
            "SPEEDSMS_TOKEN": "demo-token",
            "SPEEDSMS_SENDER": "TTHC-DEMO",
            "SMS_WEBHOOK_SECRET": secrets.token_hex(12),
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
            "LOG_LEVEL": "WARNING",
        }
        settings = Settings.from_mapping({**s.env, **self.overrides})
        migrate.upgrade(settings.database_url)
        self.say(f"· database {settings.database_url} migrated")
        return settings

    async def start(self, settings: Settings) -> str:
        base = settings.public_base_url
        receipts = f"{base}/webhooks/sms/speedsms/{settings.sms_webhook_secret}"
        fakes = (
            (create_esms_app(FakeSmsCentre(receipt_delay=1.0)), self.esms_port),
            (
                create_speedsms_app(FakeSmsCentre(receipt_delay=1.0, callback_url=receipts)),
                self.speedsms_port,
            ),
            (create_zalo_app(self.zalo), self.zalo_port),
            (create_app(settings), settings.http_port),
        )
        self.zalo.webhook_url = f"{base}/webhooks/zalo"
        for app, port in fakes:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(
                runner, "127.0.0.1" if app is not fakes[-1][0] else settings.http_host, port
            ).start()
            self.runners.append(runner)
        self.worker = self._start_worker()
        self.say(f"· gateway on {base}  (health {base}/readyz, metrics {base}/metrics)")
        self.say(f"· watch the SMS arrive at the fake eSMS:  http://127.0.0.1:{self.esms_port}/")
        self.say(
            f"  (the fake SpeedSMS, used when eSMS fails: http://127.0.0.1:{self.speedsms_port}/)"
        )
        self.say(
            f"· chat with the OA as a citizen on the fake Zalo: http://127.0.0.1:{self.zalo_port}/"
        )
        return base

    def _start_worker(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "worker"],
            env={**os.environ, **self.overrides},
            stdout=subprocess.DEVNULL,
        )

    async def stop(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            with suppress(subprocess.TimeoutExpired):
                self.worker.wait(15)
        for runner in reversed(self.runners):
            await runner.cleanup()
        if self.private_redis is not None:
            self.private_redis.stop()


def _free(host: str, port: int) -> bool:
    try:
        with socket.create_server((host, port)):
            return True
    except OSError:
        return False


async def _post(
    session: aiohttp.ClientSession, source: str, secret: str, body: dict[str, Any]
) -> tuple[int, Any]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers = signed_headers(source, secret, raw, time.time())
    headers["Content-Type"] = "application/json"
    async with session.post("/v1/events", data=raw, headers=headers) as response:
        return response.status, await response.json()


async def _post_stories(
    demo: Demo, base: str, source: str, secret: str, dossiers: int, delay: float
) -> list[dict[str, Any]]:
    shop = OneStopShop.starting_now()
    posted: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(base) as session:
        for _ in range(dossiers):
            dossier = shop.dossier()
            posted.append(dossier)
            for posting in shop.story(dossier):
                status, answer = await _post(session, source, secret, posting.body)
                fresh = [n["kind"] for n in answer.get("notices", []) if not n.get("duplicate")]
                notices = "(replayed)" if status == 200 else ",".join(fresh) or "-"
                flags = ",".join(f["rule"] for f in answer.get("flags", [])) or "-"
                demo.say(
                    f"→ {posting.body['type']:<32} {dossier['code']}  HTTP {status}"
                    f"  notices={notices}  flags={flags}"
                )
                if delay:
                    await asyncio.sleep(delay)
            shop.advance()
    return posted


# What the scripted citizen does: (what the terminal shows, the act).
_CHAT_SCRIPT = (
    ("follows the OA", "follow", ""),
    ("types: {text}", "text", "Cho tôi tra cứu hồ sơ {code}"),
    ("shares their Zalo phone number", "share", ""),
    ("taps: Báo xong nhưng chưa có kết quả", "click", "#report_false {code}"),
    ("types: {text}", "text", "Tôi đến quầy nhưng cán bộ nói chưa có kết quả."),
)


async def _chat_story(demo: Demo, dossiers: list[dict[str, Any]]) -> FakeUser | None:
    """A citizen of a posted dossier talks to the OA; prints both sides."""
    zalo = demo.zalo
    owners = []
    for dossier in dossiers:
        phone = normalize_phone(dossier["applicant"]["phone"])
        if phone.ok and phone.e164:
            user = zalo.add_user(dossier["applicant"]["name"], phone.e164)
            owners.append((user, dossier))
    if not owners:
        return None
    user, dossier = owners[0]
    demo.say(f"\nOn Zalo, {user.name} (owner of {dossier['code']}):")
    for shown, act, argument in _CHAT_SCRIPT:
        text = argument.format(code=dossier["code"])
        demo.say(f"  👤 {shown.format(text=text)}")
        before = len(zalo.messages_for(user.user_id))
        if act == "follow":
            await zalo.follow(user.user_id)
        elif act == "share":
            await zalo.share_info(user.user_id)
        elif act == "click":
            await zalo.click(user.user_id, text)
        else:
            await zalo.send_text(user.user_id, text)
        for reply in await _replies(zalo, user.user_id, before):
            demo.say("  🏛  " + reply.replace("\n", "\n     "))
    return user


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


async def _wait_delivered(
    base: str, source: str, secret: str, codes: list[str], limit: float
) -> dict[str, int]:
    """Poll the dossiers until no notice is still on its way; count the final states."""
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession(base) as session:
        while True:
            states: dict[str, int] = {}
            for code in codes:
                headers = signed_headers(source, secret, b"", time.time())
                async with session.get(f"/v1/dossiers/{code}", headers=headers) as response:
                    view = await response.json()
                for notice in view.get("notices", []):
                    states[notice["state"]] = states.get(notice["state"], 0) + 1
            moving = sum(states.get(s, 0) for s in ("created", "queued", "sending", "sent"))
            if not moving or time.monotonic() > deadline:
                return states
            await asyncio.sleep(0.5)


async def run(demo: Demo, settings: Settings, *, dossiers: int, delay: float, stay: bool) -> int:
    base = await demo.start(settings)
    source, secret = next(iter(settings.event_sources.items()))
    try:
        posted = await _post_stories(demo, base, source, secret, dossiers, delay)
        codes = [d["code"] for d in posted]
        states = await _wait_delivered(base, source, secret, codes, limit=60)
        summary = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
        demo.say(f"\nNotices: {summary}")
        demo.say("\nLook at a dossier's whole story (signed request, printed as JSON):")
        for code in codes[:3]:
            demo.say(
                f"  tthc get /v1/dossiers/{code} --url {base} --source {source} --secret {secret}"
            )
        user = await _chat_story(demo, posted)
        if user is not None:
            page = f"http://127.0.0.1:{demo.zalo_port}/"
            demo.say(f"\nChat as {user.name} (or any demo citizen) on {page}")
            demo.say("  hotline staff read and answer reports: GET /v1/reports (tthc user add …)")
        if stay:
            demo.say("\nEverything keeps running; Ctrl+C stops it.")
            with suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
    finally:
        await demo.stop()
    return 0


def main(settings: Settings, *, dossiers: int, delay: float, stay: bool) -> int:
    demo = Demo(settings, sys.stdout)
    try:
        ready = demo.prepare()
        return asyncio.run(run(demo, ready, dossiers=dossiers, delay=delay, stay=stay))
    except KeyboardInterrupt:
        return 0
    finally:
        if demo.private_redis is not None:
            demo.private_redis.stop()
