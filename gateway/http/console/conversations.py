"""The console's conversations: citizens who asked for a person, answered through the OA."""

from __future__ import annotations

from typing import Final

from aiohttp import web

routes = web.RouteTableDef()

ROLES: Final[dict[str, tuple[str, ...]]] = {}
