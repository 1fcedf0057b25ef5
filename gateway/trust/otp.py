"""One-time codes: proving that the person asking holds a phone.

Rules:

- A code is :data:`CODE_DIGITS` (6) digits drawn with :mod:`secrets`. It is valid
  ``settings.trust.otp_ttl_seconds`` (5 minutes) and allows
  ``settings.trust.otp_max_attempts`` (3) tries. A used code, an expired code and a code
  whose tries are used up never work again: the third wrong try answers ``wrong`` with
  no tries left, every later one ``exhausted``.
- Only ``HMAC-SHA256(key, f"{code_id}:{code}")`` is stored (hex), keyed with
  ``settings.trust.secret`` (``CITIZEN_SECRET``). Without a secret the key is a digest of
  the database URL: the same in every process of one installation (so a code sent by
  the web process checks in the chat worker), but guessable by whoever knows the URL,
  which is why ``tthc serve`` insists on a real secret. The typed code is compared in
  constant time.
- Sending is limited per target phone (``otp_per_phone_hour`` / ``otp_per_phone_day``) and
  per requester (``otp_per_requester_hour``): past a limit ``send_*`` raises
  :class:`TooManyCodes` and sends nothing. The counts are rows of ``one_time_codes``
  created in the last hour or day, so the limits survive restarts and hold across
  processes (on PostgreSQL an advisory lock per phone and per requester serialises the
  count and the insert; SQLite's writer serialises every write transaction anyway).
- A requester is ``"zalo:<OA user id>"`` or ``"web:<16 hex digest of the web session>"``;
  only the requester who asked may answer a code, and ``check`` looks at their newest
  code only (for the dossier given, else their newest purpose-``phone`` code): a new
  code replaces the earlier ones, and once it is used there is none to answer.
- ``send_for_dossier`` sends to the dossier's own phone, which the asker never sees. For
  an unknown dossier, or one without a usable phone, nothing is sent but a row is still
  written (phone ``""``, the hash of a code nobody knows): the requester's limit counts
  it, ``check`` answers ``wrong`` to it like to any code, the per-phone limits apply to
  that dossier code as if it had a phone, and the caller answers exactly as if a code had
  gone out (no oracle of which dossiers exist).
- The code travels as a notice of kind ``otp`` (lane ``urgent``, dedupe key
  ``otp-<code id>``, source ``gateway``, params ``otp_code``, ``minutes`` and
  ``expires_at``), inserted in the same transaction as the code's row: by ZNS when
  ``ZNS_TEMPLATE_OTP`` is configured and the phone is a Vietnamese mobile, else by SMS;
  never by OA message, never held back by quiet hours, and not at all once the code has
  expired (:func:`stale_reason`: the ZNS receipt deadline and then the SMS fallback may
  come after the five minutes). Once checked ``ok``, the code is erased from its notice
  (``params.otp_code`` becomes ``"erased"``, ``text`` NULL) in the same transaction. The
  code is never logged; staff pages show it as ``••••••``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.domain.phones import normalize_phone
from gateway.errors import GatewayError
from gateway.settings import Settings
from gateway.storage import outbox
from gateway.storage.outbox import GATEWAY_SOURCE, NewNotice
from gateway.storage.tables import dossiers, notices, one_time_codes

CODE_DIGITS = 6
OTP_KIND = "otp"
# The notice param that carries the code, and what it becomes once the code is used.
CODE_PARAM = "otp_code"
ERASED = "erased"
# How staff pages show a code.
MASK = "••••••"

Purpose = Literal["phone", "dossier"]
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


class TooManyCodes(GatewayError):
    """Too many codes were sent to this phone, or asked for by this requester, lately."""

    def __init__(self, scope: Literal["phone", "requester"], retry_after_seconds: int) -> None:
        super().__init__(
            f"too many one-time codes for this {scope}; retry in {retry_after_seconds} s"
        )
        self.scope: Literal["phone", "requester"] = scope
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True, slots=True)
class CodeSent:
    """What a send did. ``code_id`` and ``notice_id`` are None when nothing was sent (an
    unknown dossier, or one without a usable phone); the caller answers alike anyway.

    The caller offers ``notice_id`` to the delivery queue once this returns (the row is
    committed): ``queue.offer_notices([(notice_id, "urgent")])``.
    """

    code_id: int | None
    expires_at: datetime
    notice_id: str | None
    # How the code is expected to arrive (the channel a real code would take, also when
    # nothing was sent).
    channel: Literal["zns", "sms"] | None


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """The outcome of checking a typed code.

    ``none``: the requester has no unused code (for that dossier); ``expired``: their
    newest one is past its time; ``exhausted``: its tries were used up before this one;
    ``wrong``: not it (``attempts_left`` more tries, 0: ask for a new code); ``ok``: it,
    with the proven ``phone_e164`` (and ``dossier_code`` for a dossier code).
    """

    outcome: Literal["ok", "wrong", "expired", "exhausted", "none"]
    attempts_left: int = 0
    phone_e164: str | None = None
    dossier_code: str | None = None


def hmac_key(settings: Settings) -> bytes:
    """The key of the trust HMACs: ``CITIZEN_SECRET``, else a digest of the database URL
    (the same in every process of an installation; see the module doc)."""
    if settings.trust.secret:
        return settings.trust.secret.encode()
    return hashlib.sha256(b"tthc-trust-fallback:" + settings.database_url.encode()).digest()


def code_hash(key: bytes, code_id: int, code: str) -> str:
    """What is stored of a code: ``HMAC-SHA256(key, f"{code_id}:{code}")`` in hex."""
    return hmac.new(key, f"{code_id}:{code}".encode(), hashlib.sha256).hexdigest()


def new_code() -> str:
    """Six random digits (leading zeros kept)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


