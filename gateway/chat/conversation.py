"""One OA event handled end to end: stored, fed to the bot, replies sent and stored.

Called by the drain job for each queued event of one user, in order. Handling is
idempotent: the inbound message is stored under the webhook's deduplication key and
marked handled at the end, so an event taken again after a crash is skipped if it was
finished, and is not answered again if its answer went out (each stored reply carries
the event's key). A bot error does not block the user's later messages: it is logged and
the event marked handled; Redis or the network failing under the bot is no bot error, and
leaves the event queued for the next drain.

A bot reply is written ``sending`` before the OA call and ``sent``, ``failed`` or
``unknown`` after it (the state is in the row's ``payload``, with the reply's buttons so
that it can be sent again). OA messages carry no idempotency key, so a reply found still
``sending`` by a later drain (its worker died before or while Zalo was taking it) is not
sent blind: once the OA client's timeout is past, the drain reads the user's recent OA
conversation at Zalo (:meth:`ZaloClient.recent_messages`) and

- finds an OA message with the reply's text (a card: a non-text message or one naming its
  title), listed at or after 5 s before the reply was attempted and not already recorded
  for another row: the reply is marked ``sent`` with that message id, not sent again;
- finds none: the reply is sent now, the normal way (``sending``, then the outcome);
- cannot ask (a Zalo error, a timeout, no client): the reply is marked ``unknown`` (for a
  person: the console shows "không rõ đã gửi") and not sent.

The event is marked handled after that. A read timeout from Zalo on the send itself
(``MaybeSent``) is ``unknown`` at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.events import AttachmentSent, Followed, InboundEvent, InfoShared, TextSent, Unfollowed
from bot.replies import AskPhone, Text
from bot.router import Bot, BotPolicy
from gateway.chat import inbox, zns_ratings
from gateway.chat.runtime import JobResources
from gateway.chat.services import ChatServices
from gateway.delivery import outbox
from gateway.domain.calendar import WorkingCalendar
from gateway.domain.phones import mask_phones_in_text
from gateway.errors import GatewayError, MaybeSent
from gateway.storage.tables import chat_messages, handoffs, zalo_users
from gateway.texts.templates import Texts
from gateway.trust.otp import MASK as SECRET_MASK
from providers.zalo.client import ZaloClient
from providers.zalo.oa import MAX_LISTED, Button, OaListed, OaRequestUserInfo, OaText
from providers.zalo.webhook import parse_webhook

log = logging.getLogger(__name__)

# Failures of what the bot runs on, not of the event: the event is left for the next drain.
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)

# A bot reply's states (``payload["state"]``): written ``sending`` before the OA call.
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
UNKNOWN = "unknown"  # Zalo may have shown it: never sent again, left for a person

# A reply cut off by a crash is looked for at Zalo from this long before it was attempted
# (clocks differ), in at most this many pages of the conversation.
LOOKUP_SLACK = timedelta(seconds=5)
LOOKUP_PAGES = 5


class _Unsure(Exception):
    """Zalo's conversation could not tell whether a reply cut off by a crash is there."""


