"""A chat rig: the gateway on loopback, the fake Zalo platform posting signed webhooks
to it, both SMS vendor fakes, and a real `tthc worker` process draining the chat queue.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer
from redis import Redis
from rq import Queue, Worker
from rq.scheduler import RQScheduler

from gateway.chat.queue import chat_queue_name
from gateway.http.app import create_app
from gateway.settings import Settings
from gateway.storage import staff as staff_store
from gateway.storage.db import create_engine
from providers.fakes.sms import FakeSmsCentre, create_esms_app, create_speedsms_app
from providers.fakes.zalo import create_app as create_zalo_app
from providers.fakes.zalo_state import FakeUser, FakeZalo, SentMessage
from tests.conftest import forget_queues
from tests.delivery.conftest import SMS_ENV, WEBHOOK_SECRET
from tests.helpers import CODE, Gateway, event

# The phone of tests.helpers.DOSSIER's applicant, and another citizen's.
OWNER_PHONE = "+84912345678"
STRANGER_PHONE = "+84987654321"


def zalo_env(fake: FakeZalo, base: str, **extra: str) -> dict[str, str]:
    return {
        "ZALO_APP_ID": fake.app_id,
        "ZALO_APP_SECRET": fake.app_secret,
        "ZALO_OA_SECRET_KEY": fake.oa_secret_key,
        "ZALO_REFRESH_TOKEN": next(iter(fake.refresh_tokens)),
        "ZALO_OAUTH_BASE_URL": base,
        "ZALO_OA_BASE_URL": base,
        "ZALO_ZNS_BASE_URL": base,
        "CHAT_HOTLINE": "1022",
        **extra,
    }


@dataclass
class ChatRig:
    gateway: Gateway
    zalo: FakeZalo
    esms: FakeSmsCentre
    settings: Settings
    worker_env: dict[str, str]
    worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        """A long-running `tthc worker` (no cron: tests run the relay and sweep)."""
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "gateway", "worker", "--no-cron"],
            env=self.worker_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # Wait until it listens and its scheduler runs: an RQ worker stopped while it
        # starts its scheduler hangs until killed.
        redis = Redis.from_url(self.settings.redis_url)
        queue = Queue(chat_queue_name(self.settings), connection=redis)
        try:
            deadline = time.monotonic() + 15
            scheduler = RQScheduler.get_locking_key(queue.name)
            while self.worker.poll() is None and not (
                Worker.all(queue=queue) and redis.exists(scheduler)
            ):
                assert time.monotonic() < deadline, "the worker did not start"
                time.sleep(0.05)
        finally:
            redis.close()

    async def stop_worker(self) -> str:
        """Stop the worker; its stderr. The wait runs in a thread: the worker may be in
        the middle of a call to the fakes, which this process's event loop serves."""
        worker, self.worker = self.worker, None
        if worker is None:
            return ""
        worker.send_signal(signal.SIGTERM)

        def wait() -> bytes:
            try:
                return worker.communicate(timeout=15)[1]
            except subprocess.TimeoutExpired:
                worker.kill()
                return worker.communicate()[1]

        stderr = await asyncio.to_thread(wait)
        return stderr.decode(errors="replace")

    async def run_job(self, name: str) -> str:
        """Run one job function of ``gateway.jobs`` in a process of its own."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            f"from gateway.jobs import {name}; print({name}())",
            env=self.worker_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, stderr.decode()[-3000:]
        return stdout.decode().strip()

    async def work(self) -> None:
        """Run `tthc worker --burst` until the queues are empty."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "worker",
            "--burst",
            env=self.worker_env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, stderr.decode()[-3000:]

    def citizen(
        self, name: str, phone: str | None = OWNER_PHONE, *, follows: bool = False
    ) -> FakeUser:
        return self.zalo.add_user(name, phone, follows=follows)

    async def say(self, user: FakeUser, text: str, replies: int = 1) -> list[SentMessage]:
        """The citizen types ``text``; wait for ``replies`` new messages and return them."""
        return await self._act(user, self.zalo.send_text(user.user_id, text), replies)

    async def click(self, user: FakeUser, payload: str, replies: int = 1) -> list[SentMessage]:
        return await self._act(user, self.zalo.click(user.user_id, payload), replies)

    async def follow(self, user: FakeUser, replies: int = 2) -> list[SentMessage]:
        return await self._act(user, self.zalo.follow(user.user_id), replies)

    async def share(self, user: FakeUser, replies: int = 1) -> list[SentMessage]:
        return await self._act(user, self.zalo.share_info(user.user_id), replies)

    async def _act(self, user: FakeUser, action: Any, replies: int) -> list[SentMessage]:
        before = len(self.zalo.messages_for(user.user_id))
        status = await action
        assert status == 200, status
        await self.zalo.wait_for_messages(user.user_id, before + replies, within=10)
        await asyncio.sleep(0.05)  # anything beyond the expected replies would show up here
        return self.zalo.messages_for(user.user_id)[before:]

    async def staff_token(self, username: str = "hoa") -> str:
        """A hotline officer's API token."""
        engine = create_engine(self.settings.database_url)
        try:
            return await staff_store.add_user(
                engine, username, "Phạm Thị Hoa", "hotline", datetime.now(UTC)
            )
        finally:
            await engine.dispose()

    async def rows(self, query: sa.Select[Any]) -> list[Any]:
        engine = create_engine(self.settings.database_url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(query)).all())
        finally:
            await engine.dispose()


