"""The auditors' exports: every audit list and table as CSV or XLSX, Vietnamese headers.

:func:`table` flattens the API's items (the same JSON the endpoints answer) into a
header row and value rows, with the headers and value labels of
``templates/audit/columns.toml``; :func:`to_csv` and :func:`to_xlsx` write them. CSV is
UTF-8 with a byte-order mark so that Excel shows Vietnamese; XLSX is written by
openpyxl with numbers as numbers and dates as dates, ready for the six-monthly report.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from gateway.settings import DEFAULT_TEMPLATES_DIR

__all__ = ["COLUMNS_FILE", "KINDS", "table", "to_csv", "to_xlsx"]

COLUMNS_FILE = DEFAULT_TEMPLATES_DIR / "audit" / "columns.toml"
KINDS = ("violations", "agencies", "officers", "consultations", "warnings", "months")
_DATETIME = "%d/%m/%Y %H:%M"
_DATE = "%d/%m/%Y"
# A spreadsheet would run a cell starting with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SHEET_TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_MAX_WIDTH = 60

Cell = str | int | float | date | datetime | None


def table(
    kind: str, items: Sequence[Mapping[str, Any]], *, columns_file: Path = COLUMNS_FILE
) -> tuple[list[str], list[list[Any]]]:
    """``items`` of one kind (``violations``, ``agencies``, ``officers``,
    ``consultations``, ``warnings``, ``months``: a monthly series) as a header row and
    one row per item.

    Nested fields are flattened (``agency.name``); ``*_at`` fields become datetimes and
    ``*_date`` fields dates; booleans, statuses and sanctions become Vietnamese words; a
    list becomes one cell. A field the columns file does not know is still exported, at
    the end, under its own name, so that nothing is lost when the API grows.
    """
    spec = _load(columns_file)
    columns: dict[str, str] = dict(spec.get(kind) or {})
    if kind not in KINDS or not columns:
        raise ValueError(f"no export columns for {kind!r} in {columns_file}")
    labels: Mapping[str, Mapping[str, str]] = spec.get("labels", {})
    formats: Mapping[str, str] = spec.get("formats", {})
    flat = [_flatten(item) for item in items]
    known = tuple(columns)
    for fields in flat:
        for path in fields:
            # An absent object (``"officer": null``) is its known columns left empty.
            if path not in columns and not any(k.startswith(f"{path}.") for k in known):
                columns[path] = path
    rows = [[_cell(path, fields.get(path), labels, formats) for path in columns] for fields in flat]
    return list(columns.values()), rows


def to_csv(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, tz: tzinfo | None = None
) -> bytes:
    """CSV bytes: UTF-8 with a BOM, dates ``dd/mm/yyyy HH:MM`` in ``tz`` (default: as
    given, which the API already makes local)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    for row in rows:
        writer.writerow([_csv_text(value, tz) for value in row])
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str, *, tz: tzinfo | None = None
) -> bytes:
    """An XLSX workbook with one sheet named ``title``: a bold, frozen header row, column
    widths that fit, numbers as numbers and dates as dates (local to ``tz``)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = _SHEET_TITLE_FORBIDDEN.sub(" ", title)[:31] or "Sheet"
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    widths = [len(header) for header in headers]
    for row in rows:
        values = [_xlsx_value(value, tz) for value in row]
        sheet.append(values)
        for index, (cell, value) in enumerate(zip(sheet[sheet.max_row], values, strict=True)):
            if isinstance(value, datetime):
                cell.number_format = "dd/mm/yyyy hh:mm"
            elif isinstance(value, date):
                cell.number_format = "dd/mm/yyyy"
            elif isinstance(value, str) and value.startswith(_FORMULA_START):
                # Text, never a formula, whatever the one-stop-shop sent.
                cell.data_type = "s"
            widths[index] = max(widths[index], len(_csv_text(value, None)))
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(width + 2, _MAX_WIDTH)
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _load(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def _flatten(item: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"agency": {"code": "X"}}`` → ``{"agency.code": "X"}``; lists stay whole."""
    flat: dict[str, Any] = {}
    for key, value in item.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _cell(
    path: str, value: Any, labels: Mapping[str, Mapping[str, str]], formats: Mapping[str, str]
) -> Cell:
    field = path.rsplit(".", 1)[-1]
    if value is None:
        return None
    if isinstance(value, bool):
        return labels.get("boolean", {}).get(str(value).lower(), str(value))
    if isinstance(value, list):
        return "; ".join(_part(part, formats) for part in value)
    if isinstance(value, str):
        if field == "at" or field.endswith("_at"):
            return datetime.fromisoformat(value)
        if field.endswith("_date"):
            return date.fromisoformat(value)
        return labels.get(field, {}).get(value, value)
    if isinstance(value, (int, float, date)):
        return value
    return str(value)


def _part(part: Any, formats: Mapping[str, str]) -> str:
    """One element of a list cell: an event id, or a consultation reminder."""
    if not isinstance(part, Mapping):
        return str(part)
    values = {key: _csv_text(_cell(key, value, {}, formats), None) for key, value in part.items()}
    template = formats.get("copied" if part.get("copied_to") else "reminder")
    if template is None:
        return ", ".join(f"{key}: {value}" for key, value in values.items())
    return template.format(**values)


def _local(value: datetime, tz: tzinfo | None) -> datetime:
    return value.astimezone(tz) if tz is not None and value.tzinfo is not None else value


def _csv_text(value: Any, tz: tzinfo | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _local(value, tz).strftime(_DATETIME)
    if isinstance(value, date):
        return value.strftime(_DATE)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return str(value)


def _xlsx_value(value: Any, tz: tzinfo | None) -> Any:
    if isinstance(value, datetime):
        # Excel has no time zones: the local wall-clock time is stored.
        return _local(value, tz).replace(tzinfo=None)
    return value
