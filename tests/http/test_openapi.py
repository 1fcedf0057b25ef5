"""The OpenAPI 3.1 document (GET /v1/openapi.json) and its reference page (GET /v1/docs).

The document must be valid OpenAPI 3.1; its paths and methods must be exactly the app's
routes outside the console and the citizen page; every operation, called for real with
the credentials it names (and its example body, if it has one), must answer a status the
document lists, in a media type it lists, with a body its schema accepts. The event
schemas must agree with the event parser on valid and invalid events.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import pytest
from aiohttp import ClientResponse
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from gateway.domain.events import EVENT_TYPES, parse_event
from gateway.errors import ValidationFailed
from gateway.http.openapi import document as build_document
from gateway.http.signing import signed_headers_v2
from gateway.settings import Settings
from tests.helpers import SOURCES, event
from tests.http.test_api_security import SAMPLES, api_routes
from tests.http.test_staff_api import StaffApi, start
from tests.staff_helpers import seed_handoff

# Not APIs: Vietnamese HTML for citizens (own sessions, CSRF) and the staff console.
NOT_APIS: Final = ("/console", "/tra-cuu", "/l/")
# The SMS receipt route takes any method and answers GET and POST (405 otherwise).
ANY_METHOD: Final = frozenset({"GET", "POST"})
# Query strings that make a listing answer 200 rather than 422 (required parameters).
QUERIES: Final = {
    "/v1/audit/agencies": "?month=2026-04",
    "/v1/audit/officers": "?month=2026-04",
    "/v1/audit/consultations": "?state=overdue",
}
METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# The document without a running gateway, for the tests of its schemas alone.
OFFLINE: Final = Settings.from_mapping(
    {
        "DATABASE_URL": "sqlite:///unused.sqlite3",
        "EVENT_SOURCES": ",".join(f"{k}:{v}" for k, v in SOURCES.items()),
        "MAX_BATCH_EVENTS": "7",
    }
)


@pytest.fixture
async def api(settings: Settings, aiohttp_client: Any) -> StaffApi:
    return await start(settings, aiohttp_client)


async def fetch_document(api: StaffApi) -> dict[str, Any]:
    response = await api.client.get("/v1/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    document: dict[str, Any] = await response.json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) of every operation, in the document's order."""
    return [
        (method.upper(), path, item[method])
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    ]


def validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator of ``schema`` whose $refs resolve in ``document``."""
    root = schema | {"components": document["components"]}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_errors(document: dict[str, Any], schema: dict[str, Any], value: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator(document, schema).iter_errors(value)
    ]


async def test_the_document_is_valid_openapi_3_1(api: StaffApi) -> None:
    document = await fetch_document(api)
    assert document["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(document).validate()
    # Every operation says who may call it and can be told apart.
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))
    for method, path, operation in operations(document):
        assert "security" in operation, (method, path)
        assert operation["tags"][0] in {t["name"] for t in document["tags"]}, (method, path)


async def test_routes_and_document_agree(api: StaffApi) -> None:
    app = api.client.app
    assert app is not None
    routes: set[tuple[str, str]] = set()
    for method, pattern in api_routes(app):
        if pattern.startswith(NOT_APIS):
            continue
        routes |= {(m, pattern) for m in ANY_METHOD} if method == "*" else {(method, pattern)}
    documented = {(method, path) for method, path, _ in operations(await fetch_document(api))}
    assert routes - documented == set(), "routes missing from the document"
    assert documented - routes == set(), "documented operations the app does not have"


async def test_the_any_method_route_refuses_what_is_not_documented(api: StaffApi) -> None:
    path = "/webhooks/sms/{provider}/{secret}".format(**SAMPLES)
    response = await api.client.put(path, data=b"")
    assert response.status == 405
    assert response.content_type == "application/problem+json"


def test_settings_limits_are_in_the_document() -> None:
    document = build_document(OFFLINE)
    batch = document["components"]["schemas"]["Batch"]["properties"]["events"]
    assert batch["maxItems"] == 7
    assert "MAX_BATCH_EVENTS (7)" in document["paths"]["/v1/events/batch"]["post"]["description"]


async def _call(api: StaffApi, method: str, path: str, operation: dict[str, Any]) -> ClientResponse:
    """One real request for ``operation``, with the credentials it names."""
    target = path.format(**SAMPLES) + QUERIES.get(path, "")
    body = b""
    headers: dict[str, str] = {}
    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if media is not None:
        body = json.dumps(media.get("example", {}), ensure_ascii=False).encode()
        headers["Content-Type"] = "application/json"
    schemes = {name for requirement in operation["security"] for name in requirement}
    if "eventSource" in schemes:
        secret = SOURCES["onestop"]
        headers |= signed_headers_v2("onestop", secret, method, target, body, api.clock())
    elif "staffToken" in schemes:
        headers["Authorization"] = f"Bearer {api.tokens['minh']}"  # admin: every role
    return await api.client.request(method, target, data=body, headers=headers)


async def test_every_operation_answers_as_documented(api: StaffApi) -> None:
    # Something behind the handoff routes, so a reply is queued rather than refused.
    handoff = await seed_handoff(api.db.writer, "zalo-user-1")
    assert str(handoff) == SAMPLES["id"]
    document = await fetch_document(api)
    seen: dict[str, set[int]] = {}
    for method, path, operation in operations(document):
        response = await _call(api, method, path, operation)
        where = f"{method} {path} -> {response.status}"
        answer = operation["responses"].get(str(response.status))
        assert answer is not None, (where, await response.text())
        content = answer.get("content", {})
        assert response.content_type in content, (where, response.content_type)
        if response.content_type in ("application/json", "application/problem+json"):
            body = await response.json(content_type=None)
            errors = schema_errors(document, content[response.content_type]["schema"], body)
            assert errors == [], (where, errors, body)
        for header in answer.get("headers", {}):
            assert header in response.headers, (where, header)
        seen.setdefault(response.content_type, set()).add(response.status)
    # The run reached success answers, not only refusals.
    assert {200, 201, 202} <= seen["application/json"], seen


def test_examples_match_their_schemas() -> None:
    document = build_document(OFFLINE)
    for method, path, operation in operations(document):
        for media in operation.get("requestBody", {}).get("content", {}).values():
            if "example" in media:
                errors = schema_errors(document, media["schema"], media["example"])
                assert errors == [], (method, path, errors)


@pytest.mark.parametrize("type_", list(EVENT_TYPES))
def test_event_schema_and_parser_agree(type_: str) -> None:
    document = build_document(OFFLINE)
    schema = {"$ref": "#/components/schemas/Event"}
    valid = event(type_)
    parse_event(valid)
    assert schema_errors(document, schema, valid) == []
    # A required field left out: the parser and the schema both refuse it.
    for field in ("id", "occurred_at", "dossier"):
        broken = {k: v for k, v in valid.items() if k != field}
        with pytest.raises(ValidationFailed):
            parse_event(broken)
        assert schema_errors(document, schema, broken) != [], (type_, field)
    required_data = [
        name
        for name, value in valid["data"].items()
        if isinstance(value, str) and type_ != "dossier.finished"
    ]
    for name in required_data:
        broken = valid | {"data": {k: v for k, v in valid["data"].items() if k != name}}
        with pytest.raises(ValidationFailed):
            parse_event(broken)
        assert schema_errors(document, schema, broken) != [], (type_, name)


async def test_the_reference_page_shows_every_operation(api: StaffApi) -> None:
    document = await fetch_document(api)
    response = await api.client.get("/v1/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    for method, path, operation in operations(document):
        assert f'id="op-{operation["operationId"]}"' in page, (method, path)
        assert f"<code>{path}</code>" in page, path
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name}"' in page, name
    # Readable anywhere: no scripts, nothing fetched from another host.
    assert "<script" not in page.lower()
    assert re.search(r"""(src|href)=["']?(https?:)?//""", page) is None
    # The signing string is explained where integrators read.
    assert "&lt;X-Timestamp&gt;.&lt;METHOD&gt;.&lt;path and query&gt;.&lt;raw body&gt;" in page
