"""Schemathesis against the gateway's OpenAPI document, on a real gateway on loopback.

The document is the one ``GET /v1/openapi.json`` serves (built here with the fuzzed
gateway's settings; a test checks the two are the same). For every operation it lists,
schemathesis sends the document's examples, the boundary cases of its coverage phase
(every parameter and field at and past its limits, missing, of the wrong type; methods
the path does not have) and generated requests, valid and invalid, against the gateway
(real SQLite file, real Redis). Requests carry working credentials: events are signed
with ``v2=`` over the request as sent, staff routes get an admin token, operations the
ops token, Zalo's webhook its mac. Requests whose credentials schemathesis removed or
spoiled on purpose go out without them and must be refused: 401, unless the path,
method or body is refused before credentials are looked at (404, 405, 413, 415).

Every answer must be under 500; a 4xx must be ``application/problem+json`` whose status
is the answer's and, on 422, name each faulty field; every answer must be a status the
document lists for the operation, in a media type it lists, with a body its schema
accepts and the headers it promises; schema-invalid requests must be refused.

Reproducible: a fixed seed, derandomized, no example database. About 1,450 requests,
some 15 s on an idle 2-core machine. What it found is kept below as plain requests.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Final

import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.http.openapi import OPENAPI_PATH, document
from gateway.http.signing import signed_headers_v2
from gateway.settings import Settings
from providers.zalo.webhook import sign as zalo_sign
from tests.fuzz.conftest import MAPPING, OA_KEY, OPS_TOKEN, RECEIPT_SECRET, LoopbackGateway
from tests.helpers import SOURCES

if TYPE_CHECKING:
    from schemathesis.specs.openapi.schemas import OpenApiCase

SOURCE: Final = "onestop"
PROBLEM: Final = "application/problem+json"
DOCUMENT: Final = document(Settings.from_mapping(MAPPING | {"DATABASE_URL": "sqlite:///unused"}))

# Examples per operation in the generation phase. The events routes have a large body
# schema (thirteen event types): their coverage phase alone is over a thousand requests,
# so they get generated requests only, more of them.
MAX_EXAMPLES: Final = 12
EVENTS_MAX_EXAMPLES: Final = 60
CONFIG: Final = schemathesis.Config.from_dict(
    {
        "seed": 20260424,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
        },
        "operations": [
            {
                "include-path-regex": "^/v1/events",
                "phases": {"coverage": {"enabled": False}},
                "generation": {"max-examples": EVENTS_MAX_EXAMPLES},
            }
        ],
        "suppress-health-check": ["all"],
    }
)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)

# The answer against the document; "schema-valid data accepted" is not among them: a
# valid shape may still be refused for what the database holds (an unknown dossier, a
# workflow move) or for rules across fields the document states in words.
CHECKS: Final = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def _raw_body(request: requests.PreparedRequest) -> bytes:
    body = request.body or b""
    assert isinstance(body, (str, bytes)), "the case's body is serialised in full"
    return body.encode() if isinstance(body, str) else body


class _SignV2(requests.auth.AuthBase):
    """The events API's v2 signature over the request exactly as it goes out."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        assert request.method is not None
        secret = SOURCES[SOURCE]
        request.headers.update(
            signed_headers_v2(
                SOURCE, secret, request.method, request.path_url, _raw_body(request), time.time()
            )
        )
        return request


class _SignZalo(requests.auth.AuthBase):
    """Zalo's mac over the body, with the body's own app_id and timestamp."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        raw = _raw_body(request)
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        fields = payload if isinstance(payload, dict) else {}
        app_id, stamp = fields.get("app_id"), fields.get("timestamp")
        mac = zalo_sign(raw, app_id if isinstance(app_id, str) else "", str(stamp), OA_KEY)
        request.headers["X-ZEvent-Signature"] = f"mac={mac}"
        return request


def _schemes(case: OpenApiCase) -> set[str]:
    security = case.operation.definition.raw.get("security", [])
    return {name for requirement in security for name in requirement}


def _with_credentials(case: OpenApiCase, gateway: LoopbackGateway) -> dict[str, Any]:
    """Put working credentials on ``case``; the transport arguments that sign it."""
    schemes = _schemes(case)
    if "secret" in (case.path_parameters or {}):
        case.path_parameters["secret"] = RECEIPT_SECRET
    signer: requests.auth.AuthBase | None = None
    if "eventSource" in schemes:
        signer = _SignV2()
    elif "zaloSignature" in schemes:
        signer = _SignZalo()
    elif "staffToken" in schemes:
        case.headers["Authorization"] = f"Bearer {gateway.admin_token}"
    elif "opsToken" in schemes:
        case.headers["Authorization"] = f"Bearer {OPS_TOKEN}"
    return {"auth": signer} if signer is not None else {}


def _assert_problem(response: schemathesis.Response) -> None:
    """A 4xx is RFC 9457 problem+json of its own status; a 422 names every field."""
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith(PROBLEM), (response.status_code, content_type, response.text)
    body = response.json()
    assert body["status"] == response.status_code, body
    assert body["type"].startswith("urn:tthc:problem:") and body["detail"], body
    if response.status_code == 422:
        assert body["errors"], body
        for error in body["errors"]:
            assert error["message"], body
            # The whole body is named "" only when it is not a JSON object at all.
            assert error["field"] or error["message"].startswith("the body must be"), body
            assert error["field"] in body["detail"], body


@schema.parametrize()
def test_the_api_answers_as_documented(case: OpenApiCase, loopback: LoopbackGateway) -> None:
    unauthenticated = bool(_schemes(case)) and case.operation.schema.is_security_param_negated(case)
    transport = {} if unauthenticated else _with_credentials(case, loopback)
    response = case.call(base_url=loopback.url, session=loopback.session, **transport)
    assert response.status_code < 500, response.text
    if 400 <= response.status_code < 500:
        _assert_problem(response)
    if unauthenticated:
        # Refused before any credential is looked at: no such route or method, body limits.
        assert response.status_code in (401, 404, 405, 413, 415), response.text
    case.validate_response(response, checks=CHECKS)


def test_the_fuzzed_document_is_the_served_one(loopback: LoopbackGateway) -> None:
    served = loopback.session.get(loopback.url + OPENAPI_PATH, timeout=10)
    assert served.status_code == 200
    assert served.json() == DOCUMENT


# What this test found, kept as plain requests: each was a 500.
FOUND: Final = [
    # A sanction that is not a string was looked up in a set (unhashable).
    ("POST", "/v1/audit/violations/1/decisions", {"decision": "applied", "sanction": {}}),
    ("POST", "/v1/audit/violations/1/decisions", {"decision": "applied", "sanction": []}),
    # Year 0 (and the month after 9999-12) has no first day.
    ("GET", "/v1/audit/agencies?month=0000-01", None),
    ("GET", "/v1/audit/officers?from=0000-12&to=0001-01", None),
    ("GET", "/v1/audit/agencies?month=9999-12", None),
]


@pytest.mark.parametrize(("method", "target", "body"), FOUND)
def test_what_fuzzing_found_is_refused_by_field(
    loopback: LoopbackGateway, method: str, target: str, body: Any
) -> None:
    response = loopback.session.request(
        method,
        loopback.url + target,
        json=body,
        headers={"Authorization": f"Bearer {loopback.admin_token}"},
        timeout=10,
    )
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"].startswith(PROBLEM)
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields <= {"sanction", "month", "from", "to"} and fields, fields
