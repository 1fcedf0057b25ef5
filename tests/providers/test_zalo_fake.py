"""The fake Zalo speaks Zalo's wire protocol (``docs/zalo.md``), failure modes included.

Raw HTTP against ``providers/fakes/zalo/`` on loopback, no client of ours in between:
if the fake drifts from the reference, these fail before any client test can pass by
accident. Webhooks from simulated citizens land on a real receiver and are checked with
our own ``verify_signature`` and ``parse_webhook``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from bot.events import ChatOpened, Followed, InfoShared, TextSent, Unfollowed
from gateway.errors import AuthenticationFailed
from providers.fakes.zalo import FAKE, FakeUser, FakeZalo, create_app
from providers.zalo.tokens import appsecret_proof
from providers.zalo.webhook import ZnsReceipt, parse_webhook, verify_signature

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+84912345678"
TEMPLATE_DATA = {
    "customer_name": "Nguyễn Văn An",
    "dossier_code": "000.00.12.H19-240401-0001",
    "pickup": "Bộ phận một cửa, 12 Lê Lợi",
}
WEEK = 7 * 86_400


@dataclass
class Delivery:
    """One webhook POST as the gateway would receive it."""

    raw: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """Our side of the webhooks: records every POST and answers ``status``."""

    url: str = ""
    status: int = 200
    deliveries: asyncio.Queue[Delivery] = field(default_factory=asyncio.Queue)

    async def handle(self, request: web.Request) -> web.Response:
        await self.deliveries.put(Delivery(await request.read(), dict(request.headers)))
        return web.json_response({"status": "queued"}, status=self.status)

    async def next(self, within: float = 2.0) -> Delivery:
        return await asyncio.wait_for(self.deliveries.get(), within)

    async def nothing_within(self, seconds: float) -> bool:
        await asyncio.sleep(seconds)
        return self.deliveries.empty()


@dataclass
class Rig:
    fake: FakeZalo
    server: TestServer
    session: aiohttp.ClientSession
    receiver: Receiver

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def refresh(self, refresh_token: str, **overrides: Any) -> tuple[int, Any]:
        form = {
            "refresh_token": refresh_token,
            "app_id": self.fake.app_id,
            "grant_type": "refresh_token",
            **overrides.pop("form", {}),
        }
        headers = {"secret_key": self.fake.app_secret, **overrides.pop("headers", {})}
        async with self.session.post(
            self.url("/v4/oa/access_token"), data=form, headers=headers, **overrides
        ) as resp:
            return resp.status, await _body(resp)

    async def token(self) -> str:
        status, body = await self.refresh(sorted(self.fake.refresh_tokens)[0])
        assert status == 200, body
        return str(body["access_token"])

    async def api(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        proof: str | None = None,
    ) -> tuple[int, Any]:
        headers = {} if token is None else {"access_token": token}
        if proof is not None:
            headers["appsecret_proof"] = proof
        async with self.session.request(
            method, self.url(path), headers=headers, json=json, params=params
        ) as resp:
            return resp.status, await _body(resp)

    async def cs(self, token: str, user_id: str, message: Any) -> tuple[int, Any]:
        body = {"recipient": {"user_id": user_id}, "message": message}
        return await self.api("POST", "/v3.0/oa/message/cs", token, json=body)

    async def zns(self, token: str, **changes: Any) -> tuple[int, Any]:
        body = {
            "phone": "84912345678",
            "template_id": "250001",
            "template_data": TEMPLATE_DATA,
            "tracking_id": "notice42zns1",
            **changes,
        }
        return await self.api("POST", "/message/template", token, json=body)

    async def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.url(path), json=body) as resp:
            return resp.status, await _body(resp)


async def _body(resp: aiohttp.ClientResponse) -> Any:
    raw = await resp.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode()


@pytest.fixture
async def rig(aiohttp_server: AiohttpServer) -> AsyncIterator[Rig]:
    receiver = Receiver()
    receiving = web.Application()
    receiving.router.add_post("/webhooks/zalo", receiver.handle)
    receiver.url = str((await aiohttp_server(receiving)).make_url("/webhooks/zalo"))
    fake = FakeZalo(
        webhook_url=receiver.url,
        slow_delay=0.3,
        timeout_delay=0.5,
        receipt_delay=0.0,
        late_receipt_delay=0.4,
    )
    server = await aiohttp_server(create_app(fake))
    async with aiohttp.ClientSession() as session:
        yield Rig(fake, server, session, receiver)


def follower(rig: Rig, phone: str | None = PHONE) -> FakeUser:
    return rig.fake.add_user("Nguyễn Văn An", phone, follows=True)


# --- OAuth v4 ---------------------------------------------------------------------------


async def test_refresh_rotates_the_pair_and_a_used_refresh_token_is_refused(rig: Rig) -> None:
    status, pair = await rig.refresh("fake-refresh-token-0")

    assert status == 200
    assert set(pair) == {"access_token", "refresh_token", "expires_in"}
    assert pair["expires_in"] == "90000"  # a string, as Zalo sends it
    assert pair["refresh_token"] != "fake-refresh-token-0"

    status, again = await rig.refresh("fake-refresh-token-0")
    assert status == 200  # errors are HTTP 200 ...
    assert again["error"] == -14014  # ... with a negative error
    assert "already used" in again["error_description"]

    status, next_pair = await rig.refresh(pair["refresh_token"])
    assert "access_token" in next_pair
    assert (rig.fake.refresh_calls, rig.fake.refresh_refused) == (3, 1)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"headers": {"secret_key": "wrong"}}, "secret_key"),
        ({"form": {"app_id": "1"}}, "app_id"),
        ({"form": {"grant_type": "authorization_code"}}, "grant_type"),
    ],
    ids=["secret-key", "app-id", "grant-type"],
)
async def test_refresh_needs_the_app_credentials_and_keeps_the_token_on_refusal(
    rig: Rig, overrides: dict[str, Any], reason: str
) -> None:
    status, body = await rig.refresh("fake-refresh-token-0", **overrides)

    assert status == 200
    assert body["error"] == -14002
    assert reason in body["error_description"]
    assert "access_token" in (await rig.refresh("fake-refresh-token-0"))[1]


async def test_refresh_wants_a_form_not_json(rig: Rig) -> None:
    form = {"refresh_token": "fake-refresh-token-0", "app_id": rig.fake.app_id}
    async with rig.session.post(
        rig.url("/v4/oa/access_token"),
        json={**form, "grant_type": "refresh_token"},
        headers={"secret_key": rig.fake.app_secret},
    ) as resp:
        body = await resp.json()

    assert body["error"] == -14002
    assert "x-www-form-urlencoded" in body["error_description"]


async def test_refresh_modes_fail_without_rotating(rig: Rig) -> None:
    rig.fake.refresh_mode = "http_500"
    assert (await rig.refresh("fake-refresh-token-0"))[0] == 500
    rig.fake.refresh_mode = "refused"
    assert (await rig.refresh("fake-refresh-token-0"))[1]["error"] == -14014

    rig.fake.refresh_mode = "ok"
    assert "access_token" in (await rig.refresh("fake-refresh-token-0"))[1]
    assert (rig.fake.refresh_calls, rig.fake.refresh_refused) == (3, 1)


# --- OA cs ------------------------------------------------------------------------------


async def test_cs_takes_text_buttons_and_request_user_info_and_records_them(rig: Rig) -> None:
    token, user = await rig.token(), follower(rig)
    buttons = {
        "type": "template",
        "payload": {
            "buttons": [
                {"title": "Tra cứu hồ sơ", "type": "oa.query.show", "payload": "#tracuu"},
                {
                    "title": "Gọi tổng đài",
                    "type": "oa.open.phone",
                    "payload": {"phone_code": "1022"},
                },
            ]
        },
    }
    ask = {
        "type": "template",
        "payload": {
            "template_type": "request_user_info",
            "elements": [
                {"title": "Chia sẻ số điện thoại", "subtitle": "Để tra cứu", "image_url": ""}
            ],
        },
    }

    answers = [
        await rig.cs(token, user.user_id, {"text": "Xin chào"}),
        await rig.cs(token, user.user_id, {"text": "Chọn một mục", "attachment": buttons}),
        await rig.cs(token, user.user_id, {"attachment": ask}),
    ]

    for status, body in answers:
        assert status == 200
        assert body["error"] == 0 and body["message"] == "Success"
        assert body["data"]["user_id"] == user.user_id
    sent = rig.fake.messages_for(user.user_id)
    assert [m.message_id for m in sent] == [b["data"]["message_id"] for _, b in answers]
    assert sent[1].body["message"]["attachment"] == buttons
    thread = rig.fake.thread(user.user_id)
    assert thread[1]["buttons"][0] == {"title": "Tra cứu hồ sơ", "payload": "#tracuu"}
    assert thread[2]["request_user_info"] is True


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"text": "x" * 2001}, "2000"),
        ({"text": "  "}, "empty"),
        ({}, "neither text nor attachment"),
        (
            {
                "text": "six",
                "attachment": {
                    "type": "template",
                    "payload": {
                        "buttons": [{"title": "b", "type": "oa.query.show", "payload": "p"}] * 6
                    },
                },
            },
            "at most 5",
        ),
        (
            {
                "text": "odd",
                "attachment": {
                    "type": "template",
                    "payload": {"buttons": [{"title": "b", "type": "oa.chat", "payload": "p"}]},
                },
            },
            "unknown",
        ),
        (
            {
                "text": "url",
                "attachment": {
                    "type": "template",
                    "payload": {"buttons": [{"title": "b", "type": "oa.open.url", "payload": "x"}]},
                },
            },
            "url",
        ),
    ],
    ids=["too-long", "blank", "nothing", "six-buttons", "unknown-type", "url-payload"],
)
async def test_cs_refuses_an_ill_formed_message_with_201(
    rig: Rig, message: dict[str, Any], reason: str
) -> None:
    token, user = await rig.token(), follower(rig)

    status, body = await rig.cs(token, user.user_id, message)

    assert (status, body["error"]) == (200, -201)
    assert reason in body["message"]
    assert rig.fake.sent == []


async def test_cs_checks_the_follower_and_the_seven_day_window(rig: Rig) -> None:
    token = await rig.token()
    stranger = rig.fake.add_user("Trần Thị Bình", follows=False)
    silent = follower(rig)
    silent.last_interaction = 0.0
    old = follower(rig)
    old.last_interaction = time.time() - WEEK - 60
    recent = follower(rig)
    recent.last_interaction = time.time() - WEEK + 60

    codes = [
        (await rig.cs(token, user_id, {"text": "Xin chào"}))[1]["error"]
        for user_id in ("999", stranger.user_id, silent.user_id, old.user_id, recent.user_id)
    ]

    assert codes == [-201, -213, -232, -230, 0]


async def test_access_tokens_are_checked_with_the_codes_of_each_api(rig: Rig) -> None:
    token, user = await rig.token(), follower(rig)
    cs = {"recipient": {"user_id": user.user_id}, "message": {"text": "Xin chào"}}

    async def code(path: str, token: str | None, **kw: Any) -> int:
        method = "GET" if "params" in kw else "POST"
        return int((await rig.api(method, path, token, **kw))[1]["error"])

    assert await code("/v3.0/oa/message/cs", None, json=cs) == -216
    assert await code("/v3.0/oa/message/cs", "forged", json=cs) == -216
    assert await code("/message/template", "forged", json={}) == -124
    assert await code("/template/info/v2", None, params={"template_id": "250001"}) == -124
    wrong_proof = appsecret_proof("not-the-secret", token)
    assert await code("/v3.0/oa/message/cs", token, json=cs, proof=wrong_proof) == -216
    proof = appsecret_proof(rig.fake.app_secret, token)
    assert await code("/v3.0/oa/message/cs", token, json=cs, proof=proof) == 0

    rig.fake.access_tokens[token] = time.time() - 1  # lived its 25 hours
    assert await code("/v3.0/oa/message/cs", token, json=cs) == -220
    assert await code("/message/template", token, json={}) == -124


# --- failure modes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "error"),
    [
        ("token_expired", 200, -220),
        ("outside_window", 200, -230),
        ("rate_limited", 200, -32),
        ("http_500", 500, None),
    ],
)
async def test_oa_failure_modes_answer_like_zalo_and_a_counted_mode_runs_out(
    rig: Rig, mode: str, status: int, error: int | None
) -> None:
    token, user = await rig.token(), follower(rig)
    rig.fake.set_mode(mode, count=1)

    got_status, body = await rig.cs(token, user.user_id, {"text": "một"})
    assert got_status == status
    if error is not None:
        assert body["error"] == error
    assert rig.fake.sent == []
    assert rig.fake.calls[-1].mode == mode

    fresh = await rig.token()  # token_expired killed the old token for good
    assert (await rig.cs(fresh, user.user_id, {"text": "hai"}))[1]["error"] == 0
    if mode == "token_expired":
        assert (await rig.cs(token, user.user_id, {"text": "ba"}))[1]["error"] == -220


@pytest.mark.parametrize(
    ("mode", "error"),
    [("token_expired", -124), ("no_zalo_account", -118), ("rate_limited", -32)],
)
async def test_zns_failure_modes_answer_with_zns_codes(rig: Rig, mode: str, error: int) -> None:
    token = await rig.token()
    rig.fake.set_mode(mode, count=1)

    status, body = await rig.zns(token)

    assert (status, body["error"]) == (200, error)
    assert rig.fake.sent == []


async def test_modes_only_apply_to_the_apis_they_concern(rig: Rig) -> None:
    token, user = await rig.token(), follower(rig)
    rig.fake.set_mode("outside_window", count=1)

    assert (await rig.zns(token))[1]["error"] == 0  # ZNS has no 7-day window
    assert (await rig.cs(token, user.user_id, {"text": "x"}))[1]["error"] == -230
    rig.fake.set_mode("no_zalo_account", count=1)
    assert (await rig.cs(token, user.user_id, {"text": "x"}))[1]["error"] == 0
    assert (await rig.zns(token, tracking_id="other1"))[1]["error"] == -118
    assert rig.fake.mode == "ok"


async def test_slow_mode_answers_late_but_normally(rig: Rig) -> None:
    token, user = await rig.token(), follower(rig)
    rig.fake.set_mode("slow", count=1)

    started = time.monotonic()
    status, body = await rig.cs(token, user.user_id, {"text": "chậm"})

    assert time.monotonic() - started >= 0.3
    assert (status, body["error"]) == (200, 0)


async def test_timeout_mode_takes_the_message_but_answers_too_late(rig: Rig) -> None:
    token, user = await rig.token(), follower(rig)
    rig.fake.set_mode("timeout", count=2)
    impatient = aiohttp.ClientTimeout(total=0.15)

    for path, body in [
        ("/v3.0/oa/message/cs", {"recipient": {"user_id": user.user_id}, "message": {"text": "a"}}),
        (
            "/message/template",
            {
                "phone": "84912345678",
                "template_id": "250001",
                "template_data": TEMPLATE_DATA,
                "tracking_id": "lost1",
            },
        ),
    ]:
        with pytest.raises(TimeoutError):
            async with rig.session.post(
                rig.url(path), json=body, headers={"access_token": token}, timeout=impatient
            ):
                pass

    assert [m.channel for m in rig.fake.sent] == ["oa", "zns"]
    # A retry of the ZNS with its tracking_id is recognised: nothing is sent twice.
    _, again = await rig.zns(token, tracking_id="lost1")
    assert again["data"]["msg_id"] == rig.fake.sent[1].message_id
    assert len(rig.fake.sent) == 2


# --- ZNS --------------------------------------------------------------------------------


async def test_zns_send_answers_msg_id_sent_time_and_quota(rig: Rig) -> None:
    token = await rig.token()
    before = int(time.time() * 1000)

    status, body = await rig.zns(token)

    assert (status, body["error"], body["message"]) == (200, 0, "Success")
    data = body["data"]
    [sent] = rig.fake.sent
    assert data["msg_id"] == sent.message_id
    assert before <= int(data["sent_time"]) <= before + 5000
    assert data["quota"] == {"dailyQuota": "500", "remainingQuota": "499"}
    assert sent.phone == "84912345678" and sent.tracking_id == "notice42zns1"
    assert sent.body["template_data"] == TEMPLATE_DATA


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"phone": "0912345678"}, -108),
        ({"phone": "+84912345678"}, -108),
        ({"template_id": "999999"}, -109),
        ({"template_data": {}}, -111),
        ({"template_data": {**TEMPLATE_DATA, "dossier_code": 12}}, -112),
        ({"template_data": {**TEMPLATE_DATA, "customer_name": "x" * 31}}, -1121),
        ({"template_data": {"customer_name": "An", "dossier_code": "1"}}, -1122),
        ({"template_data": {**TEMPLATE_DATA, "pickup": ""}}, -1122),
        ({"tracking_id": None}, -100),
        ({"tracking_id": "notice-1"}, -100),
        ({"tracking_id": "x" * 49}, -100),
    ],
    ids=[
        "phone-national",
        "phone-plus",
        "template",
        "empty-data",
        "number",
        "too-long",
        "missing",
        "empty-required",
        "no-tracking",
        "dash-tracking",
        "long-tracking",
    ],
)
async def test_zns_checks_its_request_like_zalo(
    rig: Rig, changes: dict[str, Any], error: int
) -> None:
    token = await rig.token()

    status, body = await rig.zns(token, **changes)

    assert (status, body["error"]) == (200, error)
    assert rig.fake.sent == []


@pytest.mark.parametrize(("status", "error"), [("DISABLE", -146), ("PENDING_REVIEW", -131)])
async def test_zns_refuses_templates_that_are_not_enabled(
    rig: Rig, status: str, error: int
) -> None:
    token = await rig.token()
    rig.fake.templates["250001"].status = status

    assert (await rig.zns(token))[1]["error"] == error


async def test_zns_number_without_zalo_and_daily_quota(aiohttp_server: AiohttpServer) -> None:
    fake = FakeZalo(daily_quota=1)
    fake.no_zalo.add("+84987654321")
    server = await aiohttp_server(create_app(fake))
    async with aiohttp.ClientSession() as session:
        rig = Rig(fake, server, session, Receiver())
        token = await rig.token()

        assert (await rig.zns(token, phone="84987654321"))[1]["error"] == -118
        first = (await rig.zns(token, tracking_id="one"))[1]
        assert first["data"]["quota"]["remainingQuota"] == "0"
        assert (await rig.zns(token, tracking_id="two"))[1]["error"] == -144
        assert (await rig.zns(token, tracking_id="one"))[1]["data"]["msg_id"] == first["data"][
            "msg_id"
        ]


async def test_template_info_lists_the_params_and_unknown_ids_are_109(rig: Rig) -> None:
    token = await rig.token()

    status, body = await rig.api(
        "GET", "/template/info/v2", token, params={"template_id": "250001"}
    )
    unknown = await rig.api("GET", "/template/info/v2", token, params={"template_id": "1"})

    assert (status, body["error"]) == (200, 0)
    info = body["data"]
    assert (info["templateId"], info["status"], info["templateTag"]) == (
        "250001",
        "ENABLE",
        "POST_TRANSACTION",
    )
    names = {p["name"]: p for p in info["listParams"]}
    assert set(names) == {"customer_name", "dossier_code", "pickup", "due_date"}
    assert names["customer_name"] == {
        "name": "customer_name",
        "require": True,
        "type": "STRING",
        "maxLength": 30,
        "minLength": 0,
        "acceptNull": False,
    }
    assert unknown[1]["error"] == -109


# --- receipts and webhooks --------------------------------------------------------------


def _verified(rig: Rig, delivery: Delivery) -> dict[str, Any]:
    return verify_signature(
        delivery.raw, delivery.headers.get("X-ZEvent-Signature"), rig.fake.oa_secret_key
    )


async def test_immediate_receipt_is_a_signed_zns_webhook_and_status_says_delivered(
    rig: Rig,
) -> None:
    token = await rig.token()
    msg_id = (await rig.zns(token))[1]["data"]["msg_id"]

    delivery = await rig.receiver.next()

    assert delivery.headers["X-ZEvent-Server"] == "ZNS"
    assert delivery.headers["Content-Type"] == "application/json"
    receipt = parse_webhook(_verified(rig, delivery), delivery.headers["X-ZEvent-Server"])
    assert isinstance(receipt, ZnsReceipt)
    assert (receipt.msg_id, receipt.tracking_id, receipt.phone) == (
        msg_id,
        "notice42zns1",
        "84912345678",
    )
    _, body = await rig.api("GET", "/message/status", token, params={"message_id": msg_id})
    assert body["data"]["status"] == 1
    assert int(body["data"]["delivery_time"]) == int(receipt.delivered_at.timestamp() * 1000)
    assert rig.fake.sent[0].receipts_sent == 1
    unknown = await rig.api("GET", "/message/status", token, params={"message_id": "nope"})
    assert unknown[1]["error"] == -100


async def test_late_receipt_comes_after_the_late_delay(rig: Rig) -> None:
    token = await rig.token()
    rig.fake.receipts = "late"
    msg_id = (await rig.zns(token))[1]["data"]["msg_id"]

    assert await rig.receiver.nothing_within(0.2)
    pending = await rig.api("GET", "/message/status", token, params={"message_id": msg_id})
    assert pending[1]["data"] == {"delivery_time": "", "status": 0, "message": "Pending"}
    delivery = await rig.receiver.next(within=1.0)
    assert _verified(rig, delivery)["message"]["msg_id"] == msg_id


async def test_never_receipt_mode_posts_nothing_and_status_stays_pending(rig: Rig) -> None:
    token = await rig.token()
    rig.fake.receipts = "never"
    msg_id = (await rig.zns(token))[1]["data"]["msg_id"]

    assert await rig.receiver.nothing_within(0.3)
    status = await rig.api("GET", "/message/status", token, params={"message_id": msg_id})
    assert status[1]["data"]["status"] == 0


async def test_duplicate_receipt_mode_posts_the_same_body_twice(rig: Rig) -> None:
    token = await rig.token()
    rig.fake.receipts = "duplicate"
    await rig.zns(token)

    first, second = await rig.receiver.next(), await rig.receiver.next()

    assert first.raw == second.raw
    assert parse_webhook(_verified(rig, second), "ZNS") == parse_webhook(
        _verified(rig, first), "ZNS"
    )
    assert rig.fake.sent[0].receipts_sent == 2


async def test_citizens_post_signed_compact_oa_webhooks_that_parse_into_bot_events(
    rig: Rig,
) -> None:
    user = rig.fake.add_user("Lê Văn Cường", PHONE)

    statuses = [
        await rig.fake.follow(user.user_id),
        await rig.fake.chat_now(user.user_id),
        await rig.fake.send_text(user.user_id, "Tra cứu hồ sơ"),
        await rig.fake.click(user.user_id, "#tracuu"),
        await rig.fake.share_info(user.user_id),
        await rig.fake.unfollow(user.user_id),
    ]

    assert statuses == [200] * 6
    events = []
    for _ in statuses:
        delivery = await rig.receiver.next()
        assert delivery.headers["X-ZEvent-Server"] == "OA OpenAPI"
        payload = _verified(rig, delivery)
        assert delivery.raw == orjson.dumps(payload)  # compact JSON, as Zalo sends it
        assert payload["timestamp"].isdigit() and len(payload["timestamp"]) == 13
        assert payload["app_id"] == rig.fake.app_id
        with pytest.raises(AuthenticationFailed):  # signed with the OA key, not the app secret
            verify_signature(
                delivery.raw, delivery.headers["X-ZEvent-Signature"], rig.fake.app_secret
            )
        events.append(parse_webhook(payload, delivery.headers["X-ZEvent-Server"]))
    assert [type(e) for e in events] == [
        Followed,
        ChatOpened,
        TextSent,
        TextSent,
        InfoShared,
        Unfollowed,
    ]
    assert {e.user_id for e in events} == {user.user_id}
    text, click, info = events[2], events[3], events[4]
    assert isinstance(text, TextSent) and text.text == "Tra cứu hồ sơ"
    assert isinstance(click, TextSent) and click.text == "#tracuu"
    assert isinstance(info, InfoShared) and (info.phone, info.name) == ("84912345678", user.name)
    assert user.last_interaction > 0 and not user.follows


async def test_duplicates_mode_posts_every_webhook_twice_with_one_dedupe_key(rig: Rig) -> None:
    user = follower(rig)
    rig.fake.webhooks = "duplicates"
    rig.receiver.status = 500  # Zalo sees the failure; the fake reports it

    status = await rig.fake.send_text(user.user_id, "Alo")

    first, second = await rig.receiver.next(), await rig.receiver.next()
    assert status == 500
    assert first.raw == second.raw
    one, two = (parse_webhook(_verified(rig, d), "OA OpenAPI") for d in (first, second))
    assert one.dedupe_key == two.dedupe_key
    assert rig.fake.inbound[-1].statuses == [500, 500]


# --- control API, page, standalone ------------------------------------------------------


async def test_control_api_switches_modes_and_refuses_bad_values_without_changing_any(
    rig: Rig,
) -> None:
    status, state = await rig.control(
        "POST", "/_fake/mode", {"mode": "rate_limited", "count": 2, "receipts": "late"}
    )
    assert status == 200
    assert (state["mode"], state["count"], state["receipts"]) == ("rate_limited", 2, "late")

    for bad in (
        {"mode": "sideways"},
        {"count": 0},
        {"receipts": "sometimes"},
        {"refresh_mode": "maybe"},
        {"slow_delay": -1},
        {"no_zalo": ["0912345678"]},
        {"colour": "blue"},
        {"webhooks": "duplicates", "mode": "nope"},
    ):
        status, body = await rig.control("POST", "/_fake/mode", bad)
        assert status == 400, bad
        assert isinstance(body["error"], str)
    assert (rig.fake.mode, rig.fake.webhooks) == ("rate_limited", "normal")

    await rig.control(
        "POST",
        "/_fake/mode",
        {"refresh_mode": "refused", "no_zalo": [PHONE], "webhooks": "duplicates"},
    )
    assert (rig.fake.refresh_mode, rig.fake.no_zalo) == ("refused", {PHONE})
    status, state = await rig.control("POST", "/_fake/reset")
    assert (state["mode"], state["receipts"], state["refresh_mode"]) == ("ok", "immediate", "ok")
    assert state["webhooks"] == "normal"


async def test_control_api_drives_a_citizen_and_shows_the_thread(rig: Rig) -> None:
    status, user = await rig.control(
        "POST", "/_fake/users", {"name": "Phạm Thị Dung", "phone": "0912345678"}
    )
    assert status == 201
    assert user["phone_e164"] == PHONE and user["follows"] is False
    assert (await rig.control("POST", "/_fake/users", {"name": ""}))[0] == 400
    assert (await rig.control("POST", "/_fake/users", {"name": "X", "phone": "12"}))[0] == 400

    uid = user["user_id"]
    assert (await rig.control("POST", f"/_fake/users/{uid}/follow"))[1] == {"status": 200}
    assert (await rig.control("POST", f"/_fake/users/{uid}/text", {"text": "Alo"}))[1] == {
        "status": 200
    }
    assert (await rig.control("POST", f"/_fake/users/{uid}/text", {}))[0] == 400
    assert (await rig.control("POST", f"/_fake/users/{uid}/dance"))[0] == 404
    assert (await rig.control("POST", "/_fake/users/123/follow"))[0] == 404
    await rig.cs(await rig.token(), uid, {"text": "Chào bạn"})

    _, thread = await rig.control("GET", f"/_fake/thread?user_id={uid}")
    assert [(item["from"], item["text"]) for item in thread] == [
        ("user", "(đã quan tâm OA)"),
        ("user", "Alo"),
        ("oa", "Chào bạn"),
    ]
    _, messages = await rig.control("GET", f"/_fake/messages?user_id={uid}")
    assert [m["body"]["message"]["text"] for m in messages] == ["Chào bạn"]
    _, users = await rig.control("GET", "/_fake/users")
    assert [u["user_id"] for u in users] == [uid]
    _, state = await rig.control("GET", "/_fake/state")
    assert state["refresh_calls"] == 1 and state["calls"][0]["endpoint"] == "oa"
    assert (await rig.control("GET", "/_fake/thread?user_id=1"))[0] == 404

    rig.fake.webhook_url = None
    assert (await rig.control("POST", f"/_fake/users/{uid}/chat_now"))[0] == 409


async def test_chat_page_is_served(rig: Rig) -> None:
    async with rig.session.get(rig.url("/")) as resp:
        page = await resp.text()

    assert resp.content_type == "text/html" and resp.charset == "utf-8"
    for testid in ("user-select", "thread", "share-phone", "text-input", "send"):
        assert f'data-testid="{testid}"' in page
    assert rig.server.app is not None and isinstance(rig.server.app[FAKE], FakeZalo)


async def test_the_fake_runs_standalone_and_prints_the_gateway_settings() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "providers.fakes.zalo",
        "--port",
        "0",
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        lines = [
            (await asyncio.wait_for(process.stdout.readline(), 15)).decode().strip()
            for _ in range(7)
        ]
        values = dict(line.split("=", 1) for line in lines)
        base = values["ZALO_OAUTH_BASE_URL"]
        assert values["ZALO_OA_BASE_URL"] == values["ZALO_ZNS_BASE_URL"] == base
        form = {
            "refresh_token": values["ZALO_REFRESH_TOKEN"],
            "app_id": values["ZALO_APP_ID"],
            "grant_type": "refresh_token",
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{base}/v4/oa/access_token",
                data=form,
                headers={"secret_key": values["ZALO_APP_SECRET"]},
            ) as resp,
        ):
            assert "access_token" in await resp.json()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
