"""``tthc officers import`` (gateway.cli.officers), on SQLite and PostgreSQL: idempotent,
every bad line reported, nothing half imported."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import officers as officers_cli
from gateway.settings import Settings
from gateway.storage.audit import Actor, upsert_officers_from_events
from tests.audit.ledger_helpers import directory, writer

AT = datetime(2026, 4, 24, 3, 0, tzinfo=UTC)
HEADER = "id,name,agency_code,unit,supervisor_id\n"
GOOD = (
    HEADER
    + "ld-0001,Nguyễn Hữu Đạt,000.00.12.H19,Ban Giám đốc,\n"
    + "cc-0123,Trần Thị Bình,000.00.12.H19,Bộ phận một cửa,ld-0001\n"
    + '"cv-0200","Lý Văn Dừng, chuyên viên",000.00.12.H19,Phòng Quản lý xây dựng,ld-0001\n'
)


def tthc_officers(settings: Settings, path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = officers_cli.main(
        ["import", str(path)], lambda: settings, stdout=out, stderr=err, clock=lambda: AT
    )
    return status, out.getvalue(), err.getvalue()


def write(tmp_path: Path, text: str, *, bom: bool = False, name: str = "officers.csv") -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def stored(settings: Settings) -> dict[str, dict[str, Any]]:
    async def read() -> dict[str, dict[str, Any]]:
        async with writer(settings.database_url) as engine:
            return await directory(engine)

    return asyncio.run(read())


def test_import_creates_then_changes_nothing_then_updates(
    tmp_path: Path, settings: Settings
) -> None:
    status, out, err = tthc_officers(settings, write(tmp_path, GOOD, bom=True))
    assert (status, err) == (0, "")
    assert out == "tthc officers import: 3 created, 0 updated, 0 unchanged\n"
    people = stored(settings)
    assert people["cv-0200"] | {"created_at": None, "updated_at": None} == {
        "id": "cv-0200",
        "name": "Lý Văn Dừng, chuyên viên",
        "agency_code": "000.00.12.H19",
        "unit": "Phòng Quản lý xây dựng",
        "supervisor_id": "ld-0001",
        "origin": "import",
        "created_at": None,
        "updated_at": None,
    }
    assert people["ld-0001"]["supervisor_id"] is None

    status, out, _ = tthc_officers(settings, write(tmp_path, GOOD))
    assert (status, out) == (0, "tthc officers import: 0 created, 0 updated, 3 unchanged\n")

    # The supervisor may be one the directory already holds; columns in any order.
    moved = (
        "name,id,supervisor_id,unit,agency_code\n"
        "Trần Thị Bình,cc-0123,cv-0200,Bộ phận một cửa,000.00.12.H19\n"
        "Phạm Văn Mới,cc-0999,ld-0001,,\n"
    )
    status, out, err = tthc_officers(settings, write(tmp_path, moved))
    assert (status, err) == (0, "")
    assert out == "tthc officers import: 1 created, 1 updated, 0 unchanged\n"
    people = stored(settings)
    assert people["cc-0123"]["supervisor_id"] == "cv-0200"
    assert (people["cc-0999"]["unit"], people["cc-0999"]["agency_code"]) == (None, None)
    assert len(people) == 4


def test_an_import_takes_over_an_officer_learnt_from_events(
    tmp_path: Path, settings: Settings
) -> None:
    async def seen() -> None:
        async with writer(settings.database_url) as engine, engine.begin() as conn:
            await upsert_officers_from_events(conn, [Actor("cc-0123", "Bình", "000.00.12.H19")], AT)

    asyncio.run(seen())
    assert stored(settings)["cc-0123"]["origin"] == "event"
    status, out, _ = tthc_officers(settings, write(tmp_path, GOOD))
    assert (status, out) == (0, "tthc officers import: 2 created, 1 updated, 0 unchanged\n")
    clerk = stored(settings)["cc-0123"]
    assert (clerk["origin"], clerk["name"]) == ("import", "Trần Thị Bình")


def test_every_bad_line_is_reported_and_nothing_is_imported(
    tmp_path: Path, settings: Settings
) -> None:
    bad = (
        HEADER
        + "ld-0001,Nguyễn Hữu Đạt,000.00.12.H19,Ban Giám đốc,\n"  # 2: fine
        + ",Không Có Mã,000.00.12.H19,,\n"  # 3: no id
        + "ld-0001,Trùng Mã,000.00.12.H19,,\n"  # 4: duplicate of line 2
        + "cc-0001,Sai Cấp Trên,000.00.12.H19,,ld-9999\n"  # 5: unknown supervisor
        + "cc-0002,Sai Mã Cơ Quan,SXD-12,,\n"  # 6: agency code format
        + "cc-0003,,000.00.12.H19,,\n"  # 7: no name
        + "cc-0004,Thiếu Cột,000.00.12.H19\n"  # 8: too few fields
        + "cc-0005,Tự Quản Lý,000.00.12.H19,,cc-0005\n"  # 9: own supervisor
        + "\n"  # blank: skipped
        + "cc-0006,Đúng,000.00.12.H19,,ld-0001\n"  # 11: fine
    )
    status, out, err = tthc_officers(settings, write(tmp_path, bad))
    assert (status, out) == (1, "")
    path = tmp_path / "officers.csv"
    assert err.splitlines() == [
        f"tthc officers import: {path}: line 3, id: is missing",
        f"tthc officers import: {path}: line 4, id: 'ld-0001' is already on line 2",
        f"tthc officers import: {path}: line 5, supervisor_id: unknown officer 'ld-9999' "
        "(not in the file nor in the directory)",
        f"tthc officers import: {path}: line 6, agency_code: 'SXD-12' is not an agency code "
        "like 000.00.12.H19 (QCVN 102:2016)",
        f"tthc officers import: {path}: line 7, name: is missing",
        f"tthc officers import: {path}: line 8: has 3 fields, the header 5",
        f"tthc officers import: {path}: line 9, supervisor_id: is the officer themself",
        "tthc officers import: 7 bad line(s); nothing was imported",
    ]
    assert stored(settings) == {}

    # Only the directory's supervisors were missing: still nothing imported.
    unknown = HEADER + "cc-0001,Sai Cấp Trên,000.00.12.H19,,ld-9999\ncc-0002,Đúng,,,\n"
    status, out, err = tthc_officers(settings, write(tmp_path, unknown))
    assert (status, out) == (1, "")
    assert err.splitlines() == [
        f"tthc officers import: {path}: line 2, supervisor_id: unknown officer 'ld-9999' "
        "(not in the file nor in the directory)",
        "tthc officers import: 1 bad line(s); nothing was imported",
    ]
    assert stored(settings) == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "line 1: is empty; expected id,name,agency_code,unit,supervisor_id"),
        (
            b"id,name,agency,unit,supervisor_id\n",
            "line 1: bad header: missing column(s) agency_code; unknown column(s) 'agency' "
            "(expected id,name,agency_code,unit,supervisor_id)",
        ),
        (
            HEADER.encode() + "cc-1,Lê Vân,,,\n".encode("cp1252"),  # a Windows ANSI file
            "line 2: is not UTF-8 (save the file as CSV UTF-8)",
        ),
    ],
)
def test_unreadable_files_are_refused(tmp_path: Path, raw: bytes, message: str) -> None:
    path = tmp_path / "officers.csv"
    path.write_bytes(raw)
    out, err = io.StringIO(), io.StringIO()
    status = officers_cli.main(["import", str(path)], no_settings, stdout=out, stderr=err)
    assert (status, out.getvalue()) == (1, "")
    assert err.getvalue().splitlines()[0] == f"tthc officers import: {path}: {message}"


def no_settings() -> Settings:
    raise AssertionError("a bad file is refused before the database is opened")


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    missing = str(tmp_path / "nope.csv")
    status = officers_cli.main(["import", missing], no_settings, stdout=out, stderr=err)
    assert status == 1
    assert "cannot read" in err.getvalue()
