"""Tests for gateway.domain.sms_text: accent stripping, the GSM-7 alphabet, segment counts."""

from __future__ import annotations

import string
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.domain.sms_text import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SegmentCount,
    is_gsm7,
    segments,
    unaccent,
)

# The 67 lower-case accented letters of Vietnamese, by base letter (tones: huyền, sắc,
# hỏi, ngã, nặng), then đ.
LOWER = (
    "àáảãạ" "ăằắẳẵặ" "âầấẩẫậ" "èéẻẽẹ" "êềếểễệ" "ìíỉĩị" "òóỏõọ" "ôồốổỗộ" "ơờớởỡợ"
    "ùúủũụ" "ưừứửữự" "ỳýỷỹỵ" "đ"
)  # fmt: skip
BASES = "a" * 5 + "a" * 12 + "e" * 5 + "e" * 6 + "i" * 5 + "o" * 17 + "u" * 11 + "y" * 5 + "d"
UPPER = LOWER.upper()
ACCENTED = LOWER + UPPER
PLAIN_LETTERS = string.ascii_letters
PUNCTUATION = ".,;:!?()-/'\"%&+*=@#_…–—‘’“”°•·«»\u00a0\u2009₫×"
VIETNAMESE_TEXT = ACCENTED + PLAIN_LETTERS + string.digits + " " + PUNCTUATION

INVITATION_171 = (
    "Hồ sơ 000.00.12.H19-240401-0001 của ông/bà Nguyễn Văn Bình đã có kết quả. Mời ông/bà "
    "đến nhận tại Bộ phận một cửa UBND huyện Long Thành. Hỏi đáp: 1022 hoặc Zalo OA HCC DN."
)
APOLOGY_154 = (
    "UBND huyện Long Thành xin lỗi ông/bà: hồ sơ 000.00.12.H19-240401-0001 trễ hẹn vì phải "
    "đo đạc hiện trạng. Hẹn trả lúc 17:00 ngày 19/04/2024. Hỏi đáp: 1022."
)


# -- the Vietnamese letters ------------------------------------------------------------


def test_there_are_134_accented_letters_and_the_table_is_complete() -> None:
    assert len(set(LOWER)) == len(LOWER) == 67
    assert len(set(ACCENTED)) == 134
    # The same set, built from base letters and combining marks.
    built = {unicodedata.normalize("NFC", base + tone) for base in "aăâeêioôơuưy"
             for tone in ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")}  # fmt: skip
    assert (built - set("aeiouy")) | {"đ"} == set(LOWER)


@pytest.mark.parametrize(
    ("letter", "base"), list(zip(ACCENTED, BASES + BASES.upper(), strict=True))
)
def test_every_accented_letter_unaccents_to_its_ascii_letter(letter: str, base: str) -> None:
    assert unaccent(letter) == base
    assert unaccent(unicodedata.normalize("NFD", letter)) == base


def test_only_seven_vietnamese_letters_are_in_gsm7() -> None:
    assert sorted(c for c in ACCENTED if is_gsm7(c)) == sorted("àèéìòùÉ")
    assert not is_gsm7("đ") and not is_gsm7("Đ")


def test_the_alphabet_tables() -> None:
    assert len(GSM7_BASIC) == 127  # 128 codes, less the escape
    assert set("^{}\\[~]|€") < GSM7_EXTENSION
    assert not GSM7_BASIC & GSM7_EXTENSION
    assert set(string.ascii_letters + string.digits + " \n\r") <= GSM7_BASIC
    assert "`" not in GSM7_BASIC | GSM7_EXTENSION


# -- unaccent --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Đồng Nai", "Dong Nai"),  # encode("ascii", "ignore") would give "ng Nai"
        ("ĐẶNG ĐỨC ĐẠT", "DANG DUC DAT"),
        ("Ðức", "Duc"),  # U+00D0, the Icelandic eth that looks like Đ
        ("Uỷ ban / Ủy ban", "Uy ban / Uy ban"),
        ("“Giấy hẹn” – ‘bản chính’…", "\"Giay hen\" - 'ban chinh'..."),
        ("30°C", "30oC"),
        ("150.000₫", "150.000d"),
        ("số\u00a01 Lê\u2009Duẩn\tphường", "so 1 Le Duan phuong"),
        ("• mục một · mục hai", "- muc mot - muc hai"),
        ("a\u200bb\ufeffc\u00add", "abcd"),
        ("０９８７ ﬁle ½", "0987 file 1/2"),
        ("`dấu`", "'dau'"),
        ("Ngày 12/04/2024 lúc 17:00", "Ngay 12/04/2024 luc 17:00"),
        ("", ""),
    ],
)
def test_unaccent(text: str, expected: str) -> None:
    assert unaccent(text) == expected
    assert is_gsm7(unaccent(text))


