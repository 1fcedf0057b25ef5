"""The real ``ZaloClient`` against the fake Zalo over loopback HTTP, with real Redis.

What goes over the wire (OA ``cs`` text, buttons, ``request_user_info``; ZNS with its
``tracking_id``), template validation before sending, the one mapping of Zalo's answers
to our exceptions, and the rotating token pair: one refresh however many calls meet an
expired token, in one process and in two real OS processes sharing a token store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer
from redis.asyncio import Redis

from gateway.chat.tokens import DatabaseTokenStore
from gateway.errors import (
    ChannelUnavailable,
    FieldError,
    MaybeSent,
    OutsideWindow,
    ProviderError,
    RateLimited,
    TemplateRefused,
    TemporaryProviderError,
    TokenRefreshFailed,
    TokenRejected,
    ValidationFailed,
)
from gateway.settings import ZaloSettings
from gateway.storage.db import create_engine
from providers.fakes.zalo import FakeUser, FakeZalo, create_app
from providers.zalo.client import ZaloClient
from providers.zalo.oa import Button, OaRequestUserInfo, OaText
from providers.zalo.tokens import TokenPair, TokenStore

ROOT = Path(__file__).resolve().parents[3]
PHONE = "+84912345678"
DATA = {
    "customer_name": "Nguyễn Văn An",
    "dossier_code": "000.00.12.H19-240401-0001",
    "pickup": "Bộ phận một cửa, 12 Lê Lợi",
}
DATA_SHORT = {"customer_name": "An", "dossier_code": "H19-1"}  # template 250002
LIFETIME = 90_000


class MemoryTokenStore:
    """A :class:`TokenStore` in memory, for one process (the races use the database)."""

    def __init__(self) -> None:
        self.pair: TokenPair | None = None

    async def load(self) -> TokenPair | None:
        return self.pair

    async def save(self, pair: TokenPair) -> None:
        self.pair = pair


class Clock:
    """A settable clock shared by the fake and the client when a test moves time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    fake: FakeZalo
    base: str
    session: aiohttp.ClientSession
    redis: Redis
    redis_url: str
    prefix: str
    alerts: list[str]
    tokens: MemoryTokenStore = dataclasses.field(default_factory=MemoryTokenStore)

    def settings(self, **changes: Any) -> ZaloSettings:
        settings = ZaloSettings(
            app_id=self.fake.app_id,
            app_secret=self.fake.app_secret,
            oa_secret_key=self.fake.oa_secret_key,
            refresh_token="fake-refresh-token-0",
            oauth_base_url=self.base,
            oa_base_url=self.base,
            zns_base_url=self.base,
            timeout_seconds=2.0,
        )
        return dataclasses.replace(settings, **changes)

    def store(self) -> MemoryTokenStore:
        """The token store every client of this rig shares (unless given another)."""
        return self.tokens

    def client(
        self,
        *,
        clock: Clock | None = None,
        store: TokenStore | None = None,
        **settings: Any,
    ) -> ZaloClient:
        async def alert(message: str) -> None:
            self.alerts.append(message)

        return ZaloClient(
            self.settings(**settings),
            self.session,
            self.redis,
            key_prefix=self.prefix,
            store=store or self.store(),
            clock=clock or time.time,
            on_alert=alert,
        )

    def endpoint_calls(self, endpoint: str) -> list[str]:
        """The modes met by the calls to one endpoint, in order."""
        return [call.mode for call in self.fake.calls if call.endpoint == endpoint]


@asynccontextmanager
async def make_rig(
    aiohttp_server: AiohttpServer, redis_url: str, fake: FakeZalo
) -> AsyncIterator[Rig]:
    """The fake on loopback, a session, and Redis under a private prefix deleted after."""
    server = await aiohttp_server(create_app(fake))
    redis = Redis.from_url(redis_url)
    prefix = f"test:zalo:{uuid.uuid4().hex}:"
    try:
        async with aiohttp.ClientSession() as session:
            base = str(server.make_url("")).rstrip("/")
            yield Rig(fake, base, session, redis, redis_url, prefix, [])
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


