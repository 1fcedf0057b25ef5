"""The ``POST /v1/events`` contract, on SQLite and PostgreSQL (the README's events API contract)."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp import ClientResponse

from gateway.domain.events import body_fingerprint, parse_event
from gateway.http.app import create_app
from gateway.http.keys import WRITER
from gateway.http.signing import signature, signed_headers, signed_headers_v2
from gateway.settings import Settings
from gateway.storage.ingest import Submission
from tests.conftest import forget_queues
from tests.helpers import ACTOR, CODE, SOURCES, Gateway, changed, event, rename_table

# 2024-04-03T09:00:00+07:00: the clock of the `clocked` gateway.
NOW = 1_712_109_600

PROBLEM_TYPES = {
    400: "urn:tthc:problem:malformed",
    401: "urn:tthc:problem:unauthenticated",
    409: "urn:tthc:problem:conflict",
    413: "urn:tthc:problem:too-large",
    415: "urn:tthc:problem:media-type",
    422: "urn:tthc:problem:validation",
    503: "urn:tthc:problem:unavailable",
}
OFFICER = {"id": ACTOR["id"], "name": ACTOR["name"]}


@pytest.fixture
async def clocked(settings: Settings, aiohttp_client: Any) -> Gateway:
    """A gateway whose clock stands still at ``NOW``."""
    client = await aiohttp_client(create_app(settings, clock=lambda: NOW))
    return Gateway(client, settings)


def assert_problem(
    response: ClientResponse, body: Any, status: int, instance: str = "/v1/events"
) -> None:
    """An RFC 9457 problem document with every member the contract names."""
    assert response.status == status, body
    assert response.content_type == "application/problem+json"
    assert body["type"] == PROBLEM_TYPES[status]
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["instance"] == instance


async def nothing_stored(gateway: Gateway, code: str = CODE) -> None:
    status, body = await gateway.get(f"/v1/dossiers/{code}")
    assert status == 404, body


async def post_ok(gateway: Gateway, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    status, answer, _ = await gateway.post(body, **kwargs)
    assert status == 202, answer
    return answer  # type: ignore[no-any-return]


# --- 202 and idempotency -----------------------------------------------------------


async def test_an_accepted_event_is_answered_202_with_the_whole_outcome(gateway: Gateway) -> None:
    body = event("dossier.received", id="evt-1")
    status, answer, response = await gateway.post(body)
    assert status == 202
    assert response.content_type == "application/json"
    assert "Idempotent-Replayed" not in response.headers
    assert set(answer) == {"id", "status", "dossier", "superseded", "notices", "flags"}
    assert answer["id"] == "evt-1"
    assert answer["status"] == "accepted"
    assert answer["dossier"] == {
        "code": CODE,
        "state": "received",
        "dvcqg_status": 2,
        "due_at": "2024-04-12T17:00:00+07:00",
    }
    assert answer["superseded"] is False
    (notice,) = answer["notices"]
    assert set(notice) == {"id", "kind", "channel", "state"}
    assert (notice["kind"], notice["channel"], notice["state"]) == ("receipt", None, "created")
    assert isinstance(notice["id"], str) and notice["id"]
    assert answer["flags"] == []

    view = await gateway.dossier()
    assert [e["id"] for e in view["timeline"]] == ["evt-1"]
    assert [(n["id"], n["kind"], n["state"]) for n in view["notices"]] == [
        (notice["id"], "receipt", "created")
    ]


async def test_a_flag_in_the_answer_has_rule_and_detail(gateway: Gateway) -> None:
    answer = await post_ok(gateway, event("dossier.received", applicant={"name": "An"}))
    assert answer["flags"] == [
        {"rule": "phone_missing", "detail": "no mobile number was entered at receipt"}
    ]


async def test_the_due_date_is_answered_in_the_gateways_zone(gateway: Gateway) -> None:
    received = event("dossier.received", due_at="2024-04-12T10:00:00+00:00")
    assert (await post_ok(gateway, received))["dossier"]["due_at"] == "2024-04-12T17:00:00+07:00"
    # A later event without a due date answers with the stored one, in the same zone.
    processing = changed(event("dossier.processing"), "dossier.due_at", ...)
    answer = await post_ok(gateway, processing)
    assert answer["dossier"]["due_at"] == "2024-04-12T17:00:00+07:00"
    status, replay, _ = await gateway.post(processing)
    assert (status, replay) == (200, answer)


async def test_the_same_event_again_is_replayed_with_the_first_answer(gateway: Gateway) -> None:
    body = event("dossier.finished", applicant={"name": "An", "phone": "0912345678"})
    first = await post_ok(gateway, body)
    status, again, response = await gateway.post(body)
    assert status == 200
    assert response.headers["Idempotent-Replayed"] == "true"
    assert response.content_type == "application/json"
    assert again == first
    view = await gateway.dossier()
    assert len(view["timeline"]) == 1
    assert [n["kind"] for n in view["notices"]] == ["invitation"]


@pytest.mark.parametrize(
    "dumps",
    [
        pytest.param(lambda b: json.dumps(b, sort_keys=True), id="keys-sorted"),
        pytest.param(lambda b: json.dumps(b, indent=4), id="indented-ascii-escapes"),
        pytest.param(
            lambda b: "\n " + json.dumps(dict(reversed(b.items())), separators=(",", ":")),
            id="reversed-compact",
        ),
    ],
)
async def test_a_replay_may_differ_in_key_order_and_white_space(
    gateway: Gateway, dumps: Any
) -> None:
    body = event("dossier.received")
    first = await post_ok(gateway, body)
    raw = dumps(body).encode()
    assert raw != json.dumps(body, ensure_ascii=False).encode()
    response = await gateway.post_raw("/v1/events", raw)
    assert response.status == 200
    assert response.headers["Idempotent-Replayed"] == "true"
    assert await response.json() == first
    assert len((await gateway.dossier())["timeline"]) == 1


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("data.unit", "Phòng khác"),
        ("occurred_at", "2024-04-02T09:00:01+07:00"),
        ("dossier.applicant.phone", "0912345678"),  # same number, other spelling
        ("actor", None),
    ],
)
async def test_the_same_id_with_another_body_is_a_conflict(
    gateway: Gateway, path: str, value: Any
) -> None:
    body = event("dossier.processing", id="evt-p")
    await post_ok(gateway, body)
    before = await gateway.dossier()
    _, problem, response = await gateway.post(changed(body, path, value))
    assert_problem(response, problem, 409)
    assert "evt-p" in problem["detail"]
    assert "errors" not in problem
    assert await gateway.dossier() == before


async def test_event_ids_are_per_source(gateway: Gateway) -> None:
    body = event("dossier.received", id="evt-1")
    ours = await post_ok(gateway, body)
    theirs = await post_ok(gateway, body, source="dvc")
    assert theirs["id"] == "evt-1"
    # The receipt is once per dossier: the other source's copy does not send it again.
    (notice,) = theirs["notices"]
    assert notice["id"] == ours["notices"][0]["id"]
    assert notice["duplicate"] is True
    status, replay, response = await gateway.post(body, source="dvc")
    assert (status, replay) == (200, theirs)
    assert response.headers["Idempotent-Replayed"] == "true"
    view = await gateway.dossier()
    assert [(e["id"], e["source"]) for e in view["timeline"]] == [
        ("evt-1", "onestop"),
        ("evt-1", "dvc"),
    ]
    assert len(view["notices"]) == 1


# --- 400 / 413 / 415 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"id": "evt-1", ', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"{'id': 'evt-1'}", "not valid JSON"),
        (b'{"id": "evt-1", "amount": NaN}', "not valid JSON"),
        (b'{"amount": Infinity}', "not valid JSON"),
        (b'{"amount": -Infinity}', "not valid JSON"),
        ('{"id": "Nguyễn"}'.encode("utf-16"), "not UTF-8"),
        ('{"name": "Lê"}'.encode("latin-1"), "not UTF-8"),
        (b'{"name": "\xff"}', "not UTF-8"),
    ],
)
async def test_a_body_that_is_not_json_is_400(gateway: Gateway, raw: bytes, detail: str) -> None:
    response = await gateway.post_raw("/v1/events", raw)
    problem = await response.json()
    assert_problem(response, problem, 400)
    assert detail in problem["detail"]
    await nothing_stored(gateway)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_a_body_that_is_not_declared_json_is_415(gateway: Gateway, content_type: str) -> None:
    raw = json.dumps(event("dossier.received")).encode()
    headers = gateway.headers(raw) | {"Content-Type": content_type}
    response = await gateway.post_raw("/v1/events", raw, headers=headers)
    problem = await response.json()
    assert_problem(response, problem, 415)
    assert content_type in problem["detail"]
    await nothing_stored(gateway)


async def test_a_json_content_type_with_charset_is_accepted(gateway: Gateway) -> None:
    raw = json.dumps(event("dossier.received")).encode()
    headers = gateway.headers(raw) | {"Content-Type": "application/json; charset=utf-8"}
    response = await gateway.post_raw("/v1/events", raw, headers=headers)
    assert response.status == 202


async def test_a_body_over_the_limit_is_413(gateway: Gateway) -> None:
    assert gateway.settings.max_body_bytes == 65536
    body = event("dossier.refused", data={"reason": "x" * 65536})
    raw = json.dumps(body).encode()
    response = await gateway.post_raw("/v1/events", raw)
    assert_problem(response, await response.json(), 413)
    await nothing_stored(gateway)


async def test_a_body_just_under_the_limit_is_read(gateway: Gateway) -> None:
    body = event("dossier.received", id="evt-big")
    padding = 65536 - len(json.dumps(body | {"x": ""}).encode())
    raw = json.dumps(body | {"x": "y" * padding}).encode()
    assert len(raw) == 65536
    response = await gateway.post_raw("/v1/events", raw)
    assert response.status == 202, await response.text()


# --- 401 -----------------------------------------------------------------------------


def _forged(gateway: Gateway, raw: bytes, how: str) -> dict[str, str]:
    headers = gateway.headers(raw)
    timestamp = headers["X-Timestamp"]
    if how.startswith("without "):
        del headers[how.removeprefix("without ")]
    elif how == "unknown source":
        headers["X-Source-Id"] = "hacker"
    elif how == "other source's name":
        headers["X-Source-Id"] = "dvc"
    elif how == "wrong secret":
        headers["X-Signature"] = signature("not-the-secret", timestamp, raw)
    elif how == "signature of another body":
        headers["X-Signature"] = signature(SOURCES["onestop"], timestamp, raw + b" ")
    elif how == "signature of another timestamp":
        headers["X-Signature"] = signature(SOURCES["onestop"], str(int(timestamp) - 1), raw)
    elif how == "bare hex signature":
        headers["X-Signature"] = headers["X-Signature"].removeprefix("sha256=")
    elif how == "timestamp not a number":
        headers["X-Timestamp"] = "yesterday"
    elif how == "empty source":
        headers["X-Source-Id"] = ""
    else:
        raise AssertionError(how)
    return headers


@pytest.mark.parametrize(
    "how",
    [
        "without X-Source-Id",
        "without X-Timestamp",
        "without X-Signature",
        "empty source",
        "unknown source",
        "other source's name",
        "wrong secret",
        "signature of another body",
        "signature of another timestamp",
        "bare hex signature",
        "timestamp not a number",
    ],
)
async def test_an_unauthenticated_event_is_401_and_not_stored(gateway: Gateway, how: str) -> None:
    raw = json.dumps(event("dossier.received")).encode()
    response = await gateway.post_raw("/v1/events", raw, headers=_forged(gateway, raw, how))
    problem = await response.json()
    assert_problem(response, problem, 401)
    assert response.headers["WWW-Authenticate"].startswith("HMAC-SHA256")
    if how.startswith("without "):
        assert problem["detail"] == "missing header(s): " + how.removeprefix("without ")
    await nothing_stored(gateway)


@pytest.mark.parametrize(
    ("skew", "status"),
    # Past: CLOCK_SKEW_SECONDS (300). Future: at most 5 s, so a capture's window stays short.
    [(-301, 401), (6, 401), (301, 401), (-300, 202), (5, 202), (-299, 202), (0, 202)],
)
async def test_timestamps_more_than_300_s_old_or_5_s_ahead_are_rejected(
    clocked: Gateway, skew: int, status: int
) -> None:
    raw = json.dumps(event("dossier.received")).encode()
    headers = clocked.headers(raw, now=NOW + skew)
    response = await clocked.post_raw("/v1/events", raw, headers=headers)
    assert response.status == status, await response.text()
    if status == 401:
        problem = await response.json()
        assert_problem(response, problem, 401)
        assert "X-Timestamp" in problem["detail"]
        path = f"/v1/dossiers/{CODE}"
        headers = signed_headers_v2("onestop", SOURCES["onestop"], "GET", path, b"", NOW)
        lookup = await clocked.client.get(path, headers=headers)
        assert lookup.status == 404


async def test_the_real_clock_is_used_by_default(gateway: Gateway) -> None:
    raw = json.dumps(event("dossier.received")).encode()
    stale = signed_headers("onestop", SOURCES["onestop"], raw, time.time() - 400)
    response = await gateway.post_raw(
        "/v1/events", raw, headers=stale | {"Content-Type": "application/json"}
    )
    assert response.status == 401


# --- 422 ---------------------------------------------------------------------------

FINISHED = event("dossier.finished", id="bad")
RECEIVED = event("dossier.received", id="bad")
WITHDRAWN = event("dossier.withdrawn", id="bad")


def _data(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return event(type_, id="bad", data=data)


CONSULT_DUE = "2024-04-05T17:00:00+07:00"
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("missing id", changed(RECEIVED, "id", ...), "id"),
    ("missing type", changed(RECEIVED, "type", ...), "type"),
    ("missing occurred_at", changed(RECEIVED, "occurred_at", ...), "occurred_at"),
    ("missing dossier", changed(RECEIVED, "dossier", ...), "dossier"),
    ("unknown type", changed(RECEIVED, "type", "dossier.archived"), "type"),
    ("naive occurred_at", changed(RECEIVED, "occurred_at", "2024-04-01T08:05:00"), "occurred_at"),
    (
        "occurred_at out of range",
        changed(RECEIVED, "occurred_at", "9999-12-31T23:00:00-05:00"),
        "occurred_at",
    ),
    ("naive due_at", changed(RECEIVED, "dossier.due_at", "2024-04-12T17:00:00"), "dossier.due_at"),
    (
        "bad dossier code",
        changed(RECEIVED, "dossier.code", "000.00.12.H19-240401-01"),
        "dossier.code",
    ),
    (
        "impossible date in code",
        changed(RECEIVED, "dossier.code", "000.00.12.H19-240230-0001"),
        "dossier.code",
    ),
    ("received without due_at", changed(RECEIVED, "dossier.due_at", ...), "dossier.due_at"),
    (
        "due_at equal to received_at",
        changed(RECEIVED, "dossier.due_at", "2024-04-01T08:05:00+07:00"),
        "dossier.due_at",
    ),
    (
        "due_at before received_at",
        changed(RECEIVED, "dossier.due_at", "2024-03-30T17:00:00+07:00"),
        "dossier.due_at",
    ),
    ("received without actor", changed(RECEIVED, "actor", ...), "actor"),
    ("finished without actor", changed(FINISHED, "actor", None), "actor"),
    ("withdrawn without actor", changed(WITHDRAWN, "actor", ...), "actor"),
    (
        "documents empty",
        _data("dossier.supplement_requested", {"reason": "x", "documents": []}),
        "data.documents",
    ),
    (
        "documents not a list",
        _data("dossier.supplement_requested", {"reason": "x", "documents": "Bản vẽ"}),
        "data.documents",
    ),
    (
        "document not a string",
        _data("dossier.supplement_requested", {"reason": "x", "documents": ["Bản vẽ", 2]}),
        "data.documents[1]",
    ),
    ("amount negative", _data("dossier.fees_due", {"amount": -1000, "reason": "x"}), "data.amount"),
    (
        "amount fractional",
        _data("dossier.fees_due", {"amount": 1000.5, "reason": "x"}),
        "data.amount",
    ),
    (
        "amount a string",
        _data("dossier.fees_due", {"amount": "1000", "reason": "x"}),
        "data.amount",
    ),
    ("amount a bool", _data("dossier.fees_due", {"amount": False, "reason": "x"}), "data.amount"),
    (
        "consultation agency missing",
        _data("dossier.consultation_requested", {"consultation_id": "yk-1", "due_at": CONSULT_DUE}),
        "data.agency",
    ),
    ("new_due_at missing", _data("dossier.delayed", {"reason": "x"}), "data.new_due_at"),
    (
        "new_due_at not after occurred_at",
        _data("dossier.delayed", {"reason": "x", "new_due_at": "2024-04-02T09:00:00+07:00"}),
        "data.new_due_at",
    ),
    ("finished without pickup or delivery", _data("dossier.finished", {}), "data.pickup"),
    ("finished with null delivery", _data("dossier.finished", {"delivery": None}), "data.pickup"),
    (
        "finished with pickup and delivery",
        _data("dossier.finished", {"pickup": "quầy 5", "delivery": "online"}),
        "data",
    ),
    (
        "finished with a bad delivery",
        _data("dossier.finished", {"delivery": "drone"}),
        "data.delivery",
    ),
    (
        "approved_by not an object",
        _data("dossier.withdrawn", {"approved_by": "Nguyễn Hữu Đạt"}),
        "data.approved_by",
    ),
    (
        "approved_by without id",
        _data("dossier.withdrawn", {"approved_by": {"name": "Đạt"}}),
        "data.approved_by.id",
    ),
    (
        "event before the receipt",
        event("dossier.processing", id="bad", at="2024-03-31T09:00:00+07:00"),
        "occurred_at",
    ),
    ("not an object", [event("dossier.received")], ""),  # type: ignore[list-item]
]


@pytest.mark.parametrize(
    ("body", "field"), [pytest.param(body, field, id=name) for name, body, field in INVALID]
)
async def test_an_invalid_field_is_422_naming_it_and_changes_nothing(
    gateway: Gateway, body: dict[str, Any], field: str
) -> None:
    await post_ok(gateway, event("dossier.received", id="evt-ok"))
    before = await gateway.dossier()
    _, problem, response = await gateway.post(body)
    assert_problem(response, problem, 422)
    assert [e["field"] for e in problem["errors"]] == [field]
    assert isinstance(problem["errors"][0]["message"], str) and problem["errors"][0]["message"]
    assert problem["detail"] == f"1 invalid field: {field or '(body)'}"
    assert await gateway.dossier() == before


async def test_all_invalid_fields_are_listed_at_once(gateway: Gateway) -> None:
    body = event("dossier.fees_due", data={"amount": "nhiều", "reason": ""})
    body["id"] = "has space"
    body["dossier"]["due_at"] = "2024-04-01T00:00:00+07:00"
    del body["occurred_at"]
    _, problem, response = await gateway.post(body)
    assert_problem(response, problem, 422)
    assert problem["errors"] == [
        {"field": "id", "message": "must be 1-128 printable ASCII characters without spaces"},
        {"field": "occurred_at", "message": "is required"},
        {"field": "dossier.due_at", "message": "must be later than dossier.received_at"},
        {"field": "data.amount", "message": "must be a number of đồng"},
        {"field": "data.reason", "message": "must not be empty"},
    ]
    await nothing_stored(gateway)


@pytest.mark.parametrize("type_", ["dossier.processing", "dossier.paused", "dossier.delivered"])
async def test_other_types_need_no_actor(gateway: Gateway, type_: str) -> None:
    answer = await post_ok(gateway, changed(event(type_), "actor", ...))
    assert answer["flags"] == []
    (entry,) = (await gateway.dossier())["timeline"]
    assert entry["actor"] is None


# --- 503 -------------------------------------------------------------------------------


async def test_a_database_failure_is_503_and_stores_nothing(
    gateway: Gateway, database_url: str
) -> None:
    await post_ok(gateway, event("dossier.received"))
    before = await gateway.dossier()
    # Creates a withdrawal notice and a withdrawal_without_approval flag.
    withdrawn = event("dossier.withdrawn", id="evt-w", at="2024-04-05T10:00:00+07:00", data={})
    await rename_table(database_url, "notices", "notices_away")
    try:
        _, problem, response = await gateway.post(withdrawn)
    finally:
        await rename_table(database_url, "notices_away", "notices")
    assert_problem(response, problem, 503)
    assert int(response.headers["Retry-After"]) > 0
    assert "nothing was recorded" in problem["detail"]
    after = await gateway.dossier()
    assert after == before
    assert "evt-w" not in [e["id"] for e in after["timeline"]]
    assert after["flags"] == []

    answer = await post_ok(gateway, withdrawn)
    assert answer["dossier"]["state"] == "withdrawn"
    assert [f["rule"] for f in answer["flags"]] == ["withdrawal_without_approval"]
    assert [n["kind"] for n in answer["notices"]] == ["withdrawal"]
    view = await gateway.dossier()
    assert [e["id"] for e in view["timeline"]][-1] == "evt-w"
    assert [n["kind"] for n in view["notices"]] == ["receipt", "withdrawal"]


async def test_a_database_failure_on_a_new_dossier_leaves_no_dossier(
    gateway: Gateway, database_url: str
) -> None:
    await rename_table(database_url, "notices", "notices_away")
    try:
        _, problem, response = await gateway.post(event("dossier.received"))
    finally:
        await rename_table(database_url, "notices_away", "notices")
    assert_problem(response, problem, 503)
    assert "Retry-After" in response.headers
    await nothing_stored(gateway)
    await post_ok(gateway, event("dossier.received"))


async def test_a_request_that_went_away_does_not_stop_the_writer(
    gateway: Gateway, database_url: str
) -> None:
    await post_ok(gateway, event("dossier.received"))
    writer = gateway.client.app[WRITER]
    bodies = [
        event("dossier.processing", id="proc"),
        event("dossier.finished", id="fin", at="2024-04-10T09:15:00+07:00"),
    ]
    submissions = [Submission("onestop", body_fingerprint(b), b, parse_event(b)) for b in bodies]
    await rename_table(database_url, "notices", "notices_away")
    try:
        # The group fails (no notices table); each event is then retried alone, and the
        # one without a notice is stored although nobody waits for its answer any more.
        waiting = asyncio.create_task(writer.submit(submissions))
        await asyncio.sleep(0)
        waiting.cancel()
        later = event("dossier.processing", id="later", code="000.00.12.H19-240401-0002")
        answer = await asyncio.wait_for(post_ok(gateway, later), 10)
        assert answer["dossier"]["state"] == "processing"
    finally:
        await rename_table(database_url, "notices_away", "notices")
    assert waiting.cancelled()
    view = await gateway.dossier()
    assert [e["id"] for e in view["timeline"]][1:] == ["proc"]
    assert view["state"] == "processing"


class _TcpProxy:
    """A loopback TCP relay to the database server that can be switched off and on again."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        self._writers.clear()
        self._pipes.clear()
        await self._server.wait_closed()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self._target)
        self._writers |= {client_w, server_w}
        for source, sink in ((client_r, server_w), (server_r, client_w)):
            pipe = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(pipe)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            sink.close()


