"""The baseline: an aiohttp handler doing the HTTP and JSON work of an ingest, nothing more.

``POST /v1/events`` (``bench/ingest.py``) reads the body, checks it is UTF-8 and parses
it with orjson (what ``gateway.http.api`` does with an event), then answers a small JSON
with 202 (orjson again), as the gateway answers a new event. It runs with the
garbage-collector tuning of ``tthc serve`` so the two differ only in what the gateway
does with the event. ``POST /webhooks/zalo`` reads and parses the body and answers 200
(the Zalo webhook's baseline in ``bench/chat.py``). ``GET /`` and ``POST /`` answer 200
without reading a body (the health check).

``python bench/bare_server.py PORT``
"""

from __future__ import annotations

import gc
import sys

import orjson
from aiohttp import web


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


async def ingest(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        raw.decode("utf-8")
        event = orjson.loads(raw)
    except (UnicodeDecodeError, orjson.JSONDecodeError):
        return web.json_response({"title": "malformed"}, status=400)
    answer = {"status": "accepted", "id": event.get("id")}
    return web.json_response(answer, status=202, dumps=_dumps)


async def webhook(request: web.Request) -> web.Response:
    """The Zalo webhook's baseline: read and parse the body, answer 200."""
    raw = await request.read()
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return web.json_response({"title": "malformed"}, status=400)
    return web.json_response({"status": "queued"}, dumps=_dumps)


async def bodiless(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    # The same tuning as gateway.processes.server._tune_gc.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    app = web.Application()
    app.router.add_get("/", bodiless)
    app.router.add_post("/", bodiless)
    app.router.add_post("/v1/events", ingest)
    app.router.add_post("/webhooks/zalo", webhook)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
