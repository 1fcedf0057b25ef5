"""Per-provider rate caps and circuit breakers, on the real Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.delivery.limits import CIRCUIT_THRESHOLD, ProviderLimits


@pytest.fixture
async def limits(redis_server: str) -> AsyncIterator[ProviderLimits]:
    redis = Redis.from_url(redis_server)
    prefix = f"tthc-test-limits-{uuid.uuid4().hex[:8]}:"
    yield ProviderLimits(redis, prefix, per_second=5)
    async for key in redis.scan_iter(match=f"{prefix}*"):
        await redis.delete(key)
    await redis.aclose()


async def test_a_cap_spreads_messages_over_seconds(limits: ProviderLimits) -> None:
    started = time.monotonic()
    await limits.acquire("esms", 5)
    assert time.monotonic() - started < 0.9  # the first five fit in the current second
    await limits.acquire("esms", 7)
    # Twelve at five a second need the third second at least.
    assert time.monotonic() - started > 1.0


async def test_caps_are_per_provider(limits: ProviderLimits) -> None:
    started = time.monotonic()
    await limits.acquire("esms", 5)
    await limits.acquire("speedsms", 5)
    assert time.monotonic() - started < 0.9


async def test_the_circuit_opens_after_repeated_failures_and_a_success_resets(
    limits: ProviderLimits,
) -> None:
    for _ in range(CIRCUIT_THRESHOLD - 1):
        await limits.failed("esms")
    assert not await limits.is_open("esms")
    await limits.succeeded("esms")
    for _ in range(CIRCUIT_THRESHOLD - 1):
        await limits.failed("esms")
    assert not await limits.is_open("esms")  # the success started the count again
    await limits.failed("esms")
    assert await limits.is_open("esms")
    assert not await limits.is_open("speedsms")