@pytest.mark.postgres
async def test_an_unreachable_database_server_is_503_until_it_is_back(
    postgres_schema: str, redis_server: str, aiohttp_client: Any
) -> None:
    server, _, schema = postgres_schema.partition("?schema=")
    conn = await asyncpg.connect(server)
    try:
        tables = ", ".join(
            f'"{schema}".{t}' for t in ("events", "dossiers", "consultations", "flags", "notices")
        )
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY")
    finally:
        await conn.close()
    address = urlsplit(server)
    proxy = _TcpProxy(address.hostname or "127.0.0.1", address.port or 5432)
    await proxy.start()
    user, at, _ = address.netloc.rpartition("@")
    proxied = address._replace(netloc=f"{user}{at}127.0.0.1:{proxy.port}").geturl()
    settings = Settings.from_mapping(
        {
            "DATABASE_URL": f"{proxied}?schema={schema}",
            "REDIS_URL": redis_server,
            "REDIS_KEY_PREFIX": f"tthc-test-outage-{uuid.uuid4().hex[:8]}:",
            "EVENT_SOURCES": ",".join(f"{k}:{v}" for k, v in SOURCES.items()),
        }
    )
    gateway = Gateway(await aiohttp_client(create_app(settings)), settings)
    try:
        await post_ok(gateway, event("dossier.received"))
        await proxy.stop()
        finished = event("dossier.finished", id="fin", at="2024-04-10T09:15:00+07:00")
        _, problem, response = await asyncio.wait_for(gateway.post(finished), 20)
        assert_problem(response, problem, 503)
        assert problem["detail"] == "the database is unavailable; nothing was recorded"
        assert int(response.headers["Retry-After"]) > 0
        # The read APIs say the same while the server is away.
        path = f"/v1/dossiers/{CODE}"
        response = await gateway.client.get(
            path,
            headers=signed_headers_v2("onestop", SOURCES["onestop"], "GET", path, b"", time.time()),
        )
        assert_problem(response, await response.json(), 503, f"/v1/dossiers/{CODE}")
        assert int(response.headers["Retry-After"]) > 0
        raw = json.dumps({"dossier": CODE}).encode()
        response = await gateway.post_raw("/v1/checks/pause", raw)
        assert_problem(response, await response.json(), 503, "/v1/checks/pause")
        await proxy.start()
        view = await gateway.dossier()
        assert [e["id"] for e in view["timeline"]] == [event("dossier.received")["id"]]
        assert view["state"] == "received"
        answer = await asyncio.wait_for(post_ok(gateway, finished), 20)
        assert answer["dossier"]["state"] == "finished"
    finally:
        await gateway.client.close()  # its last enqueue happens on close
        forget_queues(settings)
        await proxy.stop()


