"""Hostile input for gateway.domain.phones: any text, never an exception, never a leak.

tests/domain/test_phones.py holds the table and the properties on realistic input; here
the inputs are hostile (any Unicode, other scripts' digits, zero-width and combining
characters, labels and numbers glued together) and the properties are the module's
promises: ``normalize_phone`` never raises and only accepts valid Vietnamese mobiles
that normalise to themselves again; masking only ever turns ASCII digits into ``*`` and
never shows more than the last two digits of a number.
"""

from __future__ import annotations

import re
import string

import phonenumbers
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.domain.phones import REASONS, mask_phone, mask_phones_in_text, normalize_phone

_FUZZ = settings(
    max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
_E164_VN = re.compile(r"\+84[1-9][0-9]{8}")
# A run as the masking rule sees it (module doc): digits with up to two separators between.
_RUN = re.compile(r"[0-9](?:[ .\-()]{0,2}[0-9])*")

_MOBILES = ("0912345678", "0987654321", "0338221234", "0868123456", "0701234567")
_TOKENS = [
    *(string.digits * 3),
    *" .-+()/,;:'\"\n\t",
    *"٠١٢٣٩",  # Arabic-Indic digits
    *"０９１２",  # full-width digits
    *"²³¹𝟗𝟎",  # superscripts, mathematical digits
    *"\u200b\u200d\u2060\ufeff\u00ad\u202e\u0301\u0323",  # invisible, bidi, combining
    *"–—−…",
    "SĐT: ",
    "Zalo ",
    " hoặc ",
    " và ",
    "(anh Nam)",
    "(vợ: 0987654321)",
    "+84",
    "0084",
    "E+8",
    ".0",
    "x123",
    *_MOBILES,
]
hostile_text = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(_TOKENS), max_size=30).map("".join),
    st.text(st.characters(codec="utf-8"), min_size=100, max_size=400),
)


@_FUZZ
@given(hostile_text)
@example("0912345678" * 50)
@example("٠٩١٢٣٤٥٦٧٨")
@example("9" * 4400)  # int() refuses more than 4300 digits
@example("9.99999999999999E+99")
@example("(" * 100 + "0912345678")
def test_normalize_never_raises_and_accepts_only_vn_mobiles(raw: str) -> None:
    result = normalize_phone(raw)
    assert result.input == raw
    if not result.ok:
        assert result.reason in REASONS
        assert (result.e164, result.national, result.carrier) == (None, None, None)
        return
    assert result.e164 is not None and _E164_VN.fullmatch(result.e164), result
    assert result.national == "0" + result.e164[3:]
    number = phonenumbers.parse(result.e164, None)
    assert phonenumbers.is_valid_number(number)
    assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
    # Its own forms normalise to the same number, with nothing converted on the way.
    for again in (result.e164, result.national, result.provider_format("84")):
        second = normalize_phone(again)
        assert (second.ok, second.e164, second.carrier) == (True, result.e164, result.carrier)
        assert second.converted_from is None and second.others == ()


def _assert_only_digits_hidden(value: str, masked: str) -> None:
    assert len(masked) == len(value)
    for before, after in zip(value, masked, strict=True):
        assert after == before or ("0" <= before <= "9" and after == "*"), (value, masked)


@_FUZZ
@given(hostile_text)
@example("0912.345.678")
@example("+84 (0) 912 345 678")
@example("1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6")
def test_mask_phone_keeps_three_and_two_digits_of_every_run(value: str) -> None:
    masked = mask_phone(value)
    _assert_only_digits_hidden(value, masked)
    for run in _RUN.finditer(value):
        digits = [i for i in range(run.start(), run.end()) if "0" <= value[i] <= "9"]
        shown = [i for i in digits if masked[i] != "*"]
        if len(digits) < 9:
            assert shown == digits
        else:
            assert shown == digits[:3] + digits[-2:], (value, masked)


# How people write a mobile: the layouts of the module doc (4-3-3, 3-3-4, 4-6, 3-7, ...).
_LAYOUTS = ((10,), (4, 3, 3), (3, 3, 4), (4, 6), (3, 7), (2, 4, 4), (4, 2, 2, 2))


@st.composite
def written_mobile(draw: st.DrawFn) -> tuple[str, str]:
    """(the mobile as written, its 10 national digits)."""
    national = draw(st.sampled_from(_MOBILES))
    layout = draw(st.sampled_from(_LAYOUTS))
    separator = draw(st.sampled_from([" ", ".", "-"]))
    groups, at = [], 0
    for size in layout:
        groups.append(national[at : at + size])
        at += size
    written = separator.join(groups)
    if draw(st.booleans()):
        written = "+84 " + written[1:]
    return written, national


# Around the number: anything, then one character that ends a number (not a digit).
_BOUNDARY = st.sampled_from([" ", ".", "-", ",", ":", "/", "(", ")", "a", "đ", "\n", "="])


@_FUZZ
@given(
    st.one_of(hostile_text, st.text(string.digits + " .-", max_size=30)),
    _BOUNDARY,
    written_mobile(),
    _BOUNDARY,
    st.one_of(hostile_text, st.text(string.digits + " .-", max_size=30)),
)
@example("tin 12345", " ", ("0912345678", "0912345678"), " ", "")
@example("123 4567", " ", ("0912 345 678", "0912345678"), " ", "")
@example("12", " ", ("0912 345 678", "0912345678"), " ", "12345 9")
@example("", " ", ("091 234 5678", "0912345678"), " ", "2024-01-15")
@example("", " ", ("0912-34-56-78", "0912345678"), " ", "")  # not a date
def test_masked_text_never_shows_a_numbers_last_four_digits(
    before: str, left: str, mobile: tuple[str, str], right: str, after: str
) -> None:
    written, national = mobile
    text = before + left + written + right + after
    masked = mask_phones_in_text(text)
    _assert_only_digits_hidden(text, masked)
    start = len(before + left)
    positions = [start + i for i, ch in enumerate(written) if "0" <= ch <= "9"]
    assert "".join(text[i] for i in positions).endswith(national[1:])
    # The 3rd and 4th digits from the end: with the last two, they would prove the number.
    hidden = [masked[i] for i in positions[-4:-2]]
    assert hidden == ["*", "*"], (text, masked)
