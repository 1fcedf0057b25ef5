"""``tthc user add|list|disable`` (gateway.cli.users), on SQLite and PostgreSQL.

Most tests call the command's ``main`` in this process with real databases; one runs
``python -m gateway user`` as an operator would, to check the wiring and exit codes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.cli import users as staff_cli
from gateway.local.redis_server import free_port
from gateway.settings import Settings
from gateway.storage import migrate
from gateway.storage.db import Database
from gateway.storage.staff import StaffUser, authenticate, hash_token
from gateway.storage.tables import staff_users
from tests.staff_helpers import empty_staff_tables, rows

ROOT = Path(__file__).resolve().parents[2]
# 17:30 UTC on 24 April 2026 is half past midnight on the 25th in Vietnam.
ADDED = datetime(2026, 4, 24, 17, 30, tzinfo=UTC)
DISABLED = datetime(2026, 4, 27, 2, 5, tzinfo=UTC)


def tthc_user(settings: Settings, *argv: str, at: datetime = ADDED) -> tuple[int, str, str]:
    """Run ``tthc user ARGV`` at the moment ``at``: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    status = staff_cli.main(list(argv), lambda: settings, stdout=out, stderr=err, clock=lambda: at)
    return status, out.getvalue(), err.getvalue()


def who(settings: Settings, token: str) -> StaffUser | None:
    async def look() -> StaffUser | None:
        db = Database.open(settings.database_url)
        try:
            return await authenticate(db.reader, token)
        finally:
            await db.close()

    return asyncio.run(look())


def stored(settings: Settings) -> list[dict[str, object]]:
    async def read() -> list[dict[str, object]]:
        db = Database.open(settings.database_url)
        try:
            return await rows(db.reader, staff_users)
        finally:
            await db.close()

    return asyncio.run(read())


@pytest.fixture
def staff_settings(settings: Settings) -> Settings:
    asyncio.run(empty_staff_tables(settings.database_url))
    return settings


def add(settings: Settings, username: str, role: str = "hotline") -> str:
    status, out, err = tthc_user(
        settings, "add", username, "--name", "Nguyễn Thị Hoa", "--role", role
    )
    assert status == 0, err
    return out.strip()


def test_add_prints_the_token_once_and_stores_only_its_hash(staff_settings: Settings) -> None:
    status, out, err = tthc_user(
        staff_settings, "add", "hoa.nt", "--name", " Nguyễn Thị Hoa ", "--role", "auditor"
    )
    assert status == 0, err
    token = out.removesuffix("\n")
    assert out == token + "\n"  # alone on stdout, for scripts
    assert token.startswith("tthc_") and len(token) >= 40
    assert "will not be shown again" in err and token not in err

    user = who(staff_settings, token)
    assert user is not None
    assert (user.username, user.name, user.role, user.disabled_at) == (
        "hoa.nt",
        "Nguyễn Thị Hoa",
        "auditor",
        None,
    )
    [row] = stored(staff_settings)
    assert row["token_hash"] == hash_token(token)
    assert token not in str(row)

    # Each user gets a token of their own.
    other = add(staff_settings, "lan")
    assert other != token
    assert who(staff_settings, other) is not None
    assert who(staff_settings, token + "x") is None


def test_list_shows_every_user_but_never_a_token(staff_settings: Settings) -> None:
    tokens = [add(staff_settings, "minh", "admin"), add(staff_settings, "an", "hotline")]
    assert tthc_user(staff_settings, "disable", "minh", at=DISABLED)[0] == 0

    status, out, err = tthc_user(staff_settings, "list")
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "username\trole\tname\tcreated\tdisabled",
        "an\thotline\tNguyễn Thị Hoa\t25/04/2026 00:30\t-",
        "minh\tadmin\tNguyễn Thị Hoa\t25/04/2026 00:30\t27/04/2026 09:05",
    ]
    assert not any(token in out for token in tokens)


def test_list_shows_times_in_the_configured_time_zone(staff_settings: Settings) -> None:
    add(staff_settings, "an")
    tokyo = dataclasses.replace(staff_settings, time_zone="Asia/Tokyo")
    status, out, err = tthc_user(tokyo, "list")
    assert (status, err) == (0, "")
    assert out.splitlines()[1:] == ["an\thotline\tNguyễn Thị Hoa\t25/04/2026 02:30\t-"]


def test_list_of_no_users_is_the_header_alone(staff_settings: Settings) -> None:
    assert tthc_user(staff_settings, "list") == (0, "username\trole\tname\tcreated\tdisabled\n", "")