# --- state, DVCQG status and notices per type ---------------------------------------

# type → (state, DVCQG status, notice kind)
PER_TYPE: dict[str, tuple[str, int, str | None]] = {
    "dossier.received": ("received", 2, "receipt"),
    "dossier.supplement_requested": ("supplement_requested", 5, "supplement"),
    "dossier.refused": ("refused", 3, "refusal"),
    "dossier.processing": ("processing", 4, None),
    "dossier.consultation_requested": ("in_consultation", 4, None),
    "dossier.consultation_answered": ("processing", 4, None),
    "dossier.fees_due": ("fees_due", 6, "fees"),
    "dossier.paused": ("paused", 8, None),
    "dossier.resumed": ("processing", 4, None),
    "dossier.withdrawn": ("withdrawn", 7, "withdrawal"),
    "dossier.delayed": ("processing", 4, "apology"),
    "dossier.finished": ("finished", 9, "invitation"),
    "dossier.delivered": ("delivered", 10, None),
}


@pytest.mark.parametrize("type_", list(PER_TYPE))
async def test_state_dvcqg_status_and_notice_per_event_type(gateway: Gateway, type_: str) -> None:
    state, status, kind = PER_TYPE[type_]
    receipt = await post_ok(gateway, event("dossier.received"))
    answer = receipt if type_ == "dossier.received" else await post_ok(gateway, event(type_))
    assert (answer["dossier"]["state"], answer["dossier"]["dvcqg_status"]) == (state, status)
    expected_kinds = [kind] if kind else []
    assert [(n["kind"], n["state"]) for n in answer["notices"]] == [
        (k, "created") for k in expected_kinds
    ]
    assert answer["flags"] == []
    view = await gateway.dossier()
    assert (view["state"], view["dvcqg_status"]) == (state, status)
    stored = [(n["kind"], n["event_id"], n["state"]) for n in view["notices"]]
    assert stored[0] == ("receipt", receipt["id"], "created")
    if type_ != "dossier.received":
        assert stored[1:] == [(k, answer["id"], "created") for k in expected_kinds]


