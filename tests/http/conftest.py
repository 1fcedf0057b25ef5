"""Fixtures of the HTTP tests: the console rig, and passwords hashed at the cheapest cost.

argon2id at its production cost takes about 0.1 s a hash on this kind of machine; the
console's tests make hundreds. The parameters are read from each stored hash, so a hash
made cheaply verifies exactly as a real one would; ``tests/storage/test_staff_auth.py``
and the CLI tests keep the production parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from gateway.settings import Settings
from gateway.storage import staff
from tests.console_helpers import Console, start_console


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The unknown-user dummy hash is cached: made cheaply here, it must not outlive us.
    staff._dummy_hash.cache_clear()
    monkeypatch.setattr(staff, "_HASHER", PasswordHasher.from_parameters(CHEAPEST))
    yield
    staff._dummy_hash.cache_clear()


@pytest.fixture
async def console(settings: Settings, aiohttp_client: Any) -> Console:
    """The gateway with one user per role (and a disabled one) and one known dossier."""
    return await start_console(settings, aiohttp_client)
