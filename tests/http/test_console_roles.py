"""Role limits on every console route, read from the running console itself.

The routes and the roles allowed on each come from the mounted console's router and its
``ROLES`` mapping, so a route added later is checked without editing this file: with no
session it sends to the login page, a role not allowed gets 403, an allowed role is
never refused. Every route must be named in ``ROLES`` (a page nobody decided on fails).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.http.app import create_app
from gateway.http.console import auth
from gateway.settings import Settings
from gateway.storage.staff import add_user
from tests.console_helpers import CSRF_RE, FRIDAY, PASSWORD, Clock, Console
from tests.staff_helpers import empty_staff_tables

# One user per role, and None: no session at all.
USERS = {"hotline": "hoa", "auditor": "lan", "admin": "minh"}
# Values tried for a route's variable parts, until the route's pattern accepts them.
SAMPLES = ("1", "csv", "000.00.12.H19-260401-0001", "a")


def console_app(app: web.Application) -> web.Application:
    """The console sub-application mounted in the gateway."""
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource) and resource.canonical == "/console":
            mounted: web.Application = resource._app
            return mounted
    raise AssertionError("no console mounted under /console/")


def concrete_path(resource: web.AbstractResource) -> str:
    """A path the resource matches, its variable parts filled with sample values."""
    info = resource.get_info()
    if "path" in info:
        return str(info["path"])
    formatter, pattern = str(info["formatter"]), info["pattern"]
    names = re.findall(r"\{(\w+)\}", formatter)
    for values in itertools.product(SAMPLES, repeat=len(names)):
        path = formatter.format(**dict(zip(names, values, strict=True)))
        if pattern.fullmatch(path):
            return path
    raise AssertionError(f"no sample value fits {formatter}; add one to SAMPLES")


def routes_of(console: web.Application) -> list[tuple[str, str, str]]:
    """(name, method, path) of every route needing a session (mounted: paths are whole)."""
    found = []
    for route in console.router.routes():
        name = route.resource.name if route.resource is not None else None
        if route.method == "HEAD" or name in auth.PUBLIC:
            continue
        assert name, f"an unnamed console route: {route}"
        assert route.resource is not None
        path = concrete_path(route.resource)
        assert path.startswith("/console/"), path
        found.append((name, route.method, path))
    return sorted(found)


@pytest.fixture
async def console(settings: Settings, aiohttp_client: Any) -> Console:
    await empty_staff_tables(settings.database_url)
    clock = Clock(FRIDAY)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(
        create_app(settings, clock=clock)
    )
    console = Console(client, settings, clock, 0)
    for role, username in USERS.items():
        await add_user(console.db.writer, username, username, role, FRIDAY, password=PASSWORD)
    return console


async def form_token(console: Console) -> str:
    """The session's CSRF token (a POST is then judged on its role, not its token)."""
    response = await console.client.get("/console/login")
    found = CSRF_RE.search(await response.text())
    if found is None:  # logged in: the login page sends to the landing page
        response = await console.client.get("/console/reports")
        found = CSRF_RE.search(await response.text())
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("role", [None, "hotline", "auditor", "admin"])
async def test_every_console_route_holds_its_role_limits(
    console: Console, role: str | None
) -> None:
    app = console.client.app
    assert app is not None
    mounted = console_app(app)
    roles = mounted[auth.ROLES]
    checked = routes_of(mounted)
    assert {"reports", "audit_violations", "audit_agencies"} <= {name for name, *_ in checked}
    for name, method, path in checked:
        assert name in roles, f"route {name} has no roles in ROLES"
        console.client.session.cookie_jar.clear()
        if role is not None:
            await console.logged_in(USERS[role])
        data = {"csrf_token": await form_token(console)} if method == "POST" else None
        response = await console.client.request(method, path, data=data, allow_redirects=False)
        where = f"{method} {path} as {role}"
        if role is None:
            assert response.status == 303, where
            assert response.headers["Location"] == "/console/login", where
        elif role not in roles[name]:
            assert response.status == 403, where
            assert "Không có quyền" in await response.text(), where
        else:
            assert response.status not in (401, 403), where
