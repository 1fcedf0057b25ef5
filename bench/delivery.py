"""Delivery figures for `make bench`, each against a baseline measured in the same run.

* RQ's own ceiling: no-op jobs/s through one ``SimpleWorker`` process.
* Notices/s from the outbox to the fake eSMS through one ``tthc worker`` process
  (rate cap lifted; receipts off so only sending is measured), as a ratio of that ceiling.
* Light load: events posted one at a time, about 10 a second; the time from the
  gateway's 202 to the SMS recorded at the fake, p50 and p95.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from redis import Redis
from rq import Queue

from bench.common import wait_http
from gateway.http.signing import signed_headers_v2
from gateway.local.redis_server import free_port
from gateway.local.simulator import OneStopShop

SOURCE, SECRET = "bench", "bench-secret-0123456789abcdef01234567"


def noop() -> None:
    """The job RQ's ceiling is measured with."""


def rq_noop_rate(redis_url: str, jobs: int = 3000) -> float:
    name = f"tthc-bench-noop-{os.getpid()}"
    redis = Redis.from_url(redis_url)
    queue = Queue(name, connection=redis)
    with redis.pipeline() as pipe:
        for _ in range(jobs):
            queue.enqueue(noop, pipeline=pipe)
        pipe.execute()
    script = (
        "import sys; from redis import Redis; from rq import Queue, SimpleWorker;"
        f"r = Redis.from_url({redis_url!r});"
        f"SimpleWorker([Queue({name!r}, connection=r)], connection=r).work(burst=True,"
        " logging_level='WARNING')"
    )
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        capture_output=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    elapsed = time.perf_counter() - started
    queue.delete(delete_jobs=True)
    return jobs / elapsed


def _env(database_url: str, redis_url: str, prefix: str, port: int, esms: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        "EVENT_SOURCES": f"{SOURCE}:{SECRET}",
        "HTTP_PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "SMS_PROVIDERS": "esms",
        "ESMS_BASE_URL": f"http://127.0.0.1:{esms}",
        "ESMS_API_KEY": "bench",
        "ESMS_SECRET_KEY": "bench",
        "ESMS_BRANDNAME": "BENCH",
        "SMS_WEBHOOK_SECRET": "bench-receipts-0123456789abcdef0123",
        "SMS_RATE_PER_SECOND": "10000",
        "QUIET_HOURS": "",
        "LOG_LEVEL": "WARNING",
    }


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _fake_control(esms: int, body: dict[str, Any]) -> None:
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{esms}/_fake/mode",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def _fake_messages(esms: int) -> list[dict[str, Any]]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{esms}/_fake/messages", timeout=30) as r:
        messages: list[dict[str, Any]] = json.load(r)
        return messages


async def _post_all(base: str, bodies: list[dict[str, Any]], size: int = 500) -> None:
    async with aiohttp.ClientSession(base) as session:
        for start in range(0, len(bodies), size):
            raw = json.dumps({"events": bodies[start : start + size]}, ensure_ascii=False).encode()
            headers = signed_headers_v2(
                SOURCE, SECRET, "POST", "/v1/events/batch", raw, time.time()
            )
            headers["Content-Type"] = "application/json"
            async with session.post("/v1/events/batch", data=raw, headers=headers) as response:
                answer = await response.json()
                assert response.status == 200 and answer["rejected"] == 0, answer


def _receipts_only(count: int) -> list[dict[str, Any]]:
    shop = OneStopShop(seed=23)
    events = []
    for _ in range(count):
        dossier = shop.dossier()
        dossier["applicant"]["phone"] = "0912 345 678"
        events.append(next(shop.story(dossier)).body)
        shop.advance(1)
    return events


