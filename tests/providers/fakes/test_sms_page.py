"""The fake SMS centres' page: local times, a count per state, wide text, short ids.

Messages go in over the vendor's wire (eSMS here; SpeedSMS shares the page) and their
receipts land on a real receiver, so every state on the page is one a message reached.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from providers.fakes import FakeSmsCentre, create_esms_app
from providers.fakes.control import standalone_parser

SEND = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"


@pytest.fixture
async def callback_url(aiohttp_server: AiohttpServer) -> str:
    async def receipt(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/receipts", receipt)
    return str((await aiohttp_server(app)).make_url("/receipts"))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def send(
    session: aiohttp.ClientSession, base: str, content: str, request_id: str, callback: str | None
) -> None:
    body = {
        "ApiKey": "k",
        "SecretKey": "s",
        "Brandname": "TTHC-TINH",
        "Phone": "0912345678",
        "Content": content,
        "IsUnicode": "1",
        "SmsType": "2",
        "RequestId": request_id,
        "CallbackUrl": callback,
    }
    async with session.post(base + SEND, json=body) as resp:
        assert (await resp.json())["CodeResult"] == "100"


async def settled(centre: FakeSmsCentre) -> None:
    for _ in range(200):
        if "pending" not in {m.state for m in centre.messages}:
            return
        await asyncio.sleep(0.01)
    raise AssertionError([m.state for m in centre.messages])


async def test_the_page_counts_states_shows_local_time_and_clips_ids(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession, callback_url: str
) -> None:
    centre = FakeSmsCentre(receipt_delay=0.0, time_zone=ZoneInfo("Asia/Ho_Chi_Minh"))
    server = await aiohttp_server(create_esms_app(centre))
    base = str(server.make_url("")).rstrip("/")
    request_id = "notice-000123-attempt-1-with-a-long-tail"

    await send(session, base, "Hồ sơ đã có kết quả", request_id, callback_url)
    centre.set_receipts("failed")
    await send(session, base, "Hồ sơ bị từ chối", "r-2", callback_url)
    await send(session, base, "Không có biên nhận", "r-3", None)
    await settled(centre)
    async with session.get(base + "/") as resp:
        page = await resp.text()
    async with session.get(base + "/_fake/messages") as resp:
        listed = await resp.json()

    assert [m["state"] for m in listed] == ["delivered", "failed", "no_receipt"]
    counts = dict(re.findall(r'<li data-state="(\w+)">[^<]*<b>(\d+)</b>', page))
    assert counts == {
        "pending": "0",
        "delivered": "1",
        "failed": "1",
        "no_receipt": "1",
        "callback_failed": "0",
    }
    assert page.index("Không có biên nhận") < page.index("Hồ sơ bị từ chối")  # newest first
    stamps = re.findall(r'<time datetime="([^"]+)"', page)
    assert len(stamps) == 3 and all(s.endswith("+07:00") for s in stamps), stamps
    assert "times in Asia/Ho_Chi_Minh" in page
    assert f'title="{request_id}">{request_id[:8]}…</span>' in page
    sms_id = listed[0]["provider_message_id"]
    assert f'title="{sms_id}">{sms_id[:8]}…</span>' in page
    assert '<td class="text">Hồ sơ đã có kết quả</td>' in page


async def test_a_callback_the_gateway_keeps_refusing_shows_as_callback_failed(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=503)

    receiving = web.Application()
    receiving.router.add_get("/receipts", refuse)
    refusing = str((await aiohttp_server(receiving)).make_url("/receipts"))
    centre = FakeSmsCentre(receipt_delay=0.0, callback_retry_delay=0.0)
    server = await aiohttp_server(create_esms_app(centre))
    base = str(server.make_url("")).rstrip("/")

    await send(session, base, "Thử lại", "r-1", refusing)
    for _ in range(200):
        if centre.messages[0].callback_failed:
            break
        await asyncio.sleep(0.01)

    assert centre.state()["states"]["callback_failed"] == 1
    assert centre.messages[0].receipts_sent == 0


def test_the_time_zone_of_a_standalone_fake_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TIME_ZONE", "Europe/Paris")
    assert standalone_parser("p", "d").parse_args([]).time_zone == ZoneInfo("Europe/Paris")
    monkeypatch.delenv("TIME_ZONE")
    parser = standalone_parser("p", "d")
    assert parser.parse_args([]).time_zone == ZoneInfo("Asia/Ho_Chi_Minh")
    assert parser.parse_args(["--time-zone", "UTC"]).time_zone == ZoneInfo("UTC")
    with pytest.raises(SystemExit):
        parser.parse_args(["--time-zone", "Mars/Olympus"])
