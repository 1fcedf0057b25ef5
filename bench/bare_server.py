"""The baseline: an aiohttp JSON handler doing nothing, on the same machine and loop."""

import sys

from aiohttp import web


async def handler(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


app = web.Application()
app.router.add_get("/", handler)
app.router.add_post("/", handler)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
