"""Tests for gateway.texts.sms: SMS templates of notices, shortening, the preview command."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import pytest

from gateway.domain.notices import NOTICE_KINDS
from gateway.domain.sms_text import is_gsm7, segments, unaccent
from gateway.errors import ValidationFailed
from gateway.settings import DEFAULT_TEMPLATES_DIR
from gateway.texts.sms import (
    DEFAULT_HOTLINE,
    DEFAULT_OA_NAME,
    KINDS,
    LINK_SMS_PARAMS,
    NO_DOSSIER_PARAMS,
    REQUIRED_PARAMS,
    RenderedSms,
    abbreviate,
    render_sms,
)
from gateway.texts.templates import Texts

ROOT = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
CODE = "000.00.12.H19-240401-0001"
RULES = (
    "abbreviate",
    "drop_procedure_name",
    "drop_applicant_name",
    "drop_agency_name",
    "truncate",
    "drop_oa_name",
)

# Abbreviates to "CN VPĐKĐĐ huyện Long Thành, Sở TN&MT Đồng Nai"; the other has no
# well-known words, so only dropping it helps.
AGENCIES = (
    "Chi nhánh Văn phòng đăng ký đất đai huyện Long Thành, Sở Tài nguyên và Môi trường Đồng Nai",
    "Ban Quản lý dự án đầu tư xây dựng khu vực huyện Long Thành và Nhơn Trạch, tỉnh Đồng Nai",
)
REASON = (
    "Hồ sơ chưa đáp ứng điều kiện do thửa đất số 125, tờ bản đồ số 34 xã Phước Thiền nằm trong "
    "quy hoạch đất giao thông theo Quyết định số 5678/QĐ-UBND ngày 15/3/2024 của Ủy ban nhân dân "
    "tỉnh Đồng Nai; đề nghị ông/bà liên hệ Văn phòng đăng ký đất đai huyện để được hướng dẫn "
    "điều chỉnh hồ sơ theo quy định hiện hành."
)
DOCUMENTS = [
    "Bản sao Căn cước công dân của người đề nghị và của vợ hoặc chồng",
    "Giấy chứng nhận quyền sử dụng đất bản gốc đã cấp",
    "Sơ đồ thửa đất có xác nhận của Ủy ban nhân dân xã Phước Thiền",
    "Văn bản thỏa thuận phân chia di sản thừa kế có công chứng",
    "Tờ khai lệ phí trước bạ nhà, đất theo mẫu 01/LPTB",
    "Tờ khai thuế thu nhập cá nhân đối với chuyển nhượng bất động sản",
    "Bản vẽ hiện trạng nhà ở do đơn vị đo đạc có tư cách pháp nhân lập",
    "Giấy ủy quyền có chứng thực nếu người nộp không phải chủ hồ sơ",
]


def extreme(kind: str, agency: str = AGENCIES[0]) -> dict[str, Any]:
    """The longest realistic params for ``kind``."""
    params: dict[str, Any] = {
        "dossier_code": CODE,
        "procedure_name": "Cấp đổi giấy chứng nhận quyền sử dụng đất, quyền sở hữu nhà ở và "
        "tài sản khác gắn liền với đất",
        "agency_name": agency,
        "applicant_name": "Công ty TNHH Thương mại Dịch vụ Xây dựng Phương Nam Đồng Nai",
        "received_at": "2024-04-01T08:15:00+07:00",
        "due_at": "2024-04-12T17:00:00+07:00",
        "reason": REASON,
    }
    if kind == "supplement":
        params["documents"] = DOCUMENTS
    elif kind == "fees":
        params["amount"] = 12_500_000
    elif kind == "apology":
        params["old_due_at"] = "2024-04-12T17:00:00+07:00"
        params["new_due_at"] = "2024-04-26T17:00:00+07:00"
    elif kind == "invitation":
        params["pickup"] = (
            "Bộ phận một cửa Ủy ban nhân dân huyện Long Thành, số 01 đường Lê Duẩn, "
            "khu phố Phước Hải, thị trấn Long Thành"
        )
    elif kind.startswith("report_"):
        params = {
            "report_number": "PAKN-2024-000123",
            "dossier_code": CODE,
            "status_note": REASON,
            "expected_at": "2024-04-20T17:00:00+07:00",
        }
    return params


@pytest.fixture(scope="module")
def texts() -> Texts:
    return Texts(DEFAULT_TEMPLATES_DIR)


def render(texts: Texts, kind: str, params: dict[str, Any], **options: Any) -> RenderedSms:
    options = {"accents": True, "budget": 10, "zone": ZONE, **options}
    return render_sms(texts, kind, params, **options)


# -- the kinds and their files ---------------------------------------------------------


def test_every_notice_kind_and_report_status_has_a_template() -> None:
    reports = {"report_received", "report_in_progress", "report_resolved", "report_rejected"}
    assert set(KINDS) == set(NOTICE_KINDS) | reports
    files = {p.name.removesuffix(".txt.j2") for p in (DEFAULT_TEMPLATES_DIR / "sms").glob("*.j2")}
    assert files == set(KINDS) | set(LINK_SMS_PARAMS) | set(NO_DOSSIER_PARAMS)


@pytest.mark.parametrize("kind", KINDS)
def test_templates_are_nfc_and_read_hotline_and_oa_from_variables(kind: str) -> None:
    source = (DEFAULT_TEMPLATES_DIR / "sms" / f"{kind}.txt.j2").read_text(encoding="utf-8")
    assert unicodedata.is_normalized("NFC", source)
    assert "{{ hotline }}" in source and "{{ oa_name }}" in source
    assert DEFAULT_HOTLINE not in source


# -- extreme inputs within the budget --------------------------------------------------


def _assert_clean(text: str) -> None:
    for artefact in ("{{", "}}", "{%", "None", "  ", " ,", " :", " ;", "….", "....", "\n"):
        assert artefact not in text, f"{artefact!r} in {text!r}"
    assert not re.search(r" \.(?!\.\.)", text), text  # " ..." is an ellipsis item
    assert text == text.strip()


def _assert_cut_at_word_boundaries(text: str, params: dict[str, Any], accents: bool) -> None:
    """Every truncated free text is a prefix of its (abbreviated) original, ending a word."""
    ellipsis = "…" if accents else "..."
    sources = [params.get("reason"), params.get("status_note")]
    if params.get("documents"):
        sources.append("; ".join(params["documents"]))
    for source in filter(None, sources):
        original = abbreviate(" ".join(source.split()))
        original = original if accents else unaccent(original)
        start = text.find(original[:20])
        if start < 0 or original.rstrip(".") in text:
            continue  # dropped, or kept whole
        end = text.index(ellipsis, start)
        fragment = text[start:end]
        assert original.startswith(fragment), (fragment, original)
        assert not fragment[-1].isalnum() or not original[len(fragment)].isalnum(), fragment


@pytest.mark.parametrize("agency", AGENCIES, ids=("abbreviable", "plain"))
@pytest.mark.parametrize(("accents", "budget"), [(False, 2), (True, 4)], ids=("gsm", "ucs2"))
@pytest.mark.parametrize("kind", KINDS)
def test_extreme_inputs_fit_the_budget(
    texts: Texts, kind: str, accents: bool, budget: int, agency: str
) -> None:
    params = extreme(kind, agency)
    sms = render_sms(texts, kind, params, accents=accents, budget=budget, zone=ZONE)

    assert sms.kind == kind
    assert sms.segments <= budget, sms.text
    count = segments(sms.text)
    assert (sms.segments, sms.encoding, sms.characters) == (
        count.segments,
        count.encoding,
        count.characters,
    )
    assert CODE in sms.text
    assert f"Hỏi đáp: {DEFAULT_HOTLINE}" in sms.text or f"Hoi dap: {DEFAULT_HOTLINE}" in sms.text
    oa = DEFAULT_OA_NAME if accents else unaccent(DEFAULT_OA_NAME)
    assert f"Zalo OA {oa}." in sms.text
    if accents:
        assert sms.encoding == "UCS-2"
    else:
        assert sms.encoding == "GSM-7" and is_gsm7(sms.text)
    _assert_clean(sms.text)

    # Shortening is recorded, in rule order, and only when something was shortened.
    assert list(sms.shortened_by) == [r for r in RULES if r in sms.shortened_by]
    full = render_sms(texts, kind, params, accents=accents, budget=99, zone=ZONE)
    assert full.shortened_by == ()
    if full.segments <= budget:
        assert sms == full
    else:
        assert sms.shortened_by and len(sms.text) < len(full.text)
    if "truncate" in sms.shortened_by:
        _assert_cut_at_word_boundaries(sms.text, params, accents)


def test_truncation_cuts_the_reason_at_a_word_boundary(texts: Texts) -> None:
    params = extreme("refusal")
    sms = render(texts, "refusal", params, budget=3)
    assert sms.shortened_by[-1] == "truncate"
    fragment = sms.text.split("Lý do: ")[1].split("…")[0]
    original = abbreviate(REASON)
    assert len(fragment.split()) >= 6
    assert original.startswith(fragment) and original[len(fragment)] in " ,;"

    plain = render(texts, "refusal", params, accents=False, budget=2)
    assert plain.shortened_by[-1] == "truncate"
    assert plain.text.split("Ly do: ")[1].split("...")[0] in unaccent(original)


def test_an_optional_reason_is_dropped_before_documents_are_cut(texts: Texts) -> None:
    sms = render(texts, "supplement", extreme("supplement"), accents=False, budget=2)
    assert "Ly do" not in sms.text
    assert (
        "can bo sung 8 giay to: Ban sao CCCD cua nguoi de nghi va cua vo hoac chong; " in sms.text
    )
    assert "; So do thua dat co xac nhan cua UBND xa Phuoc Thien; ... Hoi dap: 1022" in sms.text


def test_a_document_list_is_cut_within_its_first_document_only_if_nothing_else_fits(
    texts: Texts,
) -> None:
    params = {"dossier_code": CODE, "documents": [REASON, "Bản sao CCCD"]}
    sms = render(texts, "supplement", params, budget=3)
    assert sms.segments <= 3 and sms.shortened_by == ("abbreviate", "truncate")
    assert "cần bổ sung 2 giấy tờ: Hồ sơ chưa đáp ứng điều kiện" in sms.text
    assert "… Hỏi đáp" in sms.text and "CCCD" not in sms.text


def test_the_rules_apply_in_order_and_stop_when_it_fits(texts: Texts) -> None:
    params = extreme("invitation")
    as_is = render(texts, "invitation", params, accents=False, budget=3)
    assert (as_is.segments, as_is.shortened_by) == (3, ())

    two = render(texts, "invitation", params, accents=False, budget=2)
    assert (two.segments, two.shortened_by) == (2, ("abbreviate", "drop_procedure_name"))
    assert "cua ong/ba Cong ty TNHH" in two.text
    assert "den nhan tai BPMC UBND huyen Long Thanh, so 01 duong Le Duan" in two.text

    # Dropping the agency changes nothing here (the pickup place is given): not recorded;
    # the OA's name goes last, leaving the hotline.
    one = render(texts, "invitation", params, accents=False, budget=1)
    assert one.segments == 2
    assert one.shortened_by == (
        "abbreviate",
        "drop_procedure_name",
        "drop_applicant_name",
        "drop_oa_name",
    )
    assert one.text.endswith("Hoi dap: 1022.")


def test_what_cannot_fit_comes_back_with_its_true_count(texts: Texts) -> None:
    sms = render(texts, "apology", extreme("apology"), budget=1)
    assert sms.segments > 1
    assert sms.shortened_by == RULES
    assert sms.segments == segments(sms.text).segments


# -- what the messages say -------------------------------------------------------------


def test_receipt_gives_dates_in_the_gateway_zone(texts: Texts) -> None:
    params = {
        "dossier_code": CODE,
        "received_at": "2024-04-01T01:15:00+00:00",
        "due_at": "2024-04-12T10:00:00+00:00",
        "agency_name": "UBND huyện Long Thành",
    }
    assert render(texts, "receipt", params).text == (
        f"Hồ sơ {CODE} của ông/bà đã được UBND huyện Long Thành tiếp nhận ngày 01/04/2024. "
        "Hẹn trả kết quả lúc 17:00 ngày 12/04/2024. "
        "Hỏi đáp: 1022 hoặc Zalo OA Trung tâm Phục vụ hành chính công."
    )


def test_supplement_lists_every_document(texts: Texts) -> None:
    sms = render(texts, "supplement", extreme("supplement"), budget=99)
    assert "cần bổ sung 8 giấy tờ: " in sms.text
    assert all(doc in sms.text for doc in DOCUMENTS)
    assert "; ".join(DOCUMENTS) + ". Lý do: " in sms.text


def test_fees_are_written_the_vietnamese_way(texts: Texts) -> None:
    sms = render(texts, "fees", {"dossier_code": CODE, "amount": 1_500_000, "reason": None})
    assert "cần nộp 1.500.000 đồng phí, lệ phí để được tiếp tục giải quyết." in sms.text
    sms = render(texts, "fees", {"dossier_code": CODE, "amount": 150000.0, "reason": "Lệ phí."})
    assert "150.000 đồng phí, lệ phí (Lệ phí) để" in sms.text


def test_apology_gives_reason_old_and_new_date(texts: Texts) -> None:
    params = {**extreme("apology"), "reason": "Cần xác minh nguồn gốc đất"}
    sms = render(texts, "apology", params, budget=99)
    assert sms.text.startswith(f"{AGENCIES[0]} xin lỗi ông/bà ")
    assert "theo hẹn ngày 12/04/2024. Lý do: Cần xác minh nguồn gốc đất." in sms.text
    assert "Xin hẹn lại trả kết quả lúc 17:00 ngày 26/04/2024." in sms.text
    without_old = render(texts, "apology", {**params, "old_due_at": None, "agency_name": None})
    assert without_old.text.startswith("Cơ quan giải quyết xin lỗi")
    assert "theo hẹn. Lý do:" in without_old.text


def test_auto_apology_says_late_apologises_for_the_agency_and_is_being_handled(
    texts: Texts,
) -> None:
    sms = render(texts, "auto_apology", extreme("auto_apology"), budget=99)
    assert "đã quá hạn trả kết quả (hẹn ngày 12/04/2024)" in sms.text
    assert f"Thay mặt {AGENCIES[0]}, chúng tôi xin lỗi ông/bà." in sms.text
    assert "Hồ sơ đang được tiếp tục giải quyết." in sms.text


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"pickup": "Bộ phận một cửa UBND xã An Phước."}, "Mời ông/bà đến nhận tại Bộ phận"),
        ({"delivery": "post"}, "Kết quả sẽ được gửi đến ông/bà qua dịch vụ bưu chính."),
        ({"delivery": "online"}, "Kết quả điện tử đã được gửi vào tài khoản của ông/bà"),
        ({"agency_name": "UBND xã An Phước"}, "Mời ông/bà đến nhận tại UBND xã An Phước."),
        ({}, "Mời ông/bà đến nhận tại nơi đã nộp hồ sơ."),
    ],
)
def test_invitation_says_where_or_how(texts: Texts, data: dict[str, Any], expected: str) -> None:
    sms = render(texts, "invitation", {"dossier_code": CODE, **data})
    assert f"Hồ sơ {CODE} của ông/bà đã có kết quả. {expected}" in sms.text
    assert "UBND xã An Phước.." not in sms.text


def test_hotline_and_oa_name_can_come_with_the_params(texts: Texts) -> None:
    params = {"dossier_code": CODE, "hotline": "0251 3822 123", "oa_name": "HCC Đồng Nai"}
    sms = render(texts, "withdrawal", params)
    assert sms.text.endswith("Hỏi đáp: 0251 3822 123 hoặc Zalo OA HCC Đồng Nai.")


def test_params_are_tidied(texts: Texts) -> None:
    params = {
        "dossier_code": CODE,
        "applicant_name": "  Nguyễn\tVăn\n An ",
        "procedure_name": "",
        "reason": "Thiếu  chữ ký;",
    }
    sms = render(texts, "refusal", params)
    assert sms.text.startswith(f"Hồ sơ {CODE} của ông/bà Nguyễn Văn An không được tiếp nhận")
    assert "Lý do: Thiếu chữ ký. Hỏi đáp" in sms.text


# -- abbreviations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ủy ban nhân dân huyện Long Thành", "UBND huyện Long Thành"),
        ("Uỷ ban nhân dân xã", "UBND xã"),
        ("ỦY BAN NHÂN DÂN TỈNH ĐỒNG NAI", "UBND TỈNH ĐỒNG NAI"),
        ("Uy ban nhan dan tinh", "UBND tinh"),
        ("Sở Tài nguyên và Môi trường", "Sở TN&MT"),
        ("Sở Tài nguyên & Môi trường", "Sở TN&MT"),
        ("Trung tâm Hành chính công tỉnh", "TT HCC tỉnh"),
        ("Trung tâm Phục vụ hành chính công", "TT PVHCC"),
        ("Bộ phận một cửa", "BPMC"),
        ("Sở Lao động – Thương binh và Xã hội", "Sở LĐ-TB&XH"),
        ("Sở Văn hoá, Thể thao và Du lịch", "Sở VHTTDL"),
        ("Chi nhánh Văn phòng đăng ký đất đai", "CN VPĐKĐĐ"),
        ("thành phố Biên Hòa", "TP Biên Hòa"),
        ("Sở Xây dựng", "Sở Xây dựng"),
        ("Chi nhánhx", "Chi nhánhx"),
    ],
)
def test_abbreviate(text: str, expected: str) -> None:
    assert abbreviate(text) == expected


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name"), [(kind, name) for kind in KINDS for name in REQUIRED_PARAMS[kind]]
)
def test_a_missing_required_param_is_a_clear_error(texts: Texts, kind: str, name: str) -> None:
    params = extreme(kind)
    for broken in ({k: v for k, v in params.items() if k != name}, {**params, name: None}):
        with pytest.raises(ValidationFailed) as caught:
            render(texts, kind, broken)
        assert [e.field for e in caught.value.errors] == [f"params.{name}"]
        assert name in caught.value.detail and kind in caught.value.detail


@pytest.mark.parametrize("kind", KINDS)
def test_only_the_required_params_are_needed(texts: Texts, kind: str) -> None:
    params = {name: extreme(kind)[name] for name in REQUIRED_PARAMS[kind]}
    sms = render(texts, kind, params)
    assert CODE in sms.text
    _assert_clean(sms.text)


def test_an_unknown_kind_is_a_clear_error(texts: Texts) -> None:
    with pytest.raises(ValidationFailed, match="kind"):
        render(texts, "birthday", {"dossier_code": CODE})


def test_templates_stay_strict_about_unknown_variables(tmp_path: Path) -> None:
    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "withdrawal.txt.j2").write_text("Hồ sơ {{ dossier_cod }}", "utf-8")
    with pytest.raises(jinja2.UndefinedError, match="dossier_cod"):
        render(Texts(tmp_path), "withdrawal", {"dossier_code": CODE})
