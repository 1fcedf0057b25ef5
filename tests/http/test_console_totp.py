"""The admins' optional second factor (TOTP): enrolment, the login's second step, replay,
throttling, disabling, and the secret kept out of logs and the audit log.

The real application, real Redis, both databases; codes are computed with pyotp from the
secret the page shows, at the gateway's (test-moved) clock.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pyotp
import pytest
from aiohttp import ClientResponse

from gateway.http.console.auth import ACCOUNT_FAILURES
from gateway.storage import staff as staff_store
from tests.console_helpers import CSRF_RE, Console

SECRET_RE = re.compile(r'data-testid="secret">([A-Z2-7 ]+)<')
STEP = timedelta(seconds=30)


def code_at(console: Console, secret: str, shift: timedelta = timedelta(0)) -> str:
    """The authenticator app's code at the gateway's clock (moved by ``shift``)."""
    return pyotp.TOTP(secret).at(console.clock.at + shift)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def post(console: Console, path: str, data: dict[str, str], token: str) -> ClientResponse:
    return await console.client.post(
        path, data={**data, "csrf_token": token}, allow_redirects=False
    )


async def start(console: Console) -> tuple[str, str]:
    """As minh (logged in): start an enrolment; the secret shown and the CSRF token."""
    token = await console.csrf("/console/account/totp")
    response = await post(console, "/console/account/totp", {}, token)
    assert response.status == 200, await response.text()
    html = await response.text()
    found = SECRET_RE.search(html)
    assert found is not None, html
    return found.group(1).replace(" ", ""), token


async def enrolled(console: Console) -> str:
    """minh logged in with the second factor enabled; returns the secret."""
    await console.logged_in("minh")
    secret, token = await start(console)
    response = await post(
        console, "/console/account/totp/confirm", {"code": code_at(console, secret)}, token
    )
    assert response.status == 303, await response.text()
    return secret


async def minh_id(console: Console) -> int:
    return next(
        u.id for u in await staff_store.list_users(console.db.reader) if u.username == "minh"
    )


async def log_out(console: Console) -> None:
    token = await console.csrf("/console/reports")
    response = await post(console, "/console/logout", {}, token)
    assert response.status == 303
    console.client.session.cookie_jar.clear()


async def second_step(console: Console) -> str:
    """minh's right password: 303 to the second step; returns the step page's CSRF token."""
    response = await console.login("minh")
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/console/login/totp"
    return await console.csrf("/console/login/totp")


async def give_code(console: Console, code: str, token: str) -> ClientResponse:
    return await post(console, "/console/login/totp", {"code": code}, token)


# --- enrolment ----------------------------------------------------------------------------


async def test_enrolment_is_enabled_only_by_a_right_first_code(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway")
    await console.logged_in("minh")
    page = await console.client.get("/console/account/totp")
    assert page.status == 200
    html = await page.text()
    assert "Xác thực hai bước <strong>đang tắt</strong>" in html
    secret, token = await start(console)
    assert len(secret) == 32
    html = await (await console.client.get("/console/account/totp")).text()
    assert "đã bắt đầu đăng ký nhưng chưa xác nhận mã" in html
    assert secret[:4] not in html  # an enrolment's secret is shown by the POST only

    refused = await post(
        console, "/console/account/totp/confirm", {"code": wrong(code_at(console, secret))}, token
    )
    assert refused.status == 400
    html = await refused.text()
    assert "Mã xác thực không đúng hoặc đã được dùng." in html
    assert SECRET_RE.search(html) is not None  # the same enrolment, to try again
    assert f"secret={secret}" in html and "otpauth://totp/" in html
    state = await staff_store.totp_state(console.db.writer, await minh_id(console))
    assert (state.enabled, state.pending) == (False, True)
    malformed = await post(console, "/console/account/totp/confirm", {"code": "12ab"}, token)
    assert malformed.status == 400
    assert "Mã xác thực gồm đúng 6 chữ số." in await malformed.text()

    done = await post(
        console, "/console/account/totp/confirm", {"code": code_at(console, secret)}, token
    )
    assert (done.status, done.headers["Location"]) == (303, "/console/account/totp")
    html = await (await console.client.get("/console/account/totp")).text()
    assert "Đã bật xác thực hai bước." in html
    assert "Xác thực hai bước <strong>đang bật</strong> từ 24/04/2026 16:00." in html
    assert secret[:8] not in html  # an enabled secret is never shown again
    state = await staff_store.totp_state(console.db.writer, await minh_id(console))
    assert state.enabled and state.enabled_at == console.clock.at

    entries = await console.audit()
    assert [e.action for e in entries] == [
        "login",
        "totp_started",
        "totp_confirm_failed",
        "totp_enabled",
    ]
    me = f"staff:{await minh_id(console)}"
    assert all(e.target == me for e in entries[1:])
    assert secret not in repr(entries)
    assert secret not in caplog.text
    # A second enrolment would silently replace the working one: refused.
    again = await post(console, "/console/account/totp", {}, token)
    assert again.status == 409


@pytest.mark.parametrize("username", ["hoa", "lan"])
async def test_hotline_and_auditors_are_not_offered_a_second_factor(
    console: Console, username: str
) -> None:
    await console.logged_in(username)
    response = await console.client.get("/console/account/totp", allow_redirects=False)
    assert response.status == 403
    html = await (await console.client.get("/console/reports")).text()
    assert "/console/account/totp" not in html


# --- the login's second step --------------------------------------------------------------


async def test_login_needs_the_code_and_starts_the_session_only_then(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway")
    secret = await enrolled(console)
    await log_out(console)
    await console.csrf()
    anonymous = console.session_id()
    token = await second_step(console)
    pending = console.session_id()
    assert pending is not None and pending != anonymous
    assert anonymous is not None and not await console.session_stored(anonymous)
    # The right password alone is no session: no page, no logout.
    blocked = await console.client.get("/console/reports", allow_redirects=False)
    assert (blocked.status, blocked.headers["Location"]) == (303, "/console/login")
    html = await (await console.client.get("/console/login/totp")).text()
    assert '<label for="code">Mã xác thực</label>' in html
    assert 'autocomplete="one-time-code"' in html

    console.clock.at += STEP  # the enrolment's code is spent; the app shows the next one
    response = await give_code(console, code_at(console, secret), token)
    assert (response.status, response.headers["Location"]) == (303, "/console/reports")
    logged = console.session_id()
    assert logged is not None and logged not in (anonymous, pending)  # no fixation
    assert not await console.session_stored(pending)
    page = await console.client.get("/console/reports", allow_redirects=False)
    assert page.status == 200
    assert "Cán bộ minh" in await page.text()
    login = (await console.audit())[-1]
    assert (login.action, login.username, login.detail) == ("login", "minh", {"totp": True})
    assert secret not in caplog.text


async def test_a_code_is_never_accepted_twice(console: Console) -> None:
    secret = await enrolled(console)
    await log_out(console)
    token = await second_step(console)
    # The code confirmed at enrolment, replayed within its 30 seconds.
    replayed = await give_code(console, code_at(console, secret), token)
    assert replayed.status == 400
    assert "Mã xác thực không đúng hoặc đã được dùng." in await replayed.text()

    console.clock.at += STEP
    code = code_at(console, secret)
    assert (await give_code(console, code, token)).status == 303
    await log_out(console)
    token = await second_step(console)
    assert (await give_code(console, code, token)).status == 400  # observed, then replayed
    # An earlier step's code, still inside the window, is older than the last one used.
    assert (await give_code(console, code_at(console, secret, -STEP), token)).status == 400
    console.clock.at += STEP
    assert (await give_code(console, code_at(console, secret), token)).status == 303
    actions = [e.action for e in await console.audit()]
    assert actions.count("login_totp_failed") == 3


async def test_wrong_codes_count_toward_the_login_throttle(console: Console) -> None:
    secret = await enrolled(console)
    await log_out(console)
    token = await second_step(console)
    console.clock.at += STEP
    for _ in range(ACCOUNT_FAILURES):
        response = await give_code(console, wrong(code_at(console, secret)), token)
        assert response.status == 400
    # Even the right code is refused now, and so is the password.
    throttled = await give_code(console, code_at(console, secret), token)
    assert throttled.status == 429
    assert "Đã đăng nhập sai quá nhiều lần." in await throttled.text()
    assert (await console.login("minh")).status == 429
    blocked = await console.client.get("/console/reports", allow_redirects=False)
    assert blocked.status == 303
    entries = [e for e in await console.audit() if e.action.startswith("login")]
    assert [e.action for e in entries][-ACCOUNT_FAILURES - 2 :] == ["login_totp_failed"] * (
        ACCOUNT_FAILURES
    ) + ["login_throttled", "login_throttled"]
    assert secret not in repr(entries)


async def test_the_right_password_does_not_clear_failures_before_the_code(
    console: Console,
) -> None:
    secret = await enrolled(console)
    await log_out(console)
    console.clock.at += STEP
    for _ in range(ACCOUNT_FAILURES - 1):
        token = await second_step(console)
        assert (await give_code(console, wrong(code_at(console, secret)), token)).status == 400
    token = await second_step(console)  # the password again: the count stays
    assert (await give_code(console, wrong(code_at(console, secret)), token)).status == 400
    assert (await give_code(console, code_at(console, secret), token)).status == 429


async def test_the_second_step_waits_five_minutes_at_most(console: Console) -> None:
    secret = await enrolled(console)
    await log_out(console)
    token = await second_step(console)
    console.clock.at += timedelta(minutes=5, seconds=1)
    response = await give_code(console, code_at(console, secret), token)
    assert response.status == 400
    assert "Đã quá thời gian nhập mã xác thực hai bước." in await response.text()
    gone = await console.client.get("/console/login/totp", allow_redirects=False)
    assert (gone.status, gone.headers["Location"]) == (303, "/console/login")
    assert (await console.client.get("/console/reports", allow_redirects=False)).status == 303


async def test_a_code_without_a_password_step_logs_nobody_in(console: Console) -> None:
    secret = await enrolled(console)
    await log_out(console)
    token = await console.csrf()
    response = await give_code(console, code_at(console, secret, STEP), token)
    assert response.status == 400
    assert "Đã quá thời gian nhập mã xác thực hai bước." in await response.text()
    assert (await console.client.get("/console/reports", allow_redirects=False)).status == 303


async def test_disabling_needs_a_current_code(console: Console) -> None:
    secret = await enrolled(console)
    html = await (await console.client.get("/console/account/totp")).text()
    found = CSRF_RE.search(html)
    assert found is not None
    token = found.group(1)
    console.clock.at += STEP
    refused = await post(
        console, "/console/account/totp/disable", {"code": wrong(code_at(console, secret))}, token
    )
    assert refused.status == 400
    assert "Mã xác thực không đúng hoặc đã được dùng." in await refused.text()
    assert (await staff_store.totp_state(console.db.writer, await minh_id(console))).enabled

    done = await post(
        console, "/console/account/totp/disable", {"code": code_at(console, secret)}, token
    )
    assert (done.status, done.headers["Location"]) == (303, "/console/account/totp")
    assert (
        "Đã tắt xác thực hai bước."
        in await (await console.client.get("/console/account/totp")).text()
    )
    state = await staff_store.totp_state(console.db.writer, await minh_id(console))
    assert (state.enabled, state.pending) == (False, False)
    await log_out(console)
    response = await console.login("minh")  # the password alone again
    assert (response.status, response.headers["Location"]) == (303, "/console/reports")
    actions = [e.action for e in await console.audit()]
    assert actions[-4:] == ["totp_disable_failed", "totp_disabled", "logout", "login"]
