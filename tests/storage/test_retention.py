"""Retention on SQLite and PostgreSQL: what is older than RETENTION_DAYS is erased, and
nothing else changes.

Dossiers are posted through the signed HTTP API (so events, notices and flags are what
ingest really stores); then some rows are aged by moving their timestamps back. Every
table is read before and after the run, and the difference must be exactly the erasure
described in gateway.storage.retention. The audit is rebuilt afterwards: verdicts,
``missing_phone`` and the violations ledger are the same as before. One-time codes and
the code in their notices go after a day, whatever RETENTION_DAYS says.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.ledger import AuditResult, rebuild
from gateway.domain.events import body_fingerprint
from gateway.domain.phones import REASONS, normalize_phone
from gateway.settings import Settings
from gateway.storage.retention import PLACEHOLDERS, RetentionResult, run_retention
from gateway.storage.tables import (
    chat_messages,
    dossier_audit,
    dossiers,
    metadata,
    notices,
    one_time_codes,
    reports,
    result_checks,
    staff_audit_log,
    zalo_users,
)
from tests.audit.ledger_helpers import code, post_all, writer
from tests.helpers import Gateway, event

DAYS = 730
NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=DAYS + 70)
RECENT = NOW - timedelta(days=10)

# Dossier number -> (applicant phone or None for none, event types, aged?).
DOSSIERS: dict[int, tuple[str | None, list[str], bool]] = {
    1: ("0912 345 678", ["received", "finished", "delivered"], True),
    2: ("0251 3822 123", ["received", "refused"], True),  # a landline: a violation
    3: (None, ["received", "withdrawn"], True),  # no phone at all: missing_phone
    4: ("0987 654 321", ["received", "processing"], True),  # open: kept
    5: ("0933 111 222", ["received", "finished"], False),  # closed recently: kept
    6: ("0912a45678", ["received", "finished"], True),  # letters: a violation
}
ERASED = {code(n) for n in (1, 2, 3, 6)}
PLACEHOLDER = {1: "0900000000", 2: "0251 0000 000", 6: "09a0000000"}
AT = {
    "received": "2024-04-01T08:05:00+07:00",
    "refused": "2024-04-02T09:00:00+07:00",
    "withdrawn": "2024-04-02T09:00:00+07:00",
    "processing": "2024-04-02T09:00:00+07:00",
    "finished": "2024-04-10T09:00:00+07:00",
    "delivered": "2024-04-11T09:00:00+07:00",
}
PHONE_1, PHONE_4 = "+84912345678", "+84987654321"


def test_every_placeholder_reads_as_the_outcome_it_stands_for() -> None:
    assert set(PLACEHOLDERS) == {None, *REASONS}
    for reason, placeholder in PLACEHOLDERS.items():
        outcome = normalize_phone(placeholder)
        assert (None if outcome.ok else outcome.reason) == reason, placeholder


def bodies(n: int) -> list[dict[str, Any]]:
    phone, types, _ = DOSSIERS[n]
    applicant = {"name": "Nguyễn Văn An"} | ({"phone": phone} if phone is not None else {})
    return [
        event(f"dossier.{t}", id=f"d{n}-{t}", at=AT[t], code=code(n), applicant=applicant)
        for t in types
    ]


async def seed(gateway: Gateway, engine: AsyncEngine) -> None:
    """Post the dossiers, then age rows and add chat, Zalo users, reports and checks."""
    for n in DOSSIERS:
        await post_all(gateway, bodies(n))
    aged = [code(n) for n, (_, _, old) in DOSSIERS.items() if old]
    async with engine.begin() as conn:
        await conn.execute(
            dossiers.update().where(dossiers.c.code.in_(aged)).values(updated_at=OLD)
        )
        await conn.execute(notices.update().values(text="Hồ sơ của ông An đã có kết quả"))
        await conn.execute(
            result_checks.insert(),
            [
                {"dossier_code": code(1), "phone_e164": PHONE_1, "due_at": OLD, "state": "asked"},
                {
                    "dossier_code": code(5),
                    "phone_e164": "+84933111222",
                    "due_at": RECENT,
                    "state": "asked",
                },
            ],
        )
        await conn.execute(zalo_users.insert(), [user(*u) for u in USERS])
        await conn.execute(chat_messages.insert(), [chat(*m) for m in CHATS])
        await conn.execute(reports.insert(), [report(*r) for r in REPORTS])
        await conn.execute(
            staff_audit_log.insert().values(
                at=OLD,
                username="hotline1",
                action="reveal_phone",
                target="report:1",
                detail={"masked": "09******78"},
            )
        )
        await conn.execute(notices.insert(), [otp_notice(*n) for n in OTP_NOTICES])
        await conn.execute(notices.insert(), [moved_notice(*n) for n in MOVED_NOTICES])
        await conn.execute(one_time_codes.insert(), [otp_code(*c) for c in OTP_CODES])


# (user id, phone, last interaction): erased only when old and no kept dossier has it.
USERS = [
    ("u-gone", PHONE_1, OLD),  # erased: dossier 1 is closed and old
    ("u-open", PHONE_4, OLD),  # kept: dossier 4 is still open
    ("u-recent", PHONE_1, RECENT),  # kept: talked to the OA recently
    ("u-none", None, OLD),
]
# (id, created at, text, payload)
CHATS = [
    (1, OLD, "số em 0912345678", {"event_name": "user_submit_info", "phone": "0912345678"}),
    (2, OLD, None, {"event_name": "follow"}),
    (3, RECENT, "cảm ơn", {"event_name": "user_send_text"}),
]
# (id, status, updated at)
REPORTS = [(1, "resolved", OLD), (2, "open", OLD), (3, "rejected", RECENT)]
# One-time codes and their notices are kept a day, whatever RETENTION_DAYS says.
DAY_AGO, HOURS_AGO = NOW - timedelta(days=1, minutes=1), NOW - timedelta(hours=23)
# (notice id, dossier code, created at, code): the code is erased after a day.
OTP_NOTICES = [
    ("otp-old", "", DAY_AGO, "135790"),  # scrubbed
    ("otp-old-dossier", code(1), OLD, "246801"),  # scrubbed (and its dossier's erasure)
    ("otp-used", "", DAY_AGO, "erased"),  # checked "ok": code erased, the phone now
    ("otp-new", "", HOURS_AGO, "975310"),  # kept
]
# (notice id, created at): "notices moved to Zalo" lose phone and text after RETENTION_DAYS.
MOVED_NOTICES = [("moved-old", OLD), ("moved-recent", RECENT)]
# (id, created at): deleted after a day.
OTP_CODES = [(1, DAY_AGO), (2, HOURS_AGO), (3, OLD)]


# Numbers only claimed (shared, never proven): erased when the user is old, whatever the
# dossiers ("u-open" keeps its proven number but loses its claim).
CLAIMS = {"u-open": PHONE_1, "u-recent": PHONE_4, "u-none": PHONE_1}


def user(user_id: str, phone: str | None, seen: datetime) -> dict[str, Any]:
    verified = seen if phone else None
    claimed = CLAIMS.get(user_id)
    return {
        "user_id": user_id, "display_name": "An", "follows": True,
        "last_interaction_at": seen, "phone_e164": phone, "verified_at": verified,
        "subscribed_at": verified, "created_at": OLD, "updated_at": seen,
        "claimed_phone_e164": claimed, "claimed_at": seen if claimed else None,
    }  # fmt: skip


def chat(ident: int, at: datetime, text: str | None, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ident, "user_id": "u-gone", "direction": "in", "dedupe_key": f"k{ident}",
        "event_name": payload["event_name"], "text": text, "payload": payload,
        "dossier_code": code(1), "created_at": at,
    }  # fmt: skip


def report(ident: int, status: str, at: datetime) -> dict[str, Any]:
    return {
        "id": ident, "number": f"PA-2024-{ident:06d}", "kind": "false_closure",
        "source": "zalo", "status": status, "dossier_code": code(1),
        "phone_e164": PHONE_1, "description": "Chưa nhận được kết quả",
        "created_at": OLD, "updated_at": at,
    }  # fmt: skip


def otp_notice(ident: str, dossier: str, at: datetime, otp: str) -> dict[str, Any]:
    text = None if otp == "erased" else f"{otp} la ma xac thuc tra cuu ho so"
    return {
        "id": ident, "dossier_code": dossier, "source_id": "gateway", "event_id": ident,
        "kind": "otp", "dedupe_key": ident, "phone_e164": PHONE_4, "state": "sent",
        "params": {"otp_code": otp, "minutes": 5}, "text": text, "attempts": 1,
        "created_at": at, "updated_at": at,
    }  # fmt: skip


def moved_notice(ident: str, at: datetime) -> dict[str, Any]:
    return {
        "id": ident, "dossier_code": "", "source_id": "gateway", "event_id": ident,
        "kind": "channel_moved", "dedupe_key": ident, "phone_e164": PHONE_4, "state": "sent",
        "params": {}, "text": "Tu nay thong bao ho so cua so dien thoai nay se gui qua Zalo",
        "attempts": 1, "created_at": at, "updated_at": at,
    }  # fmt: skip


def otp_code(ident: int, at: datetime) -> dict[str, Any]:
    return {
        "id": ident, "phone_e164": PHONE_4, "purpose": "phone", "requester": "zalo:u-open",
        "code_hash": "0" * 64, "attempts": 0, "created_at": at,
        "expires_at": at + timedelta(minutes=5),
    }  # fmt: skip


async def snapshot(engine: AsyncEngine) -> dict[str, dict[Any, dict[str, Any]]]:
    """Every row of every table, by primary key."""
    tables: dict[str, dict[Any, dict[str, Any]]] = {}
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            key = [c.name for c in table.primary_key.columns]
            rows = (await conn.execute(sa.select(table))).mappings()
            tables[table.name] = {tuple(r[k] for k in key): dict(r) for r in rows}
    return tables


def expected_after(before: dict[str, dict[Any, dict[str, Any]]]) -> dict[str, Any]:
    """``before`` with exactly the erasure the retention rules describe."""
    after = {name: {k: dict(v) for k, v in rows.items()} for name, rows in before.items()}
    for (c,), row in after["dossiers"].items():
        if c in ERASED:
            row |= {"phone_raw": None, "phone_e164": None}
    for row in after["events"].values():
        n = int(row["dossier_code"][-4:])
        if n in PLACEHOLDER:
            applicant = row["body"]["dossier"]["applicant"] | {"phone": PLACEHOLDER[n]}
            row["body"] = row["body"] | {
                "dossier": row["body"]["dossier"] | {"applicant": applicant}
            }
            row["fingerprint"] = body_fingerprint(row["body"])
    for row in after["notices"].values():
        if row["dossier_code"] in ERASED:
            row |= {"phone_e164": None, "text": None}
    after["result_checks"][(code(1),)]["phone_e164"] = None
    after["chat_messages"][(1,)] |= {"text": None, "payload": None}
    after["chat_messages"][(2,)] |= {"text": None, "payload": None}
    after["reports"][(1,)]["phone_e164"] = None
    after["zalo_users"][("u-gone",)] |= {"phone_e164": None, "verified_at": None,
                                         "subscribed_at": None}  # fmt: skip
    for ident in ("u-open", "u-none"):
        after["zalo_users"][(ident,)] |= {"claimed_phone_e164": None, "claimed_at": None}
    for ident in ("otp-old", "otp-old-dossier", "otp-used"):
        row = after["notices"][(ident,)]
        row |= {"params": row["params"] | {"otp_code": "erased"}, "text": None}
        row["phone_e164"] = None  # the number a code went to goes with the code
    after["notices"][("moved-old",)] |= {"phone_e164": None, "text": None}
    for ident in (1, 3):
        del after["one_time_codes"][(ident,)]
    return after


async def verdicts(engine: AsyncEngine) -> dict[str, tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(
                dossier_audit.c.dossier_code,
                dossier_audit.c.verdict,
                dossier_audit.c.missing_phone,
                dossier_audit.c.end_kind,
            )
        )
        return {r[0]: tuple(r[1:]) for r in rows}


async def test_retention_erases_what_it_should_and_nothing_else(
    gateway: Gateway, settings: Settings
) -> None:
    async with writer(settings.database_url) as engine:
        await seed(gateway, engine)
        await rebuild(engine, settings, now=NOW)
        audited = await verdicts(engine)
        before = await snapshot(engine)
        # The audit saw the phone problems that must survive the erasure.
        assert audited[code(3)][1] is True and audited[code(2)][1] is True
        assert audited[code(1)][1] is False and audited[code(6)][1] is True
        notices_erased = sum(r["dossier_code"] in ERASED for r in before["notices"].values())
        assert notices_erased > 0

        expected = RetentionResult(
            dossiers=4, events=7, notices=notices_erased, result_checks=1,
            chat_messages=2, reports=1, zalo_users=1, zalo_claims=2, one_time_codes=2,
            otp_notices=3, moved_notices=1,
        )  # fmt: skip
        # A dry run counts the same and writes nothing.
        assert await run_retention(engine, NOW, DAYS, dry_run=True, page_size=2) == expected
        assert await snapshot(engine) == before

        # Pages of two: several transactions per pass.
        assert await run_retention(engine, NOW, DAYS, page_size=2) == expected
        after = await snapshot(engine)
        assert after == expected_after(before)
        # Idempotent: nothing is left to erase.
        assert await run_retention(engine, NOW, DAYS) == RetentionResult()
        assert await snapshot(engine) == after

        # The ledger and the verdicts recompute the same from the erased timelines.
        again = await rebuild(engine, settings, now=NOW)
        assert again.audit == AuditResult(dossiers=len(DOSSIERS))
        assert await verdicts(engine) == audited
        rebuilt = await snapshot(engine)
    for table in ("violations", "violation_decisions", "flags", "staff_audit_log"):
        assert rebuilt[table] == before[table], table
    # No digits of the erased numbers are left in the erased dossiers' rows.
    erased_rows = [
        row
        for name in ("dossiers", "events", "notices", "result_checks")
        for row in rebuilt[name].values()
        if row.get("dossier_code", row.get("code")) in ERASED
    ]
    for gone in ("345 678", "345678", "3822", "a45678"):
        assert gone not in repr(erased_rows)


async def run(settings: Settings, *argv: str) -> tuple[str, str]:
    """Run ``argv`` with the test's settings in a process of its own; (stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
        env={**os.environ, **settings.env, "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()[-3000:]
    return stdout.decode(), stderr.decode()


async def test_the_command_and_the_cron_job(gateway: Gateway, settings: Settings) -> None:
    async with writer(settings.database_url) as engine:
        await seed(gateway, engine)
    dry, _ = await run(settings, "-m", "gateway", "retention", "run", "--dry-run")
    assert "would erase 4 dossiers, 7 events" in dry
    assert "2 chat messages, 1 reports, 1 zalo users" in dry
    # The job the worker's cron runs: it erases, and logs counts (never a number).
    job = (
        "from gateway.logs import configure; configure('INFO', 'json');"
        "from gateway.processes.jobs import retention; print(retention())"
    )
    done, logs = await run(settings, "-c", job)
    async with writer(settings.database_url) as engine:
        erased = sum(
            r["dossier_code"] in ERASED for r in (await snapshot(engine))["notices"].values()
        )
    assert int(done.strip().splitlines()[-1]) == 4 + 7 + erased + 1 + 2 + 1 + 1 + 2 + 2 + 3 + 1
    assert '"dossiers": 4' in logs and "retention run" in logs
    # No seeded number, in any layout (a timestamp's milliseconds may read "912").
    assert not re.search(r"912\D?345\D?678|987\D?654\D?321|933\D?111\D?222", logs), logs
    again, _ = await run(settings, "-m", "gateway", "retention", "run")
    assert "erased 0 dossiers, 0 events" in again
