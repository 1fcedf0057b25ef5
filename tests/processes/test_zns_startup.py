"""A ZNS mapping that does not fit its template stops `tthc serve` and `tthc worker` at
start-up, naming the variable and the parameter; a fitting one starts; a template still
in review and a Zalo that cannot be reached are warnings, not refusals. Real processes
against the fake Zalo on loopback.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from gateway.local.redis_server import free_port
from providers.fakes.zalo import FakeTemplate, FakeZalo
from providers.fakes.zalo import create_app as create_zalo_app
from tests.chat.conftest import zalo_env

STRONG = "k" * 32


@dataclass
class Started:
    returncode: int
    stderr: str


@dataclass
class StartRig:
    fake: FakeZalo
    env: dict[str, str]

    async def start(self, command: str, **env: str) -> Started:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            *command.split(),
            env={**self.env, **env},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), 30)
        except TimeoutError:
            process.kill()
            _, stderr = await process.communicate()
        assert process.returncode is not None
        return Started(process.returncode, stderr.decode(errors="replace"))


@pytest.fixture
async def start_rig(
    tmp_path: Path, sqlite_template: Path, redis_server: str
) -> AsyncIterator[StartRig]:
    fake = FakeZalo()
    fake.templates["260001"] = FakeTemplate(
        "260001",
        "Mời nhận kết quả (tỉnh)",
        [
            {"name": "ten", "require": True, "type": "STRING", "maxLength": 30},
            {"name": "ma_ho_so", "require": True, "type": "STRING", "maxLength": 30},
            {"name": "han_nhan", "require": False, "type": "DATE", "maxLength": 20},
            {"name": "le_phi", "require": False, "type": "NUMBER", "maxLength": 15},
        ],
    )
    server = TestServer(create_zalo_app(fake))
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    database = tmp_path / "tthc.sqlite3"
    shutil.copyfile(sqlite_template, database)
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": redis_server,
        "REDIS_KEY_PREFIX": f"tthc-test-start-{uuid.uuid4().hex[:8]}:",
        "HTTP_PORT": str(free_port()),
        "EVENT_SOURCES": f"onestop:{STRONG}",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
        **zalo_env(fake, base, ZALO_TIMEOUT_SECONDS="2", ZNS_TEMPLATE_INVITATION="260001"),
    }
    try:
        yield StartRig(fake, env)
    finally:
        await server.close()


GOOD = "ten=customer_name,ma_ho_so=dossier_code,han_nhan=due_date,le_phi=amount"


@pytest.mark.parametrize("command", ["worker --burst", "serve"])
@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        (
            "ten=customer_name,ma_ho_so=dossier_code,noi_nhan=pickup",
            "ZNS_PARAMS_INVITATION: noi_nhan: not a parameter of template 260001",
        ),
        (
            "ten=customer_name",
            "ZNS_PARAMS_INVITATION: ma_ho_so: required by template 260001 but no fact fills it",
        ),
        (
            "ten=customer_name,ma_ho_so=dossier_code,han_nhan=pickup",
            "ZNS_PARAMS_INVITATION: han_nhan: template 260001 declares it DATE",
        ),
        (
            "ten=customer_name,ma_ho_so=dossier_code,le_phi=reason",
            "ZNS_PARAMS_INVITATION: le_phi: template 260001 declares it NUMBER",
        ),
    ],
    ids=["not-in-template", "required-unfilled", "date-type", "number-type"],
)
async def test_a_mapping_that_does_not_fit_stops_start_up_by_name(
    start_rig: StartRig, command: str, mapping: str, words: str
) -> None:
    started = await start_rig.start(command, ZNS_PARAMS_INVITATION=mapping)

    assert started.returncode == 2, started.stderr
    assert f"tthc: configuration error: {words}" in started.stderr
    assert "Traceback" not in started.stderr


@pytest.mark.parametrize("command", ["worker --burst", "serve"])
async def test_an_unknown_fact_stops_start_up_before_zalo_is_asked(
    start_rig: StartRig, command: str
) -> None:
    started = await start_rig.start(command, ZNS_PARAMS_INVITATION="ten=ho_va_ten")

    assert started.returncode == 2, started.stderr
    assert (
        "tthc: configuration error: "
        "ZNS_PARAMS_INVITATION: entry 1 (ten=ho_va_ten): unknown fact 'ho_va_ten'"
    ) in started.stderr
    assert start_rig.fake.calls == []


@pytest.mark.parametrize("status", ["PENDING_REVIEW", "DISABLE"])
async def test_a_template_that_is_not_enabled_is_reported_and_start_up_goes_on(
    start_rig: StartRig, status: str
) -> None:
    start_rig.fake.templates["260001"].status = status

    started = await start_rig.start("worker --burst", ZNS_PARAMS_INVITATION=GOOD)

    assert started.returncode == 0, started.stderr
    assert f"ZNS_TEMPLATE_INVITATION: template 260001 is {status}, not ENABLE" in started.stderr


async def test_a_template_in_review_with_a_wrong_mapping_still_stops_start_up(
    start_rig: StartRig,
) -> None:
    start_rig.fake.templates["260001"].status = "PENDING_REVIEW"

    started = await start_rig.start("serve", ZNS_PARAMS_INVITATION="ten=customer_name")

    assert started.returncode == 2, started.stderr
    assert "configuration error: ZNS_PARAMS_INVITATION: ma_ho_so: required" in started.stderr


async def test_a_template_zalo_does_not_know_stops_start_up(start_rig: StartRig) -> None:
    started = await start_rig.start(
        "worker --burst", ZNS_TEMPLATE_INVITATION="999999", ZNS_PARAMS_INVITATION=GOOD
    )

    assert started.returncode == 2, started.stderr
    assert "ZNS_TEMPLATE_INVITATION: Zalo refuses template 999999" in started.stderr


async def test_a_fitting_mapping_starts_and_asks_zalo_fresh_each_time(
    start_rig: StartRig,
) -> None:
    for _ in range(2):
        started = await start_rig.start("worker --burst", ZNS_PARAMS_INVITATION=GOOD)
        assert started.returncode == 0, started.stderr
    template_calls = [call for call in start_rig.fake.calls if call.endpoint == "template"]
    assert len(template_calls) == 2  # not from the cache: a restart re-reads the template


async def test_zalo_out_of_reach_at_start_up_is_a_warning(start_rig: StartRig) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    started = await start_rig.start(
        "worker --burst",
        ZNS_PARAMS_INVITATION="ten=customer_name",  # would not fit, but cannot be checked
        ZALO_OAUTH_BASE_URL=closed,
        ZALO_ZNS_BASE_URL=closed,
    )

    assert started.returncode == 0, started.stderr
    assert "ZNS templates not checked at start-up" in started.stderr
