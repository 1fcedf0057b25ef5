"""The hotline's report queue at the console: filters, the SLA clock, grouping,
assignment, and the form for a report taken by phone.

The real application on a test server, real Redis, both databases. Dates: Friday
24 April 2026 is followed by a weekend, the Hùng Kings' day off (Monday 27), then
Tuesday 28 and Wednesday 29 April, 30 April and 1 May (holidays), a weekend, and
Monday 4 May; the SLA clock counts only the working days among them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.domain.calendar import DEFAULT_OVERRIDES_FILE, WorkingCalendar, load_overrides
from gateway.storage import reports as report_store
from gateway.storage.staff import add_user
from gateway.storage.tables import notices, report_transitions, reports, staff_users
from tests.console_helpers import CODE, FRIDAY, MASKED, PHONE, Console
from tests.staff_helpers import seed_dossier

CALENDAR = WorkingCalendar(load_overrides(DEFAULT_OVERRIDES_FILE))
OTHER = "000.00.05.H19-260402-0002"
UNKNOWN = "000.00.07.H19-260403-0003"
UNKNOWN_TOO = "000.00.07.H19-260403-0004"
TUESDAY = datetime(2026, 4, 28, 2, 0, tzinfo=UTC)  # 09:00 in Vietnam
NEXT_TUESDAY = datetime(2026, 5, 5, 2, 0, tzinfo=UTC)
ROW_RE = re.compile(r'data-testid="report" data-id="(\d+)"')
GROUP_RE = re.compile(r'data-testid="group" data-dossier="([^"]*)"')


SLA = 'data-testid="sla" data-label="Thời hạn">'
ASSIGNEE = '<td data-testid="assignee" data-label="Người xử lý">'


@pytest.fixture(autouse=True)
async def other_dossier(console: Console) -> None:
    """A second known dossier, of another agency."""
    await seed_dossier(console.db.writer, OTHER, agency=("000.00.05.H19", "Sở Tư pháp"))


async def report(
    console: Console,
    *,
    code: str = CODE,
    kind: str = "false_closure",
    at: datetime = FRIDAY,
    agency: tuple[str, str] | None = None,
    phone: str | None = PHONE,
) -> report_store.ReportRow:
    """A report made at ``at`` (a dossier never seen needs ``agency``)."""
    made, _ = await report_store.create_report(
        console.db.writer,
        kind=kind,
        source="zalo",
        dossier_code=code,
        description="Tôi chưa nhận được kết quả",
        zalo_user_id=None,
        phone_e164=phone,
        calendar=CALENDAR,
        answer_working_days=5,
        now=at,
        agency_code=agency[0] if agency else None,
        agency_name=agency[1] if agency else None,
    )
    return made


async def travel(console: Console, when: datetime, username: str = "hoa") -> None:
    """Move the clock (days: the session expires) and log in again."""
    console.clock.at = when
    console.client.session.cookie_jar.clear()
    await console.logged_in(username)


async def queue(console: Console, query: str = "") -> str:
    response = await console.client.get(f"/console/reports{query}", allow_redirects=False)
    assert response.status == 200, await response.text()
    return await response.text()


def ids(html: str) -> list[int]:
    return [int(found) for found in ROW_RE.findall(html)]


def row(html: str, report_id: int) -> str:
    start = html.index(f'data-testid="report" data-id="{report_id}"')
    return html[start : html.index("</tr>", start)]


async def staff_id(console: Console, username: str) -> int:
    async with console.db.reader.connect() as conn:
        found = await conn.execute(
            sa.select(staff_users.c.id).where(staff_users.c.username == username)
        )
        return int(found.scalar_one())


async def stored(console: Console, report_id: int) -> dict[str, object]:
    async with console.db.reader.connect() as conn:
        found = await conn.execute(sa.select(reports).where(reports.c.id == report_id))
        return dict(found.mappings().one())


# --- the SLA clock and the order -----------------------------------------------------------


async def test_the_sla_clock_counts_working_days_across_the_holidays(console: Console) -> None:
    # A false closure (3 working days) and a problem (5): due Monday 4 and Wednesday 6 May.
    closure = await report(console)
    problem = await report(console, code=OTHER, kind="problem", at=FRIDAY + timedelta(minutes=1))
    await travel(console, TUESDAY)
    html = await queue(console)
    assert ids(html) == [closure.id, problem.id]
    assert f'class="sla sla-on_time" {SLA}Còn 2 ngày làm việc' in row(html, closure.id)
    assert "hạn 04/05/2026" in row(html, closure.id)
    assert "Còn 4 ngày làm việc" in row(html, problem.id)
    await travel(console, TUESDAY + timedelta(days=1))  # Wednesday 29; next working day 4 May
    html = await queue(console)
    assert f'sla-due_soon" {SLA}Còn 1 ngày làm việc' in row(html, closure.id)
    await travel(console, datetime(2026, 5, 4, 2, 0, tzinfo=UTC))
    assert f'sla-due_today" {SLA}Hạn hôm nay' in row(await queue(console), closure.id)


async def test_overdue_reports_come_first_then_the_oldest(console: Console) -> None:
    problem = await report(console, code=OTHER, kind="problem")  # older, due 6 May
    closure = await report(console, at=FRIDAY + timedelta(minutes=5))  # due 4 May
    await travel(console, NEXT_TUESDAY)
    html = await queue(console)
    assert ids(html) == [closure.id, problem.id]
    assert f'sla-overdue" {SLA}Quá hạn 1 ngày làm việc' in row(html, closure.id)
    assert "Còn 1 ngày làm việc" in row(html, problem.id)
    # Three working days later (Friday 8 May), both are late, the oldest first again.
    await travel(console, NEXT_TUESDAY + timedelta(days=3))
    html = await queue(console)
    assert ids(html) == [problem.id, closure.id]
    assert "Quá hạn 4 ngày làm việc" in row(html, closure.id)
    assert "Quá hạn 2 ngày làm việc" in row(html, problem.id)


async def test_the_sla_is_never_later_than_the_date_promised_to_the_citizen(
    console: Console,
) -> None:
    # An answer promised in 1 working day (Tuesday 28) beats the 5-day SLA of a problem.
    made, _ = await report_store.create_report(
        console.db.writer,
        kind="problem",
        source="zalo",
        dossier_code=CODE,
        description="Gấp",
        zalo_user_id=None,
        phone_e164=None,
        calendar=CALENDAR,
        answer_working_days=1,
        now=FRIDAY,
    )
    await travel(console, TUESDAY)
    assert "Hạn hôm nay" in row(await queue(console), made.id)


async def test_reports_on_one_dossier_are_grouped_by_the_most_urgent(console: Console) -> None:
    first = await report(console, code=OTHER, kind="problem")
    second = await report(console, at=FRIDAY + timedelta(minutes=1))
    third = await report(console, kind="problem", at=FRIDAY + timedelta(minutes=2))
    await console.logged_in("minh")
    html = await queue(console)
    # Oldest first, but CODE's two reports stay together after OTHER's.
    assert GROUP_RE.findall(html) == [OTHER, CODE]
    assert ids(html) == [first.id, second.id, third.id]
    assert f"Hồ sơ <code>{CODE}</code>\n        — 2 phản ánh" in html
    # Once CODE's false closure is overdue, its whole group goes on top.
    await travel(console, NEXT_TUESDAY, "minh")
    html = await queue(console)
    assert GROUP_RE.findall(html) == [CODE, OTHER]
    assert ids(html) == [second.id, third.id, first.id]


async def test_phones_are_masked_for_everyone_on_the_queue(console: Console) -> None:
    made = await report(console)
    for username in ("hoa", "lan"):
        console.client.session.cookie_jar.clear()
        await console.logged_in(username)
        html = await queue(console)
        assert MASKED in row(html, made.id)
        assert PHONE not in html


# --- filters -------------------------------------------------------------------------------


async def test_each_filter_selects_its_reports(console: Console) -> None:
    closure = await report(console)
    problem = await report(console, code=OTHER, kind="problem", at=FRIDAY + timedelta(minutes=1))
    elsewhere = await report(
        console,
        code=UNKNOWN,
        kind="problem",
        at=FRIDAY + timedelta(minutes=2),
        agency=("000.00.07.H19", "UBND huyện Lạc Sơn"),
    )
    finished = await report(console, at=FRIDAY + timedelta(minutes=3))
    await report_store.transition(
        console.db.writer, finished.id, "rejected", "Trùng", "staff:1", FRIDAY
    )
    moving = await report(console, kind="problem", at=FRIDAY + timedelta(minutes=4))
    await report_store.transition(
        console.db.writer, moving.id, "in_progress", None, "staff:1", FRIDAY
    )
    hoa = await staff_id(console, "hoa")
    minh = await staff_id(console, "minh")
    await console.logged_in("hoa")
    token = await console.csrf("/console/reports")
    for target, who in ((closure.id, "me"), (problem.id, str(minh))):
        response = await console.client.post(
            f"/console/reports/{target}/assign",
            data={"csrf_token": token, "assignee_id": who, "back": "queue"},
            allow_redirects=False,
        )
        assert response.status == 303
    await travel(console, NEXT_TUESDAY)  # the false closure overdue, the problems due soon
    everything_open = [closure.id, problem.id, elsewhere.id, moving.id]
    assert sorted(ids(await queue(console))) == everything_open
    assert ids(await queue(console, "?status=rejected")) == [finished.id]
    assert sorted(ids(await queue(console, "?status=open&status=rejected"))) == [
        closure.id,
        problem.id,
        elsewhere.id,
        finished.id,
    ]
    assert ids(await queue(console, "?status=in_progress")) == [moving.id]
    assert ids(await queue(console, "?kind=false_closure")) == [closure.id]
    assert ids(await queue(console, "?agency=000.00.07.H19")) == [elsewhere.id]
    assert ids(await queue(console, "?sla=overdue")) == [closure.id]
    assert sorted(ids(await queue(console, "?sla=due_soon"))) == [
        problem.id,
        elsewhere.id,
        moving.id,
    ]
    assert ids(await queue(console, "?sla=due_today")) == []
    assert ids(await queue(console, "?assignee=me")) == [closure.id]
    assert ids(await queue(console, f"?assignee={minh}")) == [problem.id]
    assert ids(await queue(console, f"?assignee={hoa}&kind=problem")) == []
    assert sorted(ids(await queue(console, "?assignee=none"))) == [elsewhere.id, moving.id]
    # The form shows the filters chosen; filtered views are audited, the plain one not.
    html = await queue(console, "?kind=problem&sla=due_soon")
    assert '<option value="problem" selected>' in html
    assert '<option value="due_soon" selected>' in html
    filtered = [a for a in await console.audit() if a.action == "queue_filter"]
    assert filtered[-1].detail == {
        "status": ["open", "in_progress"],
        "kind": "problem",
        "agency": None,
        "sla": "due_soon",
        "assignee": None,
    }
    assert len(filtered) == 13


async def test_a_bad_filter_is_named_and_nothing_else_is_shown(console: Console) -> None:
    await report(console)
    await console.logged_in("lan")
    response = await console.client.get("/console/reports?status=closed&sla=late&assignee=x")
    assert response.status == 400
    html = await response.text()
    assert "Bộ lọc không hợp lệ:\nTrạng thái, Thời hạn, Người xử lý." in html
    assert 'data-testid="reports"' not in html
    assert not ids(html)
    # The other filters are fine: the kind is not named.
    response = await console.client.get("/console/reports?kind=nope")
    assert response.status == 400
    assert "Bộ lọc không hợp lệ:\nLoại." in await response.text()


# --- assignment ----------------------------------------------------------------------------


async def test_a_hotline_officer_takes_assigns_and_releases_a_report(console: Console) -> None:
    made = await report(console)
    hoa = await staff_id(console, "hoa")
    minh = await staff_id(console, "minh")
    await console.logged_in("hoa")
    html = await queue(console)
    assert 'data-testid="take"' in row(html, made.id)
    assert f"{ASSIGNEE}Chưa giao</td>" in row(html, made.id)
    token = await console.csrf("/console/reports")

    async def assign(who: str, **extra: str) -> str:
        response = await console.client.post(
            f"/console/reports/{made.id}/assign",
            data={"csrf_token": token, "assignee_id": who, **extra},
            allow_redirects=False,
        )
        assert response.status == 303, await response.text()
        return response.headers["Location"]

    where = await assign("me", back="queue", q="kind=false_closure&sla=&junk=1")
    assert where == "/console/reports?kind=false_closure"
    html = await queue(console)
    assert f"{ASSIGNEE}Cán bộ hoa</td>" in row(html, made.id)
    assert 'data-testid="take"' not in row(html, made.id)
    assert (await stored(console, made.id))["assigned_at"] == FRIDAY
    assert await assign(str(minh), back="report") == f"/console/reports/{made.id}"
    assert f"{ASSIGNEE}Cán bộ minh</td>" in row(await queue(console), made.id)
    assert await assign("", back="queue") == "/console/reports"
    after = await stored(console, made.id)
    assert (after["assignee_id"], after["assigned_at"]) == (None, None)
    entries = [a for a in await console.audit() if a.action == "report_assign"]
    assert [(a.username, a.target, a.detail) for a in entries] == [
        ("hoa", f"report:{made.id}", {"assignee_id": hoa}),
        ("hoa", f"report:{made.id}", {"assignee_id": minh}),
        ("hoa", f"report:{made.id}", {"assignee_id": None}),
    ]


async def test_auditors_and_disabled_users_are_never_given_a_report(console: Console) -> None:
    made = await report(console)
    await console.logged_in("minh")
    token = await console.csrf("/console/reports")
    html = await queue(console)
    assert "Cán bộ lan" not in html and "Cán bộ cu" not in html  # not offered either
    for username in ("lan", "cu"):
        response = await console.client.post(
            f"/console/reports/{made.id}/assign",
            data={"csrf_token": token, "assignee_id": str(await staff_id(console, username))},
            allow_redirects=False,
        )
        assert response.status == 400, username
    for bad in ("999999", "someone"):
        response = await console.client.post(
            f"/console/reports/{made.id}/assign",
            data={"csrf_token": token, "assignee_id": bad},
            allow_redirects=False,
        )
        assert response.status == 400, bad
    response = await console.client.post(
        "/console/reports/999999/assign",
        data={"csrf_token": token, "assignee_id": "me"},
        allow_redirects=False,
    )
    assert response.status == 404
    assert (await stored(console, made.id))["assignee_id"] is None
    assert not [a for a in await console.audit() if a.action == "report_assign"]


async def test_auditors_may_neither_assign_nor_write_reports(console: Console) -> None:
    made = await report(console)
    await console.logged_in("lan")
    html = await queue(console)
    assert made.id in ids(html)
    assert "Nhận xử lý" not in html and "/assign" not in html
    assert 'data-testid="new-report"' not in html
    token = await console.csrf("/console/reports")
    for path, data in (
        (f"/console/reports/{made.id}/assign", {"assignee_id": "me"}),
        ("/console/reports", {"kind": "problem", "dossier_code": CODE, "description": "x"}),
    ):
        response = await console.client.post(
            path, data={"csrf_token": token, **data}, allow_redirects=False
        )
        assert response.status == 403, path
    assert (await console.client.get("/console/reports/new")).status == 403
    assert (await stored(console, made.id))["assignee_id"] is None


# --- a report taken by phone ---------------------------------------------------------------


async def post_form(console: Console, **fields: str) -> tuple[int, str, str]:
    token = await console.csrf("/console/reports/new")
    values = {"kind": "false_closure", "description": "Người dân gọi: chưa nhận kết quả"}
    response = await console.client.post(
        "/console/reports",
        data={"csrf_token": token, **values, **fields},
        allow_redirects=False,
    )
    return response.status, response.headers.get("Location", ""), await response.text()


async def only_report(console: Console) -> dict[str, object]:
    async with console.db.reader.connect() as conn:
        return dict((await conn.execute(sa.select(reports))).mappings().one())


async def test_a_call_about_a_known_dossier_is_recorded_and_acknowledged(
    console: Console,
) -> None:
    await console.logged_in("hoa")
    hoa = await staff_id(console, "hoa")
    status, where, _ = await post_form(
        console,
        dossier_code=CODE.lower(),
        phone="0912 345 678",
        # Ignored: the dossier's own agency wins.
        agency_name="Cơ quan khác",
    )
    assert status == 303
    made = await only_report(console)
    assert where == f"/console/reports/{made['id']}"
    assert (made["source"], made["kind"], made["dossier_code"], made["phone_e164"]) == (
        "phone",
        "false_closure",
        CODE,
        PHONE,
    )
    assert (made["agency_code"], made["agency_name"], made["officer_id"]) == (
        "000.00.12.H19",
        "Sở Xây dựng",
        "cc-0123",
    )
    async with console.db.reader.connect() as conn:
        actors = (await conn.execute(sa.select(report_transitions.c.actor))).scalars().all()
        sent = (await conn.execute(sa.select(notices.c.kind, notices.c.phone_e164))).all()
    assert actors == [f"staff:{hoa}"]
    assert [tuple(n) for n in sent] == [("report_received", PHONE)]
    entries = [a for a in await console.audit() if a.action == "report_create"]
    assert [(a.target, a.detail) for a in entries] == [
        (
            f"report:{made['id']}",
            {"kind": "false_closure", "dossier_code": CODE, "source": "phone"},
        )
    ]
    assert PHONE not in str(entries[0].detail)


async def test_a_call_about_a_dossier_never_entered_names_its_agency(console: Console) -> None:
    await console.logged_in("minh")
    status, _, _ = await post_form(
        console,
        kind="problem",
        dossier_code=UNKNOWN,
        agency_name="UBND xã Tân Lập",
    )
    assert status == 303
    made = await only_report(console)
    assert (made["agency_code"], made["agency_name"], made["officer_id"]) == (
        None,
        "UBND xã Tân Lập",
        None,
    )
    assert made["phone_e164"] is None
    html = await queue(console)
    group = html[html.index(f'data-dossier="{UNKNOWN}"') :]
    assert 'data-testid="unknown-dossier">Hồ sơ chưa có trên hệ thống' in group[:400]
    # A known agency from the list: its name comes with it.
    status, _, _ = await post_form(console, dossier_code=UNKNOWN_TOO, agency_code="000.00.12.H19")
    assert status == 303
    async with console.db.reader.connect() as conn:
        found = await conn.execute(
            sa.select(reports.c.agency_code, reports.c.agency_name).where(
                reports.c.dossier_code == UNKNOWN_TOO
            )
        )
        assert tuple(found.one()) == ("000.00.12.H19", "Sở Xây dựng")
    # The known dossier is not marked.
    await report(console)
    html = await queue(console)
    known = html[html.index(f'data-dossier="{CODE}"') :]
    assert "unknown-dossier" not in known[: known.index("</tr>")]


async def test_a_dossier_never_seen_without_an_agency_is_sent_back(console: Console) -> None:
    await console.logged_in("hoa")
    status, _, html = await post_form(
        console, dossier_code=UNKNOWN, phone="0912345678", description="Chưa nhận"
    )
    assert status == 400
    assert 'data-testid="error-agency">Hồ sơ chưa có trên hệ thống' in html
    assert f'value="{UNKNOWN}"' in html and 'value="0912345678"' in html
    assert ">Chưa nhận</textarea>" in html
    async with console.db.reader.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(reports))).scalar() == 0


async def test_faulty_fields_are_named_next_to_them_with_the_typed_values(
    console: Console,
) -> None:
    await console.logged_in("hoa")
    status, _, html = await post_form(
        console,
        kind="other",
        dossier_code="H19-12345",
        phone="12345",
        description="   ",
        agency_code="no-such-agency",
    )
    assert status == 400
    for field in ("kind", "dossier_code", "phone", "description"):
        assert f'data-testid="error-{field}"' in html, field
    assert "Mã hồ sơ chưa đúng dạng" in html
    assert "Số điện thoại không dùng được" in html
    assert 'value="H19-12345"' in html and 'value="12345"' in html
    assert 'aria-invalid="true" aria-describedby="phone-error"' in html
    # An agency code nobody knows, on an otherwise good form.
    status, _, html = await post_form(console, dossier_code=UNKNOWN, agency_code="999.99.99.X99")
    assert status == 400
    assert 'data-testid="error-agency_code"' in html
    assert 'data-testid="error-dossier_code"' not in html
    assert not [a for a in await console.audit() if a.action == "report_create"]


async def test_the_form_offers_the_known_agencies(console: Console) -> None:
    await console.logged_in("hoa")
    response = await console.client.get("/console/reports/new")
    assert response.status == 200
    html = await response.text()
    assert '<option value="000.00.12.H19">Sở Xây dựng (000.00.12.H19)</option>' in html
    assert '<label for="dossier_code">Mã hồ sơ</label>' in html


# --- the staff API takes a dossier never seen too ------------------------------------------


async def test_the_api_takes_a_dossier_never_seen_when_given_its_agency(
    console: Console,
) -> None:
    token = await add_user(console.db.writer, "tich-hop", "Tích hợp", "hotline", FRIDAY)
    headers = {"Authorization": f"Bearer {token}"}
    body = {"dossier": UNKNOWN, "kind": "problem", "description": "Gọi", "phone": "0912345678"}
    response = await console.client.post("/v1/reports", json=body, headers=headers)
    assert response.status == 422
    assert "give agency_code or agency_name" in await response.text()
    response = await console.client.post(
        "/v1/reports",
        json=body | {"agency_code": "000.00.07.H19", "agency_name": "UBND huyện Lạc Sơn"},
        headers=headers,
    )
    assert response.status == 201, await response.text()
    answer = await response.json()
    assert (answer["agency_code"], answer["agency_responsible"], answer["source"]) == (
        "000.00.07.H19",
        "UBND huyện Lạc Sơn",
        "phone",
    )
