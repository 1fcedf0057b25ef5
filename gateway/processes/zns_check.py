"""At start-up, the configured ZNS templates are checked against their mappings.

``tthc serve`` and ``tthc worker`` call :func:`check_zns_templates` after the secrets
check, when Zalo is configured and some ``ZNS_TEMPLATE_<KIND>`` is set. It asks Zalo for
each template's info (not from the cache: a restart is when settings change) and
compares it with ``ZNS_PARAMS_<KIND>`` (:func:`gateway.delivery.zns_params.check`). Rules:

- A mismatch (a parameter the template lacks, a required parameter nothing fills, a
  ``NUMBER``/``DATE`` parameter given the wrong kind of fact, a template Zalo does not
  know) raises ``ConfigError`` naming the variable and the parameter: the process stops
  with status 2 before anything runs.
- A template that is not ``ENABLE`` (still in review, disabled) is reported as a
  warning naming ``ZNS_TEMPLATE_<KIND>`` and the process starts: notices of that kind go
  by the next channel until Zalo enables it, and since such a template is never cached,
  the first send after that uses it.
- If the check cannot be made (Zalo, Redis or the database unreachable, the token pair
  refused) it logs a warning and the process starts: the same check runs before every
  send and refuses a notice precisely (it then falls back to SMS).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from gateway.chat.runtime import zalo_client
from gateway.delivery.zns_params import Mismatch, check, template_variable
from gateway.errors import ConfigError, GatewayError, TemplateRefused
from gateway.settings import Settings
from gateway.storage.db import create_engine
from providers.zalo.client import ZaloClient
from providers.zalo.zns import ENABLED

log = logging.getLogger(__name__)

# Exceptions that mean "the check could not be made", not "the templates disagree".
_UNREACHABLE = (GatewayError, RedisError, SQLAlchemyError, aiohttp.ClientError, OSError)


class _Unreachable(Exception):
    """The check could not be made; carries why (for the warning)."""


def check_zns_templates(settings: Settings) -> None:
    """Raise ``ConfigError`` if a configured template and its mapping disagree (see the
    module doc); warn and return if the check cannot be made."""
    if not settings.zalo.enabled or not settings.zalo.zns_templates:
        return
    # Each call has its own timeout; this bounds the whole check (token refresh included).
    limit = 3 * settings.zalo.timeout_seconds + 5
    try:
        problems = asyncio.run(asyncio.wait_for(_problems(settings), limit))
    except (_Unreachable, TimeoutError) as exc:
        log.warning(
            "ZNS templates not checked at start-up: Zalo cannot be reached now; each send "
            "checks its template first",
            extra={"error": str(exc) or type(exc).__name__},
        )
        return
    if problems:
        first = problems[0]
        others = "".join(f"; {problem}" for problem in problems[1:])
        raise ConfigError(first.variable, first.detail + others)
    log.info(
        "ZNS templates match their mappings",
        extra={"templates": sorted(settings.zalo.zns_templates.values())},
    )


async def _problems(settings: Settings) -> list[Mismatch]:
    engine = create_engine(settings.database_url, writer=True, pool_size=1)
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        async with aiohttp.ClientSession() as session:
            client = zalo_client(settings, engine, redis, session)
            assert client is not None  # Zalo is enabled
            found = await asyncio.gather(
                *(
                    _check_one(client, settings, kind, template_id)
                    for kind, template_id in sorted(settings.zalo.zns_templates.items())
                )
            )
    finally:
        await redis.aclose()
        await engine.dispose()
    return [problem for problems in found for problem in problems]


async def _check_one(
    client: ZaloClient, settings: Settings, kind: str, template_id: str
) -> list[Mismatch]:
    try:
        template = await client.template_info(template_id, fresh=True)
    except TemplateRefused as exc:
        reason = f"Zalo refuses template {template_id}: {exc.detail}"
        return [Mismatch(template_variable(kind), None, reason)]
    except _UNREACHABLE as exc:
        raise _Unreachable(f"template {template_id}: {exc}") from exc
    if template.status != ENABLED:
        log.warning(
            "%s: template %s is %s, not ENABLE: %s notices skip ZNS until Zalo enables it",
            template_variable(kind),
            template_id,
            template.status,
            kind,
        )
    return check(kind, template, settings.zalo.zns_params.get(kind, {}), status=False)
