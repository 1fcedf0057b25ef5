"""The hotline (``CHAT_HOTLINE``) and the OA's name (``OA_NAME``) in every citizen text,
within the SMS budgets; and no text tells a citizen a pause is "waiting for another agency".

Đồng Nai's hotline is 0251.1022, not 1022 (issue 11): every template is rendered with that
number and a province's own OA name, and must show them and never a bare "1022".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.ports import DossierFacts, NoticeFacts, ReportFacts
from gateway.domain.sms_text import is_gsm7, unaccent
from gateway.errors import ConfigError
from gateway.http.app import TEXTS, create_app
from gateway.processes import jobs
from gateway.settings import DEFAULT_TEMPLATES_DIR, Settings
from gateway.texts.sms import KINDS, ZALO_ONLY_PARAMS, render_sms
from gateway.texts.templates import Texts, citizen_globals
from gateway.texts.zalo import render_oa
from tests.helpers import SOURCES
from tests.texts.test_sms import AGENCIES, extreme

HOTLINE = "0251.1022"
OA_NAME = "Trung tâm Phục vụ hành chính công tỉnh Đồng Nai"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
CODE = "000.00.12.H19-240401-0001"
# Texts read by citizens (SMS, OA, bot, web pages); console/, api/ and audit/ are staff's.
STAFF_ONLY = ("console", "api", "audit")
CITIZEN_FILES = sorted(
    path
    for path in DEFAULT_TEMPLATES_DIR.rglob("*")
    if path.is_file()
    and path.relative_to(DEFAULT_TEMPLATES_DIR).parts[0] not in STAFF_ONLY
    and path.suffix in (".j2", ".html", ".txt", ".toml")
)
# Plain-text templates the gateway's ``Texts`` renders for citizens.
RENDERED = sorted(
    path.relative_to(DEFAULT_TEMPLATES_DIR).as_posix()
    for folder in ("sms", "oa", "bot")
    for path in (DEFAULT_TEMPLATES_DIR / folder).glob("*.txt.j2")
)

WHEN = datetime(2024, 4, 12, 2, 0, tzinfo=UTC)
DOSSIER = DossierFacts(
    code=CODE,
    procedure_name="Cấp giấy phép xây dựng",
    agency_code="000.00.12.H19",
    agency_name="Sở Xây dựng",
    state="paused",
    received_at=WHEN,
    due_at=WHEN,
    finished_at=None,
    finished_by_name=None,
    phone_e164="+84912345678",
    last_step="dossier.paused",
    last_step_at=WHEN,
    notices=(NoticeFacts("receipt", "sms", "delivered", WHEN),),
)
# A value for every name the citizen templates use; a name missing here gets "mẫu".
SAMPLE: dict[str, Any] = {
    "zone": ZONE,
    "dossier": DOSSIER,
    "report": ReportFacts(1, "PA-2024-000123", CODE, "received", WHEN),
    "code": CODE,
    "dossier_code": CODE,
    "report_number": "PA-2024-000123",
    "purpose": "lookup",
    "command": "human",
    "number": None,
    "labels": ["Tra cứu hồ sơ", "Gặp cán bộ tổng đài"],
    "lead": "welcome",
    "left": 2,
    "score": 5,
    "kind": "false_closure",
    "step": "proof",
    "phone_tail": "78",
    "amount": 150_000,
    "documents": ["Bản sao Căn cước công dân"],
    "documents_count": 1,
    "received_at": "2024-04-01T08:15:00+07:00",
    "due_at": "2024-04-12T17:00:00+07:00",
    "new_due_at": "2024-04-19T17:00:00+07:00",
    "old_due_at": None,
    "finished_at": "2024-04-12T17:00:00+07:00",
    "expected_at": None,
    "delivery": None,
    "pickup": None,
}


def bare_hotline(text: str) -> list[str]:
    """Every "1022" in ``text`` that is not part of the configured number."""
    return re.findall(r".{0,20}1022.{0,5}", text.replace(HOTLINE, "<hotline>"))


@pytest.fixture(scope="module")
def texts() -> Texts:
    return Texts(DEFAULT_TEMPLATES_DIR, hotline=HOTLINE, oa_name=OA_NAME)


def context_for(texts: Texts, name: str) -> dict[str, Any]:
    from jinja2 import meta

    source = (DEFAULT_TEMPLATES_DIR / name).read_text(encoding="utf-8")
    names = meta.find_undeclared_variables(texts.env.parse(source))
    return {key: SAMPLE.get(key, "mẫu") for key in names - {"hotline", "oa_name"}}


# -- no template names a number or an OA of its own -----------------------------------


def test_there_are_citizen_templates_to_check() -> None:
    assert len(RENDERED) > 40
    assert any(p.parts[-2] == "pages" for p in CITIZEN_FILES)


@pytest.mark.parametrize("path", CITIZEN_FILES, ids=lambda p: p.name)
def test_no_citizen_template_hard_codes_the_hotline(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert "1022" not in source, f"{path}: use {{{{ hotline }}}} (CHAT_HOTLINE)"
    assert "Zalo OA Trung tâm" not in source, f"{path}: use {{{{ oa_name }}}} (OA_NAME)"


# -- every citizen text, rendered with the province's values --------------------------


@pytest.mark.parametrize("name", RENDERED)
def test_every_citizen_text_shows_the_configured_hotline_and_oa_name(
    texts: Texts, name: str
) -> None:
    source = (DEFAULT_TEMPLATES_DIR / name).read_text(encoding="utf-8")
    text = texts.render(name, **context_for(texts, name))
    assert text.strip()
    assert bare_hotline(text) == []
    if "hotline" in source:
        assert HOTLINE in text
    if "oa_name" in source:
        assert OA_NAME in text


def test_the_hotline_and_oa_name_are_in_the_texts_that_matter(texts: Texts) -> None:
    """Not only "where a template happens to use them": the ones a citizen acts on."""
    sms_tail = f"Hỏi đáp: {HOTLINE} hoặc Zalo OA {OA_NAME}."
    for kind in KINDS:
        sms = render_sms(texts, kind, extreme(kind), accents=True, budget=99, zone=ZONE)
        assert sms.text.endswith(sms_tail), sms.text
    welcome = texts.render("bot/welcome.txt.j2")
    assert f"trang Zalo {OA_NAME}" in welcome and f"tổng đài {HOTLINE}" in welcome
    for name in ("locked", "too_many_codes", "handoff_opened", "handoff_forwarded"):
        assert HOTLINE in texts.render(f"bot/{name}.txt.j2")
    check = render_oa(texts, "result_check", {"dossier_code": CODE}, ZONE)
    assert f"Tổng đài {HOTLINE}" in check.text


def test_notices_on_zalo_use_the_renderers_values(texts: Texts) -> None:
    for kind in (*KINDS, *ZALO_ONLY_PARAMS):
        params = extreme(kind) if kind in KINDS else {"dossier_code": CODE}
        text = render_oa(texts, kind, params, ZONE).text
        assert bare_hotline(text) == [], kind


def test_a_notices_own_values_still_win(texts: Texts) -> None:
    params = {"dossier_code": CODE, "hotline": "0251 3822 123", "oa_name": "HCC Đồng Nai"}
    sms = render_sms(texts, "withdrawal", params, accents=True, budget=9, zone=ZONE)
    assert sms.text.endswith("Hỏi đáp: 0251 3822 123 hoặc Zalo OA HCC Đồng Nai.")
    empty = {"dossier_code": CODE, "hotline": None, "oa_name": ""}
    sms = render_sms(texts, "withdrawal", empty, accents=True, budget=9, zone=ZONE)
    assert sms.text.endswith(f"Hỏi đáp: {HOTLINE} hoặc Zalo OA {OA_NAME}.")


# -- the SMS budgets hold ---------------------------------------------------------------


@pytest.mark.parametrize("agency", AGENCIES, ids=("abbreviable", "plain"))
@pytest.mark.parametrize(("accents", "budget"), [(False, 2), (True, 4)], ids=("gsm", "ucs2"))
@pytest.mark.parametrize("kind", KINDS)
def test_every_sms_fits_its_budget_with_the_longer_hotline(
    texts: Texts, kind: str, accents: bool, budget: int, agency: str
) -> None:
    sms = render_sms(texts, kind, extreme(kind, agency), accents=accents, budget=budget, zone=ZONE)
    assert sms.segments <= budget, sms.text
    hotline_line = f"Hỏi đáp: {HOTLINE}" if accents else f"Hoi dap: {HOTLINE}"
    assert hotline_line in sms.text and bare_hotline(sms.text) == []
    assert accents or is_gsm7(sms.text)
    oa = OA_NAME if accents else unaccent(OA_NAME)
    # The OA's name goes only as a last resort, and then the hotline ends the message.
    if "drop_oa_name" in sms.shortened_by:
        assert sms.shortened_by[-1] == "drop_oa_name" and sms.text.endswith(f"{HOTLINE}.")
        assert oa not in sms.text
    else:
        assert sms.text.endswith(f"Zalo OA {oa}.")


@pytest.mark.parametrize("kind", KINDS)
def test_the_longest_allowed_values_still_fit(kind: str) -> None:
    longest = Texts(DEFAULT_TEMPLATES_DIR, hotline="+84 251 3822 123 456", oa_name="Đ" * 60)
    for accents, budget in ((False, 2), (True, 4)):
        sms = render_sms(longest, kind, extreme(kind), accents=accents, budget=budget, zone=ZONE)
        assert sms.segments <= budget, sms.text
        assert "+84 251 3822 123 456" in sms.text


def test_the_default_texts_keep_the_oa_name() -> None:
    """With the shipped defaults, no SMS needs the last-resort rule."""
    default = Texts(DEFAULT_TEMPLATES_DIR)
    for kind in KINDS:
        for accents, budget in ((False, 2), (True, 4)):
            sms = render_sms(
                default, kind, extreme(kind), accents=accents, budget=budget, zone=ZONE
            )
            assert "drop_oa_name" not in sms.shortened_by, sms.text


# -- the settings reach the renderers ---------------------------------------------------


def settings_with(tmp_path: Path, **env: str) -> Settings:
    base = {"EVENT_SOURCES": ",".join(f"{k}:{v}" for k, v in SOURCES.items())}
    return Settings.from_mapping({**base, **env}, workdir=tmp_path)


def test_settings_default_to_todays_texts(tmp_path: Path) -> None:
    chat = settings_with(tmp_path).chat
    assert (chat.hotline, chat.oa_name) == ("1022", "Trung tâm Phục vụ hành chính công")


def test_the_gateway_and_its_workers_render_with_the_settings(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, CHAT_HOTLINE=HOTLINE, OA_NAME=f"  {OA_NAME} ")
    assert (settings.chat.hotline, settings.chat.oa_name) == (HOTLINE, OA_NAME)
    # What web pages add to their own Jinja2 environment.
    assert citizen_globals(settings) == {"hotline": HOTLINE, "oa_name": OA_NAME}
    params = {"dossier_code": CODE}
    for built in (create_app(settings)[TEXTS], jobs._texts(settings)):
        sms = render_sms(built, "withdrawal", params, accents=False, budget=2, zone=ZONE)
        assert sms.text.endswith(f"Hoi dap: {HOTLINE} hoac Zalo OA {unaccent(OA_NAME)}.")
        assert HOTLINE in built.render("bot/proof_wrong.txt.j2", code=CODE, left=1)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CHAT_HOTLINE", "gọi 1022"),
        ("CHAT_HOTLINE", "1022."),
        ("CHAT_HOTLINE", "0251..1022"),
        ("CHAT_HOTLINE", "1" * 22),
        ("OA_NAME", "Đ" * 61),
    ],
)
def test_a_hotline_or_oa_name_that_would_break_the_texts_stops_the_start(
    tmp_path: Path, name: str, value: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_with(tmp_path, **{name: value})
    assert name in str(raised.value)


@pytest.mark.parametrize("value", ["1022", "0251.1022", "0251 3822 123", "+84-251-1022"])
def test_hotlines_as_provinces_write_them_are_accepted(tmp_path: Path, value: str) -> None:
    assert settings_with(tmp_path, CHAT_HOTLINE=value).chat.hotline == value


# -- a pause is not "waiting for another agency" ----------------------------------------

# The province's rule (docs/one-stop-shop.md): a dossier must not be paused while
# another agency's opinion is awaited; the citizen must never be told that this is why
# it stopped.
WAITING_FOR_ANOTHER_AGENCY = re.compile(
    r"(tạm dừng|dừng xử lý|ngừng|paused)[^\n]*(cơ quan khác|chờ ý kiến|cơ quan liên quan)",
    re.IGNORECASE,
)


@pytest.mark.parametrize("path", CITIZEN_FILES, ids=lambda p: p.name)
def test_no_citizen_text_explains_a_pause_by_another_agency(path: Path) -> None:
    assert not WAITING_FOR_ANOTHER_AGENCY.search(path.read_text(encoding="utf-8"))


def test_a_paused_dossier_is_shown_as_paused_only(texts: Texts) -> None:
    text = texts.render("bot/lookup.txt.j2", dossier=DOSSIER, zone=ZONE)
    assert "- Tình trạng: tạm dừng giải quyết" in text
    assert "- Bước gần nhất: tạm dừng giải quyết" in text
    for words in ("cơ quan khác", "chờ ý kiến", "cơ quan liên quan"):
        assert words not in text
