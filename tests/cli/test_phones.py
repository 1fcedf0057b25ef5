"""Tests for ``tthc phones`` (gateway.cli.phones), run as a real subprocess."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from gateway.cli.phones import main

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["input", "ok", "e164", "national", "carrier", "converted_from", "reason", "others"]
INPUT_LINES = [
    "0912345678",
    "SĐT: 0168 765 4321 (anh Nam)",
    "",
    "0251 3822 xxx",
    "０９８７６５４３２１ / 0901234567",
    "(061) 3822123",
]


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli.phones", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        env=env,
        timeout=30,
        check=False,
    )


def _check_output(stdout: str) -> list[dict[str, object]]:
    lines = stdout.splitlines()
    assert len(lines) == len(INPUT_LINES)
    records = [json.loads(line) for line in lines]
    for line, record in zip(lines, records, strict=True):
        assert list(record) == KEYS
        assert line == json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    assert [record["input"] for record in records] == INPUT_LINES
    assert [record["reason"] for record in records] == [
        None,
        None,
        "empty",
        "letters",
        None,
        "old_landline_suspected",
    ]
    assert records[1]["e164"] == "+84387654321"
    assert records[1]["converted_from"] == "01687654321"
    assert records[1]["carrier"] == "viettel"
    assert records[4]["e164"] == "+84987654321"
    assert records[4]["others"] == ["0901234567"]
    return records


def test_stdin_to_json_lines() -> None:
    done = _run(stdin="\n".join(INPUT_LINES) + "\n")
    assert done.returncode == 0, done.stderr
    _check_output(done.stdout)
    assert "SĐT" in done.stdout  # ensure_ascii=False keeps Vietnamese readable
    assert done.stderr == ""


def test_dash_means_stdin_and_summary_goes_to_stderr() -> None:
    done = _run("-", "--summary", stdin="\n".join(INPUT_LINES))
    assert done.returncode == 0, done.stderr
    _check_output(done.stdout)
    assert done.stderr.strip() == (
        "tthc phones: 6 lines, 3 ok (1 converted from 11 digits), 3 rejected: "
        "empty=1, letters=1, old_landline_suspected=1"
    )


def test_file_with_progress_writes_progress_to_stderr_only(tmp_path: Path) -> None:
    source = tmp_path / "numbers.txt"
    # A byte-order mark, as spreadsheet exports write, must not reach the first value.
    source.write_text("\ufeff" + "\r\n".join(INPUT_LINES) + "\r\n", encoding="utf-8")
    done = _run(str(source), "--progress")
    assert done.returncode == 0, done.stderr
    _check_output(done.stdout)
    assert "lines/s" not in done.stdout
    assert "tthc phones: 6/6 lines (100%)" in done.stderr
    assert "lines/s" in done.stderr
    assert done.stderr.endswith("\n")


def test_file_without_progress_is_quiet(tmp_path: Path) -> None:
    source = tmp_path / "numbers.txt"
    source.write_text("\n".join(INPUT_LINES), encoding="utf-8")
    done = _run(str(source), "--no-progress")
    assert done.returncode == 0, done.stderr
    _check_output(done.stdout)
    assert done.stderr == ""


def test_unreadable_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    done = _run(str(missing))
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"cannot read {missing}" in done.stderr


def test_directory_exits_2(tmp_path: Path) -> None:
    done = _run(str(tmp_path), "--summary")
    assert done.returncode == 2
    assert "cannot read" in done.stderr


def test_bad_option_exits_2() -> None:
    done = _run("--no-such-option")
    assert done.returncode == 2
    assert "usage: tthc phones" in done.stderr


def test_in_process_with_streams(tmp_path: Path) -> None:
    source = tmp_path / "numbers.txt"
    source.write_text("\n".join(INPUT_LINES), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert main([str(source), "--progress", "--summary"], stdout=out, stderr=err) == 0
    _check_output(out.getvalue())
    progress, summary = err.getvalue().rstrip("\n").split("\n")
    assert progress.startswith("\r") and "6/6 lines" in progress
    assert summary.startswith("tthc phones: 6 lines, 3 ok")

    out = io.StringIO()
    stdin = io.StringIO("\n".join(INPUT_LINES))
    assert main([], stdin=stdin, stdout=out, stderr=io.StringIO()) == 0
    _check_output(out.getvalue())
