"""``tthc templates``: the kinds and the preview of their SMS texts in both forms."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli.templates import preview_main
from gateway.domain.sms_text import segments
from gateway.texts.sms import KINDS

ROOT = Path(__file__).resolve().parents[2]
CODE = "000.00.12.H19-240401-0001"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LC_ALL": "C", "PYTHONIOENCODING": ""}
    return subprocess.run(
        [sys.executable, "-m", "gateway", "templates", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        env=env,
        timeout=30,
        check=False,
    )


def test_preview_shows_both_forms_with_their_segment_counts() -> None:
    result = _cli("preview", "invitation")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("invitation, budget 4 segment(s) with accents, 2 unaccented")
    assert "with accents: UCS-2, " in out and "unaccented: GSM-7, " in out
    assert "shortened by: " in out
    assert f"  Hồ sơ {CODE} " in out and f"  Ho so {CODE} " in out
    accented, plain = (line for line in out.splitlines() if line.startswith("  "))
    assert f"{segments(accented.strip()).segments} segment(s)" in out
    assert f"unaccented: GSM-7, {segments(plain.strip()).segments} segment(s)" in out


def test_preview_takes_params_and_budget(tmp_path: Path) -> None:
    given = tmp_path / "params.json"
    given.write_text(json.dumps({"pickup": None, "delivery": "online"}), "utf-8")
    result = _cli("preview", "invitation", "--budget", "5", "--params", str(given))
    assert result.returncode == 0, result.stderr
    assert "4 segment(s) with accents, 5 unaccented" in result.stdout
    assert "trên Cổng Dịch vụ công." in result.stdout and "tren Cong Dich vu cong." in result.stdout
    assert "shortened by: nothing" in result.stdout


def test_preview_refuses_unreadable_params_and_unknown_kinds() -> None:
    out = io.StringIO()
    assert preview_main(["preview", "apology", "--params", os.devnull], stdout=out) == 2
    result = _cli("preview", "birthday")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_preview_rejects_params_without_a_required_one(tmp_path: Path) -> None:
    given = tmp_path / "params.json"
    given.write_text('{"reason": null}', "utf-8")
    result = _cli("preview", "apology", "--params", str(given))
    assert result.returncode == 1
    assert "reason" in result.stderr


def test_list_names_every_kind() -> None:
    out = io.StringIO()
    assert preview_main(["list"], stdout=out) == 0
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == list(KINDS)
    assert "apology" in lines[KINDS.index("apology")] and "new_due_at" in lines[5]


def test_tthc_templates_runs_the_preview(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli.main import main

    assert main(["templates", "preview", "apology", "--budget", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("apology, budget 4 segment(s) with accents, 3 unaccented")
    assert "Xin hẹn lại trả kết quả lúc 17:00 ngày 19/04/2024." in out


def test_the_accented_form_is_judged_against_the_unicode_budget() -> None:
    """A UCS-2 text of 3 segments fits the default Unicode budget of 4; it was once
    reported OVER BUDGET against the GSM-7 budget of 2."""
    out = io.StringIO()
    assert preview_main(["preview", "apology", "--budget", "2"], stdout=out) == 0
    accented = next(line for line in out.getvalue().splitlines() if line.startswith("with"))
    count = int(accented.split(", ")[1].split()[0])
    assert count > 2 and "OVER BUDGET" not in accented
    out = io.StringIO()
    assert preview_main(["preview", "apology", "--unicode-budget", "1"], stdout=out) == 0
    accented = next(line for line in out.getvalue().splitlines() if line.startswith("with"))
    assert "OVER BUDGET" in accented
