"""Console sessions in Redis, under the gateway's key prefix.

The cookie holds only a random session id (``HttpOnly``, ``SameSite=Lax``, ``Secure``
when the gateway is served over https); the data lives in Redis with the idle timeout
as its TTL, so an abandoned session disappears by itself. The idle and absolute limits
are enforced by the console's own clock as well (see :mod:`gateway.http.console.auth`).
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any, Final

from aiohttp import web
from aiohttp_session import AbstractStorage, Session
from redis.asyncio import Redis

from gateway.http.keys import REDIS

COOKIE: Final = "tthc_console"
# What we issue: secrets.token_urlsafe(32). Anything else is not looked up.
_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{43}")


class RedisSessions(AbstractStorage):
    """aiohttp-session storage: one Redis key per session, deleted when it is emptied.

    The Redis client is the gateway's own (``request.config_dict[REDIS]``), opened by the
    main application; ``ttl_seconds`` is refreshed at every save.
    """

    def __init__(self, prefix: str, *, ttl_seconds: int, secure: bool) -> None:
        super().__init__(
            cookie_name=COOKIE,
            path="/console/",
            secure=secure,
            httponly=True,
            samesite="Lax",
            encoder=json.dumps,
            decoder=json.loads,
        )
        self._prefix = f"{prefix}console:session:"
        self._ttl = ttl_seconds

    def _key(self, identity: str) -> str:
        return self._prefix + identity

    @staticmethod
    def _redis(request: web.Request) -> Redis:
        return request.config_dict[REDIS]

    async def load_session(self, request: web.Request) -> Session:
        """The session named by the cookie, or a new empty one."""
        cookie = self.load_cookie(request)
        if cookie is None or not _ID_RE.fullmatch(cookie):
            return Session(None, data=None, new=True)
        raw = await self._redis(request).get(self._key(cookie))
        if raw is None:
            return Session(None, data=None, new=True)
        try:
            data: Any = self._decoder(raw if isinstance(raw, str) else raw.decode())
        except ValueError:
            return Session(None, data=None, new=True)
        return Session(cookie, data=data, new=False)

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        """Store the session (a new one gets a fresh id); an empty one is deleted."""
        if session.empty:
            if session.identity is not None:
                await self.forget(request, str(session.identity))
            self.save_cookie(response, "")
            return
        identity = str(session.identity) if session.identity is not None else None
        if identity is None:
            identity = secrets.token_urlsafe(32)
        await self._redis(request).set(
            self._key(identity), self._encoder(self._get_session_data(session)), ex=self._ttl
        )
        self.save_cookie(response, identity)

    async def forget(self, request: web.Request, identity: str) -> None:
        """Delete a session's data: its id is worthless from now on."""
        await self._redis(request).delete(self._key(identity))
