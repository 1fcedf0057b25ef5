"""The console's administration pages: the staff audit log, second factors.

The staff audit log is append-only: these pages read it (filtered, newest first, paged
by a cursor) and download it as CSV; no route changes or deletes an entry. Opening the
log and downloading it are themselves recorded (``audit_log_read``, ``export``).

An admin may enrol a TOTP second factor for their own account: a secret is made and
shown once (base32 and as an ``otpauth://`` URI), and only a first code confirmed from
the authenticator app enables it; disabling needs a current code. Every step is audited
(``totp_started``, ``totp_confirm_failed``, ``totp_enabled``, ``totp_disable_failed``,
``totp_disabled``); the secret never reaches a log or the audit detail.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from functools import cache
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

from aiohttp import web
from aiohttp_session import get_session

from gateway.audit import exports
from gateway.domain.codes import is_dossier_code
from gateway.http.console.auth import audit, current_user, now_of, page
from gateway.http.console.search import link_to
from gateway.http.keys import DATABASE, SETTINGS
from gateway.storage import staff as staff_store
from gateway.storage.staff import ActionFilter, StaffAction

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

ADMINS: Final = ("admin",)
ROLES: Final[dict[str, tuple[str, ...]]] = {
    "admin_audit_log": ADMINS,
    "admin_audit_log_export": ADMINS,
    "totp": ADMINS,
    "totp_start": ADMINS,
    "totp_confirm": ADMINS,
    "totp_disable": ADMINS,
}
PAGE_SIZE: Final = 50
# The export reads the log in pages of this size, up to EXPORT_MAX entries.
EXPORT_PAGE: Final = 1000
EXPORT_MAX: Final = 100_000
FILTERS: Final = ("username", "action", "since", "until", "target", "match")
_ACTION_RE: Final = re.compile(r"[a-z][a-z_]{0,31}")
_DAY_FIRST: Final = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_ISO_DAY: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_USERNAME_MAX: Final = 64
_TARGET_MAX: Final = 128
_FLASH: Final = "totp_flash"
# A target "kind:id" names the page of that kind (route name, its variable, id pattern).
_TARGET_PAGES: Final[dict[str, tuple[str, str, re.Pattern[str]]]] = {
    "report": ("report", "id", re.compile(r"\d{1,18}")),
    "dossier": ("dossier", "code", re.compile(r"\S{1,40}")),
    "notice": ("notice", "id", re.compile(r"[0-9a-f]{1,32}")),
    "handoff": ("conversation", "id", re.compile(r"\d{1,18}")),
    "violation": ("audit_violation", "id", re.compile(r"\d{1,18}")),
}


@cache
def _labels(path: Path) -> dict[str, dict[str, str]]:
    """The action names and CSV headers of ``templates/console/audit_log.toml``."""
    with path.open("rb") as file:
        spec = tomllib.load(file)
    return {"actions": dict(spec.get("actions", {})), "columns": dict(spec.get("columns", {}))}


def labels_of(request: web.Request) -> dict[str, dict[str, str]]:
    """The log's Vietnamese labels, from the templates folder in use."""
    return _labels(request.config_dict[SETTINGS].templates_dir / "console" / "audit_log.toml")


# --- the filters --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogQuery:
    """The log's filters as typed (for the form), as the store reads them, and the names
    of the fields that are wrong."""

    typed: dict[str, str]
    where: ActionFilter
    errors: list[str]


def parse_day(text: str) -> date | None:
    """``dd/mm/yyyy`` or ``yyyy-mm-dd`` as a date; None when it is neither or not real."""
    text = text.strip()
    if found := _DAY_FIRST.fullmatch(text):
        day, month, year = (int(part) for part in found.groups())
    elif found := _ISO_DAY.fullmatch(text):
        year, month, day = (int(part) for part in found.groups())
    else:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def parse_log_query(query: Mapping[str, str], zone: tzinfo) -> LogQuery:
    """The filters in ``query``: ``username`` and ``action`` exact, ``since``/``until``
    whole local days (both included), ``target`` whole (``match=exact``) or any part."""
    typed = {name: query.get(name, "").strip() for name in FILTERS}
    typed = {name: value for name, value in typed.items() if value}
    errors: list[str] = []
    username, action = typed.get("username"), typed.get("action")
    if username is not None and len(username) > _USERNAME_MAX:
        errors.append("username")
    if action is not None and not _ACTION_RE.fullmatch(action):
        errors.append("action")
    days: dict[str, date | None] = {}
    for name in ("since", "until"):
        days[name] = parse_day(typed[name]) if name in typed else None
        if name in typed and days[name] is None:
            errors.append(name)
    since, until = days["since"], days["until"]
    if since is not None and until is not None and until < since:
        errors.append("until")
    target = typed.get("target")
    if target is not None and len(target) > _TARGET_MAX:
        errors.append("target")
    match = typed.get("match", "contains")
    if match not in ("contains", "exact"):
        errors.append("match")
    where = ActionFilter(
        username=username,
        action=action,
        since=_midnight(since, zone) if since else None,
        until=_midnight(until + timedelta(days=1), zone) if until else None,
        target=target,
        target_exact=match == "exact",
    )
    return LogQuery(typed, where, errors)


