"""Tests for gateway.domain.phones: the messy-input table, properties and masking."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.domain.phones import (
    REASONS,
    PhoneResult,
    mask_phone,
    mask_phones_in_text,
    normalize_phone,
)

TABLE = Path(__file__).resolve().parent.parent / "data" / "phones.tsv"
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|(.))")
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}


def _unescape(cell: str) -> str:
    """Decode the table's escapes: \\t, \\n, \\r, \\\\ and \\uXXXX."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return chr(int(match.group(1), 16))
        return _ESCAPES[match.group(2)]

    return _ESCAPE.sub(replace, cell)


@dataclass(frozen=True)
class Row:
    line: int
    input: str
    ok: bool
    e164: str | None
    converted_from: str | None
    reason: str | None
    note: str


def _load_table() -> list[Row]:
    lines = TABLE.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["input", "ok", "e164", "converted_from", "reason", "note"]
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        raw, ok, e164, converted_from, reason, note = line.split("\t")
        assert ok in ("true", "false"), f"line {number}: ok must be true/false"
        rows.append(
            Row(
                line=number,
                input=_unescape(raw),
                ok=ok == "true",
                e164=e164 or None,
                converted_from=converted_from or None,
                reason=reason or None,
                note=note,
            )
        )
    return rows


ROWS = _load_table()


@pytest.mark.parametrize("row", ROWS, ids=[f"L{row.line}:{row.input!r}" for row in ROWS])
def test_table(row: Row) -> None:
    result = normalize_phone(row.input)
    assert (result.ok, result.e164, result.converted_from, result.reason) == (
        row.ok,
        row.e164,
        row.converted_from,
        row.reason,
    ), row.note
    assert result.input == row.input
    if result.ok:
        assert result.e164 is not None
        assert result.national == "0" + result.e164[3:]
    else:
        assert result.reason in REASONS
        assert result.e164 is None and result.national is None and result.carrier is None


def test_table_is_broad() -> None:
    assert len(ROWS) >= 170
    inputs = {row.input for row in ROWS}
    assert len(inputs) == len(ROWS), "duplicate inputs in the table"
    reasons = {row.reason for row in ROWS if row.reason}
    assert reasons == set(REASONS)
    converted = {row.converted_from[:4] for row in ROWS if row.converted_from}
    assert {"0" + old for old in OLD_PREFIXES} <= converted
    accepted = {row.e164[3:5] for row in ROWS if row.e164}
    assert set(CARRIER_BY_PREFIX) <= accepted


CARRIER_BY_PREFIX = {
    **dict.fromkeys(
        ["32", "33", "34", "35", "36", "37", "38", "39", "86", "96", "97", "98"], "viettel"
    ),
    **dict.fromkeys(["81", "82", "83", "84", "85", "88", "91", "94"], "vinaphone"),
    **dict.fromkeys(["70", "76", "77", "78", "79", "89", "90", "93"], "mobifone"),
    **dict.fromkeys(["52", "56", "58", "92"], "vietnamobile"),
    **dict.fromkeys(["59", "99"], "gmobile"),
    "87": "itelecom",
    "55": "wintel",
}
# Subscriber digits inside the ranges libphonenumber allocates (089x, 052x, 055x, 099x are partial).
_SUBSCRIBER = {"89": "6123456", "52": "2123456", "55": "9123456", "99": "3123456"}
OLD_PREFIXES = {
    "162": "32", "163": "33", "164": "34", "165": "35", "166": "36", "167": "37",
    "168": "38", "169": "39", "120": "70", "121": "79", "122": "77", "126": "76",
    "128": "78", "123": "83", "124": "84", "125": "85", "127": "81", "129": "82",
    "186": "56", "188": "58", "199": "59",
}  # fmt: skip


@pytest.mark.parametrize(("prefix", "carrier"), sorted(CARRIER_BY_PREFIX.items()))
def test_carrier_hint(prefix: str, carrier: str) -> None:
    result = normalize_phone(f"0{prefix}{_SUBSCRIBER.get(prefix, '1234567')}")
    assert result.ok
    assert result.carrier == carrier


@pytest.mark.parametrize("number", ["0301234567", "0511234567", "0951234567"])
def test_carrier_unknown_for_libphonenumber_only_ranges(number: str) -> None:
    result = normalize_phone(number)
    assert result.ok and result.carrier is None


@pytest.mark.parametrize(("old", "new"), sorted(OLD_PREFIXES.items()))
def test_conversion_table_and_carrier_follow_new_prefix(old: str, new: str) -> None:
    result = normalize_phone(f"+84{old}5550123")
    assert result.ok
    assert result.national == f"0{new}5550123"
    assert result.converted_from == f"0{old}5550123"
    assert result.carrier == CARRIER_BY_PREFIX[new]


