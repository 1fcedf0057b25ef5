"""The bot's ports, implemented with the database and Redis.

The bot decides; this module looks up and records. Guessing guards (wrong proofs per
user, per dossier and per phone; distinct codes asked: ``gateway.trust.guards``, under
the requester ``"zalo:<user id>"``) and conversation state live in Redis with TTLs;
everything a person may need to read later (users, reports, ratings, handoffs, one-time
codes, subscriptions) lives in the database. A shared number is stored as a claim
(``claimed_phone_e164``); a one-time code sent to it (``gateway.trust.otp``) and typed
back makes it the user's proven number (``phone_e164``, ``verified_at``). Notices this
creates (the code, "your notices moved") are offered to the queue as urgent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import orjson
import sqlalchemy as sa

from bot.ports import (
    Citizen,
    CodeOffer,
    CodeResult,
    DossierFacts,
    NoticeFacts,
    Question,
    ReportFacts,
)
from gateway.chat.runtime import JobResources
from gateway.domain.calendar import WorkingCalendar
from gateway.storage import ratings as rating_store
from gateway.storage import reports as report_store
from gateway.storage.tables import (
    chat_messages,
    dossiers,
    events,
    handoffs,
    result_checks,
    zalo_users,
)
from gateway.trust import subscriptions
from gateway.trust.guards import Guards
from gateway.trust.links import Links
from gateway.trust.news import dossier_notices
from gateway.trust.otp import CodeSent, OneTimeCodes, TooManyCodes

log = logging.getLogger(__name__)


class ChatServices:
    """What the bot may ask and record, for one job."""

    def __init__(
        self, r: JobResources, calendar: WorkingCalendar, clock: Callable[[], datetime]
    ) -> None:
        self.r = r
        self.s = r.settings
        self.calendar = calendar
        self.clock = clock
        self.guards = Guards(r.redis, r.settings)
        self.codes = OneTimeCodes(r.engine, r.settings, clock)

    def _key(self, *parts: str) -> str:
        return f"{self.s.redis_key_prefix}chat:" + ":".join(parts)

    # --- the citizen ------------------------------------------------------------------

    async def citizen(self, user_id: str) -> Citizen:
        async with self.r.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(zalo_users).where(zalo_users.c.user_id == user_id))
            ).first()
            handoff = (
                await conn.execute(
                    sa.select(handoffs.c.id).where(
                        handoffs.c.user_id == user_id, handoffs.c.status == "open"
                    )
                )
            ).scalar()
        if row is None:
            return Citizen(user_id, False, None, False, handoff)
        proven = row.phone_e164 if row.verified_at else None
        return Citizen(
            user_id,
            bool(row.follows),
            proven,
            proven is not None and row.subscribed_at is not None,
            handoff,
            row.claimed_phone_e164,
        )

    async def set_following(self, user_id: str, follows: bool) -> None:
        await self._update_user(user_id, follows=follows)

    async def claim_phone(self, user_id: str, phone_e164: str, name: str | None) -> None:
        values: dict[str, Any] = {"claimed_phone_e164": phone_e164, "claimed_at": self.clock()}
        if name:
            values["display_name"] = name[:200]
        await self._update_user(user_id, **values)

    async def _prove_phone(self, user_id: str, phone_e164: str) -> None:
        """The user typed back the code sent to ``phone_e164``: their proven number."""
        now = self.clock()
        async with self.r.engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(zalo_users.c.phone_e164).where(zalo_users.c.user_id == user_id)
                )
            ).first()
            values: dict[str, Any] = {"phone_e164": phone_e164, "verified_at": now}
            if row is not None and row.phone_e164 != phone_e164:
                values["subscribed_at"] = None  # a new number: ask again before using it
            await self._upsert(conn, user_id, values)

    async def subscribe(self, user_id: str, phone_e164: str) -> None:
        citizen = await self.citizen(user_id)
        if citizen.verified_phone != phone_e164:  # the bot never asks this; refuse anyway
            raise ValueError("only the user's proven number can be subscribed")
        ids = await subscriptions.subscribe(
            self.r.engine,
            user_id=user_id,
            phone_e164=phone_e164,
            now=self.clock(),
            links=Links.for_settings(self.s),
        )
        await self.r.queue.offer_notices([(i, "urgent") for i in ids])

    async def unsubscribe(self, user_id: str) -> bool:
        stopped = await subscriptions.stop(
            self.r.engine, user_id=user_id, by="oa", now=self.clock()
        )
        return stopped is not None

    # --- one-time codes -------------------------------------------------------------------

    async def send_phone_code(self, user_id: str, phone_e164: str) -> CodeOffer:
        return await self._offer(self.codes.send_to_phone(f"zalo:{user_id}", phone_e164))

    async def send_dossier_code(self, user_id: str, dossier_code: str) -> CodeOffer:
        return await self._offer(self.codes.send_for_dossier(f"zalo:{user_id}", dossier_code))

    async def _offer(self, sending: Any) -> CodeOffer:
        try:
            sent: CodeSent = await sending
        except TooManyCodes as exc:
            return CodeOffer(self.clock(), exc.retry_after_seconds)
        if sent.notice_id is not None:
            await self.r.queue.offer_notices([(sent.notice_id, "urgent")])
        return CodeOffer(sent.expires_at)

    async def check_code(
        self, user_id: str, typed: str, dossier_code: str | None = None
    ) -> CodeResult:
        checked = await self.codes.check(f"zalo:{user_id}", typed, dossier_code=dossier_code)
        if checked.outcome == "ok" and dossier_code is None and checked.phone_e164:
            await self._prove_phone(user_id, checked.phone_e164)
        return CodeResult(checked.outcome, checked.attempts_left)

    async def _update_user(self, user_id: str, **values: Any) -> None:
        async with self.r.engine.begin() as conn:
            await self._upsert(conn, user_id, values)

    async def _upsert(self, conn: Any, user_id: str, values: dict[str, Any]) -> None:
        now = self.clock()
        updated = await conn.execute(
            zalo_users.update()
            .where(zalo_users.c.user_id == user_id)
            .values(updated_at=now, **values)
        )
        if not updated.rowcount:
            values.setdefault("follows", True)
            await conn.execute(
                zalo_users.insert().values(
                    user_id=user_id, created_at=now, updated_at=now, **values
                )
            )

    # --- dossiers -------------------------------------------------------------------------

    async def dossier(self, code: str) -> DossierFacts | None:
        async with self.r.engine.connect() as conn:
            row = (await conn.execute(sa.select(dossiers).where(dossiers.c.code == code))).first()
            if row is None:
                return None
            last = (
                await conn.execute(
                    sa.select(events.c.type, events.c.occurred_at)
                    .where(events.c.dossier_code == code, events.c.superseded.is_(False))
                    .order_by(events.c.occurred_at.desc(), events.c.seq.desc())
                    .limit(1)
                )
            ).first()
            sent = await dossier_notices(conn, code)
        return DossierFacts(
            code=row.code,
            procedure_name=row.procedure_name,
            agency_code=row.agency_code,
            agency_name=row.agency_name,
            state=row.state,
            received_at=row.received_at,
            due_at=row.due_at,
            finished_at=row.finished_at,
            finished_by_name=row.finished_by_name,
            phone_e164=row.phone_e164,
            last_step=last.type if last else None,
            last_step_at=last.occurred_at if last else None,
            notices=tuple(NoticeFacts(n.kind, n.channel, n.state, n.sent_at) for n in sent),
        )

    # --- guessing guards (gateway.trust.guards) ---------------------------------------

    async def lookup_locked(self, user_id: str) -> bool:
        return await self.guards.locked(f"zalo:{user_id}")

    async def lookup_failed(self, user_id: str, dossier_code: str, phone_e164: str | None) -> int:
        return await self.guards.failed(f"zalo:{user_id}", dossier_code, phone_e164)

    async def lookup_code_asked(self, user_id: str, code: str) -> int:
        return await self.guards.code_asked(f"zalo:{user_id}", code)

    async def needs_code(self, dossier_code: str, phone_e164: str | None) -> bool:
        return await self.guards.needs_code(dossier_code, phone_e164)

    # --- reports, result checks, ratings, handoffs ----------------------------------------

    async def open_report(
        self,
        user_id: str,
        dossier_code: str,
        kind: Literal["false_closure", "problem"],
        description: str,
        source: Literal["zalo", "result_check"],
        proof: str,
    ) -> ReportFacts:
        citizen = await self.citizen(user_id)
        phone = citizen.verified_phone
        if proof == "otp":  # the code went to the dossier's phone: updates go there too
            dossier = await self.dossier(dossier_code)
            phone = dossier.phone_e164 if dossier is not None else phone
        created = await report_store.create_report(
            self.r.engine,
            kind=kind,
            source=source,
            dossier_code=dossier_code,
            description=description,
            zalo_user_id=user_id,
            phone_e164=phone,
            calendar=self.calendar,
            answer_working_days=self.s.chat.report_answer_working_days,
            now=self.clock(),
            acknowledge=False,  # the bot's answer tells the number and the date
            proof=proof,
        )
        report, notice_ids = created
        # Best effort, like every enqueue: the relay picks up what this misses.
        await self.r.queue.offer_notices([(i, "urgent") for i in notice_ids])
        return ReportFacts(
            report.id,
            report.number,
            report.dossier_code or dossier_code,
            report.status,
            report.expected_at,
        )

    async def record_result_check(
        self, user_id: str, dossier_code: str, received: bool, proof: str
    ) -> bool:
        citizen = await self.citizen(user_id)
        now = self.clock()
        async with self.r.engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(result_checks).where(result_checks.c.dossier_code == dossier_code)
                )
            ).first()
            asked_of_user = (
                citizen.verified_phone is not None
                and row is not None
                and row.phone_e164 == citizen.verified_phone
            )
            if (
                row is None
                or row.state not in ("asked", "received", "not_received")
                or not (asked_of_user or proof == "otp")
            ):
                return False
            await conn.execute(
                result_checks.update()
                .where(result_checks.c.dossier_code == dossier_code)
                .values(
                    state="received" if received else "not_received",
                    answered_at=now,
                    zalo_user_id=user_id,
                    answer_channel="oa",
                )
            )
        return True

    async def record_rating(
        self,
        user_id: str,
        dossier_code: str,
        progress: int | None,
        quality: int | None,
        comment: str | None,
    ) -> None:
        await rating_store.record_rating(
            self.r.engine,
            dossier_code=dossier_code,
            channel="oa",
            rater=f"oa:{user_id}",
            progress=progress,
            quality=quality,
            comment=comment,
            now=self.clock(),
        )

    async def open_handoff(self, user_id: str, dossier_code: str | None) -> int:
        now = self.clock()
        async with self.r.engine.begin() as conn:
            existing = (
                await conn.execute(
                    sa.select(handoffs.c.id).where(
                        handoffs.c.user_id == user_id, handoffs.c.status == "open"
                    )
                )
            ).scalar()
            if existing is not None:
                return int(existing)
            result = await conn.execute(
                handoffs.insert()
                .values(
                    user_id=user_id,
                    dossier_code=dossier_code,
                    status="open",
                    opened_at=now,
                    last_message_at=now,
                )
                .returning(handoffs.c.id)
            )
            return int(result.scalar_one())

    async def close_handoff(self, user_id: str) -> None:
        now = self.clock()
        async with self.r.engine.begin() as conn:
            await conn.execute(
                handoffs.update()
                .where(handoffs.c.user_id == user_id, handoffs.c.status == "open")
                .values(status="closed", closed_at=now)
            )

    async def pending_question(self, user_id: str) -> Question | None:
        async with self.r.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(
                        chat_messages.c.direction,
                        chat_messages.c.payload,
                        chat_messages.c.dossier_code,
                    )
                    .where(chat_messages.c.user_id == user_id, chat_messages.c.direction != "in")
                    .order_by(chat_messages.c.id.desc())
                    .limit(1)
                )
            ).first()
        if row is None or row.direction != "notice" or not row.dossier_code:
            return None
        kind = (row.payload or {}).get("kind")
        if kind == "result_check":
            return Question("result_check", row.dossier_code)
        if kind == "rating_request":
            return Question("rating_request", row.dossier_code)
        return None

    # --- conversation state ---------------------------------------------------------------

    async def load_state(self, user_id: str) -> dict[str, Any]:
        raw = await self.r.redis.get(self._key("state", user_id))
        return dict(orjson.loads(raw)) if raw else {}

    async def save_state(self, user_id: str, state: dict[str, Any]) -> None:
        await self.r.redis.set(
            self._key("state", user_id), orjson.dumps(state), ex=self.s.chat.state_ttl_seconds
        )

    async def clear_state(self, user_id: str) -> None:
        await self.r.redis.delete(self._key("state", user_id))