async def test_a_notice_without_a_usable_phone_has_no_recipient(gateway: Gateway) -> None:
    answer = await post_ok(
        gateway, event("dossier.received", applicant={"name": "An", "phone": "abc"})
    )
    assert [(n["kind"], n["state"]) for n in answer["notices"]] == [("receipt", "no_recipient")]
    # A later snapshot without a phone leaves the stored (unusable) one as it is.
    refusal = await post_ok(gateway, event("dossier.refused", applicant={"name": "An"}))
    assert [(n["kind"], n["state"]) for n in refusal["notices"]] == [("refusal", "no_recipient")]
    view = await gateway.dossier()
    assert [n["state"] for n in view["notices"]] == ["no_recipient", "no_recipient"]
    assert view["applicant"]["phone"] is None


async def test_a_fact_posted_twice_under_two_ids_is_notified_once(gateway: Gateway) -> None:
    await post_ok(gateway, event("dossier.received"))
    first = await post_ok(gateway, event("dossier.finished", id="fin-1"))
    second = await post_ok(
        gateway, event("dossier.finished", id="fin-2", at="2024-04-02T09:05:00+07:00")
    )
    (invitation,) = first["notices"]
    assert "duplicate" not in invitation
    assert second["notices"] == [
        {
            "id": invitation["id"],
            "kind": "invitation",
            "channel": None,
            "state": "created",
            "duplicate": True,
        }
    ]
    view = await gateway.dossier()
    assert [(n["kind"], n["event_id"]) for n in view["notices"]] == [
        ("receipt", event("dossier.received")["id"]),
        ("invitation", "fin-1"),
    ]
    assert [e["id"] for e in view["timeline"]][1:] == ["fin-1", "fin-2"]


