"""The rules around one-time codes that need no infrastructure: how a code is routed,
when it is too late to send, how staff see it, and what each proof allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.domain.routing import ZaloContact, plan_channels
from gateway.settings import DEFAULT_TEMPLATES_DIR
from gateway.texts.sms import render_sms
from gateway.texts.templates import Texts
from gateway.texts.zalo import zns_data
from gateway.trust.otp import MASK, hide_code, new_code, stale_reason
from gateway.trust.proofs import ACT_PROOFS, may_act, may_read

NOW = datetime(2026, 12, 7, 22, 30, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
SUBSCRIBER = ZaloContact("u-1", follows=True, last_interaction_at=NOW, wants_zalo=True)


def steps(phone: str, template: str | None) -> list[str]:
    plan = plan_channels(
        "otp",
        phone_e164=phone,
        contact=SUBSCRIBER,
        zns_template=template,
        failed={},
        now=NOW,
        window_days=7,
    )
    assert plan.skipped[0].startswith("oa: not sent by OA message")
    return [step.channel for step in plan.steps]


def test_a_code_never_goes_by_oa_message_even_to_a_subscriber() -> None:
    assert steps("+84912345678", None) == ["sms"]
    assert steps("+84912345678", "250009") == ["zns", "sms"]
    assert steps("+14155552671", "250009") == ["sms"]  # ZNS reaches Vietnamese mobiles only
    # Another kind still goes to the subscriber first.
    plan = plan_channels(
        "receipt",
        phone_e164="+84912345678",
        contact=SUBSCRIBER,
        zns_template=None,
        failed={},
        now=NOW,
        window_days=7,
    )
    assert [s.channel for s in plan.steps] == ["oa", "sms"]


def test_a_code_is_not_sent_once_used_or_expired() -> None:
    params = {"otp_code": "042042", "minutes": 5, "expires_at": NOW.isoformat()}
    assert stale_reason(params, NOW - timedelta(seconds=1)) is None
    assert "expired" in (stale_reason(params, NOW) or "")
    assert "used" in (stale_reason({**params, "otp_code": "erased"}, NOW - timedelta(1)) or "")


def test_staff_see_the_code_masked_and_nothing_else_changes() -> None:
    params = {"otp_code": "042042", "minutes": 5}
    shown, text = hide_code("otp", params, "042042 la ma xac thuc")
    assert shown == {"otp_code": MASK, "minutes": 5} and text == f"{MASK} la ma xac thuc"
    assert params["otp_code"] == "042042"  # the stored params are not touched
    assert hide_code("otp", {"otp_code": "erased"}, None) == ({"otp_code": "erased"}, None)
    other = {"dossier_code": "042042"}
    assert hide_code("receipt", other, "042042") == (other, "042042")


def test_the_sms_and_the_zns_data_carry_the_code() -> None:
    texts = Texts(DEFAULT_TEMPLATES_DIR)
    params = {"otp_code": "042042", "minutes": 5}
    plain = render_sms(texts, "otp", params, accents=False, budget=1, zone=ZONE)
    assert plain.segments == 1 and plain.encoding == "GSM-7"
    assert plain.text.startswith("042042 la ma xac thuc") and "5 phut" in plain.text
    assert "khong cung cap ma nay cho bat ky ai, ke ca can bo" in plain.text
    accented = render_sms(texts, "otp", params, accents=True, budget=4, zone=ZONE)
    assert "kể cả cán bộ" in accented.text and accented.segments <= 3
    assert zns_data(params, ZONE)["otp_code"] == "042042"


def test_codes_are_six_random_digits() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190  # drawn at random, not a counter


def test_what_each_proof_allows() -> None:
    assert {"otp", "proven_phone", "sms_link", "staff"} == ACT_PROOFS
    assert may_read("last_four") and not may_act("last_four")
    assert all(may_act(p) and may_read(p) for p in ACT_PROOFS)
    assert not may_read(None) and not may_act(None) and not may_act("guess")
