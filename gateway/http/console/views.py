"""The console's pages (for now the report queue) and the roles allowed on each."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any, Final

from aiohttp import web

from gateway.domain.phones import mask_phone
from gateway.http.console.auth import current_user, page
from gateway.http.keys import DATABASE, SETTINGS
from gateway.storage import reports as report_store
from gateway.storage.staff import ROLES as ALL_ROLES

routes = web.RouteTableDef()

# Exactly as the staff API: every staff role reads reports, auditors with phones masked.
READERS: Final = ("hotline", "auditor", "admin")
ROLES: Final[dict[str, tuple[str, ...]]] = {
    "home": ALL_ROLES,
    "logout": ALL_ROLES,
    "reports": READERS,
}
PAGE_SIZE: Final = 100


def _date(value: datetime | None, zone: tzinfo) -> str:
    return value.astimezone(zone).strftime("%d/%m/%Y") if value else ""


@routes.get("/", name="home")
async def home(request: web.Request) -> web.StreamResponse:
    """``/console/`` itself: the report queue."""
    raise web.HTTPSeeOther(request.app.router["reports"].url_for())


@routes.get("/reports", name="reports")
async def reports(request: web.Request) -> web.StreamResponse:
    """The report queue, oldest first, a page of :data:`PAGE_SIZE` after ``?after=``."""
    user = current_user(request)
    raw_after = request.query.get("after", "")
    after = int(raw_after) if raw_after.isdigit() and len(raw_after) <= 18 else None
    found = await report_store.list_reports(
        request.config_dict[DATABASE].reader, limit=PAGE_SIZE, after_id=after
    )
    zone = request.config_dict[SETTINGS].tz
    masked = user.role == "auditor"
    rows: list[dict[str, Any]] = [
        {
            "id": r.id,
            "number": r.number,
            "kind": r.kind,
            "status": r.status,
            "dossier": r.dossier_code or "",
            "agency": r.agency_name or r.agency_code or "",
            "received": _date(r.created_at, zone),
            "due": _date(r.expected_at, zone),
            "phone": (mask_phone(r.phone_e164) if masked else r.phone_e164) if r.phone_e164 else "",
        }
        for r in found.reports
    ]
    following = None
    if found.next_after is not None:
        following = str(request.rel_url.with_query(after=str(found.next_after)))
    return page(request, "reports.html.j2", {"reports": rows, "next": following})
