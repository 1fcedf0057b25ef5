"""ZNS_PARAMS_<KIND>: a province's own template parameter names mapped to the gateway's
facts. Parsed in settings (every error names the variable), checked against the template
(names, required parameters, NUMBER and DATE types, status), rendered in the form each
parameter type takes, and delivered through a real `tthc worker` to the fake Zalo with
exactly the template's own keys. A template that is not ENABLE is never cached."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.delivery import zns_params
from gateway.delivery.zns_params import Mismatch
from gateway.errors import ConfigError, TemplateRefused, ValidationFailed
from gateway.settings import Settings, ZaloSettings
from gateway.texts.zalo import ZNS_FACTS
from providers.fakes.zalo import FakeTemplate, FakeZalo
from providers.fakes.zalo import create_app as create_zalo_app
from providers.zalo.client import ZaloClient
from providers.zalo.zns import ZnsTemplate, parse_template
from tests.chat.conftest import OWNER_PHONE, ChatRig, running_chat_rig
from tests.delivery.conftest import burst
from tests.helpers import CODE, event
from tests.providers.zalo.test_client import MemoryTokenStore

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PROVINCE_TEMPLATE = "260001"
PROVINCE_MAPPING = "ten=customer_name,ma_ho_so=dossier_code,noi_nhan=pickup,han_nhan=due_date"


def param(
    name: str, max_length: int = 30, *, type_: str = "STRING", required: bool = True
) -> dict[str, Any]:
    return {
        "name": name,
        "require": required,
        "type": type_,
        "maxLength": max_length,
        "minLength": 0,
        "acceptNull": not required,
    }


def province_template(status: str = "ENABLE") -> FakeTemplate:
    """An invitation template registered with the province's own parameter names."""
    return FakeTemplate(
        PROVINCE_TEMPLATE,
        "Mời nhận kết quả (tỉnh)",
        [
            param("ten"),
            param("ma_ho_so"),
            param("noi_nhan", 200),
            param("han_nhan", 20, type_="DATE", required=False),
        ],
        status=status,
        tag="POST_TRANSACTION",
    )


def template_of(fake: FakeTemplate) -> ZnsTemplate:
    return parse_template(fake.template_id, fake.info())


def settings_with(**env: str) -> Settings:
    return Settings.from_mapping(env)


# --- settings -----------------------------------------------------------------------------


def test_a_mapping_is_read_per_kind_and_without_one_nothing_changes() -> None:
    settings = settings_with(
        ZNS_TEMPLATE_INVITATION=PROVINCE_TEMPLATE,
        ZNS_PARAMS_INVITATION=" ten = customer_name , ma_ho_so=dossier_code,noi_nhan=pickup",
        ZNS_TEMPLATE_RESULT_CHECK="250002",
    )
    assert settings.zalo.zns_params == {
        "invitation": {"ten": "customer_name", "ma_ho_so": "dossier_code", "noi_nhan": "pickup"}
    }
    assert settings_with(ZNS_TEMPLATE_INVITATION="250001").zalo.zns_params == {}
    assert ZaloSettings().zns_params == {}


def test_the_documented_facts_include_the_one_time_code_and_the_link() -> None:
    assert {"customer_name", "dossier_code", "pickup", "amount", "otp_code", "link"} <= set(
        ZNS_FACTS
    )
    assert ZNS_FACTS["otp_code"] == ZNS_FACTS["link"] == "code"  # never shortened
    assert ZNS_FACTS["amount"] == "number"
    assert {fact for fact, kind in ZNS_FACTS.items() if kind == "date"} == {
        "received_date",
        "due_date",
        "new_due_date",
        "expected_date",
    }


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"ZNS_PARAMS_INVITATION": "ten=customer_name"}, "no ZNS_TEMPLATE_INVITATION is set"),
        ({"ZNS_PARAMS_INVITATION": "ten=customer_name,ma_ho_so"}, "entry 2 must be"),
        ({"ZNS_PARAMS_INVITATION": "ten=,ma_ho_so=dossier_code"}, "entry 1 must be"),
        ({"ZNS_PARAMS_INVITATION": "ten=ho_ten"}, "entry 1 (ten=ho_ten): unknown fact 'ho_ten'"),
        ({"ZNS_PARAMS_INVITATION": "ten=customer_name,ten=pickup"}, "'ten' is mapped twice"),
        ({"ZNS_PARAMS_INVITATION": "tên=customer_name"}, "not a template parameter name"),
        ({"ZNS_PARAMS_INVITATION-X": "ten=customer_name"}, "must name a notice kind"),
    ],
    ids=["no-template", "no-equals", "empty-fact", "unknown-fact", "twice", "bad-name", "kind"],
)
def test_a_wrong_mapping_is_refused_naming_the_variable_and_the_pair(
    env: dict[str, str], words: str
) -> None:
    variable = next(iter(env))
    if variable != "ZNS_PARAMS_INVITATION" or "no ZNS_TEMPLATE" not in words:
        env = {"ZNS_TEMPLATE_INVITATION": PROVINCE_TEMPLATE, **env}
    with pytest.raises(ConfigError) as refused:
        Settings.from_mapping(env)
    assert refused.value.variable == variable
    assert words in str(refused.value)
    assert str(refused.value).startswith(f"{variable}: ")


