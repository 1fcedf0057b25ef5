"""Zalo webhooks: the signature on the raw body, and every event kind into our types.

Pure functions from ``providers/zalo/webhook.py``, checked against ``docs/zalo.md``
(§ Webhooks): ``mac = hex(SHA256(app_id + raw_body + timestamp + OA secret key))``.
Payloads are shaped like the examples there. Whatever arrives, the outcome is an event, an
``AuthenticationFailed`` or a ``MalformedInput`` naming the field — never anything else.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from bot.events import (
    AttachmentSent,
    ChatOpened,
    Followed,
    InfoShared,
    TextSent,
    Unfollowed,
)
from gateway.errors import AuthenticationFailed, MalformedInput
from providers.zalo.webhook import (
    Ignored,
    ZnsReceipt,
    parse_webhook,
    sign,
    verify_signature,
)

KEY = "oa-secret-key-from-the-webhook-page"
APP_ID = "2334789304983807556"
OA_ID = "3674338702778449434"
USER = "675059164343092785"
TS = "1787209817225"
AT = datetime.fromtimestamp(1787209817.225, UTC)
OA = "OA OpenAPI"
ZNS = "ZNS"


def from_user(event_name: str, **content: Any) -> dict[str, Any]:
    return {
        "app_id": APP_ID,
        "sender": {"id": USER},
        "recipient": {"id": OA_ID},
        "event_name": event_name,
        **content,
        "timestamp": TS,
        "user_id_by_app": "979122185046046317",
    }


def follow_event(name: str) -> dict[str, Any]:
    return {
        "oa_id": OA_ID,
        "follower": {"id": USER},
        "user_id_by_app": "6655413641204889003",
        "event_name": name,
        "source": "zalo",
        "app_id": APP_ID,
        "timestamp": TS,
    }


def attachment(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"msg_id": f"{kind}-msg", "attachments": [{"type": kind, "payload": payload}]}


TEXT = from_user("user_send_text", message={"text": "Alo", "msg_id": "b2db3895fe26797f2030"})
CHAT_NOW = {
    "oa_id": OA_ID,
    "user_id": USER,
    "user_id_by_app": "979122185046046317",
    "event_name": "user_click_chatnow",
    "app_id": APP_ID,
    "timestamp": TS,
}
SUBMIT_INFO = from_user(
    "user_submit_info",
    info={"name": "Nguyễn Văn An", "phone": "84912345678", "address": "", "city": "Huế"},
)
ZNS_RECEIPT = {
    "app_id": APP_ID,
    "oa_id": OA_ID,
    "sender": {"id": OA_ID},
    "recipient": {"id": "84912345678"},
    "event_name": "user_received_message",
    "message": {"delivery_time": TS, "msg_id": "zns-msg-1", "tracking_id": "notice42zns1"},
    "timestamp": TS,
}
OA_RECEIPT = {
    "app_id": APP_ID,
    "sender": {"id": OA_ID},
    "recipient": {"id": USER},
    "event_name": "user_received_message",
    "message": {"msg_id": "oa-msg-1"},
    "timestamp": TS,
}
SAMPLES: dict[str, dict[str, Any]] = {
    "text": TEXT,
    "follow": follow_event("follow"),
    "unfollow": follow_event("unfollow"),
    "chat_now": CHAT_NOW,
    "submit_info": SUBMIT_INFO,
    "image": from_user(
        "user_send_image",
        message=attachment("image", {"url": "https://x/i.jpg", "thumbnail": "https://x/t.jpg"}),
    ),
    "file": from_user(
        "user_send_file",
        message=attachment("file", {"url": "https://x/f.pdf", "name": "don.pdf", "size": "12"}),
    ),
    "location": from_user(
        "user_send_location",
        message=attachment(
            "location", {"coordinates": {"latitude": "10.79", "longitude": "106.78"}}
        ),
    ),
    "link": from_user("user_send_link", message=attachment("link", {"url": "https://x/l"})),
    "zns_receipt": ZNS_RECEIPT,
    "oa_receipt": OA_RECEIPT,
    "seen": from_user("user_seen_message", message={"msg_ids": ["a", "b"]}),
    "echo": from_user("oa_send_text", message={"text": "Chào bạn", "msg_id": "echo-1"}),
    "unknown": from_user("user_reacted_message", react_icon=":>"),
}


def signed(payload: dict[str, Any], key: str = KEY) -> tuple[bytes, str]:
    raw = orjson.dumps(payload)
    return raw, "mac=" + sign(raw, str(payload["app_id"]), str(payload["timestamp"]), key)


# --- signature --------------------------------------------------------------------------


def test_the_mac_is_plain_sha256_of_app_id_body_timestamp_and_oa_key() -> None:
    raw = orjson.dumps(TEXT)
    expected = hashlib.sha256(APP_ID.encode() + raw + TS.encode() + KEY.encode()).hexdigest()

    assert sign(raw, APP_ID, TS, KEY) == expected
    assert verify_signature(raw, f"mac={expected}", KEY) == TEXT
    assert verify_signature(raw, f"  mac={expected}  ", KEY) == TEXT


def _hmac_mac(raw: bytes) -> str:
    message = APP_ID.encode() + raw + TS.encode()
    return "mac=" + hmac.new(KEY.encode(), message, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda raw, mac: (raw, None), "missing"),
        (lambda raw, mac: (raw, ""), "missing"),
        (lambda raw, mac: (raw, mac[4:]), "mac=<64 hex digits>"),
        (lambda raw, mac: (raw, mac[:-1]), "mac=<64 hex digits>"),
        (lambda raw, mac: (raw, "sha256=" + mac[4:]), "mac=<64 hex digits>"),
        (lambda raw, mac: (raw, mac[:-1] + ("0" if mac[-1] != "0" else "1")), "does not match"),
        (lambda raw, mac: (raw + b" ", mac), "does not match"),
        (lambda raw, mac: (json.dumps(orjson.loads(raw)).encode(), mac), "does not match"),
        (lambda raw, mac: (raw.replace(APP_ID.encode(), b"1234"), mac), "does not match"),
        (lambda raw, mac: (raw.replace(TS.encode(), b"1787209817226"), mac), "does not match"),
        (lambda raw, mac: (raw, _hmac_mac(raw)), "does not match"),
    ],
    ids=[
        "no-header",
        "empty-header",
        "no-mac-prefix",
        "short",
        "other-prefix",
        "wrong-mac",
        "body-changed",
        "re-serialised",
        "app-id-changed",
        "timestamp-changed",
        "hmac-not-sha256",
    ],
)
def test_a_bad_or_missing_signature_is_refused(make: Any, reason: str) -> None:
    raw, mac = make(*signed(TEXT))

    with pytest.raises(AuthenticationFailed) as caught:
        verify_signature(raw, mac, KEY)

    assert reason in caught.value.detail


def test_a_body_signed_with_the_app_secret_instead_of_the_oa_key_is_refused() -> None:
    with pytest.raises(AuthenticationFailed):
        verify_signature(*signed(TEXT, key="the-app-secret-not-the-oa-key"), KEY)


def test_an_event_for_another_app_signed_with_its_own_key_is_refused() -> None:
    other = {**TEXT, "app_id": "9999999999999999999"}

    with pytest.raises(AuthenticationFailed):
        verify_signature(*signed(other, key="another-apps-oa-key"), KEY)


def test_no_key_configured_refuses_everything() -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        verify_signature(*signed(TEXT, key=""), "")

    assert "ZALO_OA_SECRET_KEY" in caught.value.detail


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (orjson.dumps({"timestamp": TS}), "app_id is missing"),
        (orjson.dumps({"app_id": 2334789304983807556, "timestamp": TS}), "app_id is not a string"),
        (orjson.dumps({"app_id": APP_ID, "timestamp": 1787209817225}), "timestamp is not a string"),
    ],
    ids=["text", "not-utf8", "array", "no-app-id", "number-app-id", "number-timestamp"],
)
def test_a_body_that_cannot_be_checked_is_malformed(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedInput) as caught:
        verify_signature(raw, "mac=" + "0" * 64, KEY)

    assert reason in caught.value.detail


# --- parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "server", "expected"),
    [
        ("text", OA, TextSent(USER, "b2db3895fe26797f2030", AT, "Alo")),
        ("follow", OA, Followed(USER, f"follow:{USER}:{TS}", AT)),
        ("unfollow", OA, Unfollowed(USER, f"unfollow:{USER}:{TS}", AT)),
        ("chat_now", OA, ChatOpened(USER, f"user_click_chatnow:{USER}:{TS}", AT)),
        (
            "submit_info",
            OA,
            InfoShared(USER, f"user_submit_info:{USER}:{TS}", AT, "84912345678", "Nguyễn Văn An"),
        ),
        ("image", OA, AttachmentSent(USER, "image-msg", AT, "image", "https://x/i.jpg", None)),
        (
            "file",
            OA,
            AttachmentSent(USER, "file-msg", AT, "file", "https://x/f.pdf", "don.pdf"),
        ),
        (
            "location",
            OA,
            AttachmentSent(USER, "location-msg", AT, "location", None, "10.79,106.78"),
        ),
        ("link", OA, AttachmentSent(USER, "link-msg", AT, "link", "https://x/l", None)),
        (
            "zns_receipt",
            ZNS,
            ZnsReceipt("zns-msg-1", "notice42zns1", "84912345678", AT, "zns-msg-1"),
        ),
        (
            "zns_receipt",
            None,  # no header: the tracking_id tells it is ZNS
            ZnsReceipt("zns-msg-1", "notice42zns1", "84912345678", AT, "zns-msg-1"),
        ),
        ("oa_receipt", OA, Ignored("user_received_message", "oa-msg-1")),
        ("seen", OA, Ignored("user_seen_message", f"user_seen_message:{USER}:{TS}")),
        ("echo", OA, Ignored("oa_send_text", "echo-1")),
        ("unknown", OA, Ignored("user_reacted_message", f"user_reacted_message:{USER}:{TS}")),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_each_event_kind_parses_into_our_type(
    sample: str, server: str | None, expected: Any
) -> None:
    payload = SAMPLES[sample]

    assert parse_webhook(verify_signature(*signed(payload), KEY), server) == expected


def test_submit_info_accepts_missing_and_extra_fields() -> None:
    payload = from_user("user_submit_info", info={"name": "  An ", "zalo_extra": {"x": 1}})

    event = parse_webhook(payload, OA)

    assert isinstance(event, InfoShared)
    assert (event.phone, event.name) == (None, "An")


def test_a_webhook_delivered_twice_has_one_dedupe_key_and_different_events_two() -> None:
    again = parse_webhook(copy.deepcopy(TEXT), OA)
    other = parse_webhook(from_user("user_send_text", message={"text": "Alo", "msg_id": "m2"}), OA)
    later_follow = parse_webhook({**follow_event("follow"), "timestamp": "1787209817999"}, OA)

    assert parse_webhook(TEXT, OA).dedupe_key == again.dedupe_key
    assert other.dedupe_key != again.dedupe_key
    assert later_follow.dedupe_key != parse_webhook(follow_event("follow"), OA).dedupe_key


def _without(payload: dict[str, Any], *path: str) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    target = changed
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return changed


def _with(payload: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("payload", "server", "reason"),
    [
        (_without(TEXT, "event_name"), OA, "event_name is missing"),
        (_with(TEXT, 7, "event_name"), OA, "event_name is not a string"),
        (_with(TEXT, "", "event_name"), OA, "event_name is empty"),
        (_without(TEXT, "sender"), OA, "sender is missing"),
        (_with(TEXT, [USER], "sender"), OA, "sender is not an object"),
        (_with(TEXT, 675059164343092785, "sender", "id"), OA, "sender.id is not a string"),
        (_without(TEXT, "message", "text"), OA, "message.text is missing"),
        (_with(TEXT, "yesterday", "timestamp"), OA, "timestamp is not epoch milliseconds"),
        (_with(TEXT, "-1", "timestamp"), OA, "timestamp is not epoch milliseconds"),
        (_with(TEXT, "9" * 20, "timestamp"), OA, "timestamp is not epoch milliseconds"),
        (_without(follow_event("follow"), "follower"), OA, "follower is missing"),
        (_without(CHAT_NOW, "user_id"), OA, "user_id is missing"),
        (_with(SUBMIT_INFO, ["84912345678"], "info"), OA, "info is not an object"),
        (
            _with(SAMPLES["image"], [], "message", "attachments"),
            OA,
            "message.attachments is not a non-empty list",
        ),
        (
            _with(SAMPLES["image"], ["x"], "message", "attachments"),
            OA,
            "message.attachments[0] is not an object",
        ),
        (_without(ZNS_RECEIPT, "message", "msg_id"), ZNS, "message.msg_id is missing"),
        (_with(ZNS_RECEIPT, 42, "message", "tracking_id"), ZNS, "message.tracking_id is not a"),
        (_with(ZNS_RECEIPT, 849, "recipient", "id"), ZNS, "recipient.id is not a string"),
        (
            _with(ZNS_RECEIPT, "soon", "message", "delivery_time"),
            ZNS,
            "message.delivery_time is not epoch milliseconds",
        ),
    ],
)
def test_a_known_event_with_a_bad_field_is_malformed_naming_the_field(
    payload: dict[str, Any], server: str, reason: str
) -> None:
    with pytest.raises(MalformedInput) as caught:
        parse_webhook(payload, server)

    assert reason in caught.value.detail


_EVENT_TYPES = (
    TextSent,
    Followed,
    Unfollowed,
    ChatOpened,
    InfoShared,
    AttachmentSent,
    ZnsReceipt,
    Ignored,
)


WEIRD_VALUES: list[Any] = [None, True, 0, -1, 1.5, "", "x", "１２", [], [None], {}, {"id": 1}]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path (dict keys and list indexes) inside a JSON value."""
    found: list[tuple[Any, ...]] = []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else []
    )
    for key, child in items:
        found.append((*prefix, key))
        found += _paths(child, (*prefix, key))
    return found


