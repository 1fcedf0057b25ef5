"""What every fake shares: counted failure modes, the ``/_fake/*`` control endpoints,
and running fakes standalone from the command line.

A fake's state object implements :class:`Controllable`; :func:`add_controls` then gives
its application the same four control endpoints as every other fake:

- ``GET /_fake/mode``: the switchable behaviour and a few counters, as JSON;
- ``POST /_fake/mode``: change any of the fake's control keys (validated all together,
  nothing changes if one is wrong: HTTP 400 ``{"error"}``); answers the new state;
- ``GET /_fake/messages``: what the fake recorded, as a JSON array, oldest first;
- ``POST /_fake/reset``: forget the messages, back to the constructed behaviour.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from aiohttp import web

DEFAULT_TIME_ZONE = "Asia/Ho_Chi_Minh"


class CountedMode:
    """A failure mode for the next ``count`` requests it applies to, or until changed."""

    def __init__(self, check: Callable[[str], None]) -> None:
        """``check`` raises ValueError for a mode name the fake does not know."""
        self._check = check
        self.mode = "ok"
        self.remaining: int | None = None

    def parse(self, body: Mapping[str, Any]) -> tuple[str, int | None]:
        """The ``mode`` and ``count`` a control request asks for, validated, not applied."""
        mode = str(body.get("mode", self.mode))
        count = None if body.get("count") is None else int(body["count"])
        self._validate(mode, count)
        return mode, count

    def set(self, mode: str, count: int | None = None) -> None:
        """Answer the next ``count`` requests (all, if None) in ``mode``."""
        self._validate(mode, count)
        self.mode, self.remaining = mode, count

    def take(self) -> str:
        """The mode for one request; a counted mode runs out into ``ok``."""
        mode = self.mode
        if self.remaining is not None:
            self.remaining -= 1
            if self.remaining <= 0:
                self.mode, self.remaining = "ok", None
        return mode

    def _validate(self, mode: str, count: int | None) -> None:
        self._check(mode)
        if count is not None and count < 1:
            raise ValueError("count must be 1 or more")


def choice(body: Mapping[str, Any], key: str, current: str, allowed: Sequence[str]) -> str:
    """``body[key]`` (``current`` when absent) if it is one of ``allowed``; else ValueError."""
    value = str(body.get(key, current))
    if value not in allowed:
        raise ValueError(f"{key} must be one of {', '.join(allowed)}")
    return value


def seconds(body: Mapping[str, Any], key: str, current: float) -> float:
    """``body[key]`` (``current`` when absent) as a delay in seconds; else ValueError."""
    value = current if body.get(key) is None else float(body[key])
    if not 0 <= value < 3600:
        raise ValueError(f"{key} must be between 0 and 3600 seconds")
    return value


def optional_url(body: Mapping[str, Any], key: str, current: str | None) -> str | None:
    """``body[key]`` (``current`` when absent) as a URL or None; else ValueError."""
    value = body.get(key, current)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a string or null")
    return value or None


class Controllable(Protocol):
    """What a fake's state offers the common control endpoints."""

    control_keys: frozenset[str]

    def state(self) -> dict[str, Any]:
        """The switchable behaviour and a few counters."""
        ...

    def configure(self, changes: Mapping[str, Any]) -> None:
        """Apply ``changes`` (keys from ``control_keys``) all together.

        Raises ValueError or TypeError, having changed nothing, if any value is wrong.
        """
        ...

    def reset(self) -> None:
        """Forget what was recorded; behaviour back to what was constructed."""
        ...

    def recorded(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """The recorded messages as JSON, oldest first, filtered by the query string."""
        ...


def add_controls(app: web.Application, fake: Controllable) -> None:
    """Serve the ``/_fake/mode``, ``/_fake/messages`` and ``/_fake/reset`` endpoints."""

    async def get_mode(request: web.Request) -> web.Response:
        return json_response(fake.state())

    async def post_mode(request: web.Request) -> web.Response:
        body = await json_object(request)
        if not body or set(body) - fake.control_keys:
            keys = ", ".join(sorted(fake.control_keys))
            return bad_request(f"send a JSON object with any of {keys}")
        try:
            fake.configure(body)
        except (TypeError, ValueError) as exc:
            return bad_request(str(exc))
        return json_response(fake.state())

    async def messages(request: web.Request) -> web.Response:
        return json_response(fake.recorded(request.query))

    async def reset(request: web.Request) -> web.Response:
        fake.reset()
        return json_response(fake.state())

    app.router.add_get("/_fake/mode", get_mode)
    app.router.add_post("/_fake/mode", post_mode)
    app.router.add_get("/_fake/messages", messages)
    app.router.add_post("/_fake/reset", reset)


def json_response(value: Any, status: int = 200) -> web.Response:
    """``value`` as a UTF-8 JSON answer (Vietnamese stays readable, not ``\\u`` escaped)."""
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")


def bad_request(reason: str) -> web.Response:
    """HTTP 400 with ``{"error": reason}``."""
    return json_response({"error": reason}, status=400)


async def json_object(request: web.Request) -> dict[str, Any] | None:
    """The request body if it is a JSON object, else None."""
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


# --- running fakes standalone -------------------------------------------------------------


def time_zone(name: str) -> ZoneInfo:
    """An IANA time zone by name (an argparse ``type``)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"unknown time zone {name!r}") from exc


def standalone_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The options every standalone fake takes: host, delays and the pages' time zone."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--timeout-delay",
        type=float,
        default=15.0,
        help="seconds the 'timeout' mode holds an answer (longer than the client's timeout)",
    )
    parser.add_argument("--receipt-delay", type=float, default=0.5)
    parser.add_argument(
        "--time-zone",
        type=time_zone,
        default=os.environ.get("TIME_ZONE") or DEFAULT_TIME_ZONE,
        help=f"time zone of the pages' times (default: $TIME_ZONE or {DEFAULT_TIME_ZONE})",
    )
    return parser


@dataclass(frozen=True)
class Listener:
    """One fake application to serve, and the settings lines its base URL gives."""

    app: web.Application
    port: int  # 0: any free port
    settings: Callable[[str], list[str]]  # base URL -> ``NAME=value`` lines for the gateway


def run_standalone(host: str, listeners: Sequence[Listener], banner: str) -> None:
    """Serve ``listeners`` until SIGINT/SIGTERM, printing their settings lines to stdout."""
    # Callback and webhook failures are logged at INFO: a newcomer sees why one did not arrive.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(host, listeners, banner))


async def _serve(host: str, listeners: Sequence[Listener], banner: str) -> None:
    runners: list[web.AppRunner] = []
    try:
        for listener in listeners:
            runner = web.AppRunner(listener.app, shutdown_timeout=1.0)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, listener.port).start()
            for line in listener.settings(f"http://{host}:{runner.addresses[0][1]}"):
                print(line, flush=True)
        print(banner, file=sys.stderr, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
