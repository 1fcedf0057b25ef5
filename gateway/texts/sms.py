"""SMS texts of notices: render a kind's template in either form, within a segment budget.

``render_sms`` renders ``templates/sms/<kind>.txt.j2`` with the notice's params. The
text goes out with accents (UCS-2) or without (GSM-7, through ``unaccent``), as the
provider wants. The hotline and the OA's name are the renderer's (``Texts`` globals:
``CHAT_HOTLINE``, ``OA_NAME``) unless the params carry their own. When the text takes
more segments than the budget, these rules apply in order, each re-rendering the
template with a changed context, until it fits:

1. ``abbreviate``: well-known agency and document words ("Ủy ban nhân dân" → "UBND",
   see ``ABBREVIATIONS``) in the agency, procedure, pickup place, reason, documents and
   status note;
2. ``drop_procedure_name``;
3. ``drop_applicant_name``: the citizen is addressed as plain "ông/bà";
4. ``drop_agency_name``: the templates fall back to "cơ quan giải quyết" or say nothing;
5. ``truncate``: the reason, then the status note, then the document list are cut at a
   word boundary and end in "…" ("..." unaccented), down to a few words each; a reason
   the kind does not require is dropped rather than cut to a stub, and the document
   list keeps whole documents ("a; b; …") unless not even the first one fits;
6. ``drop_oa_name``: the closing line names the hotline only ("Hỏi đáp: 0251.1022."),
   a last resort for a long ``OA_NAME`` or ``CHAT_HOTLINE`` (the citizen has the OA's
   name from earlier messages; the number to call is never dropped).

A rule is recorded in ``shortened_by`` only if it changed the text. No rule ever touches
the signed link to the citizen page (``link``, see :mod:`gateway.trust.links`): it is what
lets a citizen without Zalo answer, so the other facts give way to it.

If it still does not fit, the result says how many segments it really takes; the caller
decides. Templates are rendered on one line: runs of white space become one space, so a
template may spread a message over several lines (each continuation line starts with a
space, since a line ending in a block tag loses its newline).

A notice whose params hold :data:`REPLY_PARAM` (a reply a staff member wrote or edited on
the console) is not rendered from its template: that text is sent as written, on one
line, unaccented for providers that want it, and never shortened (the console and the
staff API refuse a reply that does not fit the budgets, :func:`reply_fits`).

``python -m gateway.texts.sms preview <kind>`` (``tthc templates preview``) shows both
forms of a kind with sample params.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from gateway.domain.sms_text import Encoding, SegmentCount, segments, unaccent
from gateway.errors import FieldError, ValidationFailed
from gateway.settings import DEFAULT_HOTLINE, DEFAULT_OA_NAME
from gateway.texts.templates import Texts

__all__ = [
    "ABBREVIATIONS",
    "DEFAULT_HOTLINE",
    "DEFAULT_OA_NAME",
    "KINDS",
    "LINK_SMS_PARAMS",
    "NO_DOSSIER_PARAMS",
    "REPLY_PARAM",
    "REQUIRED_PARAMS",
    "ZALO_ONLY_PARAMS",
    "RenderedSms",
    "ReplyFit",
    "abbreviate",
    "notice_context",
    "render_sms",
    "reply_fits",
    "reply_sms",
]

# Every kind about a dossier needs its code (``NO_DOSSIER_PARAMS``, below, are about
# none); these are the params without which its message would say nothing. Every other
# known param may be missing or None.
REQUIRED_PARAMS: dict[str, tuple[str, ...]] = {
    "receipt": ("dossier_code", "received_at", "due_at"),
    "supplement": ("dossier_code", "documents"),
    "refusal": ("dossier_code", "reason"),
    "fees": ("dossier_code", "amount"),
    "withdrawal": ("dossier_code",),
    "apology": ("dossier_code", "reason", "new_due_at"),
    "auto_apology": ("dossier_code", "due_at"),
    "invitation": ("dossier_code",),
    "report_received": ("report_number", "dossier_code"),
    "report_in_progress": ("report_number", "dossier_code"),
    "report_resolved": ("report_number", "dossier_code"),
    "report_rejected": ("report_number", "dossier_code", "status_note"),
}
KINDS = tuple(REQUIRED_PARAMS)
# Sent on Zalo only (OA message with answer buttons, or a ZNS template): no SMS text.
ZALO_ONLY_PARAMS: dict[str, tuple[str, ...]] = {
    "result_check": ("dossier_code",),
    "rating_request": ("dossier_code",),
}
# Kinds about no dossier: a one-time code (gateway.trust.otp; short, one segment
# unaccented, no hotline or OA name: nothing in it should invite a call or a reply), and
# "your notices now go to Zalo" (gateway.trust.subscriptions; its link is optional).
NO_DOSSIER_PARAMS: dict[str, tuple[str, ...]] = {
    "otp": ("otp_code",),
    "channel_moved": (),
}
# Zalo-only kinds that do go by SMS when the notice carries a signed link to the citizen
# page (answered there instead of with Zalo buttons): their SMS needs the link.
LINK_SMS_PARAMS: dict[str, tuple[str, ...]] = {
    "result_check": ("dossier_code", "link"),
}

_KNOWN_PARAMS = (
    "dossier_code",
    "procedure_name",
    "agency_name",
    "applicant_name",
    "received_at",
    "due_at",
    "reason",
    "documents",
    "amount",
    "old_due_at",
    "new_due_at",
    "pickup",
    "delivery",
    "report_number",
    "status_note",
    "expected_at",
    "finished_at",
    "link",
    "otp_code",
    "minutes",
)
_FREE_TEXT = ("reason", "documents", "pickup", "status_note")

# Template globals (``Texts``) unless a notice's params carry their own.
_OVERRIDABLE = ("hotline", "oa_name")

# Order does not matter: the matcher tries longer forms first.
ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    ("Ủy ban nhân dân", "UBND"),
    ("Hội đồng nhân dân", "HĐND"),
    ("Trung tâm Phục vụ hành chính công", "TT PVHCC"),
    ("Trung tâm Hành chính công", "TT HCC"),
    ("Bộ phận tiếp nhận và trả kết quả", "BP TN&TKQ"),
    ("Bộ phận một cửa", "BPMC"),
    ("Văn phòng đăng ký đất đai", "VPĐKĐĐ"),
    ("Chi nhánh", "CN"),
    ("Tài nguyên và Môi trường", "TN&MT"),
    ("Nông nghiệp và Phát triển nông thôn", "NN&PTNT"),
    ("Nông nghiệp và Môi trường", "NN&MT"),
    ("Kế hoạch và Đầu tư", "KH&ĐT"),
    ("Lao động - Thương binh và Xã hội", "LĐ-TB&XH"),
    ("Giáo dục và Đào tạo", "GD&ĐT"),
    ("Văn hóa, Thể thao và Du lịch", "VHTTDL"),
    ("Văn hóa và Thông tin", "VH&TT"),
    ("Thông tin và Truyền thông", "TT&TT"),
    ("Khoa học và Công nghệ", "KH&CN"),
    ("Giao thông vận tải", "GTVT"),
    ("Kinh tế và Hạ tầng", "KT&HT"),
    ("Quản lý đô thị", "QLĐT"),
    ("Tài chính - Kế hoạch", "TC-KH"),
    ("thành phố", "TP"),
    ("thị xã", "TX"),
    ("thị trấn", "TT"),
    ("Giấy chứng nhận quyền sử dụng đất", "GCN QSDĐ"),
    ("quyền sở hữu nhà ở và tài sản khác gắn liền với đất", "QSHNƠ và TSKGLVĐ"),
    ("Giấy chứng nhận", "GCN"),
    ("quyền sử dụng đất", "QSDĐ"),
    ("Giấy phép xây dựng", "GPXD"),
    ("Đăng ký kinh doanh", "ĐKKD"),
    ("Căn cước công dân", "CCCD"),
    ("Chứng minh nhân dân", "CMND"),
    ("Trách nhiệm hữu hạn", "TNHH"),
    ("Cổng Dịch vụ công quốc gia", "Cổng DVCQG"),
)
_ABBREVIATED = ("agency_name", "procedure_name", "pickup", "reason", "documents", "status_note")
_SEPARATOR = r"[\s,\-]+"
_NO_MATCH = "\x00"

_TRUNCATED = ("reason", "status_note", "documents")
_MIN_WORDS = 6
_ELLIPSIS = "…"

# The param holding a staff member's own text for a notice, sent instead of the template.
REPLY_PARAM = "reply_text"


@dataclass(frozen=True, slots=True)
class RenderedSms:
    """One notice as an SMS: the text, what it costs, and what was cut to make it fit.

    ``characters`` is in the encoding's units (GSM-7 septets or UTF-16 code units);
    ``shortened_by`` names the rules that changed the text, in the order applied.
    """

    kind: str
    text: str
    encoding: Encoding
    segments: int
    shortened_by: tuple[str, ...]
    characters: int = 0


Context = dict[str, Any]
_Fits = Callable[[Context], bool]


def render_sms(
    texts: Texts,
    kind: str,
    params: Mapping[str, Any],
    *,
    accents: bool,
    budget: int,
    zone: tzinfo,
) -> RenderedSms:
    """The SMS for a notice of ``kind``, shortened (see the module doc) to fit ``budget``.

    Raises ``ValidationFailed`` for an unknown kind or a missing required param; never
    for a text that does not fit (its true segment count is returned).
    """
    context = _context(kind, params, zone, sms=True)
    reply = params.get(REPLY_PARAM)
    if isinstance(reply, str) and reply.strip():
        return reply_sms(kind, reply, accents=accents)

    def measure(ctx: Context) -> tuple[str, SegmentCount]:
        raw = texts.render(f"sms/{kind}.txt.j2", **ctx)
        text = unicodedata.normalize("NFC", " ".join(raw.split()))
        text = text if accents else unaccent(text)
        return text, segments(text)

    def fits(ctx: Context) -> bool:
        return measure(ctx)[1].segments <= budget

    text, count = measure(context)
    applied: list[str] = []
    for name, rule in _RULES:
        if count.segments <= budget:
            break
        changed = rule(context, fits)
        if changed is None:
            continue
        context = changed
        shorter, count = measure(context)
        if shorter != text:
            applied.append(name)
            text = shorter
    return RenderedSms(kind, text, count.encoding, count.segments, tuple(applied), count.characters)


def reply_sms(kind: str, text: str, *, accents: bool) -> RenderedSms:
    """A staff member's reply as an SMS: one line, NFC, unaccented unless ``accents``;
    never shortened (its true segment count is returned)."""
    line = unicodedata.normalize("NFC", " ".join(text.split()))
    line = line if accents else unaccent(line)
    count = segments(line)
    return RenderedSms(kind, line, count.encoding, count.segments, (), count.characters)


@dataclass(frozen=True, slots=True)
class ReplyFit:
    """What a reply costs in one SMS form (with or without accents) against its budget."""

    accents: bool
    segments: int
    budget: int

    @property
    def fits(self) -> bool:
        return self.segments <= self.budget


def reply_fits(text: str, *, budget: int, unicode_budget: int) -> tuple[ReplyFit, ReplyFit]:
    """The reply's cost unaccented (against ``budget``) and accented (against
    ``unicode_budget``): a reply must fit both, since providers differ and fail over."""
    plain = reply_sms("reply", text, accents=False)
    accented = reply_sms("reply", text, accents=True)
    return (
        ReplyFit(False, plain.segments, budget),
        ReplyFit(True, accented.segments, unicode_budget),
    )


def _context(kind: str, params: Mapping[str, Any], zone: tzinfo, *, sms: bool = False) -> Context:
    required = _required(kind, sms=sms)
    if required is None:
        raise ValidationFailed([FieldError("kind", f"no SMS template for {kind!r}")])
    context: Context = dict.fromkeys(_KNOWN_PARAMS)
    context.update(
        (key, _clean(value, free_text=key in _FREE_TEXT)) for key, value in params.items()
    )
    missing = [name for name in required if context[name] is None]
    if missing:
        raise ValidationFailed(
            [FieldError(f"params.{name}", f"is required for the {kind} SMS") for name in missing],
            f"the {kind} SMS needs {', '.join(missing)}",
        )
    for name in _OVERRIDABLE:  # absent or empty: the renderer's configured value applies
        if not context.get(name):
            context.pop(name, None)
    context["documents_count"] = len(context["documents"] or ())
    context["kind"] = kind
    context["zone"] = zone
    return context


def _required(kind: str, *, sms: bool = True) -> tuple[str, ...] | None:
    """The params a kind's text cannot do without (as an SMS: a Zalo-only kind's SMS needs
    its link); None for an unknown kind, and as an SMS for a Zalo-only kind without one
    (``rating_request``: there is no SMS template to render)."""
    if kind in NO_DOSSIER_PARAMS:  # may need nothing at all (an empty tuple)
        return NO_DOSSIER_PARAMS[kind]
    by_channel = LINK_SMS_PARAMS.get(kind) if sms else ZALO_ONLY_PARAMS.get(kind)
    return REQUIRED_PARAMS.get(kind) or by_channel


def notice_context(kind: str, params: Mapping[str, Any], zone: tzinfo) -> Context:
    """The template context of a notice (params cleaned, defaults added, required checked)."""
    return _context(kind, params, zone)


def _clean(value: Any, *, free_text: bool) -> Any:
    """One space between words, NFC, no empty values; free text loses its final stop."""
    if isinstance(value, str):
        text = " ".join(unicodedata.normalize("NFC", value).split())
        if free_text:
            text = text.rstrip(" .,;:")
        return text or None
    if isinstance(value, list | tuple):
        items = [item for item in (_clean(v, free_text=free_text) for v in value) if item]
        return items or None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# -- rule 1: abbreviations -------------------------------------------------------------


def _fold(char: str) -> str:
    """The character as matching sees it: lower case, no accents, still one character."""
    folded = unaccent(char).lower()
    return folded if len(folded) == 1 else _NO_MATCH


def _skeleton(text: str) -> str:
    # One character per character, so match positions are positions in ``text``.
    return "".join(_fold(c) for c in text)


def _pattern(long_form: str) -> str:
    words = re.split(_SEPARATOR, _skeleton(unicodedata.normalize("NFC", long_form)))
    return _SEPARATOR.join("(?:va|&)" if word == "va" else re.escape(word) for word in words)


# Matched on the skeleton so "Uỷ"/"Ủy", "hoá"/"hóa", capitals and unaccented input
# all count; the words may be separated by spaces, commas or hyphens.
_BY_LENGTH = sorted(ABBREVIATIONS, key=lambda pair: -len(pair[0]))
_ABBREVIATION = re.compile(
    r"(?<!\w)(?:" + "|".join(f"({_pattern(long)})" for long, _ in _BY_LENGTH) + r")(?!\w)"
)


def abbreviate(text: str) -> str:
    """``text`` with the well-known long forms of ``ABBREVIATIONS`` replaced."""
    text = unicodedata.normalize("NFC", text)
    pieces: list[str] = []
    start = 0
    for match in _ABBREVIATION.finditer(_skeleton(text)):
        assert match.lastindex is not None
        pieces += [text[start : match.start()], _BY_LENGTH[match.lastindex - 1][1]]
        start = match.end()
    return "".join([*pieces, text[start:]])


def _abbreviate_value(value: Any) -> Any:
    if isinstance(value, str):
        return abbreviate(value)
    if isinstance(value, list):
        return [abbreviate(item) for item in value]
    return value


def _rule_abbreviate(context: Context, fits: _Fits) -> Context | None:
    changed = {name: _abbreviate_value(context[name]) for name in _ABBREVIATED}
    if all(changed[name] == context[name] for name in _ABBREVIATED):
        return None
    return {**context, **changed}


# -- rules 2 to 4: drop facts the citizen can find elsewhere --------------------------


def _dropping(name: str) -> Callable[[Context, _Fits], Context | None]:
    def rule(context: Context, fits: _Fits) -> Context | None:
        return {**context, name: None} if context[name] else None

    return rule


# -- rule 5: truncation at a word boundary ---------------------------------------------


def _cut_words(words: list[str]) -> str:
    return " ".join(words).rstrip(" ,;:.-(") + _ELLIPSIS


def _truncated(value: str | list[str], keep: int) -> str | list[str]:
    """``value`` cut to its first ``keep`` words (a list: counted across its items)."""
    if isinstance(value, str):
        return _cut_words(value.split(" ")[:keep])
    items: list[str] = []
    for item in value:
        words = item.split(" ")
        if keep >= len(words):
            items.append(item)
            keep -= len(words)
        else:
            items.append(_cut_words(words[:keep]) if keep else _ELLIPSIS)
            break
    return items


def _word_count(value: str | list[str]) -> int:
    items = [value] if isinstance(value, str) else value
    return sum(len(item.split(" ")) for item in items)


def _with_words(context: Context, name: str, keep: int) -> Context:
    """``context`` with field ``name`` cut to ``keep`` words, or dropped for 0."""
    value = context[name]
    return {**context, name: _truncated(value, keep) if keep else None}


def _word_counts_to_try(value: str | list[str], total: int) -> list[int]:
    """Where a cut may fall, fewest words first: a list is cut between whole items, and
    within its first item only if no whole item fits."""
    if isinstance(value, str):
        return list(range(_MIN_WORDS, total))
    ends = itertools.accumulate(len(item.split(" ")) for item in value)
    within_first = range(_MIN_WORDS, len(value[0].split(" ")))
    return sorted({*within_first, *(end for end in ends if end < total)})


def _rule_truncate(context: Context, fits: _Fits) -> Context | None:
    changed = False
    for name in _TRUNCATED:
        value = context[name]
        total = _word_count(value) if value else 0
        if total <= _MIN_WORDS:
            continue
        optional = name not in (_required(context["kind"]) or ())
        keeps = [*([0] if optional else []), *_word_counts_to_try(value, total)]
        best, low, high = 0, 1, len(keeps) - 1
        while low <= high:  # the most words that still fit
            middle = (low + high) // 2
            if fits(_with_words(context, name, keeps[middle])):
                best, low = middle, middle + 1
            else:
                high = middle - 1
        context = _with_words(context, name, keeps[best])
        changed = True
        if fits(context):
            break
    return context if changed else None


# -- rule 6: the hotline alone --------------------------------------------------------


def _rule_drop_oa_name(context: Context, fits: _Fits) -> Context | None:
    # None in the context hides the renderer's global (``{% if oa_name %}``).
    if "oa_name" in context and not context["oa_name"]:
        return None
    return {**context, "oa_name": None}


_RULES: tuple[tuple[str, Callable[[Context, _Fits], Context | None]], ...] = (
    ("abbreviate", _rule_abbreviate),
    ("drop_procedure_name", _dropping("procedure_name")),
    ("drop_applicant_name", _dropping("applicant_name")),
    ("drop_agency_name", _dropping("agency_name")),
    ("truncate", _rule_truncate),
    ("drop_oa_name", _rule_drop_oa_name),
)


# -- tthc templates --------------------------------------------------------------------