@pytest.fixture
async def rig(aiohttp_server: AiohttpServer, redis_server: str) -> AsyncIterator[Rig]:
    fake = FakeZalo(timeout_delay=0.8, slow_delay=0.2, receipt_delay=0.0)
    async with make_rig(aiohttp_server, redis_server, fake) as made:
        yield made


def follower(rig: Rig) -> FakeUser:
    return rig.fake.add_user("Nguyễn Văn An", PHONE, follows=True)


# --- what goes over the wire ------------------------------------------------------------


async def test_first_call_redeems_the_configured_refresh_token_and_stores_the_pair(
    rig: Rig,
) -> None:
    client, user = rig.client(), follower(rig)

    await client.send_oa(user.user_id, OaText("một"))
    await client.send_oa(user.user_id, OaText("hai"))

    assert (rig.fake.refresh_calls, rig.fake.refresh_refused) == (1, 0)
    assert rig.fake.used_refresh_tokens == {"fake-refresh-token-0"}
    stored = await rig.store().load()
    assert stored is not None
    assert stored.refresh_token in rig.fake.refresh_tokens  # the live, rotated one
    assert stored.expires_at == pytest.approx(time.time() + LIFETIME, abs=5)
    assert {call.access_token for call in rig.fake.calls} == {stored.access_token}


async def test_oa_text_buttons_and_request_user_info_are_sent_as_zalo_expects(rig: Rig) -> None:
    client, user = rig.client(), follower(rig)

    sent = [
        await client.send_oa(user.user_id, OaText("Xin chào")),
        await client.send_oa(
            user.user_id,
            OaText("Chọn một mục", (Button("Tra cứu hồ sơ", "#tracuu"), Button("Góp ý", "#gopy"))),
        ),
        await client.send_oa(
            user.user_id,
            OaRequestUserInfo("Chia sẻ số điện thoại", "Để tra cứu hồ sơ", "https://x/y.png"),
        ),
    ]

    bodies = [m.body for m in rig.fake.messages_for(user.user_id)]
    assert [s.message_id for s in sent] == [m.message_id for m in rig.fake.sent]
    assert {s.user_id for s in sent} == {user.user_id}
    assert bodies[0] == {"recipient": {"user_id": user.user_id}, "message": {"text": "Xin chào"}}
    assert bodies[1]["message"] == {
        "text": "Chọn một mục",
        "attachment": {
            "type": "template",
            "payload": {
                "buttons": [
                    {"title": "Tra cứu hồ sơ", "type": "oa.query.hide", "payload": "#tracuu"},
                    {"title": "Góp ý", "type": "oa.query.hide", "payload": "#gopy"},
                ]
            },
        },
    }
    assert bodies[2]["message"] == {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "request_user_info",
                "elements": [
                    {
                        "title": "Chia sẻ số điện thoại",
                        "subtitle": "Để tra cứu hồ sơ",
                        "image_url": "https://x/y.png",
                    }
                ],
            },
        }
    }


async def test_zns_is_sent_with_its_tracking_id_after_one_template_lookup(rig: Rig) -> None:
    client = rig.client()

    accepted = await client.send_zns(PHONE, "250001", DATA, "notice42zns1")
    again = await client.send_zns(PHONE, "250001", DATA, "notice42zns1")
    other = await client.send_zns(PHONE, "250001", DATA, "notice43zns1")

    first, second = rig.fake.sent
    assert first.body == {
        "phone": "84912345678",
        "template_id": "250001",
        "template_data": DATA,
        "tracking_id": "notice42zns1",
    }
    assert accepted.msg_id == first.message_id == again.msg_id  # Zalo deduplicated
    assert other.msg_id == second.message_id
    assert accepted.remaining_quota == 499 and other.remaining_quota == 498
    assert accepted.sent_time is not None
    assert abs(accepted.sent_time.timestamp() - time.time()) < 5
    assert rig.endpoint_calls("template") == ["ok"]  # cached in Redis after the first


async def test_zns_development_mode_is_sent_as_such(rig: Rig) -> None:
    await rig.client(zns_development=True).send_zns(PHONE, "250002", DATA_SHORT, "dev1")

    assert rig.fake.sent[0].body["mode"] == "development"