def _variants(payload: dict[str, Any]) -> list[dict[str, Any]]:
    variants = []
    for path in _paths(payload):
        variants.append(_without(payload, *path))
        variants += [_with(payload, weird, *path) for weird in WEIRD_VALUES]
    return variants


@pytest.mark.parametrize("sample", list(SAMPLES))
@pytest.mark.parametrize("server", [OA, ZNS, None])
def test_any_mangled_payload_gives_an_event_or_a_precise_error_never_a_crash(
    sample: str, server: str | None
) -> None:
    outcomes = {"event": 0, "malformed": 0, "refused": 0}
    for variant in _variants(SAMPLES[sample]):
        raw = orjson.dumps(variant)
        app_id, timestamp = variant.get("app_id"), variant.get("timestamp")
        key = KEY if isinstance(app_id, str) and isinstance(timestamp, str) else "x"
        mac = "mac=" + sign(raw, str(app_id), str(timestamp), key)
        try:
            payload = verify_signature(raw, mac, KEY)
            event = parse_webhook(payload, server)
        except MalformedInput as exc:
            assert exc.detail
            outcomes["malformed"] += 1
        except AuthenticationFailed:
            outcomes["refused"] += 1
        else:
            assert isinstance(event, _EVENT_TYPES)
            assert isinstance(event.dedupe_key, str)
            outcomes["event"] += 1
    assert outcomes["malformed"] > 0 and outcomes["event"] > 0


@pytest.mark.parametrize("payload", [None, [], "x", 3], ids=["null", "list", "string", "number"])
def test_parse_refuses_what_is_not_an_object(payload: Any) -> None:
    with pytest.raises(MalformedInput):
        parse_webhook(payload, OA)