def test_unaccent_leaves_what_has_no_gsm7_form() -> None:
    assert unaccent("Hà Nội 河内") == "Ha Noi 河内"
    assert not is_gsm7(unaccent("河内"))


@given(st.text(alphabet=VIETNAMESE_TEXT))
@example(ACCENTED)
@example(PUNCTUATION)
def test_unaccented_vietnamese_is_always_gsm7(text: str) -> None:
    assert is_gsm7(unaccent(text))
    assert is_gsm7(unaccent(unicodedata.normalize("NFD", text)))


@given(st.text(alphabet=ACCENTED + PLAIN_LETTERS + string.digits + " "))
def test_unaccent_maps_letters_one_to_one(text: str) -> None:
    plain = unaccent(text)
    assert len(plain) == len(text)
    assert all(a.isupper() == b.isupper() for a, b in zip(text, plain, strict=True))


@given(st.text())
@example("Ð" + "\u0301" + "…")
def test_unaccent_is_idempotent(text: str) -> None:
    once = unaccent(text)
    assert unaccent(once) == once


# -- segments --------------------------------------------------------------------------


def test_an_invitation_is_three_parts_with_accents_and_two_without() -> None:
    assert len(INVITATION_171) == 171
    assert segments(INVITATION_171) == SegmentCount("UCS-2", 171, 3, 67)
    assert segments(unaccent(INVITATION_171)) == SegmentCount("GSM-7", 171, 2, 153)


def test_an_apology_is_three_parts_with_accents_and_one_without() -> None:
    assert len(APOLOGY_154) == 154
    assert segments(APOLOGY_154).segments == 3
    assert segments(unaccent(APOLOGY_154)).segments == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SegmentCount("GSM-7", 0, 0, 160)),
        ("a", SegmentCount("GSM-7", 1, 1, 160)),
        ("a" * 160, SegmentCount("GSM-7", 160, 1, 160)),
        ("a" * 161, SegmentCount("GSM-7", 161, 2, 153)),
        ("a" * 306, SegmentCount("GSM-7", 306, 2, 153)),
        ("a" * 307, SegmentCount("GSM-7", 307, 3, 153)),
        ("ă" * 70, SegmentCount("UCS-2", 70, 1, 70)),
        ("ă" * 71, SegmentCount("UCS-2", 71, 2, 67)),
        ("ă" * 134, SegmentCount("UCS-2", 134, 2, 67)),
        ("ă" * 135, SegmentCount("UCS-2", 135, 3, 67)),
        ("a" * 159 + "đ", SegmentCount("UCS-2", 160, 3, 67)),  # one đ costs two parts
    ],
)
def test_segment_boundaries(text: str, expected: SegmentCount) -> None:
    assert segments(text) == expected


def test_extension_characters_count_double() -> None:
    assert segments("€" * 80) == SegmentCount("GSM-7", 160, 1, 160)
    assert segments("€" * 81) == SegmentCount("GSM-7", 162, 2, 153)
    assert segments("a" * 155 + "{}[]") == SegmentCount("GSM-7", 163, 2, 153)
    assert segments("^{}\\[~]|€").characters == 18


def test_escape_and_surrogate_pairs_are_never_split_across_parts() -> None:
    # 306 septets would be two parts, but the € at septet 153 moves to the second part.
    assert segments("a" * 152 + "€" * 77) == SegmentCount("GSM-7", 306, 3, 153)
    # Likewise an emoji (two UTF-16 units) at the end of a UCS-2 part.
    assert segments("ă" * 66 + "😀" * 34) == SegmentCount("UCS-2", 134, 3, 67)
    assert segments("😀" * 35) == SegmentCount("UCS-2", 70, 1, 70)
