"""`tthc serve` with ``HTTP_WORKERS=2`` on PostgreSQL: both processes take events of the
same new dossiers at once, and every event is recorded once, with no group failing on the
dossier's unique key and falling back to one transaction per event."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from gateway.http.signing import signed_headers
from gateway.local.redis_server import free_port
from tests.conftest import forget_queues, truncate_postgres
from tests.helpers import SOURCES, event
from tests.processes.test_crash_recovery import _wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DOSSIERS = 60


async def _post(session: aiohttp.ClientSession, base: str, body: dict[str, Any]) -> int:
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers = signed_headers("onestop", SOURCES["onestop"], raw, time.time())
    headers["Content-Type"] = "application/json"
    async with session.post(f"{base}/v1/events", data=raw, headers=headers) as response:
        await response.read()
        return response.status


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def _bodies() -> list[dict[str, Any]]:
    """Each new dossier's received event twice (a resend reaching the other process) and
    two more events, side by side so that both processes hold them at the same time."""
    bodies = []
    for n in range(DOSSIERS):
        code = f"000.00.12.H19-240402-{n:04d}"
        received = event("dossier.received", code=code)
        bodies += [
            received,
            received,
            event("dossier.processing", code=code),
            event("dossier.fees_due", code=code, at="2024-04-03T09:00:00+07:00"),
        ]
    return bodies


async def test_two_http_processes_record_each_event_of_new_dossiers_once(
    postgres_schema: str, redis_server: str, tmp_path: Path
) -> None:
    from gateway.settings import Settings

    await truncate_postgres(postgres_schema)
    log = tmp_path / "serve.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    prefix = f"tthc-test-workers-{os.getpid()}-{time.monotonic_ns()}:"
    env = {
        **os.environ,
        "DATABASE_URL": postgres_schema,
        "REDIS_URL": redis_server,
        "REDIS_KEY_PREFIX": prefix,
        "EVENT_SOURCES": ",".join(f"{k}:{v}" for k, v in SOURCES.items()),
        "HTTP_PORT": str(port),
        "HTTP_WORKERS": "2",
        "LOG_LEVEL": "WARNING",
    }
    bodies = _bodies()
    server = _start(env, log)
    try:
        await _wait_ready(base, server, log)
        # A new connection per request: the kernel spreads them over both processes.
        connector = aiohttp.TCPConnector(force_close=True, limit=64)
        async with aiohttp.ClientSession(connector=connector) as session:
            statuses = await asyncio.gather(*(_post(session, base, b) for b in bodies))
    finally:
        server.terminate()
        server.wait(20)
        forget_queues(
            Settings.from_mapping({"REDIS_URL": redis_server, "REDIS_KEY_PREFIX": prefix})
        )

    written = log.read_text()
    assert Counter(statuses) == {202: 3 * DOSSIERS, 200: DOSSIERS}, written[-2000:]
    assert "retrying one by one" not in written
    assert "IntegrityError" not in written
    assert "event not recorded" not in written

    server_url, _, schema = postgres_schema.partition("?schema=")
    conn = await asyncpg.connect(server_url)
    try:
        per_event = await conn.fetch(
            f'SELECT event_id, COUNT(*) AS n FROM "{schema}".events GROUP BY event_id'
        )
        dossiers = await conn.fetchval(f'SELECT COUNT(*) FROM "{schema}".dossiers')
    finally:
        await conn.close()
    assert {row["event_id"] for row in per_event} == {b["id"] for b in bodies}
    assert {row["n"] for row in per_event} == {1}
    assert dossiers == DOSSIERS
