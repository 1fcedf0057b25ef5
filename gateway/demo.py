"""``tthc demo``: the whole gateway on one machine with sample traffic you can watch.

Embedded SQLite, the local Redis (or a private redis-server when none answers), the
HTTP service, and a simulated one-stop-shop posting signed events through the real API.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import sys
import time
from contextlib import suppress
from dataclasses import replace
from typing import TextIO

import aiohttp
from aiohttp import web

from gateway.http.app import create_app
from gateway.localredis import PrivateRedis, free_port, reachable
from gateway.settings import Settings
from gateway.signing import signed_headers
from gateway.simulator import OneStopShop
from gateway.storage import migrate

DEMO_SOURCE = "demo-onestop"


def prepare(settings: Settings, out: TextIO) -> tuple[Settings, PrivateRedis | None]:
    """Fill in what the demo needs: a source to sign with, a Redis, a migrated database."""
    private: PrivateRedis | None = None
    if not reachable(settings.redis_url):
        private = PrivateRedis.start()
        print(
            f"· no Redis at {settings.redis_url}; started a private one at {private.url}", file=out
        )
        settings = replace(settings, redis_url=private.url)
    if not settings.event_sources:
        settings = replace(settings, event_sources={DEMO_SOURCE: secrets.token_hex(16)})
    migrate.upgrade(settings.database_url)
    print(f"· database {settings.database_url} migrated", file=out)
    return settings, private


async def _post_stories(
    base: str, source: str, secret: str, dossiers: int, delay: float, out: TextIO
) -> list[str]:
    shop = OneStopShop.starting_now()
    codes: list[str] = []
    async with aiohttp.ClientSession(base) as session:
        for _ in range(dossiers):
            dossier = shop.dossier()
            codes.append(dossier["code"])
            for posting in shop.story(dossier):
                raw = json.dumps(posting.body, ensure_ascii=False).encode()
                headers = signed_headers(source, secret, raw, time.time())
                headers["Content-Type"] = "application/json"
                async with session.post("/v1/events", data=raw, headers=headers) as response:
                    answer = await response.json()
                notices = ",".join(n["kind"] for n in answer.get("notices", [])) or "-"
                flags = ",".join(f["rule"] for f in answer.get("flags", [])) or "-"
                print(
                    f"→ {posting.body['type']:<32} {dossier['code']}  HTTP {response.status}"
                    f"  notices={notices}  flags={flags}",
                    file=out,
                )
                if delay:
                    await asyncio.sleep(delay)
            shop.advance()
    return codes


async def run(settings: Settings, *, dossiers: int, delay: float, stay: bool, out: TextIO) -> int:
    """Serve, post the sample stories, print where to look; keep serving if ``stay``."""
    port = settings.http_port
    try:
        with socket.create_server((settings.http_host, port)):
            pass
    except OSError:
        port = free_port()
        print(f"· port {settings.http_port} is busy; using {port}", file=out)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, port).start()
    base = f"http://{settings.http_host}:{port}"
    print(
        f"· gateway listening on {base}  (health: {base}/readyz, metrics: {base}/metrics)", file=out
    )
    source, secret = next(iter(settings.event_sources.items()))
    try:
        codes = await _post_stories(base, source, secret, dossiers, delay, out)
        print("\nLook at a dossier's whole story (signed request, printed as JSON):", file=out)
        for code in codes[:3]:
            print(
                f"  tthc get /v1/dossiers/{code} --url {base} --source {source} --secret {secret}",
                file=out,
            )
        if stay:
            print("\nThe gateway keeps running; Ctrl+C stops it.", file=out)
            with suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
    finally:
        await runner.cleanup()
    return 0


def main(settings: Settings, *, dossiers: int, delay: float, stay: bool) -> int:
    out = sys.stdout
    settings, private = prepare(settings, out)
    try:
        return asyncio.run(run(settings, dossiers=dossiers, delay=delay, stay=stay, out=out))
    except KeyboardInterrupt:
        return 0
    finally:
        if private is not None:
            private.stop()
