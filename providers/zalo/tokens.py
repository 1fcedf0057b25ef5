"""The OA's OAuth v4 token pair and its single-flight refresh.

Wire contract: ``docs/zalo.md`` (§ OAuth and tokens). Zalo refresh tokens are single-use
and rotate on every refresh, so a refresh is single-flight across processes::

    current() ── pair valid beyond the refresh-ahead margin? ── yes ──► access token
                      │ no
                      ▼
    refresh(stale) ── asyncio lock (this process)
                      └─ Redis lock {prefix}zalo:refresh-lock (SET NX PX, random owner,
                         released by compare-and-delete; other processes)
                          ├─ store holds a valid pair other than ``stale``? ── use it
                          └─ else POST the refresh token to Zalo, save the new pair,
                             then use it

The new pair is saved before it is used. A refused refresh calls ``on_alert`` (an OA
admin must grant access again) and raises ``TokenRefreshFailed``; a network failure on
refresh is temporary and leaves the stored pair alone. Without Redis there is no lock,
hence no refresh: a temporary error rather than two processes spending the same token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.errors import (
    ProviderError,
    TemporaryProviderError,
    TokenRefreshFailed,
    TokenRejected,
)
from gateway.settings import ZaloSettings
from providers.zalo.errors import OA, OAUTH
from providers.zalo.transport import ZaloTransport, int_or_none

log = logging.getLogger(__name__)

OAUTH_PATH = "/v4/oa/access_token"
_RELEASE_LOCK = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class TokenPair:
    """The OA's access token, its rotating refresh token and the access expiry (epoch s)."""

    access_token: str
    refresh_token: str
    expires_at: float


class TokenStore(Protocol):
    """Where the token pair outlives the process (a lost refresh token means re-consent)."""

    async def load(self) -> TokenPair | None:
        """The stored pair, or None when none was ever stored."""
        ...

    async def save(self, pair: TokenPair) -> None:
        """Replace the stored pair."""
        ...


def appsecret_proof(app_secret: str, access_token: str) -> str:
    """Hex HMAC-SHA256 of the access token keyed with the app secret."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


class AccessTokens:
    """The OA's access token, refreshed single-flight across processes (module diagram)."""

    LOCK_POLL_SECONDS = 0.02

    def __init__(
        self,
        settings: ZaloSettings,
        transport: ZaloTransport,
        redis: Redis,
        *,
        key_prefix: str,
        store: TokenStore,
        clock: Callable[[], float] = time.time,
        on_alert: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._redis = redis
        self._lock_key = f"{key_prefix}zalo:refresh-lock"
        self._store = store
        self._clock = clock
        self._on_alert = on_alert
        self._pair: TokenPair | None = None
        self._local = asyncio.Lock()
        # Long enough for one refresh call and one store write.
        self._lock_ms = int((2 * settings.timeout_seconds + 5) * 1000)

    async def current(self) -> str:
        """A usable access token, refreshed ahead of its expiry."""
        pair = self._pair or await self._store.load()
        self._pair = pair
        if pair is None:
            return (await self.refresh(None)).access_token
        now = self._clock()
        if now < pair.expires_at - self._settings.refresh_ahead_seconds:
            return pair.access_token
        try:
            return (await self.refresh(pair.access_token)).access_token
        except TemporaryProviderError as exc:
            if now < pair.expires_at:  # still valid: try again on a later call
                log.warning("zalo token refresh postponed", extra={"error": exc.detail})
                return pair.access_token
            raise

    async def refresh(self, stale: str | None) -> TokenPair:
        """Single-flight refresh; ``stale`` is the access token that is no longer good."""
        try:
            return await self._refresh_locked(stale)
        except RedisError as exc:
            raise TemporaryProviderError(
                OA, f"the token refresh lock is unavailable: {exc}", "refresh_lock"
            ) from exc

    async def _refresh_locked(self, stale: str | None) -> TokenPair:
        async with self._local:
            if self._usable_instead(self._pair, stale):
                assert self._pair is not None
                return self._pair
            owner = secrets.token_hex(16)
            await self._acquire(owner)
            try:
                stored = await self._store.load()
                if self._usable_instead(stored, stale):
                    assert stored is not None
                    self._pair = stored  # another process refreshed while we waited
                    return stored
                refresh_token = stored.refresh_token if stored else self._settings.refresh_token
                pair = await self._call_refresh(refresh_token)
                await self._store.save(pair)  # before anyone uses it
                self._pair = pair
                log.info("zalo token pair refreshed", extra={"expires_at": pair.expires_at})
                return pair
            finally:
                await self._redis.eval(_RELEASE_LOCK, 1, self._lock_key, owner)

    def _usable_instead(self, pair: TokenPair | None, stale: str | None) -> bool:
        return pair is not None and pair.access_token != stale and self._clock() < pair.expires_at

    async def _acquire(self, owner: str) -> None:
        deadline = time.monotonic() + self._lock_ms / 1000 + 1
        while not await self._redis.set(self._lock_key, owner, nx=True, px=self._lock_ms):
            if time.monotonic() > deadline:
                raise TemporaryProviderError(
                    OA, "the token refresh lock is held too long", "refresh_lock"
                )
            await asyncio.sleep(self.LOCK_POLL_SECONDS)

    async def _call_refresh(self, refresh_token: str) -> TokenPair:
        if not refresh_token:
            await self._refused("no token pair stored and ZALO_REFRESH_TOKEN is empty")
        url = self._settings.oauth_base_url.rstrip("/") + OAUTH_PATH
        form = {
            "refresh_token": refresh_token,
            "app_id": self._settings.app_id,
            "grant_type": "refresh_token",
        }
        headers = {"secret_key": self._settings.app_secret}
        try:
            body = await self._transport.exchange(OAUTH, "POST", url, headers, data=form)
        except TokenRejected as exc:
            await self._refused(exc.detail)
        except TemporaryProviderError as exc:
            # The answer may be lost after Zalo rotated the pair; the next refresh tells.
            log.error("zalo token refresh got no usable answer", extra={"error": exc.detail})
            raise
        except ProviderError as exc:
            await self._refused(exc.detail)
        access, new_refresh = body.get("access_token"), body.get("refresh_token")
        if not isinstance(access, str) or not access:
            await self._refused("the refresh answer has no access_token")
        if not isinstance(new_refresh, str) or not new_refresh:
            log.error("zalo refresh answer without a refresh_token; keeping the old one")
            new_refresh = refresh_token
        expires_in = int_or_none(body.get("expires_in"))
        if expires_in is None:
            log.warning("zalo refresh answer without a usable expires_in; assuming 1 h")
            expires_in = 3600
        return TokenPair(access, new_refresh, self._clock() + expires_in)

    async def _refused(self, reason: str) -> NoReturn:
        message = f"zalo token refresh refused: {reason}"
        log.error(
            "zalo token refresh failed; an OA admin must grant access again",
            extra={"reason": reason},
        )
        if self._on_alert is not None:
            await self._on_alert(message)
        raise TokenRefreshFailed(OA, message, "refresh_refused")
