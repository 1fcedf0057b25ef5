"""The simulated one-stop-shop: a timeline in the past and in office hours, data a
Vietnamese reader accepts, and scripted stories that make every audit rule fire."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.domain.calendar import WorkingCalendar
from gateway.domain.codes import is_dossier_code
from gateway.local.simulator import (
    COMMUNES,
    MEN,
    PROCEDURES,
    TZ,
    WOMEN,
    OneStopShop,
    Posting,
)
from tests.helpers import Gateway

# A Wednesday before dawn, when the demo was once run and showed a step "at 22:00 tomorrow".
NOW = datetime(2026, 12, 2, 4, 37, tzinfo=TZ)
CALENDAR = WorkingCalendar()


def demo_shop(seed: int = 3) -> OneStopShop:
    return OneStopShop(seed=seed, now=NOW, calendar=CALENDAR)


def all_stories(shop: OneStopShop, random_count: int = 60) -> list[list[Posting]]:
    dossiers = [s.dossier for s in shop.scripted()]
    dossiers += [shop.dossier() for _ in range(random_count)]
    return [list(shop.story(d)) for d in dossiers]


def in_office_hours(moment: datetime) -> bool:
    local = moment.astimezone(TZ)
    if not CALENDAR.is_working_day(local.date()):
        return False
    wall = local.time()
    return any(opens <= wall <= closes for opens, closes in CALENDAR.hours.periods)


def test_every_event_happened_before_now_in_order_and_in_office_hours() -> None:
    for story in all_stories(demo_shop()):
        moments = [datetime.fromisoformat(p.body["occurred_at"]) for p in story]
        assert moments == sorted(moments), story[0].body["dossier"]["code"]
        assert all(m < NOW for m in moments)
        assert all(in_office_hours(m) for m in moments), moments
        received = datetime.fromisoformat(story[0].body["dossier"]["received_at"])
        assert moments[0] == received


def test_an_invitation_follows_the_facts_it_announces() -> None:
    for story in all_stories(demo_shop(seed=8)):
        types = [p.body["type"] for p in story]
        if "dossier.delivered" in types:
            assert "dossier.finished" in types[: types.index("dossier.delivered")]


def test_after_an_apology_every_event_carries_the_new_due_date() -> None:
    delayed_stories = 0
    for story in all_stories(demo_shop(seed=5)):
        promised: str | None = None
        for posting in story:
            body = posting.body
            if body["type"] == "dossier.delayed":
                promised = body["data"]["new_due_at"]
                delayed_stories += 1
            if promised is not None:
                assert body["dossier"]["due_at"] == promised
    assert delayed_stories >= 2  # the scripted ones at least


def test_forward_shops_keep_their_clock_and_office_hours() -> None:
    shop = OneStopShop(seed=7)
    first = shop.dossier()
    assert first["received_at"] == "2026-11-16T08:00:00+07:00"
    story = [p.body for p in shop.story(first)]
    assert all(in_office_hours(datetime.fromisoformat(b["occurred_at"])) for b in story)


def test_agencies_handle_their_own_procedures_after_the_2025_reform() -> None:
    handled_by = {p.name: p.office.name for p in PROCEDURES}
    assert handled_by["Cấp phiếu lý lịch tư pháp"] == "Sở Tư pháp"
    assert handled_by["Cấp giấy phép xây dựng công trình"] == "Sở Xây dựng"
    assert handled_by["Đăng ký thành lập doanh nghiệp tư nhân"] == "Sở Tài chính"
    assert "Đăng ký đất đai" in handled_by["Đăng ký biến động quyền sử dụng đất"]
    local = {"Đăng ký khai sinh", "Đăng ký kết hôn", "Đăng ký thành lập hộ kinh doanh"}
    for procedure in PROCEDURES:
        name = procedure.office.name
        # No district level since 1 July 2025; departments merged that year.
        assert "huyện" not in name and "thị trấn" not in name
        assert "Kế hoạch và Đầu tư" not in name and "Tài nguyên và Môi trường" not in name
        if procedure.name in local:
            assert name.startswith(("UBND xã ", "UBND phường ")), procedure
    codes = [p.office.code for p in PROCEDURES]
    assert all(is_dossier_code(f"{code}-261202-0001") for code in codes)
    assert len({c.code for c in COMMUNES}) == len(COMMUNES)


def test_middle_and_given_names_agree_on_gender() -> None:
    shop = demo_shop(seed=11)
    names = [shop.dossier()["applicant"]["name"] for _ in range(200)]
    names += [s.dossier["applicant"]["name"] for s in shop.scripted()]
    for name in names:
        _, middle, given = name.split(" ")
        group = MEN if middle in MEN[0] else WOMEN
        assert given in group[1], name


def test_codes_continue_after_an_earlier_run() -> None:
    shop = OneStopShop(seed=1, first_sequence=41, now=NOW, calendar=CALENDAR)
    codes = [s.dossier["code"] for s in shop.scripted()] + [shop.dossier()["code"]]
    assert [code[-4:] for code in codes] == [f"{n:04d}" for n in range(42, 49)]
    assert all(is_dossier_code(code) for code in codes)


async def test_the_scripted_stories_make_every_rule_fire_once(gateway: Gateway) -> None:
    shop = OneStopShop(seed=2, now=datetime.now(TZ), calendar=CALENDAR)
    fired: list[tuple[str, Any]] = []
    for scripted in shop.scripted():
        for posting in shop.story(scripted.dossier):
            status, answer, _ = await gateway.post(posting.body)
            assert status == 202, answer
            fired += [(f["rule"], posting.body["actor"]["name"]) for f in answer["flags"]]
    assert sorted(fired) == [
        ("pause_during_consultation", "Đỗ Minh Khang"),
        ("phone_landline", "Phạm Ngọc Diệp"),
        ("phone_missing", "Lê Văn Cường"),
        ("second_rescheduling", "Phạm Ngọc Diệp"),
        ("withdrawal_without_approval", "Lê Văn Cường"),
    ]