class Conversations:
    """Handles queued OA events and sends stored staff replies, for one job."""

    def __init__(
        self,
        resources: JobResources,
        texts: Texts,
        calendar: WorkingCalendar,
        clock: Callable[[], datetime],
    ) -> None:
        self.r = resources
        self.clock = clock
        s = resources.settings
        self.services = ChatServices(resources, calendar, clock)
        policy = BotPolicy(
            max_failures=s.chat.lookup_max_failures,
            max_codes=s.chat.lookup_max_codes,
            hotline=s.chat.hotline,
            otp_attempts=s.trust.otp_max_attempts,
            otp_minutes=max(1, s.trust.otp_ttl_seconds // 60),
        )
        self.bot = Bot(self.services, texts, policy, s.tz)

    async def handle(self, item: dict[str, Any]) -> None:
        """Handle one queued webhook event (see the module doc)."""
        event = parse_webhook(item["payload"], item.get("server"))
        if not isinstance(event, InboundEvent):  # receipts and echoes are not queued here
            return
        now = self.clock()
        async with self.r.engine.begin() as conn:
            handled = await _store_inbound(conn, event, item["payload"], now)
            if handled:
                return
            earlier = await _replies_to(conn, event)
            await _touch_user(conn, event)
        if earlier:
            # A crash came after the bot answered (or began to) and before the event was
            # marked handled: running the bot again could answer twice.
            await self._settle_cut_off(event, earlier)
            await self._mark_handled(event, None, None, None, forwarded=False)
            return
        try:
            outcome = await self.bot.handle(event)
        except _UNAVAILABLE:
            raise  # Redis or the network, not the event: it stays queued for the next drain
        except Exception:  # one bad event must not block this citizen's later messages
            log.exception("the bot failed on an event", extra={"user": event.user_id})
            await self._mark_handled(event, None, None, None, forwarded=False)
            return
        for reply in outcome.replies:
            await self._reply(
                event.user_id,
                reply,
                outcome.dossier_code,
                outcome.report_id,
                event.dedupe_key,
            )
        await self._mark_handled(
            event,
            outcome.dossier_code,
            outcome.report_id,
            outcome.handoff_id,
            forwarded=outcome.forwarded,
            secret=outcome.secret,
        )

    async def _reply(
        self,
        user_id: str,
        reply: Text | AskPhone,
        dossier_code: str | None,
        report_id: int | None,
        in_reply_to: str,
    ) -> None:
        message: OaText | OaRequestUserInfo
        base: dict[str, Any] = {"in_reply_to": in_reply_to}  # see _replies_to
        if isinstance(reply, AskPhone):
            message = OaRequestUserInfo(reply.title, reply.subtitle, _PHONE_IMAGE)
            text = f"{reply.title}\n{reply.subtitle}"
            base["card"] = "request_user_info"
        else:
            message = OaText(reply.text, tuple(Button(b.title, b.payload) for b in reply.buttons))
            text = reply.text
            if reply.buttons:  # kept to send the reply again after a crash
                base["buttons"] = [[b.title, b.payload] for b in reply.buttons]
        await self._send_bot(user_id, message, text, dossier_code, report_id, base)

    async def _send_bot(
        self,
        user_id: str,
        message: OaText | OaRequestUserInfo,
        text: str,
        dossier_code: str | None,
        report_id: int | None,
        base: dict[str, Any],
    ) -> None:
        """Record the reply ``sending``, call Zalo, then record what came of it (``base``:
        the payload's fixed part, with the event's key)."""
        async with self.r.engine.begin() as conn:
            row_id = (
                await conn.execute(
                    chat_messages.insert()
                    .values(
                        user_id=user_id,
                        direction="bot",
                        text=text,
                        payload=base | {"state": SENDING},
                        dossier_code=dossier_code,
                        report_id=report_id,
                        handled_at=self.clock(),
                        created_at=self.clock(),
                    )
                    .returning(chat_messages.c.id)
                )
            ).scalar_one()
        await self._call_zalo(row_id, user_id, message, base)

    async def _call_zalo(
        self, row_id: int, user_id: str, message: OaText | OaRequestUserInfo, base: dict[str, Any]
    ) -> None:
        """Send a reply recorded ``sending`` and record what came of it."""
        client = self.r.zalo
        key: str | None = None
        if client is None:
            outcome: dict[str, Any] = {"state": FAILED, "error": "Zalo is not configured"}
        else:
            try:
                sent = await client.send_oa(user_id, message)
            except MaybeSent as exc:
                # Zalo may have shown it, and an OA call has no idempotency key.
                outcome = {"state": UNKNOWN, "error": exc.detail[:500], "code": exc.CODE}
                log.warning(
                    "OA reply may have been sent",
                    extra={"user": user_id, "error": mask_phones_in_text(exc.detail)},
                )
            except GatewayError as exc:
                outcome = {"state": FAILED, "error": exc.detail, "code": getattr(exc, "code", None)}
                log.warning(
                    "OA reply not sent",
                    extra={"user": user_id, "error": mask_phones_in_text(exc.detail)},
                )
            else:
                key = f"oa:{sent.message_id}"
                outcome = {"state": SENT}
        await self._record_outcome(row_id, key, base | outcome)

    async def _record_outcome(self, row_id: int, key: str | None, payload: dict[str, Any]) -> None:
        async with self.r.engine.begin() as conn:
            await conn.execute(
                chat_messages.update()
                .where(chat_messages.c.id == row_id)
                .values(dedupe_key=key, payload=payload, handled_at=self.clock())
            )

    async def _settle_cut_off(self, event: InboundEvent, earlier: Sequence[Any]) -> None:
        """Settle the event's replies left ``sending`` by a dead worker (module doc).

        A reply younger than the OA client's timeout may still be on its way from a
        worker whose lock lapsed: wait that out first, then read its state again."""
        timeout = timedelta(seconds=self.r.settings.zalo.timeout_seconds)
        for row in earlier:
            if (row.payload or {}).get("state") != SENDING:
                continue
            began = _attempted_at(row.created_at, row.payload)
            wait = (began + timeout - self.clock()).total_seconds()
            if wait > 0:
                await asyncio.sleep(min(wait, timeout.total_seconds()))
            payload = await self._payload(row.id)
            if payload.get("state") != SENDING:
                continue  # its worker finished after all
            began = _attempted_at(row.created_at, payload)
            try:
                found = await self._find_at_zalo(event.user_id, row.text or "", payload, began)
            except (GatewayError, _Unsure) as exc:
                await self._set_unknown(row.id, event.user_id, exc)
                continue
            if found is not None:
                key = f"oa:{found.message_id}" if found.message_id else None
                found_payload = payload | {"state": SENT, "found_at_zalo": True}
                await self._record_outcome(row.id, key, found_payload)
                log.info(
                    "OA reply cut off by a crash was found at Zalo; not sent again",
                    extra={"user": event.user_id, "reply_id": row.id},
                )
                continue
            log.info(
                "OA reply cut off by a crash is not at Zalo; sending it now",
                extra={"user": event.user_id, "reply_id": row.id},
            )
            await self._send_again(row.id, event.user_id, row.text or "", payload)

    async def _payload(self, row_id: int) -> dict[str, Any]:
        async with self.r.engine.connect() as conn:
            payload = (
                await conn.execute(
                    sa.select(chat_messages.c.payload).where(chat_messages.c.id == row_id)
                )
            ).scalar_one()
        return dict(payload or {})

    async def _find_at_zalo(
        self, user_id: str, text: str, payload: dict[str, Any], began: datetime
    ) -> OaListed | None:
        """The OA message at Zalo that is this reply, or None when Zalo lists none; raises
        GatewayError (Zalo failed) or _Unsure (no match, and the listing did not reach back
        to the reply's call)."""
        client = self.r.zalo
        if client is None:
            raise _Unsure("Zalo is not configured")
        if not text.strip():
            raise _Unsure("the stored reply has no text to look for")
        since_ms = int((began - LOOKUP_SLACK).timestamp() * 1000)
        candidates: list[OaListed] = []
        complete = False  # the listing reached back past the reply's call, or ended
        for page in range(LOOKUP_PAGES):
            listed = await client.recent_messages(user_id, MAX_LISTED, page * MAX_LISTED)
            candidates += [
                m for m in listed if m.from_oa and (m.at_ms is None or m.at_ms >= since_ms)
            ]
            if not listed or any(m.at_ms is not None and m.at_ms < since_ms for m in listed):
                complete = True
                break
        keys = [f"oa:{m.message_id}" for m in candidates if m.message_id]
        async with self.r.engine.connect() as conn:
            recorded = set(
                (
                    await conn.execute(
                        sa.select(chat_messages.c.dedupe_key).where(
                            chat_messages.c.dedupe_key.in_(keys)
                        )
                    )
                ).scalars()
            )
        matches = [
            m
            for m in candidates
            if f"oa:{m.message_id}" not in recorded and _is_reply(m, text, payload)
        ]
        if matches:
            return matches[-1]  # the oldest: newest come first
        if not complete:
            raise _Unsure(f"{LOOKUP_PAGES} pages of the conversation are all newer")
        return None

    async def _send_again(
        self, row_id: int, user_id: str, text: str, payload: dict[str, Any]
    ) -> None:
        """Send a reply Zalo does not have, the normal way (it stays ``sending`` meanwhile,
        with the time of this attempt)."""
        try:
            message = _stored_message(text, payload)
        except ValueError as exc:  # a row that cannot be sent as stored
            await self._set_unknown(row_id, user_id, exc)
            return
        base = {k: v for k, v in payload.items() if k not in ("state", "error", "code")}
        base["attempted_at"] = self.clock().isoformat()
        await self._record_outcome(row_id, None, base | {"state": SENDING})
        await self._call_zalo(row_id, user_id, message, base)

    async def _set_unknown(self, row_id: int, user_id: str, why: Exception) -> None:
        """Zalo could not be asked about a reply cut off by a crash: left for a person."""
        async with self.r.engine.begin() as conn:
            payload = (
                await conn.execute(
                    sa.select(chat_messages.c.payload).where(chat_messages.c.id == row_id)
                )
            ).scalar_one()
            if (payload or {}).get("state") != SENDING:
                return  # its worker finished after all
            error = "cut off by a crash during the OA call: Zalo may have it"
            await conn.execute(
                chat_messages.update()
                .where(chat_messages.c.id == row_id)
                .values(payload=payload | {"state": UNKNOWN, "error": error})
            )
        detail = getattr(why, "detail", None) or str(why)
        log.warning(
            "OA reply may have been sent before a crash and Zalo could not be asked; "
            "not sent again",
            extra={"user": user_id, "reply_id": row_id, "error": mask_phones_in_text(detail)},
        )

    async def _mark_handled(
        self,
        event: InboundEvent,
        dossier_code: str | None,
        report_id: int | None,
        handoff_id: int | None,
        *,
        forwarded: bool,
        secret: bool = False,
    ) -> None:
        now = self.clock()
        # A message read as a proof (phone digits, a one-time code) is kept as a mask: the
        # console shows conversations, and the raw webhook holds the same text.
        hidden: dict[str, Any] = {"text": SECRET_MASK, "payload": None} if secret else {}
        async with self.r.engine.begin() as conn:
            await conn.execute(
                chat_messages.update()
                .where(chat_messages.c.dedupe_key == event.dedupe_key)
                .values(
                    handled_at=now,
                    dossier_code=dossier_code,
                    report_id=report_id,
                    handoff_id=handoff_id,
                    **hidden,
                )
            )
            if forwarded and handoff_id is not None:
                await conn.execute(
                    handoffs.update().where(handoffs.c.id == handoff_id).values(last_message_at=now)
                )

    async def send_stored(self, message_ids: list[int]) -> int:
        """Send staff replies stored by the API (rows not yet handled). Returns how many."""
        async with self.r.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(chat_messages).where(
                        chat_messages.c.id.in_(message_ids),
                        chat_messages.c.direction == "staff",
                        chat_messages.c.handled_at.is_(None),
                    )
                )
            ).all()
        sent = 0
        for row in rows:
            # Claim the row first: a second run of this job finds it handled and skips it.
            async with self.r.engine.begin() as conn:
                claimed = await conn.execute(
                    chat_messages.update()
                    .where(chat_messages.c.id == row.id, chat_messages.c.handled_at.is_(None))
                    .values(handled_at=self.clock())
                )
            if not claimed.rowcount:
                continue
            ok, detail = await _send_staff(self.r.zalo, row.user_id, row.text)
            async with self.r.engine.begin() as conn:
                await conn.execute(
                    chat_messages.update()
                    .where(chat_messages.c.id == row.id)
                    .values(
                        dedupe_key=detail if ok else None,
                        payload=None if ok else {"error": detail},
                    )
                )
            sent += ok
        return sent


