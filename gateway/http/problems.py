"""One middleware turns every error into an ``application/problem+json`` answer (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import (
    AuthenticationFailed,
    Conflict,
    GatewayError,
    MalformedInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ProviderError,
    StorageUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from gateway.logs import redact_secret_paths

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"

# Most specific first: the first isinstance match wins.
_STATUS: tuple[tuple[type[GatewayError], int, str, str], ...] = (
    (ValidationFailed, 422, "validation", "Invalid fields"),
    (MalformedInput, 400, "malformed", "Malformed request"),
    (UnsupportedMediaType, 415, "media-type", "Unsupported media type"),
    (PayloadTooLarge, 413, "too-large", "Payload too large"),
    (AuthenticationFailed, 401, "unauthenticated", "Authentication failed"),
    (PermissionDenied, 403, "forbidden", "Not allowed"),
    (NotFound, 404, "not-found", "Not found"),
    (Conflict, 409, "conflict", "Conflict"),
    (StorageUnavailable, 503, "unavailable", "Service unavailable"),
    (ProviderError, 502, "provider", "Upstream provider failed"),
)


def problem_body(error: GatewayError, instance: str) -> tuple[int, dict[str, Any]]:
    """The status and problem document for a domain error."""
    status, slug, title = next(
        ((st, sl, ti) for kind, st, sl, ti in _STATUS if isinstance(error, kind)),
        (500, "internal", "Internal error"),
    )
    body: dict[str, Any] = {
        "type": f"urn:tthc:problem:{slug}",
        "title": title,
        "status": status,
        "detail": error.detail,
        "instance": instance,
    }
    if isinstance(error, ValidationFailed):
        body["errors"] = [{"field": e.field, "message": e.message} for e in error.errors]
    return status, body


def _instance(request: web.Request) -> str:
    """The request's path for answers and logs, without the SMS receipt path secret."""
    return redact_secret_paths(request.path)


def problem_response(error: GatewayError, instance: str) -> web.Response:
    status, body = problem_body(error, instance)
    response = web.json_response(body, status=status, content_type=PROBLEM_TYPE)
    if isinstance(error, StorageUnavailable):
        response.headers["Retry-After"] = str(error.retry_after_seconds)
    if isinstance(error, AuthenticationFailed):
        response.headers["WWW-Authenticate"] = error.challenge
    return response


def _http_problem(exc: web.HTTPException, instance: str) -> web.Response:
    body = {
        "type": f"urn:tthc:problem:http-{exc.status}",
        "title": exc.reason,
        "status": exc.status,
        "detail": exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason,
        "instance": instance,
    }
    response = web.json_response(body, status=exc.status, content_type=PROBLEM_TYPE)
    for name in ("Allow", "Location"):
        if name in exc.headers:
            response.headers[name] = exc.headers[name]
    return response


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as exc:
        return problem_response(exc, _instance(request))
    except web.HTTPRequestEntityTooLarge as exc:
        return problem_response(
            PayloadTooLarge(exc.text or "the body is too large"), _instance(request)
        )
    except web.RequestPayloadError as exc:  # e.g. a chunked body whose framing is wrong
        detail = "the body could not be read as sent (is its Content-Encoding right?)"
        log.info("unreadable body", extra={"path": _instance(request), "error": str(exc)})
        return problem_response(MalformedInput(detail), _instance(request))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_problem(exc, _instance(request))
    except ConnectionResetError:
        if not _client_gone(request):
            return _unhandled(request)
        # The client hung up mid-request (often mid-body): nothing went wrong here and
        # nobody is left to answer; aiohttp drops the answer below without a word.
        log.info("client closed the connection", extra={"path": _instance(request)})
        return problem_response(
            MalformedInput("the connection was closed before the request was read"),
            _instance(request),
        )
    except Exception:
        return _unhandled(request)


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _unhandled(request: web.Request) -> web.Response:
    """A 500 problem; the exception being handled is logged with its traceback."""
    log.exception("unhandled error", extra={"path": _instance(request)})
    body = {
        "type": "urn:tthc:problem:internal",
        "title": "Internal error",
        "status": 500,
        "detail": "an unexpected error happened; it was logged",
        "instance": _instance(request),
    }
    return web.json_response(body, status=500, content_type=PROBLEM_TYPE)
