"""``GET /v1/dossiers/{code}`` and ``POST /v1/checks/pause`` (the README's events API contract)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from gateway.http.app import create_app
from gateway.http.signing import signature, signed_headers, signed_headers_v2
from gateway.settings import Settings
from tests.helpers import ACTOR, CODE, SOURCES, Gateway, event

PAUSE = "/v1/checks/pause"
# 2024-04-03T09:00:00+07:00: before the consultation deadline of the helpers' data.
NOW = 1_712_109_600
OFFICER = {"id": ACTOR["id"], "name": ACTOR["name"]}
CONSULTED = {"code": "000.00.05.H19", "name": "Sở Tài nguyên và Môi trường"}


@pytest.fixture
async def clocked(settings: Settings, aiohttp_client: Any) -> Gateway:
    """A gateway whose clock stands still at ``NOW``."""
    client = await aiohttp_client(create_app(settings, clock=lambda: NOW))
    return Gateway(client, settings)


async def post_ok(gateway: Gateway, body: dict[str, Any]) -> dict[str, Any]:
    status, answer, _ = await gateway.post(body)
    assert status == 202, answer
    return answer  # type: ignore[no-any-return]


async def post_all(gateway: Gateway, *bodies: dict[str, Any]) -> None:
    for body in bodies:
        await post_ok(gateway, body)


def assert_problem(response: Any, body: Any, status: int, slug: str, instance: str) -> None:
    assert response.status == status, body
    assert response.content_type == "application/problem+json"
    assert body["type"] == f"urn:tthc:problem:{slug}"
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert body["instance"] == instance


# --- GET /v1/dossiers/{code} ---------------------------------------------------------


async def test_the_dossier_view_tells_the_whole_story(gateway: Gateway) -> None:
    received = event(
        "dossier.received",
        id="rec",
        at="2024-04-01T01:05:00+00:00",
        received_at="2024-04-01T01:05:00+00:00",
        due_at="2024-04-12T10:00:00+00:00",
    )
    consulted_officer = {"id": "tn-1", "name": "Đỗ Văn G"}
    await post_all(
        gateway,
        received,
        event("dossier.processing", id="proc"),
        event("dossier.consultation_requested", id="req", at="2024-04-02T10:00:00+07:00"),
        event("dossier.consultation_answered", id="ans", at="2024-04-06T11:00:00+07:00")
        | {"actor": consulted_officer},
        event("dossier.delayed", id="delay", at="2024-04-08T09:00:00+07:00"),
    )
    path = f"/v1/dossiers/{CODE}"
    response = await gateway.client.get(
        path,
        headers=signed_headers_v2("onestop", SOURCES["onestop"], "GET", path, b"", time.time()),
    )
    assert response.status == 200
    assert response.content_type == "application/json"
    view = await response.json()

    assert view["code"] == CODE
    assert (view["state"], view["dvcqg_status"]) == ("processing", 4)
    assert view["state_at"] == "2024-04-08T09:00:00+07:00"
    assert view["procedure"] == {"code": "1.004227", "name": "Cấp giấy phép xây dựng"}
    assert view["agency"] == {"code": "000.00.12.H19", "name": "Sở Xây dựng"}
    assert view["applicant"] == {
        "name": "Nguyễn Văn An",
        "phone": "+84912345678",
        "phone_problem": None,
    }
    # Times in the gateway's zone, whatever offset the one-stop-shop used.
    assert view["received_at"] == "2024-04-01T08:05:00+07:00"
    assert view["due_at"] == "2024-04-17T17:00:00+07:00"
    assert view["original_due_at"] == "2024-04-12T17:00:00+07:00"
    assert view["finished_at"] is None and view["finished_by"] is None
    assert (view["reschedule_count"], view["supplement_count"]) == (1, 0)

    timeline = view["timeline"]
    assert [(e["id"], e["type"], e["occurred_at"]) for e in timeline] == [
        ("rec", "dossier.received", "2024-04-01T08:05:00+07:00"),
        ("proc", "dossier.processing", "2024-04-02T09:00:00+07:00"),
        ("req", "dossier.consultation_requested", "2024-04-02T10:00:00+07:00"),
        ("ans", "dossier.consultation_answered", "2024-04-06T11:00:00+07:00"),
        ("delay", "dossier.delayed", "2024-04-08T09:00:00+07:00"),
    ]
    assert all(e["source"] == "onestop" and e["superseded"] is False for e in timeline)
    assert all(e["recorded_at"].endswith("+07:00") for e in timeline)
    assert [e["actor"] for e in timeline] == [OFFICER] * 3 + [consulted_officer, OFFICER]
    assert timeline[1]["data"] == {"unit": "Phòng Quản lý xây dựng"}
    assert timeline[0]["data"] == {}

    assert view["flags"] == [
        {
            "rule": "late_consultation_answer",
            "detail": "consultation yk-1 answered 18.0 h after its deadline",
            "source": "onestop",
            "event_id": "ans",
            "occurred_at": "2024-04-06T11:00:00+07:00",
            "officer": consulted_officer,
            "agency": "000.00.05.H19",
        }
    ]
    assert [(n["kind"], n["event_id"], n["state"]) for n in view["notices"]] == [
        ("receipt", "rec", "created"),
        ("apology", "delay", "created"),
    ]
    for notice in view["notices"]:
        assert (notice["channel"], notice["provider"], notice["attempts"]) == (None, None, 0)
        assert notice["last_error"] is None
        assert notice["created_at"].endswith("+07:00")
    assert view["consultations"] == [
        {
            "consultation_id": "yk-1",
            "agency": CONSULTED,
            "requested_at": "2024-04-02T10:00:00+07:00",
            "due_at": "2024-04-05T17:00:00+07:00",
            "answered_at": "2024-04-06T11:00:00+07:00",
        }
    ]


async def test_the_promised_date_survives_later_snapshots(gateway: Gateway) -> None:
    await post_all(
        gateway,
        event("dossier.received", id="rec"),
        event("dossier.delayed", id="delay", at="2024-04-08T09:00:00+07:00"),
        # Sent with the first appointment (12/4) again, as some one-stop-shops do.
        event("dossier.finished", id="fin", at="2024-04-15T09:00:00+07:00"),
    )
    path = f"/v1/dossiers/{CODE}"
    response = await gateway.client.get(
        path,
        headers=signed_headers_v2("onestop", SOURCES["onestop"], "GET", path, b"", time.time()),
    )
    view = await response.json()
    assert view["due_at"] == "2024-04-17T17:00:00+07:00"
    assert view["original_due_at"] == "2024-04-12T17:00:00+07:00"
    invitation = [n for n in view["notices"] if n["kind"] == "invitation"]
    assert invitation, view["notices"]


async def test_the_view_names_who_finished_the_dossier(gateway: Gateway) -> None:
    await post_all(
        gateway,
        event("dossier.received"),
        event("dossier.finished", at="2024-04-10T09:15:00+07:00"),
    )
    view = await gateway.dossier()
    assert view["finished_at"] == "2024-04-10T09:15:00+07:00"
    assert view["finished_by"] == OFFICER
    assert (view["state"], view["dvcqg_status"]) == ("finished", 9)


async def test_every_configured_source_may_read(gateway: Gateway) -> None:
    await post_ok(gateway, event("dossier.received"))
    status, view = await gateway.get(f"/v1/dossiers/{CODE}", source="dvc")
    assert status == 200
    assert view["code"] == CODE


async def test_an_unknown_dossier_is_404(gateway: Gateway) -> None:
    await post_ok(gateway, event("dossier.received"))
    path = "/v1/dossiers/000.00.12.H19-240401-0002"
    response = await gateway.client.get(
        path,
        headers=signed_headers_v2("onestop", SOURCES["onestop"], "GET", path, b"", time.time()),
    )
    problem = await response.json()
    assert_problem(response, problem, 404, "not-found", path)
    assert "000.00.12.H19-240401-0002" in problem["detail"]


@pytest.mark.parametrize(
    "code",
    [
        "abc",
        CODE.lower(),
        "000.00.12.H19-240431-0001",  # 31 April
        "000.00.12.H19-240401-01",
        "000.00.12-240401-0001",
    ],
)
async def test_a_malformed_code_is_422(gateway: Gateway, code: str) -> None:
    path = f"/v1/dossiers/{code}"
    response = await gateway.client.get(
        path,
        headers=signed_headers_v2("onestop", SOURCES["onestop"], "GET", path, b"", time.time()),
    )
    problem = await response.json()
    assert_problem(response, problem, 422, "validation", path)
    assert [e["field"] for e in problem["errors"]] == ["code"]
    assert problem["errors"][0]["message"].startswith("is not a dossier code")


@pytest.mark.parametrize("how", ["unsigned", "wrong secret", "body signed", "stale", "unknown"])
async def test_reading_needs_a_signature_over_the_empty_body(gateway: Gateway, how: str) -> None:
    await post_ok(gateway, event("dossier.received"))
    now = time.time()
    headers = signed_headers("onestop", SOURCES["onestop"], b"", now)
    if how == "unsigned":
        headers = {}
    elif how == "wrong secret":
        headers["X-Signature"] = signature("guess", headers["X-Timestamp"], b"")
    elif how == "body signed":
        headers["X-Signature"] = signature(SOURCES["onestop"], headers["X-Timestamp"], b"{}")
    elif how == "stale":
        headers = signed_headers("onestop", SOURCES["onestop"], b"", now - 600)
    else:
        headers = signed_headers("intruder", "whatever-secret", b"", now)
    path = f"/v1/dossiers/{CODE}"
    response = await gateway.client.get(path, headers=headers)
    problem = await response.json()
    assert_problem(response, problem, 401, "unauthenticated", path)
    # Authentication comes before anything else: a bad code is still 401.
    response = await gateway.client.get("/v1/dossiers/abc", headers=headers)
    assert response.status == 401


# --- POST /v1/checks/pause -------------------------------------------------------------


async def check(gateway: Gateway, body: Any = None, now: float | None = None) -> tuple[int, Any]:
    raw = json.dumps({"dossier": CODE} if body is None else body).encode()
    response = await gateway.post_raw(PAUSE, raw, headers=gateway.headers(raw, now=now))
    if response.status != 200:
        assert response.content_type == "application/problem+json"
    else:
        assert response.content_type == "application/json"
    return response.status, await response.json()


async def test_a_processing_dossier_may_be_paused(gateway: Gateway) -> None:
    await post_all(gateway, event("dossier.received"), event("dossier.processing"))
    status, answer = await check(gateway)
    assert status == 200
    assert answer == {
        "dossier": CODE,
        "allowed": True,
        "reason": None,
        "pending": [],
        "message": f"Hồ sơ {CODE} có thể tạm dừng xử lý.",
    }


async def test_no_pause_while_a_consultation_is_pending(clocked: Gateway) -> None:
    # The helpers' signatures use the real clock; this gateway lives on 3 April 2024.
    def at_now(raw: bytes) -> dict[str, str]:
        return clocked.headers(raw, now=NOW)

    for body in (event("dossier.received"), event("dossier.consultation_requested")):
        raw = json.dumps(body).encode()
        response = await clocked.post_raw("/v1/events", raw, headers=at_now(raw))
        assert response.status == 202
    status, answer = await check(clocked, now=NOW)
    assert status == 200
    assert (answer["allowed"], answer["reason"]) == (False, "consultation_pending")
    assert answer["pending"] == [
        {
            "consultation_id": "yk-1",
            "agency": CONSULTED,
            "requested_at": "2024-04-02T09:00:00+07:00",
            "due_at": "2024-04-05T17:00:00+07:00",
            "answered_at": None,
            "overdue": False,
        }
    ]
    assert "Không được tạm dừng" in answer["message"]
    assert "Sở Tài nguyên và Môi trường" in answer["message"]
    assert "05/04/2024" in answer["message"]
    assert "quá hạn" not in answer["message"]

    answered = event("dossier.consultation_answered", at="2024-04-03T08:00:00+07:00")
    raw = json.dumps(answered).encode()
    response = await clocked.post_raw("/v1/events", raw, headers=at_now(raw))
    assert response.status == 202
    status, answer = await check(clocked, now=NOW)
    assert (answer["allowed"], answer["reason"], answer["pending"]) == (True, None, [])


async def test_an_overdue_consultation_is_marked(gateway: Gateway) -> None:
    await post_all(gateway, event("dossier.received"), event("dossier.consultation_requested"))
    status, answer = await check(gateway)
    assert status == 200
    assert answer["allowed"] is False
    (pending,) = answer["pending"]
    assert pending["overdue"] is True  # 5 April 2024 is long past
    assert "đã quá hạn" in answer["message"]


async def test_the_pause_is_allowed_again_after_the_answer(gateway: Gateway) -> None:
    await post_all(gateway, event("dossier.received"), event("dossier.consultation_requested"))
    assert (await check(gateway))[1]["reason"] == "consultation_pending"
    answered = event("dossier.consultation_answered", at="2024-04-04T09:00:00+07:00")
    await post_ok(gateway, answered)
    status, answer = await check(gateway)
    assert (status, answer["allowed"], answer["reason"], answer["pending"]) == (200, True, None, [])


async def test_only_the_open_consultations_are_listed(gateway: Gateway) -> None:
    second = {
        "consultation_id": "yk-2",
        "agency": {"code": "000.00.07.H19", "name": "Sở Tài chính"},
        "due_at": "2024-04-09T17:00:00+07:00",
    }
    await post_all(
        gateway,
        event("dossier.received"),
        event("dossier.consultation_requested"),
        event(
            "dossier.consultation_requested",
            id="req-2",
            at="2024-04-02T10:00:00+07:00",
            data=second,
        ),
        event("dossier.consultation_answered", at="2024-04-03T09:00:00+07:00"),
    )
    status, answer = await check(gateway)
    assert (status, answer["reason"]) == (200, "consultation_pending")
    assert [p["consultation_id"] for p in answer["pending"]] == ["yk-2"]
    assert "Sở Tài chính" in answer["message"]
    assert "Sở Tài nguyên" not in answer["message"]


@pytest.mark.parametrize(
    ("type_", "reason", "words"),
    [
        ("dossier.paused", "already_paused", "đang ở trạng thái tạm dừng"),
        ("dossier.finished", "dossier_closed", "đã kết thúc"),
        ("dossier.refused", "dossier_closed", "đã kết thúc"),
        ("dossier.withdrawn", "dossier_closed", "đã kết thúc"),
        ("dossier.delivered", "dossier_closed", "đã kết thúc"),
    ],
)
async def test_a_paused_or_closed_dossier_cannot_be_paused(
    gateway: Gateway, type_: str, reason: str, words: str
) -> None:
    await post_all(gateway, event("dossier.received"), event(type_))
    status, answer = await check(gateway)
    assert status == 200
    assert answer["dossier"] == CODE
    assert (answer["allowed"], answer["reason"], answer["pending"]) == (False, reason, [])
    assert words in answer["message"]


async def test_resumed_dossiers_may_be_paused_again(gateway: Gateway) -> None:
    await post_all(
        gateway,
        event("dossier.received"),
        event("dossier.paused"),
        event("dossier.resumed", at="2024-04-04T09:00:00+07:00"),
    )
    assert (await check(gateway))[1]["allowed"] is True


async def test_the_pause_check_of_an_unknown_dossier_is_404(gateway: Gateway) -> None:
    status, problem = await check(gateway)
    assert status == 404
    assert problem["type"] == "urn:tthc:problem:not-found"
    assert problem["instance"] == PAUSE


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "is required: the dossier code"),
        ({"dossier": None}, "is required: the dossier code"),
        ({"dossier": 12}, "is required: the dossier code"),
        ({"code": CODE}, "is required: the dossier code"),
        ([CODE], "is required: the dossier code"),
        ({"dossier": "abc"}, "is not a dossier code"),
        ({"dossier": CODE.lower()}, "is not a dossier code"),
    ],
)
async def test_the_pause_check_needs_a_dossier_code(
    gateway: Gateway, body: Any, message: str
) -> None:
    await post_ok(gateway, event("dossier.received"))
    status, problem = await check(gateway, body)
    assert status == 422
    assert problem["type"] == "urn:tthc:problem:validation"
    assert [e["field"] for e in problem["errors"]] == ["dossier"]
    assert problem["errors"][0]["message"].startswith(message)


async def test_the_pause_check_is_authenticated_and_json(gateway: Gateway) -> None:
    await post_ok(gateway, event("dossier.received"))
    raw = json.dumps({"dossier": CODE}).encode()
    response = await gateway.client.post(
        PAUSE, data=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    headers = gateway.headers(raw + b"x")
    assert (await gateway.post_raw(PAUSE, raw, headers=headers)).status == 401
    headers = gateway.headers(raw) | {"Content-Type": "text/plain"}
    assert (await gateway.post_raw(PAUSE, raw, headers=headers)).status == 415
    assert (await gateway.post_raw(PAUSE, b"{dossier")).status == 400


async def test_a_closed_dossier_is_closed_even_with_a_consultation_still_open(
    gateway: Gateway,
) -> None:
    for body in (
        event("dossier.received"),
        event("dossier.consultation_requested"),
        event("dossier.finished", at="2024-04-10T09:15:00+07:00"),
    ):
        status, answer, _ = await gateway.post(body)
        assert status == 202, answer
    status, answer = await gateway.check_pause()
    assert (status, answer["allowed"], answer["reason"]) == (200, False, "dossier_closed")
    assert [p["consultation_id"] for p in answer["pending"]] == ["yk-1"]
