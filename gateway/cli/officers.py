"""``tthc officers import``: load the province's officer list into the directory.

Usage::

    tthc officers import FILE.csv

The file is CSV in UTF-8 (a byte-order mark, as spreadsheets write, is fine) with the
header ``id,name,agency_code,unit,supervisor_id`` (any column order). Every line is
checked before anything is written — an id is present and not repeated, a name is
present, the agency code has the QCVN 102:2016 form, the supervisor is in the file or
already in the directory — and each problem is printed on stderr with its line number,
the field and why; then nothing is imported (exit status 1). A valid
file replaces the listed officers' rows, also those first learnt from events; running
the same file again changes nothing. The counts go to stdout::

    tthc officers import: 120 created, 3 updated, 40 unchanged

Exit status: 0 imported, 1 bad file or database error, 2 database not migrated.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

from sqlalchemy.exc import SQLAlchemyError

from gateway.cli.database import first_line, refusal
from gateway.cli.streams import parse_or_exit_code, utf8
from gateway.settings import Settings
from gateway.storage.audit import OfficerRecord, import_officers, known_officer_ids
from gateway.storage.db import create_engine

__all__ = ["COLUMNS", "LineError", "ParsedFile", "main", "parse_officers", "unknown_supervisors"]

_PROG = "tthc officers"
COLUMNS: Final = ("id", "name", "agency_code", "unit", "supervisor_id")
# The agency identifier of QCVN 102:2016 (as in dossier codes): NNN.NN.NN.Xnn.
_AGENCY_RE: Final = re.compile(r"[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z]\d{2}", re.ASCII)
# Officer ids as events carry them: printable, no spaces.
_ID_RE: Final = re.compile(r"[\x21-\x7e]{1,128}", re.ASCII)
_NAME_MAX: Final = 200
_UNIT_MAX: Final = 200


@dataclass(frozen=True, slots=True)
class LineError:
    """One problem of the file: where, which field, why."""

    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", {self.field}" if self.field else "")
        return f"{where}: {self.message}"


def _decode(raw: bytes) -> tuple[str | None, LineError | None]:
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, LineError(line, None, "is not UTF-8 (save the file as CSV UTF-8)")


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """What a CSV text holds: the valid lines' officers (with their line numbers), every
    id the file names (on valid lines or not), and the problems found."""

    records: list[tuple[int, OfficerRecord]]
    ids: set[str]
    errors: list[LineError]


def _header_error(names: list[str]) -> LineError | None:
    missing = [c for c in COLUMNS if c not in names]
    unknown = [h for h in names if h not in COLUMNS]
    repeated = sorted({h for h in names if names.count(h) > 1})
    why = []
    if missing:
        why.append("missing column(s) " + ", ".join(missing))
    if unknown:
        why.append("unknown column(s) " + ", ".join(repr(u) for u in unknown))
    if repeated:
        why.append("repeated column(s) " + ", ".join(repeated))
    if not why:
        return None
    return LineError(1, None, f"bad header: {'; '.join(why)} (expected {','.join(COLUMNS)})")


def parse_officers(text: str) -> ParsedFile:
    """Read and check a CSV text line by line, without the directory: a supervisor
    missing from the file is left to :func:`unknown_supervisors`."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return ParsedFile([], set(), [LineError(1, None, f"cannot be read as CSV: {exc}")])
    if header is None:
        expected = ",".join(COLUMNS)
        return ParsedFile([], set(), [LineError(1, None, f"is empty; expected {expected}")])
    names = [h.strip().lower() for h in header]
    bad_header = _header_error(names)
    if bad_header is not None:
        return ParsedFile([], set(), [bad_header])
    index = {name: names.index(name) for name in COLUMNS}
    records: list[tuple[int, OfficerRecord]] = []
    errors: list[LineError] = []
    seen_on: dict[str, int] = {}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(LineError(reader.line_num, None, f"cannot be read as CSV: {exc}"))
            break
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank lines, as spreadsheets leave at the end
        if len(row) != len(names):
            errors.append(LineError(line, None, f"has {len(row)} fields, the header {len(names)}"))
            continue
        values = {name: row[i].strip() for name, i in index.items()}
        record, problems = _record(line, values, seen_on)
        errors.extend(problems)
        if record is not None:
            records.append((line, record))
    return ParsedFile(records, set(seen_on), errors)


