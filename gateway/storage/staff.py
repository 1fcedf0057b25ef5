"""Staff users (hotline, auditors, admins): API tokens, console passwords, the audit log.

A token is ``tthc_`` followed by 32 random bytes in URL-safe base64. It is shown once,
when the user is added; the database keeps only its SHA-256, so a leaked database does
not let anyone call the API. A disabled user's token stops working at once.

A console password is kept as an argon2id hash (argon2-cffi's default parameters, which
follow RFC 9106); a hash made with older parameters is replaced at the next good login.
Hashing takes tens of milliseconds of CPU, so it runs in a worker thread. A password is
never logged, never stored in clear and never put in an exception message.

The staff audit log records what staff did (logins, reveals of a phone number, exports,
decisions...). It is append-only: this module has no way to change or delete an entry.

An admin may add a second factor: a TOTP secret (RFC 6238, 30-second steps, 6 digits)
made at enrolment and enabled only once a first code from the authenticator app is
confirmed. The last accepted time step is stored and only later steps are accepted
afterwards, so an observed code can never be used again. The secret is never logged,
never put in an exception message nor in the audit log.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Final

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.domain.phones import mask_phones_in_text
from gateway.errors import Conflict, FieldError, NotFound, ValidationFailed
from gateway.storage.tables import staff_audit_log, staff_users

__all__ = [
    "PASSWORD_MAX",
    "PASSWORD_MIN",
    "ROLES",
    "TOKEN_PREFIX",
    "TOTP_ISSUER",
    "ActionFilter",
    "StaffAction",
    "StaffUser",
    "TotpState",
    "add_user",
    "authenticate",
    "check_totp",
    "confirm_totp",
    "disable_totp",
    "disable_user",
    "get_user",
    "hash_token",
    "known_actions",
    "list_actions",
    "list_users",
    "normalize_totp_code",
    "pending_totp_secret",
    "record_action",
    "reset_totp",
    "set_password",
    "start_totp",
    "totp_state",
    "totp_uri",
    "verify_password",
]

ROLES: Final = ("hotline", "auditor", "admin")
TOKEN_PREFIX: Final = "tthc_"  # noqa: S105 - a public prefix, not a secret
USERNAME_RE: Final = re.compile(r"[a-z0-9._-]{2,64}")
NAME_MAX: Final = 200
# Longer than any token we issue: not worth hashing.
_TOKEN_MAX: Final = 200
PASSWORD_MIN: Final = 10
PASSWORD_MAX: Final = 200
_HASHER: Final = PasswordHasher()
_ACTION_RE: Final = re.compile(r"[a-z][a-z_]{0,31}")
_NOTICE_ID_RE: Final = re.compile(r"(?:[a-z_]+:)?[0-9a-f]{32}")
# Keys that must never reach the audit log's detail, whatever a caller passes.
_SECRET_KEY_RE: Final = re.compile(r"password|passwd|secret|token", re.IGNORECASE)
_USERNAME_LOG_MAX: Final = 64
_TARGET_MAX: Final = 128
_ADDRESS_MAX: Final = 64
# TOTP: the authenticator apps' defaults (30 s, 6 digits, SHA-1); one step either side is
# accepted for a phone whose clock is a little off.
TOTP_ISSUER: Final = "TTHC 1022"
TOTP_STEP_SECONDS: Final = 30
TOTP_WINDOW: Final = 1
_TOTP_CODE_RE: Final = re.compile(r"[0-9]{6}", re.ASCII)


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


def _password_errors(password: str) -> list[FieldError]:
    # The reason names the rule, never the value.
    if not password:
        return [FieldError("password", "is required")]
    if len(password) < PASSWORD_MIN:
        return [FieldError("password", f"must be at least {PASSWORD_MIN} characters")]
    if len(password) > PASSWORD_MAX:
        return [FieldError("password", f"must be at most {PASSWORD_MAX} characters")]
    return []


async def _hash_password(password: str) -> str:
    errors = _password_errors(password)
    if errors:
        raise ValidationFailed(errors)
    return await asyncio.to_thread(_HASHER.hash, password)


@cache
def _dummy_hash() -> str:
    """A hash no password matches, so that an unknown user costs as much as a known one."""
    return _HASHER.hash(secrets.token_urlsafe(32))


def _matches(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def add_user(
    engine: AsyncEngine,
    username: str,
    name: str,
    role: str,
    now: datetime,
    *,
    password: str | None = None,
) -> str:
    """Add a staff user; returns their token (the only time it exists in clear).

    With ``password`` the user can also log in to the console. Raises
    :class:`ValidationFailed` for a bad username, name, role or password (nothing is
    written then), and :class:`Conflict` if the username is taken (also by a disabled user).
    """
    _validate(username, name, role)
    password_hash = await _hash_password(password) if password is not None else None
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
                    password_hash=password_hash,
                    password_changed_at=now if password_hash else None,
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


async def get_user(reader: AsyncEngine, user_id: int) -> StaffUser | None:
    """The staff user with id ``user_id`` (disabled or not), or None."""
    async with reader.connect() as conn:
        row = (
            await conn.execute(sa.select(staff_users).where(staff_users.c.id == user_id))
        ).first()
    return _user(row) if row is not None else None


async def list_users(reader: AsyncEngine) -> list[StaffUser]:
    """Every staff user, disabled ones included, by username."""
    async with reader.connect() as conn:
        rows = await conn.execute(sa.select(staff_users).order_by(staff_users.c.username))
        return [_user(row) for row in rows]


async def set_password(
    engine: AsyncEngine,
    username: str,
    password: str,
    now: datetime,
    *,
    actor: StaffUser | None = None,
    via: str = "cli",
    remote_addr: str | None = None,
) -> None:
    """Set (or replace) a user's console password and record ``password_changed``.

    The audit entry is written in the same transaction, so callers must not record it
    again. It names ``actor`` (the user themselves when None), with ``{"via": via}`` as
    detail and ``staff:ID`` of the user as target. Raises :class:`ValidationFailed`
    naming ``password`` when it is empty, shorter than 10 or longer than 200 characters,
    and :class:`NotFound` for an unknown username; nothing is written then.
    """
    password_hash = await _hash_password(password)
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                staff_users.update()
                .where(staff_users.c.username == username)
                .values(password_hash=password_hash, password_changed_at=now)
                .returning(staff_users.c.id, staff_users.c.username)
            )
        ).first()
        if row is None:
            raise NotFound(f"no staff user named {username!r}")
        await record_action(
            conn,
            at=now,
            action="password_changed",
            staff_id=actor.id if actor else int(row.id),
            username=actor.username if actor else str(row.username),
            target=f"staff:{row.id}",
            detail={"via": via},
            remote_addr=remote_addr,
        )


async def verify_password(
    engine: AsyncEngine, username: str, password: str, now: datetime
) -> StaffUser | None:
    """The enabled user ``username`` if ``password`` is theirs, else None.

    None also for an unknown user, a disabled one and one without a password; those
    cost the same argon2 verification as a wrong password, so timing does not tell
    which usernames exist. A hash made with outdated parameters is replaced (same
    password, same ``password_changed_at``). ``now`` is the time of the attempt; a user
    counts as disabled from the moment :func:`disable_user` ran, as for tokens.
    """
    async with engine.connect() as conn:
        row = (
            await conn.execute(sa.select(staff_users).where(staff_users.c.username == username))
        ).first()
    usable = (
        row is not None
        and row.password_hash is not None
        and row.disabled_at is None
        and PASSWORD_MIN <= len(password) <= PASSWORD_MAX
    )
    if row is None or not usable:
        await asyncio.to_thread(_matches, _dummy_hash(), password[:PASSWORD_MAX])
        return None
    stored: str = row.password_hash
    if not await asyncio.to_thread(_matches, stored, password):
        return None
    if _HASHER.check_needs_rehash(stored):
        fresh = await asyncio.to_thread(_HASHER.hash, password)
        async with engine.begin() as conn:
            # Only if the password was not changed meanwhile.
            await conn.execute(
                staff_users.update()
                .where(staff_users.c.id == row.id, staff_users.c.password_hash == stored)
                .values(password_hash=fresh)
            )
    return _user(row)


@dataclass(frozen=True, slots=True)
class StaffAction:
    """One entry of the staff audit log; ``staff_id`` is None for an unknown username."""

    id: int
    at: datetime
    staff_id: int | None
    username: str
    action: str
    target: str | None
    detail: dict[str, Any] | None
    remote_addr: str | None


def _scrub(value: Any) -> Any:
    """``value`` with phone-looking digit runs masked, refusing keys that name a secret."""
    if isinstance(value, str):
        # A notice id (32 hex digits, perhaps as "notice:<id>") may hold a run of nine
        # digits, but is never a phone number: kept whole, so the entry names its notice.
        return value if _NOTICE_ID_RE.fullmatch(value) else mask_phones_in_text(value)
    if isinstance(value, Mapping):
        for key in value:
            if _SECRET_KEY_RE.search(str(key)):
                raise ValueError(f"the staff audit log never stores a {key!r}")
        return {str(key): _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


async def record_action(
    conn_or_engine: AsyncConnection | AsyncEngine,
    *,
    at: datetime,
    action: str,
    username: str,
    staff_id: int | None = None,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
    remote_addr: str | None = None,
) -> int:
    """Append an entry to the staff audit log; returns its id.

    Pass a connection to record the action in the caller's transaction (it then stands
    or falls with the action). ``action`` is a short snake_case verb (``login``,
    ``reveal_phone``, ``export``...); ``target`` names what was acted on (``report:12``).
    Phone-looking numbers in ``target`` and ``detail`` are masked; a ``detail`` key
    naming a password, secret or token raises :class:`ValueError` (a programming error).
    """
    if not _ACTION_RE.fullmatch(action):
        raise ValueError(f"not an audit action: {action!r}")
    values = {
        "at": at,
        "staff_id": staff_id,
        "username": username[:_USERNAME_LOG_MAX],
        "action": action,
        "target": _scrub(target)[:_TARGET_MAX] if target is not None else None,
        "detail": _scrub(detail) if detail is not None else None,
        "remote_addr": remote_addr[:_ADDRESS_MAX] if remote_addr is not None else None,
    }
    insert = staff_audit_log.insert().values(**values).returning(staff_audit_log.c.id)
    if isinstance(conn_or_engine, AsyncEngine):
        async with conn_or_engine.begin() as conn:
            return int((await conn.execute(insert)).scalar_one())
    return int((await conn_or_engine.execute(insert)).scalar_one())


@dataclass(frozen=True, slots=True)
class ActionFilter:
    """Filters of the staff audit log; ``until`` is exclusive.

    ``target`` matches the whole target when ``target_exact``, else any part of it.
    """

    username: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    target: str | None = None
    target_exact: bool = False


def _conditions(where: ActionFilter) -> list[sa.ColumnElement[bool]]:
    log = staff_audit_log.c
    found: list[sa.ColumnElement[bool]] = []
    if where.username is not None:
        found.append(log.username == where.username)
    if where.action is not None:
        found.append(log.action == where.action)
    if where.since is not None:
        found.append(log.at >= where.since)
    if where.until is not None:
        found.append(log.at < where.until)
    if where.target is not None:
        found.append(
            log.target == where.target
            if where.target_exact
            else log.target.contains(where.target, autoescape=True)
        )
    return found


async def list_actions(
    engine: AsyncEngine,
    *,
    limit: int,
    after: int | None,
    staff_id: int | None = None,
    action: str | None = None,
    where: ActionFilter | None = None,
) -> tuple[list[StaffAction], int | None]:
    """A page of the staff audit log, newest first, and the cursor of the next page.

    ``after`` is the cursor returned with the previous page (entries older than it come
    next); None starts from the newest. The cursor is None on the last page. ``where``
    adds the filters of the admins' log browser to ``staff_id`` and ``action``.
    """
    log = staff_audit_log.c
    query = sa.select(staff_audit_log).order_by(log.id.desc()).limit(limit + 1)
    if after is not None:
        query = query.where(log.id < after)
    if staff_id is not None:
        query = query.where(log.staff_id == staff_id)
    if action is not None:
        query = query.where(log.action == action)
    if where is not None:
        query = query.where(*_conditions(where))
    async with engine.connect() as conn:
        items = [
            StaffAction(
                int(r.id),
                r.at,
                r.staff_id,
                r.username,
                r.action,
                r.target,
                r.detail,
                r.remote_addr,
            )
            for r in await conn.execute(query)
        ]
    more = len(items) > limit
    items = items[:limit]
    return items, items[-1].id if more else None


async def known_actions(engine: AsyncEngine) -> list[str]:
    """Every action the staff audit log holds at least once, sorted (for a filter)."""
    query = sa.select(staff_audit_log.c.action).distinct().order_by(staff_audit_log.c.action)
    async with engine.connect() as conn:
        return [str(action) for action in (await conn.execute(query)).scalars()]


# --- the second factor (TOTP) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TotpState:
    """A user's second factor: enabled since ``enabled_at``, or an enrolment ``pending``
    (a secret made, no code confirmed yet), or neither."""

    enabled_at: datetime | None
    pending: bool

    @property
    def enabled(self) -> bool:
        """Whether logging in needs a code."""
        return self.enabled_at is not None


def normalize_totp_code(text: str) -> str | None:
    """The 6 digits of a code as typed (full-width digits and spaces allowed), or None."""
    compact = "".join(unicodedata.normalize("NFKC", text).split())
    return compact if _TOTP_CODE_RE.fullmatch(compact) else None


def totp_uri(secret: str, username: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (typed or from a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step near ``now`` whose code is ``code``, or None."""
    digits = normalize_totp_code(code)
    if digits is None:
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // TOTP_STEP_SECONDS
    for step in range(current + TOTP_WINDOW, current - TOTP_WINDOW - 1, -1):
        if hmac.compare_digest(totp.generate_otp(step), digits):
            return step
    return None