async def test_two_supplement_requests_are_two_notices(gateway: Gateway) -> None:
    await post_ok(gateway, event("dossier.received"))
    one = await post_ok(gateway, event("dossier.supplement_requested", id="sup-1"))
    two = await post_ok(
        gateway,
        event(
            "dossier.supplement_requested",
            id="sup-2",
            at="2024-04-04T09:00:00+07:00",
            data={"reason": "Thiếu", "documents": ["Sổ đỏ"]},
        ),
    )
    assert one["notices"][0]["id"] != two["notices"][0]["id"]
    assert "duplicate" not in two["notices"][0]
    view = await gateway.dossier()
    assert [(n["kind"], n["event_id"]) for n in view["notices"]][1:] == [
        ("supplement", "sup-1"),
        ("supplement", "sup-2"),
    ]
    assert view["supplement_count"] == 2


# --- out of order ------------------------------------------------------------------


async def test_an_older_receipt_after_the_finish_is_superseded(gateway: Gateway) -> None:
    finished = await post_ok(
        gateway, event("dossier.finished", id="fin", at="2024-04-10T09:15:00+07:00")
    )
    assert finished["superseded"] is False
    received = await post_ok(gateway, event("dossier.received", id="rec"))
    assert received["superseded"] is True
    assert received["dossier"]["state"] == "finished"
    assert received["dossier"]["dvcqg_status"] == 9
    assert received["notices"] == []
    view = await gateway.dossier()
    assert (view["state"], view["dvcqg_status"]) == ("finished", 9)
    assert [(e["id"], e["superseded"]) for e in view["timeline"]] == [
        ("rec", True),
        ("fin", False),
    ]
    assert [n["kind"] for n in view["notices"]] == ["invitation"]


