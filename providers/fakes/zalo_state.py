"""The fake Zalo platform's state: app, tokens, users, templates, sent messages, modes.

:class:`FakeZalo` is what tests and the control API drive; ``providers/fakes/zalo.py``
serves it over HTTP with Zalo's wire protocol. Simulated citizens post signed webhooks
to the gateway from here, exactly as Zalo would (``reference/zalo.md`` §2).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout

from providers.zalo_webhook import sign

log = logging.getLogger(__name__)

MODES = (
    "ok",
    "token_expired",
    "outside_window",
    "no_zalo_account",
    "rate_limited",
    "slow",
    "http_500",
    "timeout",
)
WEBHOOK_MODES = ("normal", "duplicates")
RECEIPT_MODES = ("immediate", "late", "never", "duplicate")
REFRESH_MODES = ("ok", "http_500", "refused")
OA_SERVER = "OA OpenAPI"
ZNS_SERVER = "ZNS"
WINDOW_SECONDS = 7 * 86_400
# Which endpoints a mode applies to (the others leave it for later calls).
_MODE_SCOPE = {"outside_window": {"oa"}, "no_zalo_account": {"zns"}}
_API_ENDPOINTS = ("oa", "zns", "template", "status")


@dataclass
class FakeUser:
    """A citizen with a Zalo account, as the OA sees them."""

    user_id: str
    name: str
    phone_e164: str | None
    follows: bool = False
    last_interaction: float = 0.0  # epoch seconds; 0 = never
    user_id_by_app: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FakeTemplate:
    """An approved (or not) ZNS template; ``params`` in Zalo's ``listParams`` form."""

    template_id: str
    name: str
    params: list[dict[str, Any]]
    status: str = "ENABLE"
    tag: str = "IN_TRANSACTION"

    def info(self) -> dict[str, Any]:
        return {
            "templateId": self.template_id,
            "templateName": self.name,
            "status": self.status,
            "listParams": self.params,
            "listButtons": [],
            "timeout": 7_200_000,
            "previewUrl": f"https://account.zalo.cloud/znspreview/{self.template_id}",
            "templateQuality": "HIGH",
            "templateTag": self.tag,
            "price": "150",
        }


@dataclass
class SentMessage:
    """One OA or ZNS message the gateway got Zalo to take."""

    channel: str  # "oa" | "zns"
    message_id: str
    user_id: str | None  # OA
    phone: str | None  # ZNS, as on the wire (84…)
    tracking_id: str | None
    body: dict[str, Any]  # the request body as received
    at: float
    status: int = 0  # ZNS: 1 delivered, 0 pending, -1 failed
    delivered_at: float | None = None  # ZNS: epoch seconds of the (first) receipt
    receipts_sent: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class UserAction:
    """A webhook a simulated user caused, and how the gateway answered it."""

    user_id: str
    event_name: str
    text: str | None
    at: float
    statuses: list[int] = field(default_factory=list)


@dataclass
class ApiCall:
    """One OA/ZNS API request, with the access token it carried and the mode it met."""

    endpoint: str
    access_token: str
    mode: str


def _param(name: str, max_length: int, *, required: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "require": required,
        "type": "STRING",
        "maxLength": max_length,
        "minLength": 0,
        "acceptNull": not required,
    }


def default_templates() -> dict[str, FakeTemplate]:
    """A few templates shaped like the gateway's notices (names from ``notice_zalo``)."""
    templates = [
        FakeTemplate(
            "250001",
            "Mời nhận kết quả hồ sơ",
            [
                _param("customer_name", 30),
                _param("dossier_code", 30),
                _param("pickup", 200),
                _param("due_date", 20, required=False),
            ],
            tag="POST_TRANSACTION",
        ),
        FakeTemplate(
            "250002",
            "Xác nhận đã nhận kết quả",
            [_param("customer_name", 30), _param("dossier_code", 30)],
            tag="POST_TRANSACTION",
        ),
        FakeTemplate(
            "250003",
            "Cập nhật tình trạng hồ sơ",
            [
                _param("customer_name", 30),
                _param("dossier_code", 30),
                _param("status_note", 30),
                _param("expected_date", 20, required=False),
            ],
        ),
    ]
    return {t.template_id: t for t in templates}