@pytest.mark.parametrize(
    ("data", "tracking_id", "errors"),
    [
        (
            {**DATA, "customer_name": "x" * 31},
            "t1",
            [FieldError("template_data.customer_name", "31 characters, at most 30")],
        ),
        (
            {"customer_name": "An", "dossier_code": "H19-1"},
            "t1",
            [FieldError("template_data.pickup", "is required")],
        ),
        (
            {**DATA, "note": "x"},
            "t1",
            [FieldError("template_data.note", "not a parameter of template 250001")],
        ),
        (
            {**DATA, "dossier_code": ""},
            "t1",
            [FieldError("template_data.dossier_code", "must not be empty")],
        ),
        (DATA, "notice-42", [FieldError("tracking_id", "1 to 48 letters or digits")]),
    ],
    ids=["too-long", "missing", "unknown", "empty", "tracking-id"],
)
async def test_bad_template_data_is_refused_before_sending_with_the_field_named(
    rig: Rig, data: dict[str, str], tracking_id: str, errors: list[FieldError]
) -> None:
    client = rig.client()

    with pytest.raises(ValidationFailed) as caught:
        await client.send_zns(PHONE, "250001", data, tracking_id)

    assert caught.value.errors == errors
    assert rig.endpoint_calls("template") == ["ok"]
    assert rig.endpoint_calls("zns") == []


async def test_a_disabled_template_and_a_foreign_number_are_refused_before_sending(
    rig: Rig,
) -> None:
    client = rig.client()
    rig.fake.templates["250002"].status = "DISABLE"

    with pytest.raises(ValidationFailed) as caught:
        await client.send_zns(PHONE, "250002", DATA_SHORT, "t1")
    assert caught.value.errors == [FieldError("template_id", "template 250002 is DISABLE")]
    with pytest.raises(ChannelUnavailable) as foreign:
        await client.send_zns("+14155550100", "250002", DATA_SHORT, "t2")
    assert foreign.value.code == "phone_format"
    assert rig.endpoint_calls("zns") == []


async def test_a_template_changed_at_zalo_is_refused_there_then_looked_up_again(
    rig: Rig,
) -> None:
    client = rig.client()
    await client.template_info("250001")  # cached with customer_name up to 30
    rig.fake.templates["250001"].params[0]["maxLength"] = 5

    with pytest.raises(TemplateRefused) as caught:
        await client.send_zns(PHONE, "250001", DATA, "t1")
    assert caught.value.code == "-1121"
    with pytest.raises(ValidationFailed) as refused:  # the cache was dropped
        await client.send_zns(PHONE, "250001", DATA, "t1")

    assert refused.value.errors == [
        FieldError("template_data.customer_name", "13 characters, at most 5")
    ]
    assert rig.endpoint_calls("template") == ["ok", "ok"]
    assert rig.endpoint_calls("zns") == ["ok"]


async def test_a_template_error_is_raised_even_when_the_cache_cannot_be_cleared(
    rig: Rig,
) -> None:
    await rig.client().template_info("250001")
    rig.fake.templates["250001"].params[0]["maxLength"] = 5
    # A real Redis user that may read and write our keys but not delete them.
    username = f"test-zalo-{uuid.uuid4().hex}"
    await rig.redis.acl_setuser(
        username,
        enabled=True,
        nopass=True,
        categories=["+@all"],
        commands=["-del", "-unlink"],
        keys=[f"{rig.prefix}*"],
    )
    no_delete = Redis.from_url(rig.redis_url, username=username, password="any")
    try:
        client = ZaloClient(
            rig.settings(), rig.session, no_delete, key_prefix=rig.prefix, store=rig.store()
        )
        with pytest.raises(TemplateRefused) as caught:
            await client.send_zns(PHONE, "250001", DATA, "t1")
    finally:
        await no_delete.aclose()
        await rig.redis.acl_deluser(username)

    assert caught.value.code == "-1121"


