"""Who is at the console: login and logout, login throttling, CSRF, sessions' timeouts, roles.

A session is anonymous until login (it carries only the CSRF token the login form needs);
logging in replaces it with a session under a new id (no fixation) holding the user's id,
the time of login and the time of the last request. Each request reloads the user, so a
disabled account or a changed role takes effect at once.

An account with a second factor (TOTP, offered to admins) logs in in two steps: the right
password only puts a pending marker, valid for :data:`TOTP_PENDING`, in an anonymous
session under a new id; the session starts (under yet another id) when a fresh code is
given on ``/console/login/totp``. Wrong codes count toward the same throttle as wrong
passwords, and an account's failures are cleared only once both factors passed.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp_session import get_session, new_session
from redis.asyncio import Redis

from gateway.http.console.sessions import RedisSessions
from gateway.http.keys import CLOCK, DATABASE, REDIS, SETTINGS
from gateway.storage import staff as staff_store
from gateway.storage.staff import StaffUser

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

IDLE: Final = timedelta(minutes=30)
ABSOLUTE: Final = timedelta(hours=12)
# Failed logins counted per account and per remote address over a sliding-from-first window.
FAILURE_WINDOW: Final = timedelta(minutes=15)
ACCOUNT_FAILURES: Final = 5
ADDRESS_FAILURES: Final = 20
# Where each role lands after login (the auditors' desk comes later).
LANDING: Final = {"hotline": "reports", "auditor": "reports", "admin": "reports"}
# Longer usernames are never valid (see gateway.storage.staff); not worth a Redis key.
_NAME_MAX: Final = 64

STORAGE = web.AppKey("console_sessions", RedisSessions)
# Route name -> the roles allowed on it, as on the API; set by the views. A logged-in user
# may open a route missing here (a 404, say); the login routes need no session at all.
ROLES: web.AppKey[dict[str, tuple[str, ...]]] = web.AppKey("console_roles")
USER_KEY: Final = web.RequestKey("console_user", StaffUser)
CSRF_KEY: Final = web.RequestKey("console_csrf", str)
PUBLIC: Final = frozenset({"login", "login_post", "login_totp", "login_totp_post", "static"})
# How long the second step may wait after the right password.
TOTP_PENDING: Final = timedelta(minutes=5)
_PENDING: Final = "totp_pending"


def now_of(request: web.Request) -> datetime:
    """The gateway's clock, as an aware UTC datetime."""
    return datetime.fromtimestamp(request.config_dict[CLOCK](), UTC)


def current_user(request: web.Request) -> StaffUser:
    """The logged-in user (the auth middleware put them there)."""
    user: StaffUser = request[USER_KEY]
    return user