def test_a_disabled_users_token_stops_working(staff_settings: Settings) -> None:
    token = add(staff_settings, "hoa")
    status, out, err = tthc_user(staff_settings, "disable", "hoa")
    assert (status, out) == (0, "")
    assert "hoa is disabled" in err
    assert who(staff_settings, token) is None
    [first] = stored(staff_settings)
    assert first["disabled_at"] is not None

    # Disabling again is harmless and keeps the first date.
    assert tthc_user(staff_settings, "disable", "hoa", at=DISABLED)[0] == 0
    assert stored(staff_settings) == [first]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("add", "Hoa Nguyen", "--name", "Hoa", "--role", "hotline"), "username: must be 2-64"),
        (("add", "h", "--name", "Hoa", "--role", "hotline"), "username: must be 2-64"),
        (("add", "hoa", "--name", "   ", "--role", "hotline"), "name: is required"),
        (("add", "hoa", "--name", "x" * 201, "--role", "hotline"), "name: must be at most 200"),
        (("disable", "nobody"), "no staff user named 'nobody'"),
    ],
)
def test_errors_go_to_stderr_with_status_1(
    staff_settings: Settings, argv: tuple[str, ...], message: str
) -> None:
    status, out, err = tthc_user(staff_settings, *argv)
    assert (status, out) == (1, "")
    assert err.startswith("tthc user: ") and message in err
    assert stored(staff_settings) == []


def test_a_username_is_taken_once_even_by_a_disabled_user(staff_settings: Settings) -> None:
    token = add(staff_settings, "hoa")
    tthc_user(staff_settings, "disable", "hoa")
    before = stored(staff_settings)
    status, out, err = tthc_user(
        staff_settings, "add", "hoa", "--name", "Người khác", "--role", "admin"
    )
    assert (status, out) == (1, "")
    assert "a staff user named 'hoa' already exists" in err
    assert stored(staff_settings) == before
    assert who(staff_settings, token) is None


@pytest.mark.parametrize(
    "argv",
    [
        ("add", "hoa", "--name", "Hoa", "--role", "boss"),
        ("add", "hoa", "--role", "hotline"),
        ("remove", "hoa"),
        (),
    ],
)
def test_a_malformed_command_is_a_usage_error(
    sqlite_template: Path,
    tmp_path: Path,
    redis_server: str,
    argv: tuple[str, ...],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Refused before the database is opened: one kind of database is enough.
    database = tmp_path / "tthc.sqlite3"
    shutil.copyfile(sqlite_template, database)
    settings = Settings.from_mapping(
        {"DATABASE_URL": f"sqlite:///{database}", "REDIS_URL": redis_server}
    )
    with pytest.raises(SystemExit) as exited:
        tthc_user(settings, *argv)
    assert exited.value.code == 2
    assert "usage: tthc user" in capsys.readouterr().err
    assert stored(settings) == []


def test_an_unmigrated_database_gives_2(tmp_path: Path, redis_server: str) -> None:
    settings = Settings.from_mapping(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite3'}", "REDIS_URL": redis_server}
    )
    status, out, err = tthc_user(settings, "add", "hoa", "--name", "Hoa", "--role", "hotline")
    assert (status, out) == (2, "")
    assert "run `tthc migrate` first" in err
    # An older schema is not enough either.
    older = tmp_path / "old.sqlite3"
    migrate.upgrade(f"sqlite:///{older}", "0002")
    settings = Settings.from_mapping(
        {"DATABASE_URL": f"sqlite:///{older}", "REDIS_URL": redis_server}
    )
    assert tthc_user(settings, "list")[0] == 2


@pytest.mark.postgres
def test_an_unmigrated_postgres_schema_gives_2(
    postgres_server: str | None, redis_server: str
) -> None:
    if postgres_server is None:
        pytest.skip("no PostgreSQL server")
    url = f"{postgres_server}?schema=tthc_never_migrated_{os.getpid()}"
    settings = Settings.from_mapping({"DATABASE_URL": url, "REDIS_URL": redis_server})
    status, _, err = tthc_user(settings, "list")
    assert status == 2, err


def test_an_unreachable_database_gives_1(redis_server: str) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    settings = Settings.from_mapping({"DATABASE_URL": url, "REDIS_URL": redis_server})
    status, out, err = tthc_user(settings, "list")
    assert (status, out) == (1, "")
    assert err.startswith("tthc user: cannot reach the database")
    assert len(err.splitlines()) == 1


def test_the_tthc_command_runs_it(tmp_path: Path, redis_server: str) -> None:
    database = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    migrate.upgrade(database)
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": redis_server,
        "PYTHONIOENCODING": "utf-8",
        "PYTHONPATH": str(ROOT),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "user", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            check=False,
        )

    added = run("add", "hoa", "--name", "Nguyễn Thị Hoa", "--role", "hotline")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("tthc_") and added.stdout.count("\n") == 1
    taken = run("add", "hoa", "--name", "Hoa", "--role", "admin")
    assert (taken.returncode, taken.stdout) == (1, "")
    assert "already exists" in taken.stderr
    [row] = stored(Settings.from_mapping({"DATABASE_URL": database, "REDIS_URL": redis_server}))
    assert row["token_hash"] == hash_token(added.stdout.strip())
