"""The fake Zalo platform's state: app, tokens, users, templates, sent messages, modes.

:class:`FakeZalo` is what tests and the control API drive; ``server.py`` serves it over
HTTP with Zalo's wire protocol. Simulated citizens post signed webhooks to the gateway
from here, exactly as Zalo would. :meth:`FakeZalo.thread` is a user's chat as the page
shows it: what they did, what the OA sent them (ZNS as a card) and what Zalo refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout

from providers.fakes.control import CountedMode, choice, optional_url, seconds

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
CONTROL_KEYS = frozenset(
    {
        "mode",
        "count",
        "webhooks",
        "receipts",
        "refresh_mode",
        "refresh_delay",
        "slow_delay",
        "timeout_delay",
        "receipt_delay",
        "late_receipt_delay",
        "webhook_url",
        "no_zalo",
    }
)
_DELAY_KEYS = (
    "refresh_delay",
    "slow_delay",
    "timeout_delay",
    "receipt_delay",
    "late_receipt_delay",
)
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
# Which endpoints a mode applies to (the others leave it for later calls).
_MODE_SCOPE = {"outside_window": {"oa"}, "no_zalo_account": {"zns"}}
_API_ENDPOINTS = ("oa", "conversation", "zns", "template", "status")
# The endpoints of the OA API (its token codes: -216, -220); the others are ZNS's.
OA_ENDPOINTS = frozenset({"oa", "conversation"})


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
    # How the approved layout shows each parameter (only the page uses it).
    labels: dict[str, str] = field(default_factory=dict)
    buttons: list[dict[str, Any]] = field(default_factory=list)  # Zalo's listButtons

    def info(self) -> dict[str, Any]:
        """The template as ``/template/info/v2`` describes it."""
        return {
            "templateId": self.template_id,
            "templateName": self.name,
            "status": self.status,
            "listParams": self.params,
            "listButtons": self.buttons,
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
    text: str | None  # what reached the OA: the typed text, a button's payload, the phone
    at: float
    statuses: list[int] = field(default_factory=list)
    title: str | None = None  # a tapped button's title: what the citizen's chat shows
    following: bool = True  # whether the user followed the OA at that moment


@dataclass
class Refusal:
    """An OA message to a known user that Zalo refused, with the code and reason it gave."""

    user_id: str
    code: int
    message: str
    at: float


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


_LABELS = {
    "customer_name": "Khách hàng",
    "dossier_code": "Mã hồ sơ",
    "pickup": "Nơi nhận kết quả",
    "due_date": "Hạn nhận",
    "status_note": "Tình trạng",
    "expected_date": "Ngày dự kiến",
}
_LOOKUP_BUTTON = {"type": 1, "title": "Tra cứu hồ sơ", "content": "https://dichvucong.gov.vn"}


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
    for template in templates:
        template.labels = {p["name"]: _LABELS[p["name"]] for p in template.params}
        template.buttons = [dict(_LOOKUP_BUTTON)]
    return {t.template_id: t for t in templates}


class FakeZalo:
    """The fake platform's state: app, tokens, users, templates, sent messages, modes."""

    control_keys = CONTROL_KEYS

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
        self.failure = CountedMode(_check_mode)
        self.reset()

    def reset(self) -> None:
        """Forget messages, calls and webhooks; modes back to normal. Users, tokens and
        templates stay (the gateway keeps its token pair)."""
        self.sent: list[SentMessage] = []
        self.calls: list[ApiCall] = []
        self.inbound: list[UserAction] = []
        self.refusals: list[Refusal] = []
        self.refresh_calls = 0  # every request to the token endpoint
        self.refresh_refused = 0  # of which refused (reused/unknown token, refresh_mode)
        self.failure.set("ok")
        self.webhooks, self.receipts, self.refresh_mode = "normal", "immediate", "ok"
        self.refresh_delay = 0.0
        self.slow_delay, self.timeout_delay, self.receipt_delay, self.late_receipt_delay = (
            self._delays
        )
        self.remaining_quota = self.daily_quota

    # -- modes

    @property
    def mode(self) -> str:
        """The failure mode the next API call it concerns meets."""
        return self.failure.mode

    @property
    def mode_remaining(self) -> int | None:
        """How many more API calls the mode applies to (None: until changed)."""
        return self.failure.remaining

    def set_mode(self, mode: str, count: int | None = None) -> None:
        """Apply ``mode`` to the next ``count`` API calls it concerns (all, if None)."""
        self.failure.set(mode, count)

    def take_mode(self, endpoint: str) -> str:
        """The mode for one call to ``endpoint``; a counted mode runs out into ``ok``."""
        if endpoint not in _MODE_SCOPE.get(self.failure.mode, _API_ENDPOINTS):
            return "ok"
        return self.failure.take()

    def configure(self, changes: Mapping[str, Any]) -> None:
        """Apply a ``POST /_fake/mode`` body; ValueError/TypeError, changing nothing, if bad."""
        mode, count = self.failure.parse(changes)
        webhooks = choice(changes, "webhooks", self.webhooks, WEBHOOK_MODES)
        receipts = choice(changes, "receipts", self.receipts, RECEIPT_MODES)
        refresh_mode = choice(changes, "refresh_mode", self.refresh_mode, REFRESH_MODES)
        delays = {key: seconds(changes, key, getattr(self, key)) for key in _DELAY_KEYS}
        webhook_url = optional_url(changes, "webhook_url", self.webhook_url)
        no_zalo = changes.get("no_zalo", sorted(self.no_zalo))
        if not isinstance(no_zalo, list) or not all(
            isinstance(p, str) and _E164.match(p) for p in no_zalo
        ):
            raise ValueError("no_zalo must be a list of E.164 numbers (+84…)")
        if "mode" in changes or "count" in changes:
            self.failure.set(mode, count)
        self.webhooks, self.receipts, self.refresh_mode = webhooks, receipts, refresh_mode
        for key, value in delays.items():
            setattr(self, key, value)
        self.webhook_url = webhook_url
        self.no_zalo = set(no_zalo)

    def recorded(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """Messages sent, as JSON, oldest first (``user_id`` / ``phone`` narrow them)."""
        return [m.to_json() for m in self.messages_for(query.get("user_id"), query.get("phone"))]

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
        zns = endpoint not in OA_ENDPOINTS
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

    def conversation(self, user_id: str) -> list[dict[str, Any]]:
        """The OA's conversation with a user as ``/v2.0/oa/conversation`` lists it, newest
        first: the OA messages taken for them (``src`` 0) and what they wrote (``src`` 1)."""
        items: list[tuple[float, int, dict[str, Any]]] = []
        for order, message in enumerate(self.sent):
            if message.channel != "oa" or message.user_id != user_id:
                continue
            bubble = self._bubble(message)
            kind = "template" if bubble["request_user_info"] else "text"
            item = self._listed(message.message_id, 0, message.at, kind, bubble["text"])
            item |= {"from_id": self.oa_id, "to_id": user_id}
            items.append((message.at, order, item))
        for order, action in enumerate(self.inbound):
            if action.user_id != user_id or action.event_name != "user_send_text":
                continue
            item = self._listed(f"in-{order}", 1, action.at, "text", action.text or "")
            item |= {"from_id": user_id, "to_id": self.oa_id}
            items.append((action.at, order, item))
        items.sort(key=lambda entry: (entry[0], entry[2]["src"] == 0, entry[1]), reverse=True)
        return [item for _at, _order, item in items]

    @staticmethod
    def _listed(message_id: str, src: int, at: float, kind: str, text: str) -> dict[str, Any]:
        return {
            "src": src,
            "time": int(at * 1000),
            "type": kind,
            "message": text,
            "message_id": message_id,
        }

    def thread(self, user_id: str) -> list[dict[str, Any]]:
        """The user's chat as the page shows it, oldest first.

        Items ``from`` ``oa`` (text and buttons), ``zns`` (a ``card``), ``user`` (their
        words: a tapped button's title, never its payload) and ``system`` (what Zalo
        says when it refused the OA's message). Every item has a plain ``text``.
        """
        items = [self._bubble(m) for m in self.messages_for(user_id)]
        items += [_user_item(a) for a in self.inbound if a.user_id == user_id]
        items += [_system_item(r) for r in self.refusals if r.user_id == user_id]
        return sorted(items, key=lambda item: float(item["at"]))

    def refuse(self, user_id: str, code: int, message: str) -> None:
        """Note that an OA message to ``user_id`` was refused (the page says why)."""
        self.refusals.append(Refusal(user_id, code, message, self.clock()))

    def button_title(self, user_id: str, payload: str) -> str | None:
        """The title of the newest button sent to the user that carries ``payload``."""
        for message in reversed(self.messages_for(user_id)):
            for button in _buttons(message):
                if button.get("payload") == payload and isinstance(button.get("title"), str):
                    return str(button["title"])
        return None

    def _bubble(self, message: SentMessage) -> dict[str, Any]:
        if message.channel == "zns":
            return self._zns_card(message)
        body = message.body.get("message") or {}
        payload = (body.get("attachment") or {}).get("payload") or {}
        item: dict[str, Any] = {
            "from": "oa",
            "at": message.at,
            "text": body.get("text") or "",
            "buttons": [
                {"title": b.get("title"), "payload": b.get("payload")} for b in _buttons(message)
            ],
            "request_user_info": payload.get("template_type") == "request_user_info",
        }
        if item["request_user_info"]:
            element = (payload.get("elements") or [{}])[0]
            item["text"] = f"{element.get('title', '')}\n{element.get('subtitle', '')}".strip()
        return item

    def _zns_card(self, message: SentMessage) -> dict[str, Any]:
        template_id = str(message.body.get("template_id") or "")
        template = self.templates.get(template_id)
        data = message.body.get("template_data") or {}
        labels = template.labels if template else {}
        rows = [{"label": labels.get(k, k), "value": str(v)} for k, v in data.items()]
        title = template.name if template else f"ZNS {template_id}"
        buttons = [{"title": str(b.get("title"))} for b in (template.buttons if template else [])]
        lines = [title, *(f"{row['label']}: {row['value']}" for row in rows)]
        return {
            "from": "zns",
            "at": message.at,
            "text": "\n".join(lines),
            "buttons": [],
            "card": {"template_id": template_id, "title": title, "rows": rows, "buttons": buttons},
        }

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

    async def click(self, user_id: str, payload: str, title: str | None = None) -> int:
        """The user taps an ``oa.query.show``/``hide`` button: its payload arrives as their text.

        Their chat shows the button's ``title`` (by default the newest button sent to them
        with that payload), not the payload.
        """
        user = self._interact(user_id)
        message = {"text": payload, "msg_id": secrets.token_hex(10)}
        event = self._from_user(user, "user_send_text", message=message)
        title = title or self.button_title(user_id, payload)
        return await self._user_event(user, "user_send_text", payload, event, title=title)

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
        self,
        user: FakeUser,
        name: str,
        text: str | None,
        payload: dict[str, Any],
        *,
        title: str | None = None,
    ) -> int:
        action = UserAction(
            user.user_id, name, text, self.clock(), title=title, following=user.follows
        )
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

    async def rate(
        self, message_id: str, rate: int, note: str = "", feedbacks: Sequence[str] = ()
    ) -> list[int]:
        """The citizen rates a ZNS service-rating message (1 to 5 stars, the detail options
        ticked, a note): a signed ``user_feedback`` webhook with ``message.rate``,
        ``note``, ``feedbacks`` (null when none), ``submit_time``, ``msg_id`` and
        ``tracking_id``, as integrations report it. Returns the HTTP status of each POST.
        """
        message = self.message(message_id)
        if message is None or message.channel != "zns":
            raise KeyError(f"no ZNS message {message_id!r}")
        if rate not in range(1, 6):
            raise ValueError("rate must be 1 to 5")
        now = self._now_ms()
        payload = {
            "app_id": self.app_id,
            "oa_id": self.oa_id,
            "event_name": "user_feedback",
            "message": {
                "note": note,
                "rate": rate,
                "submit_time": now,
                "feedbacks": list(feedbacks) or None,
                "msg_id": message.message_id,
                "tracking_id": message.tracking_id,
            },
            "timestamp": now,
        }
        return await self.post_webhook(payload, ZNS_SERVER)

    def zns_by_tracking_id(self, tracking_id: str) -> SentMessage | None:
        """The ZNS message first sent with ``tracking_id``, if any."""
        return next((m for m in self.sent if m.tracking_id == tracking_id), None)

    def message(self, message_id: str) -> SentMessage | None:
        """The OA or ZNS message with this id, if any."""
        return next((m for m in self.sent if m.message_id == message_id), None)

    def new_id(self) -> str:
        """A fresh message id shaped like Zalo's (hex)."""
        return f"{next(self._ids):04x}{secrets.token_hex(14)}"