def text_of(message: SentMessage) -> str:
    """An OA message's text (a request_user_info card: "[share phone]"); ZNS: its data."""
    if message.channel == "zns":
        return str(message.body.get("template_data", {}))
    body = message.body.get("message", {})
    payload = body.get("attachment", {}).get("payload", {})
    if payload.get("template_type") == "request_user_info":
        return "[share phone]"
    return str(body.get("text", ""))


def texts(messages: list[SentMessage]) -> list[str]:
    return [text_of(m) for m in messages]


def buttons(message: SentMessage) -> list[str]:
    """The payloads of an OA message's buttons."""
    attachment = message.body.get("message", {}).get("attachment", {})
    return [b["payload"] for b in attachment.get("payload", {}).get("buttons", [])]


@pytest.fixture
def chat_settings(settings: Settings) -> Iterator[Settings]:
    merged = Settings.from_mapping({**settings.env, **SMS_ENV})
    yield merged
    forget_queues(merged)


@asynccontextmanager
async def running_chat_rig(
    settings: Settings, fake: FakeZalo | None = None, **env: str
) -> AsyncIterator[ChatRig]:
    """The gateway (Zalo enabled), the fake Zalo, the SMS fakes and a worker env."""
    zalo = fake or FakeZalo(slow_delay=0.3, timeout_delay=1.5, late_receipt_delay=1.0)
    zalo_server = TestServer(create_zalo_app(zalo))
    await zalo_server.start_server()
    zalo_base = str(zalo_server.make_url("")).rstrip("/")
    settings = Settings.from_mapping({**settings.env, **zalo_env(zalo, zalo_base, **env)})
    gateway_server = TestServer(create_app(settings))
    esms, speedsms = FakeSmsCentre(receipt_delay=0.1), FakeSmsCentre(receipt_delay=0.1)
    esms_server = TestServer(create_esms_app(esms))
    speedsms_server = TestServer(create_speedsms_app(speedsms))
    for server in (gateway_server, esms_server, speedsms_server):
        await server.start_server()
    base = str(gateway_server.make_url("")).rstrip("/")
    zalo.webhook_url = f"{base}/webhooks/zalo"
    speedsms.callback_url = f"{base}/webhooks/sms/speedsms/{WEBHOOK_SECRET}"
    client = TestClient(gateway_server)
    await client.start_server()
    worker_env = {
        **os.environ,
        **settings.env,
        "PUBLIC_BASE_URL": base,
        "ESMS_BASE_URL": str(esms_server.make_url("")).rstrip("/"),
        "SPEEDSMS_BASE_URL": str(speedsms_server.make_url("")).rstrip("/"),
        "LOG_LEVEL": "WARNING",
        "DELIVERY_LEASE_SECONDS": "2",
        "RELAY_GRACE_SECONDS": "0",
    }
    rig = ChatRig(Gateway(client, settings), zalo, esms, settings, worker_env)
    try:
        yield rig
    finally:
        stderr = await rig.stop_worker()
        if stderr.strip():
            print("worker stderr:\n" + stderr[-5000:])  # shown when the test fails
        await client.close()
        await zalo_server.close()
        await esms_server.close()
        await speedsms_server.close()


@pytest.fixture
async def chat(chat_settings: Settings) -> AsyncIterator[ChatRig]:
    """A chat rig with a running worker and the demo dossier received."""
    async with running_chat_rig(chat_settings) as rig:
        status, answer, _ = await rig.gateway.post(event("dossier.received"))
        assert status == 202, answer
        rig.start_worker()
        yield rig


__all__ = ["CODE", "OWNER_PHONE", "STRANGER_PHONE", "ChatRig", "buttons", "text_of", "texts"]
