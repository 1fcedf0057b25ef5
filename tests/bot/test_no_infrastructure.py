"""The bot's dialogs are tested without infrastructure: what they load proves it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INFRASTRUCTURE = ("redis", "rq", "sqlalchemy", "asyncpg", "aiosqlite", "gateway.chat")


def test_the_bot_and_its_in_memory_port_load_no_database_queue_or_redis_client() -> None:
    probe = (
        "import sys, bot.router, tests.bot.conftest, tests.bot.memory;"
        f"print(sorted(m for m in {INFRASTRUCTURE!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[]"