# Zalo shows this picture on the "share your phone number" card.
_PHONE_IMAGE = "https://stc-oa.zdn.vn/resource/default/oa-cover.png"


def _attempted_at(created_at: datetime, payload: dict[str, Any] | None) -> datetime:
    """When the reply's last OA call began: its row's time, or a later attempt's."""
    again = (payload or {}).get("attempted_at")
    if isinstance(again, str):
        try:
            return max(created_at, datetime.fromisoformat(again))
        except (ValueError, TypeError):
            pass
    return created_at


def _is_reply(listed: OaListed, text: str, payload: dict[str, Any]) -> bool:
    """Whether an OA message Zalo lists is this stored reply: the same text (spaces
    aside); for the phone card, a message that is not a text or that names its title."""
    if payload.get("card"):
        title = text.partition("\n")[0].strip()
        return listed.kind != "text" or bool(title and title in listed.text)
    return " ".join(listed.text.split()) == " ".join(text.split())


def _stored_message(text: str, payload: dict[str, Any]) -> OaText | OaRequestUserInfo:
    """The OA message a stored bot reply was (ValueError if it cannot be one)."""
    if payload.get("card") == "request_user_info":
        title, _, subtitle = text.partition("\n")
        return OaRequestUserInfo(title, subtitle, _PHONE_IMAGE)
    stored = payload.get("buttons")
    buttons = tuple(
        Button(str(b[0]), str(b[1]))
        for b in (stored if isinstance(stored, list) else [])
        if isinstance(b, list) and len(b) == 2
    )
    return OaText(text, buttons)


