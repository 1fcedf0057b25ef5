"""Acceptance attack tests for citizens' trust (issue 11), through the fake Zalo's signed
webhooks and a real worker: a number typed into the share form is only a claim; many
accounts guessing one dossier's last four digits are stopped; every attempt is logged
without a phone number or a code; moving a phone's notices to the OA tells the phone
once, and the citizen can stop it from the OA; a handoff never carries a dossier on a
claimed number alone."""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa

from gateway.domain.sms_text import unaccent
from gateway.storage.tables import handoffs, notices, reports, zalo_users
from providers.fakes.zalo import FakeUser
from tests.chat.conftest import CODE, OWNER_PHONE, ChatRig, buttons, subscribed, text_of, texts
from tests.helpers import event

# Facts only the dossier's owner may read (the applicant's name is in the dossier too).
SECRETS = ("Sở Xây dựng", "Cấp giấy phép", "12/04/2024", "đã tiếp nhận, chờ xử lý")
GUESSERS = 50
# What the moved-notices SMS says, unaccented (templates/sms/channel_moved.txt.j2).
MOVED_SMS = "thong bao ho so cua so dien thoai nay se gui qua zalo"
# What the OA message to the account that was subscribed before says
# (templates/oa/channel_moved.txt.j2).
MOVED_OA = "được gửi đến một tài khoản Zalo khác"


def phone_runs(phone: str) -> list[str]:
    """Every run of 9 digits of ``phone`` (E.164 and national forms): none may be logged."""
    forms = {phone.lstrip("+"), "0" + phone[3:]}
    return sorted({form[i : i + 9] for form in forms for i in range(len(form) - 8)})


def assert_no_secret(rig: ChatRig, user: FakeUser) -> None:
    everything = " ".join(texts(rig.zalo.messages_for(user.user_id)))
    for secret in SECRETS:
        assert secret not in everything, secret


async def wait_for_sms(rig: ChatRig, phone: str, words: str, count: int) -> list[str]:
    """The SMS to ``phone`` holding ``words`` (unaccented), once there are ``count``."""
    deadline = time.monotonic() + 10
    while True:
        found = [m.content for m in rig.sms_to(phone) if words in unaccent(m.content).lower()]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"{count} SMS with {words!r} expected: {found}"
        await asyncio.sleep(0.05)


async def test_a_stranger_number_typed_into_the_share_form_opens_nothing(chat: ChatRig) -> None:
    # (a) The attacker types the owner's number into request_user_info's form.
    attacker = chat.citizen("Kẻ mạo danh", OWNER_PHONE)
    await chat.follow(attacker)
    ask, _card = await chat.say(attacker, CODE, replies=2)
    assert "xác minh" in text_of(ask)
    (sent,) = await chat.share(attacker)
    assert "…78" in text_of(sent) and "5678" not in text_of(sent)
    # The code went to the owner's phone by SMS; the attacker can only guess.
    code = await chat.code_for(OWNER_PHONE, 1)
    guesses = [g for g in ("000000", "123456", "999999", "111111") if g != code]
    for guess in guesses[:3]:
        await chat.say(attacker, guess)
    (spent,) = await chat.say(attacker, guesses[3])
    assert "hết hiệu lực" in text_of(spent)
    # Neither reading, nor reporting, nor answering a result check, nor subscribing.
    for payload in (f"#lookup {CODE}", f"#report_false {CODE}"):
        _ask, card = await chat.click(attacker, payload, replies=2)
        assert text_of(card) == "[share phone]"
    (unknown,) = await chat.click(attacker, f"#not_received {CODE}")
    assert "không tìm thấy" in text_of(unknown)
    (again,) = await chat.click(attacker, "#subscribe")
    assert "…78" in text_of(again)  # only another code, to the owner's phone
    assert_no_secret(chat, attacker)
    (row,) = await chat.rows(sa.select(zalo_users).where(zalo_users.c.user_id == attacker.user_id))
    assert (row.claimed_phone_e164, row.phone_e164, row.subscribed_at) == (OWNER_PHONE, None, None)
    assert await chat.rows(sa.select(reports)) == []
    # The owner's notices keep going to the owner's phone by SMS, never to the attacker.
    before = len(await wait_for_sms(chat, OWNER_PHONE, CODE.lower(), 1))
    status, answer, _ = await chat.gateway.post(event("dossier.supplement_requested"))
    assert status == 202, answer
    await wait_for_sms(chat, OWNER_PHONE, CODE.lower(), before + 1)
    everything = " ".join(texts(chat.zalo.messages_for(attacker.user_id)))
    assert "Bản vẽ mặt bằng" not in everything
    moved = await chat.rows(sa.select(notices).where(notices.c.kind == "channel_moved"))
    assert moved == []


