"""The audit job over real posted events (signed, through the HTTP API), on both databases:
each rule recorded once with its evidence, nothing recorded twice, stale findings
dismissed by appending, verdicts written, actors added to the officer directory."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gateway.audit.ledger import AuditResult, audit_dossiers, rebuild
from gateway.settings import Settings
from gateway.storage.audit import OfficerRecord, import_officers, record_decision
from tests.audit.ledger_helpers import (
    CONSULTED,
    NOW,
    audits,
    code,
    decisions,
    directory,
    ledger,
    post_all,
    writer,
)
from tests.helpers import ACTOR, DOSSIER, Gateway, event

# Officers other than the default actor of tests.helpers (cc-0123).
PAUSER = {"id": "cv-0200", "name": "Lý Văn Dừng", "unit": "Phòng Quản lý xây dựng"}
CLERK = {"id": "cc-0300", "name": "Đỗ Thị Hạnh", "unit": "Bộ phận một cửa"}


def ev(n: int, type_: str, at: str, name: str, **changes: Any) -> dict[str, Any]:
    """An event of dossier ``n`` with the readable id ``d<n>-<name>``."""
    actor = changes.pop("actor", None)
    body = event(type_, id=f"d{n}-{name}", at=at, code=code(n), **changes)
    if actor is not None:
        body["actor"] = dict(actor)
    return body


def received(n: int, **changes: Any) -> dict[str, Any]:
    return ev(n, "dossier.received", DOSSIER["received_at"], "received", **changes)


def no_phone() -> dict[str, Any]:
    return {"name": "Nguyễn Văn An"}


def phone(value: str) -> dict[str, Any]:
    return {"name": "Nguyễn Văn An", "phone": value}


CONSULTATION = {
    "consultation_id": "yk-1",
    "agency": {"code": CONSULTED, "name": "Sở Tài nguyên và Môi trường"},
    "due_at": "2024-04-05T17:00:00+07:00",
}


def asks(n: int) -> dict[str, Any]:
    return ev(
        n,
        "dossier.consultation_requested",
        "2024-04-02T09:00:00+07:00",
        "asks",
        data=dict(CONSULTATION),
    )


def answer(n: int, at: str) -> dict[str, Any]:
    return ev(n, "dossier.consultation_answered", at, "answer", data={"consultation_id": "yk-1"})


EARLY_DUE = "2024-04-05T17:00:00+07:00"

# Dossier number -> its events, and the one violation each should give (None: clean).
SCENARIOS: dict[int, tuple[list[dict[str, Any]], tuple[str, list[str]] | None]] = {
    1: (
        [
            received(1),
            ev(1, "dossier.processing", "2024-04-02T09:00:00+07:00", "processing"),
            ev(1, "dossier.finished", "2024-04-10T10:00:00+07:00", "finished"),
            ev(1, "dossier.delivered", "2024-04-11T09:00:00+07:00", "delivered"),
        ],
        None,
    ),
    2: ([received(2, applicant=no_phone())], ("phone_missing", ["d2-received"])),
    3: ([received(3, applicant=phone("024 3825 1234"))], ("phone_landline", ["d3-received"])),
    4: ([received(4, applicant=phone("12345"))], ("phone_invalid", ["d4-received"])),
    5: (
        [
            received(5),
            asks(5),
            ev(5, "dossier.paused", "2024-04-03T09:00:00+07:00", "paused", actor=PAUSER),
            answer(5, "2024-04-04T09:00:00+07:00"),
            ev(5, "dossier.resumed", "2024-04-04T10:00:00+07:00", "resumed"),
        ],
        ("pause_during_consultation", ["d5-paused", "d5-asks"]),
    ),
    6: (
        [
            received(6),
            ev(6, "dossier.withdrawn", "2024-04-03T09:00:00+07:00", "withdrawn", data={}),
        ],
        ("withdrawal_without_approval", ["d6-withdrawn"]),
    ),
    7: (
        [
            received(7),
            ev(
                7,
                "dossier.delayed",
                "2024-04-03T09:00:00+07:00",
                "delayed-1",
                data={"new_due_at": "2024-04-17T17:00:00+07:00", "reason": "Chờ thẩm định"},
            ),
            ev(
                7,
                "dossier.delayed",
                "2024-04-04T09:00:00+07:00",
                "delayed-2",
                data={"new_due_at": "2024-04-19T17:00:00+07:00", "reason": "Chờ thẩm định"},
            ),
        ],
        ("second_rescheduling", ["d7-delayed-1", "d7-delayed-2"]),
    ),
    8: (
        [received(8), asks(8), answer(8, "2024-04-08T10:00:00+07:00")],
        ("late_consultation_answer", ["d8-asks", "d8-answer"]),
    ),
    9: ([received(9), asks(9)], ("consultation_unanswered", ["d9-asks"])),
    10: (
        [
            received(10),
            ev(10, "dossier.supplement_requested", "2024-04-02T09:00:00+07:00", "supplement-1"),
            ev(10, "dossier.processing", "2024-04-03T09:00:00+07:00", "processing"),
            ev(10, "dossier.supplement_requested", "2024-04-04T09:00:00+07:00", "supplement-2"),
        ],
        ("second_supplement_request", ["d10-supplement-1", "d10-supplement-2"]),
    ),
    11: (
        [
            received(11, due_at=EARLY_DUE),
            ev(
                11,
                "dossier.delayed",
                "2024-04-05T09:00:00+07:00",
                "delayed",
                due_at=EARLY_DUE,
                data={"new_due_at": "2024-04-10T17:00:00+07:00", "reason": "Chờ thẩm định"},
            ),
        ],
        ("late_apology", ["d11-delayed"]),
    ),
    12: ([received(12, due_at=EARLY_DUE)], ("overdue_without_apology", ["d12-received"])),
}
OFFICER_OF = {
    "phone_missing": ACTOR["id"],
    "phone_landline": ACTOR["id"],
    "phone_invalid": ACTOR["id"],
    "pause_during_consultation": PAUSER["id"],
    "withdrawal_without_approval": ACTOR["id"],
    "second_rescheduling": ACTOR["id"],
    "second_supplement_request": ACTOR["id"],
    "late_apology": ACTOR["id"],
}


async def post_scenarios(gateway: Gateway) -> list[str]:
    for bodies, _ in SCENARIOS.values():
        await post_all(gateway, bodies)
    return [code(n) for n in SCENARIOS]


async def test_each_rule_once_with_its_evidence_and_a_clean_dossier_none(
    gateway: Gateway, settings: Settings
) -> None:
    codes = await post_scenarios(gateway)
    async with writer(settings.database_url) as engine:
        result = await audit_dossiers(engine, codes, settings, NOW)
        entries = await ledger(engine)
        verdicts = await audits(engine)
        people = await directory(engine)

    expected = {code(n): want for n, (_, want) in SCENARIOS.items() if want is not None}
    assert result == AuditResult(dossiers=len(SCENARIOS), new_violations=len(expected))
    got = {e["dossier_code"]: (e["rule"], e["evidence"]) for e in entries}
    assert got == {c: (rule, evidence) for c, (rule, evidence) in expected.items()}
    assert code(1) not in got  # the clean dossier

    for entry in entries:
        assert entry["detected_at"] == NOW
        assert entry["detail"]
        if entry["rule"] in ("late_consultation_answer", "consultation_unanswered"):
            # Charged to the consulted agency, not to a person: no sanction to suggest.
            assert (entry["officer_id"], entry["agency_code"]) == (None, CONSULTED)
            assert entry["suggestion"] is None
        elif entry["rule"] == "overdue_without_apology":
            assert (entry["officer_id"], entry["suggestion"]) == (None, None)
            assert entry["agency_code"] == DOSSIER["agency"]["code"]
        else:
            assert entry["officer_id"] == OFFICER_OF[entry["rule"]]
            assert entry["agency_code"] == DOSSIER["agency"]["code"]
            # Each is the officer's first of its rule: the ladder's first step.
            first = {
                "pause_during_consultation": "khien_trach",
                "withdrawal_without_approval": ("khien_trach"),
            }.get(entry["rule"], "nhac_nho")
            assert entry["suggestion"] == {
                "sanction": first,
                "reassign": False,
                "supervisor": None,
                "repeat_of": None,
            }

    clean = verdicts[code(1)]
    assert (clean["verdict"], clean["end_kind"], clean["closed_by"]) == (
        "on_time",
        "finished",
        ACTOR["id"],
    )
    assert (clean["received_month"], clean["ended_month"], clean["missing_phone"]) == (
        "2024-04",
        "2024-04",
        False,
    )
    assert clean["received_by"] == ACTOR["id"]
    assert clean["agency_code"] == DOSSIER["agency"]["code"]
    assert [c for c, v in verdicts.items() if v["missing_phone"]] == [code(2), code(3), code(4)]
    assert verdicts[code(12)]["verdict"] == "open"

    # Actors are in the directory, with the agency of their dossiers.
    assert people[ACTOR["id"]]["name"] == ACTOR["name"]
    assert people[PAUSER["id"]]["agency_code"] == DOSSIER["agency"]["code"]
    assert {p["origin"] for p in people.values()} == {"event"}


async def test_auditing_again_reposting_and_rebuilding_twice_change_nothing(
    gateway: Gateway, settings: Settings
) -> None:
    codes = await post_scenarios(gateway)
    async with writer(settings.database_url) as engine:
        await audit_dossiers(engine, codes, settings, NOW)
        before = await ledger(engine)
        verdicts = await audits(engine)

        again = await audit_dossiers(engine, codes, settings, NOW + timedelta(hours=1))
        assert again == AuditResult(dossiers=len(codes))

        for bodies, _ in SCENARIOS.values():  # the one-stop-shop sends everything again
            await post_all(gateway, bodies)
        first = await rebuild(engine, settings, now=NOW + timedelta(hours=2))
        second = await rebuild(engine, settings, now=NOW + timedelta(hours=3))
        assert first.audit == second.audit == AuditResult(dossiers=len(codes))

        assert await ledger(engine) == before
        assert await decisions(engine) == []
        after = await audits(engine)
    # Only the moment of the audit moved.
    assert {c: {**v, "audited_at": None} for c, v in after.items()} == {
        c: {**v, "audited_at": None} for c, v in verdicts.items()
    }


async def test_rebuild_from_scratch_goes_page_by_page(gateway: Gateway, settings: Settings) -> None:
    codes = await post_scenarios(gateway)
    pages: list[tuple[int, int]] = []
    async with writer(settings.database_url) as engine:
        result = await rebuild(
            engine,
            settings,
            progress=lambda done, total: pages.append((done, total)),
            now=NOW,
            page_size=5,
        )
        entries = await ledger(engine)
    total = len(codes)
    # Never more than a page of dossiers at a time: 12 dossiers are 3 transactions.
    assert pages == [(5, total), (10, total), (12, total)]
    assert result.audit.dossiers == total
    assert result.audit.new_violations == len(entries) == 11
    assert result.seconds > 0 and result.rate > 0


async def test_rebuild_since_takes_the_dossiers_changed_since(
    gateway: Gateway, settings: Settings
) -> None:
    await post_scenarios(gateway)
    async with writer(settings.database_url) as engine:
        later = await rebuild(engine, settings, NOW.replace(year=2999), now=NOW)
        assert later.audit == AuditResult()
        assert await ledger(engine) == []
        everything = await rebuild(engine, settings, NOW.replace(year=2000), now=NOW)
    assert everything.audit.dossiers == len(SCENARIOS)


async def test_a_finding_no_longer_detected_is_dismissed_by_appending(
    gateway: Gateway, settings: Settings
) -> None:
    # Two dossiers paused while a consultation seemed pending; the answer, given before
    # the pause, arrives late. One violation is still open, an auditor applied the other.
    for n, at in ((21, "2024-04-03T09:00:00+07:00"), (22, "2024-04-03T10:00:00+07:00")):
        await post_all(
            gateway, [received(n), asks(n), ev(n, "dossier.paused", at, "paused", actor=PAUSER)]
        )
    codes = [code(21), code(22)]
    # Before the consultation's due date: only the pauses are breaches.
    now = NOW - timedelta(days=7)
    async with writer(settings.database_url) as engine:
        await audit_dossiers(engine, codes, settings, now)
        entries = await ledger(engine)
        assert [(e["dossier_code"], e["rule"]) for e in entries] == [
            (code(21), "pause_during_consultation"),
            (code(22), "pause_during_consultation"),
        ]
        # Same officer, same rule, later: a repeat of the first.
        assert entries[1]["suggestion"]["repeat_of"] == entries[0]["id"]
        assert entries[1]["suggestion"]["sanction"] == "canh_cao"
        async with engine.begin() as conn:
            await record_decision(
                conn, entries[1]["id"], "applied", "canh_cao", "Quyết định 12/QĐ", 7, now
            )

        for n in (21, 22):
            await post_all(gateway, [answer(n, "2024-04-03T08:00:00+07:00")])
        result = await audit_dossiers(engine, codes, settings, now + timedelta(hours=1))
        assert result == AuditResult(dossiers=2, new_violations=0, dismissed=1)
        assert await ledger(engine) == entries  # nothing updated in place
        recorded = await decisions(engine)
        # The same again dismisses nothing twice.
        again = await audit_dossiers(engine, codes, settings, now + timedelta(hours=2))
        assert again == AuditResult(dossiers=2)
        assert await decisions(engine) == recorded

    applied, dismissed = recorded
    assert (applied["violation_id"], applied["decision"], applied["staff_id"]) == (
        entries[1]["id"],
        "applied",
        7,
    )
    assert (dismissed["violation_id"], dismissed["decision"], dismissed["staff_id"]) == (
        entries[0]["id"],
        "dismissed",
        None,
    )
    assert dismissed["note"].startswith("no longer detected: ")


async def test_a_repeat_names_the_supervisor_from_the_directory_when_the_ladder_says_so(
    gateway: Gateway, settings: Settings
) -> None:
    async with writer(settings.database_url) as engine:
        async with engine.begin() as conn:
            await import_officers(
                conn,
                [
                    OfficerRecord("ld-0001", "Nguyễn Hữu Đạt", "000.00.12.H19", None, None),
                    OfficerRecord(
                        PAUSER["id"], "Lý Văn Dừng (CV)", "000.00.12.H19", "QLXD", "ld-0001"
                    ),
                ],
                NOW,
            )
        bodies = [
            [received(n), asks(n), ev(n, "dossier.paused", at, "paused", actor=PAUSER)]
            for n, at in ((31, "2024-04-03T09:00:00+07:00"), (32, "2024-04-04T09:00:00+07:00"))
        ]
        # The later one arrives first; the ledger still counts them in time order.
        await post_all(gateway, bodies[1] + bodies[0])
        # Before the consultations' due date: only the pauses are breaches.
        await audit_dossiers(engine, [code(32), code(31)], settings, NOW - timedelta(days=7))
        first, second = await ledger(engine)
        people = await directory(engine)

    assert (first["dossier_code"], second["dossier_code"]) == (code(31), code(32))
    assert first["suggestion"] == {
        "sanction": "khien_trach",
        "reassign": False,
        "supervisor": None,
        "repeat_of": None,
    }
    assert second["suggestion"] == {
        "sanction": "canh_cao",
        "reassign": False,
        "supervisor": {"id": "ld-0001", "name": "Nguyễn Hữu Đạt"},
        "repeat_of": first["id"],
    }
    # Events never overwrite what the province's list says.
    assert people[PAUSER["id"]]["name"] == "Lý Văn Dừng (CV)"
    assert people[PAUSER["id"]]["origin"] == "import"
    assert people[ACTOR["id"]]["origin"] == "event"


@pytest.mark.parametrize("dismissed", [True, False])
async def test_a_dismissed_violation_is_no_repeat(
    gateway: Gateway, settings: Settings, dismissed: bool
) -> None:
    async with writer(settings.database_url) as engine:
        await post_all(gateway, [received(41, applicant=no_phone())])
        await audit_dossiers(engine, [code(41)], settings, NOW)
        [first] = await ledger(engine)
        if dismissed:
            async with engine.begin() as conn:
                await record_decision(conn, first["id"], "dismissed", None, "nhập nhầm", 3, NOW)
        later = "2024-04-03T08:00:00+07:00"
        await post_all(
            gateway,
            [
                ev(
                    42,
                    "dossier.received",
                    later,
                    "received",
                    received_at=later,
                    applicant=no_phone(),
                )
            ],
        )
        await audit_dossiers(engine, [code(42)], settings, NOW)
        _, second = await ledger(engine)
    sanction, repeat_of = ("nhac_nho", None) if dismissed else ("khien_trach", first["id"])
    assert (second["suggestion"]["sanction"], second["suggestion"]["repeat_of"]) == (
        sanction,
        repeat_of,
    )


async def test_events_refresh_the_officers_they_added(gateway: Gateway, settings: Settings) -> None:
    await post_all(gateway, [received(51, actor=CLERK)])
    renamed = {**CLERK, "name": "Đỗ Thị Hạnh (Tổ trưởng)"}
    later = ev(51, "dossier.processing", "2024-04-02T09:00:00+07:00", "processing", actor=renamed)
    async with writer(settings.database_url) as engine:
        await audit_dossiers(engine, [code(51)], settings, NOW)
        assert (await directory(engine))[CLERK["id"]]["name"] == CLERK["name"]
        await post_all(gateway, [later])
        await audit_dossiers(engine, [code(51)], settings, NOW)
        clerk = (await directory(engine))[CLERK["id"]]
    assert (clerk["name"], clerk["origin"], clerk["agency_code"]) == (
        renamed["name"],
        "event",
        DOSSIER["agency"]["code"],
    )