def _record(
    line: int, values: dict[str, str], seen_on: dict[str, int]
) -> tuple[OfficerRecord | None, list[LineError]]:
    errors: list[LineError] = []
    ident = values["id"]
    if not ident:
        errors.append(LineError(line, "id", "is missing"))
    elif not _ID_RE.fullmatch(ident):
        errors.append(LineError(line, "id", "must be 1-128 printable characters without spaces"))
    elif ident in seen_on:
        errors.append(LineError(line, "id", f"{ident!r} is already on line {seen_on[ident]}"))
    else:
        seen_on[ident] = line
    name = values["name"]
    if not name:
        errors.append(LineError(line, "name", "is missing"))
    elif len(name) > _NAME_MAX:
        errors.append(LineError(line, "name", f"is longer than {_NAME_MAX} characters"))
    agency = values["agency_code"]
    if agency and not _AGENCY_RE.fullmatch(agency):
        errors.append(
            LineError(
                line,
                "agency_code",
                f"{agency!r} is not an agency code like 000.00.12.H19 (QCVN 102:2016)",
            )
        )
    if len(values["unit"]) > _UNIT_MAX:
        errors.append(LineError(line, "unit", f"is longer than {_UNIT_MAX} characters"))
    supervisor = values["supervisor_id"]
    if supervisor and not _ID_RE.fullmatch(supervisor):
        errors.append(
            LineError(line, "supervisor_id", "must be 1-128 printable characters without spaces")
        )
    elif supervisor and supervisor == ident:
        errors.append(LineError(line, "supervisor_id", "is the officer themself"))
    if errors:
        return None, errors
    unit = values["unit"] or None
    return OfficerRecord(ident, name, agency or None, unit, supervisor or None), []


def unknown_supervisors(parsed: ParsedFile, known: set[str]) -> list[LineError]:
    """The lines whose supervisor is neither in the file nor in ``known`` (the directory)."""
    return [
        LineError(
            line,
            "supervisor_id",
            f"unknown officer {r.supervisor_id!r} (not in the file nor in the directory)",
        )
        for line, r in parsed.records
        if r.supervisor_id and r.supervisor_id not in parsed.ids and r.supervisor_id not in known
    ]


def _outside_supervisors(parsed: ParsedFile) -> set[str]:
    """The supervisors the file names but does not list: the directory must know them."""
    named = {r.supervisor_id for _, r in parsed.records if r.supervisor_id}
    return named - parsed.ids


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description="the officer directory")
    sub = parser.add_subparsers(dest="action", required=True)
    load = sub.add_parser("import", help="import FILE.csv (id,name,agency_code,unit,supervisor_id)")
    load.add_argument("file", type=Path, help="CSV file in UTF-8")
    return parser


async def _import(
    settings: Settings, path: Path, parsed: ParsedFile, out: TextIO, err: TextIO, now: datetime
) -> int:
    if refused := await refusal(settings, _PROG, err):
        return refused
    engine = create_engine(settings.database_url, writer=True, pool_size=1)
    try:
        async with engine.begin() as conn:
            known = await known_officer_ids(conn, _outside_supervisors(parsed))
            errors = [*parsed.errors, *unknown_supervisors(parsed, known)]
            if errors:
                _print_errors(path, errors, err)
                return 1
            counts = await import_officers(conn, [r for _, r in parsed.records], now)
    except (SQLAlchemyError, OSError) as exc:
        print(f"{_PROG}: the database failed, nothing imported: {first_line(exc)}", file=err)
        return 1
    finally:
        await engine.dispose()
    print(
        f"{_PROG} import: {counts.created} created, {counts.updated} updated, "
        f"{counts.unchanged} unchanged",
        file=out,
    )
    return 0


def _print_errors(path: Path, errors: Sequence[LineError], err: TextIO) -> None:
    for error in sorted(errors, key=lambda e: e.line):
        print(f"{_PROG} import: {path}: {error}", file=err)
    lines = len({e.line for e in errors})
    print(f"{_PROG} import: {lines} bad line(s); nothing was imported", file=err)


def main(
    argv: Sequence[str],
    load_settings: Callable[[], Settings],
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Run ``tthc officers`` with ``argv`` (after ``officers``); returns the exit status."""
    args = parse_or_exit_code(_parser(), argv)
    if isinstance(args, int):
        return args
    out = stdout or utf8(sys.stdout)
    err = stderr or utf8(sys.stderr)
    path: Path = args.file
    try:
        raw = path.read_bytes()
    except OSError as exc:
        print(f"{_PROG} import: cannot read {path}: {exc.strerror or exc}", file=err)
        return 1
    text, undecodable = _decode(raw)
    if text is None:
        assert undecodable is not None
        _print_errors(path, [undecodable], err)
        return 1
    parsed = parse_officers(text)
    if parsed.errors and not _outside_supervisors(parsed):
        # Nothing left to look up in the directory: no need to open the database.
        _print_errors(path, parsed.errors, err)
        return 1
    return asyncio.run(_import(load_settings(), path, parsed, out, err, clock()))