async def _totp_row(engine: AsyncEngine, user_id: int) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                sa.select(
                    staff_users.c.totp_secret,
                    staff_users.c.totp_enabled_at,
                    staff_users.c.totp_last_step,
                ).where(staff_users.c.id == user_id)
            )
        ).first()


async def totp_state(engine: AsyncEngine, user_id: int) -> TotpState:
    """The second factor of user ``user_id`` (never the secret itself)."""
    row = await _totp_row(engine, user_id)
    if row is None:
        return TotpState(None, pending=False)
    enabled_at = row.totp_enabled_at if row.totp_secret is not None else None
    return TotpState(enabled_at, pending=row.totp_secret is not None and enabled_at is None)


async def start_totp(engine: AsyncEngine, user_id: int) -> str:
    """Make a new secret for user ``user_id``, not enabled until :func:`confirm_totp`.

    Returns the secret (base32) for the user to type or scan; an earlier unconfirmed
    one is replaced. Raises :class:`Conflict` when the second factor is already enabled
    (it must be disabled first) and :class:`NotFound` for an unknown user.
    """
    secret = pyotp.random_base32()
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                staff_users.update()
                .where(staff_users.c.id == user_id, staff_users.c.totp_enabled_at.is_(None))
                .values(totp_secret=secret, totp_last_step=None)
                .returning(staff_users.c.id)
            )
        ).first()
        if row is None:
            exists = (
                await conn.execute(sa.select(staff_users.c.id).where(staff_users.c.id == user_id))
            ).first()
            if exists is None:
                raise NotFound(f"no staff user with id {user_id}")
            raise Conflict("the second factor is already enabled")
    return secret


