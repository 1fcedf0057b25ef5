"""Guessing guards on a real Redis, under a private key prefix.

Wrong proofs are counted per requester (the lock), per dossier and per phone (the point
past which the last four digits no longer open a dossier, whoever guesses); keys expire
with their window, and no key holds a phone number.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from gateway.settings import Settings
from gateway.trust.guards import Guards

CODE, OTHER = "000.00.12.H19-260401-0001", "000.00.12.H19-260401-0002"
PHONE = "+84912345678"


@pytest.fixture
def guard_settings(redis_server: str, tmp_path: Path) -> Settings:
    return Settings.from_mapping(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
            "REDIS_URL": redis_server,
            "REDIS_KEY_PREFIX": f"tthc-test-{os.getpid()}-{uuid.uuid4().hex[:6]}:",
            "CITIZEN_SECRET": "guards-secret-0f6e2d9a7c41b853-for-tests",
            "LOOKUP_MAX_FAILURES": "3",
            "LOOKUP_DOSSIER_MAX_FAILURES": "4",
            "LOOKUP_DOSSIER_WINDOW_SECONDS": "600",
        }
    )


@pytest.fixture
async def redis(guard_settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(guard_settings.redis_url)
    yield client
    async for key in client.scan_iter(match=f"{guard_settings.redis_key_prefix}*"):
        await client.delete(key)
    await client.aclose()


@pytest.fixture
def guards(redis: Redis, guard_settings: Settings) -> Guards:
    return Guards(redis, guard_settings)


async def keys(redis: Redis, settings: Settings) -> dict[str, int]:
    """Every key of this test, with its TTL."""
    found: dict[str, int] = {}
    async for key in redis.scan_iter(match=f"{settings.redis_key_prefix}*"):
        name = key.decode()
        found[name.removeprefix(settings.redis_key_prefix)] = await redis.ttl(name)
    return found


async def test_the_requester_is_locked_after_max_failures(
    guards: Guards, guard_settings: Settings
) -> None:
    assert guard_settings.chat.lookup_max_failures == 3
    assert not await guards.locked("zalo:1")
    assert [await guards.failed("zalo:1", CODE, PHONE) for _ in range(2)] == [1, 2]
    assert not await guards.locked("zalo:1")
    assert await guards.failed("zalo:1", OTHER, None) == 3
    assert await guards.locked("zalo:1")
    assert not await guards.locked("zalo:2")  # others are not concerned


async def test_a_dossier_needs_a_code_after_failures_by_anyone(guards: Guards) -> None:
    # Four web sessions, one wrong guess each: none is locked, the dossier is.
    for n in range(3):
        await guards.failed(f"web:{n:016x}", CODE, PHONE)
        assert not await guards.needs_code(CODE, PHONE)
    await guards.failed("web:3", CODE, PHONE)
    assert await guards.needs_code(CODE, PHONE)
    assert await guards.needs_code(CODE, None)
    assert not await guards.locked("web:3")
    assert not await guards.needs_code(OTHER, "+84987654321")


async def test_a_phone_needs_a_code_after_failures_on_any_of_its_dossiers(
    guards: Guards,
) -> None:
    for n in range(4):
        await guards.failed(f"zalo:{n}", f"000.00.12.H19-260401-000{n}", PHONE)
    assert await guards.needs_code(OTHER, PHONE)  # a dossier of that phone not yet guessed
    assert not await guards.needs_code(OTHER, "+84987654321")
    assert not await guards.needs_code(OTHER, None)


async def test_distinct_codes_asked_are_counted(guards: Guards) -> None:
    assert [await guards.code_asked("zalo:1", c) for c in (CODE, CODE, OTHER)] == [1, 1, 2]
    assert await guards.code_asked("zalo:2", CODE) == 1


async def test_keys_expire_with_their_window_and_hold_no_phone(
    guards: Guards, redis: Redis, guard_settings: Settings
) -> None:
    await guards.failed("zalo:1", CODE, PHONE)
    await guards.code_asked("zalo:1", CODE)
    found = await keys(redis, guard_settings)
    assert len(found) == 4
    assert all(key.startswith("trust:") for key in found)
    assert not any(digits in key for key in found for digits in (PHONE, PHONE[1:], "912345678"))
    windows = {key.split(":")[1]: ttl for key, ttl in found.items()}
    assert 3000 < windows["failures"] <= 3600 and 3000 < windows["codes"] <= 3600
    assert 500 < windows["dossier"] <= 600 and 500 < windows["phone"] <= 600

    # A later failure does not extend the window (EXPIRE NX).
    await redis.expire(f"{guard_settings.redis_key_prefix}trust:dossier:{CODE}", 5)
    await guards.failed("zalo:2", CODE, PHONE)
    assert 0 < await redis.ttl(f"{guard_settings.redis_key_prefix}trust:dossier:{CODE}") <= 5

    # The phone's key is a keyed digest: another secret, another key.
    other = Guards(redis, Settings.from_mapping({**guard_settings.env, "CITIZEN_SECRET": "y" * 40}))
    await other.failed("zalo:3", OTHER, PHONE)
    phone_keys = [k for k in await keys(redis, guard_settings) if k.startswith("trust:phone:")]
    assert len(phone_keys) == 2
