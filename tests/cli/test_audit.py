"""``tthc audit rebuild`` (gateway.cli.audit) over posted events, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import audit as audit_cli
from gateway.settings import Settings
from tests.audit.ledger_helpers import code, ledger, post_all, writer
from tests.helpers import Gateway, event

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(
    r"tthc audit rebuild: (\d+) dossiers, (\d+) new violations, (\d+) dismissed, "
    r"[\d.]+ s, [\d,]+ dossiers/s\n"
)


async def tthc_audit(settings: Settings, *argv: str) -> tuple[int, str, str]:
    """Run ``tthc audit ARGV`` (in a thread: it runs its own event loop)."""
    out, err = io.StringIO(), io.StringIO()
    status = await asyncio.to_thread(
        audit_cli.main, list(argv), lambda: settings, stdout=out, stderr=err
    )
    return status, out.getvalue(), err.getvalue()


# The CLI judges at the real present: a due date to come keeps dossiers from being overdue.
FUTURE = "2099-04-12T17:00:00+07:00"


async def post_dossiers(gateway: Gateway) -> None:
    # Two without a phone (two violations), one clean.
    for n in (1, 2):
        body = event("dossier.received", code=code(n), due_at=FUTURE, applicant={"name": "A"})
        await post_all(gateway, [body])
    await post_all(gateway, [event("dossier.received", code=code(3), due_at=FUTURE)])


async def test_rebuild_prints_progress_and_a_summary_and_is_idempotent(
    gateway: Gateway, settings: Settings
) -> None:
    await post_dossiers(gateway)
    status, out, err = await tthc_audit(settings, "rebuild", "--progress")
    assert status == 0, err
    summary = SUMMARY.fullmatch(out)
    assert summary is not None, out
    assert summary.groups() == ("3", "2", "0")
    assert "\rtthc audit: 3/3 dossiers (100%)" in err and err.endswith("\n")

    status, out, err = await tthc_audit(settings, "rebuild", "--no-progress")
    assert (status, err) == (0, "")
    again = SUMMARY.fullmatch(out)
    assert again is not None and again.groups() == ("3", "0", "0")
    async with writer(settings.database_url) as engine:
        assert len(await ledger(engine)) == 2


async def test_since_a_day_after_the_changes_audits_nothing(
    gateway: Gateway, settings: Settings
) -> None:
    await post_dossiers(gateway)
    status, out, err = await tthc_audit(settings, "rebuild", "--since", "2999-01-01")
    assert status == 0, err
    summary = SUMMARY.fullmatch(out)
    assert summary is not None and summary.groups() == ("0", "0", "0")
    status, out, err = await tthc_audit(settings, "rebuild", "--since", "2000-01-01")
    summary = SUMMARY.fullmatch(out)
    assert summary is not None and summary.groups() == ("3", "2", "0")


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    def no_settings() -> Settings:
        raise AssertionError("settings are not needed to refuse arguments")

    assert audit_cli.main(["rebuild", "--since", "01/04/2024"], no_settings) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "not a date YYYY-MM-DD" in captured.err
    assert audit_cli.main(["rebuild", "--wat"], no_settings) == 2
    assert audit_cli.main([], no_settings) == 2


def test_a_database_that_is_not_migrated_is_refused(tmp_path: Path, settings: Settings) -> None:
    fresh = Settings.from_mapping(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite3'}", "REDIS_URL": settings.redis_url}
    )
    out, err = io.StringIO(), io.StringIO()
    status = audit_cli.main(["rebuild"], lambda: fresh, stdout=out, stderr=err)
    assert status == 2
    assert "tthc migrate" in err.getvalue()


def test_tthc_audit_runs_as_a_command(tmp_path: Path, sqlite_template: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{sqlite_template}",
        "REDIS_URL": "redis://127.0.0.1:1",  # not needed by a rebuild
    }
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "audit", "rebuild"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = SUMMARY.fullmatch(done.stdout)
    assert summary is not None and summary.groups() == ("0", "0", "0")
