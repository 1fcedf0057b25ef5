"""Hostile webhooks for ``POST /webhooks/zalo`` and the pure parser behind it.

The gateway runs for real (``create_app`` on loopback, real Redis, a migrated SQLite
file) in a thread of its own, so that hypothesis can drive it with plain blocking HTTP.
Generated payloads are signed correctly (so they reach ``parse_webhook``): known event
names with fields of every wrong type, odd Unicode and huge strings, and JSON of any
shape. Unsigned or badly signed requests carry random bodies and headers. Whatever
comes, the answer is 200 with a status, or a 4xx ``application/problem+json``: never a
5xx. ``providers.zalo.webhook`` itself raises nothing but ``MalformedInput`` and
``AuthenticationFailed`` on any JSON-like value.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from bot.events import (
    AttachmentSent,
    ChatOpened,
    Followed,
    InfoShared,
    TextSent,
    Unfollowed,
)
from gateway.errors import AuthenticationFailed, MalformedInput
from gateway.settings import Settings
from providers.zalo.webhook import (
    Ignored,
    ZnsFeedback,
    ZnsReceipt,
    parse_webhook,
    sign,
    verify_signature,
)
from tests.conftest import forget_queues
from tests.fuzz.conftest import ThreadedApp
from tests.helpers import SOURCES

_FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
APP_ID = "1234567890123"
OA_KEY = "fuzz-oa-secret-key"
MAX_BODY = 65_536
EVENT_TYPES = (
    Followed,
    Unfollowed,
    ChatOpened,
    TextSent,
    InfoShared,
    AttachmentSent,
    ZnsReceipt,
    ZnsFeedback,
    Ignored,
)
EVENT_NAMES = (
    "user_send_text",
    "follow",
    "unfollow",
    "user_click_chatnow",
    "user_submit_info",
    "user_send_image",
    "user_send_file",
    "user_send_sticker",
    "user_send_gif",
    "user_send_link",
    "user_send_location",
    "user_received_message",
    "user_feedback",
    "user_seen_message",
    "oa_send_text",
)

# -- what JSON can hold (orjson: integers within 64 bits, finite floats) ----------------

odd_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "0", "²", "١٢٣", "٣", "5", "05", "1e3", "-1", "\x00", "\u202e"]),
    st.sampled_from(["null", "true", "😀" * 40, "a" * 5000, "9" * 5000, "\ud7ff\ue000"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    odd_text,
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=16,
)


def _now_ms() -> str:
    return str(int(time.time() * 1000))


timestamps = st.one_of(
    st.builds(_now_ms),
    st.builds(lambda: _now_ms() + "\n"),
    st.sampled_from(["", "0", "-1", "99999999999999", "999999999999999", "١٧٠٠٠٠٠٠٠٠٠٠٠", "1.5"]),
    scalars,
)
parties = st.one_of(st.fixed_dictionaries({"id": json_values}), json_values)
messages = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "msg_id": json_values,
            "text": json_values,
            "tracking_id": json_values,
            "delivery_time": timestamps,
            "submit_time": timestamps,
            "rate": st.one_of(st.integers(-2, 8), odd_text, json_values),
            "note": json_values,
            "feedbacks": json_values,
            "attachments": st.one_of(
                st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "type": json_values,
                            "payload": st.one_of(
                                st.fixed_dictionaries(
                                    {},
                                    optional={
                                        "url": json_values,
                                        "name": json_values,
                                        "coordinates": json_values,
                                    },
                                ),
                                json_values,
                            ),
                        },
                    ),
                    max_size=3,
                ),
                json_values,
            ),
        },
    ),
    json_values,
)
zalo_events = st.fixed_dictionaries(
    {
        "app_id": st.one_of(st.just(APP_ID), odd_text),
        "event_name": st.one_of(st.sampled_from(EVENT_NAMES), json_values),
        "timestamp": timestamps,
    },
    optional={
        "sender": parties,
        "recipient": parties,
        "follower": parties,
        "user_id": json_values,
        "message": messages,
        "info": st.one_of(
            st.fixed_dictionaries({}, optional={"phone": json_values, "name": json_values}),
            json_values,
        ),
        "user_id_by_app": json_values,
    },
)
ids = st.one_of(st.text(min_size=1, max_size=40), st.sampled_from(["😀" * 300, "x" * 20_000]))


@st.composite
def well_formed_events(draw: st.DrawFn) -> dict[str, Any]:
    """A payload Zalo could send (right app, fresh timestamp, right types) with odd
    strings in every field, then perhaps one field replaced by any JSON value."""
    name = draw(st.sampled_from(EVENT_NAMES))
    user = {"id": draw(ids)}
    message: dict[str, Any] = {"msg_id": draw(ids), "text": draw(odd_text)}
    if name == "user_feedback":
        message |= {"rate": draw(st.sampled_from([1, 5, "3", "05"])), "note": draw(odd_text)}
        message["feedbacks"] = draw(st.lists(odd_text, max_size=3))
    if name == "user_received_message":
        message |= {"tracking_id": draw(ids), "delivery_time": _now_ms()}
    if name.startswith("user_send_") and name != "user_send_text":
        payload = {"url": draw(odd_text), "name": draw(odd_text)}
        payload["coordinates"] = {"latitude": draw(scalars), "longitude": draw(scalars)}
        message["attachments"] = [{"type": draw(odd_text), "payload": payload}]
    event = {
        "app_id": APP_ID,
        "event_name": name,
        "timestamp": _now_ms(),
        "sender": user,
        "follower": user,
        "user_id": user["id"],
        "recipient": {"id": draw(ids)},
        "message": message,
        "info": {"phone": draw(odd_text), "name": draw(odd_text)},
    }
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(event)))
        event[key] = draw(json_values)
    return event


servers = st.one_of(st.none(), st.sampled_from(["ZNS", " zns ", "OA OpenAPI", ""]), odd_text)

# A ZNS rating whose stars are a digit int() refuses (found by this test; now refused).
SUPERSCRIPT_RATE = {
    "app_id": APP_ID,
    "event_name": "user_feedback",
    "timestamp": "1700000000000",
    "message": {"msg_id": "m1", "rate": "²"},
}

# -- the pure functions -----------------------------------------------------------------


@settings(_FUZZ, max_examples=200)
@given(payload=st.one_of(well_formed_events(), zalo_events, json_values), server=servers)
@example(payload=SUPERSCRIPT_RATE, server="ZNS")
@example(payload={**SUPERSCRIPT_RATE, "message": {"msg_id": "m", "rate": "9" * 5000}}, server=None)
@example(payload={**SUPERSCRIPT_RATE, "message": {"msg_id": "m", "rate": "٣"}}, server=None)
def test_the_parser_raises_only_malformed_input(payload: Any, server: str | None) -> None:
    try:
        event = parse_webhook(payload, server)
    except MalformedInput as exc:
        assert exc.detail
        return
    assert isinstance(event, EVENT_TYPES)
    assert event.dedupe_key
    if isinstance(event, ZnsFeedback):
        assert event.rate in range(1, 6)


@settings(_FUZZ, max_examples=200)
@given(
    raw=st.one_of(st.binary(max_size=200), json_values.map(orjson.dumps)),
    header=st.one_of(
        st.none(),
        odd_text,
        st.text("0123456789abcdefABCDEF", min_size=64).map(lambda mac: f"mac={mac}"),
    ),
)
def test_the_signature_check_raises_only_refusals(raw: bytes, header: str | None) -> None:
    try:
        payload = verify_signature(raw, header, OA_KEY)
    except (AuthenticationFailed, MalformedInput) as exc:
        assert exc.detail
        return
    assert isinstance(payload, dict)  # only a correct mac gets here


# -- the real app -------------------------------------------------------------------------


class _ThreadedGateway(ThreadedApp):
    """The real app on loopback, posted to with plain blocking HTTP."""

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """Status, content type and body of ``POST /webhooks/zalo``."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            # Answered (413) and closed before the whole body was sent: read the answer.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.request("POST", "/webhooks/zalo", body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type", ""), response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def zalo_gateway(
    sqlite_template: Path, redis_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_ThreadedGateway]:
    database = tmp_path_factory.mktemp("webhook-fuzz") / "tthc.sqlite3"
    shutil.copyfile(sqlite_template, database)
    settings = Settings.from_mapping(
        {
            "DATABASE_URL": f"sqlite:///{database}",
            "REDIS_URL": redis_server,
            "EVENT_SOURCES": ",".join(f"{k}:{v}" for k, v in SOURCES.items()),
            "REDIS_KEY_PREFIX": f"tthc-fuzz-{os.getpid()}-{uuid.uuid4().hex[:6]}:",
            "MAX_BODY_BYTES": str(MAX_BODY),
            "ZALO_APP_ID": APP_ID,
            "ZALO_APP_SECRET": "fuzz-app-secret",
            "ZALO_OA_SECRET_KEY": OA_KEY,
        }
    )
    gateway = _ThreadedGateway(settings)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()
        forget_queues(settings)