def _after(query: Mapping[str, str]) -> int | None:
    raw = query.get("after", "")
    return int(raw) if raw.isdigit() and len(raw) <= 18 else None


# --- the log page -------------------------------------------------------------------------


def _target_link(request: web.Request, target: str | None) -> str | None:
    """The console page an entry's target names, when there is one."""
    if not target or ":" not in target:
        return None
    kind, _, value = target.partition(":")
    known = _TARGET_PAGES.get(kind)
    if known is None or not known[2].fullmatch(value):
        return None
    if kind == "dossier" and not is_dossier_code(value):
        return None
    name, part = known[0], known[1]
    return link_to(request, name, **{part: value})


def _detail_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _entry(request: web.Request, e: StaffAction, zone: tzinfo) -> dict[str, Any]:
    """An entry as the page shows it (local time, detail as ``key: value`` pairs)."""
    detail = e.detail if isinstance(e.detail, dict) else {}
    return {
        "id": e.id,
        "at": e.at.astimezone(zone).strftime("%d/%m/%Y %H:%M:%S"),
        "username": e.username,
        "staff_id": e.staff_id,
        "action": e.action,
        "target": e.target or "",
        "link": _target_link(request, e.target),
        "detail": [(str(k), _detail_text(v)) for k, v in sorted(detail.items())],
        "address": e.remote_addr or "",
    }


@routes.get("/admin/audit-log", name="admin_audit_log")
async def audit_log(request: web.Request) -> web.StreamResponse:
    """The staff audit log, newest first, filtered and paged; reading it is audited."""
    user = current_user(request)
    zone = request.config_dict[SETTINGS].tz
    parsed = parse_log_query(request.query, zone)
    reader = request.config_dict[DATABASE].reader
    labels = labels_of(request)
    actions = sorted(set(labels["actions"]) | set(await staff_store.known_actions(reader)))
    context: dict[str, Any] = {
        "filters": parsed.typed,
        "errors": parsed.errors,
        "actions": actions,
        "names": labels["actions"],
        "entries": [],
        "next": None,
        "first": None,
        "export": urlencode(list(parsed.typed.items())),
    }
    if parsed.errors:
        return page(request, "audit_log.html.j2", context, status=400)
    after = _after(request.query)
    found, following = await staff_store.list_actions(
        reader, limit=PAGE_SIZE, after=after, where=parsed.where
    )
    await audit(
        request,
        "audit_log_read",
        username=user.username,
        user=user,
        detail={"filters": parsed.typed, "after": after},
    )
    context["entries"] = [_entry(request, e, zone) for e in found]
    if following is not None:
        context["next"] = "?" + urlencode([*parsed.typed.items(), ("after", following)])
    if after is not None:
        context["first"] = "?" + urlencode(list(parsed.typed.items()))
    return page(request, "audit_log.html.j2", context)


@routes.get("/admin/audit-log.csv", name="admin_audit_log_export")
async def audit_log_export(request: web.Request) -> web.StreamResponse:
    """The filtered log as CSV (UTF-8 with a BOM, newest first); the download is audited."""
    user = current_user(request)
    zone = request.config_dict[SETTINGS].tz
    parsed = parse_log_query(request.query, zone)
    if parsed.errors:
        return await audit_log(request)
    reader = request.config_dict[DATABASE].reader
    entries: list[StaffAction] = []
    after: int | None = None
    while len(entries) < EXPORT_MAX:
        found, after = await staff_store.list_actions(
            reader, limit=EXPORT_PAGE, after=after, where=parsed.where
        )
        entries.extend(found)
        if after is None:
            break
    entries = entries[:EXPORT_MAX]
    labels = labels_of(request)
    names = labels["actions"]
    columns = labels["columns"]
    rows = [
        [
            e.id,
            e.at,
            e.username,
            e.staff_id,
            e.action,
            names.get(e.action, e.action),
            e.target,
            _detail_text(e.detail) if e.detail is not None else None,
            e.remote_addr,
        ]
        for e in entries
    ]
    headers = [
        columns.get(key, key)
        for key in (
            "id",
            "at",
            "username",
            "staff_id",
            "action",
            "action_name",
            "target",
            "detail",
            "remote_addr",
        )
    ]
    body = exports.to_csv(headers, rows, tz=zone)
    await audit(
        request,
        "export",
        username=user.username,
        user=user,
        target="staff_audit_log",
        detail={"format": "csv", "rows": len(rows), "filters": parsed.typed},
    )
    stamp = now_of(request).astimezone(zone).strftime("%Y%m%d-%H%M")
    return web.Response(
        body=body,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="staff-audit-log-{stamp}.csv"',
        },
    )


