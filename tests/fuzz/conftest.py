"""A real gateway on loopback for the HTTP fuzzing of this folder, driven with blocking clients.

``create_app`` runs in an event loop of its own thread (real SQLite file, real Redis
under a prefix of its own), so that schemathesis and raw sockets can call it with plain
blocking I/O. Every vendor is configured (Zalo, an SMS receipt secret, the ops token),
with one staff user per role that the fuzzing needs, a finished dossier and an open
handoff, so that requests reach the code behind authentication.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import uuid
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import pytest
import requests
from aiohttp import web

from gateway.http.app import create_app
from gateway.http.keys import DATABASE
from gateway.settings import Settings
from gateway.storage.staff import add_user
from tests.conftest import forget_queues
from tests.helpers import CODE, SOURCES
from tests.staff_helpers import seed_dossier, seed_handoff

T = TypeVar("T")

APP_ID: Final = "1234567890123"
OA_KEY: Final = "fuzz-oa-secret-key"
OPS_TOKEN: Final = "fuzz-ops-token"
RECEIPT_SECRET: Final = "fuzz-receipt-secret"
MAX_BODY: Final = 65_536
NOW: Final = datetime(2026, 4, 24, 9, 0, tzinfo=UTC)
# The settings that shape the API and its document (limits, which vendors are configured).
MAPPING: Final = {
    "EVENT_SOURCES": ",".join(f"{k}:{v}" for k, v in SOURCES.items()),
    "MAX_BODY_BYTES": str(MAX_BODY),
    "MAX_BATCH_EVENTS": "20",
    "OPS_TOKEN": OPS_TOKEN,
    "SMS_WEBHOOK_SECRET": RECEIPT_SECRET,
    "ZALO_APP_ID": APP_ID,
    "ZALO_APP_SECRET": "fuzz-app-secret",
    "ZALO_OA_SECRET_KEY": OA_KEY,
}


class ThreadedApp:
    """``create_app`` served on loopback by an event loop in a thread of its own, so that
    blocking clients (hypothesis, schemathesis, raw sockets) can drive it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def start(self) -> None:
        self.thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        app = create_app(self.settings)
        self.runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = int(self.runner.addresses[0][1])
        await self.prepare(app)

    async def prepare(self, app: web.Application) -> None:
        """What the served application needs before the first request (nothing here)."""

    def stop(self) -> None:
        if self.runner is not None:
            self.run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class LoopbackGateway(ThreadedApp):
    """The gateway with two staff users, a finished dossier and an open handoff."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.admin_token = ""
        self.session = requests.Session()

    async def prepare(self, app: web.Application) -> None:
        db = app[DATABASE]
        self.admin_token = await add_user(db.writer, "minh", "Cán bộ Minh", "admin", NOW)
        await add_user(db.writer, "hoa", "Cán bộ Hoa", "hotline", NOW)
        await seed_dossier(db.writer, CODE)
        await seed_handoff(db.writer, "zalo-user-1")

    def stop(self) -> None:
        self.session.close()
        super().stop()


@pytest.fixture(scope="module")
def loopback(
    sqlite_template: Path, redis_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoopbackGateway]:
    database = tmp_path_factory.mktemp("loopback") / "tthc.sqlite3"
    shutil.copyfile(sqlite_template, database)
    settings = Settings.from_mapping(
        MAPPING
        | {
            "DATABASE_URL": f"sqlite:///{database}",
            "REDIS_URL": redis_server,
            "REDIS_KEY_PREFIX": f"tthc-fuzz-{os.getpid()}-{uuid.uuid4().hex[:6]}:",
        }
    )
    gateway = LoopbackGateway(settings)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()
        forget_queues(settings)