def start_stack(
    database_url: str, redis_url: str, prefix: str
) -> tuple[dict[str, str], int, int, subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """Migrate, then start the fake vendors (eSMS on a free port) and ``tthc serve``:
    (environment, gateway port, eSMS port, fake process, gateway process)."""
    port, esms = free_port(), free_port()
    env = _env(database_url, redis_url, prefix, port, esms)
    subprocess.run(
        [sys.executable, "-m", "gateway", "migrate"], env=env, check=True, capture_output=True
    )
    fake = _start(
        [sys.executable, "-m", "providers.fakes", "--esms-port", str(esms), "--speedsms-port", "0"],
        env,
    )
    server = _start([sys.executable, "-m", "gateway", "serve"], env)
    return env, port, esms, fake, server


def notices_per_second(database_url: str, redis_url: str, notices: int = 3000) -> float:
    """Outbox → fake eSMS through one worker process."""
    prefix = f"tthc-bench-{os.getpid()}:"
    env, port, esms, fake, server = start_stack(database_url, redis_url, prefix)
    try:
        wait_http(f"http://127.0.0.1:{esms}/_fake/mode")
        _fake_control(esms, {"receipts": "missing"})
        wait_http(f"http://127.0.0.1:{port}/healthz")
        asyncio.run(_post_all(f"http://127.0.0.1:{port}", _receipts_only(notices)))
        time.sleep(1.0)  # the gateway's enqueues are in flight
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "gateway", "worker", "--burst", "--no-cron"],
            env=env,
            check=True,
            capture_output=True,
        )
        elapsed = time.perf_counter() - started
        sent = len(_fake_messages(esms))
        if sent != notices:
            raise RuntimeError(f"{sent} SMS at the fake for {notices} notices")
        return notices / elapsed
    finally:
        for process in (server, fake):
            process.terminate()
            process.wait(15)
        redis = Redis.from_url(redis_url)
        for name in (f"{prefix}urgent", f"{prefix}bulk"):
            Queue(name, connection=redis).delete(delete_jobs=True)


async def _light_load(base: str, events: list[dict[str, Any]], rate: float) -> dict[str, float]:
    accepted: dict[str, float] = {}
    async with aiohttp.ClientSession(base) as session:
        for body in events:
            raw = json.dumps(body, ensure_ascii=False).encode()
            headers = signed_headers_v2(SOURCE, SECRET, "POST", "/v1/events", raw, time.time())
            headers["Content-Type"] = "application/json"
            async with session.post("/v1/events", data=raw, headers=headers) as response:
                assert response.status == 202, await response.text()
                accepted[body["dossier"]["code"]] = time.time()
            await asyncio.sleep(1 / rate)
    return accepted


def event_to_sms_latency(
    database_url: str, redis_url: str, events: int = 100
) -> tuple[float, float]:
    """(p50, p95) seconds from 202 to the SMS at the fake, at about 10 events/s."""
    prefix = f"tthc-bench-lat-{os.getpid()}:"
    env, port, esms, fake, server = start_stack(database_url, redis_url, prefix)
    processes = [fake, server, _start([sys.executable, "-m", "gateway", "worker"], env)]
    try:
        wait_http(f"http://127.0.0.1:{esms}/_fake/mode")
        wait_http(f"http://127.0.0.1:{port}/healthz")
        time.sleep(2)  # the worker is listening
        accepted = asyncio.run(_light_load(f"http://127.0.0.1:{port}", _receipts_only(events), 10))
        deadline = time.monotonic() + 30
        while len(messages := _fake_messages(esms)) < events and time.monotonic() < deadline:
            time.sleep(0.2)
        delays = sorted(
            datetime.fromisoformat(m["received_at"]).timestamp() - accepted[code]
            for m in messages
            for code in accepted
            if code in m["content"]
        )
        if len(delays) != events:
            raise RuntimeError(f"{len(delays)} SMS at the fake for {events} events")
        return delays[len(delays) // 2], delays[int(len(delays) * 0.95) - 1]
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(15)
        redis = Redis.from_url(redis_url)
        for name in (f"{prefix}urgent", f"{prefix}bulk"):
            Queue(name, connection=redis).delete(delete_jobs=True)


__all__ = ["event_to_sms_latency", "noop", "notices_per_second", "rq_noop_rate"]
