"""What every citizen page does around its handler: the visit.

- **Client address**: the peer's, or the last entry of ``X-Forwarded-For`` (the one our
  own proxy added) when ``CITIZEN_TRUST_FORWARDED_FOR`` is on. Only a keyed digest of it
  (16 hex) is kept and logged, never the address itself.
- **Rate limit**: ``CITIZEN_WEB_REQUESTS_PER_MINUTE`` requests per address per clock
  minute (a Redis counter); past it, a 429 page with ``Retry-After``.
- **Session**: a random id (``secrets.token_urlsafe(32)``) in an ``HttpOnly``,
  ``SameSite=Lax`` cookie (``Secure`` when ``CITIZEN_BASE_URL`` is https); the data (the
  CSRF token, the proof held for each dossier code, the codes a one-time code was sent
  for) lives in Redis for :data:`SESSION_TTL` after the last request. The web requester
  of one-time codes is ``"web:<16 hex digest of the session id>"``.
- **CSRF**: every POST carries the session's token in ``csrf_token``; without it (or
  without a session) the answer is a 403 page and nothing is done.
- **Headers**: no script may run (``default-src 'none'``; inline styles only), no frame,
  no referrer (the link's token must not leak), no caching, on every page.
- Storage failures and unexpected gateway errors become a Vietnamese 503 page.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import jinja2
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import GatewayError
from gateway.http.keys import CLOCK, DATABASE, REDIS, SETTINGS
from gateway.settings import Settings
from gateway.texts.templates import Texts, citizen_globals
from gateway.trust.guards import Guards
from gateway.trust.otp import hmac_key
from gateway.trust.proofs import may_act

log = logging.getLogger(__name__)

COOKIE: Final = "tthc_citizen"
SESSION_TTL: Final = 30 * 60
_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{43}")
ENVIRONMENT: web.AppKey[jinja2.Environment] = web.AppKey("citizen_pages", jinja2.Environment)

HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# The proofs a session may hold, weakest first: a stronger one is never replaced.
_STRENGTH: Final = {"last_four": 1, "sms_link": 2, "otp": 3}


def page_environment(settings: Settings, texts: Texts) -> jinja2.Environment:
    """The HTML templates (``templates/web``), escaped, with the hotline and the OA's name
    as globals and the date filters of the other citizen texts."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(settings.templates_dir),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    for name in ("vn_date", "vn_datetime"):
        env.filters[name] = texts.env.filters[name]
    env.globals.update(citizen_globals(settings))
    return env


