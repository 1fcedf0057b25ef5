"""`tthc serve` killed with SIGKILL in the middle of a stream of events loses nothing it
acknowledged and duplicates nothing when the one-stop-shop posts everything again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.http.signing import signed_headers, signed_headers_v2
from gateway.local.redis_server import free_port
from gateway.local.simulator import OneStopShop
from gateway.settings import Settings
from tests.helpers import SOURCES

pytestmark = pytest.mark.slow


def _start(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "EVENT_SOURCES": ",".join(f"{k}:{v}" for k, v in SOURCES.items()),
        "HTTP_PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    with log.open("ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


async def _wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()  # noqa: ASYNC240 - failure path
            try:
                async with session.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the gateway did not start")


async def _post(session: aiohttp.ClientSession, base: str, body: dict[str, Any]) -> int | None:
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers = signed_headers("onestop", SOURCES["onestop"], raw, time.time())
    headers["Content-Type"] = "application/json"
    try:
        async with session.post(f"{base}/v1/events", data=raw, headers=headers) as response:
            await response.read()
            return response.status
    except (TimeoutError, aiohttp.ClientError):
        return None  # no answer: the one-stop-shop must post it again


def _stories(count: int) -> list[list[dict[str, Any]]]:
    shop = OneStopShop(seed=7)
    stories = []
    for _ in range(count):
        dossier = shop.dossier()
        stories.append([p.body for p in shop.story(dossier)])
        shop.advance()
    return stories


async def _play(base: str, stories: list[list[dict[str, Any]]], answered: dict[str, int]) -> None:
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one_dossier(story: list[dict[str, Any]]) -> None:
            for body in story:
                status = await _post(session, base, body)
                if status is None:
                    return
                answered[body["id"]] = status

        await asyncio.gather(*(one_dossier(s) for s in stories))


async def _dossier(session: aiohttp.ClientSession, base: str, code: str) -> dict[str, Any]:
    path = f"/v1/dossiers/{code}"
    headers = signed_headers_v2("onestop", SOURCES["onestop"], "GET", path, b"", time.time())
    async with session.get(f"{base}{path}", headers=headers) as response:
        assert response.status == 200, code
        body: dict[str, Any] = await response.json()
        return body


async def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stories = _stories(60)
    answered: dict[str, int] = {}

    server = _start(settings, port, log)
    try:
        await _wait_ready(base, server, log)
        player = asyncio.create_task(_play(base, stories, answered))
        while len(answered) < 120:  # noqa: ASYNC110 - polls a plain dict filled by the player
            await asyncio.sleep(0.005)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        await player
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    acknowledged = {event_id for event_id, status in answered.items() if status in (200, 202)}
    assert len(acknowledged) >= 120, (Counter(answered.values()), log.read_text()[-2000:])

    server = _start(settings, port, log)
    try:
        await _wait_ready(base, server, log)
        async with aiohttp.ClientSession() as session:
            # Everything acknowledged before the kill survived, whole.
            recorded = set()
            for story in stories:
                view = await _dossier_or_none(session, base, story[0]["dossier"]["code"])
                if view is not None:
                    recorded |= {e["id"] for e in view["timeline"]}
            assert acknowledged <= recorded

            # The one-stop-shop posts every event again: replays, never conflicts.
            replay: dict[str, int] = {}
            await _play(base, stories, replay)
            assert all(status in (200, 202) for status in replay.values()), Counter(replay.values())
            for event_id in acknowledged:
                assert replay[event_id] == 200

            for story in stories:
                view = await _dossier(session, base, story[0]["dossier"]["code"])
                assert [e["id"] for e in view["timeline"]] == [
                    b["id"] for b in sorted(_unique(story), key=lambda b: b["occurred_at"])
                ]
                kinds = Counter(n["kind"] for n in view["notices"])
                assert all(count == 1 for kind, count in kinds.items() if kind != "supplement")
                expected = {_NOTICE[b["type"]] for b in story if b["type"] in _NOTICE}
                assert set(kinds) == expected
    finally:
        server.terminate()
        server.wait(10)


_NOTICE = {
    "dossier.received": "receipt",
    "dossier.supplement_requested": "supplement",
    "dossier.withdrawn": "withdrawal",
    "dossier.delayed": "apology",
    "dossier.finished": "invitation",
}


def _unique(story: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for body in story:
        seen.setdefault(body["id"], body)
    return list(seen.values())


async def _dossier_or_none(
    session: aiohttp.ClientSession, base: str, code: str
) -> dict[str, Any] | None:
    path = f"/v1/dossiers/{code}"
    headers = signed_headers_v2("onestop", SOURCES["onestop"], "GET", path, b"", time.time())
    async with session.get(f"{base}{path}", headers=headers) as response:
        if response.status == 404:
            return None
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body