async def test_a_late_older_event_never_overwrites_a_newer_state(gateway: Gateway) -> None:
    await post_ok(gateway, event("dossier.received", id="rec"))
    await post_ok(gateway, event("dossier.paused", id="pause", at="2024-04-06T09:00:00+07:00"))
    late = event(
        "dossier.processing",
        id="late",
        at="2024-04-03T09:00:00+07:00",
        applicant={"name": "Người khác", "phone": "0987654321"},
        due_at="2024-05-01T17:00:00+07:00",
    )
    answer = await post_ok(gateway, late)
    assert answer["superseded"] is True
    assert answer["dossier"] == {
        "code": CODE,
        "state": "paused",
        "dvcqg_status": 8,
        "due_at": "2024-04-12T17:00:00+07:00",
    }
    view = await gateway.dossier()
    assert (view["state"], view["state_at"]) == ("paused", "2024-04-06T09:00:00+07:00")
    assert view["applicant"]["name"] == "Nguyễn Văn An"
    assert view["applicant"]["phone"] == "+84912345678"
    assert [e["id"] for e in view["timeline"]] == ["rec", "late", "pause"]
    newer = await post_ok(
        gateway, event("dossier.resumed", id="res", at="2024-04-07T09:00:00+07:00")
    )
    assert (newer["superseded"], newer["dossier"]["state"]) == (False, "processing")


