"""A chat rig: the gateway on loopback, the fake Zalo platform posting signed webhooks
to it, both SMS vendor fakes, and a real `tthc worker` process draining the chat queue.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer
from redis import Redis
from rq import Queue, Worker

from gateway.chat.queue import chat_queue_name
from gateway.domain.sms_text import unaccent
from gateway.settings import Settings
from gateway.storage import staff as staff_store
from gateway.storage.db import create_engine
from gateway.storage.tables import zalo_users
from providers.fakes import FakeSmsCentre
from providers.fakes.sms import FakeMessage
from providers.fakes.zalo import FakeUser, FakeZalo, SentMessage
from providers.fakes.zalo import create_app as create_zalo_app
from tests.delivery.conftest import Rig, running_rig, sms_settings
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
    """The delivery rig (gateway, SMS fakes, worker env) plus the fake Zalo."""

    rig: Rig
    zalo: FakeZalo
    settings: Settings
    worker: subprocess.Popen[bytes] | None = None

    @property
    def gateway(self) -> Gateway:
        return self.rig.gateway

    @property
    def esms(self) -> FakeSmsCentre:
        return self.rig.esms

    @property
    def worker_env(self) -> dict[str, str]:
        return self.rig.worker_env

    async def run_job(self, name: str) -> int:
        """Run one job function of ``gateway.processes.jobs`` in a process of its own."""
        return await self.rig.run_job(name)

    async def work(self) -> None:
        """Run `tthc worker --burst` until the queues are empty."""
        await self.rig.work()

    def start_worker(self) -> None:
        """A long-running `tthc worker` (no cron: tests run the relay and sweep)."""
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "gateway", "worker", "--no-cron"],
            env=self.worker_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # Wait until it listens, so that timings in the tests are the bot's own.
        redis = Redis.from_url(self.settings.redis_url)
        queue = Queue(chat_queue_name(self.settings), connection=redis)
        try:
            deadline = time.monotonic() + 15
            while self.worker.poll() is None and not Worker.all(queue=queue):
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

    def sms_to(self, phone: str) -> list[FakeMessage]:
        """The SMS both fake vendors accepted for ``phone`` (E.164), in order."""
        tail = phone[-9:]
        return [
            m
            for m in [*self.esms.messages, *self.rig.speedsms.messages]
            if re.sub(r"\D", "", m.phone).endswith(tail)
        ]

    def codes_to(self, phone: str) -> list[str]:
        """The one-time codes ``phone`` received by SMS so far, oldest first."""
        found = [_CODE_IN_SMS.search(unaccent(m.content)) for m in self.sms_to(phone)]
        return [match.group(1) for match in found if match]

    async def code_for(self, phone: str, nth: int, within: float = 10) -> str:
        """The ``nth`` (1-based) one-time code ``phone`` received by SMS: what its owner
        reads on the phone. Waits for it to arrive."""
        deadline = time.monotonic() + within
        while len(codes := self.codes_to(phone)) < nth:
            assert time.monotonic() < deadline, f"no one-time code #{nth} by SMS"
            await asyncio.sleep(0.05)
        return codes[nth - 1]

    async def prove(self, user: FakeUser, replies: int = 1) -> list[SentMessage]:
        """The citizen shares their Zalo number and types back the code sent to it; the
        replies to the code."""
        assert user.phone_e164 is not None
        before = len(self.codes_to(user.phone_e164))
        (sent,) = await self.share(user)
        assert "mã xác thực" in text_of(sent), text_of(sent)
        code = await self.code_for(user.phone_e164, before + 1)
        return await self.say(user, code, replies)

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


# The code in an OTP SMS (templates/sms/otp.txt.j2), unaccented.
_CODE_IN_SMS = re.compile(r"\b(\d{6}) la ma xac thuc\b", re.IGNORECASE)


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


async def subscribed(rig: ChatRig) -> FakeUser:
    """A citizen who follows the OA, wrote to it today and subscribed their number."""
    user = rig.citizen("Nguyễn Văn An", OWNER_PHONE, follows=True)
    now = datetime.now(UTC)
    engine = create_engine(rig.settings.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                zalo_users.insert().values(
                    user_id=user.user_id,
                    follows=True,
                    phone_e164=OWNER_PHONE,
                    verified_at=now,
                    subscribed_at=now,
                    last_interaction_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
    finally:
        await engine.dispose()
    return user


@pytest.fixture
def chat_settings(sms_settings: Settings) -> Settings:
    """The delivery tests' settings (SMS fakes); the rig adds the Zalo ones."""
    return sms_settings


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
    async with running_rig(settings) as delivery:
        base = delivery.worker_env["PUBLIC_BASE_URL"]
        zalo.webhook_url = f"{base}/webhooks/zalo"
        rig = ChatRig(delivery, zalo, settings)
        try:
            yield rig
        finally:
            stderr = await rig.stop_worker()
            if stderr.strip():
                print("worker stderr:\n" + stderr[-5000:])  # shown when the test fails
            await zalo_server.close()


@pytest.fixture
async def chat(chat_settings: Settings) -> AsyncIterator[ChatRig]:
    """A chat rig with a running worker and the demo dossier received."""
    async with running_chat_rig(chat_settings) as rig:
        status, answer, _ = await rig.gateway.post(event("dossier.received"))
        assert status == 202, answer
        rig.start_worker()
        yield rig


__all__ = [
    "CODE",
    "OWNER_PHONE",
    "STRANGER_PHONE",
    "ChatRig",
    "buttons",
    "sms_settings",
    "subscribed",
    "text_of",
    "texts",
]
