"""CSV and XLSX exports, read back with the csv module and openpyxl.

The statistics export is checked end to end on both databases: the hand-computed month
of ``tests/storage/test_statistics.py``, computed, exported and read back, holds the same
numbers as the API's items.
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit.exports import COLUMNS_FILE, table, to_csv, to_xlsx
from gateway.storage.db import create_engine
from gateway.storage.statistics import MonthRange, agency_statistics, officer_statistics
from tests.storage.test_statistics import JULY, seed

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
MAY = MonthRange("2026-05", "2026-05")

VIOLATION = {
    "id": 7,
    "rule": "false_closure",
    "dossier": "000.00.12.H19-260512-0001",
    "officer": {"id": "cc-0123", "name": "Trần Thị Bình"},
    "agency": {"code": "000.00.12.H19", "name": "Sở Xây dựng"},
    "occurred_at": "2026-05-12T16:05:00+07:00",
    "detected_at": "2026-05-20T09:30:00+07:00",
    "evidence": ["ev-1", "ev-2"],
    "status": "open",
    "suggestion": {
        "sanction": "canh_cao",
        "reassign": True,
        "supervisor": {"id": "cc-0001", "name": "Lê Văn Trưởng"},
        "repeat_of": 3,
    },
}
CONSULTATION = {
    "dossier": "000.00.12.H19-260512-0002",
    "consultation_id": "yk-1",
    "agency": {"code": "000.00.05.H19", "name": "Sở Tài chính"},
    "requested_at": "2026-05-04T08:00:00+07:00",
    "due_at": "2026-05-08T17:00:00+07:00",
    "answered_at": None,
    "reminders": [
        {"number": 1, "at": "2026-05-09T00:00:00+07:00", "copied_to": None},
        {"number": 2, "at": "2026-05-14T00:00:00+07:00", "copied_to": "Sở Nội vụ"},
    ],
}
WARNING = {
    "list": "undelivered",
    "dossier": "000.00.12.H19-260512-0003",
    "procedure": {"code": "1.001", "name": "Cấp giấy phép xây dựng"},
    "agency": {"code": "000.00.12.H19", "name": "Sở Xây dựng"},
    "due_date": "2026-05-20",
    "finished_date": "2026-05-12",
    "officer": None,
    "days": 6,
}


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def read_xlsx(data: bytes) -> list[list[Any]]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.active
    assert sheet is not None
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        await seed(engine)
        yield engine
    finally:
        await engine.dispose()


@pytest.mark.parametrize("kind", ["agencies", "officers"])
async def test_statistics_read_back_hold_the_same_numbers(engine: AsyncEngine, kind: str) -> None:
    compute = agency_statistics if kind == "agencies" else officer_statistics
    items = await compute(engine, MAY, threshold=0.10, now=JULY, tz=ZONE)
    assert items
    headers, rows = table(kind, items)
    first = "Mã cơ quan" if kind == "agencies" else "Mã cán bộ"
    assert headers[:2] == [first, "Cơ quan" if kind == "agencies" else "Cán bộ"]
    late_rate = headers.index("Tỉ lệ quá hạn")
    received = headers.index("Số hồ sơ tiếp nhận")
    over = headers.index("Vượt ngưỡng quá hạn")
    average = headers.index("Điểm đánh giá trung bình")
    progress = headers.index("Điểm đánh giá tiến độ trung bình")
    quality = headers.index("Điểm đánh giá chất lượng trung bình")

    from_csv = read_csv(to_csv(headers, rows))
    from_xlsx = read_xlsx(to_xlsx(headers, rows, "Thống kê 2026-05"))
    assert from_csv[0] == headers
    assert list(from_xlsx[0]) == headers
    assert len(from_csv) == len(from_xlsx) == len(items) + 1
    paths = list(tomllib.loads(COLUMNS_FILE.read_text(encoding="utf-8"))[kind])
    compared = 0
    for item, text_row, sheet_row in zip(items, from_csv[1:], from_xlsx[1:], strict=True):
        for column, path in enumerate(paths):
            value = field(item, path)
            if isinstance(value, bool):
                words = "Có" if value else "Không"
                assert text_row[column] == sheet_row[column] == words
            elif isinstance(value, (int, float)):
                assert number(text_row[column]) == sheet_row[column] == value, path
                compared += 1
            else:
                assert value is None or isinstance(value, str), path
        assert type(sheet_row[received]) is int
        assert sheet_row[late_rate] == item["late_rate"]
        for index, name in (
            (average, "average"),
            (progress, "progress_avg"),
            (quality, "quality_avg"),
        ):
            mean = item["ratings"][name]
            assert sheet_row[index] == mean
            assert text_row[index] == ("" if mean is None else str(mean))
        assert text_row[over] in ("Có", "Không")
    assert compared >= 10 * len(items)
    # The month holds two-score ratings: their averages reach both files.
    assert any(item["ratings"]["progress_avg"] is not None for item in items)
    assert any(item["ratings"]["quality_avg"] is not None for item in items)


def field(item: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        item = item[part]
    return item


async def test_every_statistics_field_has_a_vietnamese_header(engine: AsyncEngine) -> None:
    agencies = await agency_statistics(engine, MAY, threshold=0.10, now=JULY, tz=ZONE)
    officers = await officer_statistics(engine, MAY, threshold=0.10, now=JULY, tz=ZONE)
    for kind, items in (("agencies", agencies), ("officers", officers)):
        headers, _ = table(kind, items)
        # A field without a header would be exported under its English name.
        assert all(" " in header or not header.isascii() for header in headers), headers


def test_violations_flatten_nested_fields_and_words() -> None:
    headers, rows = table("violations", [VIOLATION, VIOLATION | {"officer": None}])
    row = dict(zip(headers, rows[0], strict=True))
    assert row["Cán bộ"] == "Trần Thị Bình"
    assert row["Người quản lý trực tiếp"] == "Lê Văn Trưởng"
    assert row["Hình thức kỷ luật đề xuất"] == "Cảnh cáo"
    assert row["Đề xuất chuyển công việc khác"] == "Có"
    assert row["Trạng thái xử lý"] == "Chưa xử lý"
    assert row["Sự kiện chứng minh"] == "ev-1; ev-2"
    assert row["Tái phạm vi phạm số"] == 3
    assert row["Thời điểm vi phạm"] == datetime(2026, 5, 12, 9, 5, tzinfo=UTC)
    second = dict(zip(headers, rows[1], strict=True))
    assert second["Cán bộ"] is None and second["Mã cán bộ"] is None
    assert len(headers) == 16

    text = read_csv(to_csv(headers, rows))
    at = headers.index("Thời điểm vi phạm")
    assert text[1][at] == "12/05/2026 16:05"
    # Dates are written in the time zone passed in.
    assert read_csv(to_csv(headers, rows, tz=UTC))[1][at] == "12/05/2026 09:05"
    assert text[2][headers.index("Cán bộ")] == ""

    sheet = read_xlsx(to_xlsx(headers, rows, "Vi phạm", tz=ZONE))
    assert sheet[1][at] == datetime(2026, 5, 12, 16, 5)
    assert sheet[1][headers.index("Số hiệu vi phạm")] == 7


def test_the_header_row_is_bold_frozen_and_columns_fit() -> None:
    headers, rows = table("violations", [VIOLATION])
    book = openpyxl.load_workbook(io.BytesIO(to_xlsx(headers, rows, "Sổ vi phạm: 05/2026")))
    sheet = book.active
    assert sheet is not None
    assert sheet.title == "Sổ vi phạm  05 2026"
    assert all(cell.font.bold for cell in sheet[1])
    assert not sheet["A2"].font.bold
    assert sheet.freeze_panes == "A2"
    name_column = chr(ord("A") + headers.index("Cơ quan"))
    assert sheet.column_dimensions[name_column].width == len("Sở Xây dựng") + 2
    assert sheet.cell(2, headers.index("Thời điểm vi phạm") + 1).number_format == (
        "dd/mm/yyyy hh:mm"
    )


def test_consultation_reminders_in_one_cell() -> None:
    headers, rows = table("consultations", [CONSULTATION])
    row = dict(zip(headers, rows[0], strict=True))
    assert row["Nhắc nhở"] == (
        "Lần 1: 09/05/2026 00:00; Lần 2: 14/05/2026 00:00 (đồng gửi Sở Nội vụ)"
    )
    assert row["Thời điểm trả lời"] is None
    assert read_csv(to_csv(headers, rows))[1][headers.index("Hạn trả lời")] == "08/05/2026 17:00"


def test_warnings_dates_and_list_names() -> None:
    headers, rows = table("warnings", [WARNING, WARNING | {"list": "due_soon"}])
    row = dict(zip(headers, rows[0], strict=True))
    assert row["Loại cảnh báo"] == "Đã giải quyết xong, chưa trả kết quả"
    assert row["Ngày kết thúc"] == date(2026, 5, 12)
    assert row["Cán bộ"] is None
    assert rows[1][0] == "Sắp đến hạn, chưa có kết quả hay thư xin lỗi"
    text = read_csv(to_csv(headers, rows))
    assert text[1][headers.index("Ngày hẹn trả")] == "20/05/2026"
    sheet = read_xlsx(to_xlsx(headers, rows, "Cảnh báo"))
    assert sheet[1][headers.index("Ngày hẹn trả")] == datetime(2026, 5, 20)
    assert sheet[1][headers.index("Số ngày làm việc")] == 6


def test_an_unknown_field_is_kept_under_its_own_name() -> None:
    headers, rows = table("warnings", [WARNING | {"extra": {"note": "x"}}])
    assert headers[-1] == "extra.note" and rows[0][-1] == "x"


def test_text_that_looks_like_a_formula_stays_text() -> None:
    evil = VIOLATION | {"officer": {"id": '=HYPERLINK("http://x")', "name": "@SUM(A1)"}}
    headers, rows = table("violations", [evil])
    column = headers.index("Mã cán bộ")
    assert read_csv(to_csv(headers, rows))[1][column] == '\'=HYPERLINK("http://x")'
    book = openpyxl.load_workbook(io.BytesIO(to_xlsx(headers, rows, "x")))
    sheet = book.active
    assert sheet is not None
    cell = sheet.cell(2, column + 1)
    assert cell.data_type == "s" and cell.value == '=HYPERLINK("http://x")'


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="flags"):
        table("flags", [])


def test_the_columns_file_names_every_kind() -> None:
    for kind in ("violations", "agencies", "officers", "consultations", "warnings"):
        headers, rows = table(kind, [])
        assert headers and rows == []
    assert COLUMNS_FILE.is_file()