class FakeZalo:
    """The fake platform's state: app, tokens, users, templates, sent messages, modes."""

    def __init__(
        self,
        *,
        app_id: str = "2334789304983807556",
        app_secret: str = "fake-app-secret",  # noqa: S107  (a fake's own credentials)
        oa_secret_key: str = "fake-oa-secret-key",  # noqa: S107
        oa_id: str = "3674338702778449434",
        initial_refresh_token: str = "fake-refresh-token-0",  # noqa: S107
        token_lifetime: int = 90_000,
        webhook_url: str | None = None,
        clock: Callable[[], float] = time.time,
        slow_delay: float = 1.0,
        timeout_delay: float = 15.0,
        receipt_delay: float = 0.0,
        late_receipt_delay: float = 5.0,
        daily_quota: int = 500,
    ) -> None:
        self.app_id, self.app_secret, self.oa_secret_key = app_id, app_secret, oa_secret_key
        self.oa_id = oa_id
        self.token_lifetime = token_lifetime
        self.webhook_url = webhook_url
        self.clock = clock
        self.daily_quota = daily_quota
        self._delays = (slow_delay, timeout_delay, receipt_delay, late_receipt_delay)
        self.access_tokens: dict[str, float] = {}  # token -> expiry (epoch s)
        self.refresh_tokens: set[str] = {initial_refresh_token}  # still usable
        self.used_refresh_tokens: set[str] = set()
        self.users: dict[str, FakeUser] = {}
        self.no_zalo: set[str] = set()  # E.164 numbers without a Zalo account
        self.templates = default_templates()
        self._ids = itertools.count(1)
        self._session: ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.reset()

    def reset(self) -> None:
        """Forget messages, calls and webhooks; modes back to normal. Users, tokens and
        templates stay (the gateway keeps its token pair)."""
        self.sent: list[SentMessage] = []
        self.calls: list[ApiCall] = []
        self.inbound: list[UserAction] = []
        self.refresh_calls = 0  # every request to the token endpoint
        self.refresh_refused = 0  # of which refused (reused/unknown token, refresh_mode)
        self.mode: str = "ok"
        self.mode_remaining: int | None = None
        self.webhooks, self.receipts, self.refresh_mode = "normal", "immediate", "ok"
        self.refresh_delay = 0.0
        self.slow_delay, self.timeout_delay, self.receipt_delay, self.late_receipt_delay = (
            self._delays
        )
        self.remaining_quota = self.daily_quota

    # -- modes

    def set_mode(self, mode: str, count: int | None = None) -> None:
        """Apply ``mode`` to the next ``count`` API calls it concerns (all, if None)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if count is not None and count < 1:
            raise ValueError("count must be 1 or more")
        self.mode, self.mode_remaining = mode, count

    def take_mode(self, endpoint: str) -> str:
        """The mode for one call to ``endpoint``; a counted mode runs out into ``ok``."""
        mode = self.mode
        if endpoint not in _MODE_SCOPE.get(mode, _API_ENDPOINTS):
            return "ok"
        if self.mode_remaining is not None:
            self.mode_remaining -= 1
            if self.mode_remaining <= 0:
                self.mode, self.mode_remaining = "ok", None
        return mode

    def state(self) -> dict[str, Any]:
        """The switchable behaviour and a few counters, as JSON."""
        return {
            "mode": self.mode,
            "count": self.mode_remaining,
            "webhooks": self.webhooks,
            "receipts": self.receipts,
            "refresh_mode": self.refresh_mode,
            "refresh_delay": self.refresh_delay,
            "slow_delay": self.slow_delay,
            "timeout_delay": self.timeout_delay,
            "receipt_delay": self.receipt_delay,
            "late_receipt_delay": self.late_receipt_delay,
            "webhook_url": self.webhook_url,
            "refresh_calls": self.refresh_calls,
            "refresh_refused": self.refresh_refused,
            "api_calls": len(self.calls),
            "sent": len(self.sent),
            "users": len(self.users),
        }

    # -- tokens

    def issue_pair(self, used_refresh_token: str | None = None) -> dict[str, str]:
        """A new token pair; ``used_refresh_token`` dies."""
        if used_refresh_token is not None:
            self.refresh_tokens.discard(used_refresh_token)
            self.used_refresh_tokens.add(used_refresh_token)
        access, refresh = f"fake-at-{secrets.token_hex(12)}", f"fake-rt-{secrets.token_hex(12)}"
        self.access_tokens[access] = self.clock() + self.token_lifetime
        self.refresh_tokens.add(refresh)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": str(self.token_lifetime),
        }

    def token_error(self, endpoint: str, token: str, proof: str | None) -> tuple[int, str] | None:
        """The error Zalo gives for this access token on this endpoint, if any."""
        zns = endpoint != "oa"
        expiry = self.access_tokens.get(token)
        if expiry is None:
            return (-124 if zns else -216), "Access token is invalid"
        if proof is not None and not hmac.compare_digest(
            proof, hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
        ):  # not documented: what Zalo answers to a wrong appsecret_proof
            return (-124 if zns else -216), "Invalid appsecret_proof"
        if self.clock() >= expiry:
            return (-124 if zns else -220), "Access token has expired"
        return None

    # -- users

    def add_user(
        self,
        name: str,
        phone_e164: str | None = None,
        *,
        user_id: str | None = None,
        follows: bool = False,
    ) -> FakeUser:
        """A new citizen (not following yet unless ``follows``)."""
        uid = user_id or str(6_750_591_643_430_927_000 + next(self._ids))
        user = FakeUser(
            uid,
            name,
            phone_e164,
            follows,
            self.clock() if follows else 0.0,
            str(9_791_221_850_460_463_000 + next(self._ids)),
        )
        self.users[uid] = user
        return user

    def messages_for(
        self, user_id: str | None = None, phone: str | None = None
    ) -> list[SentMessage]:
        """Messages sent to a user (OA, and ZNS to their phone) or to a phone; all if None."""
        if user_id is None and phone is None:
            return list(self.sent)
        user = self.users.get(user_id or "")
        phones = {p.lstrip("+") for p in (phone, user.phone_e164 if user else None) if p}
        return [
            m
            for m in self.sent
            if (user_id is not None and m.user_id == user_id) or (m.phone in phones)
        ]

    def thread(self, user_id: str) -> list[dict[str, Any]]:
        """The user's chat as the page shows it: OA and ZNS messages and their own acts."""
        items = [_bubble(m) for m in self.messages_for(user_id)]
        for action in self.inbound:
            if action.user_id == user_id:
                text = action.text if action.event_name != "user_submit_info" else None
                items.append(
                    {
                        "from": "user",
                        "event": action.event_name,
                        "text": text or _ACTION_LABELS.get(action.event_name, action.event_name),
                        "at": action.at,
                    }
                )
        return sorted(items, key=lambda item: float(item["at"]))

    async def wait_for_messages(
        self, user_id: str, count: int, within: float = 5.0
    ) -> list[SentMessage]:
        """Wait until ``count`` messages were sent to the user; TimeoutError otherwise."""
        deadline = time.monotonic() + within
        while len(found := self.messages_for(user_id)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} messages for {user_id} in {within}s")
            await asyncio.sleep(0.01)
        return found

    async def follow(self, user_id: str) -> int:
        """The user follows the OA: a ``follow`` webhook."""
        user = self._interact(user_id)
        user.follows = True
        return await self._user_event(user, "follow", None, self._follow_payload(user, "follow"))

    async def unfollow(self, user_id: str) -> int:
        """The user stops following the OA: an ``unfollow`` webhook."""
        user = self.users[user_id]
        user.follows = False
        payload = self._follow_payload(user, "unfollow")
        return await self._user_event(user, "unfollow", None, payload)

    async def chat_now(self, user_id: str) -> int:
        """The user opens the chat window: ``user_click_chatnow``."""
        user = self._interact(user_id)
        payload = {
            "oa_id": self.oa_id,
            "user_id": user.user_id,
            "user_id_by_app": user.user_id_by_app,
            "event_name": "user_click_chatnow",
            "app_id": self.app_id,
            "timestamp": self._now_ms(),
        }
        return await self._user_event(user, "user_click_chatnow", None, payload)

    async def send_text(self, user_id: str, text: str) -> int:
        """The user types ``text``: ``user_send_text``."""
        user = self._interact(user_id)
        message = {"text": text, "msg_id": secrets.token_hex(10)}
        payload = self._from_user(user, "user_send_text", message=message)
        return await self._user_event(user, "user_send_text", text, payload)

    async def click(self, user_id: str, payload: str) -> int:
        """The user taps an ``oa.query.show``/``hide`` button: its payload arrives as their text."""
        return await self.send_text(user_id, payload)

    async def share_info(self, user_id: str) -> int:
        """The user answers ``request_user_info``: ``user_submit_info`` with phone and name."""
        user = self._interact(user_id)
        info = {"address": "", "city": "", "district": "", "name": user.name, "ward": ""}
        if user.phone_e164:
            info["phone"] = user.phone_e164.lstrip("+")
        payload = self._from_user(user, "user_submit_info", info=info)
        return await self._user_event(user, "user_submit_info", info.get("phone"), payload)

    def _interact(self, user_id: str) -> FakeUser:
        user = self.users[user_id]
        user.last_interaction = self.clock()
        return user

    def _follow_payload(self, user: FakeUser, name: str) -> dict[str, Any]:
        return {
            "oa_id": self.oa_id,
            "follower": {"id": user.user_id},
            "user_id_by_app": user.user_id_by_app,
            "event_name": name,
            "source": "zalo",
            "app_id": self.app_id,
            "timestamp": self._now_ms(),
        }

    def _from_user(self, user: FakeUser, name: str, **content: Any) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "sender": {"id": user.user_id},
            "recipient": {"id": self.oa_id},
            "event_name": name,
            **content,
            "timestamp": self._now_ms(),
            "user_id_by_app": user.user_id_by_app,
        }

    def _now_ms(self) -> str:
        return str(int(self.clock() * 1000))

    async def _user_event(
        self, user: FakeUser, name: str, text: str | None, payload: dict[str, Any]
    ) -> int:
        action = UserAction(user.user_id, name, text, self.clock())
        self.inbound.append(action)
        action.statuses = await self.post_webhook(payload, OA_SERVER)
        return action.statuses[0]

    # -- webhooks

    async def post_webhook(self, payload: dict[str, Any], server: str) -> list[int]:
        """Sign and POST one event to ``webhook_url`` (twice in ``duplicates`` mode).

        Returns the HTTP status of each POST; 0 when the gateway could not be reached.
        """
        if not self.webhook_url:
            raise RuntimeError("FakeZalo.webhook_url is not set")
        raw = orjson.dumps(payload)
        headers = {
            "Content-Type": "application/json",
            "X-ZEvent-Signature": "mac="
            + sign(raw, payload["app_id"], payload["timestamp"], self.oa_secret_key),
            "X-ZEvent-Server": server,
        }
        if self._session is None or self._session.closed:
            self._session = ClientSession(timeout=ClientTimeout(total=5))
        statuses = []
        for _ in range(2 if self.webhooks == "duplicates" else 1):
            try:
                async with self._session.post(self.webhook_url, data=raw, headers=headers) as r:
                    statuses.append(r.status)
            except (TimeoutError, ClientError) as exc:
                log.info("fake zalo webhook failed: %s", type(exc).__name__)
                statuses.append(0)
        return statuses

    def schedule(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background until it ends or :meth:`close` is called."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop pending receipts and close the webhook session."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def receipt_delays(self) -> list[float]:
        """Seconds after acceptance at which a ZNS receipt is posted."""
        return {
            "immediate": [self.receipt_delay],
            "late": [self.late_receipt_delay],
            "never": [],
            "duplicate": [self.receipt_delay, self.receipt_delay],
        }[self.receipts]

    async def send_receipts(self, message: SentMessage, delays: list[float]) -> None:
        """Mark the ZNS message delivered and post its receipt at each delay (seconds)."""
        waited = 0.0
        for delay in delays:
            await asyncio.sleep(max(0.0, delay - waited))
            waited = max(waited, delay)
            message.status = 1
            if message.delivered_at is None:
                message.delivered_at = self.clock()
            # A duplicate receipt is the same event again: the same body, byte for byte.
            delivered = str(int(message.delivered_at * 1000))
            payload = {
                "app_id": self.app_id,
                "oa_id": self.oa_id,
                "sender": {"id": self.oa_id},
                "recipient": {"id": message.phone},
                "event_name": "user_received_message",
                "message": {
                    "delivery_time": delivered,
                    "msg_id": message.message_id,
                    "tracking_id": message.tracking_id,
                },
                "timestamp": delivered,
            }
            if self.webhook_url:
                statuses = await self.post_webhook(payload, ZNS_SERVER)
                message.receipts_sent += sum(1 for s in statuses if 200 <= s < 300)

    def zns_by_tracking_id(self, tracking_id: str) -> SentMessage | None:
        """The ZNS message first sent with ``tracking_id``, if any."""
        return next((m for m in self.sent if m.tracking_id == tracking_id), None)

    def message(self, message_id: str) -> SentMessage | None:
        """The OA or ZNS message with this id, if any."""
        return next((m for m in self.sent if m.message_id == message_id), None)

    def new_id(self) -> str:
        """A fresh message id shaped like Zalo's (hex)."""
        return f"{next(self._ids):04x}{secrets.token_hex(14)}"


# Shown on the chat page for acts without text (Vietnamese: the page is for citizens).
_ACTION_LABELS = {
    "follow": "(đã quan tâm OA)",
    "unfollow": "(đã bỏ quan tâm OA)",
    "user_click_chatnow": "(đã mở cửa sổ trò chuyện)",
    "user_submit_info": "(đã chia sẻ thông tin liên hệ)",
}


def _bubble(message: SentMessage) -> dict[str, Any]:
    item: dict[str, Any] = {"from": message.channel, "at": message.at, "buttons": []}
    if message.channel == "zns":
        data = message.body.get("template_data") or {}
        values = ", ".join(f"{k}: {v}" for k, v in data.items())
        item["text"] = f"ZNS {message.body.get('template_id')}: {values}"
        return item
    body = message.body.get("message") or {}
    payload = (body.get("attachment") or {}).get("payload") or {}
    item["text"] = body.get("text") or ""
    item["buttons"] = [
        {"title": b.get("title"), "payload": b.get("payload")} for b in payload.get("buttons", [])
    ]
    item["request_user_info"] = payload.get("template_type") == "request_user_info"
    if item["request_user_info"]:
        element = (payload.get("elements") or [{}])[0]
        item["text"] = f"{element.get('title', '')}\n{element.get('subtitle', '')}".strip()
    return item