async def _send_staff(client: ZaloClient | None, user_id: str, text: str) -> tuple[bool, str]:
    if client is None:
        return False, "Zalo is not configured"
    try:
        sent = await client.send_oa(user_id, OaText(text))
    except GatewayError as exc:
        log.warning("staff reply not sent", extra={"user": user_id, "error": exc.detail})
        return False, exc.detail[:500]
    return True, f"oa:{sent.message_id}"


async def _replies_to(conn: AsyncConnection, event: InboundEvent) -> list[Any]:
    """The bot's stored replies to this (stored, unhandled) event: they carry the event's
    key, and come after it in the user's messages."""
    stored = (
        sa.select(chat_messages.c.id)
        .where(chat_messages.c.dedupe_key == event.dedupe_key)
        .scalar_subquery()
    )
    rows = await conn.execute(
        sa.select(
            chat_messages.c.id,
            chat_messages.c.text,
            chat_messages.c.payload,
            chat_messages.c.created_at,
        ).where(
            chat_messages.c.user_id == event.user_id,
            chat_messages.c.direction == "bot",
            chat_messages.c.id > stored,
        )
    )
    return [row for row in rows if (row.payload or {}).get("in_reply_to") == event.dedupe_key]


async def _store_inbound(
    conn: AsyncConnection, event: InboundEvent, payload: dict[str, Any], now: datetime
) -> bool:
    """Store the citizen's message once; True if it was already handled."""
    row = (
        await conn.execute(
            sa.select(chat_messages.c.handled_at).where(
                chat_messages.c.dedupe_key == event.dedupe_key
            )
        )
    ).first()
    if row is not None:
        return row.handled_at is not None
    text: str | None = None
    if isinstance(event, TextSent):
        text = event.text
    elif isinstance(event, AttachmentSent):
        text = event.description or event.url
    elif isinstance(event, InfoShared):
        text = "(shared contact information)"
    await conn.execute(
        chat_messages.insert().values(
            user_id=event.user_id,
            direction="in",
            dedupe_key=event.dedupe_key,
            event_name=str(payload.get("event_name", ""))[:48],
            text=text,
            payload=payload,
            created_at=now,
        )
    )
    return False


