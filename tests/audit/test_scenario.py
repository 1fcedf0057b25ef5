"""The accountability loop end to end, through public interfaces only.

The one-stop-shop posts signed events; operators run ``tthc user add``, ``tthc officers
import`` and ``tthc audit rebuild``; the hotline confirms false closures and the auditor
reads the ledger through the staff API. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import Settings
from tests.helpers import DOSSIER, Gateway, event

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
AGENCY = {"code": "000.00.12.H19", "name": "Sở Xây dựng"}
CONSULTED = {"code": "000.00.05.H19", "name": "Sở Nông nghiệp và Môi trường"}
BINH = {"id": "cc-0123", "name": "Trần Thị Bình", "unit": "Bộ phận một cửa"}
CUONG = {"id": "cv-0456", "name": "Lê Văn Cường", "unit": "Phòng Quản lý xây dựng"}
DAT = ("ld-0001", "Nguyễn Hữu Đạt")  # the head of unit, Bình's direct supervisor
DIRECTORY = (
    "id,name,agency_code,unit,supervisor_id\n"
    f"{DAT[0]},{DAT[1]},000.00.12.H19,Lãnh đạo Sở,\n"
    f"{BINH['id']},{BINH['name']},000.00.12.H19,Bộ phận một cửa,{DAT[0]}\n"
    f"{CUONG['id']},{CUONG['name']},000.00.12.H19,Phòng Quản lý xây dựng,{DAT[0]}\n"
)


def code(n: int) -> str:
    return f"000.00.12.H19-260901-{n:04d}"


def ev(
    n: int,
    type_: str,
    at: str,
    *,
    actor: dict[str, str] = BINH,
    data: dict[str, Any] | None = None,
    due: str = "2026-09-15T17:00:00+07:00",
    **dossier: Any,
) -> dict[str, Any]:
    """Event ``type_`` of dossier ``n`` at ``at`` (Sept-Oct 2026, a working day)."""
    body = event(
        type_,
        id=f"s{n}-{type_.split('.')[1]}-{at[:16]}",
        at=at,
        code=code(n),
        data=data,
        received_at="2026-09-01T08:00:00+07:00",
        due_at=due,
        agency=dict(AGENCY),
        **dossier,
    )
    body["actor"] = dict(actor)
    return body


def clean(n: int, finished_at: str = "2026-09-10T10:00:00+07:00") -> list[dict[str, Any]]:
    """Received, handled and finished on time, then handed over."""
    return [
        ev(n, "dossier.received", "2026-09-01T08:00:00+07:00"),
        ev(n, "dossier.processing", "2026-09-02T09:00:00+07:00", actor=CUONG),
        ev(n, "dossier.finished", finished_at),
        ev(n, "dossier.delivered", "2026-09-11T09:00:00+07:00"),
    ]


def consultation(due: str) -> dict[str, Any]:
    return {"consultation_id": "yk-1", "agency": dict(CONSULTED), "due_at": due}


def scenario() -> dict[int, list[dict[str, Any]]]:
    """Dossier number → its events; the comment says what each one must show."""
    answered = {"consultation_id": "yk-1"}
    received = "2026-09-01T08:00:00+07:00"
    return {
        # 1 and 2: finished by Bình; the citizen says nothing was ready (false closures).
        1: clean(1)[:3],
        2: clean(2, "2026-09-11T15:00:00+07:00")[:3],
        # 3: paused by Cường while the consultation was pending.
        3: [
            ev(3, "dossier.received", received),
            ev(
                3,
                "dossier.consultation_requested",
                "2026-09-02T09:00:00+07:00",
                actor=CUONG,
                data=consultation("2026-09-07T17:00:00+07:00"),
            ),
            ev(
                3,
                "dossier.paused",
                "2026-09-03T09:00:00+07:00",
                actor=CUONG,
                data={"reason": "Chờ ý kiến Sở Nông nghiệp và Môi trường"},
            ),
            ev(3, "dossier.consultation_answered", "2026-09-07T10:00:00+07:00", data=answered),
            ev(3, "dossier.resumed", "2026-09-07T14:00:00+07:00", actor=CUONG),
            ev(3, "dossier.finished", "2026-09-10T10:00:00+07:00"),
        ],
        # 4: withdrawn without the head of unit's approval.
        4: [
            ev(4, "dossier.received", received),
            ev(4, "dossier.withdrawn", "2026-09-03T10:00:00+07:00", data={}),
        ],
        # 5: the consulted agency answered a working day late.
        5: [
            ev(5, "dossier.received", received),
            ev(
                5,
                "dossier.consultation_requested",
                "2026-09-02T09:00:00+07:00",
                actor=CUONG,
                data=consultation("2026-09-04T17:00:00+07:00"),
            ),
            ev(5, "dossier.consultation_answered", "2026-09-07T10:00:00+07:00", data=answered),
            ev(5, "dossier.finished", "2026-09-10T10:00:00+07:00"),
        ],
        # 6: the consulted agency never answered; the dossier is not due before 2027.
        6: [
            ev(6, "dossier.received", received, due="2027-03-15T17:00:00+07:00"),
            ev(
                6,
                "dossier.consultation_requested",
                "2026-09-02T09:00:00+07:00",
                actor=CUONG,
                data=consultation("2026-09-09T17:00:00+07:00"),
                due="2027-03-15T17:00:00+07:00",
            ),
        ],
        # 7: no phone number entered at receipt.
        7: [
            ev(7, "dossier.received", received, applicant={"name": "Phạm Văn Khoa"}),
            ev(7, "dossier.finished", "2026-09-10T10:00:00+07:00"),
        ],
        # 8: rescheduled twice, each time in good time; finished by the last date.
        8: [
            ev(8, "dossier.received", received),
            ev(
                8,
                "dossier.delayed",
                "2026-09-10T10:00:00+07:00",
                actor=CUONG,
                data={"new_due_at": "2026-09-22T17:00:00+07:00", "reason": "Chờ thẩm định"},
            ),
            ev(
                8,
                "dossier.delayed",
                "2026-09-18T10:00:00+07:00",
                actor=CUONG,
                data={"new_due_at": "2026-09-29T17:00:00+07:00", "reason": "Chờ bổ sung"},
                due="2026-09-22T17:00:00+07:00",
            ),
            ev(8, "dossier.finished", "2026-09-25T10:00:00+07:00", due="2026-09-29T17:00:00+07:00"),
        ],
        # 9: nothing to say.
        9: clean(9),
    }


EXPECTED = {
    code(3): ["pause_during_consultation"],
    code(4): ["withdrawal_without_approval"],
    code(5): ["late_consultation_answer"],
    code(6): ["consultation_unanswered"],
    code(7): ["phone_missing"],
    # Rescheduled twice: the dossier ended after its first appointment, but the apology
    # came in time, so the second rescheduling is the only breach.
    code(8): ["second_rescheduling"],
}


async def tthc(settings: Settings, *argv: str, stdin: str = "") -> str:
    """Run ``tthc`` as an operator would; its standard output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *argv,
        env={**os.environ, **settings.env, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 120)
    assert process.returncode == 0, err.decode()
    return out.decode()


