"""``create_console(settings)``: the console sub-application, mounted at ``/console/``.

Its middlewares, outermost first: HTML error pages and security headers, Redis sessions,
CSRF, then login and roles. The main application's problem middleware never sees a
console error, so staff get Vietnamese pages, not JSON.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Final

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp_session import session_middleware
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import (
    Conflict,
    GatewayError,
    InputError,
    NotFound,
    PermissionDenied,
)
from gateway.http.console import (
    admin,
    auth,
    conversations,
    desk,
    notices,
    report_page,
    search,
    views,
)
from gateway.http.console.sessions import RedisSessions
from gateway.settings import Settings

log = logging.getLogger(__name__)

# The console's pages, each module with its ``routes`` and the ``ROLES`` allowed on them.
_PAGES: Final = (views, report_page, desk, conversations, notices, search, admin)
# A gateway error a page let through, as the page a person should see (else 503).
_ERROR_PAGES: Final[tuple[tuple[type[GatewayError], str, int], ...]] = (
    (NotFound, "not_found", 404),
    (PermissionDenied, "forbidden", 403),
    (InputError, "http", 400),
    (Conflict, "conflict", 409),
)

# Styles come from our own stylesheet only; no script runs on these pages yet.
_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@web.middleware
async def page_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTTP errors and storage failures as Vietnamese pages; security headers on all."""
    home = request.app.router["home"].url_for()
    if request.path == home.path.rstrip("/"):
        # ``/console`` without its slash (the root page links it so): the session cookie's
        # path is ``/console/``, so go there before a session is looked for.
        raise web.HTTPSeeOther(home, headers=_HEADERS)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            exc.headers.update(_HEADERS)
            raise
        response = auth.problem_page(
            request, "not_found" if exc.status == 404 else "http", exc.status
        )
    except GatewayError as exc:
        response = _error_page(request, exc)
    except (SQLAlchemyError, RedisError, OSError):
        log.exception("console page failed", extra={"path": request.path})
        response = auth.problem_page(request, "unavailable", 503)
    response.headers.update(_HEADERS)
    return response


def _error_page(request: web.Request, exc: GatewayError) -> web.Response:
    for kind, reason, status in _ERROR_PAGES:
        if isinstance(exc, kind):
            return auth.problem_page(request, reason, status)
    log.exception("console page failed", extra={"path": request.path})
    return auth.problem_page(request, "unavailable", 503)


def create_console(settings: Settings) -> web.Application:
    """The console; it uses the main application's database, Redis, clock and settings."""
    storage = RedisSessions(
        settings.redis_key_prefix,
        ttl_seconds=int(auth.IDLE.total_seconds()),
        secure=settings.public_base_url.startswith("https://"),
    )
    app = web.Application(
        middlewares=[
            page_errors,
            session_middleware(storage),
            auth.csrf_middleware,
            auth.auth_middleware,
        ]
    )
    app[auth.STORAGE] = storage
    roles: dict[str, tuple[str, ...]] = {}
    for module in _PAGES:
        roles |= module.ROLES
    app[auth.ROLES] = roles
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(settings.templates_dir),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app.add_routes(auth.routes)
    for module in _PAGES:
        app.add_routes(module.routes)
    static = _static_files(settings.templates_dir / "console" / "static")
    app.router.add_get("/static/{name}", static, name="static")
    return app


_TYPES: Final = {".css": "text/css", ".svg": "image/svg+xml"}


def _static_files(folder: Path) -> Handler:
    """Serve the console's few small static files from memory.

    Read once at start-up: no file is held open while a browser that has already left
    receives it, and a name outside the folder cannot be asked for.
    """
    files: dict[str, tuple[bytes, str, str]] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in _TYPES:
            body = path.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            files[path.name] = (body, _TYPES[path.suffix], etag)

    async def static(request: web.Request) -> web.StreamResponse:
        found = files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        body, content_type, etag = found
        headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type=content_type, headers=headers)

    return static
