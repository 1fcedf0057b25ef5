"""Understanding what a citizen typed: button payloads, menu numbers, and intents.

Citizens type without diacritics, glue or split words and make typing slips, so text is
normalised (no accents, lower case, no punctuation, single spaces) and compared with
each intent's phrases by similarity, word window by word window. Button payloads are
exact: ``#name`` optionally followed by a dossier code and a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Final

from gateway.domain.codes import is_dossier_code
from gateway.domain.sms_text import unaccent

__all__ = [
    "COMMANDS",
    "Command",
    "match_intent",
    "normalize",
    "option_number",
    "parse_payload",
    "proof_digits",
    "score_in",
]

# Every command a button payload may name; typed intents map onto the same names.
COMMANDS: Final = frozenset(
    {
        "lookup",
        "report",
        "report_false",
        "report_other",
        "received",
        "not_received",
        "rate",  # #rate <code> <n>: the first score, progress (tiến độ)
        "rate_quality",  # #rate_quality <code> <n>: the second, quality (chất lượng)
        "subscribe",
        "unsubscribe",
        "otp",
        "new_code",
        "human",
        "menu",
        "skip",
        "cancel",
        "end",
    }
)

# Intent → phrases, already normalised. Order breaks ties between equal scores.
INTENTS: Final[dict[str, tuple[str, ...]]] = {
    "not_received": ("chua nhan", "chua nhan duoc", "khong nhan duoc", "chua nhan ket qua"),
    "received": ("da nhan", "da nhan duoc", "nhan duoc roi", "da nhan ket qua"),
    "lookup": ("tra cuu", "tra cuu ho so", "kiem tra ho so", "xem ho so", "tinh trang ho so"),
    "report": ("phan anh", "khieu nai", "kien nghi", "chua xong", "bao sai"),
    "rate": ("danh gia",),
    "human": (
        "gap can bo",
        "tong dai vien",
        "gap nguoi that",
        "noi chuyen voi can bo",
        "tu van vien",
    ),
    # Before "subscribe" and "cancel": "hủy đăng ký" also holds their phrases' words.
    "unsubscribe": (
        "huy dang ky",
        "huy dang ki",
        "dung nhan",
        "dung nhan thong bao",
        "ngung nhan thong bao",
        "huy nhan thong bao",
        "ngung nhan thong bao qua zalo",
        "dung nhan thong bao qua zalo",
    ),
    "subscribe": ("dang ky nhan thong bao", "nhan thong bao qua zalo"),
    "end": ("ket thuc",),
    "cancel": ("huy", "huy bo", "thoat", "dung lai"),
    "skip": ("bo qua",),
    "menu": ("menu", "bat dau", "trang chu", "danh muc"),
}

SIMILARITY: Final = 0.8
# Phrases this short only match exactly: "huy" must not match "thuy".
_FUZZY_MIN_CHARS: Final = 5
# Phrases that only match exactly: "hủy đăng ký" must not match "đăng ký" alone.
_EXACT_ONLY: Final = frozenset({"huy dang ky", "huy dang ki", "dung nhan"})
_NOT_WORD: Final = re.compile(r"[^0-9a-z]+")
_NUMBER: Final = re.compile(r"\d+")
_PROOF: Final = re.compile(r"\+?[\d\s.\-]+")


@dataclass(frozen=True, slots=True)
class Command:
    """A request to the bot: a command name, maybe a dossier code and a number."""

    name: str
    code: str | None = None
    number: int | None = None

    @property
    def payload(self) -> str:
        """The button payload that means this command."""
        parts = [f"#{self.name}", self.code, None if self.number is None else str(self.number)]
        return " ".join(p for p in parts if p)


def normalize(text: str) -> str:
    """Text without diacritics, lower case, punctuation as spaces, single spaces."""
    return " ".join(_NOT_WORD.sub(" ", unaccent(text).lower()).split())


def parse_payload(text: str) -> Command | None:
    """The command in a ``#name [CODE] [N]`` payload, or None if it is not one we know.

    A second word that is not a canonical dossier code is ignored (the command is then
    asked without a code); so is a number that is not an integer.
    """
    words = text.strip().split()
    if not words or not words[0].startswith("#"):
        return None
    name = words[0][1:].lower()
    if name not in COMMANDS:
        return None
    code = words[1] if len(words) > 1 and is_dossier_code(words[1]) else None
    number = None
    if code is not None and len(words) > 2 and re.fullmatch(r"-?\d{1,3}", words[2]):
        number = int(words[2])
    return Command(name, code, number)


def match_intent(text: str, *, whole: bool = False) -> str | None:
    """The intent the text expresses best, if any phrase is similar enough.

    With ``whole``, the phrase must be the whole message ("hủy" alone cancels a report
    being written, "hủy hồ sơ vì…" does not).
    """
    words = normalize(text).split()
    if not words:
        return None
    best: tuple[float, str] | None = None
    for intent, phrases in INTENTS.items():
        for phrase in phrases:
            score = _phrase_score(words, phrase, whole=whole)
            if score >= SIMILARITY and (best is None or score > best[0]):
                best = (score, intent)
    return best[1] if best else None


def _phrase_score(words: list[str], phrase: str, *, whole: bool) -> float:
    target = phrase.replace(" ", "")
    size = phrase.count(" ") + 1
    sizes = [len(words)] if whole else [s for s in (size - 1, size, size + 1) if s >= 1]
    fuzzy = len(target) >= _FUZZY_MIN_CHARS and phrase not in _EXACT_ONLY
    best = 0.0
    for width in sizes:
        for start in range(len(words) - width + 1):
            window = "".join(words[start : start + width])
            if window == target:
                return 1.0
            if fuzzy:
                best = max(best, SequenceMatcher(None, window, target).ratio())
    return best


def option_number(text: str) -> int | None:
    """The number of a numbered menu choice ("2", " 2. "), or None."""
    normalized = normalize(text)
    return int(normalized) if re.fullmatch(r"\d{1,2}", normalized) else None


def proof_digits(text: str) -> str | None:
    """The digits of a typed proof ("5 678", "0912.345.678", "+84 912 345 678"), or None
    if the text holds anything but digits, spaces, dots, dashes and a leading plus."""
    stripped = unaccent(text).strip()
    if not stripped or not _PROOF.fullmatch(stripped):
        return None
    digits = re.sub(r"\D", "", stripped)
    return digits or None


def score_in(text: str) -> int | None:
    """The one number in a typed rating ("4", "5 sao", "cho 3 điểm"), or None."""
    numbers = _NUMBER.findall(normalize(text))
    return int(numbers[0]) if len(numbers) == 1 else None
