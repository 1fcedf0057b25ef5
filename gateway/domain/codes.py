"""Dossier codes (mã hồ sơ): strict parsing, and finding codes citizens type in chat.

Circular 01/2018/TT-VPCP Art. 19 builds a code as ``<agency>-<YYMMDD>-<sequence>``,
e.g. ``000.00.06.H56-231027-0361``: the receiving agency's identifier in the QCVN
102:2016 form ``NNN.NN.NN.Xnn``, the receipt date, and the day's sequence number (4
digits, 5 in some systems).

:func:`parse_dossier_code` accepts exactly that form. :func:`find_dossier_codes` reads
free text the way a clerk would: lower case, stray spaces, missing dots, other
separators instead of dashes, ``O``/``o`` for ``0`` and ``l``/``I`` for ``1``,
full-width characters. It only proposes codes that are valid once repaired; the bot
confirms a repaired code with the citizen before using it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Final

__all__ = [
    "CodeCandidate",
    "DossierCode",
    "find_dossier_codes",
    "is_dossier_code",
    "parse_dossier_code",
]

# Exactly the pattern of the reference; ASCII so that other scripts' digits do not pass.
DOSSIER_CODE_RE: Final = re.compile(
    r"^(?P<agency>[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z]\d{2})"
    r"-(?P<date>\d{6})-(?P<seq>\d{4,5})$",
    re.ASCII,
)
_AGENCY_RE: Final = re.compile(r"[0-9A-Z]{3}\.[0-9A-Z]{2}\.[0-9A-Z]{2}\.[A-Z]\d{2}", re.ASCII)
_AGENCY_GROUP_WIDTHS: Final = (3, 2, 2, 3)
_ALNUM_UPPER_RE: Final = re.compile(r"[0-9A-Z]+", re.ASCII)
_LAST_GROUP_RE: Final = re.compile(r"[A-Z]\d{2}", re.ASCII)
_DIGITS_RE: Final = re.compile(r"\d+", re.ASCII)

# The tolerant finder works on text normalised by _normalize (NFKC, so full-width
# characters are ASCII here). Pieces, as typed:
_AGENCY_CHAR: Final = r"[0-9A-Za-z]"
_DIGIT_LIKE: Final = r"[0-9OoIl]"
# A stray space is only accepted between two real digits ("000001 2H19"): allowing it
# next to letters would glue the last letter of a preceding word onto a short code.
_STRAY_SPACE: Final = r"(?:(?<=[0-9])[ \t](?=[0-9]))?"
_SEPARATOR_CHARS: Final = " \t._/\\-\u2010-\u2015\u2212"
_SEPARATOR: Final = rf"[{_SEPARATOR_CHARS}]{{0,4}}"
# Prefer a run of real digits as the sequence, so a word glued after a code ("0001lo")
# does not turn into a fifth digit; look-alikes are read as digits only when needed.
_SEQUENCE: Final = rf"(?:[0-9]{{4,5}}(?![0-9])|{_DIGIT_LIKE}{{4,5}}(?![0-9]))"
_CANDIDATE_RE: Final = re.compile(
    r"(?<![0-9])"
    rf"{_AGENCY_CHAR}{_STRAY_SPACE}{_AGENCY_CHAR}{_STRAY_SPACE}{_AGENCY_CHAR}{_SEPARATOR}"
    rf"{_AGENCY_CHAR}{_STRAY_SPACE}{_AGENCY_CHAR}{_SEPARATOR}"
    rf"{_AGENCY_CHAR}{_STRAY_SPACE}{_AGENCY_CHAR}{_SEPARATOR}"
    rf"[A-Za-z][ \t]?{_DIGIT_LIKE}{_STRAY_SPACE}{_DIGIT_LIKE}{_SEPARATOR}"
    rf"{_DIGIT_LIKE}{{6}}{_SEPARATOR}"
    rf"{_SEQUENCE}"
)
_NOT_CONTENT_RE: Final = re.compile(rf"[{_SEPARATOR_CHARS}]")
_LOOK_ALIKES: Final = str.maketrans("OoIl", "0011")
_DIGIT_LIKE_RUN_RE: Final = re.compile(r"[0-9OoIl]+")


@dataclass(frozen=True, slots=True)
class DossierCode:
    """A valid dossier code; ``str()`` gives its canonical text.

    ``sequence_digits`` keeps the width of the sequence (4, or 5 in some systems), so
    that ``...-00361`` and ``...-0361`` stay different codes.
    """

    agency: str
    received_on: date
    sequence: int
    sequence_digits: int = 4

    def __post_init__(self) -> None:
        if not _AGENCY_RE.fullmatch(self.agency):
            raise ValueError(f"agency {self.agency!r} does not follow NNN.NN.NN.Xnn")
        if not 2000 <= self.received_on.year <= 2099:
            raise ValueError(f"received_on {self.received_on} cannot be written as YYMMDD")
        if self.sequence_digits not in (4, 5):
            raise ValueError(f"sequence_digits must be 4 or 5, got {self.sequence_digits}")
        if not 0 <= self.sequence < 10**self.sequence_digits:
            raise ValueError(
                f"sequence {self.sequence} does not fit in {self.sequence_digits} digits"
            )

    def __str__(self) -> str:
        return f"{self.agency}-{self.received_on:%y%m%d}-{self.sequence:0{self.sequence_digits}d}"


@dataclass(frozen=True, slots=True)
class CodeCandidate:
    """A dossier code found in free text.

    ``code`` is canonical; ``raw`` is ``text[start:end]`` as typed; ``corrected`` is
    true when the two differ (case, spacing, separators, look-alike characters,
    full-width forms), i.e. when the bot should ask the citizen to confirm.
    """

    code: str
    raw: str
    start: int
    end: int
    corrected: bool


def parse_dossier_code(text: str) -> DossierCode:
    """Parse a code in the exact canonical form, or raise ``ValueError`` saying which
    part is wrong (shape, agency, date, sequence)."""
    match = DOSSIER_CODE_RE.fullmatch(text)
    if match is None:
        raise ValueError(_shape_problem(text))
    date_part = match["date"]
    received_on = _yymmdd(date_part)
    if received_on is None:
        raise ValueError(f"date part {date_part!r} is not a real date (YYMMDD)")
    return DossierCode(
        agency=match["agency"],
        received_on=received_on,
        sequence=int(match["seq"]),
        sequence_digits=len(match["seq"]),
    )


def is_dossier_code(text: str) -> bool:
    """Whether ``text`` is exactly one valid dossier code."""
    try:
        parse_dossier_code(text)
    except ValueError:
        return False
    return True


def find_dossier_codes(text: str) -> list[CodeCandidate]:
    """Every dossier code typed in ``text``, repaired, in order of appearance, once each.

    The slips listed in the module docstring are repaired; in the three agency groups a
    look-alike letter becomes a digit only when its group holds nothing but digits and
    look-alikes (``OOO`` → ``000``, while ``A0B`` keeps its letters). A span that
    already is a valid code is returned unchanged; if reading its agency that way gives
    another code (``OOO.OO.12.H19-...``), that reading follows as a second, corrected
    candidate for the same span, since both are plausible and only the citizen knows.

    A repaired code is proposed only if it is valid (real date included) and looks
    typed rather than assembled from words: at least half of its digit positions and
    one of the two after the agency letter were typed as real digits, and its agency
    groups hold at least one digit. Phone numbers and plain dates never match: a code
    needs a letter before its date.
    """
    normalized, starts, ends = _normalize(text)
    found: list[CodeCandidate] = []
    seen: set[str] = set()
    position = 0
    while (match := _CANDIDATE_RE.search(normalized, position)) is not None:
        start, end = starts[match.start()], ends[match.end() - 1]
        raw = text[start:end]
        exact = raw if is_dossier_code(raw) else None
        repaired = _repair(match.group())
        if exact is None and repaired is None:
            # Overlapping spans are possible in principle; retry one character later.
            position = match.start() + 1
            continue
        for code in dict.fromkeys(c for c in (exact, repaired) if c is not None):
            if code not in seen:
                seen.add(code)
                found.append(
                    CodeCandidate(code=code, raw=raw, start=start, end=end, corrected=raw != code)
                )
        position = match.end()
    return found


def _repair(typed: str) -> str | None:
    compact = _NOT_CONTENT_RE.sub("", typed)
    agency_groups = (compact[0:3], compact[3:5], compact[5:7])
    letter, digit_part = compact[7], compact[8:]
    real_digits = sum(ch.isdigit() for ch in digit_part)
    if 2 * real_digits < len(digit_part) or not any(ch.isdigit() for ch in digit_part[:2]):
        return None
    agency = ".".join(_repair_agency_group(group) for group in agency_groups)
    if not any(ch.isdigit() for ch in agency):
        return None
    digits = digit_part.translate(_LOOK_ALIKES)
    candidate = f"{agency}.{letter.upper()}{digits[:2]}-{digits[2:8]}-{digits[8:]}"
    return candidate if is_dossier_code(candidate) else None


def _repair_agency_group(group: str) -> str:
    if _DIGIT_LIKE_RUN_RE.fullmatch(group):
        return group.translate(_LOOK_ALIKES)
    return group.upper()


def _normalize(text: str) -> tuple[str, list[int], list[int]]:
    """NFKC-normalise ``text`` and map each output character back to its source span.

    A base character is normalised together with its combining marks, so a decomposed
    "ô" becomes one letter instead of an ``o`` that could pass for a zero.
    """
    if text.isascii():
        indexes = list(range(len(text)))
        return text, indexes, [i + 1 for i in indexes]
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i = 0
    while i < len(text):
        j = i + 1
        while j < len(text) and unicodedata.combining(text[j]):
            j += 1
        piece = unicodedata.normalize("NFKC", text[i:j])
        pieces.append(piece)
        starts.extend([i] * len(piece))
        ends.extend([j] * len(piece))
        i = j
    return "".join(pieces), starts, ends


def _shape_problem(text: str) -> str:
    if not text:
        return "empty string; expected a code like 000.00.06.H56-231027-0361"
    if text != text.strip():
        return "has leading or trailing whitespace"
    parts = text.split("-")
    if len(parts) != 3:
        return (
            "shape: expected <agency>-<YYMMDD>-<sequence> like 000.00.06.H56-231027-0361, "
            f"found {len(parts)} part(s) separated by '-'"
        )
    agency, date_part, sequence = parts
    agency_problem = _agency_problem(agency)
    if agency_problem is not None:
        return agency_problem
    if len(date_part) != 6 or not _DIGITS_RE.fullmatch(date_part):
        return f"date part {date_part!r} must be 6 digits YYMMDD"
    if not 4 <= len(sequence) <= 5 or not _DIGITS_RE.fullmatch(sequence):
        return f"sequence {sequence!r} must be 4 or 5 digits"
    return f"{text!r} is not a dossier code"  # unreachable if the checks mirror the regex


def _agency_problem(agency: str) -> str | None:
    groups = agency.split(".")
    if len(groups) != len(_AGENCY_GROUP_WIDTHS):
        return (
            f"agency part {agency!r} must have 4 dot-separated groups like 000.00.06.H56, "
            f"found {len(groups)}"
        )
    if agency != agency.upper():
        return f"agency part {agency!r} must be upper case"
    for number, (group, width) in enumerate(zip(groups, _AGENCY_GROUP_WIDTHS, strict=True), 1):
        if len(group) != width:
            return f"agency group {number} {group!r} of {agency!r} must have {width} characters"
        if number < 4 and not _ALNUM_UPPER_RE.fullmatch(group):
            return f"agency group {number} {group!r} of {agency!r} may hold only A-Z and 0-9"
    if not _LAST_GROUP_RE.fullmatch(groups[3]):
        return f"last agency group {groups[3]!r} must be a capital letter and 2 digits, like H56"
    return None


def _yymmdd(digits: str) -> date | None:
    try:
        return date(2000 + int(digits[0:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError:
        return None