# --- the check against the template ------------------------------------------------------


MAPPING = {
    "ten": "customer_name",
    "ma_ho_so": "dossier_code",
    "noi_nhan": "pickup",
    "han_nhan": "due_date",
}


def test_a_mapping_that_fits_its_template_passes() -> None:
    assert zns_params.check("invitation", template_of(province_template()), MAPPING) == []


def test_without_a_mapping_parameters_named_like_the_facts_are_filled_as_before() -> None:
    fake = FakeZalo().templates["250001"]  # customer_name, dossier_code, pickup, due_date
    template = template_of(fake)
    assert zns_params.check("invitation", template, {}) == []
    assert zns_params.filled(template, {}) == {
        "customer_name": "customer_name",
        "dossier_code": "dossier_code",
        "pickup": "pickup",
        "due_date": "due_date",
    }


def test_each_disagreement_names_the_variable_and_the_parameter() -> None:
    fake = province_template(status="PENDING_REVIEW")
    fake.params.append(param("so_tien", 15, type_="NUMBER"))
    template = template_of(fake)
    mapping = {
        "ten": "customer_name",
        "ma_ho_so": "dossier_code",
        "noi_nhan_sai": "pickup",  # not in the template
        "han_nhan": "pickup",  # DATE given a text fact
        "so_tien": "customer_name",  # NUMBER given a text fact
    }

    problems = zns_params.check("invitation", template, mapping)

    assert problems == [
        Mismatch("ZNS_TEMPLATE_INVITATION", None, "template 260001 is PENDING_REVIEW, not ENABLE"),
        Mismatch(
            "ZNS_PARAMS_INVITATION",
            "noi_nhan_sai",
            "not a parameter of template 260001 (it has ten, ma_ho_so, noi_nhan, han_nhan, "
            "so_tien)",
        ),
        Mismatch(
            "ZNS_PARAMS_INVITATION",
            "noi_nhan",
            "required by template 260001 but no fact fills it; map it (noi_nhan=<fact>)",
        ),
        Mismatch(
            "ZNS_PARAMS_INVITATION",
            "han_nhan",
            "template 260001 declares it DATE, but pickup is a text fact (a date fact is needed)",
        ),
        Mismatch(
            "ZNS_PARAMS_INVITATION",
            "so_tien",
            "template 260001 declares it NUMBER, but customer_name is a text fact "
            "(a number fact is needed)",
        ),
    ]
    assert str(problems[1]).startswith("ZNS_PARAMS_INVITATION: noi_nhan_sai: not a parameter")
    with pytest.raises(ValidationFailed) as refused:
        zns_params.refuse_if_mismatched("invitation", template, mapping)
    assert [error.field for error in refused.value.errors] == [
        "ZNS_TEMPLATE_INVITATION",
        "ZNS_PARAMS_INVITATION.noi_nhan_sai",
        "ZNS_PARAMS_INVITATION.noi_nhan",
        "ZNS_PARAMS_INVITATION.han_nhan",
        "ZNS_PARAMS_INVITATION.so_tien",
    ]
    assert "ZNS_PARAMS_INVITATION: so_tien: template 260001 declares it NUMBER" in str(
        refused.value
    )


