"""``tthc templates``: list the notice kinds and preview their SMS texts with sample facts.

``tthc templates preview apology`` renders the kind with diacritics (judged against the
Unicode segment budget) and unaccented (judged against the GSM-7 budget), and says what
the shortening rules removed to make it fit. ``--hotline 0251.1022 --oa-name "…"``
previews with the province's ``CHAT_HOTLINE`` and ``OA_NAME`` (defaults: the gateway's).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from gateway.cli.streams import parse_or_exit_code, utf8
from gateway.errors import ValidationFailed
from gateway.settings import DEFAULT_HOTLINE, DEFAULT_OA_NAME, DEFAULT_TEMPLATES_DIR
from gateway.texts.sms import KINDS, REQUIRED_PARAMS, render_sms
from gateway.texts.templates import Texts

_PROG = "tthc templates"
_COMMON_SAMPLE: dict[str, Any] = {
    "dossier_code": "000.00.12.H19-240401-0001",
    "procedure_name": "Cấp giấy chứng nhận quyền sử dụng đất, quyền sở hữu nhà ở và tài sản "
    "khác gắn liền với đất lần đầu",
    "agency_name": "Ủy ban nhân dân xã Long Thành, tỉnh Đồng Nai",
    "applicant_name": "Tôn Nữ Hoàng Thị Ngọc Bảo Trâm",
    "received_at": "2024-04-01T08:15:00+07:00",
    "due_at": "2024-04-12T17:00:00+07:00",
}
_SAMPLES: dict[str, dict[str, Any]] = {
    "receipt": {},
    "supplement": {
        "reason": "Thành phần hồ sơ chưa đủ theo Quyết định số 1234/QĐ-UBND của Ủy ban nhân "
        "dân tỉnh Đồng Nai",
        "documents": [
            "Bản sao Căn cước công dân của người đề nghị",
            "Sơ đồ thửa đất có xác nhận của Ủy ban nhân dân xã",
            "Giấy tờ chứng minh nguồn gốc sử dụng đất",
        ],
    },
    "refusal": {
        "reason": "Thửa đất nằm trong khu vực đã có thông báo thu hồi đất theo Quyết định số "
        "5678/QĐ-UBND ngày 15/3/2024 của Ủy ban nhân dân tỉnh Đồng Nai",
    },
    "fees": {"amount": 150000, "reason": "Lệ phí cấp giấy chứng nhận"},
    "withdrawal": {},
    "apology": {
        "reason": "Cần xác minh nguồn gốc sử dụng đất với Văn phòng Đăng ký đất đai tỉnh",
        "old_due_at": "2024-04-12T17:00:00+07:00",
        "new_due_at": "2024-04-19T17:00:00+07:00",
    },
    "auto_apology": {},
    "invitation": {
        "pickup": "Bộ phận Một cửa Ủy ban nhân dân xã Long Thành, số 1 đường Lê Duẩn, xã Long "
        "Thành, tỉnh Đồng Nai",
        "delivery": None,
    },
    "report_received": {"expected_at": "2024-04-20T17:00:00+07:00"},
    "report_in_progress": {
        "status_note": "Đã chuyển Văn phòng đăng ký đất đai kiểm tra lại hồ sơ",
        "expected_at": "2024-04-20T17:00:00+07:00",
    },
    "report_resolved": {"status_note": "Hồ sơ đã được trả kết quả ngày 18/04/2024"},
    "report_rejected": {"status_note": "Nội dung phản ánh không thuộc thẩm quyền giải quyết"},
}


def sample_params(kind: str) -> dict[str, Any]:
    """Realistic, long params for previewing ``kind``."""
    extra = {"report_number": "PA-2024-000123"} if kind.startswith("report_") else {}
    return {**_COMMON_SAMPLE, **extra, **_SAMPLES[kind]}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description="SMS templates of notices")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the notice kinds that have SMS templates")
    preview = sub.add_parser("preview", help="render a kind in both forms with sample params")
    preview.add_argument("kind", choices=KINDS)
    preview.add_argument(
        "--budget", type=int, default=2, help="segments allowed unaccented (GSM-7; default 2)"
    )
    preview.add_argument(
        "--unicode-budget",
        type=int,
        default=4,
        help="segments allowed with diacritics (UCS-2; default 4)",
    )
    preview.add_argument("--params", type=Path, help="JSON object merged over the sample params")
    preview.add_argument("--templates", type=Path, default=DEFAULT_TEMPLATES_DIR)
    preview.add_argument("--zone", default="Asia/Ho_Chi_Minh", help="time zone of the dates")
    preview.add_argument(
        "--hotline", default=DEFAULT_HOTLINE, help="the number texts name (CHAT_HOTLINE)"
    )
    preview.add_argument(
        "--oa-name", default=DEFAULT_OA_NAME, help="the OA's display name (OA_NAME)"
    )
    return parser


def preview_main(argv: list[str] | None = None, stdout: TextIO | None = None) -> int:
    """Run ``tthc templates`` with ``argv`` (the words after ``templates``); the exit code."""
    args = parse_or_exit_code(_parser(), argv)
    if isinstance(args, int):
        return args
    out = stdout if stdout is not None else utf8(sys.stdout)
    if args.command == "list":
        for kind in KINDS:
            out.write(f"{kind:<20} needs {', '.join(REQUIRED_PARAMS[kind])}\n")
        return 0

    params = sample_params(args.kind)
    if args.params is not None:
        try:
            given = json.loads(args.params.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"{_PROG}: cannot read {args.params}: {exc}", file=sys.stderr)
            return 2
        if not isinstance(given, dict):
            print(f"{_PROG}: {args.params} must hold a JSON object", file=sys.stderr)
            return 2
        params.update(given)
    texts = Texts(args.templates, hotline=args.hotline, oa_name=args.oa_name)
    out.write(
        f"{args.kind}, budget {args.unicode_budget} segment(s) with accents, "
        f"{args.budget} unaccented\n"
    )
    for label, accents, budget in (
        ("with accents", True, args.unicode_budget),
        ("unaccented", False, args.budget),
    ):
        try:
            sms = render_sms(
                texts,
                args.kind,
                params,
                accents=accents,
                budget=budget,
                zone=ZoneInfo(args.zone),
            )
        except ValidationFailed as exc:
            print(f"{_PROG}: {exc.detail}", file=sys.stderr)
            return 1
        verdict = "" if sms.segments <= budget else ", OVER BUDGET"
        shortened = ", ".join(sms.shortened_by) or "nothing"
        out.write(
            f"\n{label}: {sms.encoding}, {sms.segments} segment(s), {sms.characters} "
            f"characters{verdict}; shortened by: {shortened}\n  {sms.text}\n"
        )
    return 0