async def pending_totp_secret(engine: AsyncEngine, user_id: int) -> str | None:
    """The secret of an enrolment not yet confirmed (to show it again after a wrong
    first code); None once enabled, so an enabled secret never leaves the database."""
    row = await _totp_row(engine, user_id)
    if row is None or row.totp_enabled_at is not None:
        return None
    secret: str | None = row.totp_secret
    return secret


async def confirm_totp(engine: AsyncEngine, user_id: int, code: str, now: datetime) -> bool:
    """Enable the pending second factor if ``code`` is the app's current code.

    False (nothing changes) for a wrong or malformed code, or when no enrolment is
    pending. The code's step is remembered, so it cannot log in afterwards.
    """
    row = await _totp_row(engine, user_id)
    if row is None or row.totp_secret is None or row.totp_enabled_at is not None:
        return False
    step = _matching_step(row.totp_secret, code, now)
    if step is None:
        return False
    return await _take_step(
        engine,
        user_id,
        row.totp_secret,
        step,
        staff_users.c.totp_enabled_at.is_(None),
        totp_enabled_at=now,
    )


async def check_totp(engine: AsyncEngine, user_id: int, code: str, now: datetime) -> bool:
    """Whether ``code`` is a fresh code of user ``user_id``'s enabled second factor.

    A code is accepted once: its time step must be later than the last one accepted,
    and recording it is a conditional update, so two requests racing with the same code
    cannot both pass. False for a user without an enabled second factor.
    """
    row = await _totp_row(engine, user_id)
    if row is None or row.totp_secret is None or row.totp_enabled_at is None:
        return False
    step = _matching_step(row.totp_secret, code, now)
    if step is None:
        return False
    return await _take_step(
        engine,
        user_id,
        row.totp_secret,
        step,
        staff_users.c.totp_enabled_at.is_not(None),
        sa.or_(staff_users.c.totp_last_step.is_(None), staff_users.c.totp_last_step < step),
    )


