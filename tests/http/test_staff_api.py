"""The staff API (the README's staff API contract): real app, real HTTP, both databases.

Hotline officers take reports by phone, move reports through their workflow and answer
handoffs; auditors read reports with phone numbers masked; admins may also reopen.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from gateway.domain.calendar import DEFAULT_OVERRIDES_FILE, WorkingCalendar, load_overrides
from gateway.http.app import create_app
from gateway.http.keys import DATABASE
from gateway.local.redis_server import free_port
from gateway.settings import Settings
from gateway.storage import reports as report_store
from gateway.storage.db import Database
from gateway.storage.staff import add_user, disable_user
from gateway.storage.tables import chat_messages, handoffs, notices, report_transitions, reports
from tests.console_helpers import Clock
from tests.staff_helpers import (
    empty_staff_tables,
    queued_jobs,
    rows,
    seed_dossier,
    seed_handoff,
)

CODE = "000.00.12.H19-260401-0001"
OTHER = "000.00.05.H19-260402-0002"
PHONE = "+84912345678"
MASKED = "+849******78"
# Friday 24 April 2026, 16:00 in Vietnam (see tests/storage/test_reports.py for the
# working days after it).
FRIDAY = datetime(2026, 4, 24, 9, 0, tzinfo=UTC)
USERS = {"hoa": "hotline", "lan": "auditor", "minh": "admin", "cu": "hotline"}
REPORT = {
    "dossier": CODE,
    "kind": "false_closure",
    "description": "Hồ sơ báo đã trả nhưng tôi chưa nhận được giấy phép.",
    "phone": "0912 345 678",
}
PROBLEMS = {
    400: "malformed",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    415: "media-type",
    422: "validation",
    503: "unavailable",
}
DELIVER = "gateway.processes.jobs.deliver_batch"
CHAT_SEND = "gateway.processes.jobs.chat_send"


@dataclasses.dataclass
class StaffApi:
    client: TestClient[web.Request, web.Application]
    settings: Settings
    clock: Clock
    tokens: dict[str, str]

    @property
    def db(self) -> Database:
        app = self.client.app
        assert app is not None
        return app[DATABASE]

    async def call(
        self,
        method: str,
        path: str,
        *,
        user: str | None = "hoa",
        body: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[ClientResponse, Any]:
        sent = dict(headers or {})
        if user is not None:
            sent["Authorization"] = f"Bearer {self.tokens[user]}"
        if body is not None:
            kwargs["json"] = body
        response = await self.client.request(method, path, headers=sent, **kwargs)
        return response, await response.json(content_type=None)

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response, answer = await self.call(method, path, **kwargs)
        assert response.status == status, answer
        assert response.content_type == "application/json"
        return answer

    async def state(self) -> dict[str, Any]:
        """Everything a refused request must leave as it was."""
        return {
            table.name: await rows(self.db.reader, table)
            for table in (reports, report_transitions, notices, handoffs, chat_messages)
        } | {"queued": queued_jobs(self.settings)}


async def start(settings: Settings, aiohttp_client: Any) -> StaffApi:
    await empty_staff_tables(settings.database_url)
    clock = Clock(FRIDAY)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(
        create_app(settings, clock=clock)
    )
    db = client.app[DATABASE]
    tokens = {
        username: await add_user(db.writer, username, f"Cán bộ {username}", role, FRIDAY)
        for username, role in USERS.items()
    }
    await disable_user(db.writer, "cu", FRIDAY)
    await seed_dossier(db.writer, CODE)
    return StaffApi(client, settings, clock, tokens)


@pytest.fixture
async def api(settings: Settings, aiohttp_client: Any) -> StaffApi:
    return await start(settings, aiohttp_client)


def assert_problem(response: ClientResponse, body: Any, status: int, path: str) -> None:
    assert response.status == status, body
    assert response.content_type == "application/problem+json"
    assert body["type"] == f"urn:tthc:problem:{PROBLEMS[status]}"
    assert (body["status"], body["instance"]) == (status, path)
    assert isinstance(body["detail"], str) and body["detail"]


def fields(body: Any) -> dict[str, str]:
    return {e["field"]: e["message"] for e in body["errors"]}


async def make_report(api: StaffApi, **changes: Any) -> Any:
    return await api.ok("POST", "/v1/reports", status=201, body=REPORT | changes)


async def citizen_report(api: StaffApi, user_id: str = "u-1") -> report_store.ReportRow:
    """A report the bot took on the OA from a citizen who proved their phone."""
    report, _ = await report_store.create_report(
        api.db.writer,
        kind="false_closure",
        source="zalo",
        dossier_code=CODE,
        description="Tôi chưa nhận được giấy phép, gọi tôi số 0912 345 678",
        zalo_user_id=user_id,
        phone_e164=PHONE,
        calendar=WorkingCalendar(load_overrides(DEFAULT_OVERRIDES_FILE)),
        answer_working_days=5,
        now=FRIDAY,
    )
    return report


# --- who may call -------------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/v1/reports", None),
    ("POST", "/v1/reports", REPORT),
    ("GET", "/v1/reports/1", None),
    ("POST", "/v1/reports/1/transitions", {"to": "in_progress"}),
    ("GET", "/v1/handoffs", None),
    ("GET", "/v1/handoffs/1", None),
    ("POST", "/v1/handoffs/1/replies", {"text": "Chào ông"}),
    ("POST", "/v1/handoffs/1/close", None),
]


async def test_every_endpoint_refuses_a_missing_bad_or_disabled_token(api: StaffApi) -> None:
    await citizen_report(api)
    await seed_handoff(api.db.writer, "u-1")
    before = await api.state()
    wrong = [
        {},
        {"Authorization": ""},
        {"Authorization": f"Basic {api.tokens['hoa']}"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer tthc_not-a-token-we-issued"},
        {"Authorization": f"Bearer {api.tokens['hoa'][:-1]}"},
        {"Authorization": f"Bearer {api.tokens['hoa'].removeprefix('tthc_')}"},
        {"Authorization": f"Bearer {api.tokens['cu']}"},  # disabled
    ]
    for method, path, body in ENDPOINTS:
        for headers in wrong:
            response, answer = await api.call(method, path, user=None, headers=headers, body=body)
            assert response.status == 401, (method, path, headers, answer)
            assert_problem(response, answer, 401, path)
            assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert await api.state() == before
    # The same calls with a good token go through (a lower-case scheme is fine too).
    for method, path, body in ENDPOINTS:
        response, answer = await api.call(
            method,
            path,
            user=None,
            headers={"Authorization": f"bearer {api.tokens['minh']}"},
            body=body,
        )
        assert response.status < 300, (method, path, answer)


async def test_auditors_read_reports_but_change_nothing(api: StaffApi) -> None:
    await citizen_report(api)
    await seed_handoff(api.db.writer, "u-1")
    before = await api.state()
    assert (await api.ok("GET", "/v1/reports", user="lan"))["reports"][0]["id"] == 1
    assert (await api.ok("GET", "/v1/reports/1", user="lan"))["id"] == 1
    for method, path, body in ENDPOINTS:
        if method == "GET" and path.startswith("/v1/reports"):
            continue
        response, answer = await api.call(method, path, user="lan", body=body)
        assert_problem(response, answer, 403, path)
        assert "auditor role may not" in answer["detail"]
    assert await api.state() == before


async def test_only_an_admin_reopens_a_closed_report(api: StaffApi) -> None:
    await make_report(api)
    await api.ok("POST", "/v1/reports/1/transitions", body={"to": "rejected", "note": "Trùng"})
    before = await api.state()
    response, answer = await api.call("POST", "/v1/reports/1/transitions", body={"to": "open"})
    assert_problem(response, answer, 403, "/v1/reports/1/transitions")
    assert "only an admin may reopen" in answer["detail"]
    assert await api.state() == before

    api.clock.at = datetime(2026, 4, 29, 2, 0, tzinfo=UTC)  # Wednesday 09:00
    reopened = await api.ok(
        "POST", "/v1/reports/1/transitions", user="minh", body={"to": "open", "note": "Xem lại"}
    )
    assert (reopened["status"], reopened["status_notes"]) == ("open", "Xem lại")
    # A new promise: five working days after Wednesday 29 April (30/4, 1/5 are off).
    assert reopened["expected_datetime"] == "2026-05-08T17:00:00+07:00"
    [*_, notice] = sorted(await rows(api.db.reader, notices), key=lambda n: n["created_at"])
    assert notice["kind"] == "report_received"
    assert notice["params"]["expected_at"] == "2026-05-08T17:00:00+07:00"


# --- taking a report by phone -------------------------------------------------------------


async def test_a_report_taken_by_phone_is_stored_and_its_notice_queued(api: StaffApi) -> None:
    response, body = await api.call("POST", "/v1/reports", body=REPORT)
    assert response.status == 201, body
    assert response.headers["Location"] == "/v1/reports/1"
    hoa = await rows(api.db.reader, report_transitions)
    assert body == {
        "id": 1,
        "service_request_id": "PA-2026-000001",
        "status": "open",
        "status_notes": None,
        "agency_responsible": "Sở Xây dựng",
        "agency_code": "000.00.12.H19",
        "requested_datetime": "2026-04-24T16:00:00+07:00",
        "updated_datetime": "2026-04-24T16:00:00+07:00",
        "expected_datetime": "2026-05-06T17:00:00+07:00",
        "kind": "false_closure",
        "finding": None,
        "source": "phone",
        "proof": "staff",
        "dossier_code": CODE,
        "description": REPORT["description"],
        "officer": {"id": "cc-0123", "name": "Trần Thị Bình"},
        "phone": PHONE,
        "zalo_user_id": None,
    }
    [step] = hoa
    assert step["actor"] == "staff:1"  # hoa, the first user added
    [notice] = await rows(api.db.reader, notices)
    assert (notice["kind"], notice["state"], notice["phone_e164"]) == (
        "report_received",
        "created",
        PHONE,
    )
    assert queued_jobs(api.settings) == {
        "urgent": [(DELIVER, ([notice["id"]],))],
        "bulk": [],
        "chat": [],
    }
    assert await api.ok("GET", "/v1/reports/1") == body | {
        "transitions": [
            {
                "from": None,
                "to": "open",
                "note": None,
                "actor": "staff:1",
                "at": "2026-04-24T16:00:00+07:00",
            }
        ],
        "dossier": (await api.ok("GET", "/v1/reports/1"))["dossier"],
        "messages": [],
        "notices": [
            {
                "id": notice["id"],
                "kind": "report_received",
                "channel": None,
                "route": None,
                "state": "created",
                "attempts": 0,
                "last_error": None,
                "created_at": "2026-04-24T16:00:00+07:00",
                "sent_at": None,
                "delivered_at": None,
            }
        ],
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dossier": "000.00.12.H19-260401"}, "dossier"),
        ({"dossier": "000.00.99.H19-260401-0009"}, "dossier"),  # well formed, unknown
        ({"kind": "complaint"}, "kind"),
        ({"description": " "}, "description"),
        ({"phone": "028 3822 1234"}, "phone"),
        ({"phone": None}, "phone"),
    ],
)
async def test_a_bad_phone_report_names_its_field_and_stores_nothing(
    api: StaffApi, change: dict[str, Any], field: str
) -> None:
    before = await api.state()
    response, body = await api.call("POST", "/v1/reports", body=REPORT | change)
    assert_problem(response, body, 422, "/v1/reports")
    assert list(fields(body)) == [field]
    assert await api.state() == before


async def test_a_body_that_is_not_a_json_object_is_refused(api: StaffApi) -> None:
    before = await api.state()
    cases: list[tuple[dict[str, Any], int]] = [
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400),
        ({"data": b"", "headers": {"Content-Type": "application/json"}}, 400),
        ({"data": b"dossier=x", "headers": {"Content-Type": "text/plain"}}, 415),
        ({"json": [REPORT]}, 422),
    ]
    for kwargs, status in cases:
        response, body = await api.call("POST", "/v1/reports", **kwargs)
        assert_problem(response, body, status, "/v1/reports")
    assert fields(body) == {"": "the body must be a JSON object"}
    assert await api.state() == before


# --- listing ------------------------------------------------------------------------------


async def test_reports_are_listed_filtered_and_paged(api: StaffApi) -> None:
    await seed_dossier(api.db.writer, OTHER, agency=("000.00.05.H19", "Sở Tài nguyên"))
    for day in range(5):
        api.clock.at = FRIDAY + timedelta(days=day)
        await make_report(api, dossier=OTHER if day % 2 else CODE)
    await api.ok("POST", "/v1/reports/2/transitions", body={"to": "in_progress"})
    await api.ok("POST", "/v1/reports/3/transitions", body={"to": "resolved", "note": "Đã trả"})

    everything = await api.ok("GET", "/v1/reports")
    assert [r["id"] for r in everything["reports"]] == [1, 2, 3, 4, 5]
    assert everything["next"] is None

    seen: list[int] = []
    path: str | None = "/v1/reports?limit=2"
    pages = 0
    while path is not None:
        page = await api.ok("GET", path, user="lan")
        assert len(page["reports"]) <= 2
        seen += [r["id"] for r in page["reports"]]
        path, pages = page["next"], pages + 1
    assert (seen, pages) == ([1, 2, 3, 4, 5], 3)

    async def ids(**query: str) -> list[int]:
        return [r["id"] for r in (await api.ok("GET", "/v1/reports", params=query))["reports"]]

    assert await ids(status="open") == [1, 4, 5]
    assert await ids(status="open,in_progress") == [1, 2, 4, 5]
    repeated = await api.ok("GET", "/v1/reports?status=open&status=in_progress")
    assert [r["id"] for r in repeated["reports"]] == [1, 2, 4, 5]
    assert await ids(agency="000.00.05.H19") == [2, 4]
    # Local dates: from midnight in Vietnam. Report 4 was made on Monday 27, 16:00.
    assert await ids(since="2026-04-27") == [4, 5]
    assert await ids(since="2026-04-27T16:00:00+07:00") == [4, 5]
    assert await ids(since="2026-04-27T16:00:01+07:00") == [5]
    assert await ids(status="open", agency="000.00.12.H19", since="2026-04-25") == [5]
    # An offset whose "+" was not percent-encoded arrives as a space, and still works.
    unencoded = await api.ok("GET", "/v1/reports?since=2026-04-27T16:00:00+07:00")
    assert [r["id"] for r in unencoded["reports"]] == [4, 5]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=closed", "status"),
        ("limit=0", "limit"),
        ("limit=1000", "limit"),
        ("after=x", "after"),
        ("after=99999999999999999999", "after"),  # past the ids a database holds
        ("since=0001-01-01", "since"),  # before any UTC moment a datetime holds
        ("since=yesterday", "since"),
        ("agency=" + "x" * 40, "agency"),
    ],
)
async def test_a_bad_report_query_names_its_parameter(
    api: StaffApi, query: str, field: str
) -> None:
    response, body = await api.call("GET", f"/v1/reports?{query}")
    assert_problem(response, body, 422, "/v1/reports")
    assert list(fields(body)) == [field]


# --- transitions --------------------------------------------------------------------------


async def test_transitions_move_the_report_and_queue_one_notice_each(api: StaffApi) -> None:
    created = await make_report(api)
    [received] = await rows(api.db.reader, notices)
    api.clock.at = FRIDAY + timedelta(days=4)
    moved = await api.ok(
        "POST", "/v1/reports/1/transitions", body={"to": "in_progress", "note": "Đã gọi Sở"}
    )
    assert moved == created | {
        "status": "in_progress",
        "status_notes": "Đã gọi Sở",
        "updated_datetime": "2026-04-28T16:00:00+07:00",
    }
    api.clock.at = FRIDAY + timedelta(days=5)
    resolved = await api.ok(
        "POST",
        "/v1/reports/1/transitions",
        user="minh",
        body={"to": "resolved", "note": "Công dân đã nhận kết quả"},
    )
    assert resolved["status"] == "resolved"

    sent = sorted(await rows(api.db.reader, notices), key=lambda n: n["created_at"])
    assert [n["kind"] for n in sent] == ["report_received", "report_in_progress", "report_resolved"]
    assert sent[2]["params"]["status_note"] == "Công dân đã nhận kết quả"
    assert queued_jobs(api.settings)["urgent"] == [(DELIVER, ([n["id"]],)) for n in sent]
    assert sent[0]["id"] == received["id"]

    detail = await api.ok("GET", "/v1/reports/1", user="lan")
    assert [(t["from"], t["to"], t["actor"], t["at"]) for t in detail["transitions"]] == [
        (None, "open", "staff:1", "2026-04-24T16:00:00+07:00"),
        ("open", "in_progress", "staff:1", "2026-04-28T16:00:00+07:00"),
        ("in_progress", "resolved", "staff:3", "2026-04-29T16:00:00+07:00"),
    ]
    assert [n["kind"] for n in detail["notices"]] == [n["kind"] for n in sent]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/v1/reports/1/transitions", {"to": "resolved"}, 422, "note"),
        ("/v1/reports/1/transitions", {"to": "rejected", "note": "  "}, 422, "note"),
        ("/v1/reports/1/transitions", {"to": "closed"}, 422, "to"),
        ("/v1/reports/1/transitions", {"to": "in_progress", "note": 3}, 422, "note"),
        ("/v1/reports/1/transitions", {"to": "open"}, 409, None),
        ("/v1/reports/2/transitions", {"to": "in_progress"}, 404, None),
        ("/v1/reports/99999999999999999/transitions", {"to": "in_progress"}, 404, None),
    ],
)
async def test_a_bad_transition_is_refused_and_changes_nothing(
    api: StaffApi, path: str, body: dict[str, Any], status: int, field: str | None
) -> None:
    await make_report(api)
    before = await api.state()
    response, answer = await api.call("POST", path, body=body)
    assert_problem(response, answer, status, path)
    if field is not None:
        assert list(fields(answer)) == [field]
    assert await api.state() == before


async def test_unknown_reports_and_handoffs_are_not_found(api: StaffApi) -> None:
    for path in ("/v1/reports/7", "/v1/handoffs/7"):
        response, body = await api.call("GET", path)
        assert_problem(response, body, 404, path)
    for path in ("/v1/reports/x", "/v1/handoffs/-1", "/v1/reports/1234567890123456789"):
        response, body = await api.call("GET", path)
        assert (response.status, response.content_type) == (404, "application/problem+json")
    response, body = await api.call("POST", "/v1/handoffs/7/close")
    assert_problem(response, body, 404, "/v1/handoffs/7/close")


# --- what auditors see --------------------------------------------------------------------


async def test_auditors_see_masked_phones_and_no_oa_user_ids(api: StaffApi) -> None:
    report = await citizen_report(api)
    async with api.db.writer.begin() as conn:
        await conn.execute(
            chat_messages.insert().values(
                user_id="u-1",
                direction="in",
                text="Số của tôi là 0912.345.678",
                report_id=report.id,
                created_at=FRIDAY,
            )
        )
    await api.ok(
        "POST",
        "/v1/reports/1/transitions",
        body={"to": "in_progress", "note": "Đã gọi công dân qua 0912 345 678"},
    )

    hotline = await api.ok("GET", "/v1/reports/1")
    auditor = await api.ok("GET", "/v1/reports/1", user="lan")
    listed = (await api.ok("GET", "/v1/reports", user="lan"))["reports"][0]

    assert (hotline["phone"], hotline["zalo_user_id"]) == (PHONE, "u-1")
    assert hotline["dossier"]["applicant"]["phone"] == PHONE
    assert "0912 345 678" in hotline["description"]
    assert hotline["messages"][0]["text"] == "Số của tôi là 0912.345.678"

    for view in (auditor, listed):
        assert (view["phone"], view["zalo_user_id"]) == (MASKED, None)
        assert view["description"] == "Tôi chưa nhận được giấy phép, gọi tôi số 091* *** *78"
        assert view["status_notes"] == "Đã gọi công dân qua 091* *** *78"
    assert auditor["dossier"]["applicant"]["phone"] == MASKED
    assert auditor["messages"][0]["text"] == "Số của tôi là 091*.***.*78"
    assert auditor["transitions"][1]["note"] == "Đã gọi công dân qua 091* *** *78"
    # Nothing left of the phone's middle digits anywhere; notice ids are random hex and
    # may hold "345" by chance, so they are taken out first.
    shown = re.sub(r"\b[0-9a-f]{32}\b", "<id>", str(auditor))
    assert "u-1" not in shown and "345" not in shown


# --- handoffs -----------------------------------------------------------------------------


async def test_handoffs_are_listed_with_their_last_message(api: StaffApi) -> None:
    first = await seed_handoff(api.db.writer, "u-1", messages=("Tôi muốn gặp cán bộ", "Gấp ạ"))
    later = await seed_handoff(
        api.db.writer, "u-2", phone=None, at=datetime(2026, 4, 29, 3, 0, tzinfo=UTC)
    )
    closed = await seed_handoff(api.db.writer, "u-3", status="closed")

    listed = (await api.ok("GET", "/v1/handoffs"))["handoffs"]
    assert [h["id"] for h in listed] == [later, first]  # latest activity first
    assert listed[1] | {"last_message": None} == {
        "id": first,
        "status": "open",
        "user_id": "u-1",
        "display_name": "Nguyễn Văn An",
        "phone": PHONE,
        "dossier_code": None,
        "opened_at": "2026-04-29T09:00:00+07:00",
        "closed_at": None,
        "last_message_at": "2026-04-29T09:00:00+07:00",
        "last_message": None,
    }
    assert listed[1]["last_message"]["text"] == "Gấp ạ"
    assert listed[0]["phone"] is None  # the citizen never proved a phone
    assert [h["id"] for h in (await api.ok("GET", "/v1/handoffs?limit=1"))["handoffs"]] == [later]
    closed_list = (await api.ok("GET", "/v1/handoffs?status=closed"))["handoffs"]
    assert [h["id"] for h in closed_list] == [closed]

    response, body = await api.call("GET", "/v1/handoffs?status=waiting&limit=x")
    assert_problem(response, body, 422, "/v1/handoffs")
    assert list(fields(body)) == ["status", "limit"]

    one = await api.ok("GET", f"/v1/handoffs/{first}")
    assert [(m["direction"], m["text"]) for m in one["messages"]] == [
        ("in", "Tôi muốn gặp cán bộ"),
        ("in", "Gấp ạ"),
    ]


async def test_a_reply_is_stored_and_queued_for_sending_on_the_oa(api: StaffApi) -> None:
    handoff_id = await seed_handoff(api.db.writer, "u-1")
    api.clock.at = datetime(2026, 4, 29, 2, 30, tzinfo=UTC)
    response, body = await api.call(
        "POST", f"/v1/handoffs/{handoff_id}/replies", body={"text": "  Chào anh, em là Hoa. "}
    )
    assert response.status == 202, body
    assert body["state"] == "queued"

    [reply] = await rows(api.db.reader, chat_messages, chat_messages.c.direction == "staff")
    assert reply["id"] == body["id"]
    assert (reply["user_id"], reply["handoff_id"], reply["staff_id"]) == ("u-1", handoff_id, 1)
    assert (reply["text"], reply["handled_at"]) == ("Chào anh, em là Hoa.", None)
    assert queued_jobs(api.settings) == {
        "urgent": [],
        "bulk": [],
        "chat": [(CHAT_SEND, ([body["id"]],))],
    }
    one = await api.ok("GET", f"/v1/handoffs/{handoff_id}")
    assert one["last_message_at"] == "2026-04-29T09:30:00+07:00"
    assert one["messages"][-1] | {"id": 0} == {
        "id": 0,
        "direction": "staff",
        "text": "Chào anh, em là Hoa.",
        "event_name": None,
        "dossier_code": None,
        "staff_id": 1,
        "sent": False,
        "created_at": "2026-04-29T09:30:00+07:00",
    }

    for bad in ({"text": ""}, {"text": "x" * 2001}, {"message": "Chào"}):
        before = await api.state()
        response, answer = await api.call("POST", f"/v1/handoffs/{handoff_id}/replies", body=bad)
        assert_problem(response, answer, 422, f"/v1/handoffs/{handoff_id}/replies")
        assert list(fields(answer)) == ["text"]
        assert await api.state() == before


async def test_a_closed_handoff_takes_no_more_replies(api: StaffApi) -> None:
    handoff_id = await seed_handoff(api.db.writer, "u-1")
    api.clock.at = datetime(2026, 4, 29, 4, 0, tzinfo=UTC)
    closed = await api.ok("POST", f"/v1/handoffs/{handoff_id}/close")
    assert (closed["status"], closed["closed_at"]) == ("closed", "2026-04-29T11:00:00+07:00")
    api.clock.at = datetime(2026, 4, 29, 5, 0, tzinfo=UTC)
    again = await api.ok("POST", f"/v1/handoffs/{handoff_id}/close")
    assert again == closed  # closing twice keeps the first time

    before = await api.state()
    path = f"/v1/handoffs/{handoff_id}/replies"
    response, body = await api.call("POST", path, body={"text": "Chào anh"})
    assert_problem(response, body, 409, path)
    assert await api.state() == before
    assert (await api.ok("GET", "/v1/handoffs"))["handoffs"] == []


# --- Redis down ---------------------------------------------------------------------------


async def test_when_redis_is_down_replies_are_withdrawn_and_notices_wait(
    settings: Settings, aiohttp_client: Any
) -> None:
    dead = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    api = await start(dead, aiohttp_client)
    handoff_id = await seed_handoff(api.db.writer, "u-1")

    path = f"/v1/handoffs/{handoff_id}/replies"
    response, body = await api.call("POST", path, body={"text": "Chào anh"})
    assert_problem(response, body, 503, path)
    assert "send the reply again" in body["detail"]
    assert response.headers["Retry-After"]
    # Nothing would ever send it, so it is not left behind.
    assert await rows(api.db.reader, chat_messages, chat_messages.c.direction == "staff") == []

    # A notice is different: it waits in the database for the relay.
    await make_report(api)
    [notice] = await rows(api.db.reader, notices)
    assert (notice["kind"], notice["state"]) == ("report_received", "created")


# --- the hotline's finding on a false-closure report -----------------------------------------


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("problem", {"to": "resolved", "note": "Đã xử lý", "finding": "confirmed"}),
        ("problem", {"to": "in_progress", "finding": "not_confirmed"}),
        ("false_closure", {"to": "resolved", "note": "Đã xử lý", "finding": "maybe"}),
        ("false_closure", {"to": "resolved", "note": "Đã xử lý", "finding": True}),
    ],
)
async def test_a_finding_only_concludes_a_false_closure_report(
    api: StaffApi, kind: str, body: dict[str, Any]
) -> None:
    await make_report(api, kind=kind)
    before = await api.state()
    path = "/v1/reports/1/transitions"
    response, answer = await api.call("POST", path, body=body)
    assert_problem(response, answer, 422, path)
    assert set(fields(answer)) == {"finding"}
    assert await api.state() == before


async def test_a_finding_is_stored_shown_and_not_changed_by_the_hotline(api: StaffApi) -> None:
    await make_report(api)
    moved = await api.ok(
        "POST",
        "/v1/reports/1/transitions",
        body={"to": "resolved", "note": "Sở đã trả kết quả", "finding": "not_confirmed"},
    )
    assert moved["finding"] == "not_confirmed"
    assert (await api.ok("GET", "/v1/reports/1", user="lan"))["finding"] == "not_confirmed"
    [stored] = await rows(api.db.reader, reports)
    assert stored["finding"] == "not_confirmed"
    before = await api.state()
    # An admin reopens it; the hotline may move it again but not change its finding.
    await api.ok("POST", "/v1/reports/1/transitions", user="minh", body={"to": "open"})
    path = "/v1/reports/1/transitions"
    response, answer = await api.call(
        "POST", path, body={"to": "in_progress", "finding": "confirmed"}
    )
    assert_problem(response, answer, 403, path)
    again = await api.ok("POST", path, body={"to": "in_progress"})
    assert again["finding"] == "not_confirmed"
    assert (
        len(await rows(api.db.reader, report_transitions)) == len(before["report_transitions"]) + 2
    )


async def test_a_confirmed_finding_needs_a_closing_event_to_hold_anyone_to(
    api: StaffApi,
) -> None:
    # The dossier start() seeds has no events: nobody posted dossier.finished.
    await make_report(api)
    before = await api.state()
    path = "/v1/reports/1/transitions"
    response, answer = await api.call(
        "POST", path, body={"to": "resolved", "note": "Đúng là chưa trả", "finding": "confirmed"}
    )
    assert_problem(response, answer, 409, path)
    assert "dossier.finished" in answer["detail"]
    assert await api.state() == before