async def test_fifty_accounts_guessing_the_last_four_digits_are_stopped(chat: ChatRig) -> None:
    # (b) Fifty Zalo users, each far from their own lock, guess one dossier's digits.
    limit = chat.settings.trust.dossier_max_failures
    guessers = [chat.citizen(f"Người dò {n}", None, follows=True) for n in range(GUESSERS)]
    answers: dict[str, str] = {}

    async def guess(n: int, user: FakeUser) -> None:
        await chat.say(user, CODE, replies=2)
        digits = "5678" if n == GUESSERS - 1 else f"{n:04d}"  # the last one knows them
        (answer,) = await chat.say(user, digits)
        answers[user.user_id] = text_of(answer)

    # The first guesses one after the other, so the threshold falls where expected.
    for n, user in enumerate(guessers[: limit + 1]):
        await guess(n, user)
    for start in range(limit + 1, GUESSERS, 10):
        batch = list(enumerate(guessers))[start : start + 10]
        await asyncio.gather(*(guess(n, user) for n, user in batch))

    for n, user in enumerate(guessers):
        assert_no_secret(chat, user)
        if n < limit:
            assert "không khớp" in answers[user.user_id]
        else:  # past the limit, even the right four digits need a one-time code
            assert "mã xác thực" in answers[user.user_id]
            assert "không khớp" not in answers[user.user_id]
    right = answers[guessers[-1].user_id]
    assert "Sở Xây dựng" not in right and "Gửi mã xác thực" in right
    # The owner still gets in, with a code sent to the dossier's phone.
    owner = chat.citizen("Nguyễn Văn An", OWNER_PHONE, follows=True)
    ask, _card = await chat.say(owner, CODE, replies=2)
    assert "4 chữ số cuối" not in text_of(ask)
    assert f"#otp {CODE}" in buttons(ask)
    (sent,) = await chat.click(owner, f"#otp {CODE}")
    assert "6 chữ số" in text_of(sent)
    (shown,) = await chat.say(owner, await chat.code_for(OWNER_PHONE, 1))
    assert "Sở Xây dựng" in text_of(shown)

    # (c) Each refused attempt is logged (WARNING) with the user id and the dossier, never
    # a phone number nor the code; proofs that succeed are logged at INFO (tests/bot).
    stderr = await chat.stop_worker()
    lines = [line for line in stderr.splitlines() if CODE in line and '"user"' in line]
    for user in guessers:
        assert any(user.user_id in line and "refused" in line for line in lines), user.user_id
    assert sum('"dossier ownership proof refused"' in line for line in lines) == limit
    for run in phone_runs(OWNER_PHONE):
        assert run not in stderr, run
    for code in chat.codes_to(OWNER_PHONE):
        assert code not in stderr


