"""The demo's last act: the citizen's false-closure report goes round the whole loop.

A hotline officer takes the report the citizen just filed on Zalo and confirms it, as
the 1022 desk would after calling the agency; the audit job records the violation on the
officer who closed the dossier, with the sanction the ladder suggests (a repeat when an
earlier demo run already confirmed one of hers); an auditor reads the ledger entry and
the month's agency table. Everything goes through the staff API, as a console would.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import aiohttp

from gateway.audit.ledger import audit_dossiers
from gateway.errors import Conflict
from gateway.local.simulator import HEAD, OFFICERS
from gateway.settings import Settings
from gateway.storage.audit import OfficerRecord, import_officers
from gateway.storage.db import create_engine
from gateway.storage.staff import add_user, set_password

HOTLINE = ("Nguyễn Thị Hoa", "hotline")
AUDITOR = ("Võ Minh Tâm", "auditor")
# The staff console's demo accounts, one per role (the admin browses the staff audit log).
CONSOLE_ACCOUNTS = (
    ("demo-hotline", "Nguyễn Thị Hoa", "hotline"),
    ("demo-auditor", "Võ Minh Tâm", "auditor"),
    ("demo-admin", "Trần Quốc Bảo", "admin"),
)
SANCTIONS = {
    "nhac_nho": "nhắc nhở",
    "khien_trach": "khiển trách",
    "canh_cao": "cảnh cáo",
}


async def prepare_staff(settings: Settings, agency_code: str, now: datetime) -> dict[str, str]:
    """A hotline officer's and an auditor's tokens, and the officer directory (every
    demo clerk reports to the head of the unit) — what an operator sets up once."""
    engine = create_engine(settings.database_url, writer=True)
    try:
        suffix = secrets.token_hex(2)
        tokens = {
            role: await add_user(engine, f"demo-{role}-{suffix}", name, role, now)
            for name, role in (HOTLINE, AUDITOR)
        }
        records = [OfficerRecord(HEAD["id"], HEAD["name"], agency_code, "Lãnh đạo", None)] + [
            OfficerRecord(officer_id, name, agency_code, "Bộ phận Một cửa", HEAD["id"])
            for officer_id, name in OFFICERS
        ]
        async with engine.begin() as conn:
            await import_officers(conn, records, now)
    finally:
        await engine.dispose()
    return tokens


async def console_accounts(settings: Settings, now: datetime) -> list[tuple[str, str, str]]:
    """(username, password, role) of the console's demo accounts, with fresh passwords.

    A later run on the same ``var/`` keeps the accounts and gives them new passwords, so
    the passwords printed last are the ones that work."""
    engine = create_engine(settings.database_url, writer=True)
    accounts = []
    try:
        for username, name, role in CONSOLE_ACCOUNTS:
            password = secrets.token_urlsafe(12)
            try:
                await add_user(engine, username, name, role, now, password=password)
            except Conflict:
                await set_password(engine, username, password, now, via="demo")
            accounts.append((username, password, role))
    finally:
        await engine.dispose()
    return accounts


async def close_the_loop(
    say: Any,
    base: str,
    settings: Settings,
    dossier_code: str,
    codes: list[str],
    months: tuple[str, str],
    now: datetime,
) -> list[str]:
    """Confirm the citizen's report, audit, print the ledger entry and the agency table.

    Returns what went wrong (empty when the loop closed)."""
    agency_code = dossier_code.rsplit("-", 2)[0]
    tokens = await prepare_staff(settings, agency_code, now)
    hotline = {"Authorization": f"Bearer {tokens['hotline']}"}
    auditor = {"Authorization": f"Bearer {tokens['auditor']}"}
    async with aiohttp.ClientSession(base) as session:
        report = await _citizen_report(session, hotline, dossier_code)
        if report is None:
            return [f"the hotline found no open false-closure report on {dossier_code}"]
        say(f"\nAt the 1022 desk, {HOTLINE[0]} takes report {report['service_request_id']}:")
        agency = report["agency_responsible"]
        say(f"  calls {agency}: the result was not ready when the SMS said it was")
        transition = {
            "to": "resolved",
            "note": "Đã xác minh với cơ quan giải quyết: hồ sơ chưa có kết quả khi báo đã xong.",
            "finding": "confirmed",
        }
        path = f"/v1/reports/{report['id']}/transitions"
        async with session.post(path, json=transition, headers=hotline) as response:
            if response.status != 200:
                answer = await response.text()
                return [f"confirming the report answered {response.status}: {answer}"]
        say("  records the finding: confirmed (the citizen is told by Zalo or SMS)")

        engine = create_engine(settings.database_url, writer=True)
        try:
            # What the worker's audit sweep does every 30 seconds, done now.
            await audit_dossiers(engine, codes, settings, now)
        finally:
            await engine.dispose()

        query = f"/v1/audit/violations?dossier={dossier_code}&rule=false_closure"
        async with session.get(query, headers=auditor) as response:
            items = (await response.json())["items"] if response.status == 200 else []
        if not items:
            return [f"no false_closure violation was recorded for {dossier_code}"]
        _print_violation(say, items[-1])
        first, last = months
        table = f"/v1/audit/agencies?from={first}&to={last}"
        async with session.get(table, headers=auditor) as response:
            if response.status != 200:
                return [f"the agency table answered {response.status}"]
            _print_agencies(say, await response.json())
    return []


async def _citizen_report(
    session: aiohttp.ClientSession, headers: dict[str, str], dossier_code: str
) -> dict[str, Any] | None:
    async with session.get("/v1/reports?status=open&limit=200", headers=headers) as response:
        reports = (await response.json()).get("reports", [])
    mine = [
        r for r in reports if r["dossier_code"] == dossier_code and r["kind"] == "false_closure"
    ]
    return mine[-1] if mine else None


def _print_violation(say: Any, item: dict[str, Any]) -> None:
    officer = item["officer"] or {}
    say(f"\nThe violations ledger (entry {item['id']}, as an auditor reads it):")
    who = f"{officer.get('name')} ({officer.get('id')})"
    say(f"  {item['rule']} by {who}, {item['agency']['name']}")
    say(f"  evidence: {', '.join(item['evidence'])}")
    suggestion = item.get("suggestion")
    if not suggestion:
        say("  suggested sanction: none")
        return
    sanction = SANCTIONS.get(suggestion["sanction"], suggestion["sanction"])
    extra = []
    if suggestion.get("repeat_of"):
        extra.append(f"a repeat of entry {suggestion['repeat_of']} within 12 months")
    if suggestion.get("reassign"):
        extra.append("reassignment")
    supervisor = suggestion.get("supervisor")
    if supervisor:
        extra.append(f"supervisor {supervisor['name']} to be considered")
    say(f"  suggested sanction: {sanction}" + (f" ({'; '.join(extra)})" if extra else ""))


def _print_agencies(say: Any, table: dict[str, Any]) -> None:
    months = table["from"] if table["from"] == table["to"] else f"{table['from']}–{table['to']}"
    say(f"\nAgencies, {months} (late-rate threshold {table['threshold']:.0%}):")
    say(f"  {'agency':<44} {'recv':>5} {'ended':>5} {'late':>5} {'rate':>6} {'open late':>9}")
    for item in table["items"]:
        flag = "  ⚠" if item["over_threshold"] else ""
        say(
            f"  {item['agency']['name'][:44]:<44} {item['received']:>5} {item['ended']:>5} "
            f"{item['late']:>5} {item['late_rate']:>6.0%} {item['open_overdue']:>9}{flag}"
        )
