"""The ``POST /v1/events/batch`` contract: up to 500 events, answered per item."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import CODE, Gateway, event, rename_table

BATCH = "/v1/events/batch"
OTHER = "000.00.12.H19-240401-0002"


async def post_ok(gateway: Gateway, body: dict[str, Any]) -> dict[str, Any]:
    status, answer, _ = await gateway.post(body)
    assert status == 202, answer
    return answer  # type: ignore[no-any-return]


def assert_item_problem(item: dict[str, Any], status: int, slug: str) -> dict[str, Any]:
    assert item["status"] == status, item
    assert "answer" not in item
    problem: dict[str, Any] = item["problem"]
    assert problem["type"] == f"urn:tthc:problem:{slug}"
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    assert problem["instance"] == BATCH
    return problem


async def test_a_mixed_batch_is_answered_per_item_in_order(gateway: Gateway) -> None:
    received = event("dossier.received", id="rec")
    processing = event("dossier.processing", id="proc")
    first_receipt = await post_ok(gateway, received)
    await post_ok(gateway, processing)

    supplement = event("dossier.supplement_requested", id="sup", at="2024-04-03T09:00:00+07:00")
    bad_fees = event("dossier.fees_due", id="fees", data={"amount": -1, "reason": "Lệ phí"})
    conflicting = event("dossier.processing", id="proc", data={"unit": "Phòng khác"})
    finished = event("dossier.finished", id="fin", at="2024-04-10T09:15:00+07:00")
    other_dossier = event("dossier.received", id="rec-2", code=OTHER)
    status, body = await gateway.batch(
        [supplement, bad_fees, received, conflicting, finished, other_dossier]
    )

    assert status == 200
    assert set(body) == {"results", "accepted", "replayed", "rejected"}
    assert (body["accepted"], body["replayed"], body["rejected"]) == (3, 1, 2)
    results = body["results"]
    assert [(r["index"], r["id"], r["status"]) for r in results] == [
        (0, "sup", 202),
        (1, "fees", 422),
        (2, "rec", 200),
        (3, "proc", 409),
        (4, "fin", 202),
        (5, "rec-2", 202),
    ]

    assert results[0]["answer"]["status"] == "accepted"
    assert results[0]["answer"]["dossier"]["state"] == "supplement_requested"
    assert [n["kind"] for n in results[0]["answer"]["notices"]] == ["supplement"]
    assert "replayed" not in results[0]

    problem = assert_item_problem(results[1], 422, "validation")
    assert problem["errors"] == [
        {
            "field": "events[1].data.amount",
            "message": "must be a whole, non-negative number of đồng",
        }
    ]

    assert results[2]["answer"] == first_receipt
    assert results[2]["replayed"] is True

    problem = assert_item_problem(results[3], 409, "conflict")
    assert "proc" in problem["detail"]
    assert "errors" not in problem

    assert results[4]["answer"]["dossier"]["state"] == "finished"
    assert results[5]["answer"]["dossier"]["code"] == OTHER

    view = await gateway.dossier()
    assert [e["id"] for e in view["timeline"]] == ["rec", "proc", "sup", "fin"]
    assert view["timeline"][1]["data"] == {"unit": "Phòng Quản lý xây dựng"}
    assert [n["kind"] for n in view["notices"]] == ["receipt", "supplement", "invitation"]
    assert (await gateway.dossier(OTHER))["state"] == "received"


async def test_batch_answers_are_the_single_endpoints_answers(gateway: Gateway) -> None:
    bodies = [
        event("dossier.received"),
        event("dossier.delayed", id="d-1"),
        event("dossier.withdrawn", id="w-1", at="2024-04-04T09:00:00+07:00", data={}),
    ]
    status, body = await gateway.batch(bodies)
    assert status == 200
    assert [r["status"] for r in body["results"]] == [202, 202, 202]
    assert [f["rule"] for f in body["results"][2]["answer"]["flags"]] == [
        "withdrawal_without_approval"
    ]
    for item, single in zip(body["results"], bodies, strict=True):
        again, answer, response = await gateway.post(single)
        assert again == 200
        assert response.headers["Idempotent-Replayed"] == "true"
        assert answer == item["answer"]
    # And a whole batch again is all replays.
    status, repeat = await gateway.batch(bodies)
    assert (repeat["accepted"], repeat["replayed"], repeat["rejected"]) == (0, 3, 0)
    assert [r["answer"] for r in repeat["results"]] == [r["answer"] for r in body["results"]]


async def test_the_same_event_twice_in_one_batch(gateway: Gateway) -> None:
    received = event("dossier.received", id="rec")
    changed = event("dossier.received", id="rec", applicant={"name": "Khác", "phone": ""})
    status, body = await gateway.batch([received, received, changed])
    assert status == 200
    results = body["results"]
    assert [r["status"] for r in results] == [202, 200, 409]
    assert results[1]["answer"] == results[0]["answer"]
    view = await gateway.dossier()
    assert len(view["timeline"]) == 1
    assert view["flags"] == []
    assert len(view["notices"]) == 1


async def test_events_of_one_batch_see_each_other(gateway: Gateway) -> None:
    delayed_twice = [
        event("dossier.received"),
        event("dossier.consultation_requested", id="req"),
        event("dossier.paused", id="pause", at="2024-04-03T09:00:00+07:00"),
        event("dossier.delayed", id="d-1", at="2024-04-04T09:00:00+07:00"),
        event(
            "dossier.delayed",
            id="d-2",
            at="2024-04-05T09:00:00+07:00",
            data={"new_due_at": "2024-04-25T17:00:00+07:00", "reason": "x"},
        ),
        event("dossier.finished", id="fin-1", at="2024-04-20T09:00:00+07:00"),
        event("dossier.finished", id="fin-2", at="2024-04-20T09:01:00+07:00"),
    ]
    status, body = await gateway.batch(delayed_twice)
    assert status == 200
    results = body["results"]
    assert all(r["status"] == 202 for r in results)
    assert [f["rule"] for f in results[2]["answer"]["flags"]] == ["pause_during_consultation"]
    assert [f["rule"] for f in results[4]["answer"]["flags"]] == ["second_rescheduling"]
    assert results[6]["answer"]["notices"][0]["duplicate"] is True
    view = await gateway.dossier()
    assert [(f["rule"], f["event_id"]) for f in view["flags"]] == [
        ("pause_during_consultation", "pause"),
        ("second_rescheduling", "d-2"),
    ]
    assert [n["kind"] for n in view["notices"]] == ["receipt", "apology", "apology", "invitation"]


async def test_invalid_items_do_not_prevent_the_valid_ones(gateway: Gateway) -> None:
    missing_due = event("dossier.received", id="bad-1", code=OTHER)
    del missing_due["dossier"]["due_at"]
    items: list[Any] = [
        "not an event",
        event("dossier.received", id="good"),
        missing_due,
        {"id": "bad-3", "type": "dossier.lost"},
        event("dossier.processing", id="good-2"),
    ]
    status, body = await gateway.batch(items)
    assert status == 200
    assert (body["accepted"], body["replayed"], body["rejected"]) == (2, 0, 3)
    results = body["results"]
    assert [(r["id"], r["status"]) for r in results] == [
        (None, 422),
        ("good", 202),
        ("bad-1", 422),
        ("bad-3", 422),
        ("good-2", 202),
    ]
    fields = [[e["field"] for e in r["problem"]["errors"]] for r in results if r["status"] == 422]
    assert fields == [
        ["events[0]"],
        ["events[2].dossier.due_at"],
        ["events[3].type", "events[3].occurred_at", "events[3].dossier"],
    ]
    view = await gateway.dossier()
    assert [e["id"] for e in view["timeline"]] == ["good", "good-2"]
    status, _ = await gateway.get(f"/v1/dossiers/{OTHER}")
    assert status == 404


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"events": []}, "must not be empty"),
        ({"events": [{}] * 501}, "must hold at most 500 events"),
        ({"events": "x"}, "must be a list of events"),
        ({"events": {"0": {}}}, "must be a list of events"),
        ({"events": None}, "must be a list of events"),
        ({}, "must be a list of events"),
        ([event("dossier.received")], "must be a list of events"),
    ],
)
async def test_a_batch_that_is_not_a_list_of_1_to_500_is_422(
    gateway: Gateway, payload: Any, message: str
) -> None:
    raw = json.dumps(payload).encode()
    response = await gateway.post_raw(BATCH, raw)
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["type"] == "urn:tthc:problem:validation"
    assert problem["instance"] == BATCH
    assert problem["errors"] == [{"field": "events", "message": message}]


async def test_a_batch_of_500_is_read(gateway: Gateway) -> None:
    status, body = await gateway.batch([{}] * 500)
    assert status == 200
    assert (body["accepted"], body["rejected"]) == (0, 500)
    assert body["results"][499]["index"] == 499


async def test_batch_malformed_unsigned_and_wrong_type(gateway: Gateway) -> None:
    response = await gateway.post_raw(BATCH, b'{"events": [')
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    raw = json.dumps({"events": [event("dossier.received")]}).encode()
    response = await gateway.client.post(
        BATCH, data=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status == 401
    assert (await response.json())["instance"] == BATCH
    headers = gateway.headers(raw) | {"Content-Type": "text/plain"}
    response = await gateway.post_raw(BATCH, raw, headers=headers)
    assert response.status == 415
    forged = gateway.headers(raw + b" ")
    response = await gateway.post_raw(BATCH, raw, headers=forged)
    assert response.status == 401
    status, _ = await gateway.get(f"/v1/dossiers/{CODE}")
    assert status == 404


async def test_a_batch_over_the_body_limit_is_413(gateway: Gateway) -> None:
    items = [event("dossier.refused", id=f"r-{n}", data={"reason": "x" * 1000}) for n in range(70)]
    raw = json.dumps({"events": items}).encode()
    assert len(raw) > 65536
    response = await gateway.post_raw(BATCH, raw)
    assert response.status == 413
    assert response.content_type == "application/problem+json"
    status, _ = await gateway.get(f"/v1/dossiers/{CODE}")
    assert status == 404


async def test_a_database_failure_fails_only_the_items_it_touches(
    gateway: Gateway, database_url: str
) -> None:
    await post_ok(gateway, event("dossier.received", id="rec"))
    await post_ok(gateway, event("dossier.received", id="rec-2", code=OTHER))
    before = await gateway.dossier()
    items = [
        event("dossier.processing", id="proc-2", code=OTHER),  # no notice: stored
        event("dossier.finished", id="fin", at="2024-04-10T09:00:00+07:00"),  # a notice: fails
    ]
    await rename_table(database_url, "notices", "notices_away")
    try:
        status, body = await gateway.batch(items)
    finally:
        await rename_table(database_url, "notices_away", "notices")
    assert status == 200
    results = body["results"]
    assert [(r["id"], r["status"]) for r in results] == [("proc-2", 202), ("fin", 503)]
    assert_item_problem(results[1], 503, "unavailable")
    assert (body["accepted"], body["replayed"], body["rejected"]) == (1, 0, 1)
    assert await gateway.dossier() == before
    assert (await gateway.dossier(OTHER))["state"] == "processing"

    status, body = await gateway.batch(items)
    assert [r["status"] for r in body["results"]] == [200, 202]
    assert (await gateway.dossier())["state"] == "finished"
