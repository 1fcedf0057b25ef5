"""Guessing guards: Redis counters against guessing dossier codes and phone digits.

Three things are counted, each key expiring with its window (``INCR`` then ``EXPIRE NX``
in one transaction, so the window starts at the first count and is never extended):

- per requester (``"zalo:<user id>"``, ``"web:<session digest>"``): wrong proofs, within
  ``chat.lookup_window_seconds``; at ``chat.lookup_max_failures`` the requester is
  :meth:`Guards.locked`. Also the distinct dossier codes asked for in the same window
  (:meth:`Guards.code_asked`; the caller compares it to ``chat.lookup_max_codes``).
- per dossier, whoever asks: wrong proofs within ``trust.dossier_window_seconds``;
- per phone, whoever asks and for whichever dossier: the same.

At ``trust.dossier_max_failures`` wrong proofs of a dossier or of its phone,
:meth:`Guards.needs_code` says the last four digits no longer open it: only a one-time
code (or a stronger proof) does. This stops many requesters (or many web sessions)
sharing out the guesses of one dossier's four digits.

Keys live under ``settings.redis_key_prefix + "trust:"``. A phone number never appears
in a key: the per-phone key holds a keyed digest of it (HMAC-SHA256 with the trust key,
see :func:`gateway.trust.otp.hmac_key`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from redis.asyncio import Redis

from gateway.settings import Settings
from gateway.trust.otp import hmac_key

log = logging.getLogger(__name__)


class Guards:
    """Counters of wrong proofs and codes asked, per requester, per dossier and per phone."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._key = hmac_key(settings)

    def _name(self, *parts: str) -> str:
        return f"{self.settings.redis_key_prefix}trust:" + ":".join(parts)

    def _phone_name(self, phone_e164: str) -> str:
        digest = hmac.new(self._key, f"phone:{phone_e164}".encode(), hashlib.sha256)
        return self._name("phone", digest.hexdigest()[:32])

    async def locked(self, requester: str) -> bool:
        """Whether the requester's wrong proofs reached ``chat.lookup_max_failures``."""
        failures = await self.redis.get(self._name("failures", requester))
        return int(failures or 0) >= self.settings.chat.lookup_max_failures

    async def code_asked(self, requester: str, code: str) -> int:
        """Record that the requester asked about dossier ``code``; returns how many
        distinct codes they asked about in the window."""
        key = self._name("codes", requester)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, code)
            pipe.expire(key, self.settings.chat.lookup_window_seconds, nx=True)
            pipe.scard(key)
            _, _, count = await pipe.execute()
        return int(count)

    async def failed(self, requester: str, dossier_code: str, phone_e164: str | None) -> int:
        """Count one wrong proof for the requester, the dossier and its phone; returns
        the requester's count in the window."""
        chat, trust = self.settings.chat, self.settings.trust
        counted = [
            (self._name("failures", requester), chat.lookup_window_seconds),
            (self._name("dossier", dossier_code), trust.dossier_window_seconds),
        ]
        if phone_e164:
            counted.append((self._phone_name(phone_e164), trust.dossier_window_seconds))
        async with self.redis.pipeline(transaction=True) as pipe:
            for key, window in counted:
                pipe.incr(key)
                pipe.expire(key, window, nx=True)
            results = await pipe.execute()
        count = int(results[0])
        if count == chat.lookup_max_failures:
            log.warning("lookups locked after wrong proofs", extra={"requester": requester})
        return count

    async def needs_code(self, dossier_code: str, phone_e164: str | None) -> bool:
        """Whether the dossier, or its phone, had ``trust.dossier_max_failures`` wrong
        proofs within the window: then only a one-time code opens it."""
        keys = [self._name("dossier", dossier_code)]
        if phone_e164:
            keys.append(self._phone_name(phone_e164))
        counts = await self.redis.mget(keys)
        limit = self.settings.trust.dossier_max_failures
        return any(int(count or 0) >= limit for count in counts)
