"""``tthc audit rebuild``: recompute verdicts and the violations ledger from stored events.

Usage::

    tthc audit rebuild [--since YYYY-MM-DD] [--progress | --no-progress]

Goes through every dossier (or those changed on or after ``--since``, a local date in
``TIME_ZONE``) in pages of 500, one transaction each, so it can run beside the gateway
and be stopped at any time. Idempotent: a second run appends nothing. New violations are
appended; findings no longer detected get a ``dismissed`` decision; decisions are never
rewritten. A progress bar goes to stderr (by default when stderr is a terminal); the
summary line goes to stdout::

    tthc audit rebuild: 200000 dossiers, 1234 new violations, 5 dismissed, 81.2 s, 2463 dossiers/s

Exit status: 0 done, 1 the database failed, 2 bad arguments or a database that is not
migrated.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from datetime import time as clock_time
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from gateway.audit.ledger import RebuildResult, rebuild
from gateway.cli.database import first_line, refusal
from gateway.cli.streams import parse_or_exit_code, utf8
from gateway.errors import GatewayError
from gateway.settings import Settings
from gateway.storage.db import create_engine

__all__ = ["main"]

_PROG = "tthc audit"
# Redrawing the bar more often than this is wasted work.
_REDRAW_SECONDS = 0.1


class _Bar:
    """A one-line ``done/total dossiers (percent) rate`` bar redrawn in place."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._last_drawn = float("-inf")
        self._width = 0
        self._drawn = False

    def update(self, done: int, total: int) -> None:
        now = self._clock()
        if now - self._last_drawn < _REDRAW_SECONDS and done < total:
            return
        self._last_drawn = now
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        percent = 100 * done / total if total else 100.0
        line = f"{_PROG}: {done}/{total} dossiers ({percent:3.0f}%) {rate:,.0f} dossiers/s"
        # Pad so that a shorter redraw covers the previous one.
        self._stream.write("\r" + line.ljust(self._width))
        self._width = len(line)
        self._drawn = True
        self._stream.flush()

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG, description="the violations ledger and dossier verdicts"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    again = sub.add_parser(
        "rebuild", help="recompute verdicts and violations from stored events (idempotent)"
    )
    again.add_argument(
        "--since",
        type=_day,
        help="only dossiers changed on or after this local date (YYYY-MM-DD)",
    )
    again.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    return parser


def summary_line(result: RebuildResult) -> str:
    """The line printed at the end of a rebuild."""
    audit = result.audit
    return (
        f"{_PROG} rebuild: {audit.dossiers} dossiers, {audit.new_violations} new violations, "
        f"{audit.dismissed} dismissed, {result.seconds:.1f} s, {result.rate:,.0f} dossiers/s"
    )


async def _rebuild(
    settings: Settings, since: date | None, bar: _Bar | None, out: TextIO, err: TextIO
) -> int:
    if refused := await refusal(settings, _PROG, err):
        return refused
    start = datetime.combine(since, clock_time(0), tzinfo=settings.tz) if since else None
    engine = create_engine(settings.database_url, writer=True, pool_size=1)
    try:
        result = await rebuild(
            engine, settings, start, bar.update if bar else None, now=datetime.now(UTC)
        )
    except GatewayError as exc:  # a bad ladder or holiday file
        print(f"{_PROG}: {exc.detail}", file=err)
        return 2
    except (SQLAlchemyError, OSError) as exc:
        print(f"{_PROG}: the database failed: {first_line(exc)}", file=err)
        return 1
    finally:
        if bar is not None:
            bar.close()
        await engine.dispose()
    print(summary_line(result), file=out)
    return 0


def main(
    argv: Sequence[str],
    load_settings: Callable[[], Settings],
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``tthc audit`` with ``argv`` (after ``audit``); returns the exit status."""
    args = parse_or_exit_code(_parser(), argv)
    if isinstance(args, int):
        return args
    out = stdout or utf8(sys.stdout)
    err = stderr or utf8(sys.stderr)
    show = args.progress if args.progress is not None else err.isatty()
    bar = _Bar(err) if show else None
    return asyncio.run(_rebuild(load_settings(), args.since, bar, out, err))
