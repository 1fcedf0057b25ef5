"""Zalo figures for `make bench`: webhook acknowledgement and citizen message → reply.

* Webhook acknowledgement: signed ``user_send_text`` webhooks posted open-loop at a fixed
  rate (500/s) to ``tthc serve``; p50/p99 of the answer time, next to a bare aiohttp
  handler paced the same way by the same client in the same run.
* Message → reply: simulated citizens of the fake Zalo platform (in this process) type a
  message; the time until the OA's reply reaches the fake, through the webhook, the
  chat queue, a ``tthc worker`` and the OA API. Compared with the enqueue-to-finish time
  of a no-op RQ job through one worker at the same rate, the floor of any queued reply.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web
from redis import Redis
from rq import Queue

from bench.common import wait_http
from bench.delivery import noop
from gateway.local.redis_server import free_port
from providers.fakes.zalo import FakeZalo
from providers.fakes.zalo import create_app as create_zalo_app
from providers.zalo.webhook import sign

ROOT = Path(__file__).resolve().parent.parent
PREFIX = f"tthc-bench-chat-{os.getpid()}:"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def _paced(count: int, rate: float, send: Callable[[int], Awaitable[None]]) -> list[float]:
    """Start ``send(i)`` at i/rate seconds (open loop); each call's duration in ms."""
    durations: list[float] = []
    start = time.perf_counter()

    async def one(i: int) -> None:
        began = time.perf_counter()
        await send(i)
        durations.append((time.perf_counter() - began) * 1000)

    tasks = []
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return durations


def _env(
    database_url: str, redis_url: str, port: int, zalo: FakeZalo, zalo_base: str
) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": PREFIX,
        "EVENT_SOURCES": "bench:bench-secret-0123456789abcdef01234567",
        "HTTP_PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "ZALO_APP_ID": zalo.app_id,
        "ZALO_APP_SECRET": zalo.app_secret,
        "ZALO_OA_SECRET_KEY": zalo.oa_secret_key,
        "ZALO_REFRESH_TOKEN": next(iter(zalo.refresh_tokens)),
        "ZALO_OAUTH_BASE_URL": zalo_base,
        "ZALO_OA_BASE_URL": zalo_base,
        "ZALO_ZNS_BASE_URL": zalo_base,
        "QUIET_HOURS": "",
        "LOG_LEVEL": "WARNING",
    }


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        process.terminate()
        process.wait(15)


