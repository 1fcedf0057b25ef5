"""Normalise the phone numbers citizens write on dossiers into SMS/Zalo-ready mobiles.

Records from the one-stop-shop system carry whatever was typed or pasted: labels,
names, several numbers in one field, 11-digit mobiles from before 2018, landlines,
and numbers mangled by spreadsheets. :func:`normalize_phone` turns one such field
into a :class:`PhoneResult`: either a Vietnamese **mobile** number (E.164 and
national form, carrier hint) or a machine-readable rejection reason. It never
raises on bad input and never guesses a correction; `phonenumbers` has the last
word on validity.

Pipeline for one field
----------------------
1. NFKC (full-width digits become ASCII), drop zero-width characters, map Unicode
   dashes to ``-``, strip whitespace, quotes and a spreadsheet's leading ``'``.
2. Spreadsheet damage on the whole field: ``912345678.0``, ``9.12345678E+8``,
   ``9,12345678E+08`` and thousands separators ``912,345,678`` become digits. A
   lost leading zero is restored later (a 9- or 10-digit national number without
   its ``0``).
3. Bracketed text with letters is a name (``0912345678 (anh Nam)``) and is
   dropped; if it also holds digits (``(vợ: 0987654321)``) it becomes a piece of
   its own. Bracketed digits such as ``(08)`` or ``(0)`` are kept.
4. The field is split on ``/ , ; |``, line breaks, `` - `` (spaced dash),
   ``hoặc``/``hoac``/``or`` (as words) and `` và ``/`` va ``; a ``-`` without spaces
   splits only when every side is a complete number (9+ digits), as does a space
   when the field has more than 12 digits and every space-separated group has 9+.
   Pieces without any digit are ignored.
5. Each piece loses its leading labels (``SĐT``, ``SDT``, ``ĐTDĐ``, ``ĐT``, ``DT``,
   ``DĐ``, ``Tel``/``Tel.``, ``Mobile``, ``Phone``, ``Zalo``, ``Điện thoại``, ``Di
   động``, ``Hotline``..., any case, with or without colon) and any leading
   ``<text without digits>:``. A letter in a token that also holds a digit, or a
   word between digit groups, means ``letters``. Words before or after the number
   (an unbracketed name) are dropped only if they are separated by spaces, at
   least one of them has two or more letters and the number itself has 9+ digits;
   otherwise ``letters`` (so ``0251 3822 xxx`` and ``O 912345678`` are refused).
6. The first piece that yields a mobile is the result; every other piece is
   reported in ``others``. If none does, the first piece's reason is reported.

Rules for one number (national significant number = NSN, the digits after ``0``
or ``+84``; ``00``/``+`` mean international, ``84`` + 9 or 10 digits means +84):

* 2018 table (Decision 798/QĐ-BTTTT): a 10-digit NSN whose first three digits are
  an old prefix (``162`` ... ``199``) is rewritten (``01623456789`` →
  ``0323456789``) and ``converted_from`` keeps the old national form.
* Old-landline collision (only for national input of 10 digits, i.e. a 9-digit
  NSN). An *old area code* is ``04`` or ``08`` (Hà Nội, TP.HCM, followed by 8
  digits) or ``0`` + ``[235-7]`` + a digit (pre-2017 provincial 3-digit codes,
  followed by 7 digits). The number is ``old_landline_suspected`` when

  (A) the raw form starts with an old area code in brackets: ``(061) 3822123``,
      ``(08)38221234``;
  (B) it starts with ``04`` or ``08`` as a group of its own (followed by a space,
      dot or dash) and the 8-digit subscriber starts with 3 or 8:
      ``08 38221234``, ``08 3822 1234``, ``04.3822.1234``;
  (C) it is exactly two groups, a 3-digit old area code and a 7-digit subscriber
      starting with 3 or 8: ``058 3822123``, ``061.3822123``.

  The usual mobile layouts pass: ``0912 345 678``, ``0912.345.678`` (first group
  of 4), ``091 234 5678``, ``058 382 2123`` (three groups), ``091 2345678``,
  ``083 8221234`` (``09x``/``08x`` were never 3-digit area codes), ``038 2345678``
  (subscriber starts with 2), ``0583822123`` (no layout to judge). The price: a
  real mobile written exactly 3+7 with a subscriber starting 3 or 8
  (``038 3822123``) is refused too, since that is the old landline's layout; the
  citizen can be asked again. Delivery receipts remain the final word on
  reachability.

Reason codes (``PhoneResult.reason``)
-------------------------------------
``empty``                  nothing given: blank, whitespace or quotes only
``no_digits``              text without a single digit: ``N/A``, ``không có``, ``-``,
                           a label alone (``SĐT:``)
``letters``                letters inside or glued to the digits (never corrected)
``too_short``              fewer digits than a Vietnamese number (or a foreign one)
``too_long``               more digits than a Vietnamese number (or a foreign one)
``landline``               a valid ``02x`` landline: not SMS-capable
``m2m``                    9-12 digit NSN starting with ``1`` whose first three
                           digits are not an old mobile prefix of the 2018 table
                           (machine-to-machine network codes ``1x``): ``0101234567``,
                           ``0140123456``, ``01601234567``. An old prefix with the
                           wrong length (``0162345678``) is ``too_short``/``too_long``
``vsat``                   ``0672…`` satellite numbers
``unknown_prefix``         9-digit NSN whose range is not an allocated mobile range
``old_landline_suspected`` pre-2017 landline layout, see above
``not_vietnamese``         a valid foreign number (``+1 …``, ``+44 …``)
``invalid``                anything else: stray characters, a foreign number that
                           is not valid, a landline-shaped number in no area
``precision_lost``         (added) scientific notation that lost digits, e.g.
                           ``9.12346E+08``: the real number cannot be recovered
``service_number``         (added) ``1800``/``1900`` toll-free/premium numbers

Carrier hints follow the 2-digit prefix table of today's networks (``viettel``,
``vinaphone``, ``mobifone``, ``vietnamobile``, ``gmobile``, ``itelecom``,
``wintel``); they are hints only, since numbers can be ported. A number that
`phonenumbers` accepts as MOBILE but whose prefix is not in that table (``030``,
``051``, ``095``) is accepted with carrier ``None``.

Masking (:func:`mask_phone`, :func:`mask_phones_in_text`): in a run of 9 or more
digits, where separators (space, dot, dash, brackets; at most two in a row) may sit
between digits, the first three and the last two digits stay and every other digit
becomes ``*``; separators and a leading ``+`` stay where they are:
``0912345678`` → ``091*****78``, ``+84912345678`` → ``+849******78``,
``0912.345.678`` → ``091*.***.*78``. Never more than the last two digits: the last
four of a dossier's phone prove enough to read it (``bot.router``, the citizen page),
so a masked number must not give them away. In free text only runs of 9-14 digits count
(longer grouped runs are split into numbers), and ids, dates, IPv4 addresses and
dossier codes are skipped (see :func:`mask_phones_in_text`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberType

__all__ = [
    "REASONS",
    "PhoneResult",
    "mask_phone",
    "mask_phones_in_text",
    "normalize_phone",
]

EMPTY: Final = "empty"
NO_DIGITS: Final = "no_digits"
LETTERS: Final = "letters"
TOO_SHORT: Final = "too_short"
TOO_LONG: Final = "too_long"
LANDLINE: Final = "landline"
M2M: Final = "m2m"
VSAT: Final = "vsat"
UNKNOWN_PREFIX: Final = "unknown_prefix"
OLD_LANDLINE_SUSPECTED: Final = "old_landline_suspected"
NOT_VIETNAMESE: Final = "not_vietnamese"
INVALID: Final = "invalid"
PRECISION_LOST: Final = "precision_lost"
SERVICE_NUMBER: Final = "service_number"

REASONS: Final[frozenset[str]] = frozenset(
    {
        EMPTY,
        NO_DIGITS,
        LETTERS,
        TOO_SHORT,
        TOO_LONG,
        LANDLINE,
        M2M,
        VSAT,
        UNKNOWN_PREFIX,
        OLD_LANDLINE_SUSPECTED,
        NOT_VIETNAMESE,
        INVALID,
        PRECISION_LOST,
        SERVICE_NUMBER,
    }
)

# Today's 2-digit mobile prefixes (after the 0) and their original network.
_CARRIER_PREFIXES: Final[dict[str, tuple[str, ...]]] = {
    "viettel": ("32", "33", "34", "35", "36", "37", "38", "39", "86", "96", "97", "98"),
    "vinaphone": ("81", "82", "83", "84", "85", "88", "91", "94"),
    "mobifone": ("70", "76", "77", "78", "79", "89", "90", "93"),
    "vietnamobile": ("52", "56", "58", "92"),
    "gmobile": ("59", "99"),
    "itelecom": ("87",),
    "wintel": ("55",),
}
_CARRIER_BY_PREFIX: Final[dict[str, str]] = {
    prefix: carrier for carrier, prefixes in _CARRIER_PREFIXES.items() for prefix in prefixes
}

# Decision 798/QĐ-BTTTT (2018): old 3-digit NSN prefix -> new 2-digit prefix.
_OLD_TO_NEW: Final[dict[str, str]] = {
    # Viettel
    "162": "32",
    "163": "33",
    "164": "34",
    "165": "35",
    "166": "36",
    "167": "37",
    "168": "38",
    "169": "39",
    # MobiFone
    "120": "70",
    "121": "79",
    "122": "77",
    "126": "76",
    "128": "78",
    # VinaPhone
    "123": "83",
    "124": "84",
    "125": "85",
    "127": "81",
    "129": "82",
    # Vietnamobile
    "186": "56",
    "188": "58",
    # Gmobile
    "199": "59",
}

_FAST_NATIONAL: Final = re.compile(r"0[1-9][0-9]{8}")
_ZERO_WIDTH: Final = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")
_DASHES: Final = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"))
_SURROUNDING: Final = " \t\r\n\"'`\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb"
_PIECE_TRIM: Final = _SURROUNDING + ".-:"

_SCIENTIFIC: Final = re.compile(r"([0-9])(?:[.,]([0-9]*))?[eE]([+-]?)([0-9]{1,2})")
_DOT_ZERO: Final = re.compile(r"([0-9]{8,14})[.,]0+")
_THOUSANDS: Final = re.compile(r"[0-9]{1,3}(?:,[0-9]{3}){2,4}(?:\.0+)?")

_BRACKETED: Final = re.compile(r"[(\[{]([^()\[\]{}]*)[)\]}]")
_SPLIT: Final = re.compile(
    r"[/,;|\n\r\t]|\s+-\s+|\s+(?:và|va)\s+|\b(?:hoặc|hoac|or)\b", re.IGNORECASE
)
_LABELS: Final = re.compile(
    r"^(?:(?:số\s+điện\s+thoại|so\s+dien\s+thoai|điện\s+thoại|dien\s+thoai|di\s+động"
    r"|di\s+dong|số\s+đt|so\s+dt|sđt|sdt|đtdđ|dtdd|đt|dt|dđ|telephone|tel|mobile|phone"
    r"|zalo|hotline)(?![^\W\d_])[\s.:\-]*)+",
    re.IGNORECASE,
)
_TEXT_COLON: Final = re.compile(r"([^\d:+]*):\s*")
_LETTER: Final = re.compile(r"[^\W\d_]")
_ANY_DIGIT: Final = re.compile(r"\d")
_NON_DIGIT: Final = re.compile(r"[^0-9]")
_NUMBER_CHARS: Final = re.compile(r"\(?\+?[0-9 .\-()]+")

# Old-landline heuristic, see the module docstring (A), (B), (C).
_OLD_AREA_BRACKETED: Final = re.compile(r"\(\s*0(?:[48]|[235-7][0-9])\s*\)")
_OLD_BIG_CITY_GROUP: Final = re.compile(r"0[48][\s.\-]+[0-9]")
_OLD_PROVINCE_LAYOUT: Final = re.compile(r"0[235-7][0-9][\s.\-]+[38][0-9]{6}")

# A digit run may hold up to two separators between digits: "(08) 3822", "+84 (0) 912".
_DIGIT_RUN: Final = re.compile(r"[0-9](?:[ .\-()]{0,2}[0-9])*")
_DIGIT_CHUNK: Final = re.compile(r"[0-9]+")
_IPV4_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4: Final = re.compile(rf"{_IPV4_OCTET}(?:\.{_IPV4_OCTET}){{3}}")
# A real calendar date only: "0912-34-56-78" is a number written in pairs, not a date.
_ISO_DATE: Final = re.compile(r"(?:19|20)[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])")
_DOSSIER_TAIL: Final = re.compile(r"(?:[0-9]{1,3}-)?[0-9]{6}-[0-9]{4}")
_MASK_MIN_DIGITS: Final = 9
_MASK_MAX_DIGITS_IN_TEXT: Final = 14
# What a masked run keeps: its first digits (the network) and its last two, no more.
_MASK_KEEP_FIRST: Final = 3
_MASK_KEEP_LAST: Final = 2


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """The outcome of normalising one raw phone field.

    ``ok`` results carry ``e164`` (``+84912345678``), ``national``
    (``0912345678``) and a ``carrier`` hint; rejected ones carry a ``reason`` from
    :data:`REASONS`. ``converted_from`` is the old 11-digit national form when the
    2018 table was applied. ``others`` holds the remaining pieces of a field that
    named several numbers, as they read after Unicode normalisation and removal of
    bracketed names.
    """

    input: str
    ok: bool
    e164: str | None
    national: str | None
    carrier: str | None
    converted_from: str | None
    reason: str | None
    others: tuple[str, ...] = ()

    def provider_format(self, style: Literal["84", "0", "+84"]) -> str:
        """Return the number as a provider wants it: ``84…``, ``0…`` or ``+84…``.

        Raises ``ValueError`` for a rejected result or an unknown style.
        """
        if not self.ok or self.e164 is None or self.national is None:
            raise ValueError(f"no usable number to format (reason: {self.reason})")
        if style == "+84":
            return self.e164
        if style == "84":
            return self.e164[1:]
        if style == "0":
            return self.national
        raise ValueError(f"unknown provider number style {style!r}")

    def to_json_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict with the public fields (``others`` as a list)."""
        return {
            "input": self.input,
            "ok": self.ok,
            "e164": self.e164,
            "national": self.national,
            "carrier": self.carrier,
            "converted_from": self.converted_from,
            "reason": self.reason,
            "others": list(self.others),
        }


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one piece of a field turned into: an NSN or a reason."""

    nsn: str | None = None
    reason: str | None = None
    converted_from: str | None = None


def normalize_phone(raw: str | None) -> PhoneResult:
    """Normalise one raw phone field to a Vietnamese mobile or a rejection reason.

    See the module docstring for the steps, the heuristics and the reason codes.
    Never raises for any string input. Results are immutable and depend on the input
    alone, so those of short inputs (every real phone field) are cached: the same
    numbers come back with every event of a dossier.
    """
    if raw is not None and len(raw) > _CACHED_LENGTH:
        return _normalize(raw)
    return _normalize_cached(raw)


_CACHED_LENGTH: Final = 64


def _normalize(raw: str | None) -> PhoneResult:
    if raw is None:
        return _result("", _Outcome(reason=EMPTY))
    text = raw.strip()
    # Most stored values are already a plain national number: skip the cleaning.
    if _FAST_NATIONAL.fullmatch(text):
        return _result(raw, _classify_digits(text, text))

    text = _clean(text)
    if not text:
        return _result(raw, _Outcome(reason=EMPTY))
    text = _LABELS.sub("", text).strip(_SURROUNDING)
    spreadsheet = _repair_spreadsheet(text)
    if spreadsheet is not None:
        return _result(raw, spreadsheet)

    pieces = [piece for piece in _split(_BRACKETED.sub(_replace_bracket, text)) if piece]
    outcomes = [_normalize_piece(piece) for piece in pieces]
    if not outcomes:  # something was written, but no piece of it holds a digit
        return _result(raw, _Outcome(reason=NO_DIGITS))
    chosen = next((i for i, outcome in enumerate(outcomes) if outcome.nsn is not None), 0)
    others = tuple(piece for i, piece in enumerate(pieces) if i != chosen)
    return _result(raw, outcomes[chosen], others)


def mask_phone(value: str) -> str:
    """Mask a phone value for logs and pages: keep the first three and the last two
    digits of each run (never more of the end: the last four digits are a proof).

    A run is 9+ digits with at most two separators (space, dot, dash, bracket)
    between neighbours; shorter runs are left as they are.
    """
    return _DIGIT_RUN.sub(lambda match: _mask_run(match.group(0)), value)


def mask_phones_in_text(text: str) -> str:
    """Mask every phone-looking run of 9-14 digits in free text (logs, messages).

    Same rule as :func:`mask_phone`. In a longer run of several groups, numbers glued
    by separators (``0912345678-0987654321``: every group 9-14 digits) are masked one by
    one; any other stretch of groups (``0912 345 678 0987 654 321``, ``12345
    0912345678``) is masked as one run, so that no group boundary ever shows a
    number's last digits. Left alone so that logs stay useful: one unbroken run of
    15+ digits (an id), an IPv4 address (``192.168.100.200``), an ISO date
    (``2024-01-15``) and the date-sequence tail of a dossier code
    (``H56-240115-0001``).
    """
    return _DIGIT_RUN.sub(_mask_text_run, text)


def _mask_text_run(match: re.Match[str]) -> str:
    run = match.group(0)
    if _IPV4.fullmatch(run) or _DOSSIER_TAIL.fullmatch(run):
        return run
    if date := _ISO_DATE.match(run):
        return run[: date.end()] + _mask_groups(run[date.end() :])
    return _mask_groups(run)


def _mask_groups(run: str) -> str:
    if _digit_count(run) <= _MASK_MAX_DIGITS_IN_TEXT:
        return _mask_run(run)
    chunks = list(_DIGIT_CHUNK.finditer(run))
    out: list[str] = []
    done = 0  # end of the text already copied to ``out``
    stretch: list[re.Match[str]] = []  # the groups since the last id
    for chunk in [*chunks, None]:
        if chunk is not None and len(chunk.group(0)) <= _MASK_MAX_DIGITS_IN_TEXT:
            stretch.append(chunk)
            continue
        # An id (15+ digits, left alone) or the end: mask the stretch before it.
        if all(len(c.group(0)) >= _MASK_MIN_DIGITS for c in stretch):
            spans = [(c.start(), c.end()) for c in stretch]
        else:
            spans = [(stretch[0].start(), stretch[-1].end())]
        for start, end in spans:
            out.append(run[done:start] + _mask_run(run[start:end]))
            done = end
        stretch = []
    out.append(run[done:])
    return "".join(out)


def _mask_run(run: str) -> str:
    total = _digit_count(run)
    if total < _MASK_MIN_DIGITS:
        return run
    seen = 0
    out: list[str] = []
    for ch in run:
        if "0" <= ch <= "9":
            seen += 1
            keep = seen <= _MASK_KEEP_FIRST or seen > total - _MASK_KEEP_LAST
            out.append(ch if keep else "*")
        else:
            out.append(ch)
    return "".join(out)


def _result(raw: str, outcome: _Outcome, others: tuple[str, ...] = ()) -> PhoneResult:
    if outcome.nsn is None:
        return PhoneResult(raw, False, None, None, None, None, outcome.reason, others)
    nsn = outcome.nsn
    return PhoneResult(
        input=raw,
        ok=True,
        e164="+84" + nsn,
        national="0" + nsn,
        carrier=_CARRIER_BY_PREFIX.get(nsn[:2]),
        converted_from=outcome.converted_from,
        reason=None,
        others=others,
    )


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _ZERO_WIDTH.sub("", text).translate(_DASHES)
    return text.strip(_SURROUNDING)


def _repair_spreadsheet(text: str) -> _Outcome | None:
    """Undo what spreadsheets do to numbers; None when the text is not such damage."""
    if match := _DOT_ZERO.fullmatch(text):
        return _classify_digits(match.group(1), match.group(1))
    if _THOUSANDS.fullmatch(text):
        digits = _NON_DIGIT.sub("", text.partition(".")[0])
        return _classify_digits(digits, digits)
    if match := _SCIENTIFIC.fullmatch(text):
        lead, fraction, exponent = match.group(1), match.group(2) or "", int(match.group(4))
        if match.group(3) == "-" or len(fraction) > exponent:
            return _Outcome(reason=INVALID)  # not a whole number, so not a phone
        if len(fraction) < exponent:
            # Padding with zeros would be a guess: the display dropped digits.
            return _Outcome(reason=PRECISION_LOST)
        return _classify_digits(lead + fraction, lead + fraction)
    return None


def _replace_bracket(match: re.Match[str]) -> str:
    content = match.group(1)
    if not _LETTER.search(content):
        return match.group(0)  # "(08)", "(0)", "(+84)": part of the number's layout
    if _ANY_DIGIT.search(content):
        return f";{content};"  # "(vợ: 0987654321)": another number, its own piece
    return " "


def _split(text: str) -> list[str]:
    pieces: list[str] = []
    for part in _SPLIT.split(text):
        part = part.strip(_PIECE_TRIM)
        if not _ANY_DIGIT.search(part):
            continue
        pieces.extend(_split_glued(part))
    return pieces


def _split_glued(part: str) -> list[str]:
    """Split ``0912345678-0987654321`` or ``0912345678 0987654321``, not groupings."""
    for separator in ("-", None):
        if separator is None and _digit_count(part) <= 12:
            continue
        sides = part.split(separator)
        if len(sides) > 1 and all(_digit_count(side) >= 9 for side in sides):
            return [side.strip(_PIECE_TRIM) for side in sides]
    return [part]


def _digit_count(text: str) -> int:
    return sum("0" <= ch <= "9" for ch in text)


def _normalize_piece(piece: str) -> _Outcome:
    piece = _LABELS.sub("", piece)
    # "Chủ hộ: 0912…": any wording before a colon is a label too.
    if (label := _TEXT_COLON.match(piece)) and _LETTER.search(label.group(1)):
        piece = piece[label.end() :]
    piece = piece.strip(_PIECE_TRIM)
    if not piece:
        return _Outcome(reason=EMPTY)
    spreadsheet = _repair_spreadsheet(piece)
    if spreadsheet is not None:
        return spreadsheet
    core = _drop_names(piece) if _LETTER.search(piece) else piece
    if core is None:
        return _Outcome(reason=LETTERS)
    core = core.strip(_PIECE_TRIM)
    if not _NUMBER_CHARS.fullmatch(core):
        return _Outcome(reason=INVALID)
    return _classify_digits(_NON_DIGIT.sub("", core), core)


def _drop_names(piece: str) -> str | None:
    """Return the number part of ``piece``, or None when letters touch the digits."""
    tokens = piece.split()
    digit_positions = [i for i, token in enumerate(tokens) if _ANY_DIGIT.search(token)]
    if not digit_positions:
        return None
    first, last = digit_positions[0], digit_positions[-1]
    number = tokens[first : last + 1]
    if any(_LETTER.search(token) for token in number):
        return None
    words = tokens[:first] + tokens[last + 1 :]
    has_real_word = any(len(_LETTER.findall(word)) >= 2 for word in words)
    if not has_real_word or sum(_digit_count(token) for token in number) < 9:
        return None
    return " ".join(number)


def _classify_digits(digits: str, core: str) -> _Outcome:
    """Classify an ASCII digit string; ``core`` is its written form (for layouts)."""
    if not digits:
        return _Outcome(reason=EMPTY)
    if core.lstrip("( ").startswith("+") or digits.startswith("00"):
        international = digits if core.lstrip("( ").startswith("+") else digits[2:]
        if not international.startswith("84"):
            return _classify_foreign(international)
        nsn = international[2:]
        return _classify_nsn(nsn[1:] if nsn.startswith("0") else nsn, core, national=False)
    if digits.startswith("0"):
        return _classify_nsn(digits[1:], core, national=True)
    if digits.startswith("84") and len(digits) in (11, 12):
        nsn = digits[2:]
        return _classify_nsn(nsn[1:] if nsn.startswith("0") else nsn, core, national=False)
    if digits.startswith(("1800", "1900")) and 8 <= len(digits) <= 10:
        return _Outcome(reason=SERVICE_NUMBER)
    # A spreadsheet stored the number as an integer and dropped its leading zero.
    return _classify_nsn(digits, core, national=False)


def _classify_nsn(nsn: str, core: str, *, national: bool) -> _Outcome:
    length = len(nsn)
    if length < 9:
        return _Outcome(reason=TOO_SHORT)
    if nsn.startswith("0"):
        return _Outcome(reason=INVALID)
    converted_from = None
    if nsn.startswith("1"):
        new_prefix = _OLD_TO_NEW.get(nsn[:3])
        if new_prefix is None:
            return _Outcome(reason=M2M if length <= 12 else TOO_LONG)
        if length != 10:
            # An old 11-digit mobile with a digit missing or extra, not an M2M line.
            return _Outcome(reason=TOO_SHORT if length < 10 else TOO_LONG)
        converted_from = "0" + nsn
        nsn = new_prefix + nsn[3:]
    elif length == 10 and nsn.startswith("2"):
        return _Outcome(reason=LANDLINE if _vn_type(nsn) == PhoneNumberType.FIXED_LINE else INVALID)
    elif length > 9:
        return _Outcome(reason=TOO_LONG)
    elif national and _looks_like_old_landline(core):
        return _Outcome(reason=OLD_LANDLINE_SUSPECTED)
    elif nsn.startswith("2"):
        return _Outcome(reason=TOO_SHORT)  # a modern landline missing a digit
    elif nsn.startswith("672"):
        return _Outcome(reason=VSAT)
    if _vn_type(nsn) != PhoneNumberType.MOBILE:
        return _Outcome(reason=UNKNOWN_PREFIX)
    return _Outcome(nsn=nsn, converted_from=converted_from)


def _looks_like_old_landline(core: str) -> bool:
    core = core.strip()
    return bool(
        _OLD_AREA_BRACKETED.match(core)
        or (_OLD_BIG_CITY_GROUP.match(core) and _NON_DIGIT.sub("", core)[2] in "38")
        or _OLD_PROVINCE_LAYOUT.fullmatch(core)
    )


def _vn_type(nsn: str) -> int:
    """Ask `phonenumbers` what a +84 NSN is; UNKNOWN when it is not a valid number."""
    number = PhoneNumber(country_code=84, national_number=int(nsn))
    if not phonenumbers.is_valid_number(number):
        return PhoneNumberType.UNKNOWN
    return phonenumbers.number_type(number)


def _classify_foreign(international: str) -> _Outcome:
    try:
        number = phonenumbers.parse("+" + international, None)
    except phonenumbers.NumberParseException:
        return _Outcome(reason=INVALID)
    if phonenumbers.is_valid_number(number):
        return _Outcome(reason=NOT_VIETNAMESE)
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible == phonenumbers.ValidationResult.TOO_SHORT:
        return _Outcome(reason=TOO_SHORT)
    if possible == phonenumbers.ValidationResult.TOO_LONG:
        return _Outcome(reason=TOO_LONG)
    return _Outcome(reason=INVALID)


_normalize_cached: Final = functools.lru_cache(maxsize=8192)(_normalize)
