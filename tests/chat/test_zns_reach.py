"""Citizens who do not follow the OA, reached by ZNS: the result check with the signed
link to the citizen page in the template's own parameter, and a rating on a ZNS rating
template (``ZNS_TEMPLATE_RATING_REQUEST``) whose ``user_feedback`` webhook, posted by the
fake Zalo, is recorded for the dossier (quality score, the dossier's phone as rater).
Real worker processes, the fake Zalo, loopback HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from gateway.errors import MalformedInput
from gateway.settings import Settings
from gateway.storage.tables import ratings
from providers.fakes.zalo import FakeTemplate, FakeZalo, SentMessage
from providers.zalo.webhook import ZnsFeedback, parse_webhook
from tests.chat.conftest import CODE, OWNER_PHONE, ChatRig, running_chat_rig
from tests.helpers import event

RATING_TEMPLATE = "260004"


def rating_template() -> FakeTemplate:
    """A service-rating template: five stars, the dossier named in its text."""
    return FakeTemplate(
        RATING_TEMPLATE,
        "Đánh giá việc giải quyết hồ sơ",
        [
            {"name": "ten", "require": True, "type": "STRING", "maxLength": 30},
            {"name": "ma_ho_so", "require": True, "type": "STRING", "maxLength": 30},
        ],
        tag="POST_TRANSACTION",
    )


@pytest.fixture
async def rig(chat_settings: Settings) -> AsyncIterator[ChatRig]:
    fake = FakeZalo(receipt_delay=0.05)
    fake.templates[RATING_TEMPLATE] = rating_template()
    async with running_chat_rig(
        chat_settings,
        fake,
        ZNS_TEMPLATE_RATING_REQUEST=RATING_TEMPLATE,
        ZNS_PARAMS_RATING_REQUEST="ten=customer_name,ma_ho_so=dossier_code",
    ) as ready:
        yield ready


async def delivered_recently(rig: ChatRig) -> None:
    """The dossier received, finished and handed over within the last days."""
    now = datetime.now(UTC)
    received = (now - timedelta(days=3)).isoformat()
    due = (now + timedelta(days=5)).isoformat()
    for type_, at in (
        ("dossier.received", received),
        ("dossier.finished", (now - timedelta(days=1)).isoformat()),
        ("dossier.delivered", (now - timedelta(hours=1)).isoformat()),
    ):
        body = event(type_, at=at, received_at=received, due_at=due)
        status, answer, _ = await rig.gateway.post(body)
        assert status == 202, answer


async def rating_request(rig: ChatRig) -> dict[str, Any]:
    for _ in range(150):
        view = await rig.gateway.dossier(CODE)
        found = {n["kind"]: n for n in view["notices"]}
        if found.get("rating_request", {}).get("state") in ("sent", "delivered"):
            return dict(found["rating_request"])
        await asyncio.sleep(0.1)
    raise AssertionError(found)


async def stored_ratings(rig: ChatRig) -> list[Any]:
    return await rig.rows(sa.select(ratings).where(ratings.c.dossier_code == CODE))


async def test_a_citizen_without_the_oa_rates_by_zns_and_the_rating_is_recorded(
    rig: ChatRig,
) -> None:
    await delivered_recently(rig)
    await rig.run_job("sweep_deadlines")  # asks for the rating: no subscriber, but ZNS
    await rig.work()
    request = await rating_request(rig)
    assert request["channel"] == "zns", request
    (zns,) = [m for m in rig.zalo.messages_for(phone=OWNER_PHONE) if m.channel == "zns"][-1:]
    assert zns.body["template_id"] == RATING_TEMPLATE
    assert zns.body["template_data"] == {"ten": "Nguyễn Văn An", "ma_ho_so": CODE}

    statuses = await rig.zalo.rate(
        zns.message_id, 4, note="Trả đúng hẹn", feedbacks=["Cán bộ nhiệt tình"]
    )
    assert statuses == [200]
    await rig.work()  # the receipts job records it

    (rating,) = await stored_ratings(rig)
    assert (rating.channel, rating.rater) == ("zns", "phone")
    assert (rating.quality_score, rating.progress_score, rating.score) == (4, None, None)
    assert rating.comment == "Cán bộ nhiệt tình. Trả đúng hẹn"
    assert rating.agency_code == "000.00.12.H19"
    assert rating.zalo_user_id is None
    # The same webhook again (Zalo retries) changes nothing; a new rating replaces the stars.
    rig.zalo.webhooks = "duplicates"
    control = f"{rig.settings.zalo.zns_base_url}/_fake/zns/{zns.message_id}/rate"
    async with aiohttp.ClientSession() as session:
        async with session.post(control, json={"rate": 2}) as answer:
            assert (answer.status, await answer.json()) == (200, {"statuses": [200, 200]})
        async with session.post(control, json={"rate": 9}) as answer:
            assert answer.status == 400
        async with session.post(control.replace(zns.message_id, "nope"), json={"rate": 2}) as a:
            assert a.status == 404
    await rig.work()
    (rating,) = await stored_ratings(rig)
    assert (rating.quality_score, rating.comment) == (2, "Cán bộ nhiệt tình. Trả đúng hẹn")


async def test_without_a_rating_template_no_rating_request_goes_to_a_non_subscriber(
    chat_settings: Settings,
) -> None:
    async with running_chat_rig(chat_settings) as rig:
        await delivered_recently(rig)
        await rig.run_job("sweep_deadlines")
        await rig.work()
        view = await rig.gateway.dossier(CODE)
        assert "rating_request" not in {n["kind"] for n in view["notices"]}


async def test_a_rating_for_a_message_we_never_sent_is_dropped(rig: ChatRig) -> None:
    await delivered_recently(rig)
    await rig.run_job("sweep_deadlines")
    await rig.work()
    await rating_request(rig)
    stranger = FakeZalo()  # a message of another sender, signed like ours
    stranger.webhook_url = rig.zalo.webhook_url
    stranger.templates = rig.zalo.templates
    stranger.app_id, stranger.oa_secret_key = rig.zalo.app_id, rig.zalo.oa_secret_key
    stranger.sent.append(SentMessage("zns", "f00dcafe", None, "84900000000", None, {}, 0.0))
    try:
        assert await stranger.rate("f00dcafe", 5) == [200]
    finally:
        await stranger.close()
    await rig.work()
    assert await stored_ratings(rig) == []


RESULT_TEMPLATE = "260002"
CITIZEN_BASE = "https://dvc.example.vn"


async def test_the_result_check_reaches_a_non_follower_by_zns_with_the_link(
    chat_settings: Settings,
) -> None:
    fake = FakeZalo(receipt_delay=0.05)
    fake.templates[RESULT_TEMPLATE] = FakeTemplate(
        RESULT_TEMPLATE,
        "Xác nhận đã nhận kết quả",
        [
            {"name": "ma_ho_so", "require": True, "type": "STRING", "maxLength": 30},
            {"name": "duong_dan", "require": True, "type": "STRING", "maxLength": 100},
        ],
        tag="POST_TRANSACTION",
    )
    async with running_chat_rig(
        chat_settings,
        fake,
        ZNS_TEMPLATE_RESULT_CHECK=RESULT_TEMPLATE,
        ZNS_PARAMS_RESULT_CHECK="ma_ho_so=dossier_code,duong_dan=link",
        RESULT_CHECK_WORKING_DAYS="0",
        CITIZEN_SECRET="c" * 40,
        CITIZEN_BASE_URL=CITIZEN_BASE,
    ) as rig:
        now = datetime.now(UTC)
        # Finished long enough ago that the check is due whatever the day and holidays.
        received = (now - timedelta(days=25)).isoformat()
        for type_, at in (("dossier.received", received), ("dossier.finished", None)):
            body = event(
                type_,
                at=at or (now - timedelta(days=20)).isoformat(),
                received_at=received,
                due_at=(now + timedelta(days=5)).isoformat(),
            )
            status, answer, _ = await rig.gateway.post(body)
            assert status == 202, answer
        await rig.run_job("sweep_deadlines")  # asks whether the result was received
        await rig.work()
        found: dict[str, Any] = {}
        for _ in range(150):
            view = await rig.gateway.dossier(CODE)
            found = {n["kind"]: n for n in view["notices"]}
            if found.get("result_check", {}).get("state") in ("sent", "delivered"):
                break
            await asyncio.sleep(0.1)

    assert found["result_check"]["channel"] == "zns", found
    (zns,) = [m for m in fake.messages_for(phone=OWNER_PHONE) if m.channel == "zns"]
    assert zns.body["template_id"] == RESULT_TEMPLATE
    data = zns.body["template_data"]
    assert set(data) == {"ma_ho_so", "duong_dan"}
    assert data["ma_ho_so"] == CODE
    assert data["duong_dan"].startswith(f"{CITIZEN_BASE}/l/")
    assert len(data["duong_dan"]) == len(CITIZEN_BASE) + len("/l/") + 16


def feedback_payload(**message: Any) -> dict[str, Any]:
    body = {
        "note": "",
        "rate": 3,
        "submit_time": "1765100000000",
        "feedbacks": None,
        "msg_id": "1c6a918f3a4c72112b5e",
        "tracking_id": "n123zns",
    } | message
    return {
        "app_id": "1",
        "oa_id": "2",
        "event_name": "user_feedback",
        "message": body,
        "timestamp": "1765100000500",
    }


def test_user_feedback_is_parsed_with_the_moment_of_the_rating() -> None:
    event_ = parse_webhook(
        feedback_payload(rate="5", note=" Nhanh ", feedbacks=["A", "", 7]), "ZNS"
    )
    assert event_ == ZnsFeedback(
        "1c6a918f3a4c72112b5e",
        "n123zns",
        5,
        "Nhanh",
        ("A", "7"),
        datetime.fromtimestamp(1765100000, UTC),
        "feedback:1c6a918f3a4c72112b5e:1765100000000",
    )
    without_time = parse_webhook(feedback_payload(submit_time=None, tracking_id=None), None)
    assert isinstance(without_time, ZnsFeedback)
    assert without_time.at == datetime.fromtimestamp(1765100000.5, UTC)
    assert without_time.tracking_id is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"rate": 0}, "message.rate is not a whole number from 1 to 5"),
        ({"rate": 6}, "message.rate"),
        ({"rate": True}, "message.rate"),
        ({"rate": None}, "message.rate"),
        ({"msg_id": ""}, "message.msg_id is empty"),
        ({"feedbacks": "tốt"}, "message.feedbacks is not a list"),
        ({"submit_time": "yesterday"}, "message.submit_time is not epoch milliseconds"),
        ({"tracking_id": 5}, "message.tracking_id is not a string"),
    ],
)
def test_a_malformed_rating_is_refused_naming_the_field(change: dict[str, Any], words: str) -> None:
    with pytest.raises(MalformedInput) as refused:
        parse_webhook(feedback_payload(**change), "ZNS")
    assert words in str(refused.value)
