"""The events API and the read/policy APIs used by the one-stop-shop software.

Handlers stay thin: read and authenticate the body, parse it into typed events, hand them
to the ingest writer or a query, and answer.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, tzinfo
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from gateway.domain.codes import parse_dossier_code
from gateway.domain.events import body_fingerprint, parse_event
from gateway.errors import (
    AuthenticationFailed,
    FieldError,
    GatewayError,
    MalformedInput,
    NotFound,
    StorageUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from gateway.http.keys import CLOCK, DATABASE, METRICS, SETTINGS, TEXTS, WRITER
from gateway.http.problems import problem_body
from gateway.http.signing import SOURCE_HEADER, verify
from gateway.http.signing import Request as SignedRequest
from gateway.storage import queries
from gateway.storage.ingest import Outcome, Submission

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _authenticated_body(request: web.Request, *, json_body: bool) -> tuple[str, bytes]:
    if json_body and request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {request.content_type or 'none'}"
        )
    raw = await request.read()
    settings = request.app[SETTINGS]
    # Sign what is on the wire: the request target as received, percent-encoding and
    # query included, so a capture cannot be replayed for another dossier or query.
    signed = SignedRequest(request.method, request.raw_path, raw)
    try:
        source = verify(
            settings.event_sources,
            request.headers,
            signed,
            request.app[CLOCK](),
            settings.clock_skew_seconds,
            accept_v1=settings.accept_v1_signatures,
        )
    except AuthenticationFailed as exc:
        _log_refusal(request, exc)
        raise
    return source, raw


def _log_refusal(request: web.Request, exc: AuthenticationFailed) -> None:
    """One warning per refused signed request: the reason, never a signature or secret.

    The request target is logged ASCII-escaped and truncated, since an attacker chose
    it; the source id only when it is a configured one, for the same reason.
    """
    source = request.headers.get(SOURCE_HEADER, "")
    known = source in request.app[SETTINGS].event_sources
    log.warning(
        "signed request refused",
        extra={
            "reason": exc.detail,
            "method": request.method[:16],
            "target": _printable(request.raw_path, 200),
            "source": source if known else None,
            "remote": request.remote,
        },
    )


def _printable(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, anything outside ASCII escaped."""
    return text[:limit].encode("ascii", "backslashreplace").decode("ascii")


def _decode(raw: bytes) -> Any:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInput(f"the body is not UTF-8 (byte {exc.start})") from exc
    try:
        # orjson follows RFC 8259 strictly: NaN, Infinity and trailing commas are refused.
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedInput(f"the body is not valid JSON: {exc}") from exc


def _localised(answer: dict[str, Any], zone: tzinfo) -> dict[str, Any]:
    # A dossier loaded from the database carries UTC times, a new one the event's offset:
    # answer in the gateway's zone either way, like GET /v1/dossiers, replays included.
    due_at = answer["dossier"]["due_at"]
    if due_at is None:
        return answer
    local = datetime.fromisoformat(due_at).astimezone(zone).isoformat()
    return answer | {"dossier": answer["dossier"] | {"due_at": local}}


def _answer(request: web.Request, outcome: Outcome) -> web.Response:
    answer = _localised(outcome.answer, request.app[SETTINGS].tz)
    response = web.json_response(answer, status=200 if outcome.replayed else 202, dumps=_dumps)
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _count(request: web.Request, event_type: str, outcome: Outcome | Exception) -> None:
    metrics = request.app[METRICS]
    if isinstance(outcome, Outcome):
        label = "replayed" if outcome.replayed else "accepted"
        if not outcome.replayed:
            for notice in outcome.answer["notices"]:
                if not notice.get("duplicate"):
                    metrics.notices_created.labels(notice["kind"]).inc()
            for flag in outcome.answer["flags"]:
                metrics.flags.labels(flag["rule"]).inc()
    else:
        label = type(outcome).__name__
    metrics.events.labels(event_type, label).inc()


@routes.post("/v1/events")
async def post_event(request: web.Request) -> web.Response:
    source, raw = await _authenticated_body(request, json_body=True)
    body = _decode(raw)
    event = parse_event(body)
    (outcome,) = await request.app[WRITER].submit(
        [Submission(source, body_fingerprint(body), body, event)]
    )
    _count(request, event.type, outcome)
    if isinstance(outcome, Exception):
        raise outcome
    return _answer(request, outcome)