async def _touch_user(conn: AsyncConnection, event: InboundEvent) -> None:
    """Keep the OA user's row: following or not, and the last interaction (7-day window)."""
    values: dict[str, Any] = {"updated_at": event.at}
    if isinstance(event, Followed):
        values["follows"] = True
    if isinstance(event, Unfollowed):
        values["follows"] = False
    else:
        values["last_interaction_at"] = event.at
    if isinstance(event, InfoShared) and event.name:
        values["display_name"] = event.name[:200]
    updated = await conn.execute(
        zalo_users.update().where(zalo_users.c.user_id == event.user_id).values(**values)
    )
    if not updated.rowcount:
        # A user we never saw follow is a follower if they can write to the OA at all.
        values.setdefault("follows", not isinstance(event, Unfollowed))
        await conn.execute(
            zalo_users.insert().values(user_id=event.user_id, created_at=event.at, **values)
        )


async def apply_zns_receipts(r: JobResources, now: datetime) -> tuple[int, bool]:
    """Apply the queued ZNS receipts; returns (applied, some arrived before their attempt
    was recorded — those stay queued)."""
    items = await inbox.take_receipts(r.redis, r.settings)
    applied = 0
    for index, item in enumerate(items):
        if zns_ratings.is_feedback(item):
            await zns_ratings.record_feedback(r.engine, item)
            continue
        result = await outbox.apply_receipt(
            r.engine, "zalo_zns", item["msg_id"], item.get("tracking_id"), "delivered", "", now
        )
        if result == "early":
            await inbox.drop_receipts(r.redis, r.settings, index)
            return applied, True
        if result == "unknown":
            log.warning("ZNS receipt for no known message", extra={"msg_id": item["msg_id"]})
        applied += result == "applied"
    await inbox.drop_receipts(r.redis, r.settings, len(items))
    return applied, False
