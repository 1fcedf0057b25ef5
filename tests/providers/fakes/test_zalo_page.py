"""The fake Zalo's chat as its page shows it: titles not payloads, ZNS cards, Zalo's
system line for a refused OA message, the page's time zone.

Raw HTTP against the fake (OA API and control API), webhooks to a receiver that
answers 200: no gateway in between.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from providers.fakes.zalo import FakeZalo, create_app

MENU = {
    "type": "template",
    "payload": {
        "buttons": [
            {"title": "Tra cứu hồ sơ", "type": "oa.query.hide", "payload": "#lookup"},
            {"title": "Báo chưa có kết quả", "type": "oa.query.hide", "payload": "#report_false"},
        ]
    },
}


@dataclass
class Rig:
    fake: FakeZalo
    base: str
    session: aiohttp.ClientSession
    token: str

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"access_token": self.token}
        async with self.session.request(
            method, self.base + path, json=body, headers=headers
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def cs(self, user_id: str, message: dict[str, Any]) -> dict[str, Any]:
        body = {"recipient": {"user_id": user_id}, "message": message}
        return dict((await self.call("POST", "/v3.0/oa/message/cs", body))[1])

    async def thread(self, user_id: str) -> list[dict[str, Any]]:
        status, items = await self.call("GET", f"/_fake/thread?user_id={user_id}")
        assert status == 200
        return list(items)


@pytest.fixture
async def rig(aiohttp_server: AiohttpServer) -> AsyncIterator[Rig]:
    async def webhook(request: web.Request) -> web.Response:
        return web.json_response({"status": "queued"})

    receiving = web.Application()
    receiving.router.add_post("/webhooks/zalo", webhook)
    url = str((await aiohttp_server(receiving)).make_url("/webhooks/zalo"))
    fake = FakeZalo(webhook_url=url)
    server = await aiohttp_server(create_app(fake))
    async with aiohttp.ClientSession() as session:
        yield Rig(
            fake, str(server.make_url("")).rstrip("/"), session, fake.issue_pair()["access_token"]
        )


async def test_a_tapped_button_shows_its_title_and_keeps_the_payload_aside(rig: Rig) -> None:
    user = rig.fake.add_user("Nguyễn Văn An", "+84912345678", follows=True)
    await rig.cs(user.user_id, {"text": "Chọn một mục", "attachment": MENU})

    status, _ = await rig.call(
        "POST", f"/_fake/users/{user.user_id}/click", {"payload": "#report_false"}
    )
    await rig.fake.click(user.user_id, "#lookup", title="Tra cứu")

    assert status == 200
    taps = [item for item in await rig.thread(user.user_id) if item["from"] == "user"]
    assert [(t["text"], t["payload"]) for t in taps] == [
        ("Báo chưa có kết quả", "#report_false"),
        ("Tra cứu", "#lookup"),
    ]
    assert [a.text for a in rig.fake.inbound] == ["#report_false", "#lookup"]  # what the OA got


async def test_typed_text_is_shown_as_typed_without_a_payload(rig: Rig) -> None:
    user = rig.fake.add_user("Nguyễn Văn An", follows=True)
    await rig.fake.send_text(user.user_id, "#lookup")

    (item,) = await rig.thread(user.user_id)

    assert item["text"] == "#lookup" and "payload" not in item


async def test_an_oa_message_to_a_non_follower_shows_zalos_system_line(rig: Rig) -> None:
    user = rig.fake.add_user("Trần Thị Bình", "+84987654321")
    await rig.fake.send_text(user.user_id, "Alo")

    answer = await rig.cs(user.user_id, {"text": "Xin chào"})
    await rig.cs("123", {"text": "to nobody"})  # an unknown user has no chat to show it in

    assert answer["error"] == -213
    typed, system = await rig.thread(user.user_id)
    assert typed["following"] is False
    assert system["from"] == "system" and system["error"] == -213
    assert system["text"].startswith("Người dùng chưa quan tâm OA: OA không thể nhắn tin tư vấn")
    assert len(rig.fake.refusals) == 1


async def test_a_zns_message_is_a_card_with_labelled_rows_and_buttons(rig: Rig) -> None:
    user = rig.fake.add_user("Nguyễn Văn An", "+84912345678")
    body = {
        "phone": "84912345678",
        "template_id": "250001",
        "template_data": {
            "customer_name": "Nguyễn Văn An",
            "dossier_code": "000.00.12.H19-240401-0001",
            "pickup": "Bộ phận một cửa",
        },
        "tracking_id": "n1",
    }
    assert (await rig.call("POST", "/message/template", body))[1]["error"] == 0

    (item,) = await rig.thread(user.user_id)

    assert item["from"] == "zns"
    card = item["card"]
    assert card["title"] == "Mời nhận kết quả hồ sơ"
    assert card["rows"] == [
        {"label": "Khách hàng", "value": "Nguyễn Văn An"},
        {"label": "Mã hồ sơ", "value": "000.00.12.H19-240401-0001"},
        {"label": "Nơi nhận kết quả", "value": "Bộ phận một cửa"},
    ]
    assert card["buttons"] == [{"title": "Tra cứu hồ sơ"}]
    assert "customer_name" not in item["text"] and "Mã hồ sơ: 000.00" in item["text"]


async def test_the_page_carries_its_time_zone_and_the_new_test_ids(
    aiohttp_server: AiohttpServer,
) -> None:
    server = await aiohttp_server(create_app(FakeZalo(), time_zone=ZoneInfo("UTC")))
    async with aiohttp.ClientSession() as session, session.get(server.make_url("/")) as resp:
        page = await resp.text()

    assert '<main data-time-zone="UTC">' in page
    assert 'data-testid="chat-title"' in page
    assert "{TIME_ZONE}" not in page and "user_id +" not in page
