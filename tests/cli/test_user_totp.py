"""``tthc user totp USERNAME --disable``: an admin who lost the phone, on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pyotp
import pytest

from gateway.settings import Settings
from gateway.storage import staff as staff_store
from gateway.storage.db import Database
from gateway.storage.tables import staff_audit_log, staff_users
from tests.cli.test_users import add, stored, tthc_user
from tests.staff_helpers import empty_staff_tables

ENROLLED = datetime(2026, 4, 24, 2, 0, tzinfo=UTC)
RESET = datetime(2026, 4, 25, 3, 0, tzinfo=UTC)


@pytest.fixture
def staff_settings(settings: Settings) -> Settings:
    asyncio.run(empty_staff_tables(settings.database_url))
    return settings


def enrol(settings: Settings, username: str) -> str:
    """Enable ``username``'s second factor as the console does; returns the secret."""

    async def run() -> str:
        db = Database.open(settings.database_url)
        try:
            [user] = [u for u in await staff_store.list_users(db.reader) if u.username == username]
            secret = await staff_store.start_totp(db.writer, user.id)
            code = pyotp.TOTP(secret).at(ENROLLED)
            assert await staff_store.confirm_totp(db.writer, user.id, code, ENROLLED)
            return secret
        finally:
            await db.close()

    return asyncio.run(run())


def test_totp_disable_removes_the_second_factor_and_is_audited(
    staff_settings: Settings,
) -> None:
    add(staff_settings, "minh", "admin")
    secret = enrol(staff_settings, "minh")
    [row] = stored(staff_settings)
    assert row["totp_enabled_at"] == ENROLLED

    status, out, err = tthc_user(staff_settings, "totp", "minh", "--disable", at=RESET)
    assert (status, out) == (0, "")
    assert "the second factor of minh is removed" in err
    [row] = stored(staff_settings)
    assert (row["totp_secret"], row["totp_enabled_at"], row["totp_last_step"]) == (None, None, None)
    [entry] = stored(staff_settings, staff_audit_log)
    assert (entry["action"], entry["username"], entry["target"]) == (
        "totp_reset",
        "minh",
        f"staff:{row['id']}",
    )
    assert entry["detail"] == {"via": "cli"} and entry["at"] == RESET
    assert secret not in str(entry) and secret not in err

    # Nothing left to remove: said so, nothing recorded.
    status, _, err = tthc_user(staff_settings, "totp", "minh", "--disable", at=RESET)
    assert status == 0 and "was not set; nothing changed" in err
    assert len(stored(staff_settings, staff_audit_log)) == 1


def test_totp_needs_disable_and_a_known_user(staff_settings: Settings) -> None:
    status, _, err = tthc_user(staff_settings, "totp", "nobody", "--disable")
    assert status == 1 and "no staff user named 'nobody'" in err
    assert stored(staff_settings, staff_users) == []
