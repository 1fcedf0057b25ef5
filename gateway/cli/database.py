"""What every command that writes to the database checks first."""

from __future__ import annotations

from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from gateway.settings import Settings
from gateway.storage import migrate


def first_line(exc: BaseException) -> str:
    """An error in one line (SQLAlchemy appends the statement and a link on further ones)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


async def refusal(settings: Settings, prog: str, err: TextIO) -> int:
    """0 when the database answers and is migrated; else the exit code (1 unreachable,
    2 not up to date), having said why on ``err``."""
    try:
        current = await migrate.current_revision(settings.database_url)
    except (SQLAlchemyError, OSError) as exc:
        print(f"{prog}: cannot reach the database: {first_line(exc)}", file=err)
        return 1
    if current != migrate.head_revision():
        print(f"{prog}: the database is not up to date; run `tthc migrate` first", file=err)
        return 2
    return 0