# --- flags -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("applicant", "rule", "problem"),
    [
        ({"name": "An", "phone": ""}, "phone_missing", "empty"),
        ({"name": "An"}, "phone_missing", "empty"),
        ({"name": "An", "phone": "không có"}, "phone_missing", "no_digits"),
        ({"name": "An", "phone": "09l2 345 678"}, "phone_invalid", "letters"),
        ({"name": "An", "phone": "0912 345 ABC"}, "phone_invalid", "letters"),
        ({"name": "An", "phone": "0251 3822 123"}, "phone_landline", "landline"),
    ],
)
async def test_an_unusable_phone_at_receipt_is_flagged_on_the_receiving_officer(
    gateway: Gateway, applicant: dict[str, str], rule: str, problem: str
) -> None:
    answer = await post_ok(gateway, event("dossier.received", id="rec", applicant=applicant))
    assert [f["rule"] for f in answer["flags"]] == [rule]
    view = await gateway.dossier()
    assert view["flags"] == [
        {
            "rule": rule,
            "detail": answer["flags"][0]["detail"],
            "source": "onestop",
            "event_id": "rec",
            "occurred_at": "2024-04-01T08:05:00+07:00",
            "officer": OFFICER,
            "agency": "000.00.12.H19",
        }
    ]
    assert view["applicant"]["phone_problem"] == problem


async def test_a_usable_phone_is_not_flagged(gateway: Gateway) -> None:
    answer = await post_ok(
        gateway, event("dossier.received", applicant={"name": "An", "phone": "+84 912 345 678"})
    )
    assert answer["flags"] == []
    assert (await gateway.dossier())["flags"] == []


async def _consultation_then_pause(gateway: Gateway, answered_at: str | None) -> dict[str, Any]:
    await post_ok(gateway, event("dossier.received"))
    await post_ok(gateway, event("dossier.consultation_requested", id="yk-req"))
    if answered_at is not None:
        await post_ok(gateway, event("dossier.consultation_answered", id="yk-ans", at=answered_at))
    officer = {"id": "cb-7", "name": "Phạm Văn Dũng"}
    body = event("dossier.paused", id="pause", at="2024-04-03T09:00:00+07:00")
    return await post_ok(gateway, body | {"actor": officer})


async def test_a_pause_while_a_consultation_is_pending_is_flagged(gateway: Gateway) -> None:
    answer = await _consultation_then_pause(gateway, answered_at=None)
    assert [f["rule"] for f in answer["flags"]] == ["pause_during_consultation"]
    assert "yk-1" in answer["flags"][0]["detail"]
    (flag,) = (await gateway.dossier())["flags"]
    assert (flag["rule"], flag["event_id"]) == ("pause_during_consultation", "pause")
    assert flag["officer"] == {"id": "cb-7", "name": "Phạm Văn Dũng"}


async def test_a_pause_after_the_answer_is_not_flagged(gateway: Gateway) -> None:
    answer = await _consultation_then_pause(gateway, answered_at="2024-04-02T15:00:00+07:00")
    assert answer["flags"] == []
    assert (await gateway.dossier())["flags"] == []


async def test_a_withdrawal_without_approval_is_flagged(gateway: Gateway) -> None:
    await post_ok(gateway, event("dossier.received"))
    approved = await post_ok(
        gateway, event("dossier.withdrawn", id="w-ok", code="000.00.12.H19-240401-0002")
    )
    assert approved["flags"] == []
    answer = await post_ok(gateway, event("dossier.withdrawn", id="w", data={}))
    assert [f["rule"] for f in answer["flags"]] == ["withdrawal_without_approval"]
    (flag,) = (await gateway.dossier())["flags"]
    assert (flag["event_id"], flag["officer"]) == ("w", OFFICER)


@pytest.mark.parametrize(
    ("type_", "rule"),
    [
        ("dossier.delayed", "second_rescheduling"),
        ("dossier.supplement_requested", "second_supplement_request"),
    ],
)
async def test_a_second_occurrence_is_flagged_on_its_officer(
    gateway: Gateway, type_: str, rule: str
) -> None:
    await post_ok(gateway, event("dossier.received"))
    first = await post_ok(gateway, event(type_, id="one", at="2024-04-03T09:00:00+07:00"))
    assert first["flags"] == []
    data = (
        {"new_due_at": "2024-04-20T17:00:00+07:00", "reason": "x"} if "delayed" in type_ else None
    )
    body = event(type_, id="two", at="2024-04-05T09:00:00+07:00", data=data)
    second = await post_ok(gateway, body | {"actor": {"id": "cb-2", "name": "Lý Thị E"}})
    assert [f["rule"] for f in second["flags"]] == [rule]
    assert "number 2" in second["flags"][0]["detail"]
    view = await gateway.dossier()
    assert [(f["rule"], f["event_id"], f["officer"]) for f in view["flags"]] == [
        (rule, "two", {"id": "cb-2", "name": "Lý Thị E"})
    ]


