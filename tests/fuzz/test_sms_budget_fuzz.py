"""Hostile params for gateway.texts.sms.render_sms: within budget, or an honest count.

Every kind with an SMS template is rendered with generated params: names, agencies,
reasons and documents with emoji, combining marks, other scripts, words thousands of
characters long, up to the 2,000 characters an event may carry. The promise of the
module: a known kind with its required params renders to one clean line, within the
budget when the shortening rules can make it fit and otherwise with its true segment
count (what ``segments`` says of the text sent); a missing or blank required param is a
``ValidationFailed`` naming it; nothing else is ever raised. Unaccented Vietnamese is
GSM-7 through and through.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.domain.sms_text import is_gsm7, segments
from gateway.errors import ValidationFailed
from gateway.settings import DEFAULT_TEMPLATES_DIR
from gateway.texts.sms import (
    KINDS,
    LINK_SMS_PARAMS,
    NO_DOSSIER_PARAMS,
    REQUIRED_PARAMS,
    RenderedSms,
    _clean,
    render_sms,
)
from gateway.texts.templates import Texts

_FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
TEXTS = Texts(DEFAULT_TEMPLATES_DIR)
SMS_KINDS = (*KINDS, *LINK_SMS_PARAMS, *NO_DOSSIER_PARAMS)
_REQUIRED = {**REQUIRED_PARAMS, **LINK_SMS_PARAMS, **NO_DOSSIER_PARAMS}
_MAX_TEXT = 2000  # what gateway.domain.events lets a text field carry

_VIETNAMESE = (
    string.ascii_letters
    + string.digits
    + " ,.;:-/()"
    + "ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
    + "ĂÂĐÊÔƠƯÀÁẢÃẠẰẮẲẴẶẦẤẨẪẬÈÉẺẼẸỀẾỂỄỆÌÍỈĨỊÒÓỎÕỌỒỐỔỖỘỜỚỞỠỢÙÚỦŨỤỪỨỬỮỰỲÝỶỸỴ"
    + "“”‘’–—…•°₫\u00a0"
)
_HOSTILE_TOKENS = [
    "Ủy ban nhân dân",
    "Văn phòng đăng ký đất đai",
    "Nguyễn Thị Ngọc Ánh",
    "😀",
    "👨‍👩‍👧",
    "🇻🇳",
    "\u0301",
    "\u0323\u0302",  # combining marks, even on nothing
    "\u200b",
    "\u202e",
    "\ufeff",
    "\n",
    "\t",
    "  ",
    "{{ hotline }}",
    "{% if %}",
    "€[]{}~^|\\",
    "中文",
    "العربية",
    "Ω" * 30,
    "x" * 300,
    ".",
    ";",
    "…",
]
# Text that says something (not only spaces and stops, which count as missing).
vietnamese = st.text(_VIETNAMESE, min_size=1, max_size=400).filter(
    lambda text: _clean(text, free_text=True) is not None
)
hostile = st.one_of(
    st.text(min_size=1, max_size=300),
    st.lists(st.sampled_from(_HOSTILE_TOKENS), min_size=1, max_size=60).map("".join),
    # As long as an event allows: a few random characters repeated (cheap to generate).
    st.text(min_size=1, max_size=20).map(lambda seed: (seed * _MAX_TEXT)[:_MAX_TEXT]),
    st.just("a" * _MAX_TEXT),  # one word
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
).map(lambda moment: moment.astimezone(timezone(timedelta(hours=7))).isoformat())
codes = st.sampled_from(
    ["000.00.12.H19-240401-0001", "000.17.22.H56-210531-00012", "A01.B2.0C.G09-991231-0000"]
)


def _params(text: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Params of any kind: typed facts as the notices carry them, free text from ``text``."""
    optional_text = st.one_of(st.none(), text)
    return st.fixed_dictionaries(
        {
            "dossier_code": codes,
            "received_at": moments,
            "due_at": moments,
            "new_due_at": moments,
            "reason": text,
            "documents": st.lists(text, min_size=1, max_size=5),
            "amount": st.one_of(st.integers(0, 10**15), st.just(1e20)),
            "report_number": st.sampled_from(["PA-2024-000123", "PA-2099-999999"]),
            "status_note": text,
            "otp_code": st.text(string.digits, min_size=6, max_size=6),
            "link": st.text(
                string.ascii_letters + string.digits + "-_", min_size=20, max_size=60
            ).map(lambda token: f"https://dvc.dongnai.gov.vn/l/{token}"),
        },
        optional={
            "procedure_name": optional_text,
            "agency_name": optional_text,
            "applicant_name": optional_text,
            "pickup": optional_text,
            "delivery": st.sampled_from(["post", "online", None]),
            "old_due_at": moments,
            "expected_at": moments,
            "finished_at": moments,
            "minutes": st.integers(1, 60),
            "hotline": st.sampled_from(["0251.1022", "1022", "", "0251 3822 123 máy lẻ 99"]),
            "oa_name": st.one_of(st.none(), text),
        },
    )