def sign(raw_body: bytes, app_id: str, timestamp: str, key: str) -> str:
    """The 64-hex ``mac`` of ``X-ZEvent-Signature``: SHA-256 of app id, body, time, key.

    The fake's own copy of Zalo's rule: a wrong rule in the gateway cannot pass against it.
    """
    digest = hashlib.sha256(app_id.encode() + raw_body + timestamp.encode() + key.encode())
    return digest.hexdigest()


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


# Shown on the chat page for acts without text (Vietnamese: the page is a citizen's view).
_ACTION_LABELS = {
    "follow": "(đã quan tâm OA)",
    "unfollow": "(đã bỏ quan tâm OA)",
    "user_click_chatnow": "(đã mở cửa sổ trò chuyện)",
    "user_submit_info": "(đã chia sẻ thông tin liên hệ)",
}
# What Zalo tells the citizen when the OA may not write to them, by the OA API's code.
_REFUSAL_LINES = {
    -213: "Người dùng chưa quan tâm OA: OA không thể nhắn tin tư vấn",
    -230: "Đã quá 7 ngày từ lần tương tác cuối: OA không thể nhắn tin tư vấn",
    -232: "Người dùng chưa tương tác với OA: OA không thể nhắn tin tư vấn",
}
_REFUSAL_OTHER = "OA không gửi được tin nhắn"


def _user_item(action: UserAction) -> dict[str, Any]:
    text = action.text if action.event_name != "user_submit_info" else None
    item: dict[str, Any] = {
        "from": "user",
        "event": action.event_name,
        "text": action.title or text or _ACTION_LABELS.get(action.event_name, action.event_name),
        "at": action.at,
        "following": action.following,
    }
    if action.title:
        item["payload"] = action.text
    return item


def _system_item(refusal: Refusal) -> dict[str, Any]:
    line = _REFUSAL_LINES.get(refusal.code, _REFUSAL_OTHER)
    return {
        "from": "system",
        "text": f"{line} (lỗi {refusal.code})",
        "error": refusal.code,
        "reason": refusal.message,
        "at": refusal.at,
    }


def _buttons(message: SentMessage) -> list[dict[str, Any]]:
    body = message.body.get("message") or {}
    payload = (body.get("attachment") or {}).get("payload") or {}
    buttons = payload.get("buttons") if isinstance(payload, dict) else None
    return [b for b in buttons if isinstance(b, dict)] if isinstance(buttons, list) else []
