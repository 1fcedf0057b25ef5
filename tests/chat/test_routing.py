"""Channel routing for notices: OA message → ZNS template → SMS, each notice on exactly
one channel, and the reason visible on the notice. Real worker processes, the fake Zalo
and the SMS vendor fakes over loopback HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.settings import Settings
from tests.chat.conftest import CODE, OWNER_PHONE, ChatRig, running_chat_rig, subscribed
from tests.helpers import event

INVITATION_TEMPLATE = "250001"


@pytest.fixture
async def rig(chat_settings: Settings) -> AsyncIterator[ChatRig]:
    async with running_chat_rig(
        chat_settings,
        ZNS_TEMPLATE_INVITATION=INVITATION_TEMPLATE,
        ZNS_RECEIPT_DEADLINE_SECONDS="1",
    ) as ready:
        yield ready


async def received_and_finished(rig: ChatRig) -> None:
    for body in (event("dossier.received"), event("dossier.finished")):
        status, answer, _ = await rig.gateway.post(body)
        assert status == 202, answer


async def notices(rig: ChatRig) -> dict[str, dict[str, object]]:
    view = await rig.gateway.dossier(CODE)
    return {n["kind"]: n for n in view["notices"]}


async def settled(rig: ChatRig, kinds: set[str], states: set[str]) -> dict[str, dict[str, object]]:
    for _ in range(150):
        found = await notices(rig)
        if kinds <= found.keys() and all(found[k]["state"] in states for k in kinds):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(found)


async def test_a_subscribed_follower_gets_oa_messages_and_no_sms(rig: ChatRig) -> None:
    user = await subscribed(rig)
    await received_and_finished(rig)
    await rig.work()
    found = await settled(rig, {"receipt", "invitation"}, {"sent", "delivered"})
    for kind in ("receipt", "invitation"):
        assert found[kind]["channel"] == "oa", found[kind]
        assert "oa" in str(found[kind]["route"])
    sent = rig.zalo.messages_for(user.user_id)
    assert [m.channel for m in sent] == ["oa", "oa"]
    assert rig.esms.messages == []


async def test_a_non_follower_gets_zns_when_a_template_is_configured(rig: ChatRig) -> None:
    await received_and_finished(rig)
    await rig.work()
    found = await settled(rig, {"receipt", "invitation"}, {"delivered"})
    # No template for the receipt: SMS, and the route says why.
    assert found["receipt"]["channel"] == "sms"
    assert "no Zalo user" in str(found["receipt"]["route"])
    assert "zns" in str(found["receipt"]["route"])
    assert found["invitation"]["channel"] == "zns"
    (zns,) = rig.zalo.messages_for(phone=OWNER_PHONE)
    assert zns.phone == "84912345678"
    assert zns.body["template_id"] == INVITATION_TEMPLATE
    assert zns.body["template_data"]["dossier_code"] == CODE
    assert zns.tracking_id
    assert len(rig.esms.messages) == 1  # the receipt only


async def test_zns_without_a_zalo_account_falls_back_to_sms_exactly_once(rig: ChatRig) -> None:
    rig.zalo.set_mode("no_zalo_account")
    await received_and_finished(rig)
    await rig.work()
    found = await settled(rig, {"receipt", "invitation"}, {"delivered"})
    assert found["invitation"]["channel"] == "sms"
    assert "-118" in str(found["invitation"]["route"]), found["invitation"]
    assert rig.zalo.messages_for(phone=OWNER_PHONE) == []
    assert len(rig.esms.messages) == 2  # the receipt and the invitation
    await rig.run_job("relay")
    await rig.work()
    assert len(rig.esms.messages) == 2


async def test_no_zns_receipt_by_the_deadline_falls_back_to_sms_exactly_once(
    rig: ChatRig,
) -> None:
    rig.zalo.receipts = "never"
    await received_and_finished(rig)
    await rig.work()
    found = await settled(rig, {"invitation"}, {"sent"})
    assert found["invitation"]["channel"] == "zns"
    assert found["invitation"]["receipt_due_at"]
    assert len(rig.esms.messages) == 1  # the receipt
    await asyncio.sleep(1.2)  # past ZNS_RECEIPT_DEADLINE_SECONDS
    await rig.run_job("relay")
    await rig.work()
    found = await settled(rig, {"invitation"}, {"delivered"})
    assert found["invitation"]["channel"] == "sms"
    assert "no delivery receipt by the deadline" in str(found["invitation"]["route"])
    assert len(rig.esms.messages) == 2
    # Later relays and workers send nothing more.
    await asyncio.sleep(1.2)
    await rig.run_job("relay")
    await rig.work()
    assert len(rig.esms.messages) == 2
    assert len(rig.zalo.messages_for(phone=OWNER_PHONE)) == 1


async def test_token_expiry_mid_run_refreshes_once_and_continues(rig: ChatRig) -> None:
    user = await subscribed(rig)
    status, answer, _ = await rig.gateway.post(event("dossier.received"))
    assert status == 202, answer
    await rig.work()
    await settled(rig, {"receipt"}, {"sent", "delivered"})
    refreshes = rig.zalo.refresh_calls
    # Zalo expires every access token it issued: the next call is refused with -220.
    for token in rig.zalo.access_tokens:
        rig.zalo.access_tokens[token] = 0.0
    for code_suffix in range(2, 6):
        code = f"{CODE[:-1]}{code_suffix}"
        status, answer, _ = await rig.gateway.post(event("dossier.received", code=code))
        assert status == 202, answer
    await rig.work()
    for code_suffix in range(2, 6):
        view = await rig.gateway.dossier(f"{CODE[:-1]}{code_suffix}")
        (receipt,) = view["notices"]
        assert (receipt["channel"], receipt["state"]) == ("oa", "sent"), receipt
    assert rig.zalo.refresh_calls == refreshes + 1
    assert rig.zalo.refresh_refused == 0
    assert len(rig.zalo.messages_for(user.user_id)) == 5
    assert rig.esms.messages == []


async def test_an_oa_message_cut_off_after_sending_is_neither_repeated_nor_sent_by_sms(
    chat_settings: Settings,
) -> None:
    async with running_chat_rig(chat_settings, ZALO_TIMEOUT_SECONDS="1") as rig:
        user = await subscribed(rig)
        rig.zalo.set_mode("timeout", count=1)  # Zalo takes the message, answers too late
        status, answer, _ = await rig.gateway.post(event("dossier.received"))
        assert status == 202, answer
        await rig.work()
        found = await settled(rig, {"receipt"}, {"unknown"})
        assert "after sending" in str(found["receipt"]["last_error"]), found["receipt"]
        await rig.run_job("relay")
        await rig.work()
        assert len(rig.zalo.messages_for(user.user_id)) == 1  # taken once by Zalo
        assert rig.esms.messages == []
        assert (await notices(rig))["receipt"]["state"] == "unknown"
