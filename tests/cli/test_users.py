"""``tthc user add|passwd|list|disable`` (gateway.cli.users), on SQLite and PostgreSQL.

Most tests call the command's ``main`` in this process with real databases; one runs
``python -m gateway user`` as an operator would, to check the wiring and exit codes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.cli import users as staff_cli
from gateway.local.redis_server import free_port
from gateway.settings import Settings
from gateway.storage import migrate
from gateway.storage.db import Database
from gateway.storage.staff import StaffUser, authenticate, hash_token, verify_password
from gateway.storage.tables import staff_audit_log, staff_users
from tests.staff_helpers import empty_staff_tables, rows

ROOT = Path(__file__).resolve().parents[2]
# 17:30 UTC on 24 April 2026 is half past midnight on the 25th in Vietnam.
ADDED = datetime(2026, 4, 24, 17, 30, tzinfo=UTC)
DISABLED = datetime(2026, 4, 27, 2, 5, tzinfo=UTC)
PASSWORD = "Hoa đổi mật khẩu 2026"


def tthc_user(
    settings: Settings, *argv: str, at: datetime = ADDED, stdin: str = ""
) -> tuple[int, str, str]:
    """Run ``tthc user ARGV`` at the moment ``at``, ``stdin`` as standard input.

    Returns the exit status, stdout and stderr.
    """
    out, err = io.StringIO(), io.StringIO()
    status = staff_cli.main(
        list(argv),
        lambda: settings,
        stdin=io.StringIO(stdin),
        stdout=out,
        stderr=err,
        clock=lambda: at,
    )
    return status, out.getvalue(), err.getvalue()


def login(settings: Settings, username: str, password: str) -> StaffUser | None:
    async def check() -> StaffUser | None:
        db = Database.open(settings.database_url)
        try:
            return await verify_password(db.reader, username, password, DISABLED)
        finally:
            await db.close()

    return asyncio.run(check())


def who(settings: Settings, token: str) -> StaffUser | None:
    async def look() -> StaffUser | None:
        db = Database.open(settings.database_url)
        try:
            return await authenticate(db.reader, token)
        finally:
            await db.close()

    return asyncio.run(look())


def stored(settings: Settings, table: sa.Table = staff_users) -> list[dict[str, object]]:
    async def read() -> list[dict[str, object]]:
        db = Database.open(settings.database_url)
        try:
            return await rows(db.reader, table)
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
    # Without --password-stdin the user has a token only, as before.
    assert (row["password_hash"], row["password_changed_at"]) == (None, None)

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
        (
            ("add", "hoa", "--name", "Hoa", "--role", "hotline", "--password-stdin"),
            "password: must be at least 10 characters",
        ),
        (
            ("add", "hoa", "--name", "Hoa", "--role", "hotline", "--password-stdin"),
            "password: is required",
        ),
    ],
)
def test_errors_go_to_stderr_with_status_1(
    staff_settings: Settings, argv: tuple[str, ...], message: str
) -> None:
    stdin = "ngắn quá\n" if "at least" in message else ""
    status, out, err = tthc_user(staff_settings, *argv, stdin=stdin)
    if stdin:
        assert stdin.strip() not in err
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


def test_add_reads_the_password_from_stdin_and_still_prints_the_token(
    staff_settings: Settings,
) -> None:
    status, out, err = tthc_user(
        staff_settings,
        "add",
        "hoa",
        "--name",
        "Nguyễn Thị Hoa",
        "--role",
        "hotline",
        "--password-stdin",
        stdin=PASSWORD + "\nthe second line is not read\n",
    )
    assert status == 0, err
    token = out.removesuffix("\n")
    assert out == token + "\n" and token.startswith("tthc_")
    assert PASSWORD not in out + err
    assert who(staff_settings, token) is not None

    [row] = stored(staff_settings)
    assert str(row["password_hash"]).startswith("$argon2")
    assert PASSWORD not in str(row)
    assert row["password_changed_at"] == ADDED
    user = login(staff_settings, "hoa", PASSWORD)
    assert user is not None and user.role == "hotline"
    assert login(staff_settings, "hoa", PASSWORD + "\n") is None


def test_a_windows_line_ending_is_not_part_of_the_password(staff_settings: Settings) -> None:
    argv = ("add", "hoa", "--name", "Hoa", "--role", "hotline", "--password-stdin")
    assert tthc_user(staff_settings, *argv, stdin=PASSWORD + "\r\n")[0] == 0
    assert login(staff_settings, "hoa", PASSWORD) is not None
    # The last line may have no line ending at all.
    argv = ("add", "lan", "--name", "Lan", "--role", "hotline", "--password-stdin")
    assert tthc_user(staff_settings, *argv, stdin=PASSWORD)[0] == 0
    assert login(staff_settings, "lan", PASSWORD) is not None


def test_passwd_changes_the_password_and_records_it(staff_settings: Settings) -> None:
    add(staff_settings, "hoa")
    assert login(staff_settings, "hoa", PASSWORD) is None  # a token only, so far

    status, out, err = tthc_user(
        staff_settings, "passwd", "hoa", "--password-stdin", stdin=PASSWORD + "\n", at=DISABLED
    )
    assert (status, out) == (0, "")
    assert "password of hoa is changed" in err and PASSWORD not in err
    assert login(staff_settings, "hoa", PASSWORD) is not None
    [row] = stored(staff_settings)
    assert row["password_changed_at"] == DISABLED
    [entry] = stored(staff_settings, staff_audit_log)
    assert (entry["staff_id"], entry["username"], entry["action"], entry["target"]) == (
        row["id"],
        "hoa",
        "password_changed",
        f"staff:{row['id']}",
    )
    assert (entry["at"], entry["detail"]) == (DISABLED, {"via": "cli"})

    # A new one replaces it.
    again = tthc_user(staff_settings, "passwd", "hoa", "--password-stdin", stdin="mới hơn 12345")
    assert again[0] == 0
    assert login(staff_settings, "hoa", PASSWORD) is None
    assert login(staff_settings, "hoa", "mới hơn 12345") is not None
    assert len(stored(staff_settings, staff_audit_log)) == 2


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("nobody", PASSWORD, "no staff user named 'nobody'"),
        ("hoa", "ngắn quá", "password: must be at least 10 characters"),
        ("hoa", "x" * 201, "password: must be at most 200 characters"),
        ("hoa", "", "password: is required"),
    ],
)
def test_passwd_refuses_with_the_reason_and_writes_nothing(
    staff_settings: Settings, username: str, password: str, message: str
) -> None:
    add(staff_settings, "hoa")
    before = stored(staff_settings)
    status, out, err = tthc_user(
        staff_settings, "passwd", username, "--password-stdin", stdin=password + "\n"
    )
    assert (status, out) == (1, "")
    assert err.startswith("tthc user: ") and message in err
    if password:
        assert password not in err
    assert stored(staff_settings) == before
    assert stored(staff_settings, staff_audit_log) == []


def test_a_password_never_reaches_the_logs(
    staff_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    argv = ("add", "hoa", "--name", "Hoa", "--role", "admin", "--password-stdin")
    assert tthc_user(staff_settings, *argv, stdin=PASSWORD)[0] == 0
    assert (
        tthc_user(staff_settings, "passwd", "hoa", "--password-stdin", stdin="mới hơn 12345")[0]
        == 0
    )
    assert tthc_user(staff_settings, "passwd", "hoa", "--password-stdin", stdin="ngắn")[0] == 1
    assert caplog.records  # the database did log (statements, at least)
    for secret in (PASSWORD, "mới hơn 12345", "ngắn"):
        assert secret not in caplog.text


@pytest.mark.parametrize(
    "argv",
    [
        ("add", "hoa", "--name", "Hoa", "--role", "boss"),
        ("add", "hoa", "--role", "hotline"),
        ("remove", "hoa"),
        ("passwd", "hoa"),
        ("passwd", "--password-stdin"),
        ("add", "hoa", "--name", "Hoa", "--role", "hotline", "--password", "x" * 12),
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
    settings = Settings.from_mapping({"DATABASE_URL": database, "REDIS_URL": redis_server})
    [row] = stored(settings)
    assert row["token_hash"] == hash_token(added.stdout.strip())


def test_the_tthc_command_takes_passwords_on_stdin(tmp_path: Path, redis_server: str) -> None:
    database = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    migrate.upgrade(database)
    settings = Settings.from_mapping({"DATABASE_URL": database, "REDIS_URL": redis_server})
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": redis_server,
        # The C locale of a container: the password must still arrive as UTF-8, intact.
        # (argv is decoded by the locale, so the name given below is ASCII.)
        "LC_ALL": "C",
        "PYTHONIOENCODING": "",
        "PYTHONUTF8": "0",
        "PYTHONPATH": str(ROOT),
    }

    def run(*args: str, stdin: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "user", *args],
            env=env,
            cwd=tmp_path,
            input=stdin.encode(),
            capture_output=True,
            timeout=60,
            check=False,
        )

    added = run(
        "add",
        "hoa",
        "--name",
        "Hoa",
        "--role",
        "hotline",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stderr.decode()
    assert added.stdout.startswith(b"tthc_") and added.stdout.count(b"\n") == 1
    assert PASSWORD.encode() not in added.stdout + added.stderr
    assert login(settings, "hoa", PASSWORD) is not None

    changed = run("passwd", "hoa", "--password-stdin", stdin="mới hơn 12345\n")
    assert (changed.returncode, changed.stdout) == (0, b""), changed.stderr.decode()
    assert "mới hơn 12345".encode() not in changed.stderr
    assert login(settings, "hoa", "mới hơn 12345") is not None

    short = run("passwd", "hoa", "--password-stdin", stdin="ngắn\n")
    assert (short.returncode, short.stdout) == (1, b"")
    assert b"password: must be at least 10 characters" in short.stderr
    unknown = run("passwd", "nobody", "--password-stdin", stdin=PASSWORD)
    assert unknown.returncode == 1 and b"no staff user named 'nobody'" in unknown.stderr
    usage = run("passwd", "hoa", stdin=PASSWORD)
    assert usage.returncode == 2 and b"usage: tthc user" in usage.stderr
    assert login(settings, "hoa", "mới hơn 12345") is not None
    assert [e["action"] for e in stored(settings, staff_audit_log)] == ["password_changed"]
