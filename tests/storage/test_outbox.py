"""New notices into the outbox, on SQLite and PostgreSQL.

Every notice starts as the same row whoever creates it: ``created`` with a recipient,
``no_recipient`` without, no channel, no attempts. A dedupe key is never used twice:
:func:`insert_once` creates nothing for a taken key, a bulk insert with one fails whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from gateway.domain.notices import NoticeDraft
from gateway.storage import outbox
from gateway.storage.db import Database
from gateway.storage.outbox import NewNotice
from gateway.storage.tables import notices
from tests.staff_helpers import rows

NOW = datetime(2026, 4, 24, 9, 0, tzinfo=UTC)
CODE = "000.00.12.H19-260401-0001"
PHONE = "+84912345678"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database.open(database_url)
    try:
        yield database
    finally:
        await database.close()


def notice(
    key: str, *, phone: str | None = PHONE, zalo_user_id: str | None = None, lane: str = "urgent"
) -> NewNotice:
    return NewNotice(
        kind="receipt",
        dossier_code=CODE,
        source_id="motcua",
        event_id=f"evt-{key}",
        dedupe_key=key,
        phone_e164=phone,
        params={"dossier_code": CODE, "amount": 150_000},
        lane=lane,
        zalo_user_id=zalo_user_id,
    )


async def stored(db: Database) -> dict[str, dict[str, object]]:
    return {r["dedupe_key"]: r for r in await rows(db.reader, notices)}


async def test_every_notice_starts_as_the_same_row_with_its_recipient_deciding_the_state(
    db: Database,
) -> None:
    batch = [
        notice("a/phone", lane="bulk"),
        notice("a/nobody", phone=None),
        notice("a/oa-user", phone=None, zalo_user_id="u-1"),
    ]
    async with db.writer.begin() as conn:
        await conn.run_sync(outbox.insert_all, batch, NOW)
        single = notice("a/one")
        assert await outbox.insert(conn, single, NOW) == single.id

    found = await stored(db)
    assert {k: (r["state"], r["lane"], r["zalo_user_id"]) for k, r in found.items()} == {
        "a/phone": ("created", "bulk", None),
        "a/nobody": ("no_recipient", "urgent", None),
        "a/oa-user": ("created", "urgent", "u-1"),
        "a/one": ("created", "urgent", None),
    }
    assert [n.sendable for n in batch] == [True, False, True]
    row = found["a/phone"]
    assert row["id"] == batch[0].id
    assert {k: row[k] for k in ("channel", "provider", "attempts", "last_error", "not_before")} == {
        "channel": None,
        "provider": None,
        "attempts": 0,
        "last_error": None,
        "not_before": None,
    }
    assert (row["created_at"], row["updated_at"]) == (NOW, NOW)
    assert (row["source_id"], row["event_id"], row["kind"], row["phone_e164"]) == (
        "motcua",
        "evt-a/phone",
        "receipt",
        PHONE,
    )
    assert row["params"] == {"dossier_code": CODE, "amount": 150_000}


async def test_insert_once_leaves_a_taken_dedupe_key_as_it_was(db: Database) -> None:
    first = notice(f"{CODE}/auto_apology")
    async with db.writer.begin() as conn:
        assert await outbox.insert_once(conn, first, NOW) == first.id
    later = NOW + timedelta(minutes=1)
    async with db.writer.begin() as conn:
        assert await outbox.insert_once(conn, notice(f"{CODE}/auto_apology"), later) is None

    [row] = (await stored(db)).values()
    assert (row["id"], row["created_at"]) == (first.id, NOW)


async def test_a_bulk_insert_with_a_taken_key_fails_whole(db: Database) -> None:
    async with db.writer.begin() as conn:
        await outbox.insert(conn, notice("b/taken"), NOW)
    with pytest.raises(IntegrityError):
        async with db.writer.begin() as conn:
            await conn.run_sync(outbox.insert_all, [notice("b/new"), notice("b/taken")], NOW)
    assert list(await stored(db)) == ["b/taken"]


def test_a_draft_becomes_the_notice_of_its_event_and_lane() -> None:
    draft = NoticeDraft("fees", f"{CODE}/fees/evt-9", None, {"amount": 1})
    made = NewNotice.from_draft(draft, CODE, "motcua", "evt-9", "bulk")
    assert (made.kind, made.dedupe_key, made.event_id, made.lane, made.state) == (
        "fees",
        f"{CODE}/fees/evt-9",
        "evt-9",
        "bulk",
        "no_recipient",
    )
    assert made.id != NewNotice.from_draft(draft, CODE, "motcua", "evt-9", "bulk").id
