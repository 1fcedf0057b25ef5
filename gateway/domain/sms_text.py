"""SMS text facts: Vietnamese accent stripping, the GSM-7 alphabet and segment counting.

One accented Vietnamese letter (or ``đ``, a curly quote, an ellipsis) turns a whole SMS
into UCS-2: 70 characters per message instead of 160, 67 per part instead of 153 when
concatenated. Many brandname contracts want unaccented ("không dấu") content anyway,
so every notice exists in two forms and the cost of each is counted here.

Counting rules (3GPP TS 23.038 / 23.040):

* GSM-7: 160 septets in one message, 153 per part of a concatenated one. Characters of
  the extension table (``^ { } \\ [ ] ~ | €`` and form feed) take two septets, and the
  escape pair is never split across parts.
* UCS-2: 70 UTF-16 code units in one message, 67 per part. Characters outside the
  Basic Multilingual Plane (emoji) take two units and their pair is never split either.
* Empty text is 0 segments; any non-empty text is at least 1.

Pure: standard library only.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "Encoding",
    "SegmentCount",
    "is_gsm7",
    "segments",
    "unaccent",
]

Encoding = Literal["GSM-7", "UCS-2"]

# The GSM 03.38 default alphabet in code order, without 0x1B (the escape to the
# extension table, not a character of its own).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# Reached through the escape, so each costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
_GSM7 = GSM7_BASIC | GSM7_EXTENSION

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

# Letters NFD does not decompose: the stroke is part of the letter, not a mark.
# U+00D0 (Icelandic eth) and U+0189 (African D) are common look-alikes of Đ in data
# typed on foreign keyboards or pasted from PDFs.
_LETTERS = str.maketrans({"đ": "d", "Đ": "D", "Ð": "D", "Ɖ": "D", "ɖ": "d"})

_SPACE = " "
_PUNCTUATION = str.maketrans(
    {
        # quotes and apostrophes
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
        "′": "'",
        "´": "'",
        "ʼ": "'",
        "`": "'",  # ASCII, but not in GSM-7
        "‹": "'",
        "›": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "‟": '"',
        "″": '"',
        "«": '"',
        "»": '"',
        # dashes and hyphens
        "‐": "-",
        "‑": "-",
        "‒": "-",
        "–": "-",
        "—": "-",
        "―": "-",
        "−": "-",
        "\u00ad": "",  # soft hyphen: invisible, drop it
        # ellipsis, bullets, symbols
        "…": "...",
        "•": "-",
        "‣": "-",
        "◦": "-",
        "⁃": "-",
        "∙": "-",
        "·": "-",
        "▪": "-",
        "●": "-",
        "○": "-",
        "■": "-",
        "□": "-",
        "►": "-",
        "▸": "-",
        "°": "o",  # "30°C" is written "30oC" in Vietnamese plain text
        "×": "x",
        "÷": "/",
        "⁄": "/",
        "±": "+/-",
        "≤": "<=",
        "≥": ">=",
        "→": "->",
        "←": "<-",
        "⇒": "=>",
        "₫": "d",
        "№": "No",
        "©": "(c)",
        "®": "(R)",
        "™": "TM",
        "¢": "c",
        "¦": "|",
        "ˆ": "^",
        "˜": "~",
        # white space: GSM-7 has only space, LF and CR
        "\t": _SPACE,
        "\u00a0": _SPACE,
        "\u2000": _SPACE,
        "\u2001": _SPACE,
        "\u2002": _SPACE,
        "\u2003": _SPACE,
        "\u2004": _SPACE,
        "\u2005": _SPACE,
        "\u2006": _SPACE,
        "\u2007": _SPACE,
        "\u2008": _SPACE,
        "\u2009": _SPACE,
        "\u200a": _SPACE,
        "\u202f": _SPACE,
        "\u205f": _SPACE,
        "\u3000": _SPACE,
        "\u2028": "\n",
        "\u2029": "\n",
        "\u200b": "",
        "\u200c": "",
        "\u200d": "",
        "\u2060": "",
        "\ufeff": "",
    }
)


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """What a text costs as an SMS.

    ``characters`` is in the encoding's units: septets for GSM-7 (extension characters
    count two), UTF-16 code units for UCS-2. ``per_segment`` is the capacity used:
    160/70 for a single message, 153/67 for each part of a concatenated one.
    """

    encoding: Encoding
    characters: int
    segments: int
    per_segment: int


def unaccent(text: str) -> str:
    """The text without Vietnamese diacritics, and with typography mapped to GSM-7.

    ``đ→d``, ``Đ→D``, then NFD, drop combining marks, NFC; then curly quotes, dashes,
    ``…``, ``°``, bullets and unusual spaces become ASCII. For Vietnamese text the result
    is pure GSM-7. Other characters that have a GSM-7 compatibility form (full-width
    digits, ligatures) take it; anything else is left as it is, so ``is_gsm7`` on the
    result tells whether the text can go out as GSM-7. Idempotent.
    """
    text = text.translate(_LETTERS)
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    text = unicodedata.normalize("NFC", text).translate(_PUNCTUATION)
    if is_gsm7(text):
        return text
    return "".join(c if c in _GSM7 else _compatible(c) for c in text)


def _compatible(char: str) -> str:
    """The GSM-7 compatibility form of one character, or the character itself."""
    decomposed = unicodedata.normalize("NFKD", char).translate(_LETTERS)
    folded = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    folded = unicodedata.normalize("NFC", folded).translate(_PUNCTUATION)
    return folded if folded and is_gsm7(folded) else char


def is_gsm7(text: str) -> bool:
    """Whether every character is in the GSM-7 alphabet (basic or extension table)."""
    return all(c in _GSM7 for c in text)


def segments(text: str) -> SegmentCount:
    """How many SMS segments ``text`` takes, in the encoding it will be sent in."""
    if is_gsm7(text):
        encoding: Encoding = "GSM-7"
        units = [2 if c in GSM7_EXTENSION else 1 for c in text]
        single, part = GSM7_SINGLE, GSM7_PART
    else:
        encoding = "UCS-2"
        units = [2 if ord(c) > 0xFFFF else 1 for c in text]
        single, part = UCS2_SINGLE, UCS2_PART
    total = sum(units)
    if total <= single:
        return SegmentCount(encoding, total, 1 if total else 0, single)
    count, used = 1, 0
    for unit in units:
        if used + unit > part:  # an escape or surrogate pair never straddles two parts
            count, used = count + 1, 0
        used += unit
    return SegmentCount(encoding, total, count, part)
