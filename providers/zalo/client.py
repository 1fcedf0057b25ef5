"""ZaloClient: the OA and ZNS calls the gateway makes, with the OA's access token.

Wire contracts: ``docs/zalo.md`` (§ OA messages, § ZNS). The client only composes::

    ZaloClient
      ├── AccessTokens   (tokens.py)     a usable access token; single-flight refresh
      ├── ZaloTransport  (transport.py)  one HTTP exchange → raise_for_zalo (errors.py)
      ├── TemplateCache  (zns.py)        ZNS template info, an hour in Redis
      ├── send_oa        OaMessage (oa.py) → ``cs`` → OaSent
      ├── recent_messages  one page of a user's OA conversation → [OaListed], newest first
      ├── template_info  → ZnsTemplate
      ├── send_zns       checked against the template first (zns.py) → ZnsAccepted
      └── zns_status     → "delivered" | "pending" | "failed"

Every call carries the access token and its ``appsecret_proof``. A token error
(``TokenRejected``) makes the client refresh once and retry once; a second one is raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import orjson
from redis.asyncio import Redis

from gateway.domain.phones import mask_phone
from gateway.errors import ProviderError, TemplateRefused, TokenRejected, ValidationFailed
from gateway.settings import ZaloSettings
from providers.zalo import zns
from providers.zalo.errors import LISTED, OA, ZNS
from providers.zalo.oa import (
    CONVERSATION_PATH,
    CS_PATH,
    MAX_LISTED,
    OaListed,
    OaMessage,
    OaSent,
    oa_message_body,
    parse_conversation,
)
from providers.zalo.tokens import AccessTokens, TokenStore, appsecret_proof
from providers.zalo.transport import ZaloTransport

log = logging.getLogger(__name__)


class ZaloClient:
    """OA and ZNS calls with the OA's access token (see the module doc)."""

    def __init__(
        self,
        settings: ZaloSettings,
        session: aiohttp.ClientSession,
        redis: Redis,
        *,
        key_prefix: str,
        store: TokenStore,
        clock: Callable[[], float] = time.time,
        on_alert: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._settings = settings
        self._transport = ZaloTransport(session, settings.timeout_seconds)
        self._tokens = AccessTokens(
            settings,
            self._transport,
            redis,
            key_prefix=key_prefix,
            store=store,
            clock=clock,
            on_alert=on_alert,
        )
        self._templates = zns.TemplateCache(redis, key_prefix)

    async def access_token(self) -> str:
        """A usable access token, refreshed ahead of its expiry."""
        return await self._tokens.current()

    async def send_oa(self, user_id: str, message: OaMessage) -> OaSent:
        """Send a ``cs`` message to one OA user (within the 7-day window)."""
        url = self._settings.oa_base_url.rstrip("/") + CS_PATH
        body = {"recipient": {"user_id": user_id}, "message": oa_message_body(message)}
        data = await self._call(OA, "POST", url, json=body)
        sent = OaSent(str(data.get("message_id") or ""), str(data.get("user_id") or user_id))
        log.info("zalo oa message sent", extra={"user": user_id, "message_id": sent.message_id})
        return sent

    async def recent_messages(
        self, user_id: str, count: int = MAX_LISTED, offset: int = 0
    ) -> list[OaListed]:
        """One page (at most :data:`MAX_LISTED`) of the OA's conversation with a user,
        newest first: what the OA sent and what the user wrote (``docs/zalo.md``)."""
        url = self._settings.oa_base_url.rstrip("/") + CONVERSATION_PATH
        query = {"user_id": user_id, "offset": max(0, offset), "count": min(count, MAX_LISTED)}
        data = await self._call(OA, "GET", url, params={"data": orjson.dumps(query).decode()})
        listed = parse_conversation(data.get(LISTED, data))
        log.info("zalo oa conversation read", extra={"user": user_id, "listed": len(listed)})
        return listed

    async def template_info(self, template_id: str, *, fresh: bool = False) -> zns.ZnsTemplate:
        """The template's parameters and status, cached in Redis for an hour once it is
        enabled; ``fresh`` asks Zalo whatever is cached (the start-up check)."""
        cached = None if fresh else await self._templates.get(template_id)
        if cached is not None:
            return cached
        url = self._settings.zns_base_url.rstrip("/") + zns.TEMPLATE_PATH
        data = await self._call(ZNS, "GET", url, params={"template_id": template_id})
        template = zns.parse_template(template_id, data)
        await self._templates.put(template_id, data)
        return template

    async def send_zns(
        self, phone_e164: str, template_id: str, data: Mapping[str, str], tracking_id: str
    ) -> zns.ZnsAccepted:
        """Send a ZNS template message; ``tracking_id`` makes a repeat harmless."""
        phone = zns.zns_phone(phone_e164)
        template = await self.template_info(template_id)
        if errors := zns.validate_send(template, data, tracking_id):
            raise ValidationFailed(errors)
        body: dict[str, Any] = {
            "phone": phone,
            "template_id": template_id,
            "template_data": dict(data),
            "tracking_id": tracking_id,
        }
        if self._settings.zns_development:
            body["mode"] = "development"
        url = self._settings.zns_base_url.rstrip("/") + zns.SEND_PATH
        try:
            answer = await self._call(ZNS, "POST", url, json=body)
        except ProviderError as exc:
            log.info(
                "zns refused",
                extra={"phone": mask_phone(phone), "template": template_id, "code": exc.code},
            )
            if isinstance(exc, TemplateRefused):
                await self._templates.forget(template_id)
            raise
        accepted = zns.parse_accepted(answer)
        log.info(
            "zns accepted",
            extra={"phone": mask_phone(phone), "template": template_id, "msg_id": accepted.msg_id},
        )
        return accepted

    async def zns_status(self, msg_id: str) -> zns.ZnsStatus:
        """Ask Zalo whether a ZNS message was delivered (an unknown status is pending)."""
        url = self._settings.zns_base_url.rstrip("/") + zns.STATUS_PATH
        data = await self._call(ZNS, "GET", url, params={"message_id": msg_id})
        return zns.parse_status(data)

    async def _call(
        self,
        api: str,
        method: str,
        url: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One API call with the access token; on a token error refresh once, retry once."""
        token = await self._tokens.current()
        try:
            return await self._transport.exchange(
                api, method, url, self._auth(token), json=json, params=params
            )
        except TokenRejected:
            log.info("zalo token rejected; refreshing and retrying once", extra={"api": api})
        token = (await self._tokens.refresh(token)).access_token
        return await self._transport.exchange(
            api, method, url, self._auth(token), json=json, params=params
        )

    def _auth(self, token: str) -> dict[str, str]:
        return {
            "access_token": token,
            "appsecret_proof": appsecret_proof(self._settings.app_secret, token),
        }