_EXTREME: dict[str, Any] = {
    "dossier_code": "000.00.12.H19-240401-0001",
    "received_at": "2024-04-01T08:15:00+07:00",
    "due_at": "2024-04-12T17:00:00+07:00",
    "reason": "😀" * _MAX_TEXT,
    "documents": ["\u0301" * _MAX_TEXT, "Giấy chứng nhận " * 120],
    "applicant_name": "x" * _MAX_TEXT,
    "agency_name": "Ủy ban nhân dân " * 120,
    "oa_name": "👨‍👩‍👧" * 300,
}


def _render(kind: str, params: Mapping[str, Any], accents: bool, budget: int) -> RenderedSms:
    return render_sms(TEXTS, kind, params, accents=accents, budget=budget, zone=ZONE)


def _assert_honest(rendered: RenderedSms, kind: str, accents: bool, budget: int) -> None:
    text = rendered.text
    assert rendered.kind == kind
    assert text and text == text.strip() and "\n" not in text
    count = segments(text)
    # Within budget, or the true cost of the text that goes out: the caller decides.
    assert (rendered.segments, rendered.encoding, rendered.characters) == (
        count.segments,
        count.encoding,
        count.characters,
    )
    if not accents:
        assert rendered.encoding == ("GSM-7" if is_gsm7(text) else "UCS-2")


@settings(_FUZZ, max_examples=60)
@given(
    kind=st.sampled_from(SMS_KINDS),
    params=_params(hostile),
    accents=st.booleans(),
    budget=st.integers(1, 8),
)
@example(kind="supplement", params=_EXTREME, accents=True, budget=1)
@example(kind="refusal", params=_EXTREME, accents=False, budget=1)
@example(
    kind="supplement",
    params={**_EXTREME, "documents": ["\r"], "reason": "."},
    accents=False,
    budget=1,
)
def test_any_text_renders_within_budget_or_says_its_true_cost(
    kind: str, params: dict[str, Any], accents: bool, budget: int
) -> None:
    try:
        rendered = _render(kind, params, accents, budget)
    except ValidationFailed as exc:
        # Hostile text may say nothing at all ("\r", "."): then a required param is
        # missing, and the refusal names exactly such params.
        blank = {
            f"params.{name}"
            for name in _REQUIRED[kind]
            if not _clean(params.get(name), free_text=True)
        }
        assert blank and {error.field for error in exc.errors} <= blank, (exc.errors, blank)
        return
    _assert_honest(rendered, kind, accents, budget)


@settings(_FUZZ, max_examples=60)
@given(kind=st.sampled_from(SMS_KINDS), params=_params(vietnamese), budget=st.integers(1, 6))
def test_unaccented_vietnamese_is_gsm7(kind: str, params: dict[str, Any], budget: int) -> None:
    rendered = _render(kind, params, False, budget)
    _assert_honest(rendered, kind, False, budget)
    assert rendered.encoding == "GSM-7" and is_gsm7(rendered.text), rendered.text


_BLANK = st.sampled_from([None, "", " ", "\t\n", "\u00a0\u3000", [], ["", " "]])


@_FUZZ
@given(
    kind=st.sampled_from([kind for kind in SMS_KINDS if _REQUIRED[kind]]),
    params=_params(hostile),
    blank=_BLANK,
    data=st.data(),
)
@example(kind="otp", params={"otp_code": " "}, blank=" ", data=None)
def test_a_missing_required_param_is_refused_naming_it(
    kind: str, params: dict[str, Any], blank: object, data: st.DataObject | None
) -> None:
    required = _REQUIRED[kind]
    name = data.draw(st.sampled_from(required)) if data is not None else required[0]
    params = {**params, name: blank}
    with pytest.raises(ValidationFailed) as refused:
        _render(kind, params, accents=False, budget=2)
    assert f"params.{name}" in [error.field for error in refused.value.errors]


@settings(_FUZZ, max_examples=50)
@given(kind=st.text(max_size=30).filter(lambda kind: kind not in SMS_KINDS))
@example(kind="../sms/otp")
@example(kind="rating_request")  # Zalo only: no SMS text
def test_an_unknown_kind_is_refused_naming_the_kind(kind: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        _render(kind, {"dossier_code": "000.00.12.H19-240401-0001"}, accents=True, budget=4)
    assert [error.field for error in refused.value.errors] == ["kind"]