async def _take_step(
    engine: AsyncEngine,
    user_id: int,
    secret: str,
    step: int,
    *conditions: Any,
    **values: Any,
) -> bool:
    """Record ``step`` as the last accepted one if the secret is still ``secret`` and
    ``conditions`` hold (one conditional update: racing requests cannot both pass)."""
    async with engine.begin() as conn:
        done = (
            await conn.execute(
                staff_users.update()
                .where(
                    staff_users.c.id == user_id, staff_users.c.totp_secret == secret, *conditions
                )
                .values(totp_last_step=step, **values)
                .returning(staff_users.c.id)
            )
        ).first()
    return done is not None


async def disable_totp(engine: AsyncEngine, user_id: int) -> bool:
    """Remove user ``user_id``'s second factor (enabled or pending); whether one was there."""
    async with engine.begin() as conn:
        return await _clear_totp(conn, staff_users.c.id == user_id) is not None


async def _clear_totp(conn: AsyncConnection, which: sa.ColumnElement[bool]) -> Any:
    """Forget the secret of the user ``which`` selects; their id and username, or None."""
    return (
        await conn.execute(
            staff_users.update()
            .where(which, staff_users.c.totp_secret.is_not(None))
            .values(totp_secret=None, totp_enabled_at=None, totp_last_step=None)
            .returning(staff_users.c.id, staff_users.c.username)
        )
    ).first()


async def reset_totp(
    engine: AsyncEngine, username: str, now: datetime, *, via: str = "cli"
) -> bool:
    """Remove ``username``'s second factor (an admin who lost the phone); ``totp_reset``
    is recorded in the same transaction when there was one to remove.

    Returns whether there was one. Raises :class:`NotFound` for an unknown username.
    """
    async with engine.begin() as conn:
        user = (
            await conn.execute(
                sa.select(staff_users.c.id, staff_users.c.username).where(
                    staff_users.c.username == username
                )
            )
        ).first()
        if user is None:
            raise NotFound(f"no staff user named {username!r}")
        cleared = await _clear_totp(conn, staff_users.c.id == user.id)
        if cleared is None:
            return False
        await record_action(
            conn,
            at=now,
            action="totp_reset",
            staff_id=int(user.id),
            username=str(user.username),
            target=f"staff:{user.id}",
            detail={"via": via},
        )
    return True