async def test_zns_status_is_delivered_after_the_receipt_and_pending_without(rig: Rig) -> None:
    client = rig.client()
    delivered = await client.send_zns(PHONE, "250002", DATA_SHORT, "s1")
    rig.fake.receipts = "never"
    pending = await client.send_zns(PHONE, "250002", DATA_SHORT, "s2")
    await asyncio.sleep(0.05)  # the fake's receipt task runs

    assert await client.zns_status(delivered.msg_id) == "delivered"
    assert await client.zns_status(pending.msg_id) == "pending"


# --- error mapping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "channel", "error", "code"),
    [
        ("rate_limited", "oa", RateLimited, "-32"),
        ("rate_limited", "zns", RateLimited, "-32"),
        ("outside_window", "oa", OutsideWindow, "-230"),
        ("no_zalo_account", "zns", ChannelUnavailable, "-118"),
        ("http_500", "oa", TemporaryProviderError, "http_500"),
        ("http_500", "zns", TemporaryProviderError, "http_500"),
    ],
)
async def test_zalo_errors_map_to_our_exception_types(
    rig: Rig, mode: str, channel: str, error: type[ProviderError], code: str
) -> None:
    client, user = rig.client(), follower(rig)
    await client.template_info("250001")  # so the mode meets the send itself
    rig.fake.set_mode(mode, count=1)

    with pytest.raises(error) as caught:
        if channel == "oa":
            await client.send_oa(user.user_id, OaText("Xin chào"))
        else:
            await client.send_zns(PHONE, "250001", DATA, "e1")

    assert type(caught.value) is error  # not a subclass standing in for it
    assert caught.value.code == code
    assert rig.fake.sent == []
    assert rig.fake.refresh_calls == 1  # only the first-ever grant: no refresh on these


async def test_user_state_errors_map_to_fallback_types(rig: Rig) -> None:
    client = rig.client()
    stranger = rig.fake.add_user("Trần Thị Bình", follows=False)
    silent = follower(rig)
    silent.last_interaction = 0.0
    rig.fake.no_zalo.add("+84987654321")

    with pytest.raises(ChannelUnavailable) as not_following:
        await client.send_oa(stranger.user_id, OaText("x"))
    with pytest.raises(OutsideWindow) as never_interacted:
        await client.send_oa(silent.user_id, OaText("x"))
    with pytest.raises(ChannelUnavailable) as no_zalo:
        await client.send_zns("+84987654321", "250002", DATA_SHORT, "n1")

    assert type(not_following.value) is ChannelUnavailable
    assert not_following.value.code == "-213"
    assert never_interacted.value.code == "-232"
    assert no_zalo.value.code == "-118"


async def test_an_answer_that_never_comes_is_temporary_and_the_message_was_taken(
    rig: Rig,
) -> None:
    client, user = rig.client(timeout_seconds=0.3), follower(rig)
    rig.fake.set_mode("timeout", count=1)

    with pytest.raises(MaybeSent) as caught:
        await client.send_oa(user.user_id, OaText("Xin chào"))

    assert caught.value.code == "timeout_after_send"  # what logs and attempt rows show
    assert len(rig.fake.sent) == 1


async def test_slow_answers_within_the_timeout_are_fine(rig: Rig) -> None:
    client, user = rig.client(timeout_seconds=1.0), follower(rig)
    rig.fake.set_mode("slow")

    assert (await client.send_oa(user.user_id, OaText("Xin chào"))).message_id


async def test_nobody_listening_is_temporary_and_nothing_was_sent(rig: Rig) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    await rig.client().access_token()  # a stored pair: only the API call goes nowhere
    client = rig.client(oa_base_url=dead)

    with pytest.raises(TemporaryProviderError) as caught:
        await client.send_oa("123", OaText("Xin chào"))

    assert not isinstance(caught.value, MaybeSent)
    assert caught.value.code == "connect"