def test_number_and_date_parameters_get_their_own_forms() -> None:
    fake = FakeTemplate(
        "260009",
        "Thông báo phí",
        [
            param("so_tien", 15, type_="NUMBER"),
            param("so_tien_chu", 20),
            param("han", 20, type_="DATE"),
            param("ho_ten", 5),
            param("duong_dan", 10, required=False),
        ],
    )
    template = template_of(fake)
    mapping = {
        "so_tien": "amount",
        "so_tien_chu": "amount",
        "han": "due_date",
        "ho_ten": "customer_name",
        "duong_dan": "link",
    }
    assert zns_params.check("fees", template, mapping) == []
    params = {
        "amount": 1_500_000,
        "due_at": "2024-04-12T17:00:00+07:00",
        "applicant_name": "Nguyễn Văn An",
        "link": "https://dvc.example.vn/l/abcdefghijklmnop",
    }

    data = zns_params.template_data(template, mapping, params, ZONE)

    assert data == {
        "so_tien": "1500000",  # NUMBER: bare digits
        "so_tien_chu": "1.500.000",  # text: as a citizen reads it
        "han": "12/04/2024",  # DATE: dd/mm/yyyy in the gateway's time zone
        "ho_ten": "Nguyễ",  # text is cut to maxLength...
        "duong_dan": "https://dvc.example.vn/l/abcdefghijklmnop",  # ...a link never
    }


def test_an_otp_template_gets_the_code_whole_and_may_not_take_it_as_a_number() -> None:
    fake = FakeTemplate(
        "260005",
        "Mã xác thực",
        [param("ma", 6), param("phut", 2, type_="NUMBER")],
        tag="OTP",
    )
    template = template_of(fake)
    mapping = {"ma": "otp_code", "phut": "otp_minutes"}
    assert zns_params.check("otp", template, mapping) == []
    params = {"otp_code": "012345", "minutes": 5}
    assert zns_params.template_data(template, mapping, params, ZONE) == {
        "ma": "012345",
        "phut": "5",
    }
    fake.params[0]["type"] = "NUMBER"  # a number would lose the leading zero
    (problem,) = zns_params.check("otp", template_of(fake), mapping)
    assert (problem.variable, problem.param) == ("ZNS_PARAMS_OTP", "ma")
    assert "otp_code is a code fact (a number fact is needed)" in problem.reason


def test_a_date_is_given_in_the_gateways_time_zone() -> None:
    template = template_of(FakeTemplate("1", "t", [param("han", 20, type_="DATE")]))
    late_evening_utc = {"due_at": "2024-04-12T18:30:00+00:00"}  # 01:30 on the 13th in Hà Nội
    assert zns_params.template_data(template, {"han": "due_date"}, late_evening_utc, ZONE) == {
        "han": "13/04/2024"
    }


# --- template info is not cached while a template is not enabled --------------------------