@pytest.mark.parametrize(
    ("raw", "others"),
    [
        ("0912345678", ()),
        ("0912345678 / 0987654321", ("0987654321",)),
        ("0912345678-0987654321-0901234567", ("0987654321", "0901234567")),
        ("09l2345678; 0987654321", ("09l2345678",)),
        ("02513822123 / 0912345678 / 0987654321", ("02513822123", "0987654321")),
        ("0912345678 (anh Nam) / 0987654321 (chị Lan)", ("0987654321",)),
        ("SĐT: 0912345678; Zalo: 0987654321", ("Zalo: 0987654321",)),
        ("0251 3822 123 - 0251 3822 124", ("0251 3822 124",)),
        ("0912345678 / anh Nam", ()),
    ],
)
def test_others_lists_the_other_pieces(raw: str, others: tuple[str, ...]) -> None:
    assert normalize_phone(raw).others == others


def test_none_is_empty() -> None:
    result = normalize_phone(None)
    assert result == PhoneResult("", False, None, None, None, None, "empty")


# Blank characters (whitespace, quotes, zero-width) and wording that holds no digit.
_BLANK = " \t\n'\"“”«»\u200b"
_NO_DIGIT_TOKENS = [*_BLANK, *"-./:()xO", "SĐT", "N/A", "không có", "Zalo: ", "(anh Nam)"]


@given(st.lists(st.sampled_from(_NO_DIGIT_TOKENS), max_size=10).map("".join))
@example("abc")
@example("  ")
def test_a_field_without_digits_is_empty_only_when_blank(raw: str) -> None:
    result = normalize_phone(raw)
    assert result.reason == ("empty" if not raw.strip(_BLANK) else "no_digits"), result


def test_provider_formats() -> None:
    result = normalize_phone("SĐT: 0168 765 4321")
    assert result.provider_format("84") == "84387654321"
    assert result.provider_format("0") == "0387654321"
    assert result.provider_format("+84") == "+84387654321"


def test_provider_format_refuses_rejected_numbers() -> None:
    with pytest.raises(ValueError, match="landline"):
        normalize_phone("02438221234").provider_format("84")


def test_provider_format_refuses_unknown_style() -> None:
    with pytest.raises(ValueError, match="style"):
        normalize_phone("0912345678").provider_format("0084")  # type: ignore[arg-type]


def test_to_json_dict() -> None:
    result = normalize_phone("01623456789, 0987654321")
    assert result.to_json_dict() == {
        "input": "01623456789, 0987654321",
        "ok": True,
        "e164": "+84323456789",
        "national": "0323456789",
        "carrier": "viettel",
        "converted_from": "01623456789",
        "reason": None,
        "others": ["0987654321"],
    }


def test_result_is_frozen() -> None:
    result = normalize_phone("0912345678")
    with pytest.raises(AttributeError):
        result.ok = False  # type: ignore[misc]


# --- properties ------------------------------------------------------------

_MOBILE_PREFIXES = sorted(CARRIER_BY_PREFIX)
_separators = st.sampled_from(["", " ", ".", "-"])


@st.composite
def written_mobiles(draw: st.DrawFn) -> str:
    """A mobile number written the way people write them, old or new form."""
    if draw(st.booleans()):
        prefix = draw(st.sampled_from(_MOBILE_PREFIXES))
    else:
        prefix = draw(st.sampled_from(sorted(OLD_PREFIXES)))
    digits = prefix + draw(st.text(string.digits, min_size=7, max_size=7))
    lead = draw(st.sampled_from(["0", "+84", "84", "0084", "+84 (0) ", "", "SĐT: 0", "Zalo 0"]))
    sep = draw(_separators)
    cut = draw(st.integers(min_value=1, max_value=len(digits) - 1))
    return lead + digits[:cut] + sep + digits[cut:]


@given(written_mobiles())
@example("0912345678")
@example("+841623456789")
def test_idempotent_on_own_output(raw: str) -> None:
    first = normalize_phone(raw)
    if not first.ok:
        return  # e.g. a random subscriber outside a partial range such as 0890xxxxxx
    assert first.e164 is not None and first.national is not None
    for again in (first.e164, first.national, first.provider_format("84")):
        second = normalize_phone(again)
        assert second.ok
        assert second.e164 == first.e164
        assert second.carrier == first.carrier
        assert second.converted_from is None


