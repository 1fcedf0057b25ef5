"""The console's test rig: a logged-in browser-less client on the real application.

``console`` (in ``tests/http/conftest.py``) starts the gateway on a test server with real
Redis and each database, with one user per role (and a disabled one), all with
:data:`PASSWORD`, and one known dossier :data:`CODE`; the gateway's clock is moved by the
test.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from gateway.domain.calendar import DEFAULT_OVERRIDES_FILE, WorkingCalendar, load_overrides
from gateway.http.app import create_app
from gateway.http.console.sessions import COOKIE
from gateway.http.keys import DATABASE
from gateway.http.signing import signed_headers
from gateway.settings import Settings
from gateway.storage import reports as report_store
from gateway.storage.db import Database
from gateway.storage.staff import StaffAction, add_user, disable_user, list_actions
from tests.helpers import SOURCES
from tests.staff_helpers import empty_staff_tables, seed_dossier

CODE = "000.00.12.H19-260401-0001"
PHONE = "+84912345678"
MASKED = "+849******78"
FRIDAY = datetime(2026, 4, 24, 9, 0, tzinfo=UTC)
PASSWORD = "mật khẩu đủ dài 1022"
USERS = {"hoa": "hotline", "lan": "auditor", "minh": "admin", "cu": "hotline"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """The gateway's clock, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at.timestamp()


@dataclasses.dataclass
class Console:
    client: TestClient[web.Request, web.Application]
    settings: Settings
    clock: Clock
    audit_before: int

    @property
    def db(self) -> Database:
        app = self.client.app
        assert app is not None
        return app[DATABASE]

    def session_id(self) -> str | None:
        for cookie in self.client.session.cookie_jar:
            if cookie.key == COOKIE:
                return cookie.value
        return None

    async def session_stored(self, identity: str) -> bool:
        redis = Redis.from_url(self.settings.redis_url)
        try:
            key = f"{self.settings.redis_key_prefix}console:session:{identity}"
            return bool(await redis.exists(key))
        finally:
            await redis.aclose()

    async def csrf(self, path: str = "/console/login") -> str:
        response = await self.client.get(path, allow_redirects=False)
        assert response.status == 200, await response.text()
        found = CSRF_RE.search(await response.text())
        assert found is not None
        return found.group(1)

    async def login(
        self, username: str, password: str = PASSWORD, *, csrf: str | None = None
    ) -> ClientResponse:
        token = csrf if csrf is not None else await self.csrf()
        return await self.client.post(
            "/console/login",
            data={"username": username, "password": password, "csrf_token": token},
            allow_redirects=False,
        )

    async def logged_in(self, username: str) -> None:
        response = await self.login(username)
        assert response.status == 303, await response.text()

    async def audit(self) -> list[StaffAction]:
        """The staff audit log's entries written by this test, oldest first."""
        actions, _ = await list_actions(self.db.reader, limit=500, after=None)
        return sorted((a for a in actions if a.id > self.audit_before), key=lambda a: a.id)


async def start_console(settings: Settings, aiohttp_client: Any) -> Console:
    """The gateway with the console's users and dossier (the ``console`` fixture)."""
    await empty_staff_tables(settings.database_url)
    clock = Clock(FRIDAY)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(
        create_app(settings, clock=clock)
    )
    db = client.app[DATABASE]
    # The PostgreSQL schema is shared by the session's tests: only later entries are ours.
    earlier, _ = await list_actions(db.reader, limit=1, after=None)
    for username, role in USERS.items():
        await add_user(db.writer, username, f"Cán bộ {username}", role, FRIDAY, password=PASSWORD)
    await disable_user(db.writer, "cu", FRIDAY)
    await seed_dossier(db.writer, CODE)
    return Console(client, settings, clock, earlier[0].id if earlier else 0)


async def post_events(console: Console, *bodies: dict[str, Any]) -> None:
    """Post each event through the signed events API at the console's clock."""
    for body in bodies:
        raw = json.dumps(body, ensure_ascii=False).encode()
        headers = signed_headers("onestop", SOURCES["onestop"], raw, console.clock.at.timestamp())
        headers["Content-Type"] = "application/json"
        response = await console.client.post("/v1/events", data=raw, headers=headers)
        assert response.status == 202, await response.text()


async def citizen_report(
    console: Console, *, code: str = CODE, description: str = "Tôi chưa nhận được giấy phép"
) -> report_store.ReportRow:
    """A false-closure report the bot took on the OA from citizen ``u-1`` (phone PHONE)."""
    report, _ = await report_store.create_report(
        console.db.writer,
        kind="false_closure",
        source="zalo",
        dossier_code=code,
        description=description,
        zalo_user_id="u-1",
        phone_e164=PHONE,
        calendar=WorkingCalendar(load_overrides(DEFAULT_OVERRIDES_FILE)),
        answer_working_days=5,
        now=FRIDAY,
    )
    return report