@dataclass(slots=True)
class Visit:
    """One request to a citizen page, with its session and client address."""

    request: web.Request
    settings: Settings
    redis: Redis
    now: datetime
    address: str  # the keyed digest of the client address
    session_id: str | None
    data: dict[str, Any] = field(default_factory=dict)
    dirty: bool = False

    # -- shared resources --------------------------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        return self.request.config_dict[DATABASE].writer

    @property
    def guards(self) -> Guards:
        return Guards(self.redis, self.settings)

    @property
    def address_requester(self) -> str:
        """Who the guessing guards count: the client address (a session is free to drop)."""
        return f"webip:{self.address}"

    @property
    def code_requester(self) -> str:
        """Who asks for one-time codes: this web session."""
        return f"web:{self.session_digest}"

    @property
    def session_digest(self) -> str:
        identity = self.ensure_session()
        return hashlib.sha256(f"citizen-session:{identity}".encode()).hexdigest()[:16]

    # -- session -------------------------------------------------------------------------

    def ensure_session(self) -> str:
        if self.session_id is None:
            self.session_id = secrets.token_urlsafe(32)
            self.dirty = True
        return self.session_id

    @property
    def csrf_token(self) -> str:
        token = self.data.get("csrf")
        if not isinstance(token, str):
            token = secrets.token_urlsafe(32)
            self.data["csrf"] = token
            self.ensure_session()
            self.dirty = True
        return token

    def proof(self, code: str) -> str | None:
        proofs = self.data.get("proofs")
        value = proofs.get(code) if isinstance(proofs, dict) else None
        return value if isinstance(value, str) else None

    def grant(self, code: str, proof: str) -> None:
        """Hold ``proof`` for dossier ``code`` (unless a stronger one is held already)."""
        held = self.proof(code)
        if held is not None and _STRENGTH.get(held, 0) >= _STRENGTH.get(proof, 0):
            return
        proofs = self.data.setdefault("proofs", {})
        proofs[code] = proof
        self.ensure_session()
        self.dirty = True

    def may_act(self, code: str) -> bool:
        return may_act(self.proof(code))

    def mark_code_sent(self, code: str) -> None:
        sent = self.data.setdefault("otp_sent", [])
        if code not in sent:
            sent.append(code)
        self.ensure_session()
        self.dirty = True

    def code_sent(self, code: str) -> bool:
        sent = self.data.get("otp_sent")
        return isinstance(sent, list) and code in sent

    # -- pages ---------------------------------------------------------------------------

    def page(self, template: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
        env = self.request.config_dict[ENVIRONMENT]
        html = env.get_template(f"web/{template}").render(
            zone=self.settings.tz,
            csrf_token=_LazyToken(self),
            **context,
        )
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    def problem(self, reason: str, status: int, **extra: Any) -> web.Response:
        return self.page(
            "problem.html.j2", {"reason": reason, "status": status, **extra}, status=status
        )

    def log(self, message: str, **extra: Any) -> None:
        """A proof attempt or an action: dossier code and address digest, never a phone."""
        log.info(message, extra={"address": self.address, **extra})


class _LazyToken:
    """The CSRF token, made (with the session) only if a page prints a form that needs it:
    a visit that sees no form (the bare lookup, a refusal) leaves nothing in Redis."""

    def __init__(self, visit: Visit) -> None:
        self._visit = visit

    def __str__(self) -> str:
        return self._visit.csrf_token

    def __html__(self) -> str:
        return self._visit.csrf_token


def client_address(request: web.Request, settings: Settings) -> str:
    """The client's address: the peer's, or our proxy's last ``X-Forwarded-For`` entry."""
    if settings.trust.trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        entries = [part.strip() for part in forwarded.split(",") if part.strip()]
        if entries:
            return entries[-1]
    return request.remote or "unknown"


def address_digest(settings: Settings, address: str) -> str:
    digest = hmac.new(hmac_key(settings), f"address:{address}".encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


async def _load(redis: Redis, settings: Settings, identity: str | None) -> dict[str, Any] | None:
    if identity is None or not _ID_RE.fullmatch(identity):
        return None
    raw = await redis.get(_session_key(settings, identity))
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _session_key(settings: Settings, identity: str) -> str:
    return f"{settings.redis_key_prefix}citizen:session:{identity}"


async def _save(visit: Visit, response: web.StreamResponse) -> None:
    if visit.session_id is None:
        return
    key = _session_key(visit.settings, visit.session_id)
    if visit.dirty:
        await visit.redis.set(key, json.dumps(visit.data), ex=SESSION_TTL)
        response.set_cookie(
            COOKIE,
            visit.session_id,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=visit.settings.trust.base_url.startswith("https://"),
        )
    else:
        await visit.redis.expire(key, SESSION_TTL)


async def _over_limit(visit: Visit) -> bool:
    minute = int(visit.now.timestamp() // 60)
    key = f"{visit.settings.redis_key_prefix}citizen:rate:{visit.address}:{minute}"
    async with visit.redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, 120, nx=True)
        count, _ = await pipe.execute()
    return int(count) > visit.settings.trust.web_requests_per_minute


async def _csrf_ok(visit: Visit) -> bool:
    form = await visit.request.post()
    sent = form.get("csrf_token")
    expected = visit.data.get("csrf")
    return (
        isinstance(sent, str)
        and isinstance(expected, str)
        and hmac.compare_digest(sent.encode(), expected.encode())
    )


PageHandler = Callable[[Visit], Awaitable[web.StreamResponse]]


def citizen_page(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler of a citizen page, wrapped in the visit (see the module doc)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        settings = request.config_dict[SETTINGS]
        redis = request.config_dict[REDIS]
        now = datetime.fromtimestamp(request.config_dict[CLOCK](), UTC)
        address = address_digest(settings, client_address(request, settings))
        visit = Visit(request, settings, redis, now, address, None)
        try:
            identity = request.cookies.get(COOKIE)
            data = await _load(redis, settings, identity)
            if data is not None:
                visit.session_id, visit.data = identity, data
            if await _over_limit(visit):
                visit.log("citizen page throttled")
                response: web.StreamResponse = visit.problem("throttled", 429)
                response.headers["Retry-After"] = "60"
            elif request.method == "POST" and not await _csrf_ok(visit):
                visit.log("citizen form refused: CSRF token missing or wrong")
                response = visit.problem("csrf", 403)
            else:
                response = await handler(visit)
            await _save(visit, response)
        except (SQLAlchemyError, RedisError, OSError, GatewayError):
            log.exception("citizen page failed", extra={"path": request.path})
            response = visit.problem("unavailable", 503)
        response.headers.update(HEADERS)
        return response

    return wrapped


def see_other(location: str) -> web.Response:
    """A 303 to ``location`` (a response, not an exception, so the session is saved)."""
    return web.Response(status=303, headers={"Location": location})
