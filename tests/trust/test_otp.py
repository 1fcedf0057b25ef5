"""One-time codes on SQLite and PostgreSQL: sending, checking, expiry, tries, limits.

The clock is injected; codes are read back from the notice that carries them (as the
citizen would read them from their phone). Only the HMAC of a code is in its row.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.logs import DATABASE_DRIVER_LOGGERS, quiet_database_drivers
from gateway.settings import Settings
from gateway.storage.db import Database
from gateway.storage.tables import notices, one_time_codes
from gateway.trust.otp import CodeCheck, CodeSent, OneTimeCodes, TooManyCodes
from tests.staff_helpers import rows, seed_dossier

SECRET = "citizen-secret-4b1d9e7a2c5f8036-for-tests"
CODE = "000.00.12.H19-260401-0001"
DOSSIER_PHONE = "+84912345678"
PHONE = "+84987654321"
ALICE, BOB = "zalo:1001", "web:0123456789abcdef"
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def trust_settings(settings: Settings) -> Settings:
    return Settings.from_mapping({**settings.env, "CITIZEN_SECRET": SECRET})


@pytest.fixture
async def db(trust_settings: Settings) -> AsyncIterator[Database]:
    database = Database.open(trust_settings.database_url)
    try:
        await seed_dossier(database.writer, CODE, phone=DOSSIER_PHONE)
        yield database
    finally:
        await database.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def codes(db: Database, trust_settings: Settings, clock: Clock) -> OneTimeCodes:
    return OneTimeCodes(db.writer, trust_settings, clock)


async def sent_code(db: Database, sent: CodeSent) -> str:
    """The code as the citizen reads it: from the notice that carries it."""
    async with db.reader.connect() as conn:
        params = (
            await conn.execute(sa.select(notices.c.params).where(notices.c.id == sent.notice_id))
        ).scalar_one()
    code = params["otp_code"]
    assert isinstance(code, str)
    return code


def other_than(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# -- sending and checking ---------------------------------------------------------------


async def test_a_code_sent_to_a_phone_proves_it_once(db: Database, codes: OneTimeCodes) -> None:
    sent = await codes.send_to_phone(ALICE, PHONE)
    assert sent.code_id is not None and sent.notice_id is not None
    assert sent.expires_at == T0 + timedelta(minutes=5)
    assert sent.channel == "sms"  # no ZNS template for otp is configured

    [notice] = await rows(db.reader, notices)
    code = notice["params"]["otp_code"]
    assert len(code) == 6 and code.isdigit()
    assert notice["params"]["minutes"] == 5
    assert (notice["id"], notice["kind"], notice["dossier_code"]) == (sent.notice_id, "otp", "")
    assert (notice["phone_e164"], notice["lane"], notice["state"]) == (PHONE, "urgent", "created")
    assert (notice["dedupe_key"], notice["source_id"]) == (f"otp-{sent.code_id}", "gateway")

    assert await codes.check(ALICE, f" {code[:3]} {code[3:]} ") == CodeCheck("ok", phone_e164=PHONE)
    # Used: it never works again, and the notice no longer holds it.
    assert (await codes.check(ALICE, code)).outcome == "none"
    [notice] = await rows(db.reader, notices)
    assert notice["params"] == {
        "otp_code": "erased",
        "minutes": 5,
        "expires_at": "2026-12-07T09:05:00+00:00",
    }
    assert notice["text"] is None
    [row] = await rows(db.reader, one_time_codes)
    assert row["used_at"] is not None and row["attempts"] == 1


async def test_only_the_hmac_of_the_code_is_stored(
    db: Database, codes: OneTimeCodes, trust_settings: Settings
) -> None:
    sent = await codes.send_to_phone(ALICE, PHONE)
    code = await sent_code(db, sent)
    [row] = await rows(db.reader, one_time_codes)
    expected = hmac.new(SECRET.encode(), f"{sent.code_id}:{code}".encode(), hashlib.sha256)
    assert row["code_hash"] == expected.hexdigest()
    assert all(code not in str(value) for value in row.values())
    assert (row["purpose"], row["requester"], row["phone_e164"]) == ("phone", ALICE, PHONE)
    assert row["notice_id"] == sent.notice_id

    # Another key (another installation) does not accept the same code.
    elsewhere = dataclasses.replace(
        trust_settings, trust=dataclasses.replace(trust_settings.trust, secret="x" * 40)
    )
    assert (await OneTimeCodes(db.writer, elsewhere, codes.clock).check(ALICE, code)).outcome == (
        "wrong"
    )


async def test_without_a_secret_the_key_is_the_same_in_every_process(
    db: Database, settings: Settings, clock: Clock
) -> None:
    one = OneTimeCodes(db.writer, settings, clock)
    sent = await one.send_to_phone(ALICE, PHONE)
    code = await sent_code(db, sent)
    [row] = await rows(db.reader, one_time_codes)
    assert SECRET not in row["code_hash"]
    other_process = OneTimeCodes(db.writer, Settings.from_mapping(dict(settings.env)), clock)
    assert (await other_process.check(ALICE, code)).outcome == "ok"


async def test_only_the_requester_who_asked_may_answer(db: Database, codes: OneTimeCodes) -> None:
    code = await sent_code(db, await codes.send_to_phone(ALICE, PHONE))
    assert await codes.check(BOB, code) == CodeCheck("none")
    assert (await codes.check(ALICE, code, dossier_code=CODE)).outcome == "none"
    assert (await codes.check(ALICE, code)).outcome == "ok"


async def test_the_newest_code_is_the_one_that_counts(db: Database, codes: OneTimeCodes) -> None:
    first = await sent_code(db, await codes.send_to_phone(ALICE, PHONE))
    second = await sent_code(db, await codes.send_to_phone(ALICE, PHONE))
    if first != second:
        assert (await codes.check(ALICE, first)).outcome == "wrong"
    assert (await codes.check(ALICE, second)).outcome == "ok"
    assert (await codes.check(ALICE, first)).outcome == "none"


async def test_a_code_expires_after_five_minutes(
    db: Database, codes: OneTimeCodes, clock: Clock
) -> None:
    code = await sent_code(db, await codes.send_to_phone(ALICE, PHONE))
    clock.advance(minutes=4, seconds=59)
    wrong = await codes.check(ALICE, other_than(code))
    assert (wrong.outcome, wrong.attempts_left) == ("wrong", 2)
    clock.advance(seconds=1)
    assert (await codes.check(ALICE, code)).outcome == "expired"
    [row] = await rows(db.reader, one_time_codes)
    assert row["used_at"] is None


async def test_three_tries_then_the_right_code_no_longer_works(
    db: Database, codes: OneTimeCodes
) -> None:
    code = await sent_code(db, await codes.send_to_phone(ALICE, PHONE))
    answers = [await codes.check(ALICE, guess) for guess in ("", "12345x", other_than(code))]
    assert [(a.outcome, a.attempts_left) for a in answers] == [
        ("wrong", 2),
        ("wrong", 1),
        ("wrong", 0),
    ]
    assert (await codes.check(ALICE, code)).outcome == "exhausted"
    [row] = await rows(db.reader, one_time_codes)
    assert row["attempts"] == 3 and row["used_at"] is None
    [notice] = await rows(db.reader, notices)
    assert notice["params"]["otp_code"] == code  # not erased: it was never proven


async def test_concurrent_guesses_get_three_tries_in_all(db: Database, codes: OneTimeCodes) -> None:
    code = await sent_code(db, await codes.send_to_phone(ALICE, PHONE))
    wrong = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 11)]
    answers = await asyncio.gather(*(codes.check(ALICE, guess) for guess in wrong))
    outcomes = sorted(a.outcome for a in answers)
    assert outcomes == ["exhausted"] * 7 + ["wrong"] * 3
    assert (await codes.check(ALICE, code)).outcome == "exhausted"


async def test_a_code_for_a_dossier_goes_to_the_dossiers_phone(
    db: Database, codes: OneTimeCodes
) -> None:
    sent = await codes.send_for_dossier(ALICE, CODE)
    [notice] = await rows(db.reader, notices)
    assert (notice["phone_e164"], notice["dossier_code"]) == (DOSSIER_PHONE, CODE)
    code = notice["params"]["otp_code"]
    assert (await codes.check(ALICE, code)).outcome == "none"  # not a phone code
    assert (await codes.check(ALICE, code, dossier_code="OTHER")).outcome == "none"
    assert await codes.check(ALICE, code, dossier_code=CODE) == CodeCheck(
        "ok", phone_e164=DOSSIER_PHONE, dossier_code=CODE
    )
    assert sent.channel == "sms"


async def test_an_unknown_dossier_sends_nothing_but_answers_alike_and_counts(
    db: Database, codes: OneTimeCodes, trust_settings: Settings
) -> None:
    await seed_dossier(db.writer, "NO-PHONE-1", phone=None)
    known = await codes.send_for_dossier(BOB, CODE)
    unknown = await codes.send_for_dossier(ALICE, "000.00.12.H19-260401-9999")
    no_phone = await codes.send_for_dossier(ALICE, "NO-PHONE-1")
    for answer in (unknown, no_phone):
        assert (answer.code_id, answer.notice_id) == (None, None)
        assert (answer.expires_at, answer.channel) == (known.expires_at, known.channel)
    assert len(await rows(db.reader, notices)) == 1  # only the known dossier's

    # Guessing at it is a wrong answer like any other, and runs out like any other.
    for left in (2, 1, 0):
        check = await codes.check(ALICE, "123456", dossier_code="NO-PHONE-1")
        assert (check.outcome, check.attempts_left) == ("wrong", left)
    assert (await codes.check(ALICE, "123456", dossier_code="NO-PHONE-1")).outcome == ("exhausted")

    # The requester's limit counts them: 5 per hour.
    for n in range(trust_settings.trust.otp_per_requester_hour - 2):
        await codes.send_for_dossier(ALICE, f"000.00.12.H19-260401-990{n}")
    with pytest.raises(TooManyCodes) as caught:
        await codes.send_for_dossier(ALICE, "000.00.12.H19-260401-9998")
    assert caught.value.scope == "requester"


async def test_an_unknown_dossier_runs_out_of_codes_like_a_known_one(
    db: Database, codes: OneTimeCodes
) -> None:
    """The phone's limit (3 an hour) must not tell which dossiers exist: asked by four
    people, an unknown code is refused at the fourth exactly as a known one is."""
    refused: dict[str, tuple[str, int]] = {}
    for dossier in (CODE, "000.00.12.H19-260401-9999"):
        for requester in ("zalo:1", "zalo:2", "web:3"):
            await codes.send_for_dossier(f"{requester}{dossier}", dossier)
        with pytest.raises(TooManyCodes) as caught:
            await codes.send_for_dossier("zalo:4", dossier)
        refused[dossier] = (caught.value.scope, caught.value.retry_after_seconds)
    assert refused[CODE] == refused["000.00.12.H19-260401-9999"] == ("phone", 3601)


# -- limits -----------------------------------------------------------------------------


async def test_three_codes_per_phone_per_hour_whoever_asks(
    db: Database, codes: OneTimeCodes, clock: Clock
) -> None:
    for requester in ("zalo:1", "zalo:2", "web:3"):
        await codes.send_to_phone(requester, PHONE)
        clock.advance(minutes=10)
    with pytest.raises(TooManyCodes) as caught:
        await codes.send_to_phone("zalo:4", PHONE)
    # The first code falls out of the hour at 10:00; it is 09:30.
    assert (caught.value.scope, caught.value.retry_after_seconds) == ("phone", 30 * 60 + 1)
    # Nothing was written for the refused one; another phone is not concerned.
    assert len(await rows(db.reader, one_time_codes)) == 3
    await codes.send_to_phone("zalo:4", "+84933111222")
    clock.advance(minutes=30, seconds=1)
    await codes.send_to_phone("zalo:4", PHONE)


async def test_ten_codes_per_phone_per_day(db: Database, codes: OneTimeCodes, clock: Clock) -> None:
    for n in range(10):
        await codes.send_to_phone(f"zalo:{n}", PHONE)
        clock.advance(minutes=21)  # three an hour at most
    with pytest.raises(TooManyCodes) as caught:
        await codes.send_to_phone("zalo:99", PHONE)
    assert caught.value.scope == "phone"
    # 10 x 21 minutes after 09:00 is 12:30; the first code leaves the day at 09:00 tomorrow.
    assert (
        caught.value.retry_after_seconds == int(timedelta(hours=20, minutes=30).total_seconds()) + 1
    )
    clock.now = T0 + timedelta(days=1, seconds=1)
    await codes.send_to_phone("zalo:99", PHONE)


async def test_five_codes_per_requester_per_hour(
    db: Database, codes: OneTimeCodes, clock: Clock
) -> None:
    phones = [f"+849123400{n:02d}" for n in range(6)]
    for phone in phones[:5]:
        await codes.send_to_phone(ALICE, phone)
    with pytest.raises(TooManyCodes) as caught:
        await codes.send_to_phone(ALICE, phones[5])
    assert (caught.value.scope, caught.value.retry_after_seconds) == ("requester", 3601)
    await codes.send_to_phone(BOB, phones[5])
    clock.advance(hours=1, seconds=1)
    await codes.send_to_phone(ALICE, phones[5])


async def test_the_limits_hold_under_concurrent_requests(db: Database, codes: OneTimeCodes) -> None:
    results = await asyncio.gather(
        *(codes.send_to_phone(f"zalo:{n}", PHONE) for n in range(8)), return_exceptions=True
    )
    sent = [r for r in results if isinstance(r, CodeSent)]
    refused = [r for r in results if isinstance(r, TooManyCodes)]
    assert (len(sent), len(refused)) == (3, 5), results
    assert len(await rows(db.reader, one_time_codes)) == 3


async def test_the_limits_survive_a_restart(
    db: Database, trust_settings: Settings, clock: Clock
) -> None:
    for n in range(3):
        await OneTimeCodes(db.writer, trust_settings, clock).send_to_phone(f"zalo:{n}", PHONE)
    restarted = Database.open(trust_settings.database_url)
    try:
        with pytest.raises(TooManyCodes):
            await OneTimeCodes(restarted.writer, trust_settings, clock).send_to_phone(
                "zalo:9", PHONE
            )
    finally:
        await restarted.close()


# -- never logged -----------------------------------------------------------------------


async def test_the_code_is_in_no_log_record(
    db: Database, codes: OneTimeCodes, caplog: pytest.LogCaptureFixture
) -> None:
    """Everything at DEBUG, as with LOG_LEVEL=DEBUG (which pins the database drivers)."""
    levels = {name: logging.getLogger(name).level for name in DATABASE_DRIVER_LOGGERS}
    caplog.set_level(logging.DEBUG)
    quiet_database_drivers()
    try:
        sent = await codes.send_for_dossier(ALICE, CODE)
        code = await sent_code(db, sent)
        await codes.check(ALICE, other_than(code), dossier_code=CODE)
        await codes.check(ALICE, code, dossier_code=CODE)
        logging.getLogger("gateway.trust").debug("sent %s", sent.notice_id)  # capture works
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    assert any(sent.notice_id in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert code not in record.getMessage()
        assert code not in str(vars(record))
