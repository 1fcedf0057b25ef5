"""The part of the fake SMS centres eSMS and SpeedSMS share: messages, receipts, the page.

Each vendor's fake (``esms.py``, ``speedsms.py``) is an aiohttp application made by
:func:`sms_app` around a :class:`FakeSmsCentre` (the recorded messages and the
switchable behaviour), plus that vendor's send endpoint:

- ``GET /``: an HTML page of the received messages, newest first, a count per
  :data:`STATES` at the top, times in the centre's time zone, refreshing every 2 s;
- the common control endpoints (``control.py``): ``POST /_fake/mode`` with any of
  ``{"mode", "count", "receipts", "receipt_delay", "late_receipt_delay",
  "timeout_delay", "callback_url"}`` (e.g. ``{"mode": "http500", "count": 2}``);
  ``GET /_fake/mode``; ``GET /_fake/messages`` (oldest first); ``POST /_fake/reset``
  (forget the messages, back to mode ``ok`` / receipts ``normal`` and the constructed
  delays; the account's ``callback_url`` stays).

Failure modes (for the next ``count`` send requests, or until changed):

=================  ================================================================
``ok``             accept (eSMS: a repeated ``RequestId`` answers CodeResult 124 and
                   records nothing)
``timeout``        accept and record, then answer only after ``timeout_delay``
                   seconds: the message *was* taken but the client gave up
``http500``        HTTP 500, nothing recorded
``throttle``       HTTP 429 with ``Retry-After: throttle_retry_after``
``error:<code>``   the vendor's error answer with that code, e.g. ``error:103``
=================  ================================================================

Receipt modes: ``normal`` (one delivery callback after ``receipt_delay`` s),
``duplicate`` (the same callback twice), ``late`` (after ``late_receipt_delay`` s),
``missing`` (none), ``failed`` (one callback reporting a rejected message). A callback
that does not get a 2xx is retried up to 5 times, as eSMS does.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from yarl import URL

from providers.fakes.control import (
    DEFAULT_TIME_ZONE,
    CountedMode,
    add_controls,
    choice,
    optional_url,
    seconds,
)
from providers.fakes.page import clipped, document, escape, local_time

log = logging.getLogger(__name__)

MODES = ("ok", "timeout", "http500", "throttle")  # and "error:<vendor code>"
RECEIPT_MODES = ("normal", "duplicate", "late", "missing", "failed")
# What became of an accepted message, in the order the page counts them.
STATES = ("pending", "delivered", "failed", "no_receipt", "callback_failed")
_ERROR_MODE = re.compile(r"^error:([0-9A-Za-z_]{1,10})$")
_CALLBACK_TRIES = 5
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = set("^{}\\[~]|€\f")


@dataclass
class FakeMessage:
    """One message a fake centre accepted."""

    vendor: str
    provider_message_id: str
    phone: str  # exactly as it came over the wire
    content: str
    unicode: bool
    request_id: str | None
    sender: str
    sms_type: str
    callback_url: str | None
    received_at: str  # ISO 8601 in the centre's time zone
    receipts_sent: int = 0
    receipts_planned: int = 0  # callbacks the receipt mode promised at acceptance
    delivered: bool = True  # what those callbacks report
    callback_failed: bool = False  # a callback got no 2xx in any of its tries

    @property
    def state(self) -> str:
        """One of :data:`STATES`: what became of the message so far."""
        if self.callback_failed:
            return "callback_failed"
        if not self.receipts_planned:
            return "no_receipt"
        if not self.receipts_sent:
            return "pending"
        return "delivered" if self.delivered else "failed"

    def to_json(self) -> dict[str, Any]:
        """The message as the control API lists it, its :attr:`state` included."""
        return {**asdict(self), "state": self.state}


def check_mode(mode: str) -> None:
    """Raise ValueError unless ``mode`` is one of :data:`MODES` or ``error:<code>``."""
    if mode not in MODES and not _ERROR_MODE.match(mode):
        raise ValueError(f"mode must be one of {', '.join(MODES)} or error:<code>, got {mode!r}")


class FakeSmsCentre:
    """What one fake vendor holds: accepted messages and switchable behaviour."""

    control_keys = frozenset(
        {
            "mode",
            "count",
            "receipts",
            "receipt_delay",
            "late_receipt_delay",
            "timeout_delay",
            "callback_url",
        }
    )

    def __init__(
        self,
        *,
        timeout_delay: float = 15.0,
        receipt_delay: float = 0.5,
        late_receipt_delay: float = 5.0,
        throttle_retry_after: int = 2,
        callback_retry_delay: float = 1.0,
        callback_url: str | None = None,
        expected_key: str | None = None,
        time_zone: ZoneInfo | None = None,
    ) -> None:
        # timeout_delay must exceed the client's timeout (10 s in production).
        self._delays = (timeout_delay, receipt_delay, late_receipt_delay)
        self.throttle_retry_after = throttle_retry_after
        self.callback_retry_delay = callback_retry_delay
        # SpeedSMS only: the account's status callback URL.
        self.callback_url = callback_url
        # When set, eSMS ApiKey / SpeedSMS token must equal it (otherwise any non-empty).
        self.expected_key = expected_key
        self.time_zone = time_zone or ZoneInfo(DEFAULT_TIME_ZONE)
        self._numbers = itertools.count(100001)
        self.failure = CountedMode(check_mode)
        self.reset()

    def reset(self) -> None:
        """Forget every message; mode ``ok``, receipts ``normal``, delays as constructed.

        The account settings (``callback_url``, ``expected_key``) stay.
        """
        self.messages: list[FakeMessage] = []
        self.failure.set("ok")
        self.receipts = "normal"
        self.timeout_delay, self.receipt_delay, self.late_receipt_delay = self._delays
        self.send_requests = 0

    @property
    def mode(self) -> str:
        """The failure mode the next send request meets."""
        return self.failure.mode

    @property
    def mode_remaining(self) -> int | None:
        """How many more send requests the mode applies to (None: until changed)."""
        return self.failure.remaining

    def set_mode(self, mode: str, count: int | None = None) -> None:
        """Answer the next ``count`` send requests (all, if None) in ``mode``."""
        self.failure.set(mode, count)

    def set_receipts(self, receipts: str, delay: float | None = None) -> None:
        """Choose how delivery callbacks behave for messages accepted from now on."""
        if receipts not in RECEIPT_MODES:
            raise ValueError(f"receipts must be one of {', '.join(RECEIPT_MODES)}")
        if delay is not None and delay < 0:
            raise ValueError("receipt_delay must be 0 or more")
        self.receipts = receipts
        if delay is not None:
            self.receipt_delay = delay

    def take_mode(self) -> str:
        """The mode for one incoming send request; a counted mode runs out into ``ok``."""
        self.send_requests += 1
        return self.failure.take()

    def configure(self, changes: Mapping[str, Any]) -> None:
        """Apply a ``POST /_fake/mode`` body; ValueError/TypeError, changing nothing, if bad."""
        mode, count = self.failure.parse(changes)
        receipts = choice(changes, "receipts", self.receipts, RECEIPT_MODES)
        delays = {
            key: seconds(changes, key, getattr(self, key))
            for key in ("receipt_delay", "late_receipt_delay", "timeout_delay")
        }
        callback_url = optional_url(changes, "callback_url", self.callback_url)
        if "mode" in changes or "count" in changes:
            self.failure.set(mode, count)
        self.receipts = receipts
        for key, value in delays.items():
            setattr(self, key, value)
        self.callback_url = callback_url

    def receipt_plan(self) -> tuple[list[float], bool]:
        """Seconds after acceptance at which to call back, and whether it was delivered."""
        plan = {
            "normal": [self.receipt_delay],
            "failed": [self.receipt_delay],
            "duplicate": [self.receipt_delay, self.receipt_delay],
            "late": [self.late_receipt_delay],
            "missing": [],
        }[self.receipts]
        return plan, self.receipts != "failed"

    def next_number(self) -> int:
        """A fresh sequence number for the vendor's message ids."""
        return next(self._numbers)

    def by_request_id(self, request_id: str) -> FakeMessage | None:
        """The message first accepted with this client request id, if any."""
        return next((m for m in self.messages if m.request_id == request_id), None)

    def record(self, **fields: Any) -> FakeMessage:
        """Accept a message (``fields`` as :class:`FakeMessage` takes them), stamped now."""
        now = datetime.now(self.time_zone).isoformat()
        message = FakeMessage(**fields, received_at=now)
        self.messages.append(message)
        return message

    def recorded(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every accepted message as JSON, oldest first."""
        return [m.to_json() for m in self.messages]

    def counts(self) -> dict[str, int]:
        """How many accepted messages are in each of :data:`STATES`."""
        found = Counter(m.state for m in self.messages)
        return {state: found[state] for state in STATES}

    def state(self) -> dict[str, Any]:
        """The switchable behaviour and counters, as ``/_fake/mode`` answers it."""
        return {
            "mode": self.mode,
            "count": self.mode_remaining,
            "receipts": self.receipts,
            "receipt_delay": self.receipt_delay,
            "late_receipt_delay": self.late_receipt_delay,
            "timeout_delay": self.timeout_delay,
            "callback_url": self.callback_url,
            "messages": len(self.messages),
            "send_requests": self.send_requests,
            "states": self.counts(),
        }


class _Runtime:
    """Per-app machinery: the session used for callbacks and the pending callback tasks."""

    def __init__(self) -> None:
        self.session: ClientSession | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def schedule(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


CENTRE = web.AppKey("fake_sms_centre", FakeSmsCentre)
_RUNTIME = web.AppKey("fake_sms_runtime", _Runtime)


def sms_app(title: str, centre: FakeSmsCentre) -> web.Application:
    """An application around ``centre``: its page and control endpoints, no vendor API yet."""
    app = web.Application()
    app[CENTRE] = centre
    app[_RUNTIME] = _Runtime()
    app.cleanup_ctx.append(_runtime_ctx)

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=render_page(title, request.app[CENTRE]), content_type="text/html")

    app.router.add_get("/", page)
    add_controls(app, centre)
    return app


async def _runtime_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[_RUNTIME]
    runtime.session = ClientSession(timeout=ClientTimeout(total=5))
    yield
    for task in list(runtime.tasks):
        task.cancel()
    await asyncio.gather(*runtime.tasks, return_exceptions=True)
    await runtime.session.close()


def mode_failure(
    centre: FakeSmsCentre, mode: str, vendor_error: Callable[[str], web.Response]
) -> web.Response | None:
    """The early answer a failure mode gives before the request is even read, if any."""
    if mode == "http500":
        return web.Response(status=500, text="Internal Server Error")
    if mode == "throttle":
        return web.json_response(
            {"error": "Too many requests"},
            status=429,
            headers={"Retry-After": str(centre.throttle_retry_after)},
        )
    if match := _ERROR_MODE.match(mode):
        return vendor_error(match.group(1))
    return None


def schedule_receipts(
    app: web.Application,
    message: FakeMessage,
    method: str,
    url: URL | str,
    payload: dict[str, Any] | None,
    delays: list[float],
) -> None:
    """Call ``url`` back at each delay (seconds after now), retrying as the vendors do."""
    message.receipts_planned = len(delays)
    if delays:
        app[_RUNTIME].schedule(_call_back(app, message, delays, method, url, payload))


async def _call_back(
    app: web.Application,
    message: FakeMessage,
    delays: list[float],
    method: str,
    url: URL | str,
    payload: dict[str, Any] | None,
) -> None:
    session = app[_RUNTIME].session
    assert session is not None
    retry_delay = app[CENTRE].callback_retry_delay
    waited = 0.0
    for delay in delays:
        await asyncio.sleep(max(0.0, delay - waited))
        waited = max(waited, delay)
        for attempt in range(1, _CALLBACK_TRIES + 1):
            try:
                async with session.request(method, url, json=payload) as response:
                    if response.status < 300:
                        message.receipts_sent += 1
                        break
                    why = f"HTTP {response.status}"
            except (TimeoutError, ClientError) as exc:
                why = type(exc).__name__
            log.info("fake %s callback try %d failed: %s", message.vendor, attempt, why)
            if attempt < _CALLBACK_TRIES:
                await asyncio.sleep(retry_delay)
            else:
                message.callback_failed = True


def needs_ucs2(text: str) -> bool:
    """Whether ``text`` has a character outside GSM 03.38 (so it goes as UCS-2)."""
    return any(ch not in _GSM7 and ch not in _GSM7_EXTENSION for ch in text)


def segments(text: str, unicode: bool) -> int:
    """How many SMS parts ``text`` takes in the given encoding."""
    if unicode:
        length, single, part = len(text), 70, 67
    else:
        length = sum(2 if ch in _GSM7_EXTENSION else 1 for ch in text)
        single, part = 160, 153
    return 1 if length <= single else -(-length // part)


# --- the page ---------------------------------------------------------------------------

_PAGE_STYLE = """
main{max-width:90rem}
.counts{display:flex;gap:.5rem;flex-wrap:wrap;list-style:none;padding:0;margin:.5rem 0}
.counts li{border:1px solid #ccd;border-radius:1rem;padding:.15rem .7rem}
.counts b{margin-left:.3rem}
table{border-collapse:collapse;width:100%;table-layout:fixed}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{font-size:.8rem;color:#556}
td{overflow:hidden;text-overflow:ellipsis}
td.text{white-space:pre-wrap;overflow-wrap:anywhere}
.id{font-family:ui-monospace,monospace;font-size:.8rem;white-space:nowrap}
col.time{width:5.5rem}col.phone{width:8.5rem}col.narrow{width:5rem}col.state{width:8rem}
col.id{width:6.5rem}
[data-state=delivered]{color:#176b2c}[data-state=failed],[data-state=callback_failed]{color:#b3261e}
"""


def render_page(title: str, centre: FakeSmsCentre) -> str:
    """The centre's page: counts per state, the mode, then the messages newest first."""
    rows = "\n".join(
        f'<tr data-testid="message" data-state="{m.state}">'
        f"<td>{local_time(datetime.fromisoformat(m.received_at), centre.time_zone)}</td>"
        f"<td>{escape(m.phone)}</td>"
        f'<td class="text">{escape(m.content)}</td>'
        f"<td>{'UCS-2' if m.unicode else 'GSM-7'}</td>"
        f'<td data-state="{m.state}">{m.state.replace("_", " ")}</td>'
        f"<td>{m.receipts_sent}/{m.receipts_planned}</td>"
        f"<td>{clipped(m.provider_message_id)}</td>"
        f"<td>{clipped(m.request_id or '')}</td>"
        "</tr>"
        for m in reversed(centre.messages)
    )
    counts = "".join(
        f'<li data-state="{state}">{state.replace("_", " ")}<b>{count}</b></li>'
        for state, count in centre.counts().items()
    )
    state = centre.state()
    summary = (
        f"mode {state['mode']}"
        + (f" (next {state['count']})" if state["count"] else "")
        + f" · receipts {state['receipts']} · {state['messages']} message(s)"
        + f" · {state['send_requests']} send request(s) · times in {centre.time_zone.key}"
    )
    body = f"""<header><strong>{escape(title)}</strong></header>
<main>
<ul class="counts" data-testid="counts">{counts}</ul>
<p class="muted" data-testid="summary">{escape(summary)}</p>
<table><colgroup><col class="time"><col class="phone"><col><col class="narrow">
<col class="state"><col class="narrow"><col class="id"><col class="id"></colgroup>
<thead><tr><th>time</th><th>phone</th><th>text</th><th>encoding</th><th>state</th>
<th>receipts</th><th>id</th><th>request id</th></tr></thead>
<tbody>
{rows}
</tbody></table></main>"""
    return document(title, body, style=_PAGE_STYLE, refresh_seconds=2)
