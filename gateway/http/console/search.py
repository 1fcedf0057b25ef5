"""The console's dossier search, by code or phone number (exact match, audited)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

routes = web.RouteTableDef()

ROLES: Final[dict[str, tuple[str, ...]]] = {}
