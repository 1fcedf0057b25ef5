"""Operations endpoints: the root page, liveness, readiness (database and Redis), metrics.

``/metrics`` and the detail of ``/readyz`` name our dependencies, their failures and our
traffic: they need ``Authorization: Bearer <OPS_TOKEN>``. Without the token ``/readyz``
still answers the probe (200 ``ok`` / 503 ``unavailable``); without ``OPS_TOKEN`` set,
``/metrics`` does not exist (404).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from urllib.parse import urlsplit

import sqlalchemy as sa
from aiohttp import web
from aiohttp.typedefs import Handler
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway import __version__
from gateway.chat.tokens import alert_key
from gateway.errors import BearerTokenRefused, GatewayError, NotFound
from gateway.http.keys import DATABASE, METRICS, REDIS, SETTINGS
from gateway.http.problems import problem_body
from gateway.settings import DEFAULT_TEMPLATES_DIR
from gateway.storage.db import parse_database_url

routes = web.RouteTableDef()
# Pages running next to the gateway (the demo's fakes), by name, shown on the root page.
PAGE_LINKS: web.AppKey[dict[str, str]] = web.AppKey("page_links")
_DATABASE_KINDS = {"sqlite": "SQLite (nhúng)", "postgresql": "PostgreSQL"}


@routes.get("/")
async def root(request: web.Request) -> web.Response:
    """A small HTML page for operators: what runs, and links to look further."""
    settings = request.app[SETTINGS]
    try:
        redis_ok = bool(await asyncio.wait_for(request.app[REDIS].ping(), timeout=1))
    except Exception:  # shown as "not reachable"; /readyz says why
        redis_ok = False
    redis = urlsplit(settings.redis_url)
    # Host, port and database only: the URL may carry a password.
    where = (
        redis.path
        if redis.scheme == "unix"
        else f"{redis.hostname}:{redis.port or 6379}{redis.path or '/0'}"
    )
    dialect = parse_database_url(settings.database_url).dialect
    console = next(
        (r.canonical for r in request.app.router.resources() if r.canonical == "/console"), None
    )
    env = Environment(
        # An operator's TEMPLATES_DIR may predate the page: fall back to the shipped one.
        loader=FileSystemLoader([settings.templates_dir, DEFAULT_TEMPLATES_DIR]),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    page = env.get_template("pages/root.html.j2").render(
        version=__version__,
        database=_DATABASE_KINDS.get(dialect, dialect),
        redis={"where": where, "ok": redis_ok},
        zalo=settings.zalo.enabled,
        sms_providers=settings.sms_providers,
        console=console,
        links=request.app.get(PAGE_LINKS, {}),
    )
    return web.Response(text=page, content_type="text/html", charset="utf-8")


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _operator(request: web.Request) -> bool:
    """True when the request carries the ops token; False when it carries none.

    A wrong token is refused (401) rather than read as "none", so that an operator's
    mistyped token shows up at once instead of as a quiet summary.
    """
    header = request.headers.get("Authorization")
    if header is None:
        return False
    token = request.app[SETTINGS].ops_token
    scheme, _, given = header.partition(" ")
    if (
        token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
    ):
        return True
    raise BearerTokenRefused("a wrong operations token")


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready or not; the detail (which check failed, operator alerts) with the ops token."""
    operator = _operator(request)
    checks: dict[str, str] = {}

    async def database() -> None:
        async with request.app[DATABASE].reader.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def redis() -> None:
        await request.app[REDIS].ping()

    for name, probe in (("database", database), ("redis", redis)):
        try:
            await asyncio.wait_for(probe(), timeout=2)
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; say which
            checks[name] = f"unavailable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    if not operator:
        return web.json_response(
            {"status": "ok" if ready else "unavailable"}, status=200 if ready else 503
        )
    body: dict[str, object] = {"status": "ready" if ready else "not ready", "checks": checks}
    alerts = await _alerts(request)
    if alerts:
        # Not a reason to stop taking events, but an operator must act.
        body["alerts"] = alerts
    return web.json_response(body, status=200 if ready else 503)


async def _alerts(request: web.Request) -> dict[str, str]:
    settings = request.app[SETTINGS]
    try:
        zalo = await request.app[REDIS].get(alert_key(settings.redis_key_prefix))
    except Exception:  # Redis down is already reported above
        return {}
    if not zalo:
        return {}
    return {"zalo": zalo.decode() if isinstance(zalo, bytes) else str(zalo)}


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text, for a scraper holding the ops token; off without OPS_TOKEN."""
    if not request.app[SETTINGS].ops_token:
        raise NotFound("metrics are off: set OPS_TOKEN to scrape them")
    if not _operator(request):
        raise BearerTokenRefused("the operations token is required")
    return web.Response(
        body=request.app[METRICS].render(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


@web.middleware
async def timing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except GatewayError as exc:  # answered by the problem middleware around this one
        status = problem_body(exc, "")[0]
        raise
    finally:
        resource = request.match_info.route.resource
        # The route's pattern, never the path: /webhooks/sms/{provider}/{secret} keeps
        # the receipt secret out of the metrics, and labels stay few.
        route = resource.canonical if resource is not None else "unmatched"
        request.app[METRICS].requests.labels(route, f"{status // 100}xx").observe(
            time.perf_counter() - started
        )
