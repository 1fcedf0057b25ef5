"""Real Redis and PostgreSQL for the test suite, without touching anyone else's data.

Redis: the server at ``TEST_REDIS_URL`` (default the local one) under a per-run key
prefix, or a private ``redis-server`` when none answers. PostgreSQL: the server at
``TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``), each run in
schemas of its own that it drops afterwards; if no server answers, the local cluster is
started when this machine has one; otherwise the PostgreSQL tests are skipped with a
message saying so.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess

import asyncpg

from gateway.local.redis_server import PrivateRedis, reachable

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def redis_url() -> tuple[str, PrivateRedis | None]:
    url = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS)
    if reachable(url):
        return url, None
    private = PrivateRedis.start()
    return private.url, private


async def _pg_answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def postgres_url() -> tuple[str | None, str]:
    """The server URL, or None and the reason the PostgreSQL tests will be skipped."""
    url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    if asyncio.run(_pg_answers(url)):
        return url, ""
    clusters = glob.glob("/etc/postgresql/*/main")
    if shutil.which("pg_ctlcluster") and clusters:
        version = clusters[0].split("/")[3]
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if asyncio.run(_pg_answers(url)):
            return url, ""
    return None, f"no PostgreSQL server answers at {url} and none could be started here"