# --- the token pair ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "how"),
    [("oa", "expired"), ("oa", "revoked"), ("zns", "expired"), ("zns", "revoked")],
    ids=["oa-220", "oa-216", "zns-124-expired", "zns-124-invalid"],
)
async def test_a_rejected_token_is_refreshed_once_and_the_call_retried_once(
    rig: Rig, channel: str, how: str
) -> None:
    client, user = rig.client(), follower(rig)
    await client.template_info("250001")
    old = await client.access_token()
    if how == "expired":
        rig.fake.set_mode("token_expired", count=1)
    else:  # Zalo no longer knows the token at all
        del rig.fake.access_tokens[old]

    if channel == "oa":
        await client.send_oa(user.user_id, OaText("Xin chào"))
    else:
        await client.send_zns(PHONE, "250001", DATA, "r1")

    assert rig.fake.refresh_calls == 2  # the first-ever grant and this one
    new = await client.access_token()
    assert new != old
    calls = [c.access_token for c in rig.fake.calls if c.endpoint == channel]
    assert calls == [old, new]
    assert len(rig.fake.sent) == 1


async def test_a_token_rejected_again_after_the_refresh_is_raised(rig: Rig) -> None:
    client, user = rig.client(), follower(rig)
    await client.access_token()
    rig.fake.set_mode("token_expired")

    with pytest.raises(TokenRejected) as caught:
        await client.send_oa(user.user_id, OaText("Xin chào"))

    assert caught.value.code == "-220"
    assert rig.fake.refresh_calls == 2  # refresh once ...
    assert rig.endpoint_calls("oa") == ["token_expired"] * 2  # ... retry once


async def test_a_cold_start_with_concurrent_sends_redeems_the_refresh_token_once(
    rig: Rig,
) -> None:
    client, user = rig.client(), follower(rig)

    await asyncio.gather(*(client.send_oa(user.user_id, OaText(f"{n}")) for n in range(8)))

    assert (rig.fake.refresh_calls, rig.fake.refresh_refused) == (1, 0)
    assert len(rig.fake.sent) == 8


async def test_token_expiry_mid_run_refreshes_exactly_once_and_the_run_continues(
    aiohttp_server: AiohttpServer, redis_server: str
) -> None:
    clock = Clock()
    async with make_rig(aiohttp_server, redis_server, FakeZalo(clock=clock)) as rig:
        client, user = rig.client(clock=clock), follower(rig)
        for n in range(3):
            await client.send_oa(user.user_id, OaText(f"trước {n}"))
        before = await client.access_token()

        clock.now += LIFETIME + 1  # the 25 hours are over, for Zalo and for us
        sent = await asyncio.gather(
            *(client.send_oa(user.user_id, OaText(f"cùng lúc {n}")) for n in range(10))
        )
        for n in range(3):
            await client.send_oa(user.user_id, OaText(f"sau {n}"))

        assert rig.fake.refresh_calls == 2  # the first-ever grant and exactly one more
        assert rig.fake.refresh_refused == 0
        assert len({s.message_id for s in sent}) == 10
        assert len(rig.fake.sent) == 16
        after = await client.access_token()
        assert [c.access_token for c in rig.fake.calls] == [before] * 3 + [after] * 13
        assert set(rig.endpoint_calls("oa")) == {"ok"}  # refreshed ahead: no -220 met


async def test_zalo_expiring_a_token_early_costs_one_refresh_for_many_concurrent_sends(
    aiohttp_server: AiohttpServer, redis_server: str
) -> None:
    zalo_clock = Clock()
    async with make_rig(aiohttp_server, redis_server, FakeZalo(clock=zalo_clock)) as rig:
        client, user = rig.client(), follower(rig)  # the client keeps the real time
        before = await client.access_token()
        zalo_clock.now += LIFETIME + 1

        await asyncio.gather(*(client.send_oa(user.user_id, OaText(f"{n}")) for n in range(10)))

        assert (rig.fake.refresh_calls, rig.fake.refresh_refused) == (2, 0)
        after = await client.access_token()
        calls = [(c.access_token, c.mode) for c in rig.fake.calls]
        assert sorted(calls) == sorted([(before, "ok")] * 10 + [(after, "ok")] * 10)
        assert len(rig.fake.sent) == 10


