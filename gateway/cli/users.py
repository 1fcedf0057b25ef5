"""``tthc user``: add, list and disable staff users; set their console passwords.

Usage::

    tthc user add USERNAME --name "Nguyễn Thị Hoa" --role hotline|auditor|admin \\
        [--password-stdin]
    tthc user passwd USERNAME --password-stdin
    tthc user list
    tthc user disable USERNAME
    tthc user totp USERNAME --disable

``add`` prints the new user's API token on stdout, alone on its line, so a script can
capture it; the token is not stored and cannot be shown again (a note on stderr says
so). With ``--password-stdin`` the first line of standard input (its line ending
stripped) becomes the user's console password; ``passwd`` sets a new one the same way
and records ``password_changed`` in the staff audit log. A password is never taken on
the command line (other users of the machine could read it) and never echoed; one
shorter than 10 characters is refused with the reason, and nothing is written.
``list`` prints a header row, then one tab-separated row per user, with times in
``TIME_ZONE`` as ``dd/mm/yyyy HH:MM`` (``-`` for a user never disabled). ``totp
--disable`` removes a user's second factor (an admin who lost the phone logs in with the
password alone again, and may enrol anew) and records ``totp_reset`` in the staff audit
log. Errors go to stderr with exit status 1; a database that is not migrated gives 2.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from gateway.cli.database import first_line, refusal
from gateway.cli.streams import utf8
from gateway.errors import GatewayError, ValidationFailed
from gateway.settings import Settings
from gateway.storage import staff as staff_store
from gateway.storage.db import Database

__all__ = ["main"]

_PROG = "tthc user"
_LIST_HEADER = ("username", "role", "name", "created", "disabled")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description="manage staff users and tokens")
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="add a user and print their API token once")
    add.add_argument("username", help="2-64 characters of a-z, 0-9, '.', '_', '-'")
    add.add_argument("--name", required=True, help="the person's full name")
    add.add_argument("--role", required=True, choices=staff_store.ROLES)
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the console password from the first line of standard input",
    )
    passwd = sub.add_parser("passwd", help="set a user's console password")
    passwd.add_argument("username")
    passwd.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the new password from the first line of standard input",
    )
    sub.add_parser("list", help="list users (disabled ones too)")
    disable = sub.add_parser("disable", help="disable a user; their token stops working")
    disable.add_argument("username")
    totp = sub.add_parser("totp", help="remove a user's second factor (a lost phone)")
    totp.add_argument("username")
    totp.add_argument(
        "--disable",
        action="store_true",
        required=True,
        help="remove the second factor; the user logs in with the password alone",
    )
    return parser


def _message(exc: GatewayError) -> str:
    if isinstance(exc, ValidationFailed):
        return "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
    return exc.detail


def _local(moment: datetime | None, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%d/%m/%Y %H:%M") if moment else "-"


def _print_users(users: Sequence[staff_store.StaffUser], zone: tzinfo, out: TextIO) -> None:
    print("\t".join(_LIST_HEADER), file=out)
    for user in users:
        created, disabled = _local(user.created_at, zone), _local(user.disabled_at, zone)
        print(f"{user.username}\t{user.role}\t{user.name}\t{created}\t{disabled}", file=out)


def _read_password(stdin: TextIO) -> str:
    """The first line of ``stdin`` without its line ending (CRLF too)."""
    if isinstance(stdin, io.TextIOWrapper):
        # Strict UTF-8 whatever the locale: a password must not be silently altered.
        stdin.reconfigure(encoding="utf-8", errors="strict")
    return stdin.readline().removesuffix("\n").removesuffix("\r")


async def _run(
    args: argparse.Namespace,
    settings: Settings,
    password: str | None,
    out: TextIO,
    err: TextIO,
    now: datetime,
) -> int:
    if refused := await refusal(settings, _PROG, err):
        return refused
    db = Database.open(settings.database_url)
    try:
        if args.action == "add":
            token = await staff_store.add_user(
                db.writer, args.username, args.name, args.role, now, password=password
            )
            print(token, file=out)
            print(
                f"{_PROG}: added {args.username} ({args.role}); keep this token now, "
                "it will not be shown again",
                file=err,
            )
        elif args.action == "passwd":
            assert password is not None  # argparse requires --password-stdin
            await staff_store.set_password(db.writer, args.username, password, now, via="cli")
            print(f"{_PROG}: the password of {args.username} is changed", file=err)
        elif args.action == "list":
            _print_users(await staff_store.list_users(db.reader), settings.tz, out)
        elif args.action == "totp":
            removed = await staff_store.reset_totp(db.writer, args.username, now, via="cli")
            state = "is removed" if removed else "was not set; nothing changed"
            print(f"{_PROG}: the second factor of {args.username} {state}", file=err)
        else:
            user = await staff_store.disable_user(db.writer, args.username, now)
            print(f"{_PROG}: {user.username} is disabled", file=err)
    except GatewayError as exc:
        print(f"{_PROG}: {_message(exc)}", file=err)
        return 1
    except (SQLAlchemyError, OSError) as exc:
        print(f"{_PROG}: the database failed: {first_line(exc)}", file=err)
        return 1
    finally:
        await db.close()
    return 0


def main(
    argv: Sequence[str],
    load_settings: Callable[[], Settings],
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Run ``tthc user`` with ``argv`` (after ``user``); settings load only when needed."""
    args = _parser().parse_args(list(argv))
    out = stdout or utf8(sys.stdout)
    err = stderr or utf8(sys.stderr)
    password = None
    if getattr(args, "password_stdin", False):
        try:
            password = _read_password(stdin or sys.stdin)
        except UnicodeDecodeError:
            print(f"{_PROG}: the password on standard input is not UTF-8", file=err)
            return 1
    return asyncio.run(_run(args, load_settings(), password, out, err, clock()))
