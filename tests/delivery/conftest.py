"""A delivery rig: the gateway on loopback, both SMS vendor fakes, and `tthc worker`
run as a real process with the fakes' addresses."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.http.app import create_app
from gateway.settings import Settings
from providers.fakes import FakeSmsCentre, create_esms_app, create_speedsms_app
from tests.conftest import forget_queues
from tests.helpers import Gateway

WEBHOOK_SECRET = "receipts-7f3a9c1e5b-2d8e4a6c0f1b3957"
SMS_ENV = {
    "SMS_PROVIDERS": "esms,speedsms",
    "ESMS_API_KEY": "fake-key",
    "ESMS_SECRET_KEY": "fake-secret",
    "ESMS_BRANDNAME": "TTHC-TINH",
    "SPEEDSMS_TOKEN": "fake-token",
    "SPEEDSMS_SENDER": "TTHC-TINH",
    "SMS_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "QUIET_HOURS": "",
}


async def burst(env: dict[str, str], limit: float = 60) -> tuple[str, str]:
    """Run `tthc worker --burst` with ``env`` until the queues are empty; it must succeed.
    What it wrote: (stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "worker",
        "--burst",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), limit)
    assert process.returncode == 0, stderr.decode()[-3000:]
    return stdout.decode(), stderr.decode()


@dataclass
class Rig:
    gateway: Gateway
    esms: FakeSmsCentre
    speedsms: FakeSmsCentre
    worker_env: dict[str, str]

    async def work(self, limit: float = 60) -> None:
        """Run `tthc worker --burst` until the queues are empty."""
        await burst(self.worker_env, limit)

    async def run_job(self, name: str) -> int:
        """Run one job function of ``gateway.processes.jobs`` in a process of its own, as the cron
        would; returns what it returned."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            f"from gateway.processes.jobs import {name}; print({name}())",
            env=self.worker_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, stderr.decode()[-3000:]
        return int(stdout.decode().strip().splitlines()[-1])

    async def relay(self) -> int:
        return await self.run_job("relay")

    def start_worker(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway", "worker", "--burst"],
            env=self.worker_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def notices(self, code: str) -> list[dict[str, Any]]:
        view = await self.gateway.dossier(code)
        return list(view["notices"])

    async def until(self, code: str, states: set[str], limit: float = 15) -> list[dict[str, Any]]:
        """Wait until every notice of the dossier is in one of ``states``."""
        deadline = asyncio.get_running_loop().time() + limit
        while True:
            notices = await self.notices(code)
            if all(n["state"] in states for n in notices):
                return notices
            assert asyncio.get_running_loop().time() < deadline, notices
            await asyncio.sleep(0.1)


@pytest.fixture
def sms_settings(settings: Settings) -> Iterator[Settings]:
    merged = Settings.from_mapping({**settings.env, **SMS_ENV})
    yield merged
    forget_queues(merged)


@asynccontextmanager
async def running_rig(settings: Settings, **env: str) -> AsyncIterator[Rig]:
    """The gateway, both fakes and a worker environment pointing at them."""
    gateway_server = TestServer(create_app(settings))
    esms, speedsms = FakeSmsCentre(receipt_delay=0.2), FakeSmsCentre(receipt_delay=0.2)
    esms_server = TestServer(create_esms_app(esms))
    speedsms_server = TestServer(create_speedsms_app(speedsms))
    for server in (gateway_server, esms_server, speedsms_server):
        await server.start_server()
    base = str(gateway_server.make_url("")).rstrip("/")
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
        **env,
    }
    try:
        yield Rig(Gateway(client, settings), esms, speedsms, worker_env)
    finally:
        await client.close()
        await esms_server.close()
        await speedsms_server.close()


@pytest.fixture
async def rig(sms_settings: Settings) -> AsyncIterator[Rig]:
    async with running_rig(sms_settings) as ready:
        yield ready