@routes.post("/v1/events/batch")
async def post_batch(request: web.Request) -> web.Response:
    source, raw = await _authenticated_body(request, json_body=True)
    body = _decode(raw)
    limit = request.app[SETTINGS].max_batch_events
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise ValidationFailed([FieldError("events", "must be a list of events")])
    items: list[Any] = body["events"]
    if not items:
        raise ValidationFailed([FieldError("events", "must not be empty")])
    if len(items) > limit:
        raise ValidationFailed([FieldError("events", f"must hold at most {limit} events")])

    results: list[dict[str, Any]] = [{} for _ in items]
    submissions: list[tuple[int, Submission]] = []
    for index, item in enumerate(items):
        item_id = item.get("id") if isinstance(item, dict) else None
        try:
            event = parse_event(item)
        except ValidationFailed as exc:
            _, problem = problem_body(_prefixed(exc, index), request.path)
            results[index] = {"index": index, "id": item_id, "status": 422, "problem": problem}
            continue
        submissions.append(
            (index, Submission(source, body_fingerprint(item), item, event, lane="bulk"))
        )

    outcomes = await request.app[WRITER].submit([s for _, s in submissions])
    for (index, submission), outcome in zip(submissions, outcomes, strict=True):
        _count(request, submission.event.type, outcome)
        entry: dict[str, Any] = {"index": index, "id": submission.event.id}
        if isinstance(outcome, Outcome):
            answer = _localised(outcome.answer, request.app[SETTINGS].tz)
            entry |= {"status": 200 if outcome.replayed else 202, "answer": answer}
            if outcome.replayed:
                entry["replayed"] = True
        else:
            error = (
                outcome if isinstance(outcome, GatewayError) else StorageUnavailable(str(outcome))
            )
            status, problem = problem_body(error, request.path)
            entry |= {"status": status, "problem": problem}
        results[index] = entry
    summary = {
        "accepted": sum(r["status"] == 202 for r in results),
        "replayed": sum(r["status"] == 200 for r in results),
        "rejected": sum(r["status"] >= 400 for r in results),
    }
    return web.json_response({"results": results, **summary}, dumps=_dumps)


def _prefixed(exc: ValidationFailed, index: int) -> ValidationFailed:
    return ValidationFailed(
        [
            FieldError(f"events[{index}]" + (f".{e.field}" if e.field else ""), e.message)
            for e in exc.errors
        ]
    )


def _dossier_code(raw: str, field: str) -> str:
    try:
        return str(parse_dossier_code(raw.strip()))
    except ValueError as exc:
        raise ValidationFailed([FieldError(field, f"is not a dossier code: {exc}")]) from exc


@routes.get("/v1/dossiers/{code}")
async def get_dossier(request: web.Request) -> web.Response:
    await _authenticated_body(request, json_body=False)
    code = _dossier_code(request.match_info["code"], "code")
    try:
        async with request.app[DATABASE].reader.connect() as conn:
            view = await queries.dossier_view(conn, code, request.app[SETTINGS].tz)
    except (SQLAlchemyError, OSError) as exc:
        raise StorageUnavailable("the database is unavailable") from exc
    if view is None:
        raise NotFound(f"no dossier {code}")
    return web.json_response(view, dumps=_dumps)


@routes.post("/v1/checks/pause")
async def check_pause(request: web.Request) -> web.Response:
    _, raw = await _authenticated_body(request, json_body=True)
    body = _decode(raw)
    if not isinstance(body, dict) or not isinstance(body.get("dossier"), str):
        raise ValidationFailed([FieldError("dossier", "is required: the dossier code")])
    code = _dossier_code(body["dossier"], "dossier")
    settings = request.app[SETTINGS]
    now = datetime.fromtimestamp(request.app[CLOCK](), UTC)
    try:
        async with request.app[DATABASE].reader.connect() as conn:
            answer = await queries.pause_check(conn, code, now, settings.tz)
    except (SQLAlchemyError, OSError) as exc:
        raise StorageUnavailable("the database is unavailable") from exc
    if answer is None:
        raise NotFound(f"no dossier {code}")
    answer["message"] = request.app[TEXTS].pause_message(answer, settings.tz)
    return web.json_response(answer)