class OneTimeCodes:
    """Send and check one-time codes (see the module doc for the rules)."""

    def __init__(
        self, engine: AsyncEngine, settings: Settings, clock: Callable[[], datetime]
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self._key = hmac_key(settings)

    @property
    def _ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.trust.otp_ttl_seconds)

    def expected_channel(self, phone_e164: str | None) -> Literal["zns", "sms"]:
        """ZNS when an ``otp`` template is configured and the phone is a Vietnamese
        mobile (any phone, when it is not known), else SMS; the delivery plan decides
        the same way."""
        zalo = self.settings.zalo
        configured = zalo.enabled and OTP_KIND in zalo.zns_templates
        if configured and (phone_e164 is None or normalize_phone(phone_e164).ok):
            return "zns"
        return "sms"

    async def send_to_phone(self, requester: str, phone_e164: str) -> CodeSent:
        """Send a code proving the asker holds ``phone_e164`` (purpose ``phone``)."""
        async with self.engine.begin() as conn:
            return await self._send(conn, requester, "phone", phone_e164, None)

    async def send_for_dossier(self, requester: str, dossier_code: str) -> CodeSent:
        """Send a code to the phone of dossier ``dossier_code`` (purpose ``dossier``);
        an unknown dossier or one without a usable phone gets nothing, but the answer
        looks the same and the requester's limit counts it."""
        async with self.engine.begin() as conn:
            phone = (
                await conn.execute(
                    sa.select(dossiers.c.phone_e164).where(dossiers.c.code == dossier_code)
                )
            ).scalar()
            return await self._send(conn, requester, "dossier", phone or None, dossier_code)

    async def check(
        self, requester: str, typed: str, *, dossier_code: str | None = None
    ) -> CodeCheck:
        """Check ``typed`` against the requester's newest code (for
        ``dossier_code`` when given, else their newest purpose-``phone`` code)."""
        now = self.clock()
        max_attempts = self.settings.trust.otp_max_attempts
        query = sa.select(one_time_codes).where(one_time_codes.c.requester == requester)
        if dossier_code is not None:
            query = query.where(
                one_time_codes.c.purpose == "dossier",
                one_time_codes.c.dossier_code == dossier_code,
            )
        else:
            query = query.where(one_time_codes.c.purpose == "phone")
        query = query.order_by(one_time_codes.c.created_at.desc(), one_time_codes.c.id.desc())
        async with self.engine.begin() as conn:
            # Locked until the try is counted: concurrent guesses get three tries in all.
            row = (await conn.execute(query.limit(1).with_for_update())).first()
            if row is None or row.used_at is not None:
                return CodeCheck("none")
            if row.expires_at <= now:
                return CodeCheck("expired")
            if row.attempts >= max_attempts:
                return CodeCheck("exhausted")
            digits = "".join(typed.split())
            matches = hmac.compare_digest(code_hash(self._key, row.id, digits), row.code_hash)
            if not matches:
                await conn.execute(
                    one_time_codes.update()
                    .where(one_time_codes.c.id == row.id)
                    .values(attempts=one_time_codes.c.attempts + 1)
                )
                return CodeCheck("wrong", attempts_left=max(0, max_attempts - row.attempts - 1))
            used = await conn.execute(
                one_time_codes.update()
                .where(one_time_codes.c.id == row.id, one_time_codes.c.used_at.is_(None))
                .values(used_at=now, attempts=one_time_codes.c.attempts + 1)
            )
            if used.rowcount != 1:  # a concurrent check used it first
                return CodeCheck("none")
            if row.notice_id is not None:
                await erase_code(conn, [row.notice_id])
        return CodeCheck("ok", phone_e164=row.phone_e164, dossier_code=row.dossier_code)

    # -- sending ---------------------------------------------------------------------------

    async def _send(
        self,
        conn: AsyncConnection,
        requester: str,
        purpose: Purpose,
        phone: str | None,
        dossier_code: str | None,
    ) -> CodeSent:
        now = self.clock()
        await self._lock(conn, requester, phone)
        await self._enforce_limits(conn, requester, phone, dossier_code, now)
        expires_at = now + self._ttl
        code = new_code()
        inserted = await conn.execute(
            one_time_codes.insert()
            .returning(one_time_codes.c.id)
            .values(
                phone_e164=phone or "",
                purpose=purpose,
                dossier_code=dossier_code,
                requester=requester,
                code_hash="",
                attempts=0,
                created_at=now,
                expires_at=expires_at,
            )
        )
        code_id = int(inserted.scalar_one())
        if phone is None:
            # Nothing to send: store the hash of a code nobody knows, answer alike.
            await conn.execute(
                one_time_codes.update()
                .where(one_time_codes.c.id == code_id)
                .values(code_hash=code_hash(self._key, code_id, new_code() + "-"))
            )
            return CodeSent(None, expires_at, None, self.expected_channel(None))
        notice = NewNotice(
            kind=OTP_KIND,
            dossier_code=dossier_code or "",
            source_id=GATEWAY_SOURCE,
            event_id=f"otp-{code_id}",
            dedupe_key=f"otp-{code_id}",
            phone_e164=phone,
            params={
                CODE_PARAM: code,
                "minutes": self.settings.trust.otp_ttl_seconds // 60,
                "expires_at": expires_at.isoformat(),
            },
            lane="urgent",
        )
        notice_id = await outbox.insert_once(conn, notice, now)
        await conn.execute(
            one_time_codes.update()
            .where(one_time_codes.c.id == code_id)
            .values(code_hash=code_hash(self._key, code_id, code), notice_id=notice_id)
        )
        return CodeSent(code_id, expires_at, notice_id, self.expected_channel(phone))

    async def _lock(self, conn: AsyncConnection, requester: str, phone: str | None) -> None:
        """PostgreSQL: serialise the count-then-insert per requester and per phone until
        the transaction ends (SQLite's writer already serialises write transactions)."""
        if conn.dialect.name != "postgresql":
            return
        names = sorted({f"otp:requester:{requester}", *([f"otp:phone:{phone}"] if phone else [])})
        for name in names:
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(name))))

    async def _enforce_limits(
        self,
        conn: AsyncConnection,
        requester: str,
        phone: str | None,
        dossier_code: str | None,
        now: datetime,
    ) -> None:
        trust = self.settings.trust
        checks: list[tuple[Literal["phone", "requester"], Any, timedelta, int]] = [
            (
                "requester",
                one_time_codes.c.requester == requester,
                _HOUR,
                trust.otp_per_requester_hour,
            )
        ]
        same_phone: Any = None
        if phone is not None:
            same_phone = one_time_codes.c.phone_e164 == phone
        elif dossier_code is not None:
            # An unknown dossier (or one without a phone) runs out of codes like a known
            # one would, so the phone's limit tells nobody which dossiers exist.
            same_phone = sa.and_(
                one_time_codes.c.phone_e164 == "", one_time_codes.c.dossier_code == dossier_code
            )
        if same_phone is not None:
            checks = [
                ("phone", same_phone, _HOUR, trust.otp_per_phone_hour),
                ("phone", same_phone, _DAY, trust.otp_per_phone_day),
                *checks,
            ]
        for scope, condition, window, limit in checks:
            since = now - window
            count, oldest = (
                await conn.execute(
                    sa.select(sa.func.count(), sa.func.min(one_time_codes.c.created_at)).where(
                        condition, one_time_codes.c.created_at > since
                    )
                )
            ).one()
            if count >= limit:
                # Room again once the oldest code of the window falls out of it.
                wait = (oldest + window - now).total_seconds() if oldest is not None else 60
                raise TooManyCodes(scope, max(1, int(wait) + 1))