def _assert_answered(status: int, content_type: str, body: bytes) -> dict[str, Any]:
    assert status < 500, (status, body[:500])
    answer = orjson.loads(body)
    assert isinstance(answer, dict)
    event(f"{status} {answer.get('status') if status == 200 else answer.get('type')}")
    if status == 200:
        assert answer["status"] in ("queued", "duplicate", "ignored"), answer
    else:
        assert 400 <= status < 500, status
        assert content_type.startswith("application/problem+json"), content_type
        assert answer["status"] == status and answer["detail"], answer
    return answer


def _signed(payload: dict[str, Any]) -> tuple[bytes, str]:
    raw = orjson.dumps(payload)
    app_id, timestamp = payload.get("app_id"), payload.get("timestamp")
    mac = sign(raw, app_id if isinstance(app_id, str) else "", str(timestamp), OA_KEY)
    return raw, f"mac={mac}"


@settings(_FUZZ, max_examples=250)
@given(payload=st.one_of(well_formed_events(), zalo_events, json_values), server=servers)
@example(payload=SUPERSCRIPT_RATE, server="ZNS")
def test_signed_payloads_are_answered_without_a_5xx(
    zalo_gateway: _ThreadedGateway, payload: Any, server: str | None
) -> None:
    if isinstance(payload, dict) and payload.get("timestamp") == "1700000000000":
        payload = {**payload, "timestamp": _now_ms()}  # the examples' moment is now
    if isinstance(payload, dict):
        raw, signature = _signed(payload)
    else:
        raw, signature = orjson.dumps(payload), "mac=" + "0" * 64
    headers = {"Content-Type": "application/json", "X-ZEvent-Signature": signature}
    if server is not None:
        headers["X-ZEvent-Server"] = server.encode("utf-8", "replace").decode("latin-1")
        headers["X-ZEvent-Server"] = "".join(
            ch for ch in headers["X-ZEvent-Server"] if " " <= ch != "\x7f"
        )
    _assert_answered(*zalo_gateway.post(raw, headers))


