"""ZNS (Zalo Notification Service): templates, what Zalo would refuse, and the answers.

Wire contract: ``docs/zalo.md`` (§ ZNS). A send is checked here before it leaves::

    phone ──► zns_phone ──────────────── +84 mobile → "84…", else ChannelUnavailable
    tracking_id, data ──► validate_send ─ against the template's listParams, every
                                          faulty field named (ValidationFailed)
    template ◄── TemplateCache (Redis, one hour, ENABLE only) ◄── /template/info/v2
    answer ──► parse_accepted ─────────── ZnsAccepted(msg_id, sent_time, remaining quota)

A send refused with ``TemplateRefused`` drops the cached template, so the next send
checks against what Zalo has now. A template that is not ``ENABLE`` (still in review,
disabled) is never cached: the next look-up asks Zalo again, so a template approved
meanwhile is used at once. The calls themselves are in
:class:`providers.zalo.client.ZaloClient`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.errors import ChannelUnavailable, FieldError, PermanentProviderError
from providers.zalo.errors import ZNS
from providers.zalo.transport import int_or_none

log = logging.getLogger(__name__)

SEND_PATH = "/message/template"
TEMPLATE_PATH = "/template/info/v2"
STATUS_PATH = "/message/status"
TEMPLATE_CACHE_SECONDS = 3600
# The only template status a send may use (and the only one cached).
ENABLED = "ENABLE"
# listParams types the gateway fills in a particular form (others take text).
PARAM_NUMBER = "NUMBER"
PARAM_DATE = "DATE"

_MOBILE_E164 = re.compile(r"^\+84[1-9]\d{8}$")
_TRACKING_ID = re.compile(r"^[A-Za-z0-9]{1,48}$")

ZnsStatus = Literal["delivered", "pending", "failed"]


@dataclass(frozen=True, slots=True)
class ZnsParam:
    """One parameter of a ZNS template (``listParams``)."""

    name: str
    required: bool
    type: str
    max_length: int | None
    min_length: int | None
    accept_null: bool


@dataclass(frozen=True, slots=True)
class ZnsTemplate:
    """What Zalo says about an approved ZNS template."""

    template_id: str
    name: str
    status: str
    params: tuple[ZnsParam, ...]
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class ZnsAccepted:
    """Zalo took a ZNS message; delivery is reported later by a receipt."""

    msg_id: str
    sent_time: datetime | None
    remaining_quota: int | None


def zns_phone(phone_e164: str) -> str:
    """``+84912345678`` → ``84912345678``; ChannelUnavailable for anything else."""
    if not _MOBILE_E164.match(phone_e164):
        raise ChannelUnavailable(ZNS, "ZNS reaches Vietnamese mobiles only", "phone_format")
    return phone_e164[1:]


def validate_send(
    template: ZnsTemplate, data: Mapping[str, str], tracking_id: str
) -> list[FieldError]:
    """What Zalo would refuse in a send: the ``tracking_id`` and the template data."""
    errors: list[FieldError] = []
    if not _TRACKING_ID.match(tracking_id):
        errors.append(FieldError("tracking_id", "1 to 48 letters or digits"))
    return errors + validate_template_data(template, data)


def validate_template_data(template: ZnsTemplate, data: Mapping[str, str]) -> list[FieldError]:
    """What Zalo would refuse in ``template_data``, as ``template_data.<name>`` errors."""
    errors: list[FieldError] = []
    if template.status != ENABLED:
        errors.append(
            FieldError("template_id", f"template {template.template_id} is {template.status}")
        )
    declared = {param.name: param for param in template.params}
    for name, value in data.items():
        field = f"template_data.{name}"
        param = declared.get(name)
        if param is None:
            errors.append(FieldError(field, f"not a parameter of template {template.template_id}"))
        elif not isinstance(value, str):
            errors.append(FieldError(field, "must be a string"))
        elif not value and not param.accept_null:
            errors.append(FieldError(field, "must not be empty"))
        elif param.max_length is not None and len(value) > param.max_length:
            errors.append(FieldError(field, f"{len(value)} characters, at most {param.max_length}"))
        elif value and param.min_length is not None and len(value) < param.min_length:
            errors.append(
                FieldError(field, f"{len(value)} characters, at least {param.min_length}")
            )
    for param in template.params:
        if param.required and param.name not in data:
            errors.append(FieldError(f"template_data.{param.name}", "is required"))
    return errors


def parse_template(template_id: str, data: Mapping[str, Any]) -> ZnsTemplate:
    """A :class:`ZnsTemplate` from the ``data`` of ``/template/info/v2``."""
    params: list[ZnsParam] = []
    raw_params = data.get("listParams")
    for raw in raw_params if isinstance(raw_params, list) else []:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise PermanentProviderError(ZNS, "template info not understood", "invalid_answer")
        params.append(
            ZnsParam(
                name=raw["name"],
                required=bool(raw.get("require", False)),
                type=str(raw.get("type") or ""),
                max_length=int_or_none(raw.get("maxLength")),
                min_length=int_or_none(raw.get("minLength")),
                accept_null=bool(raw.get("acceptNull", False)),
            )
        )
    tag = data.get("templateTag")
    return ZnsTemplate(
        template_id,
        str(data.get("templateName") or ""),
        str(data.get("status") or "UNKNOWN"),
        tuple(params),
        str(tag) if tag else None,
    )


def parse_accepted(answer: Mapping[str, Any]) -> ZnsAccepted:
    """A :class:`ZnsAccepted` from the ``data`` of a successful send."""
    quota = answer.get("quota")
    remaining = int_or_none(quota.get("remainingQuota")) if isinstance(quota, dict) else None
    sent_ms = int_or_none(answer.get("sent_time"))
    return ZnsAccepted(
        str(answer.get("msg_id") or ""),
        datetime.fromtimestamp(sent_ms / 1000, UTC) if sent_ms is not None else None,
        remaining,
    )


def parse_status(data: Mapping[str, Any]) -> ZnsStatus:
    """The delivery status from ``/message/status`` (an unknown status is pending)."""
    status = int_or_none(data.get("status"))
    return "delivered" if status == 1 else "failed" if status == -1 else "pending"


class TemplateCache:
    """Template info as Zalo answered it, in Redis for an hour, once the template is
    ``ENABLE`` (any other status is looked up again next time).

    The cache only saves calls: when Redis fails the template is fetched again, and a
    failure to write or drop an entry is logged, never raised (the entry expires anyway).
    """

    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self._redis = redis
        self._prefix = key_prefix

    async def get(self, template_id: str) -> ZnsTemplate | None:
        """The cached template, or None (not cached, or the cache is unavailable)."""
        try:
            cached = await self._redis.get(self._key(template_id))
        except RedisError as exc:
            log.warning("zns template cache unavailable", extra={"error": str(exc)})
            return None
        return None if cached is None else parse_template(template_id, orjson.loads(cached))

    async def put(self, template_id: str, data: Mapping[str, Any]) -> None:
        """Keep the ``data`` of a template answer for an hour if the template is enabled;
        otherwise drop what was kept (it is out of date)."""
        if data.get("status") != ENABLED:
            await self.forget(template_id)
            return
        try:
            await self._redis.set(
                self._key(template_id), orjson.dumps(dict(data)), ex=TEMPLATE_CACHE_SECONDS
            )
        except RedisError as exc:
            log.warning("zns template not cached", extra={"error": str(exc)})

    async def forget(self, template_id: str) -> None:
        """Drop the cached template; Zalo's error, not a cache failure, is what the caller
        must see."""
        try:
            await self._redis.delete(self._key(template_id))
        except RedisError as exc:
            log.warning("zns template cache not cleared", extra={"error": str(exc)})

    def _key(self, template_id: str) -> str:
        return f"{self._prefix}zalo:template:{template_id}"