@st.composite
def digits_with_a_letter(draw: st.DrawFn) -> str:
    """Up to 12 digits (one number) with groupings and a letter between two digits."""
    digits = draw(st.text(string.digits, min_size=2, max_size=12))
    at = draw(st.integers(min_value=1, max_value=len(digits) - 1))
    letter = draw(st.sampled_from(string.ascii_letters))
    groups = [draw(_separators) if i not in (at - 1, at) else "" for i in range(len(digits))]
    body = "".join(d + s for d, s in zip(digits[:at], groups[:at], strict=True)).rstrip(" .-")
    tail = "".join(d + s for d, s in zip(digits[at:], groups[at:], strict=True))
    lead = draw(st.sampled_from(["", "+", "+84 ", "0", "SĐT: ", "Tel. "]))
    return lead + body + letter + tail


@given(digits_with_a_letter())
@example("09l2345678")
@example("O912345678")
@example("0251 3822 x123")
@example("912345678e0")
def test_never_accepts_letters_inside_the_digits(raw: str) -> None:
    result = normalize_phone(raw)
    assert not result.ok, result


_MESSY_TOKENS = [*(string.digits * 4), *" .-+()/,;'xlOE", "SĐT: ", " hoặc ", "(anh Nam)", "0084"]
_messy = st.lists(st.sampled_from(_MESSY_TOKENS), max_size=25).map("".join)


@settings(max_examples=400)
@given(st.one_of(_messy, written_mobiles(), st.text(max_size=25)))
@example("0140123456")
@example("058 3822123")
@example("9.12345678E+8")
def test_every_accepted_number_is_a_valid_vn_mobile(raw: str) -> None:
    result = normalize_phone(raw)
    if not result.ok:
        assert result.reason in REASONS
        return
    assert result.e164 is not None
    number = phonenumbers.parse(result.e164, None)
    assert phonenumbers.is_valid_number(number)
    assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
    assert phonenumbers.region_code_for_number(number) == "VN"
    assert result.e164 == "+84" + str(number.national_number)


@given(st.text(max_size=40))
def test_never_raises(raw: str) -> None:
    assert isinstance(normalize_phone(raw), PhoneResult)


# --- masking ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("0912345678", "091*****78"),
        ("+84912345678", "+849******78"),
        ("84912345678", "849******78"),
        ("0912.345.678", "091*.***.*78"),
        ("0912 345 678", "091* *** *78"),
        ("(08) 3822 1234", "(08) 3*** **34"),
        ("01623456789", "016******89"),
        ("12345678", "12345678"),
        ("", ""),
        ("0912345678 / 0987654321", "091*****78 / 098*****21"),
    ],
)
def test_mask_phone(value: str, masked: str) -> None:
    assert mask_phone(value) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "Gửi SMS tới 0912 345 678 thất bại, thử +84 987 654 321",
            "Gửi SMS tới 091* *** *78 thất bại, thử +84 9** *** *21",
        ),
        ("phone=84912345678 status=5", "phone=849******78 status=5"),
        ("SĐT:0912345678.", "SĐT:091*****78."),
        ("0912345678-0987654321", "091*****78-098*****21"),
        ("old 0084 162 345 6789", "old 008* *** *** **89"),
        # Not phones: left alone so logs stay useful.
        (
            "at 2024-01-15 12:30:45 from 192.168.100.200",
            "at 2024-01-15 12:30:45 from 192.168.100.200",
        ),
        ("hồ sơ 000.00.12.H56-240115-0001 đã xử lý", "hồ sơ 000.00.12.H56-240115-0001 đã xử lý"),
        ("request id 123456789012345678", "request id 123456789012345678"),
        ("mã 12345678, 1 tin", "mã 12345678, 1 tin"),
    ],
)
def test_mask_phones_in_text(text: str, masked: str) -> None:
    assert mask_phones_in_text(text) == masked


@given(written_mobiles())
def test_masked_text_keeps_no_full_number(raw: str) -> None:
    result = normalize_phone(raw)
    if not result.ok:
        return
    assert result.national is not None and result.e164 is not None
    line = f"sent to {result.national} ({result.e164}) raw={raw}"
    masked = mask_phones_in_text(line)
    assert result.national not in masked
    # Stars kept: the visible ends of two masked numbers must not join into a whole one.
    assert result.e164[3:] not in re.sub(r"[^0-9*]", "", masked.split("raw=")[0])


@given(written_mobiles())
def test_a_masked_number_never_shows_its_last_four_digits(raw: str) -> None:
    # The last four digits of a dossier's phone prove enough to read the dossier.
    result = normalize_phone(raw)
    if not result.ok:
        return
    assert result.e164 is not None
    for masked in (mask_phone(result.e164), mask_phones_in_text(f"gọi {result.e164}")):
        assert masked.endswith("**" + result.e164[-2:])
        assert masked.count("*") == len(result.e164) - 1 - 3 - 2  # only "+", 3 and 2 digits