def csrf_token(session: Any) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def page(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """A console page; every template gets the user (if any) and the CSRF token."""
    response = aiohttp_jinja2.render_template(
        f"console/{template}",
        request,
        {"user": request.get(USER_KEY), "csrf_token": request.get(CSRF_KEY, "")} | context,
        status=status,
    )
    return response


def problem_page(request: web.Request, reason: str, status: int, **extra: Any) -> web.Response:
    """The Vietnamese page for a refusal or an error (``reason`` picks the sentence)."""
    return page(
        request, "problem.html.j2", {"reason": reason, "status": status} | extra, status=status
    )


# --- middlewares --------------------------------------------------------------------------


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every unsafe request must carry the session's token in the form field ``csrf_token``."""
    session = await get_session(request)
    request[CSRF_KEY] = csrf_token(session)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        form = await request.post()
        sent = form.get("csrf_token")
        expected = session.get("csrf")
        if not (
            isinstance(sent, str)
            and isinstance(expected, str)
            and hmac.compare_digest(sent.encode(), expected.encode())
        ):
            log.warning("console form refused: CSRF token missing or wrong")
            return problem_page(request, "csrf", 403)
    return await handler(request)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pages need a live session (else 303 to the login page) and a role allowed there."""
    name = request.match_info.route.name
    if name in PUBLIC:
        return await handler(request)
    session = await get_session(request)
    user = await _session_user(request, session)
    if user is None:
        raise web.HTTPSeeOther(request.app.router["login"].url_for())
    request[USER_KEY] = user
    allowed = request.app[ROLES].get(name or "")
    if allowed is not None and user.role not in allowed:
        return problem_page(request, "forbidden", 403)
    return await handler(request)


async def _session_user(request: web.Request, session: Any) -> StaffUser | None:
    """The user of a live session; an expired one is emptied (and so deleted)."""
    user_id = session.get("user")
    if not isinstance(user_id, int):
        return None
    now = request.config_dict[CLOCK]()
    started, seen = session.get("started", 0), session.get("seen", 0)
    if now - seen > IDLE.total_seconds() or now - started > ABSOLUTE.total_seconds():
        session.invalidate()
        return None
    user = await staff_store.get_user(request.config_dict[DATABASE].reader, user_id)
    if user is None or user.disabled_at is not None:
        session.invalidate()
        return None
    session["seen"] = now  # saved (and the Redis TTL refreshed) by the session middleware
    return user


# --- throttling ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Throttle:
    """Failed logins in Redis: per account and per remote address, for a window each."""

    redis: Redis
    prefix: str

    def keys(self, username: str, address: str) -> list[tuple[str, int]]:
        base = f"{self.prefix}console:login-failures:"
        return [
            (f"{base}account:{username[:_NAME_MAX].lower()}", ACCOUNT_FAILURES),
            (f"{base}address:{address}", ADDRESS_FAILURES),
        ]

    async def blocked_for(self, username: str, address: str) -> int:
        """Seconds until another try is allowed (0: allowed now)."""
        wait = 0
        for key, limit in self.keys(username, address):
            count = await self.redis.get(key)
            if count is not None and int(count) >= limit:
                wait = max(wait, int(await self.redis.ttl(key)), 1)
        return wait

    async def failed(self, username: str, address: str) -> None:
        """Count a failure; the window starts at the first one."""
        window = int(FAILURE_WINDOW.total_seconds())
        for key, _ in self.keys(username, address):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window, nx=True)
                await pipe.execute()

    async def succeeded(self, username: str) -> None:
        """A good password clears the account's count (not the address's)."""
        await self.redis.delete(self.keys(username, "")[0][0])


def _throttle(request: web.Request) -> Throttle:
    return Throttle(request.config_dict[REDIS], request.config_dict[SETTINGS].redis_key_prefix)


# --- audit --------------------------------------------------------------------------------


async def audit(
    request: web.Request,
    action: str,
    *,
    username: str,
    user: StaffUser | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record a staff action in the staff audit log (never a password)."""
    await staff_store.record_action(
        request.config_dict[DATABASE].writer,
        at=now_of(request),
        staff_id=user.id if user else None,
        username=username[:_NAME_MAX],
        action=action,
        target=target,
        detail=detail,
        remote_addr=_address(request),
    )


def _address(request: web.Request) -> str:
    return (request.remote or "unknown")[:64]


# --- pages --------------------------------------------------------------------------------


@routes.get("/login", name="login")
async def login_form(request: web.Request) -> web.StreamResponse:
    """The login form, or the user's landing page if they are logged in already."""
    session = await get_session(request)
    user = await _session_user(request, session)
    if user is not None:
        raise web.HTTPSeeOther(request.app.router[LANDING[user.role]].url_for())
    request[CSRF_KEY] = csrf_token(session)  # a new one if an expired session was emptied
    return page(request, "login.html.j2", {"username": "", "error": None})


@routes.post("/login", name="login_post")
async def login(request: web.Request) -> web.StreamResponse:
    """Check the password (throttled); on success a new session under a new id."""
    form = await request.post()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    throttle = _throttle(request)
    address = _address(request)
    wait = await throttle.blocked_for(username, address)
    if wait:
        return await _throttled(request, username, wait)
    user = None
    if username and password:
        user = await staff_store.verify_password(
            request.config_dict[DATABASE].writer, username, password, now_of(request)
        )
    if user is None:
        await throttle.failed(username, address)
        await audit(request, "login_failed", username=username)
        log.info("console login failed")
        return page(request, "login.html.j2", {"username": username, "error": "wrong"})
    totp = await staff_store.totp_state(request.config_dict[DATABASE].writer, user.id)
    if totp.enabled:
        await _start_pending(request, user)
        log.info("console login waits for the second factor", extra={"staff": user.id})
        raise web.HTTPSeeOther(request.app.router["login_totp"].url_for())
    await throttle.succeeded(username)
    await _start_session(request, user)
    await audit(request, "login", username=user.username, user=user)
    log.info("console login", extra={"staff": user.id})
    raise web.HTTPSeeOther(request.app.router[LANDING[user.role]].url_for())


