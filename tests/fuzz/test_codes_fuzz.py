"""Hostile input for gateway.domain.codes.find_dossier_codes: any text a citizen may send.

tests/domain/test_codes.py holds the realistic messages and the canonical-code property;
here the text is anything (any Unicode, combining marks, full-width forms, look-alike
letters, separators in bulk) and the finder must never raise, must only ever propose
canonical codes that it finds again in their own text, must point into the original
text, and must see no code in digits and separators alone (a code needs a letter).
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Callable
from datetime import date

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.domain.codes import find_dossier_codes, is_dossier_code, parse_dossier_code

_FUZZ = settings(
    max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
CODE = "000.00.12.H19-240401-0001"
_SHORTEST_CODE = len("000.00.12.H19-240401-0001")

_TOKENS = [
    *(string.digits * 3),
    *"OoIlHhAZ",
    *" .-_/\\\t\n–−",
    *"０１２Ｈ．－",  # full-width
    *"\u0301\u0323\u0302\u200b\u00ad",  # combining marks, invisible characters
    "ồ",
    "ô",
    "ma ho so ",
    "hồ sơ ",
    CODE,
    "000.00.12.",
    "H19-",
    "240401",
    "-0001",
    "00012",
]
hostile_text = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(_TOKENS), max_size=40).map("".join),
    st.lists(st.sampled_from(_TOKENS), max_size=40).map(
        lambda tokens: unicodedata.normalize("NFD", "".join(tokens))
    ),
    st.text(st.characters(codec="utf-8"), min_size=200, max_size=600),
)


@_FUZZ
@given(hostile_text)
@example(CODE * 20)
@example("0" * 3 + "\u0302" * 50 + ".00.12.H19-240401-0001")
@example("OOO.OO.12.H19-240401-0001 " + unicodedata.normalize("NFD", "ồ" * 30))
@example("000.00.12.H19-240229-0001 000.00.12.H19-230229-0001")
def test_finder_never_raises_and_proposes_only_canonical_codes(text: str) -> None:
    candidates = find_dossier_codes(text)
    assert len({c.code for c in candidates}) == len(candidates)  # once each
    previous_start = 0
    for candidate in candidates:
        assert is_dossier_code(candidate.code)
        assert str(parse_dossier_code(candidate.code)) == candidate.code
        assert 0 <= candidate.start < candidate.end <= len(text)
        assert candidate.start >= previous_start  # in order of appearance
        previous_start = candidate.start
        assert candidate.raw == text[candidate.start : candidate.end]
        assert candidate.corrected == (candidate.raw != candidate.code)
        [again, *_] = find_dossier_codes(candidate.code)
        assert (again.code, again.corrected) == (candidate.code, False)


# Digits and every separator the finder tolerates, even in bulk: never a code.
_NOT_LETTERS = string.digits + " \t._/\\-\u2010\u2013\u2212" + "０１２３"


@_FUZZ
@given(st.text(_NOT_LETTERS, max_size=_SHORTEST_CODE - 1), st.text(_NOT_LETTERS, max_size=80))
@example("0000012192404010001", "000.00.12.19-240401-0001")
def test_no_code_in_digits_and_separators(short: str, longer: str) -> None:
    assert find_dossier_codes(short) == []
    assert find_dossier_codes(longer) == []


# Canonical codes whose agency has no look-alike letter (O, I, L would become digits).
_AGENCY = "0123456789ABCDEFGHJKMNPQRSTUVWXYZ"
canonical_codes = st.builds(
    lambda a, b, c, letter, nn, day, seq, width: (
        f"{a}.{b}.{c}.{letter}{nn:02d}-{day:%y%m%d}-{seq % 10**width:0{width}d}"
    ),
    st.text(_AGENCY, min_size=3, max_size=3).filter(lambda g: any(ch.isdigit() for ch in g)),
    st.text(_AGENCY, min_size=2, max_size=2),
    st.text(_AGENCY, min_size=2, max_size=2),
    st.sampled_from(_AGENCY[10:]),
    st.integers(0, 99),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    st.integers(0, 99999),
    st.sampled_from([4, 5]),
)


def _full_width(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


@_FUZZ
@given(
    canonical_codes,
    st.sampled_from([".", " ", "", " . "]),
    st.sampled_from(["-", " - ", "_", "/", ".", " ", "–", "−"]),
    st.sampled_from([str.lower, str.upper, _full_width, str]),
)
@example("000.00.12.H19-240401-0001", "", " ", str.lower)
def test_a_code_with_clerks_slips_is_repaired_to_itself(
    code: str, dot: str, dash: str, slip: Callable[[str], str]
) -> None:
    agency, day, sequence = code.split("-")
    typed = dash.join([agency.replace(".", dot), day, sequence])
    typed = slip(typed)
    text = f"mã hồ sơ {typed} ạ"
    candidates = find_dossier_codes(text)
    assert code in [c.code for c in candidates], (typed, candidates)