def hide_code(
    kind: str, params: Mapping[str, Any], text: str | None
) -> tuple[dict[str, Any], str | None]:
    """A notice's params and text as staff may see them: an ``otp`` notice's code is
    replaced by :data:`MASK` (other kinds are returned as they are)."""
    code = params.get(CODE_PARAM) if kind == OTP_KIND else None
    if not isinstance(code, str) or code == ERASED:
        return dict(params), text
    shown = text.replace(code, MASK) if text else text
    return {**params, CODE_PARAM: MASK}, shown


def stale_reason(params: Mapping[str, Any], now: datetime) -> str | None:
    """Why an ``otp`` notice must not go out (any more): its code was used, erased or has
    expired (a code arriving after its time only confuses); None: send it."""
    if params.get(CODE_PARAM) in (None, ERASED):
        return "the one-time code was used or erased before it could be sent"
    expires = params.get("expires_at")
    if isinstance(expires, str) and datetime.fromisoformat(expires) <= now:
        return "the one-time code expired before it could be sent"
    return None


async def erase_code(conn: AsyncConnection, notice_ids: list[str]) -> None:
    """Erase the code from these ``otp`` notices (params and the text sent), inside the
    caller's transaction."""
    if not notice_ids:
        return
    rows = (
        await conn.execute(
            sa.select(notices.c.id, notices.c.params).where(
                notices.c.id.in_(notice_ids), notices.c.kind == OTP_KIND
            )
        )
    ).all()
    for row in rows:
        params = {**(row.params or {}), CODE_PARAM: ERASED}
        await conn.execute(
            notices.update().where(notices.c.id == row.id).values(params=params, text=None)
        )