async def test_moving_notices_to_the_oa_tells_the_phone_once_and_stops_from_the_oa(
    chat: ChatRig,
) -> None:
    # (d) The owner proves the number and subscribes: one SMS tells the phone.
    owner = chat.citizen("Nguyễn Văn An", OWNER_PHONE, follows=True)
    _ask, card = await chat.click(owner, "#subscribe", replies=2)
    assert text_of(card) == "[share phone]"
    (done,) = await chat.prove(owner)
    assert "Đã đăng ký" in text_of(done) and "…78" in text_of(done)
    (moved,) = await wait_for_sms(chat, OWNER_PHONE, MOVED_SMS, 1)
    assert chat.settings.chat.hotline in moved
    # Subscribing again tells nobody again.
    await chat.click(owner, "#subscribe")
    # The next notice goes by OA, not SMS.
    before_sms = len(chat.sms_to(OWNER_PHONE))
    count = len(chat.zalo.messages_for(owner.user_id))
    status, answer, _ = await chat.gateway.post(event("dossier.supplement_requested"))
    assert status == 202, answer
    messages = await chat.zalo.wait_for_messages(owner.user_id, count + 1, within=10)
    assert "Bản vẽ mặt bằng" in text_of(messages[-1])
    assert len(await wait_for_sms(chat, OWNER_PHONE, MOVED_SMS, 1)) == 1
    # Stopped from the OA: notices go by SMS again.
    (stopped,) = await chat.say(owner, "hủy đăng ký")
    assert "Đã ngừng gửi thông báo qua Zalo" in text_of(stopped)
    (row,) = await chat.rows(sa.select(zalo_users).where(zalo_users.c.user_id == owner.user_id))
    assert row.subscribed_at is None and row.phone_e164 == OWNER_PHONE
    status, answer, _ = await chat.gateway.post(event("dossier.fees_due"))
    assert status == 202, answer
    fees = await wait_for_sms(chat, OWNER_PHONE, "150.000", 1)
    assert len(fees) == 1 and len(chat.sms_to(OWNER_PHONE)) > before_sms
    assert len(await wait_for_sms(chat, OWNER_PHONE, MOVED_SMS, 1)) == 1
    stored = await chat.rows(sa.select(notices).where(notices.c.kind == "channel_moved"))
    assert [(n.channel, n.zalo_user_id) for n in stored] == [("sms", None)]


async def test_human_with_a_claimed_phone_opens_a_handoff_without_the_dossier(
    chat: ChatRig,
) -> None:
    # (e) The dossier's number is shared (claimed), its code never typed back.
    user = chat.citizen("Nguyễn Văn An", OWNER_PHONE, follows=True)
    (sent,) = await chat.share(user)
    assert "mã xác thực" in text_of(sent)
    (opened,) = await chat.click(user, f"#human {CODE}")
    assert "cán bộ" in text_of(opened)
    (handoff,) = await chat.rows(sa.select(handoffs))
    assert handoff.user_id == user.user_id and handoff.dossier_code is None


async def test_a_second_account_taking_the_number_over_tells_the_first_on_the_oa(
    chat: ChatRig,
) -> None:
    first = await subscribed(chat)  # an OA user subscribed to the owner's number
    second = chat.citizen("Nguyễn Văn An (máy mới)", OWNER_PHONE, follows=True)
    await chat.click(second, "#subscribe", replies=2)
    (done,) = await chat.prove(second)
    assert "Đã đăng ký" in text_of(done)
    deadline = time.monotonic() + 10
    while not (
        told := [m for m in chat.zalo.messages_for(first.user_id) if MOVED_OA in text_of(m)]
    ):
        assert time.monotonic() < deadline, "the first account was not told"
        await asyncio.sleep(0.05)
    assert [m.channel for m in told] == ["oa"]
    # Only the first account is told: not the new subscriber, not the phone by SMS.
    assert not any(
        "tài khoản Zalo khác" in t for t in texts(chat.zalo.messages_for(second.user_id))
    )
    await asyncio.sleep(0.5)
    assert await wait_for_sms(chat, OWNER_PHONE, MOVED_SMS, 0) == []
    rows = await chat.rows(sa.select(zalo_users).order_by(zalo_users.c.created_at))
    assert {r.user_id: r.subscribed_at is not None for r in rows} == {
        first.user_id: False,
        second.user_id: True,
    }