async def test_the_older_of_two_delays_arriving_second_flags_the_newer(gateway: Gateway) -> None:
    await post_ok(gateway, event("dossier.received"))
    newer = event(
        "dossier.delayed",
        id="delay-b",
        at="2024-04-05T09:00:00+07:00",
        data={"new_due_at": "2024-04-20T17:00:00+07:00", "reason": "Chờ thẩm định"},
    )
    answer_b = await post_ok(gateway, newer | {"actor": {"id": "cb-b", "name": "Officer B"}})
    assert answer_b["flags"] == []
    older = event("dossier.delayed", id="delay-a", at="2024-04-03T09:00:00+07:00")
    answer_a = await post_ok(gateway, older | {"actor": {"id": "cb-a", "name": "Officer A"}})
    assert answer_a["superseded"] is True
    assert [f["rule"] for f in answer_a["flags"]] == ["second_rescheduling"]
    view = await gateway.dossier()
    assert [(f["rule"], f["event_id"], f["officer"], f["occurred_at"]) for f in view["flags"]] == [
        (
            "second_rescheduling",
            "delay-b",
            {"id": "cb-b", "name": "Officer B"},
            "2024-04-05T09:00:00+07:00",
        )
    ]
    # The newer date stands; the late one changes nothing but the count.
    assert view["due_at"] == "2024-04-20T17:00:00+07:00"
    assert view["reschedule_count"] == 2
    assert [e["id"] for e in view["timeline"]][1:] == ["delay-a", "delay-b"]


async def test_a_flag_moved_onto_an_earlier_event_names_that_event_s_source(
    gateway: Gateway,
) -> None:
    await post_ok(gateway, event("dossier.received"))
    newer = event(
        "dossier.delayed",
        id="delay-b",
        at="2024-04-05T09:00:00+07:00",
        data={"new_due_at": "2024-04-20T17:00:00+07:00", "reason": "Chờ thẩm định"},
    )
    status, answer, _ = await gateway.post(newer, source="dvc")
    assert (status, answer["flags"]) == (202, [])
    older = event("dossier.delayed", id="delay-a", at="2024-04-03T09:00:00+07:00")
    await post_ok(gateway, older)
    view = await gateway.dossier()
    assert [(f["rule"], f["source"], f["event_id"]) for f in view["flags"]] == [
        ("second_rescheduling", "dvc", "delay-b")
    ]
    assert ("dvc", "delay-b") in {(e["source"], e["id"]) for e in view["timeline"]}


async def test_a_late_consultation_answer_is_flagged_on_the_consulted_agency(
    gateway: Gateway,
) -> None:
    await post_ok(gateway, event("dossier.received"))
    await post_ok(gateway, event("dossier.consultation_requested", id="req"))
    consulted = {"id": "tn-1", "name": "Đỗ Văn G"}
    body = event("dossier.consultation_answered", id="ans", at="2024-04-06T11:00:00+07:00")
    answer = await post_ok(gateway, body | {"actor": consulted})
    assert answer["flags"] == [
        {
            "rule": "late_consultation_answer",
            "detail": "consultation yk-1 answered 18.0 h after its deadline",
        }
    ]
    (flag,) = (await gateway.dossier())["flags"]
    assert (flag["event_id"], flag["agency"], flag["officer"]) == (
        "ans",
        "000.00.05.H19",
        consulted,
    )


async def test_an_answer_in_time_is_not_flagged(gateway: Gateway) -> None:
    await post_ok(gateway, event("dossier.received"))
    await post_ok(gateway, event("dossier.consultation_requested"))
    answer = await post_ok(
        gateway, event("dossier.consultation_answered", at="2024-04-05T16:59:00+07:00")
    )
    assert answer["flags"] == []


# --- concurrency -------------------------------------------------------------------


async def test_concurrent_posts_are_all_recorded_once(gateway: Gateway) -> None:
    codes = [f"000.00.12.H19-240401-{n:04d}" for n in range(1, 21)]
    per_dossier = [
        ("dossier.received", "2024-04-01T08:05:00+07:00"),
        ("dossier.processing", "2024-04-02T09:00:00+07:00"),
        ("dossier.supplement_requested", "2024-04-03T09:00:00+07:00"),
        ("dossier.finished", "2024-04-10T09:15:00+07:00"),
    ]
    bodies = {
        code: [
            event(t, id=f"{code}/{i}", at=at, code=code) for i, (t, at) in enumerate(per_dossier)
        ]
        for code in codes
    }
    unique = [b for code in codes for b in bodies[code]]
    rng = random.Random(20240401)
    duplicates = rng.sample(unique, 20)
    posts = unique + duplicates
    rng.shuffle(posts)
    assert len(posts) == 100

    results = await asyncio.gather(*(gateway.post(b) for b in posts))

    answers: dict[str, list[tuple[int, Any]]] = {}
    for body, (status, answer, _) in zip(posts, results, strict=True):
        answers.setdefault(body["id"], []).append((status, answer))
    for event_id, got in answers.items():
        statuses = sorted(status for status, _ in got)
        assert statuses in ([202], [200, 202]), (event_id, got)
        assert all(answer == got[0][1] for _, answer in got)

    views = await asyncio.gather(*(gateway.dossier(code) for code in codes))
    kinds = {
        "dossier.received": "receipt",
        "dossier.supplement_requested": "supplement",
        "dossier.finished": "invitation",
    }
    for code, view in zip(codes, views, strict=True):
        assert (view["state"], view["dvcqg_status"]) == ("finished", 9)
        assert [e["id"] for e in view["timeline"]] == [b["id"] for b in bodies[code]]
        expected_notices = {
            (kinds[e["type"]], e["id"])
            for e in view["timeline"]
            if e["type"] in kinds and not e["superseded"]
        }
        stored = [(n["kind"], n["event_id"]) for n in view["notices"]]
        assert sorted(stored) == sorted(expected_notices)
        for e in view["timeline"]:
            first_answer = answers[e["id"]][0][1]
            assert first_answer["superseded"] is e["superseded"]
