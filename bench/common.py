"""Helpers shared by the benchmark modules."""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.request

import asyncpg  # type: ignore[import-untyped]


def wait_http(
    url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 30
) -> None:
    """Wait until ``url`` answers; fail at once if ``process`` (its server) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def drop_schema(url: str, schema: str) -> None:
    """Drop the bench's own PostgreSQL schema ``schema`` (and everything in it)."""

    async def drop() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


def pg_ok(url: str) -> bool:
    """Whether a PostgreSQL server answers at ``url`` (within 3 s)."""

    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=3)
        except (OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    return asyncio.run(probe())
