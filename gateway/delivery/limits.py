"""Per-provider rate caps and circuit breakers, shared by every worker through Redis."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

# After this many temporary failures in a row a provider is skipped for a while, so
# notices fail over at once instead of each waiting for its own timeout.
CIRCUIT_THRESHOLD = 5
CIRCUIT_OPEN_SECONDS = 30


class ProviderLimits:
    """Rate caps (messages per second) and circuit state per provider."""

    def __init__(self, redis: Redis, prefix: str, per_second: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._per_second = per_second

    async def acquire(self, provider: str, count: int = 1) -> None:
        """Wait until ``count`` more messages stay under the provider's cap.

        Tokens are taken per second, as many as the current second has left; what cannot
        be granted is given back and asked for again in the next second.
        """
        remaining = count
        while remaining:
            second = int(time.time())
            key = f"{self._prefix}rate:{provider}:{second}"
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incrby(key, remaining)
                pipe.expire(key, 2)
                total, _ = await pipe.execute()
            granted = max(0, min(remaining, self._per_second - (total - remaining)))
            if granted < remaining:
                await self._redis.decrby(key, remaining - granted)
            remaining -= granted
            if remaining:
                await asyncio.sleep(max(0.0, second + 1 - time.time()))

    async def is_open(self, provider: str) -> bool:
        return bool(await self._redis.exists(f"{self._prefix}circuit-open:{provider}"))

    async def failed(self, provider: str) -> None:
        key = f"{self._prefix}circuit:{provider}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 60)
            count, _ = await pipe.execute()
        if count >= CIRCUIT_THRESHOLD:
            await self._redis.set(
                f"{self._prefix}circuit-open:{provider}", "1", ex=CIRCUIT_OPEN_SECONDS
            )

    async def succeeded(self, provider: str) -> None:
        await self._redis.delete(f"{self._prefix}circuit:{provider}")