# --- the second factor --------------------------------------------------------------------


def _grouped(secret: str) -> str:
    """The secret in groups of four, easier to type into an app."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _enrolment(user: staff_store.StaffUser, secret: str) -> dict[str, Any]:
    return {"secret": _grouped(secret), "uri": staff_store.totp_uri(secret, user.username)}


async def _totp_page(
    request: web.Request,
    *,
    error: str | None = None,
    secret: str | None = None,
    status: int = 200,
) -> web.Response:
    """The second-factor page: its state, the enrolment (``secret``) or the disable form."""
    user = current_user(request)
    state = await staff_store.totp_state(request.config_dict[DATABASE].writer, user.id)
    session = await get_session(request)
    flash = session.pop(_FLASH, None)
    zone = request.config_dict[SETTINGS].tz
    context: dict[str, Any] = {
        "enabled": state.enabled,
        "since": (
            state.enabled_at.astimezone(zone).strftime("%d/%m/%Y %H:%M") if state.enabled_at else ""
        ),
        "pending": state.pending,
        "enrolment": _enrolment(user, secret) if secret else None,
        "error": error,
        "flash": flash if isinstance(flash, str) else None,
    }
    return page(request, "totp.html.j2", context, status=status)


@routes.get("/account/totp", name="totp")
async def totp(request: web.Request) -> web.StreamResponse:
    """Whether the admin's second factor is on, with the form to start or to stop it."""
    return await _totp_page(request)


@routes.post("/account/totp", name="totp_start")
async def totp_start(request: web.Request) -> web.StreamResponse:
    """Make a new secret and show it with the form to confirm a first code (409 when the
    second factor is on already: it must be disabled first)."""
    user = current_user(request)
    secret = await staff_store.start_totp(request.config_dict[DATABASE].writer, user.id)
    await audit(request, "totp_started", username=user.username, user=user, target=_me(user))
    log.info("second factor enrolment started", extra={"staff": user.id})
    return await _totp_page(request, secret=secret)


def _me(user: staff_store.StaffUser) -> str:
    return f"staff:{user.id}"


async def _code(request: web.Request) -> str | None:
    form = await request.post()
    return staff_store.normalize_totp_code(str(form.get("code", "")))


@routes.post("/account/totp/confirm", name="totp_confirm")
async def totp_confirm(request: web.Request) -> web.StreamResponse:
    """Enable the pending second factor with a first code from the app; a wrong code
    shows the enrolment again (400), nothing enabled."""
    user = current_user(request)
    writer = request.config_dict[DATABASE].writer
    code = await _code(request)
    secret = await staff_store.pending_totp_secret(writer, user.id)
    if secret is None:
        raise web.HTTPSeeOther(request.app.router["totp"].url_for())
    if code is None:
        return await _totp_page(request, error="format", secret=secret, status=400)
    if not await staff_store.confirm_totp(writer, user.id, code, now_of(request)):
        await audit(
            request, "totp_confirm_failed", username=user.username, user=user, target=_me(user)
        )
        return await _totp_page(request, error="wrong", secret=secret, status=400)
    await audit(request, "totp_enabled", username=user.username, user=user, target=_me(user))
    log.info("second factor enabled", extra={"staff": user.id})
    session = await get_session(request)
    session[_FLASH] = "enabled"
    raise web.HTTPSeeOther(request.app.router["totp"].url_for())


@routes.post("/account/totp/disable", name="totp_disable")
async def totp_disable(request: web.Request) -> web.StreamResponse:
    """Disable the second factor; it takes a current code (a stolen session alone cannot)."""
    user = current_user(request)
    writer = request.config_dict[DATABASE].writer
    code = await _code(request)
    state = await staff_store.totp_state(writer, user.id)
    if not state.enabled:
        raise web.HTTPSeeOther(request.app.router["totp"].url_for())
    if code is None:
        return await _totp_page(request, error="format", status=400)
    if not await staff_store.check_totp(writer, user.id, code, now_of(request)):
        await audit(
            request, "totp_disable_failed", username=user.username, user=user, target=_me(user)
        )
        return await _totp_page(request, error="wrong", status=400)
    await staff_store.disable_totp(writer, user.id)
    await audit(request, "totp_disabled", username=user.username, user=user, target=_me(user))
    log.info("second factor disabled", extra={"staff": user.id})
    session = await get_session(request)
    session[_FLASH] = "disabled"
    raise web.HTTPSeeOther(request.app.router["totp"].url_for())
