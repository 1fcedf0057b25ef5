"""The staff console (the README's console contract): sessions, CSRF, login, the queue.

The real application on a test server, real Redis, both databases. Passwords are made
with the storage function; the gateway's clock is moved by the test for the timeouts.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from gateway.http.app import create_app
from gateway.http.console.auth import ACCOUNT_FAILURES, ADDRESS_FAILURES
from gateway.http.console.sessions import COOKIE
from gateway.settings import Settings
from gateway.storage.staff import disable_user, list_users, set_password
from gateway.storage.tables import staff_audit_log, staff_users
from tests.console_helpers import (
    CODE,
    CSRF_RE,
    FRIDAY,
    MASKED,
    PASSWORD,
    PHONE,
    USERS,
    Console,
    citizen_report,
)
from tests.staff_helpers import rows


def assert_login_page(response: ClientResponse) -> None:
    assert response.status == 303
    assert response.headers["Location"] == "/console/login"


# --- login --------------------------------------------------------------------------------


async def test_login_page_is_a_vietnamese_form_with_a_csrf_token(console: Console) -> None:
    response = await console.client.get("/console/login")
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    assert '<html lang="vi">' in html
    assert '<label for="username">Tên đăng nhập</label>' in html
    assert '<label for="password">Mật khẩu</label>' in html
    assert 'name="username"' in html and 'autocomplete="username"' in html
    assert 'name="password" type="password"' in html
    assert 'autocomplete="current-password"' in html
    assert CSRF_RE.search(html)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/console/"
    assert not cookie["secure"]  # PUBLIC_BASE_URL is http here
    css = await console.client.get("/console/static/console.css")
    assert css.status == 200 and css.content_type == "text/css"


async def test_static_files_carry_an_etag_and_nothing_outside_their_folder(
    console: Console,
) -> None:
    icon = await console.client.get("/console/static/favicon.svg")
    assert icon.status == 200 and icon.content_type == "image/svg+xml"
    assert (await icon.read()).startswith(b"<svg")
    etag = icon.headers["ETag"]
    again = await console.client.get("/console/static/favicon.svg", headers={"If-None-Match": etag})
    assert again.status == 304 and not await again.read()
    for name in ("missing.css", "..%2F..%2Fgateway%2Fsettings.py", "base.html.j2"):
        response = await console.client.get(f"/console/static/{name}")
        assert response.status == 404, name


async def test_login_lands_on_the_queue_under_a_new_session_id(console: Console) -> None:
    await citizen_report(console)
    await console.csrf()
    anonymous = console.session_id()
    assert anonymous is not None and await console.session_stored(anonymous)
    response = await console.login("hoa")
    assert response.status == 303
    assert response.headers["Location"] == "/console/reports"
    logged = console.session_id()
    assert logged is not None and logged != anonymous  # no session fixation
    assert not await console.session_stored(anonymous)
    assert await console.session_stored(logged)
    page = await console.client.get("/console/reports")
    assert page.status == 200
    html = await page.text()
    assert "Cán bộ hoa" in html and CODE in html
    assert MASKED in html and PHONE not in html  # revealed only on the report page, audited
    assert "24/04/2026" in html  # received, in Vietnam's time
    assert "Báo kết thúc sai" in html and "Mới" in html
    hoa = next(u for u in await list_users(console.db.reader) if u.username == "hoa")
    [entry] = await console.audit()
    assert (entry.action, entry.username, entry.staff_id) == ("login", "hoa", hoa.id)
    assert entry.remote_addr == "127.0.0.1"
    assert PASSWORD not in repr(await console.audit())


@pytest.mark.parametrize("role", ["hotline", "auditor", "admin"])
async def test_every_role_lands_on_the_report_queue(console: Console, role: str) -> None:
    username = next(u for u, r in USERS.items() if r == role and u != "cu")
    response = await console.login(username)
    assert (response.status, response.headers["Location"]) == (303, "/console/reports")


@pytest.mark.parametrize(
    ("username", "password"),
    [("hoa", "not the password"), ("nobody", PASSWORD), ("cu", PASSWORD), ("hoa", ""), ("", "")],
)
async def test_a_wrong_login_shows_the_form_again(
    console: Console, username: str, password: str
) -> None:
    response = await console.login(username, password)
    assert response.status == 200
    html = await response.text()
    assert "Tên đăng nhập hoặc mật khẩu không đúng." in html
    assert f'value="{username}"' in html
    assert password not in html or not password
    assert_login_page(await console.client.get("/console/reports", allow_redirects=False))
    [entry] = await console.audit()
    assert (entry.action, entry.username) == ("login_failed", username)
    assert password not in repr(entry) or not password


async def test_an_account_is_throttled_after_repeated_failures(console: Console) -> None:
    for _ in range(ACCOUNT_FAILURES):
        assert (await console.login("hoa", "wrong password")).status == 200
    # Even the right password is refused now, saying until when.
    response = await console.login("hoa")
    assert response.status == 429
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60
    html = await response.text()
    assert "Đã đăng nhập sai quá nhiều lần. Vui lòng thử lại sau 16:" in html
    assert "24/04/2026" in html
    assert_login_page(await console.client.get("/console/reports", allow_redirects=False))
    # Another account from the same address is not affected.
    assert (await console.login("lan")).status == 303
    actions = [a.action for a in await console.audit()]
    assert actions == ["login_failed"] * ACCOUNT_FAILURES + ["login_throttled", "login"]


async def test_an_address_is_throttled_after_many_failures(console: Console) -> None:
    for n in range(ADDRESS_FAILURES):
        assert (await console.login(f"guess{n}", "wrong password")).status == 200
    assert (await console.login("minh")).status == 429


async def test_a_success_clears_the_accounts_failures(console: Console) -> None:
    for _ in range(ACCOUNT_FAILURES - 1):
        await console.login("hoa", "wrong password")
    await console.logged_in("hoa")
    console.client.session.cookie_jar.clear()
    for _ in range(ACCOUNT_FAILURES - 1):
        assert (await console.login("hoa", "wrong password")).status == 200


# --- CSRF ---------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "forged", None])
async def test_a_login_without_the_forms_token_is_refused(
    console: Console, token: str | None
) -> None:
    await console.csrf()
    data = {"username": "hoa", "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    response = await console.client.post("/console/login", data=data, allow_redirects=False)
    assert response.status == 403
    assert "Biểu mẫu đã hết hạn" in await response.text()
    assert_login_page(await console.client.get("/console/reports", allow_redirects=False))
    assert await console.audit() == []


async def test_a_token_from_another_session_is_refused(console: Console) -> None:
    other = await console.csrf()
    console.client.session.cookie_jar.clear()
    await console.csrf()
    assert (await console.login("hoa", csrf=other)).status == 403


async def test_logout_needs_the_token_and_ends_the_session(console: Console) -> None:
    await console.logged_in("hoa")
    session = console.session_id()
    assert session is not None
    refused = await console.client.post("/console/logout", allow_redirects=False)
    assert refused.status == 403
    assert "Biểu mẫu đã hết hạn" in await refused.text()
    token = await console.csrf("/console/reports")
    response = await console.client.post(
        "/console/logout", data={"csrf_token": token}, allow_redirects=False
    )
    assert_login_page(response)
    assert not await console.session_stored(session)
    assert console.session_id() is None
    assert_login_page(await console.client.get("/console/reports", allow_redirects=False))
    # The old cookie, replayed, opens nothing.
    console.client.session.cookie_jar.update_cookies({COOKIE: session})
    assert_login_page(await console.client.get("/console/reports", allow_redirects=False))
    assert [a.action for a in await console.audit()] == ["login", "logout"]


# --- sessions -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/console/", "/console/reports", "/console/no-such-page"])
async def test_no_page_without_a_session(console: Console, path: str) -> None:
    slashless = await console.client.get("/console", allow_redirects=False)
    assert (slashless.status, slashless.headers["Location"]) == (303, "/console/")
    assert_login_page(await console.client.get(path, allow_redirects=False))
    console.client.session.cookie_jar.update_cookies({COOKIE: "A" * 43})
    assert_login_page(await console.client.get(path, allow_redirects=False))


async def test_a_session_ends_after_30_idle_minutes(console: Console) -> None:
    await console.logged_in("hoa")
    console.clock.at += timedelta(minutes=29)
    assert (await console.client.get("/console/reports", allow_redirects=False)).status == 200
    console.clock.at += timedelta(minutes=29)  # idle 29 minutes again: still fine
    assert (await console.client.get("/console/reports", allow_redirects=False)).status == 200
    console.clock.at += timedelta(minutes=31)
    assert_login_page(await console.client.get("/console/reports", allow_redirects=False))
    assert console.session_id() is None


async def test_a_session_ends_12_hours_after_login_however_busy(console: Console) -> None:
    await console.logged_in("hoa")
    for _ in range(12 * 3 - 1):
        console.clock.at += timedelta(minutes=20)
        assert (await console.client.get("/console/reports", allow_redirects=False)).status == 200
    console.clock.at += timedelta(minutes=21)
    assert_login_page(await console.client.get("/console/reports", allow_redirects=False))


async def test_a_disabled_user_is_out_at_once(console: Console) -> None:
    await console.logged_in("hoa")
    await disable_user(console.db.writer, "hoa", FRIDAY)
    assert_login_page(await console.client.get("/console/reports", allow_redirects=False))


# --- roles --------------------------------------------------------------------------------

# Every console page and the roles that may open it (as on the API).
PAGES = {"/console/reports": ("hotline", "auditor", "admin")}


@pytest.mark.parametrize("path", sorted(PAGES))
@pytest.mark.parametrize("username", ["hoa", "lan", "minh"])
async def test_roles_on_every_page(console: Console, path: str, username: str) -> None:
    await citizen_report(console)
    await console.logged_in(username)
    response = await console.client.get(path, allow_redirects=False)
    if USERS[username] in PAGES[path]:
        assert response.status == 200
    else:
        assert response.status == 403
        assert "Không có quyền" in await response.text()


async def test_auditors_see_phone_numbers_masked(console: Console) -> None:
    await citizen_report(console)
    await console.logged_in("lan")
    html = await (await console.client.get("/console/reports")).text()
    assert MASKED in html and PHONE not in html


async def test_an_unknown_console_page_is_a_vietnamese_404(console: Console) -> None:
    await console.logged_in("hoa")
    for path in ("/console", "/console/"):
        response = await console.client.get(path)
        assert (response.status, response.url.path) == (200, "/console/reports")
    response = await console.client.get("/console/no-such-page")
    assert response.status == 404
    assert "Không tìm thấy trang" in await response.text()


# --- the rest of the gateway ---------------------------------------------------------------


async def test_the_api_never_passes_through_the_console(console: Console) -> None:
    await console.logged_in("hoa")
    response = await console.client.get("/v1/reports")
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert COOKIE not in response.cookies
    assert "Content-Security-Policy" not in response.headers


async def test_the_cookie_is_secure_when_the_gateway_is_served_over_https(
    settings: Settings, aiohttp_client: Any
) -> None:
    https = Settings.from_mapping({**settings.env, "PUBLIC_BASE_URL": "https://tthc.example.vn"})
    client: TestClient[web.Request, web.Application] = await aiohttp_client(create_app(https))
    response = await client.get("/console/login")
    assert response.status == 200
    cookie = response.cookies[COOKIE]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"


# --- secrets ------------------------------------------------------------------------------


async def test_passwords_are_never_logged_nor_stored_in_clear(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    new_password = "một mật khẩu mới hoàn toàn 2026"
    assert (await console.login("hoa", "sai mật khẩu rồi 1022")).status == 200
    assert (await console.login("nobody", PASSWORD)).status == 200
    await console.logged_in("hoa")
    await set_password(console.db.writer, "minh", new_password, FRIDAY)
    await console.client.post(
        "/console/logout", data={"csrf_token": await console.csrf("/console/reports")}
    )
    assert (await console.login("minh")).status == 200  # the old password no longer works
    assert (await console.login("minh", new_password)).status == 303
    assert caplog.records  # the console and the database did log
    stored = repr(await rows(console.db.reader, staff_users)) + repr(
        await rows(console.db.reader, staff_audit_log)
    )
    for secret in (PASSWORD, new_password, "sai mật khẩu rồi 1022"):
        assert secret not in caplog.text
        assert secret not in stored
    assert stored.count("$argon2id$") == len(USERS)