async def test_refresh_ahead_of_expiry_and_a_failing_refresh_is_postponed(rig: Rig) -> None:
    clock = Clock()
    client, user = rig.client(clock=clock), follower(rig)
    first = await client.access_token()
    stored = await rig.store().load()
    assert stored is not None

    clock.now = stored.expires_at - 1800  # inside the hour ahead of expiry
    rig.fake.refresh_mode = "http_500"
    await client.send_oa(user.user_id, OaText("vẫn gửi được"))
    assert rig.fake.refresh_calls == 2  # tried ...
    assert await rig.store().load() == stored  # ... and the stored pair was kept
    assert rig.fake.calls[-1].access_token == first

    clock.now = stored.expires_at + 1  # now the token is gone and Zalo is still down
    with pytest.raises(TemporaryProviderError) as caught:
        await client.send_oa(user.user_id, OaText("không gửi được"))
    assert caught.value.code == "http_500"

    rig.fake.refresh_mode = "ok"
    await client.send_oa(user.user_id, OaText("lại gửi được"))
    assert rig.fake.refresh_refused == 0  # the kept refresh token was still good
    assert stored.refresh_token in rig.fake.used_refresh_tokens
    assert rig.alerts == []


async def test_a_refused_refresh_alerts_an_admin_and_is_permanent(rig: Rig) -> None:
    clock = Clock()
    client, user = rig.client(clock=clock), follower(rig)
    await client.access_token()
    clock.now += LIFETIME + 1
    rig.fake.refresh_mode = "refused"

    with pytest.raises(TokenRefreshFailed) as caught:
        await client.send_oa(user.user_id, OaText("Xin chào"))

    assert caught.value.code == "refresh_refused"
    assert len(rig.alerts) == 1 and "refused" in rig.alerts[0]
    assert rig.endpoint_calls("oa") == []


async def test_no_stored_pair_and_no_configured_refresh_token_fails_without_calling(
    rig: Rig,
) -> None:
    client = rig.client(refresh_token="")

    with pytest.raises(TokenRefreshFailed):
        await client.access_token()

    assert rig.fake.refresh_calls == 0
    assert len(rig.alerts) == 1


# --- two processes, one token pair ------------------------------------------------------

# Run by each process: one ZaloClient on the shared store, a few concurrent sends once the
# test says "go", the outcome of each as one JSON line.
CHILD = textwrap.dedent(
    """
    import asyncio, json, sys

    import aiohttp
    from redis.asyncio import Redis

    from gateway.chat.tokens import DatabaseTokenStore
    from gateway.settings import ZaloSettings
    from gateway.storage.db import create_engine
    from providers.zalo.client import ZaloClient
    from providers.zalo.oa import OaText


    async def main(config):
        redis = Redis.from_url(config["redis_url"])
        engine = create_engine(config["database_url"])
        store = DatabaseTokenStore(engine, config["settings"]["app_id"])
        async with aiohttp.ClientSession() as session:
            client = ZaloClient(
                ZaloSettings(**config["settings"]),
                session,
                redis,
                key_prefix=config["lock_prefix"],
                store=store,
            )
            await redis.ping()
            await store.load()  # connections open before the start signal
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            outcomes = await asyncio.gather(
                *(
                    client.send_oa(config["user_id"], OaText(f"{config['name']} {n}"))
                    for n in range(config["sends"])
                ),
                return_exceptions=True,
            )
        results = [
            {"ok": True, "message_id": o.message_id}
            if not isinstance(o, BaseException)
            else {"ok": False, "error": type(o).__name__, "code": getattr(o, "code", None)}
            for o in outcomes
        ]
        print(json.dumps(results), flush=True)
        await redis.aclose()
        await engine.dispose()


    asyncio.run(main(json.loads(sys.argv[1])))
    """
)
SENDS_PER_PROCESS = 3