def _forget(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        Queue(f"{PREFIX}chat", connection=redis).delete(delete_jobs=True)
        for key in redis.scan_iter(match=f"{PREFIX}*"):
            redis.delete(key)
    finally:
        redis.close()


def _signed_texts(zalo: FakeZalo, count: int, users: int) -> list[tuple[bytes, dict[str, str]]]:
    requests = []
    for i in range(count):
        payload = {
            "app_id": zalo.app_id,
            "user_id_by_app": "9791221850460463001",
            "event_name": "user_send_text",
            "timestamp": str(int(time.time() * 1000)),
            "sender": {"id": str(7_000_000_000_000_000_000 + i % users)},
            "recipient": {"id": zalo.oa_id},
            "message": {"text": "tra cứu hồ sơ", "msg_id": f"bench{i:08d}"},
        }
        raw = orjson.dumps(payload)
        mac = sign(raw, zalo.app_id, payload["timestamp"], zalo.oa_secret_key)
        headers = {
            "Content-Type": "application/json",
            "X-ZEvent-Signature": f"mac={mac}",
            "X-ZEvent-Server": "OA OpenAPI",
        }
        requests.append((raw, headers))
    return requests


async def _post_paced(
    url: str, requests: list[tuple[bytes, dict[str, str]]], rate: float
) -> list[float]:
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(i: int) -> None:
            raw, headers = requests[i]
            async with session.post(url, data=raw, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"webhook answered {response.status}")

        return await _paced(len(requests), rate, send)


def webhook_ack(
    database_url: str, redis_url: str, rate: float = 500, seconds: int = 10, rounds: int = 3
) -> tuple[tuple[float, float], tuple[float, float]]:
    """((p50, p99) ms of the gateway's webhook, (p50, p99) ms of a bare handler), each the
    median over ``rounds`` interleaved rounds."""
    zalo = FakeZalo()
    count = int(rate * seconds)
    bare_port, port = free_port(), free_port()
    env = _env(database_url, redis_url, port, zalo, "http://127.0.0.1:9")
    subprocess.run(
        [sys.executable, "-m", "gateway", "migrate"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    processes = [
        _start([sys.executable, str(ROOT / "bench" / "bare_server.py"), str(bare_port)], env),
        _start([sys.executable, "-m", "gateway", "serve"], env),
    ]
    try:
        bare_url, url = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{port}"
        wait_http(f"http://127.0.0.1:{bare_port}/")
        wait_http(f"http://127.0.0.1:{port}/healthz")
        # Warm both up, then measure the bare handler and the webhook the same way.
        warm = _signed_texts(zalo, 500, 100)
        asyncio.run(_post_paced(f"{bare_url}/webhooks/zalo", warm, rate))
        asyncio.run(_post_paced(f"{url}/webhooks/zalo", warm, rate))
        # Interleaved rounds (bare, gateway, bare, ...), each with messages never seen
        # before; the medians of the rounds' p50 and p99 are reported.
        ours_p: list[tuple[float, float]] = []
        bare_p: list[tuple[float, float]] = []
        for round_ in range(rounds):
            requests = _fresh(zalo, _signed_texts(zalo, count, 1000), f"r{round_}-")
            bare = asyncio.run(_post_paced(f"{bare_url}/webhooks/zalo", requests, rate))
            ours = asyncio.run(_post_paced(f"{url}/webhooks/zalo", requests, rate))
            bare_p.append((_percentile(bare, 0.5), _percentile(bare, 0.99)))
            ours_p.append((_percentile(ours, 0.5), _percentile(ours, 0.99)))
    finally:
        _stop(processes)
        _forget(redis_url)
    return _medians(ours_p), _medians(bare_p)


def _medians(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(p for p, _ in pairs), statistics.median(q for _, q in pairs)


def _fresh(
    zalo: FakeZalo, requests: list[tuple[bytes, dict[str, str]]], tag: str
) -> list[tuple[bytes, dict[str, str]]]:
    """The same messages under new ids (``msg_id`` is the webhook's dedupe key), signed again."""
    fresh = []
    for raw, headers in requests:
        raw = raw.replace(b'"bench', b'"' + tag.encode())
        mac = sign(raw, zalo.app_id, _ts(raw), zalo.oa_secret_key)
        fresh.append((raw, headers | {"X-ZEvent-Signature": f"mac={mac}"}))
    return fresh


def _ts(raw: bytes) -> str:
    return str(orjson.loads(raw)["timestamp"])


async def _conversation(
    base_port: int, zalo: FakeZalo, messages: int, rate: float, users: int
) -> list[float]:
    citizens = [zalo.add_user(f"Công dân {i}", None, follows=True) for i in range(users)]
    sent_at: dict[int, float] = {}

    async def send(i: int) -> None:
        user = citizens[i % users]
        sent_at[i] = time.time()
        status = await zalo.send_text(user.user_id, "menu")
        if status != 200:
            raise RuntimeError(f"webhook answered {status}")

    await _paced(messages, rate, send)
    for n, user in enumerate(citizens):
        expected = len(range(n, messages, users))
        await zalo.wait_for_messages(user.user_id, expected, within=60)
    # Replies to one citizen come in the order of their messages.
    by_user: dict[str, list[float]] = {}
    for message in zalo.sent:
        by_user.setdefault(message.user_id or "", []).append(message.at)
    delays = []
    for i in range(messages):
        user = citizens[i % users].user_id
        delays.append((by_user[user].pop(0) - sent_at[i]) * 1000)
    return delays


def message_to_reply(
    database_url: str, redis_url: str, messages: int = 300, rate: float = 20, users: int = 60
) -> float:
    """p95 ms from a citizen's message (webhook posted) to the OA reply at the fake."""
    zalo = FakeZalo()
    zalo_port, port = free_port(), free_port()
    env = _env(database_url, redis_url, port, zalo, f"http://127.0.0.1:{zalo_port}")
    zalo.webhook_url = f"http://127.0.0.1:{port}/webhooks/zalo"
    subprocess.run(
        [sys.executable, "-m", "gateway", "migrate"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )

    async def run() -> list[float]:
        runner = web.AppRunner(create_zalo_app(zalo), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", zalo_port).start()
        processes = [
            _start([sys.executable, "-m", "gateway", "serve"], env),
            _start([sys.executable, "-m", "gateway", "worker", "--no-cron"], env),
        ]
        try:
            await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/healthz")
            await asyncio.sleep(2)  # the worker is listening
            await _conversation(port, zalo, 40, rate, users)  # warm-up
            zalo.sent.clear()
            return await _conversation(port, zalo, messages, rate, users)
        finally:
            _stop(processes)
            await runner.cleanup()

    try:
        return _percentile(asyncio.run(run()), 0.95)
    finally:
        _forget(redis_url)


def rq_noop_latency(redis_url: str, jobs: int = 300, rate: float = 20) -> float:
    """p95 ms from enqueue to the end of a no-op job, one SimpleWorker listening."""
    name = f"{PREFIX}noop"
    redis = Redis.from_url(redis_url)
    queue = Queue(name, connection=redis)
    script = (
        "from redis import Redis; from rq import Queue, SimpleWorker;"
        f"r = Redis.from_url({redis_url!r});"
        f"SimpleWorker([Queue({name!r}, connection=r)], connection=r).work("
        "logging_level='WARNING')"
    )
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        time.sleep(2)
        started = []
        for _ in range(jobs):
            started.append((time.time(), queue.enqueue(noop)))
            time.sleep(max(0.0, 1 / rate))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(job.get_status(refresh=True) == "finished" for _, job in started[-5:]):
                break
            time.sleep(0.1)
        delays = []
        for at, job in started:
            job.refresh()
            if job.ended_at is None:
                raise RuntimeError("a no-op job did not finish")
            delays.append((job.ended_at.timestamp() - at) * 1000)
        return _percentile(delays, 0.95)
    finally:
        worker.terminate()
        worker.wait(15)
        queue.delete(delete_jobs=True)
        redis.close()


__all__ = ["message_to_reply", "rq_noop_latency", "webhook_ack"]
