"""One contract suite over every SMS provider, each against its fake on loopback HTTP.

The fakes speak the vendors' wire formats (``providers/fakes/esms.py`` and
``speedsms.py``); the same tests run for eSMS and SpeedSMS. Vendor-only behaviour
(eSMS ``RequestId`` deduplication, SpeedSMS's lack of it) is expressed through the
harness, and a few vendor-specific checks of the mapping and callback parsing follow the contract.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from gateway.errors import (
    MalformedInput,
    MaybeSent,
    PermanentProviderError,
    RecipientUnreachable,
    TemporaryProviderError,
)
from gateway.settings import EsmsSettings, SpeedSmsSettings
from providers import esms, speedsms
from providers._http import retry_after
from providers.base import Receipt, SmsAccepted, SmsMessage, SmsProvider
from providers.fakes import FakeSmsCentre, create_esms_app, create_speedsms_app

CLIENT_TIMEOUT = 5.0  # per-request timeout of the providers under test
SHORT_TIMEOUT = 0.3  # for the lost-answer case; the fake holds its answer for 1 s
VI_TEXT = "Hồ sơ 000.00.12.H19-240401-0001 của ông/bà đã được tiếp nhận. Hẹn trả: 12/04/2024."
ASCII_TEXT = "Ho so 000.00.12.H19-240401-0001 cua ong/ba da duoc tiep nhan. Hen tra: 12/04/2024."
PHONE = "+84912345678"
ROOT = Path(__file__).resolve().parents[2]


def sms(request_id: str = "notice-1:sms:1", *, unicode: bool = True) -> SmsMessage:
    return SmsMessage(
        notice_id="notice-1",
        request_id=request_id,
        phone_e164=PHONE,
        text=VI_TEXT if unicode else ASCII_TEXT,
        unicode=unicode,
        segments=2 if unicode else 1,
    )


class Receiver:
    """Our side of delivery callbacks: records each one as (query, body)."""

    def __init__(self) -> None:
        self.calls: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        await self.calls.put((dict(request.query), await request.read()))
        return web.Response(text="ok")

    async def next(self, within: float = 3.0) -> tuple[dict[str, str], bytes]:
        return await asyncio.wait_for(self.calls.get(), within)

    async def nothing_within(self, seconds: float) -> bool:
        await asyncio.sleep(seconds)
        return self.calls.empty()


@dataclass
class Harness:
    """One provider wired to its fake and to a callback receiver."""

    kind: str
    centre: FakeSmsCentre
    server: TestServer
    provider: SmsProvider
    receiver: Receiver
    vendor_phone: str  # how the vendor wants PHONE on the wire
    idempotent: bool  # the vendor recognises a retried request (eSMS RequestId)
    base_url: str
    # A provider for another base URL and/or with another timeout.
    make_provider: Callable[[str, float], SmsProvider]

    async def send(self, message: SmsMessage) -> SmsAccepted:
        # eSMS takes the callback URL per message; SpeedSMS has it on the account (fake).
        return await self.provider.send(message, callback_url=self.receiver.url)

    def receipts(self, call: tuple[dict[str, str], bytes]) -> list[Receipt]:
        return self.provider.parse_receipts(*call)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def receiver(aiohttp_server: AiohttpServer) -> Receiver:
    receiver = Receiver()
    app = web.Application()
    app.router.add_route("*", "/webhooks/sms/{provider}/s3cret", receiver.handle)
    server = await aiohttp_server(app)
    receiver.url = str(server.make_url("/webhooks/sms/fake/s3cret"))
    return receiver


@pytest.fixture(params=["esms", "speedsms"])
async def harness(
    request: pytest.FixtureRequest,
    aiohttp_server: AiohttpServer,
    session: aiohttp.ClientSession,
    receiver: Receiver,
) -> Harness:
    centre = FakeSmsCentre(
        timeout_delay=1.0,
        receipt_delay=0.05,
        late_receipt_delay=0.5,
        throttle_retry_after=7,
        callback_retry_delay=0.05,
    )
    if request.param == "esms":
        server = await aiohttp_server(create_esms_app(centre))

        def make_esms(base_url: str, timeout: float = CLIENT_TIMEOUT) -> SmsProvider:
            settings = EsmsSettings(
                base_url=base_url, api_key="key", secret_key="secret", brandname="TTHC-TINH"
            )
            return esms.EsmsProvider(settings, session, timeout=timeout)

        base = str(server.make_url("")).rstrip("/")
        return Harness(
            "esms",
            centre,
            server,
            make_esms(base),
            receiver,
            "0912345678",
            True,
            base,
            make_esms,
        )

    centre.callback_url = receiver.url
    server = await aiohttp_server(create_speedsms_app(centre))

    def make_speedsms(base_url: str, timeout: float = CLIENT_TIMEOUT) -> SmsProvider:
        settings = SpeedSmsSettings(base_url=base_url, token="tok", sender="TTHC-TINH")
        return speedsms.SpeedSmsProvider(settings, session, timeout=timeout)

    base = str(server.make_url("")).rstrip("/")
    return Harness(
        "speedsms",
        centre,
        server,
        make_speedsms(base),
        receiver,
        "84912345678",
        False,
        base,
        make_speedsms,
    )


# --- the contract -------------------------------------------------------------------------


async def test_send_is_accepted_and_recorded_once_in_vendor_format(harness: Harness) -> None:
    accepted = await harness.send(sms())

    assert accepted.provider == harness.provider.name
    assert accepted.provider_message_id
    assert not accepted.already_sent
    [recorded] = harness.centre.messages
    assert recorded.phone == harness.vendor_phone
    assert recorded.content == VI_TEXT
    assert recorded.provider_message_id == accepted.provider_message_id
    assert recorded.sender == "TTHC-TINH"


@pytest.mark.parametrize("unicode", [True, False], ids=["ucs2", "gsm7"])
async def test_unicode_flag_reaches_the_vendor(harness: Harness, unicode: bool) -> None:
    await harness.send(sms(unicode=unicode))

    [recorded] = harness.centre.messages
    assert recorded.unicode is unicode
    assert recorded.content == (VI_TEXT if unicode else ASCII_TEXT)


async def test_http_500_is_temporary_and_nothing_is_recorded(harness: Harness) -> None:
    harness.centre.set_mode("http500")

    with pytest.raises(TemporaryProviderError) as caught:
        await harness.send(sms())

    assert caught.value.provider == harness.provider.name
    assert caught.value.code == "http_500"
    assert harness.centre.messages == []


async def test_lost_answer_is_temporary_and_retry_is_deduplicated_where_vendor_can(
    harness: Harness,
) -> None:
    harness.centre.set_mode("timeout", count=1)
    impatient = harness.make_provider(harness.base_url, SHORT_TIMEOUT)

    with pytest.raises(MaybeSent) as caught:
        await impatient.send(sms(), callback_url=harness.receiver.url)

    assert caught.value.code == "timeout_after_send"
    assert getattr(harness.provider, "idempotent", None) is harness.idempotent
    assert len(harness.centre.messages) == 1  # the vendor did take it
    retried = await harness.send(sms())
    if harness.idempotent:
        assert retried.already_sent
        assert len(harness.centre.messages) == 1
    else:  # SpeedSMS: no idempotency key, so a blind retry duplicates
        assert not retried.already_sent
        assert len(harness.centre.messages) == 2


async def test_connection_refused_is_temporary_and_proves_nothing_was_sent(
    harness: Harness,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = harness.make_provider(f"http://127.0.0.1:{port}", CLIENT_TIMEOUT)

    with pytest.raises(TemporaryProviderError) as caught:
        await provider.send(sms(), callback_url=None)

    assert caught.value.code == "connect"


async def test_throttling_is_temporary_with_retry_after(harness: Harness) -> None:
    harness.centre.set_mode("throttle")

    with pytest.raises(TemporaryProviderError) as caught:
        await harness.send(sms())

    assert caught.value.code == "throttled"
    assert caught.value.retry_after_seconds == 7.0
    assert harness.centre.messages == []


async def test_a_counted_mode_runs_out_into_ok(harness: Harness) -> None:
    harness.centre.set_mode("http500", count=2)

    for _ in range(2):
        with pytest.raises(TemporaryProviderError):
            await harness.send(sms())
    accepted = await harness.send(sms())

    assert accepted.provider_message_id
    assert harness.centre.mode == "ok"


async def test_a_number_outside_vietnam_is_unreachable_before_sending(harness: Harness) -> None:
    message = SmsMessage("n", "r", "+14155550100", ASCII_TEXT, False, 1)

    with pytest.raises(RecipientUnreachable) as caught:
        await harness.send(message)

    assert caught.value.code == "phone_format"
    assert harness.centre.send_requests == 0


# (vendor code, exception, whether the detail names an account problem)
Perm, Unreachable = PermanentProviderError, RecipientUnreachable
ESMS_ERRORS = [
    ("99", Unreachable, False),
    ("108", Perm, False),
    ("101", Perm, True),
    ("102", Perm, True),
    ("103", Perm, True),
    ("140", Perm, True),
    ("104", Perm, False),
    ("146", Perm, False),
    ("177", Perm, False),
    ("555", Perm, False),  # unknown: permanent, with the code
]
SPEEDSMS_ERRORS = [
    ("105", Unreachable, False),
    ("007", Perm, True),
    ("008", Perm, True),
    ("009", Perm, True),
    ("300", Perm, True),
    ("101", Perm, False),
    ("110", Perm, False),
    ("113", Perm, False),
    ("777", Perm, False),
]


@pytest.mark.parametrize(
    ("harness", "code", "expected", "account_problem"),
    [pytest.param("esms", *case, id=f"esms-{case[0]}") for case in ESMS_ERRORS]
    + [pytest.param("speedsms", *case, id=f"speedsms-{case[0]}") for case in SPEEDSMS_ERRORS],
    indirect=["harness"],
)
async def test_vendor_error_codes_are_permanent_with_the_code(
    harness: Harness,
    code: str,
    expected: type[PermanentProviderError],
    account_problem: bool,
) -> None:
    harness.centre.set_mode(f"error:{code}")

    with pytest.raises(PermanentProviderError) as caught:
        await harness.send(sms())

    assert type(caught.value) is expected
    assert caught.value.code == code
    assert ("account problem" in caught.value.detail) is account_problem
    assert harness.centre.messages == []


@pytest.mark.parametrize("harness", ["speedsms"], indirect=True)
async def test_speedsms_internal_error_is_temporary(harness: Harness) -> None:
    harness.centre.set_mode("error:500")

    with pytest.raises(TemporaryProviderError) as caught:
        await harness.send(sms())

    assert caught.value.code == "500"


async def test_delivery_receipt_reaches_us_and_parses_as_delivered(harness: Harness) -> None:
    message = sms()
    accepted = await harness.send(message)

    receipts = harness.receipts(await harness.receiver.next())

    assert receipts == [
        Receipt(
            provider=harness.provider.name,
            provider_message_id=accepted.provider_message_id,
            request_id=message.request_id if harness.idempotent else None,
            status="delivered",
            detail=receipts[0].detail,
        )
    ]


async def test_failed_receipt_parses_as_failed(harness: Harness) -> None:
    harness.centre.set_receipts("failed")
    await harness.send(sms())

    [receipt] = harness.receipts(await harness.receiver.next())

    assert receipt.status == "failed"


async def test_duplicate_receipts_parse_identically(harness: Harness) -> None:
    harness.centre.set_receipts("duplicate")
    await harness.send(sms())

    first = harness.receipts(await harness.receiver.next())
    second = harness.receipts(await harness.receiver.next())

    assert first == second
    assert first[0].status == "delivered"


async def test_missing_receipts_never_arrive(harness: Harness) -> None:
    harness.centre.set_receipts("missing")
    await harness.send(sms())

    assert await harness.receiver.nothing_within(0.3)


async def test_late_receipts_arrive_after_the_late_delay(harness: Harness) -> None:
    harness.centre.set_receipts("late")
    await harness.send(sms())

    assert await harness.receiver.nothing_within(0.25)
    [receipt] = harness.receipts(await harness.receiver.next())
    assert receipt.status == "delivered"


# --- the fakes' control API, page and command line -----------------------------------------


async def test_fake_is_switched_and_read_over_http(
    harness: Harness, session: aiohttp.ClientSession
) -> None:
    url = harness.server.make_url
    async with session.post(url("/_fake/mode"), json={"mode": "error:99", "count": 1}) as resp:
        assert resp.status == 200
        assert (await resp.json())["mode"] == "error:99"
    with pytest.raises(PermanentProviderError):
        await harness.send(sms("r-1"))
    await harness.send(sms("r-2"))

    async with session.get(url("/_fake/messages")) as resp:
        messages = await resp.json()
    assert [(m["phone"], m["content"]) for m in messages] == [(harness.vendor_phone, VI_TEXT)]

    async with session.post(url("/_fake/mode"), json={"mode": "sideways"}) as resp:
        assert resp.status == 400
    async with session.post(url("/_fake/mode"), json={"receipts": "missing"}) as resp:
        assert (await resp.json())["receipts"] == "missing"
    async with session.post(url("/_fake/reset")) as resp:
        assert (await resp.json())["messages"] == 0
    assert harness.centre.messages == []
    assert harness.centre.receipts == "normal"


async def test_fake_page_lists_messages_newest_first_with_vietnamese_as_sent(
    harness: Harness, session: aiohttp.ClientSession
) -> None:
    await harness.send(sms("r-1", unicode=False))
    await harness.send(sms("r-2", unicode=True))

    async with session.get(harness.server.make_url("/")) as resp:
        page = await resp.text()

    assert resp.content_type == "text/html"
    assert '<meta http-equiv="refresh" content="2">' in page
    assert page.index("Hồ sơ") < page.index("Ho so")  # newest first
    assert harness.vendor_phone in page


async def test_fakes_run_standalone_and_are_switched_from_another_process(
    session: aiohttp.ClientSession,
) -> None:
    root = ROOT
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "providers.fakes",
        "--esms-port",
        "0",
        "--speedsms-port",
        "0",
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        lines = [
            (await asyncio.wait_for(process.stdout.readline(), 15)).decode().strip()
            for _ in range(2)
        ]
        urls = dict(line.split("=", 1) for line in lines)
        assert set(urls) == {"ESMS_BASE_URL", "SPEEDSMS_BASE_URL"}

        settings = EsmsSettings(
            base_url=urls["ESMS_BASE_URL"], api_key="k", secret_key="s", brandname="B"
        )
        provider = esms.EsmsProvider(settings, session, timeout=5)
        async with session.post(
            f"{urls['ESMS_BASE_URL']}/_fake/mode", json={"mode": "error:103"}
        ) as resp:
            assert resp.status == 200
        with pytest.raises(PermanentProviderError) as caught:
            await provider.send(sms(), callback_url=None)
        assert caught.value.code == "103"
        async with session.get(f"{urls['SPEEDSMS_BASE_URL']}/") as resp:
            assert resp.status == 200
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0


# --- vendor-specific mapping and callback details ---------------------------------------------


@pytest.mark.parametrize("harness", ["esms"], indirect=True)
async def test_esms_repeated_request_id_is_already_sent(harness: Harness) -> None:
    first = await harness.send(sms())
    second = await harness.send(sms())

    assert not first.already_sent
    assert second.already_sent
    assert len(harness.centre.messages) == 1
    assert harness.centre.messages[0].request_id == "notice-1:sms:1"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"SMSID": "a", "SendStatus": "5", "SendSuccess": "1", "SendFailed": "0"}, "delivered"),
        ({"SMSID": "a", "SendStatus": "4"}, "failed"),
        ({"SMSID": "a", "SendStatus": "7"}, "pending"),
        ({"SMSID": "a", "SendStatus": "1"}, "pending"),
        ({"SMSID": "a", "SendStatus": "2"}, "pending"),
        ({"SMSID": "a", "SendStatus": "9"}, "pending"),
        # eSMS's own sample: finished, every number failed.
        ({"SMSID": "a", "SendStatus": "5", "SendSuccess": "0", "SendFailed": "2"}, "failed"),
        ({"RequestId": "r", "SendStatus": "5"}, "delivered"),
    ],
)
async def test_esms_send_status_mapping(
    session: aiohttp.ClientSession, query: dict[str, str], status: str
) -> None:
    provider = esms.EsmsProvider(EsmsSettings(), session)

    [receipt] = provider.parse_receipts(query, b"")

    assert receipt.status == status
    assert receipt.provider_message_id == query.get("SMSID")
    assert receipt.request_id == query.get("RequestId")


@pytest.mark.parametrize("query", [{}, {"SMSID": "a"}, {"SendStatus": "5", "RequestId": ""}])
async def test_esms_callback_without_its_fields_is_malformed(
    session: aiohttp.ClientSession, query: dict[str, str]
) -> None:
    provider = esms.EsmsProvider(EsmsSettings(), session)

    with pytest.raises(MalformedInput):
        provider.parse_receipts(query, b"")


@pytest.mark.parametrize(
    ("status", "body", "expected", "code"),
    [
        (401, b"", PermanentProviderError, "http_401"),
        (404, b"not found", PermanentProviderError, "http_404"),
        (408, b"", TemporaryProviderError, "http_408"),
        (502, b"", TemporaryProviderError, "http_502"),
        (504, b"", MaybeSent, "timeout_after_send"),
        (200, b"<html>proxy</html>", MaybeSent, "timeout_after_send"),
        (200, b'{"error": "Invalid request"}', PermanentProviderError, "invalid_request"),
    ],
)
def test_esms_http_level_answers(
    status: int, body: bytes, expected: type[Exception], code: str
) -> None:
    with pytest.raises(expected) as caught:
        esms._result(esms._Answer(status, None, body))

    assert getattr(caught.value, "code", None) == code


def test_retry_after_accepts_an_http_date() -> None:
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after("12") == 12.0
    assert retry_after("soon") is None
    assert retry_after("nan") is None


@pytest.mark.parametrize("harness", ["speedsms"], indirect=True)
async def test_speedsms_wrong_token_is_an_account_problem(harness: Harness) -> None:
    harness.centre.expected_key = "the-real-token"

    with pytest.raises(PermanentProviderError) as caught:
        await harness.send(sms())

    assert caught.value.code == "http_401"
    assert "account problem" in caught.value.detail


@pytest.mark.parametrize(
    "outcome",
    [
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("cut short"),
        aiohttp.SocketTimeoutError("read"),
        speedsms._Answer(504, None, b"", "84912345678"),
        speedsms._Answer(200, None, b"<html>", "84912345678"),
    ],
    ids=["disconnected", "payload", "read-timeout", "http-504", "unreadable-200"],
)
def test_speedsms_every_lost_answer_is_maybe_sent(
    outcome: speedsms._Answer | BaseException,
) -> None:
    with pytest.raises(MaybeSent) as caught:
        speedsms._result(outcome)

    assert caught.value.code == "timeout_after_send"


def test_connect_timeout_means_nothing_was_sent() -> None:
    for result in (esms._result, speedsms._result):
        with pytest.raises(TemporaryProviderError) as caught:
            result(aiohttp.ConnectionTimeoutError("connect"))
        assert not isinstance(caught.value, MaybeSent)
        assert caught.value.code == "connect"


def test_idempotency_is_declared_per_vendor() -> None:
    assert esms.EsmsProvider.idempotent is True
    assert speedsms.SpeedSmsProvider.idempotent is False


def test_speedsms_number_listed_invalid_is_permanent() -> None:
    body = b'{"status":"success","code":"00","data":{"tranId":7,"totalSMS":0,'
    body += b'"totalPrice":0,"invalidPhone":["84912345678"]}}'

    with pytest.raises(RecipientUnreachable) as caught:
        speedsms._result(speedsms._Answer(200, None, body, "84912345678"))

    assert caught.value.code == "invalid_phone"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"type":"report","tranId":7,"phone":"84912345678","status":0}', "delivered"),
        (b'{"type":"report","tranId":7,"phone":"84912345678","status":3}', "failed"),
        (b'{"type":"sms","phone":"84912345678","content":"hi"}', None),
    ],
)
async def test_speedsms_status_callback_mapping(
    session: aiohttp.ClientSession, body: bytes, expected: str | None
) -> None:
    provider = speedsms.SpeedSmsProvider(SpeedSmsSettings(), session)

    receipts = provider.parse_receipts({}, body)

    assert [r.status for r in receipts] == ([expected] if expected else [])
    assert all(r.provider_message_id == "7" for r in receipts)


async def test_speedsms_callback_that_is_not_json_is_malformed(
    session: aiohttp.ClientSession,
) -> None:
    provider = speedsms.SpeedSmsProvider(SpeedSmsSettings(), session)

    with pytest.raises(MalformedInput):
        provider.parse_receipts({}, b"status=0")
