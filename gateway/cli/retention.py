"""``tthc retention run``: erase the personal data older than ``RETENTION_DAYS`` now.

Usage::

    tthc retention run [--dry-run]

The worker's cron runs the same job once a day; this command is for an operator who
wants it now (after lowering ``RETENTION_DAYS``, say) or wants to see what it would do
(``--dry-run`` counts without writing). What is erased and what is kept is described in
:mod:`gateway.storage.retention`. The summary goes to stdout::

    tthc retention run: cutoff 2024-12-07T08:00:00+00:00 (730 days): 1200 dossiers, ...

Exit status: 0 done, 1 the database failed, 2 bad arguments or a database that is not
migrated.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from gateway.cli.database import first_line, refusal
from gateway.cli.streams import parse_or_exit_code, utf8
from gateway.settings import Settings
from gateway.storage.db import create_engine
from gateway.storage.retention import RetentionResult, run_retention

__all__ = ["main", "summary_line"]

_PROG = "tthc retention"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG, description="erase personal data older than RETENTION_DAYS"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="erase now what the daily job would erase (idempotent)")
    run.add_argument("--dry-run", action="store_true", help="count what would be erased")
    return parser


def summary_line(result: RetentionResult, cutoff: datetime, days: int, dry_run: bool) -> str:
    """The line printed at the end of a run."""
    counts = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in result.counts().items())
    verb = "would erase" if dry_run else "erased"
    return f"{_PROG} run: cutoff {cutoff.isoformat()} ({days} days): {verb} {counts}"


async def _run(settings: Settings, dry_run: bool, out: TextIO, err: TextIO) -> int:
    if refused := await refusal(settings, _PROG, err):
        return refused
    now = datetime.now(UTC)
    engine = create_engine(settings.database_url, writer=True, pool_size=1)
    try:
        result = await run_retention(engine, now, settings.retention_days, dry_run=dry_run)
    except (SQLAlchemyError, OSError) as exc:
        print(f"{_PROG}: the database failed: {first_line(exc)}", file=err)
        return 1
    finally:
        await engine.dispose()
    cutoff = now - timedelta(days=settings.retention_days)
    print(summary_line(result, cutoff, settings.retention_days, dry_run), file=out)
    return 0


def main(
    argv: Sequence[str],
    load_settings: Callable[[], Settings],
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``tthc retention`` with ``argv`` (after ``retention``); returns the exit status."""
    args = parse_or_exit_code(_parser(), argv)
    if isinstance(args, int):
        return args
    out = stdout or utf8(sys.stdout)
    err = stderr or utf8(sys.stderr)
    return asyncio.run(_run(load_settings(), args.dry_run, out, err))