_HEADER_NAMES = st.sampled_from(
    [
        "X-ZEvent-Signature",
        "X-ZEvent-Server",
        "Content-Type",
        "Content-Encoding",
        "Accept",
        "X-Forwarded-For",
    ]
)
_HEADER_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")),
    st.sampled_from(
        [
            *("identity", "deflate", "gzip", "br", "zstd", "compress", "gzip, deflate"),
            *("mac=" + "a" * 64, "mac=" + "A" * 63),
        ]
    ),
    st.sampled_from(["application/json; charset=latin-1", "text/plain", "multipart/form-data"]),
)


@settings(_FUZZ, max_examples=150)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        json_values.map(orjson.dumps),
        st.just(b"{" * 5000),
        st.just(b'{"app_id": "' + b"a" * (MAX_BODY + 10) + b'"}'),
    ),
    headers=st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=4),
)
@example(body=b'{"app_id": "1"}', headers={"Content-Encoding": "gzip"})
@example(body=b"\x1f\x8b\x08\x00garbage", headers={"Content-Encoding": "gzip"})
@example(body=b"{}", headers={"Content-Encoding": "br", "X-ZEvent-Signature": "mac=" + "a" * 64})
@example(body=b"{}", headers={"Content-Encoding": "GZIP"})
@example(body=b"x\x9c\xabV", headers={"Content-Encoding": "deflate"})
@example(body=b"x\x9c\x03\x00", headers={"Content-Encoding": "deflate", "Accept": "\xe9\xe9"})
@example(body=b"x" * (MAX_BODY + 1), headers={"Content-Encoding": "gzip"})
def test_unsigned_requests_are_refused_without_a_5xx(
    zalo_gateway: _ThreadedGateway, body: bytes, headers: dict[str, str]
) -> None:
    status, content_type, answer = zalo_gateway.post(body, headers)
    _assert_answered(status, content_type, answer)
    assert status != 200  # nothing unsigned gets through
