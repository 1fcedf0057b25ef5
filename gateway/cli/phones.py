"""``tthc phones``: normalise raw phone values in bulk, one JSON object per line.

Reads one raw value per line from a file (or ``-``/nothing for stdin) and writes
one compact JSON object per line to stdout with the keys ``input, ok, e164,
national, carrier, converted_from, reason, others`` (see
:mod:`gateway.domain.phones`). Progress and the optional summary go to stderr,
so stdout stays machine-readable. Rejected numbers are data, not errors: the exit
status is 0 unless the input cannot be read (2).

Usage::

    tthc phones [FILE|-] [--progress | --no-progress] [--summary]
    python -m gateway.cli.phones numbers.txt --summary > numbers.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TextIO

from gateway.cli.streams import parse_or_exit_code, utf8
from gateway.domain.phones import normalize_phone

__all__ = ["main"]

_PROG = "tthc phones"
# Redrawing the bar more often than this costs more than the normalising itself.
_REDRAW_SECONDS = 0.1


class _Progress:
    """A one-line ``count/total lines, rate`` bar redrawn in place on a stream."""

    def __init__(
        self, stream: TextIO, total: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._total = total
        self._clock = clock
        self._started = clock()
        self._last_drawn = float("-inf")
        self._done = 0
        self._width = 0

    def advance(self) -> None:
        self._done += 1
        now = self._clock()
        if now - self._last_drawn >= _REDRAW_SECONDS:
            self._draw(now)

    def close(self) -> None:
        self._draw(self._clock())
        self._stream.write("\n")
        self._stream.flush()

    def _draw(self, now: float) -> None:
        self._last_drawn = now
        elapsed = now - self._started
        rate = self._done / elapsed if elapsed > 0 else 0.0
        percent = 100 * self._done / self._total if self._total else 100.0
        line = f"{_PROG}: {self._done}/{self._total} lines ({percent:3.0f}%) {rate:,.0f} lines/s"
        # Pad so a shorter redraw fully covers the previous one.
        self._stream.write("\r" + line.ljust(self._width))
        self._width = len(line)
        self._stream.flush()


def main(
    argv: list[str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``tthc phones`` with ``argv`` (without the word ``phones``); return the exit code."""
    args = parse_or_exit_code(_parser(), argv)
    if isinstance(args, int):
        return args
    out = stdout if stdout is not None else utf8(sys.stdout)
    err = stderr if stderr is not None else sys.stderr
    path: str = args.path

    if path == "-":
        source = stdin if stdin is not None else utf8(sys.stdin)
        return _run(source, out, err, progress=None, summary=args.summary)

    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        handle = open(path, encoding="utf-8-sig", errors="replace")  # noqa: SIM115
    except OSError as exc:
        err.write(f"{_PROG}: cannot read {path}: {exc.strerror or exc}\n")
        return 2
    with handle:
        show_progress = args.progress if args.progress is not None else err.isatty()
        progress = None
        if show_progress:
            try:
                total = _count_lines(path)
            except OSError as exc:
                err.write(f"{_PROG}: cannot read {path}: {exc.strerror or exc}\n")
                return 2
            progress = _Progress(err, total)
        try:
            return _run(handle, out, err, progress=progress, summary=args.summary)
        except UnicodeError as exc:  # pragma: no cover - errors="replace" prevents it
            err.write(f"{_PROG}: cannot read {path}: {exc}\n")
            return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Normalise raw phone values (one per line) to Vietnamese mobiles; "
        "writes one JSON object per line.",
    )
    parser.add_argument(
        "path", nargs="?", default="-", help="input file, one raw value per line ('-' = stdin)"
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr when reading a file (default: when stderr is a terminal)",
    )
    parser.add_argument(
        "--summary", action="store_true", help="print totals per reason to stderr at the end"
    )
    return parser


def _run(
    lines: Iterable[str],
    out: TextIO,
    err: TextIO,
    *,
    progress: _Progress | None,
    summary: bool,
) -> int:
    reasons: Counter[str] = Counter()
    converted = 0
    total = 0
    try:
        for line in lines:
            result = normalize_phone(line.rstrip("\r\n"))
            out.write(
                json.dumps(result.to_json_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
            )
            total += 1
            reasons[result.reason or "ok"] += 1
            converted += result.converted_from is not None
            if progress is not None:
                progress.advance()
        out.flush()
    except BrokenPipeError:
        # The reader (e.g. `head`) has gone; stop quietly like other Unix filters, and
        # point stdout at /dev/null so the interpreter's final flush does not fail too.
        if out is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 0
    if progress is not None:
        progress.close()
    if summary:
        err.write(_summary_line(total, reasons, converted) + "\n")
    return 0


def _summary_line(total: int, reasons: Counter[str], converted: int) -> str:
    accepted = reasons.get("ok", 0)
    rejected = ", ".join(
        f"{reason}={count}" for reason, count in sorted(reasons.items()) if reason != "ok"
    )
    return (
        f"{_PROG}: {total} lines, {accepted} ok ({converted} converted from 11 digits), "
        f"{total - accepted} rejected" + (f": {rejected}" if rejected else "")
    )


def _count_lines(path: str) -> int:
    count = 0
    last = b"\n"
    with open(path, "rb") as raw:
        while chunk := raw.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    # A last line without a newline is still a line the loop will read.
    return count + (last != b"\n")


if __name__ == "__main__":
    sys.exit(main())
