"""Dossier codes: the strict parser and the tolerant finder for chat messages."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.codes import (
    CodeCandidate,
    DossierCode,
    find_dossier_codes,
    is_dossier_code,
    parse_dossier_code,
)

CODE = "000.00.12.H19-240401-0001"

# -- strict parsing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "agency", "received_on", "sequence"),
    [
        ("000.00.06.H56-231027-0361", "000.00.06.H56", date(2023, 10, 27), 361),
        ("000.17.22.H56-210531-0001", "000.17.22.H56", date(2021, 5, 31), 1),
        ("000.00.01.H29-240115-0001", "000.00.01.H29", date(2024, 1, 15), 1),
        ("000.00.01.H29-240229-12345", "000.00.01.H29", date(2024, 2, 29), 12345),
        ("A01.B2.0C.G09-991231-0000", "A01.B2.0C.G09", date(2099, 12, 31), 0),
    ],
)
def test_parse_real_codes(text: str, agency: str, received_on: date, sequence: int) -> None:
    code = parse_dossier_code(text)
    assert code.agency == agency
    assert code.received_on == received_on
    assert code.sequence == sequence
    assert str(code) == text
    assert is_dossier_code(text)


def test_five_digit_sequences_keep_their_width() -> None:
    five = parse_dossier_code("000.00.06.H56-231027-00361")
    four = parse_dossier_code("000.00.06.H56-231027-0361")
    assert five.sequence == four.sequence == 361
    assert str(five) == "000.00.06.H56-231027-00361"
    assert five != four


def test_codes_can_be_built_directly() -> None:
    code = DossierCode("000.00.06.H56", date(2023, 10, 27), 7)
    assert str(code) == "000.00.06.H56-231027-0007"
    with pytest.raises(ValueError, match="does not fit in 4 digits"):
        DossierCode("000.00.06.H56", date(2023, 10, 27), 10000)
    with pytest.raises(ValueError, match="cannot be written as YYMMDD"):
        DossierCode("000.00.06.H56", date(1999, 10, 27), 1)
    with pytest.raises(ValueError, match=r"NNN\.NN\.NN\.Xnn"):
        DossierCode("000.00.06.h56", date(2023, 10, 27), 1)
    with pytest.raises(ValueError, match="sequence_digits"):
        DossierCode("000.00.06.H56", date(2023, 10, 27), 1, sequence_digits=6)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty string"),
        (" 000.00.06.H56-231027-0361", "leading or trailing whitespace"),
        ("000.00.06.H56-231027-0361\n", "leading or trailing whitespace"),
        ("000.00.06.H56-2310270361", "shape: expected <agency>-<YYMMDD>-<sequence>"),
        ("000.00.06-H56-231027-0361", "found 4 part(s)"),
        ("000.00.06.H56 231027 0361", "found 1 part(s)"),
        ("000.00.06.h56-231027-0361", "agency part '000.00.06.h56' must be upper case"),
        ("00000.06.H56-231027-0361", "must have 4 dot-separated groups"),
        ("000.0.06.H56-231027-0361", "agency group 2 '0' of '000.0.06.H56' must have 2"),
        ("0000.00.06.H56-231027-0361", "agency group 1 '0000'"),
        ("000.0_.06.H56-231027-0361", "may hold only A-Z and 0-9"),
        ("000.00.06.566-231027-0361", "last agency group '566' must be a capital letter"),
        ("000.00.06.H5X-231027-0361", "last agency group 'H5X'"),
        ("000.00.06.H56-23102-0361", "date part '23102' must be 6 digits"),
        ("000.00.06.H56-23I027-0361", "date part '23I027' must be 6 digits"),
        ("000.00.06.H56-231032-0361", "date part '231032' is not a real date"),
        ("000.00.06.H56-230229-0361", "date part '230229' is not a real date"),
        ("000.00.06.H56-231300-0361", "is not a real date"),
        ("000.00.06.H56-231027-361", "sequence '361' must be 4 or 5 digits"),
        ("000.00.06.H56-231027-036100", "sequence '036100'"),
        ("000.00.06.H56-231027-O361", "sequence 'O361'"),
        ("000.00.06.H56-231027-０３６１", "sequence '０３６１'"),  # full-width digits
    ],
)
def test_parse_rejects_with_the_part_that_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_dossier_code(text)
    assert reason in str(caught.value)
    assert not is_dossier_code(text)


# -- the finder: realistic messages ----------------------------------------------------

FOUND_AS_TYPED = [
    f"Mã hồ sơ của tôi là {CODE} ạ",
    f"Cho em hỏi hồ sơ {CODE} đã có kết quả chưa?",
    f"ma ho so cua toi la {CODE}, nho can bo kiem tra giup",
    f"Hồ sơ số {CODE} nộp tại bộ phận một cửa huyện",
    f"({CODE})",
    f"mã hồ sơ:{CODE}.",
    f"HS{CODE}",  # a prefix glued to the code
    f"mã hồ sơ là {CODE}ạ",  # a Vietnamese word glued after it
    f"Xin chào\nMã hồ sơ: {CODE}\nCảm ơn",
    f"{CODE}",
]


@pytest.mark.parametrize("text", FOUND_AS_TYPED)
def test_codes_typed_correctly_are_found_unchanged(text: str) -> None:
    start = text.index(CODE)
    assert find_dossier_codes(text) == [
        CodeCandidate(code=CODE, raw=CODE, start=start, end=start + len(CODE), corrected=False)
    ]


FOUND_REPAIRED = [
    ("mã hồ sơ của tôi là 000.00.12.h19-240401-0001 ạ", "000.00.12.h19-240401-0001"),
    ("ma ho so cua toi la 000.00.12.h19-240401-0001 a", "000.00.12.h19-240401-0001"),
    ("Cho em hỏi hồ sơ 000001 2H19-240401-0001 đến đâu rồi", "000001 2H19-240401-0001"),
    ("hs 0000012H19-240401-0001 da xong chua", "0000012H19-240401-0001"),
    ("Tôi nộp hồ sơ số 000.00.12.H19 - 240401 - 0001 hôm trước", "000.00.12.H19 - 240401 - 0001"),
    ("ma hs: 000 . 00 . 12 . H19 – 240401 – 0001", "000 . 00 . 12 . H19 – 240401 – 0001"),
    ("000.00.12.H19_240401_0001 cua toi sao chua co ket qua", "000.00.12.H19_240401_0001"),
    ("Hồ sơ 000.00.12.H19/240401/0001 bị trễ hẹn rồi", "000.00.12.H19/240401/0001"),
    ("hồ sơ 000.00.12.H19.240401.0001 khi nào có kết quả?", "000.00.12.H19.240401.0001"),
    ("mã: 000.00.12.H19 240401 0001", "000.00.12.H19 240401 0001"),
    ("ma ho so 000 00 12 h19 240401 0001 nha", "000 00 12 h19 240401 0001"),
    (
        "hồ sơ ＯＯＯ．００．１２．Ｈ１９－２４０４０１－０００１ ạ",
        "ＯＯＯ．００．１２．Ｈ１９－２４０４０１－０００１",
    ),
    (
        "mã ０００.００.１２.Ｈ１９-２４０４０１-０００１",
        "０００.００.１２.Ｈ１９-２４０４０１-０００１",
    ),
    ("Hồ sơ 000.00.12.H19-24O4O1-0001 của tôi", "000.00.12.H19-24O4O1-0001"),
    ("ma ho so 000.00.12.H19-240401-000l", "000.00.12.H19-240401-000l"),
    ("ma so ho so la ooo.oo.l2.Hl9-240401-0001", "ooo.oo.l2.Hl9-240401-0001"),
    ("Mã hồ sơ 000.00.I2.H19-24040I-0001 nhé", "000.00.I2.H19-24040I-0001"),
    ("hồ sơ 000.00.12.H19−240401−0001 (dấu trừ)", "000.00.12.H19−240401−0001"),
    ("Em gửi mã 000.00.12.h19 - 240401 - 0001, nhờ anh chị kiểm tra giúp", None),
    ("hs cua me em la 000-00-12-H19-240401-0001 a", "000-00-12-H19-240401-0001"),
    ("ma HS 000.00.12H19-240401-0001", "000.00.12H19-240401-0001"),
    ("mã hồ sơ 000.00.12.H 19-240401-0001", "000.00.12.H 19-240401-0001"),
    ("MÃ HỒ SƠ 000.00.12.H19-2404010001", "000.00.12.H19-2404010001"),
]


@pytest.mark.parametrize(("text", "raw"), FOUND_REPAIRED)
def test_slips_are_repaired_and_flagged(text: str, raw: str | None) -> None:
    [candidate] = find_dossier_codes(text)
    assert candidate.code == CODE
    assert candidate.corrected
    assert candidate.raw == text[candidate.start : candidate.end]
    if raw is not None:
        assert candidate.raw == raw


def test_real_examples_five_digit_sequences_and_several_codes() -> None:
    text = (
        "Tôi có 3 hồ sơ: 000.00.06.H56-231027-0361, 000.17.22.h56-210531-0001 "
        "và 000.00.01.H29-240115-00012; nhắc lại hồ sơ đầu: 000.00.06.H56-231027-0361."
    )
    assert [c.code for c in find_dossier_codes(text)] == [
        "000.00.06.H56-231027-0361",
        "000.17.22.H56-210531-0001",
        "000.00.01.H29-240115-00012",
    ]
    assert [c.corrected for c in find_dossier_codes(text)] == [False, True, False]


def test_offsets_point_into_the_original_decomposed_text() -> None:
    text = unicodedata.normalize("NFD", "Hồ sơ số ０００.００.１２.H19-240401-0001 đã quá hạn")
    [candidate] = find_dossier_codes(text)
    assert candidate.code == CODE
    assert candidate.raw == text[candidate.start : candidate.end]
    assert candidate.raw.startswith("０００")


def test_uppercase_o_in_the_agency_gives_both_readings() -> None:
    # Valid as typed (agency groups may hold letters), but far more likely zeros.
    text = "mã hồ sơ OOO.OO.12.H19-240401-0001"
    assert [(c.code, c.corrected) for c in find_dossier_codes(text)] == [
        ("OOO.OO.12.H19-240401-0001", False),
        (CODE, True),
    ]


def test_agencies_with_real_letters_keep_them() -> None:
    [candidate] = find_dossier_codes("ma hs a01.b2.0c.g09-240401-0001")
    assert candidate.code == "A01.B2.0C.G09-240401-0001"


NOT_CODES = [
    "Số điện thoại của tôi là 0912 345 678",
    "sdt 0912345678, zalo 0912301234",
    "Hello 0912301234 alo 0912 301 234",
    "+84 912 345 678",
    "Tôi nộp hồ sơ ngày 10/04/2024",
    "hẹn trả ngày 10-04-2024 lúc 14:30",
    "CCCD 001203004567 cấp ngày 01/01/2021",
    "số tiền 1.250.000 đồng",
    "mã số thuế 0312345678-001",
    "Tôi ở phường 12, quận 3, TP.HCM",
    "biển số xe 51H-123.45",
    "mã thủ tục 1.001234.000.00.00.H29",
    "H19-240401-0001",  # no agency
    "000.00.12.H19-240431-0001",  # 31 April
    "000.00.12.H19-240401-001",  # 3-digit sequence
    "000.00.12.H19-240401-000123",  # 6-digit sequence
    "0000.00.12.H19-240401-0001",  # an extra character is not guessed away
    "1000.00.12.H19-240401-0001",
    "ma ho so la 00.00.12.H19-240401-0001",  # a missing character is not invented
    "abc de fg h12 240401 0001",  # words, not an agency
    "OOO.OO.12.HOO-OOOOOO-OOOO",
    "ooo lll ooo III lol",
    "123456 7890 12345",
    "",
]


@pytest.mark.parametrize("text", NOT_CODES)
def test_things_that_are_not_codes(text: str) -> None:
    assert find_dossier_codes(text) == []


def test_there_are_enough_realistic_sentences() -> None:
    assert len(FOUND_AS_TYPED) + len(FOUND_REPAIRED) >= 30


# -- property --------------------------------------------------------------------------

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
canonical_codes = st.builds(
    lambda a, b, c, letter, nn, day, seq, width: (
        f"{a}.{b}.{c}.{letter}{nn:02d}-{day:%y%m%d}-{seq % 10**width:0{width}d}"
    ),
    st.text(ALNUM, min_size=3, max_size=3),
    st.text(ALNUM, min_size=2, max_size=2),
    st.text(ALNUM, min_size=2, max_size=2),
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    st.integers(0, 99),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    st.integers(0, 99999),
    st.sampled_from([4, 5]),
)
surrounding = st.text(
    st.sampled_from(
        list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        + list("ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ")
        + list("ĂÂĐÊÔƠƯÀÁẠỒỘỨ")
        + list(" \t\n.,;:!?()[]\"'-/…")
    ),
    max_size=30,
)


@settings(deadline=None, database=None)
@given(code=canonical_codes, before=surrounding, after=surrounding)
def test_a_canonical_code_in_any_text_is_found_exactly(code: str, before: str, after: str) -> None:
    assert is_dossier_code(code)
    text = before + code + after
    candidates = find_dossier_codes(text)
    start = len(before)
    assert candidates[0] == CodeCandidate(
        code=code, raw=code, start=start, end=start + len(code), corrected=False
    )
    # The only possible extra: the digit reading of agency groups typed with O or I.
    assert len(candidates) <= 2
    for extra in candidates[1:]:
        assert (extra.start, extra.end, extra.corrected) == (start, start + len(code), True)
        assert set(code[:9]) & set("OI")
