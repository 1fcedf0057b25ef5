"""Staff users (hotline, auditors, admins) and their personal API tokens.

A token is ``tthc_`` followed by 32 random bytes in URL-safe base64. It is shown once,
when the user is added; the database keeps only its SHA-256, so a leaked database does
not let anyone call the API. A disabled user's token stops working at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import Conflict, FieldError, NotFound, ValidationFailed
from gateway.storage.tables import staff_users

__all__ = [
    "ROLES",
    "TOKEN_PREFIX",
    "StaffUser",
    "add_user",
    "authenticate",
    "disable_user",
    "hash_token",
    "list_users",
]

ROLES: Final = ("hotline", "auditor", "admin")
TOKEN_PREFIX: Final = "tthc_"  # noqa: S105 - a public prefix, not a secret
USERNAME_RE: Final = re.compile(r"[a-z0-9._-]{2,64}")
NAME_MAX: Final = 200
# Longer than any token we issue: not worth hashing.
_TOKEN_MAX: Final = 200


@dataclass(frozen=True, slots=True)
class StaffUser:
    """A staff member as the API sees them (never the token or its hash)."""

    id: int
    username: str
    name: str
    role: str
    created_at: datetime
    disabled_at: datetime | None

    @property
    def actor(self) -> str:
        """How this user is named in report transitions."""
        return f"staff:{self.id}"


def hash_token(token: str) -> str:
    """The stored form of a token: SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row: Any) -> StaffUser:
    return StaffUser(row.id, row.username, row.name, row.role, row.created_at, row.disabled_at)


def _validate(username: str, name: str, role: str) -> None:
    errors: list[FieldError] = []
    if not USERNAME_RE.fullmatch(username):
        errors.append(
            FieldError("username", "must be 2-64 characters of a-z, 0-9, dot, dash, underscore")
        )
    if not name.strip():
        errors.append(FieldError("name", "is required"))
    elif len(name) > NAME_MAX:
        errors.append(FieldError("name", f"must be at most {NAME_MAX} characters"))
    if role not in ROLES:
        errors.append(FieldError("role", f"must be one of {', '.join(ROLES)}, not {role!r}"))
    if errors:
        raise ValidationFailed(errors)


async def add_user(engine: AsyncEngine, username: str, name: str, role: str, now: datetime) -> str:
    """Add a staff user; returns their token (the only time it exists in clear).

    Raises :class:`ValidationFailed` for a bad username, name or role, and
    :class:`Conflict` if the username is taken (also by a disabled user).
    """
    _validate(username, name, role)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        async with engine.begin() as conn:
            taken = (
                await conn.execute(
                    sa.select(staff_users.c.id).where(staff_users.c.username == username)
                )
            ).first()
            if taken is not None:
                raise Conflict(f"a staff user named {username!r} already exists")
            await conn.execute(
                staff_users.insert().values(
                    username=username,
                    name=name.strip(),
                    role=role,
                    token_hash=hash_token(token),
                    created_at=now,
                    disabled_at=None,
                )
            )
    except IntegrityError as exc:  # another process added the same name in between
        raise Conflict(f"a staff user named {username!r} already exists") from exc
    return token


async def authenticate(reader: AsyncEngine, token: str) -> StaffUser | None:
    """The enabled user holding ``token``, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > _TOKEN_MAX:
        return None
    async with reader.connect() as conn:
        row = (
            await conn.execute(
                sa.select(staff_users).where(
                    staff_users.c.token_hash == hash_token(token),
                    staff_users.c.disabled_at.is_(None),
                )
            )
        ).first()
    return _user(row) if row is not None else None


async def disable_user(engine: AsyncEngine, username: str, now: datetime) -> StaffUser:
    """Disable a user (their token stops working); disabling twice keeps the first date.

    Raises :class:`NotFound` for an unknown username.
    """
    async with engine.begin() as conn:
        await conn.execute(
            staff_users.update()
            .where(staff_users.c.username == username, staff_users.c.disabled_at.is_(None))
            .values(disabled_at=now)
        )
        row = (
            await conn.execute(sa.select(staff_users).where(staff_users.c.username == username))
        ).first()
    if row is None:
        raise NotFound(f"no staff user named {username!r}")
    return _user(row)


async def list_users(reader: AsyncEngine) -> list[StaffUser]:
    """Every staff user, disabled ones included, by username."""
    async with reader.connect() as conn:
        rows = await conn.execute(sa.select(staff_users).order_by(staff_users.c.username))
        return [_user(row) for row in rows]