@pytest.fixture
async def zalo_client(redis_server: str) -> AsyncIterator[tuple[FakeZalo, ZaloClient]]:
    fake = FakeZalo()
    fake.templates[PROVINCE_TEMPLATE] = province_template(status="PENDING_REVIEW")
    server = TestServer(create_zalo_app(fake))
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    settings = ZaloSettings(
        app_id=fake.app_id,
        app_secret=fake.app_secret,
        oa_secret_key=fake.oa_secret_key,
        refresh_token="fake-refresh-token-0",
        oauth_base_url=base,
        oa_base_url=base,
        zns_base_url=base,
        timeout_seconds=2.0,
    )
    redis = Redis.from_url(redis_server)
    prefix = f"tthc-test-zns-{uuid.uuid4().hex[:8]}:"
    try:
        async with aiohttp.ClientSession() as session:
            yield (
                fake,
                ZaloClient(settings, session, redis, key_prefix=prefix, store=MemoryTokenStore()),
            )
    finally:
        keys = [key async for key in redis.scan_iter(f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await server.close()


def template_calls(fake: FakeZalo) -> int:
    return sum(1 for call in fake.calls if call.endpoint == "template")


async def test_a_template_in_review_is_asked_again_until_it_is_enabled(
    zalo_client: tuple[FakeZalo, ZaloClient],
) -> None:
    fake, client = zalo_client

    assert (await client.template_info(PROVINCE_TEMPLATE)).status == "PENDING_REVIEW"
    assert (await client.template_info(PROVINCE_TEMPLATE)).status == "PENDING_REVIEW"
    assert template_calls(fake) == 2  # not cached: asked again

    fake.templates[PROVINCE_TEMPLATE].status = "ENABLE"  # Zalo approved it meanwhile
    assert (await client.template_info(PROVINCE_TEMPLATE)).status == "ENABLE"
    assert (await client.template_info(PROVINCE_TEMPLATE)).status == "ENABLE"
    assert template_calls(fake) == 3  # enabled: cached from now on

    fake.templates[PROVINCE_TEMPLATE].status = "DISABLE"
    assert (await client.template_info(PROVINCE_TEMPLATE, fresh=True)).status == "DISABLE"
    assert (await client.template_info(PROVINCE_TEMPLATE)).status == "DISABLE"
    assert template_calls(fake) == 5  # the disabled answer replaced the cached one


async def test_the_fake_takes_numbers_and_dates_only_in_their_zalo_form(
    zalo_client: tuple[FakeZalo, ZaloClient],
) -> None:
    fake, client = zalo_client
    fake.templates["260009"] = FakeTemplate(
        "260009", "Phí", [param("so_tien", 15, type_="NUMBER"), param("han", 20, type_="DATE")]
    )
    good = {"so_tien": "1500000", "han": "12/04/2024"}

    accepted = await client.send_zns(OWNER_PHONE, "260009", good, "t1")

    assert accepted.msg_id
    for number, wrong in enumerate(({"so_tien": "1.500.000"}, {"han": "2024-04-12"}), 2):
        with pytest.raises(TemplateRefused) as refused:
            await client.send_zns(OWNER_PHONE, "260009", good | wrong, f"t{number}")
        assert refused.value.code == "-112"


# --- acceptance: the province's own names, through the worker -----------------------------


@asynccontextmanager
async def finished_with_province_template(
    sms_settings: Settings, fake: FakeZalo
) -> AsyncIterator[ChatRig]:
    """The chat rig with the province's invitation template and mapping; the dossier
    received and finished through the events API (nothing sent yet)."""
    async with running_chat_rig(
        sms_settings,
        fake,
        ZNS_TEMPLATE_INVITATION=PROVINCE_TEMPLATE,
        ZNS_PARAMS_INVITATION=PROVINCE_MAPPING,
    ) as rig:
        for body in (event("dossier.received"), event("dossier.finished")):
            status, answer, _ = await rig.gateway.post(body)
            assert status == 202, answer
        yield rig


async def test_a_template_with_its_own_parameter_names_delivers_through_the_mapping(
    sms_settings: Settings,
) -> None:
    fake = FakeZalo(receipt_delay=0.05)
    fake.templates[PROVINCE_TEMPLATE] = province_template()
    async with finished_with_province_template(sms_settings, fake) as rig:
        await rig.work()
        invitation = await _settled(rig.gateway, "invitation")

    assert invitation["channel"] == "zns", invitation
    (zns,) = fake.messages_for(phone=OWNER_PHONE)
    assert zns.body["template_id"] == PROVINCE_TEMPLATE
    data = zns.body["template_data"]
    assert set(data) == {"ten", "ma_ho_so", "noi_nhan", "han_nhan"}
    assert data["ten"] == "Nguyễn Văn An"
    assert data["ma_ho_so"] == CODE
    assert data["han_nhan"] == "12/04/2024"
    assert data["noi_nhan"]


async def test_when_zalo_is_down_at_start_up_each_send_checks_and_refuses_by_name(
    sms_settings: Settings,
) -> None:
    fake = FakeZalo(receipt_delay=0.05)
    fake.templates[PROVINCE_TEMPLATE] = province_template()
    fake.templates[PROVINCE_TEMPLATE].params[0]["name"] = "ho_ten"  # not what is mapped
    async with finished_with_province_template(sms_settings, fake) as rig:
        fake.set_mode("http_500", count=1)  # the start-up check's call fails
        _, stderr = await burst(rig.worker_env)
        invitation = await _settled(rig.gateway, "invitation")

    assert "ZNS templates not checked at start-up" in stderr
    assert invitation["channel"] == "sms", invitation
    assert "ZNS_PARAMS_INVITATION: ten: not a parameter of template 260001" in str(
        invitation["route"]
    )
    assert fake.messages_for(phone=OWNER_PHONE) == []


async def _settled(gateway: Any, kind: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for _ in range(150):
        view = await gateway.dossier(CODE)
        found = {n["kind"]: n for n in view["notices"]}
        if kind in found and found[kind]["state"] in ("sent", "delivered"):
            return found[kind]
        await asyncio.sleep(0.1)
    raise AssertionError(found)