class Staff:
    """The staff API as a person with a token uses it."""

    def __init__(self, gateway: Gateway, token: str) -> None:
        self.client = gateway.client
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, status: int, body: Any = None) -> Any:
        response = await self.client.request(method, path, headers=self.headers, json=body)
        answer = await response.json(content_type=None)
        assert response.status == status, answer
        return answer

    async def ledger(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        path: str | None = "/v1/audit/violations?limit=3"
        while path is not None:
            page = await self.call("GET", path, 200)
            items += page["items"]
            path = f"/v1/audit/violations?limit=3&after={page['next']}" if page["next"] else None
        return items


async def hotline_and_auditor(gateway: Gateway, settings: Settings) -> tuple[Staff, Staff]:
    """A hotline officer and an auditor, added with ``tthc user add`` as an operator does."""
    staff = [
        Staff(
            gateway,
            (await tthc(settings, "user", "add", login, "--name", name, "--role", role)).strip(),
        )
        for login, name, role in (
            ("hoa", "Nguyễn Thị Hoa", "hotline"),
            ("tam", "Võ Minh Tâm", "auditor"),
        )
    ]
    return staff[0], staff[1]


async def confirm_false_closure(hotline: Staff, dossier: str) -> None:
    report = await hotline.call(
        "POST",
        "/v1/reports",
        201,
        {
            "dossier": dossier,
            "kind": "false_closure",
            "description": "Tin nhắn báo đã có kết quả nhưng đến quầy thì chưa có.",
            "phone": DOSSIER["applicant"]["phone"],
        },
    )
    await hotline.call(
        "POST",
        f"/v1/reports/{report['id']}/transitions",
        200,
        {
            "to": "resolved",
            "note": "Đã xác minh với Sở Xây dựng: hồ sơ chưa có kết quả khi báo xong.",
            "finding": "confirmed",
        },
    )


async def test_the_loop_from_events_to_suggested_sanctions(
    gateway: Gateway, settings: Settings, tmp_path: Path
) -> None:
    hotline, auditor = await hotline_and_auditor(gateway, settings)
    directory = tmp_path / "officers.csv"
    directory.write_text(DIRECTORY, encoding="utf-8")
    await tthc(settings, "officers", "import", str(directory))

    stories = scenario()
    bodies = [body for events in stories.values() for body in events]
    for body in bodies:
        status, answer, _ = await gateway.post(body)
        assert status == 202, answer
    await tthc(settings, "audit", "rebuild")
    await confirm_false_closure(hotline, code(1))
    await confirm_false_closure(hotline, code(2))

    ledger = await auditor.ledger()
    by_dossier: dict[str, list[str]] = {}
    for item in ledger:
        by_dossier.setdefault(item["dossier"], []).append(item["rule"])
    assert {k: v for k, v in by_dossier.items() if k not in (code(1), code(2))} == EXPECTED
    assert code(9) not in by_dossier  # the clean dossier

    first, second = (item for item in ledger if item["rule"] == "false_closure")
    assert (first["dossier"], second["dossier"]) == (code(1), code(2))
    for item in (first, second):
        assert item["officer"] == {"id": BINH["id"], "name": BINH["name"]}
        assert item["agency"] == AGENCY and item["status"] == "open"
    assert first["suggestion"] == {
        "sanction": "khien_trach",
        "reassign": False,
        "supervisor": None,
        "repeat_of": None,
    }
    assert second["suggestion"] == {
        "sanction": "canh_cao",
        "reassign": True,
        "supervisor": {"id": DAT[0], "name": DAT[1]},
        "repeat_of": first["id"],
    }

    # Each entry names the events that prove it, and they are this dossier's events.
    ids = {body["id"]: body["dossier"]["code"] for body in bodies}
    for item in ledger:
        assert item["evidence"], item
        assert {ids[e] for e in item["evidence"]} == {item["dossier"]}, item
    evidence = {item["rule"]: item["evidence"] for item in ledger}
    # The pause, and the request that was still waiting for an answer.
    assert evidence["pause_during_consultation"] == [stories[3][2]["id"], stories[3][1]["id"]]
    assert evidence["withdrawal_without_approval"] == [stories[4][1]["id"]]
    assert stories[5][2]["id"] in evidence["late_consultation_answer"]
    assert stories[6][1]["id"] in evidence["consultation_unanswered"]
    assert evidence["phone_missing"] == [stories[7][0]["id"]]
    assert stories[8][2]["id"] in evidence["second_rescheduling"]
    officers = {item["rule"]: item["officer"] for item in ledger}
    assert officers["pause_during_consultation"] == {"id": CUONG["id"], "name": CUONG["name"]}
    assert officers["consultation_unanswered"] is None
    consulted = {item["agency"]["code"] for item in ledger if "consultation_" in item["rule"]}
    assert consulted == {CONSULTED["code"]}

    # Posting everything again and rebuilding twice changes nothing.
    for body in bodies:
        status, answer, _ = await gateway.post(body)
        assert status == 200, answer
    await tthc(settings, "audit", "rebuild")
    await tthc(settings, "audit", "rebuild")
    again = await auditor.ledger()
    assert again == ledger
    assert Counter(item["status"] for item in again) == {"open": len(ledger)}
