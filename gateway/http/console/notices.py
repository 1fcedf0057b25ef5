"""The console's notices that need a person: outcomes lost (``unknown``) or ``failed``."""

from __future__ import annotations

from typing import Final

from aiohttp import web

routes = web.RouteTableDef()

ROLES: Final[dict[str, tuple[str, ...]]] = {}