async def _throttled(request: web.Request, username: str, wait: int) -> web.Response:
    """The 429 page for a throttled login attempt (recorded as ``login_throttled``)."""
    await audit(request, "login_throttled", username=username)
    retry = now_of(request) + timedelta(seconds=wait)
    response = problem_page(
        request,
        "throttled",
        429,
        retry_at=retry.astimezone(request.config_dict[SETTINGS].tz).strftime("%H:%M %d/%m/%Y"),
    )
    response.headers["Retry-After"] = str(wait)
    return response


async def _fresh_session(request: web.Request) -> Any:
    """Forget the current session (its id is worthless from now on) and start an empty
    one, to be saved under a new id, with a new CSRF token."""
    old = await get_session(request)
    if old.identity is not None:
        await request.app[STORAGE].forget(request, str(old.identity))
    session = await new_session(request)
    session["csrf"] = secrets.token_urlsafe(32)
    return session


async def _start_pending(request: web.Request, user: StaffUser) -> None:
    """After the right password of an account with a second factor: an anonymous session
    under a new id that only says whose code is awaited, until when."""
    session = await _fresh_session(request)
    until = request.config_dict[CLOCK]() + TOTP_PENDING.total_seconds()
    session[_PENDING] = {"user": user.id, "username": user.username, "until": until}


def _pending(request: web.Request, session: Any) -> tuple[int, str] | None:
    """The user id and username whose code the session awaits, if not expired."""
    marker = session.get(_PENDING)
    if not isinstance(marker, dict):
        return None
    user_id, username, until = marker.get("user"), marker.get("username"), marker.get("until")
    if not (
        isinstance(user_id, int)
        and isinstance(username, str)
        and isinstance(until, int | float)
        and request.config_dict[CLOCK]() < until
    ):
        return None
    return user_id, username


@routes.get("/login/totp", name="login_totp")
async def login_totp_form(request: web.Request) -> web.StreamResponse:
    """The second step's form, while a password step is pending (else the login page)."""
    session = await get_session(request)
    if await _session_user(request, session) is not None:
        raise web.HTTPSeeOther(request.app.router["home"].url_for())
    if _pending(request, session) is None:
        session.pop(_PENDING, None)
        raise web.HTTPSeeOther(request.app.router["login"].url_for())
    return page(request, "login_totp.html.j2", {"error": None})


@routes.post("/login/totp", name="login_totp_post")
async def login_totp(request: web.Request) -> web.StreamResponse:
    """Check the code (throttled like passwords, never twice the same); on success the
    user's session starts under a new id."""
    session = await get_session(request)
    pending = _pending(request, session)
    if pending is None:
        session.pop(_PENDING, None)
        return page(request, "login.html.j2", {"username": "", "error": "expired"}, status=400)
    user_id, username = pending
    throttle = _throttle(request)
    address = _address(request)
    wait = await throttle.blocked_for(username, address)
    if wait:
        return await _throttled(request, username, wait)
    form = await request.post()
    code = staff_store.normalize_totp_code(str(form.get("code", "")))
    if code is None:
        return page(request, "login_totp.html.j2", {"error": "format"}, status=400)
    writer = request.config_dict[DATABASE].writer
    user = await staff_store.get_user(writer, user_id)
    if user is None or user.disabled_at is not None:
        session.pop(_PENDING, None)
        return page(request, "login.html.j2", {"username": "", "error": "wrong"}, status=400)
    if not await staff_store.check_totp(writer, user.id, code, now_of(request)):
        await throttle.failed(username, address)
        await audit(request, "login_totp_failed", username=user.username, user=user)
        log.info("console login: wrong second factor", extra={"staff": user.id})
        return page(request, "login_totp.html.j2", {"error": "wrong"}, status=400)
    await throttle.succeeded(username)
    await _start_session(request, user)
    await audit(request, "login", username=user.username, user=user, detail={"totp": True})
    log.info("console login", extra={"staff": user.id})
    raise web.HTTPSeeOther(request.app.router[LANDING[user.role]].url_for())


async def _start_session(request: web.Request, user: StaffUser) -> None:
    """Forget the anonymous session and start the user's under a fresh id."""
    session = await _fresh_session(request)
    now = request.config_dict[CLOCK]()
    session["user"] = user.id
    session["started"] = now
    session["seen"] = now


@routes.post("/logout", name="logout")
async def logout(request: web.Request) -> web.StreamResponse:
    """End the session (its Redis key and the cookie go) and show the login page."""
    user = current_user(request)
    session = await get_session(request)
    session.invalidate()
    await audit(request, "logout", username=user.username, user=user)
    raise web.HTTPSeeOther(request.app.router["login"].url_for())
