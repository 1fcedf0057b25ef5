"""Staff console passwords and the staff audit log (gateway.storage.staff), on both databases.

Passwords are argon2 hashes, checked at the same cost whether or not the user exists;
the audit log only grows, pages newest first and never holds a secret or a full phone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher

from gateway.errors import NotFound, ValidationFailed
from gateway.storage import staff as store
from gateway.storage.db import Database
from gateway.storage.tables import staff_audit_log, staff_users
from tests.staff_helpers import empty_staff_tables, rows

NOW = datetime(2026, 4, 24, 2, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=3)
PASSWORD = "mật khẩu dài 2026"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    await empty_staff_tables(database_url)
    database = Database.open(database_url)
    try:
        await store.add_user(database.writer, "hoa", "Nguyễn Thị Hoa", "hotline", NOW)
        yield database
    finally:
        await database.close()


async def user_row(db: Database, username: str = "hoa") -> dict[str, object]:
    [row] = await rows(db.reader, staff_users, staff_users.c.username == username)
    return row


async def test_a_password_is_stored_as_an_argon2_hash(db: Database) -> None:
    assert (await user_row(db))["password_hash"] is None
    await store.set_password(db.writer, "hoa", PASSWORD, LATER)
    row = await user_row(db)
    assert str(row["password_hash"]).startswith("$argon2id$")
    assert PASSWORD not in str(row)
    assert row["password_changed_at"] == LATER


async def test_verify_accepts_only_the_right_password_of_an_enabled_user(db: Database) -> None:
    assert await store.verify_password(db.reader, "hoa", PASSWORD, NOW) is None  # none set
    await store.set_password(db.writer, "hoa", PASSWORD, NOW)
    user = await store.verify_password(db.writer, "hoa", PASSWORD, LATER)
    assert user is not None and (user.username, user.role) == ("hoa", "hotline")

    for wrong in (PASSWORD + " ", PASSWORD.upper(), "", "x" * 10_000):
        assert await store.verify_password(db.writer, "hoa", wrong, LATER) is None
    assert await store.verify_password(db.writer, "nobody", PASSWORD, LATER) is None

    await store.disable_user(db.writer, "hoa", LATER)
    assert await store.verify_password(db.writer, "hoa", PASSWORD, LATER) is None


async def test_a_new_password_replaces_the_old_one(db: Database) -> None:
    await store.set_password(db.writer, "hoa", PASSWORD, NOW)
    await store.set_password(db.writer, "hoa", "một mật khẩu khác", LATER)
    assert await store.verify_password(db.writer, "hoa", PASSWORD, LATER) is None
    assert await store.verify_password(db.writer, "hoa", "một mật khẩu khác", LATER) is not None


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "is required"),
        ("123456789", "must be at least 10 characters"),
        ("x" * 201, "must be at most 200 characters"),
    ],
)
async def test_a_bad_password_is_refused_with_the_reason_and_nothing_written(
    db: Database, password: str, message: str
) -> None:
    before = await user_row(db)
    with pytest.raises(ValidationFailed) as refused:
        await store.set_password(db.writer, "hoa", password, LATER)
    [error] = refused.value.errors
    assert (error.field, error.message) == ("password", message)
    if password:
        assert password not in str(refused.value)
    assert await user_row(db) == before
    assert await rows(db.reader, staff_audit_log) == []


async def test_an_unknown_user_has_no_password_to_set(db: Database) -> None:
    with pytest.raises(NotFound, match="no staff user named 'nobody'"):
        await store.set_password(db.writer, "nobody", PASSWORD, LATER)
    assert await rows(db.reader, staff_audit_log) == []


async def test_a_user_can_be_added_with_a_password(db: Database) -> None:
    await store.add_user(db.writer, "lan", "Lê Lan", "auditor", NOW, password=PASSWORD)
    row = await user_row(db, "lan")
    assert str(row["password_hash"]).startswith("$argon2")
    assert row["password_changed_at"] == NOW
    assert await store.verify_password(db.writer, "lan", PASSWORD, NOW) is not None

    with pytest.raises(ValidationFailed):
        await store.add_user(db.writer, "minh", "Minh", "admin", NOW, password="short")
    assert [r["username"] for r in await rows(db.reader, staff_users)] == ["hoa", "lan"]


async def test_a_hash_with_outdated_parameters_is_replaced_at_login(db: Database) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    async with db.writer.begin() as conn:
        await conn.execute(staff_users.update().values(password_hash=weak, password_changed_at=NOW))
    assert await store.verify_password(db.writer, "hoa", PASSWORD, LATER) is not None
    row = await user_row(db)
    fresh = str(row["password_hash"])
    assert fresh != weak and not PasswordHasher().check_needs_rehash(fresh)
    assert row["password_changed_at"] == NOW  # the password itself did not change
    assert await store.verify_password(db.writer, "hoa", PASSWORD, LATER) is not None
    # A wrong password rehashes nothing.
    assert await store.verify_password(db.writer, "hoa", "sai mật khẩu rồi", LATER) is None
    assert (await user_row(db))["password_hash"] == fresh


async def test_an_unknown_user_costs_as_much_as_a_wrong_password(db: Database) -> None:
    await store.set_password(db.writer, "hoa", PASSWORD, NOW)

    async def cost(username: str) -> float:
        start = time.perf_counter()
        for _ in range(3):
            assert await store.verify_password(db.reader, username, "sai mật khẩu", NOW) is None
        return time.perf_counter() - start

    await cost("nobody")  # the first call makes the dummy hash
    wrong, unknown = await cost("hoa"), await cost("nobody")
    # Without a dummy verification an unknown user answers in a few milliseconds.
    assert unknown > wrong / 3, (unknown, wrong)


async def test_a_password_never_reaches_the_logs(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await store.set_password(db.writer, "hoa", PASSWORD, NOW)
    await store.verify_password(db.writer, "hoa", PASSWORD, NOW)
    await store.verify_password(db.writer, "hoa", PASSWORD + "!", NOW)
    await store.add_user(db.writer, "lan", "Lê Lan", "auditor", NOW, password=PASSWORD)
    with pytest.raises(ValidationFailed):
        await store.set_password(db.writer, "hoa", "ngắn quá", NOW)
    assert PASSWORD not in caplog.text and "ngắn quá" not in caplog.text


async def test_changing_a_password_is_recorded_in_the_audit_log(db: Database) -> None:
    await store.set_password(db.writer, "hoa", PASSWORD, NOW)
    await store.add_user(db.writer, "minh", "Minh", "admin", NOW)
    [minh] = [u for u in await store.list_users(db.reader) if u.username == "minh"]
    await store.set_password(
        db.writer, "hoa", PASSWORD + "!", LATER, actor=minh, via="console", remote_addr="::1"
    )
    items, after = await store.list_actions(db.reader, limit=10, after=None)
    assert after is None
    hoa_id = (await user_row(db))["id"]
    assert [
        (i.staff_id, i.username, i.action, i.target, i.detail, i.remote_addr) for i in items
    ] == [
        (minh.id, "minh", "password_changed", f"staff:{hoa_id}", {"via": "console"}, "::1"),
        (hoa_id, "hoa", "password_changed", f"staff:{hoa_id}", {"via": "cli"}, None),
    ]
    assert [i.at for i in items] == [LATER, NOW]
    assert PASSWORD not in str(items)


async def test_the_audit_log_pages_newest_first_with_filters(db: Database) -> None:
    for minute, (staff_id, action) in enumerate(
        [(1, "login"), (2, "login"), (1, "reveal_phone"), (None, "login_failed"), (1, "logout")]
    ):
        await store.record_action(
            db.writer,
            at=NOW + timedelta(minutes=minute),
            action=action,
            username="hoa" if staff_id == 1 else ("lan" if staff_id == 2 else "ai.do"),
            staff_id=staff_id,
            target="report:12" if action == "reveal_phone" else None,
            remote_addr="203.0.113.7",
        )

    first, cursor = await store.list_actions(db.reader, limit=2, after=None)
    assert [i.action for i in first] == ["logout", "login_failed"]
    assert cursor == first[-1].id
    second, cursor = await store.list_actions(db.reader, limit=2, after=cursor)
    assert [i.action for i in second] == ["reveal_phone", "login"]
    third, cursor = await store.list_actions(db.reader, limit=2, after=cursor)
    assert ([i.action for i in third], cursor) == (["login"], None)
    assert third[0].username == "hoa" and third[0].at == NOW

    mine, _ = await store.list_actions(db.reader, limit=10, after=None, staff_id=1)
    assert [i.action for i in mine] == ["logout", "reveal_phone", "login"]
    logins, _ = await store.list_actions(db.reader, limit=10, after=None, action="login")
    assert [i.username for i in logins] == ["lan", "hoa"]
    failed, _ = await store.list_actions(db.reader, limit=10, after=None, action="login_failed")
    assert [(i.staff_id, i.username) for i in failed] == [(None, "ai.do")]
    assert await store.list_actions(db.reader, limit=10, after=None, staff_id=3) == ([], None)


async def test_the_audit_log_never_holds_a_full_phone_or_a_secret(db: Database) -> None:
    entry = await store.record_action(
        db.writer,
        at=NOW,
        action="export",
        username="hoa",
        staff_id=1,
        target="phone:0912345678",
        detail={"query": {"phone": "+84912345678", "codes": ["000.00.12.H19-260401-0001"]}},
    )
    [item], _ = await store.list_actions(db.reader, limit=1, after=None)
    assert item.id == entry
    assert "912345678" not in f"{item.target} {item.detail}"
    assert item.detail is not None
    assert item.detail["query"]["codes"] == ["000.00.12.H19-260401-0001"]
    assert item.detail["query"]["phone"].startswith("+84")
    for secret in ("password", "new_password", "token", "api_token"):
        with pytest.raises(ValueError, match="never stores"):
            await store.record_action(
                db.writer, at=NOW, action="login", username="hoa", detail={secret: "x"}
            )
    with pytest.raises(ValueError, match="not an audit action"):
        await store.record_action(db.writer, at=NOW, action="Drop table", username="hoa")
    assert len(await rows(db.reader, staff_audit_log)) == 1


async def test_an_action_recorded_in_a_transaction_falls_with_it(db: Database) -> None:
    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        async with db.writer.begin() as conn:
            await store.record_action(
                conn, at=NOW, action="resend_notice", username="hoa", target="notice:n1"
            )
            raise Abandon
    assert await rows(db.reader, staff_audit_log) == []
    async with db.writer.begin() as conn:
        await store.record_action(
            conn, at=NOW, action="resend_notice", username="hoa", target="notice:n1"
        )
    [row] = await rows(db.reader, staff_audit_log)
    assert (row["action"], row["target"], row["staff_id"]) == ("resend_notice", "notice:n1", None)


async def test_a_user_is_found_by_id(db: Database) -> None:
    hoa_id = int(str((await user_row(db))["id"]))
    user = await store.get_user(db.reader, hoa_id)
    assert user is not None and user.username == "hoa"
    assert await store.get_user(db.reader, hoa_id + 1) is None


async def test_the_audit_log_keeps_notice_ids_whole(db: Database) -> None:
    notice_id = "0912345678abcdef0123456789abcdef"  # a phone-looking run inside a hex id
    await store.record_action(
        db.writer,
        at=NOW,
        action="notice_resend",
        username="hoa",
        staff_id=1,
        target=f"notice:{notice_id}",
        detail={"new_id": notice_id, "note": "gọi 0912345678"},
    )
    [item], _ = await store.list_actions(db.reader, limit=1, after=None)
    assert item.target == f"notice:{notice_id}"
    assert item.detail is not None and item.detail["new_id"] == notice_id
    assert "0912345678" not in item.detail["note"]  # free text is still masked
