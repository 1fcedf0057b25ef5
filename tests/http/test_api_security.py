"""Who may call each API route, read from the running gateway's router.

Every route of the gateway (the console, mounted under ``/console/``, has its own table
in ``test_console_roles.py``) must be listed here in one of five classes, with the roles
the README's contracts give it: public operations, the citizen page (open, with its own
proofs), routes signed by an event source,
webhooks with their own secret or signature, and staff routes with a bearer token and
roles. A route added later and not classified fails the first test, so nobody adds an
endpoint without deciding who may call it.
"""

from __future__ import annotations

from typing import Any, Final

import pytest
from aiohttp import web

from gateway.settings import Settings
from tests.http.test_staff_api import CODE, StaffApi, start

HOTLINE: Final = frozenset({"hotline"})
AUDITOR: Final = frozenset({"auditor"})
ADMIN: Final = frozenset({"admin"})
READERS: Final = HOTLINE | AUDITOR | ADMIN
WRITERS: Final = HOTLINE | ADMIN
AUDITORS: Final = AUDITOR | ADMIN

# Open to anyone: the root page, the probes operators and load balancers call
# (/readyz without the ops token says only "ok" or "unavailable"), and the API's
# OpenAPI document and reference page.
PUBLIC: Final = {
    ("GET", "/"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/docs"),
}
# Operators' routes: Authorization: Bearer <OPS_TOKEN> (404 while OPS_TOKEN is unset).
OPS: Final = {("GET", "/metrics")}
# Signed by an event source (HMAC over the request, see the events contract).
SIGNED: Final = {
    ("POST", "/v1/events"),
    ("POST", "/v1/events/batch"),
    ("GET", "/v1/dossiers/{code}"),
    ("POST", "/v1/checks/pause"),
}
# Vendors' callbacks: a secret in the path (SMS receipts) or Zalo's signature.
WEBHOOKS: Final = {("*", "/webhooks/sms/{provider}/{secret}"), ("POST", "/webhooks/zalo")}
# The citizen page: open to anyone, each answer limited to what the visit proved (its own
# rules and tests: tests/http/test_citizen_page.py); no staff token opens more of it.
CITIZEN: Final = {
    ("GET", "/tra-cuu"),
    ("POST", "/tra-cuu"),
    ("POST", "/tra-cuu/ket-qua"),
    ("POST", "/tra-cuu/phan-anh"),
    ("POST", "/tra-cuu/danh-gia"),
    ("GET", "/l/{token}"),
    ("POST", "/l/{token}"),
}
# Staff routes and the roles allowed on each, as the README's staff contracts say.
STAFF: Final[dict[tuple[str, str], frozenset[str]]] = {
    ("GET", "/v1/reports"): READERS,
    ("POST", "/v1/reports"): WRITERS,
    ("GET", "/v1/reports/{id}"): READERS,
    ("POST", "/v1/reports/{id}/transitions"): WRITERS,
    ("GET", "/v1/handoffs"): WRITERS,
    ("GET", "/v1/handoffs/{id}"): WRITERS,
    ("POST", "/v1/handoffs/{id}/replies"): WRITERS,
    ("POST", "/v1/handoffs/{id}/close"): WRITERS,
    ("GET", "/v1/audit/violations"): AUDITORS,
    ("GET", "/v1/audit/violations/{id}"): AUDITORS,
    ("POST", "/v1/audit/violations/{id}/decisions"): AUDITORS,
    ("GET", "/v1/audit/agencies"): AUDITORS,
    ("GET", "/v1/audit/officers"): AUDITORS,
    ("GET", "/v1/audit/consultations"): AUDITORS,
    ("GET", "/v1/audit/warnings"): AUDITORS,
}
SAMPLES: Final = {"id": "1", "code": CODE, "provider": "esms", "secret": "not-the-secret"}
USER_OF: Final = {"hotline": "hoa", "auditor": "lan", "admin": "minh"}


def api_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path pattern) of every route of the gateway outside the console."""
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        pattern = str(info.get("path") or info.get("formatter") or "")
        if route.method == "HEAD" or pattern.startswith("/console") or not pattern:
            continue
        found.add((route.method, pattern))
    return found


def concrete(pattern: str) -> str:
    return pattern.format(**SAMPLES)


@pytest.fixture
async def api(settings: Settings, aiohttp_client: Any) -> StaffApi:
    return await start(settings, aiohttp_client)


async def test_every_route_is_classified(api: StaffApi) -> None:
    app = api.client.app
    assert app is not None
    classified = PUBLIC | CITIZEN | OPS | SIGNED | WEBHOOKS | set(STAFF)
    assert api_routes(app) == classified


async def test_signed_routes_refuse_an_unsigned_request(api: StaffApi) -> None:
    for method, pattern in sorted(SIGNED):
        path = concrete(pattern)
        # A staff token is no signature: it must not open an integrators' route either.
        for headers in ({}, {"Authorization": f"Bearer {api.tokens['minh']}"}):
            response = await api.client.request(method, path, json={}, headers=headers)
            assert response.status == 401, (method, path, await response.text())


async def test_ops_routes_refuse_a_caller_without_the_ops_token(api: StaffApi) -> None:
    for method, pattern in sorted(OPS):
        # A staff token is not the ops token either.
        for headers in ({}, {"Authorization": f"Bearer {api.tokens['minh']}"}):
            response = await api.client.request(method, pattern, headers=headers)
            assert response.status in (401, 404), (method, pattern)


async def test_webhooks_refuse_a_caller_without_their_secret(api: StaffApi) -> None:
    response = await api.client.post(concrete("/webhooks/sms/{provider}/{secret}"), data=b"")
    assert response.status == 401
    # Zalo is not configured in these settings: the route is not there at all.
    response = await api.client.post("/webhooks/zalo", json={})
    assert response.status in (401, 404)


@pytest.mark.parametrize("role", [None, "hotline", "auditor", "admin"])
async def test_staff_routes_hold_their_roles(api: StaffApi, role: str | None) -> None:
    for (method, pattern), allowed in sorted(STAFF.items()):
        path = concrete(pattern)
        user = USER_OF[role] if role else None
        body = {} if method == "POST" else None
        response, answer = await api.call(method, path, user=user, body=body)
        where = f"{method} {path} as {role}"
        if role is None:
            assert response.status == 401, where
            assert response.headers["WWW-Authenticate"].startswith("Bearer "), where
        elif role not in allowed:
            assert response.status == 403, (where, answer)
        else:
            assert response.status not in (401, 403), (where, answer)