async def race(rig: Rig, lock_prefixes: list[str], database_url: str) -> list[list[dict[str, Any]]]:
    """Start one process per lock prefix, each with the production token store on
    ``database_url``; let them all send at once, return their outcomes."""
    user = follower(rig)
    settings = {
        f.name: getattr(rig.settings(), f.name)
        for f in dataclasses.fields(ZaloSettings)
        if f.name != "zns_templates"
    }
    processes = []
    try:
        for n, lock_prefix in enumerate(lock_prefixes):
            config = {
                "redis_url": rig.redis_url,
                "database_url": database_url,
                "settings": settings,
                "lock_prefix": lock_prefix,
                "user_id": user.user_id,
                "name": f"process {n}",
                "sends": SENDS_PER_PROCESS,
            }
            processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    CHILD,
                    json.dumps(config),
                    cwd=ROOT,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
            )
        for process in processes:
            assert process.stdout is not None and process.stderr is not None
            line = await asyncio.wait_for(process.stdout.readline(), 20)
            if line.strip() != b"ready":
                raise AssertionError((await process.stderr.read()).decode()[-3000:])
        for process in processes:  # as close to "at the same time" as two processes get
            assert process.stdin is not None
            process.stdin.write(b"go\n")
        await asyncio.gather(*(p.stdin.drain() for p in processes if p.stdin is not None))
        outcomes = []
        for process in processes:
            assert process.stdout is not None and process.stderr is not None
            line = await asyncio.wait_for(process.stdout.readline(), 20)
            if not line:
                raise AssertionError((await process.stderr.read()).decode()[-3000:])
            outcomes.append(json.loads(line))
            assert await asyncio.wait_for(process.wait(), 10) == 0
        return outcomes
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


def seed_a_pair_zalo_has_expired(fake: FakeZalo) -> TokenPair:
    """A pair both processes believe valid for hours, whose access token Zalo let expire."""
    issued = fake.issue_pair()
    fake.access_tokens[issued["access_token"]] = time.time() - 1
    return TokenPair(issued["access_token"], issued["refresh_token"], time.time() + 10 * 3600)


def assert_one_refresh_for_everyone(
    rig: Rig, seeded: TokenPair, outcomes: list[list[dict[str, Any]]], stored: TokenPair | None
) -> None:
    assert [[o["ok"] for o in each] for each in outcomes] == [[True] * SENDS_PER_PROCESS] * 2
    assert (rig.fake.refresh_calls, rig.fake.refresh_refused) == (1, 0)
    assert rig.fake.used_refresh_tokens == {seeded.refresh_token}
    assert len(rig.fake.sent) == 2 * SENDS_PER_PROCESS
    assert stored is not None and stored.refresh_token in rig.fake.refresh_tokens
    retried = [c.access_token for c in rig.fake.calls if c.access_token != seeded.access_token]
    assert retried == [stored.access_token] * 2 * SENDS_PER_PROCESS


@pytest.fixture
async def racing_rig(aiohttp_server: AiohttpServer, redis_server: str) -> AsyncIterator[Rig]:
    # Each refresh answer takes 0.4 s, so the second process surely asks while the first
    # one's refresh is in flight. A random app id keeps database rows apart.
    fake = FakeZalo(app_id=str(uuid.uuid4().int)[:19])
    fake.refresh_delay = 0.4
    async with make_rig(aiohttp_server, redis_server, fake) as made:
        yield made


@asynccontextmanager
async def database_store(rig: Rig, database_url: str) -> AsyncIterator[DatabaseTokenStore]:
    """The production token store, holding a pair Zalo has expired behind our back."""
    engine = create_engine(database_url)
    try:
        yield DatabaseTokenStore(engine, rig.fake.app_id)
    finally:
        await engine.dispose()


async def test_two_processes_on_one_database_store_refresh_once_and_both_send(
    racing_rig: Rig, database_url: str
) -> None:
    rig = racing_rig
    async with database_store(rig, database_url) as store:
        seeded = seed_a_pair_zalo_has_expired(rig.fake)
        await store.save(seeded)

        outcomes = await race(rig, [rig.prefix, rig.prefix], database_url)

        assert_one_refresh_for_everyone(rig, seeded, outcomes, await store.load())


async def test_without_the_shared_lock_the_race_loses_the_refresh_token(
    racing_rig: Rig, database_url: str
) -> None:
    # The same race with a lock each: shows the test above can fail.
    rig = racing_rig
    async with database_store(rig, database_url) as store:
        await store.save(seed_a_pair_zalo_has_expired(rig.fake))

        outcomes = await race(rig, [rig.prefix + "a:", rig.prefix + "b:"], database_url)

    assert rig.fake.refresh_refused >= 1
    failures = [o for each in outcomes for o in each if not o["ok"]]
    assert {(o["error"], o["code"]) for o in failures} == {
        ("TokenRefreshFailed", "refresh_refused")
    }
