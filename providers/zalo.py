"""Zalo Official Account client: OAuth v4 token pair, OA ``cs`` messages and ZNS.

Wire contracts: ``reference/zalo.md`` §1 (OAuth), §3 (OA messages), §4 (ZNS). Every base
URL comes from :class:`gateway.settings.ZaloSettings`, so tests point at the fake in
``providers/fakes/zalo.py``.

**Token pair.** Zalo refresh tokens are single-use and rotate on every refresh, so a
refresh is single-flight across processes: whoever holds ``{prefix}zalo:refresh-lock``
(``SET NX PX`` with a random token, released by compare-and-delete) re-reads the
:class:`TokenStore` and only calls Zalo when nobody refreshed in the meantime. The new
pair is saved before it is used. A refused refresh calls ``on_alert`` (an OA admin must
grant access again) and raises ``TokenRefreshFailed``; a network failure on refresh is
temporary and leaves the stored pair alone.

**Errors.** Zalo answers errors as HTTP 200 with ``error != 0``. Every answer goes
through :func:`raise_for_zalo`, the one place that maps them to our exceptions:

=====================================================  ============================
Zalo answer                                            exception (``code``)
=====================================================  ============================
``error`` 0                                            none: ``data`` is returned
-216, -220 (OA token), -124 (ZNS token)                TokenRejected (code)
-32 (rate limit), HTTP 429                             RateLimited (code, "throttled")
-230, -232 (outside the 7-day window)                  OutsideWindow (code)
-213, -227; ZNS -114, -118, -119, -139, -140, -141;    ChannelUnavailable (code):
quota -115, -144, -147                                 the notice falls back
-234 (night ban), HTTP 408, 5xx                        Temporary (code, "http_<n>")
any other code, e.g. -201, -108, -109, -1121, -131     Permanent (code)
other HTTP 4xx without an error code                   Permanent "http_<n>"
2xx that is not a JSON object                          Temporary "timeout_after_send"
connection refused / connect timeout                   Temporary "connect"
read timeout, connection lost                          Temporary "timeout_after_send"
=====================================================  ============================

A token error makes the client refresh once and retry once; a second one is raised.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn, Protocol

import aiohttp
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.domain.phones import mask_phone
from gateway.errors import (
    ChannelUnavailable,
    FieldError,
    OutsideWindow,
    PermanentProviderError,
    ProviderError,
    RateLimited,
    TemporaryProviderError,
    TokenRefreshFailed,
    TokenRejected,
    ValidationFailed,
)
from gateway.settings import ZaloSettings
from providers._http import raise_for_transient_status, retry_after

log = logging.getLogger(__name__)

OA = "zalo_oa"
ZNS = "zalo_zns"
OAUTH = "zalo_oauth"
OAUTH_PATH = "/v4/oa/access_token"
CS_PATH = "/v3.0/oa/message/cs"
ZNS_SEND_PATH = "/message/template"
ZNS_TEMPLATE_PATH = "/template/info/v2"
ZNS_STATUS_PATH = "/message/status"
MAX_TEXT = 2000
MAX_BUTTONS = 5
TEMPLATE_CACHE_SECONDS = 3600

_TOKEN_CODES = frozenset({"-216", "-220", "-124"})
_RATE_CODES = frozenset({"-32"})
_WINDOW_CODES = frozenset({"-230", "-232"})
_CHANNEL_CODES = frozenset(
    {"-213", "-227", "-114", "-118", "-119", "-139", "-140", "-141", "-115", "-144", "-147"}
)
_TEMPORARY_CODES = frozenset({"-234"})
# After these a cached template may be out of date: fetch it again next time.
_TEMPLATE_CODES = frozenset({"-109", "-111", "-112", "-1121", "-1122", "-131", "-146"})
_MEANING = {
    "-32": "rate limit reached",
    "-201": "bad parameter or user id",
    "-211": "out of quota",
    "-213": "the user does not follow the OA",
    "-216": "access token invalid",
    "-220": "access token expired or removed",
    "-227": "the user is banned or inactive for 45+ days",
    "-230": "no interaction in the last 7 days",
    "-232": "the user has not interacted with the OA",
    "-234": "night ban (22:00-06:00); retry after 06:00",
    "-240": "retired API version",
    "-108": "phone number invalid",
    "-109": "template id invalid",
    "-111": "template data empty",
    "-112": "template data of the wrong type",
    "-1121": "template data too long",
    "-1122": "template data missing",
    "-114": "the user cannot receive ZNS",
    "-115": "out of ZNS quota or balance",
    "-117": "no permission for this template",
    "-118": "no Zalo account for this number",
    "-119": "the account cannot receive ZNS",
    "-124": "access token invalid",
    "-131": "template not approved",
    "-135": "the OA lacks ZNS permission",
    "-136": "billing account problem",
    "-137": "billing account problem",
    "-139": "the user refused this content",
    "-140": "the user is not eligible",
    "-141": "the user refused ZNS from this OA",
    "-144": "OA daily ZNS limit reached",
    "-146": "template disabled",
    "-147": "template daily limit reached",
}
_MOBILE_E164 = re.compile(r"^\+84[1-9]\d{8}$")
_TRACKING_ID = re.compile(r"^[A-Za-z0-9]{1,48}$")
_RELEASE_LOCK = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"""


# --- values -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenPair:
    """The OA's access token, its rotating refresh token and the access expiry (epoch s)."""

    access_token: str
    refresh_token: str
    expires_at: float


class TokenStore(Protocol):
    """Where the token pair outlives the process (a lost refresh token means re-consent)."""

    async def load(self) -> TokenPair | None:
        """The stored pair, or None when none was ever stored."""
        ...

    async def save(self, pair: TokenPair) -> None:
        """Replace the stored pair."""
        ...


class RedisTokenStore:
    """:class:`TokenStore` in one Redis key (JSON). Only for Redis with persistence."""

    def __init__(self, redis: Redis, key: str) -> None:
        self._redis = redis
        self._key = key

    async def load(self) -> TokenPair | None:
        """The stored pair, or None."""
        raw = await self._redis.get(self._key)
        if raw is None:
            return None
        value = orjson.loads(raw)
        return TokenPair(
            str(value["access_token"]), str(value["refresh_token"]), float(value["expires_at"])
        )

    async def save(self, pair: TokenPair) -> None:
        """Replace the stored pair (no expiry: refresh tokens live about three months)."""
        value = {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "expires_at": pair.expires_at,
        }
        await self._redis.set(self._key, orjson.dumps(value))


@dataclass(frozen=True, slots=True)
class Button:
    """An ``oa.query.hide`` button: ``payload`` comes back to us as the user's text, without
    showing in their chat (the raw ``#command CODE`` would puzzle a citizen)."""

    title: str
    payload: str


@dataclass(frozen=True, slots=True)
class OaText:
    """A ``cs`` text of at most 2000 characters with up to five answer buttons."""

    text: str
    buttons: tuple[Button, ...] = ()

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError("an OA text must not be empty")
        if len(self.text) > MAX_TEXT:
            raise ValueError(
                f"an OA text holds at most {MAX_TEXT} characters, not {len(self.text)}"
            )
        if len(self.buttons) > MAX_BUTTONS:
            raise ValueError(f"at most {MAX_BUTTONS} buttons, not {len(self.buttons)}")
        for button in self.buttons:
            if not button.title.strip() or not button.payload:
                raise ValueError("a button needs a title and a payload")


@dataclass(frozen=True, slots=True)
class OaRequestUserInfo:
    """The ``request_user_info`` template; the answer arrives as ``user_submit_info``."""

    title: str
    subtitle: str
    image_url: str


OaMessage = OaText | OaRequestUserInfo


@dataclass(frozen=True, slots=True)
class OaSent:
    """Zalo took an OA message."""

    message_id: str
    user_id: str


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


ZnsStatus = Literal["delivered", "pending", "failed"]


# --- pure functions ---------------------------------------------------------------------


def raise_for_zalo(
    api: str, status: int, body: object, *, retry_after_header: str | None = None
) -> dict[str, Any]:
    """Return ``data`` of a successful Zalo answer, else raise our error (module table).

    ``api`` is the provider name put on the error (``zalo_oa``, ``zalo_zns``,
    ``zalo_oauth``); ``body`` is the parsed JSON, or None when the body was not JSON. An
    OAuth answer has no ``error`` and no ``data`` on success: the body itself is returned.
    """
    if status == 429:
        raise RateLimited(api, "throttled (HTTP 429)", "throttled", retry_after(retry_after_header))
    raise_for_transient_status(api, status, retry_after_header, maybe_sent=" after sending")
    code = _error_code(body)
    if code is None and not 200 <= status < 300:
        raise PermanentProviderError(api, f"HTTP {status}", f"http_{status}")
    if not isinstance(body, dict):
        raise TemporaryProviderError(
            api, f"HTTP {status} without a JSON object after sending", "timeout_after_send"
        )
    if code is None:
        if api == OAUTH and "error" not in body:
            return body
        raise PermanentProviderError(api, "answer without a usable error field", "invalid_answer")
    if code == "0":
        data = body.get("data")
        return data if isinstance(data, dict) else {}
    said = str(body.get("message") or body.get("error_description") or body.get("error_name") or "")
    detail = f"{_MEANING.get(code, 'unknown error')} (error {code}: {said[:200]})"
    if code in _TOKEN_CODES:
        raise TokenRejected(api, detail, code)
    if code in _RATE_CODES:
        raise RateLimited(api, detail, code)
    if code in _WINDOW_CODES:
        raise OutsideWindow(api, detail, code)
    if code in _CHANNEL_CODES:
        raise ChannelUnavailable(api, detail, code)
    if code in _TEMPORARY_CODES:
        raise TemporaryProviderError(api, detail, code)
    raise PermanentProviderError(api, detail, code)


def validate_template_data(template: ZnsTemplate, data: Mapping[str, str]) -> list[FieldError]:
    """What Zalo would refuse in ``template_data``, as ``template_data.<name>`` errors."""
    errors: list[FieldError] = []
    if template.status != "ENABLE":
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


def appsecret_proof(app_secret: str, access_token: str) -> str:
    """Hex HMAC-SHA256 of the access token keyed with the app secret."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def zns_phone(phone_e164: str) -> str:
    """``+84912345678`` → ``84912345678``; ChannelUnavailable for anything else."""
    if not _MOBILE_E164.match(phone_e164):
        raise ChannelUnavailable(ZNS, "ZNS reaches Vietnamese mobiles only", "phone_format")
    return phone_e164[1:]


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
                max_length=_opt_int(raw.get("maxLength")),
                min_length=_opt_int(raw.get("minLength")),
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


# --- the client -------------------------------------------------------------------------


class ZaloClient:
    """OA and ZNS calls with the OA's access token (see the module doc)."""

    LOCK_POLL_SECONDS = 0.02

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
        self._session = session
        self._redis = redis
        self._prefix = key_prefix
        self._store = store
        self._clock = clock
        self._on_alert = on_alert
        self._pair: TokenPair | None = None
        self._local = asyncio.Lock()
        seconds = settings.timeout_seconds
        # Half the budget to connect: "connect" (nothing sent) vs "timeout_after_send".
        self._timeout = aiohttp.ClientTimeout(total=seconds, sock_connect=seconds / 2)
        # Long enough for one refresh call and one store write.
        self._lock_ms = int((2 * seconds + 5) * 1000)

    # -- tokens

    async def access_token(self) -> str:
        """A usable access token, refreshed ahead of its expiry."""
        pair = self._pair or await self._store.load()
        self._pair = pair
        if pair is None:
            return (await self._refresh(None)).access_token
        now = self._clock()
        if now < pair.expires_at - self._settings.refresh_ahead_seconds:
            return pair.access_token
        try:
            return (await self._refresh(pair.access_token)).access_token
        except TemporaryProviderError as exc:
            if now < pair.expires_at:  # still valid: try again on a later call
                log.warning("zalo token refresh postponed", extra={"error": exc.detail})
                return pair.access_token
            raise

    async def _refresh(self, stale: str | None) -> TokenPair:
        """Single-flight refresh; ``stale`` is the access token that is no longer good.

        Without Redis there is no lock, so no refresh: a temporary error (the notice
        waits) rather than two processes spending the same single-use refresh token.
        """
        try:
            return await self._refresh_locked(stale)
        except RedisError as exc:
            raise TemporaryProviderError(
                OA, f"the token refresh lock is unavailable: {exc}", "refresh_lock"
            ) from exc

    async def _refresh_locked(self, stale: str | None) -> TokenPair:
        async with self._local:
            if self._usable_instead(self._pair, stale):
                assert self._pair is not None
                return self._pair
            lock_key = f"{self._prefix}zalo:refresh-lock"
            owner = secrets.token_hex(16)
            await self._acquire(lock_key, owner)
            try:
                stored = await self._store.load()
                if self._usable_instead(stored, stale):
                    assert stored is not None
                    self._pair = stored  # another process refreshed while we waited
                    return stored
                refresh_token = stored.refresh_token if stored else self._settings.refresh_token
                pair = await self._call_refresh(refresh_token)
                await self._store.save(pair)  # before anyone uses it
                self._pair = pair
                log.info("zalo token pair refreshed", extra={"expires_at": pair.expires_at})
                return pair
            finally:
                await self._redis.eval(_RELEASE_LOCK, 1, lock_key, owner)

    def _usable_instead(self, pair: TokenPair | None, stale: str | None) -> bool:
        return pair is not None and pair.access_token != stale and self._clock() < pair.expires_at

    async def _acquire(self, key: str, owner: str) -> None:
        deadline = time.monotonic() + self._lock_ms / 1000 + 1
        while not await self._redis.set(key, owner, nx=True, px=self._lock_ms):
            if time.monotonic() > deadline:
                raise TemporaryProviderError(
                    OA, "the token refresh lock is held too long", "refresh_lock"
                )
            await asyncio.sleep(self.LOCK_POLL_SECONDS)

    async def _call_refresh(self, refresh_token: str) -> TokenPair:
        if not refresh_token:
            await self._refused("no token pair stored and ZALO_REFRESH_TOKEN is empty")
        url = self._settings.oauth_base_url.rstrip("/") + OAUTH_PATH
        form = {
            "refresh_token": refresh_token,
            "app_id": self._settings.app_id,
            "grant_type": "refresh_token",
        }
        headers = {"secret_key": self._settings.app_secret}
        try:
            body = await self._exchange(OAUTH, "POST", url, headers, data=form)
        except TokenRejected as exc:
            await self._refused(exc.detail)
        except TemporaryProviderError as exc:
            # The answer may be lost after Zalo rotated the pair; the next refresh tells.
            log.error("zalo token refresh got no usable answer", extra={"error": exc.detail})
            raise
        except ProviderError as exc:
            await self._refused(exc.detail)
        access, new_refresh = body.get("access_token"), body.get("refresh_token")
        if not isinstance(access, str) or not access:
            await self._refused("the refresh answer has no access_token")
        if not isinstance(new_refresh, str) or not new_refresh:
            log.error("zalo refresh answer without a refresh_token; keeping the old one")
            new_refresh = refresh_token
        expires_in = _opt_int(body.get("expires_in"))
        if expires_in is None:
            log.warning("zalo refresh answer without a usable expires_in; assuming 1 h")
            expires_in = 3600
        return TokenPair(access, new_refresh, self._clock() + expires_in)

    async def _refused(self, reason: str) -> NoReturn:
        message = f"zalo token refresh refused: {reason}"
        log.error(
            "zalo token refresh failed; an OA admin must grant access again",
            extra={"reason": reason},
        )
        if self._on_alert is not None:
            await self._on_alert(message)
        raise TokenRefreshFailed(OA, message, "refresh_refused")

    # -- OA

    async def send_oa(self, user_id: str, message: OaMessage) -> OaSent:
        """Send a ``cs`` message to one OA user (within the 7-day window)."""
        url = self._settings.oa_base_url.rstrip("/") + CS_PATH
        body = {"recipient": {"user_id": user_id}, "message": oa_message_body(message)}
        data = await self._call(OA, "POST", url, json=body)
        sent = OaSent(str(data.get("message_id") or ""), str(data.get("user_id") or user_id))
        log.info("zalo oa message sent", extra={"user": user_id, "message_id": sent.message_id})
        return sent

    # -- ZNS

    async def template_info(self, template_id: str) -> ZnsTemplate:
        """The template's parameters and status, cached in Redis for an hour."""
        key = self._template_key(template_id)
        try:
            cached = await self._redis.get(key)
        except RedisError as exc:
            log.warning("zns template cache unavailable", extra={"error": str(exc)})
            cached = None
        if cached is not None:
            return parse_template(template_id, orjson.loads(cached))
        url = self._settings.zns_base_url.rstrip("/") + ZNS_TEMPLATE_PATH
        data = await self._call(ZNS, "GET", url, params={"template_id": template_id})
        template = parse_template(template_id, data)
        try:
            await self._redis.set(key, orjson.dumps(data), ex=TEMPLATE_CACHE_SECONDS)
        except RedisError as exc:
            log.warning("zns template not cached", extra={"error": str(exc)})
        return template

    async def send_zns(
        self, phone_e164: str, template_id: str, data: Mapping[str, str], tracking_id: str
    ) -> ZnsAccepted:
        """Send a ZNS template message; ``tracking_id`` makes a repeat harmless."""
        phone = zns_phone(phone_e164)
        errors: list[FieldError] = []
        if not _TRACKING_ID.match(tracking_id):
            errors.append(FieldError("tracking_id", "1 to 48 letters or digits"))
        errors += validate_template_data(await self.template_info(template_id), data)
        if errors:
            raise ValidationFailed(errors)
        body: dict[str, Any] = {
            "phone": phone,
            "template_id": template_id,
            "template_data": dict(data),
            "tracking_id": tracking_id,
        }
        if self._settings.zns_development:
            body["mode"] = "development"
        url = self._settings.zns_base_url.rstrip("/") + ZNS_SEND_PATH
        try:
            answer = await self._call(ZNS, "POST", url, json=body)
        except ProviderError as exc:
            log.info(
                "zns refused",
                extra={"phone": mask_phone(phone), "template": template_id, "code": exc.code},
            )
            if exc.code in _TEMPLATE_CODES:
                await self._forget_template(template_id)
            raise
        quota = answer.get("quota")
        remaining = _opt_int(quota.get("remainingQuota")) if isinstance(quota, dict) else None
        sent_ms = _opt_int(answer.get("sent_time"))
        accepted = ZnsAccepted(
            str(answer.get("msg_id") or ""),
            datetime.fromtimestamp(sent_ms / 1000, UTC) if sent_ms is not None else None,
            remaining,
        )
        log.info(
            "zns accepted",
            extra={"phone": mask_phone(phone), "template": template_id, "msg_id": accepted.msg_id},
        )
        return accepted

    async def zns_status(self, msg_id: str) -> ZnsStatus:
        """Ask Zalo whether a ZNS message was delivered (an unknown status is pending)."""
        url = self._settings.zns_base_url.rstrip("/") + ZNS_STATUS_PATH
        data = await self._call(ZNS, "GET", url, params={"message_id": msg_id})
        status = _opt_int(data.get("status"))
        return "delivered" if status == 1 else "failed" if status == -1 else "pending"

    # -- plumbing

    def _template_key(self, template_id: str) -> str:
        return f"{self._prefix}zalo:template:{template_id}"

    async def _forget_template(self, template_id: str) -> None:
        """Drop the cached template; Zalo's error, not a cache failure, is what the caller
        must see (the cache expires within the hour anyway)."""
        try:
            await self._redis.delete(self._template_key(template_id))
        except RedisError as exc:
            log.warning("zns template cache not cleared", extra={"error": str(exc)})

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
        token = await self.access_token()
        try:
            return await self._exchange(
                api, method, url, self._auth(token), json=json, params=params
            )
        except TokenRejected:
            log.info("zalo token rejected; refreshing and retrying once", extra={"api": api})
        token = (await self._refresh(token)).access_token
        return await self._exchange(api, method, url, self._auth(token), json=json, params=params)

    def _auth(self, token: str) -> dict[str, str]:
        return {
            "access_token": token,
            "appsecret_proof": appsecret_proof(self._settings.app_secret, token),
        }

    async def _exchange(
        self,
        api: str,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        try:
            async with self._session.request(
                method,
                url,
                headers=headers,
                json=json,
                params=params,
                data=data,
                timeout=self._timeout,
            ) as resp:
                status, retry, raw = resp.status, resp.headers.get("Retry-After"), await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(api, exc) from exc
        try:
            body: object = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        return raise_for_zalo(api, status, body, retry_after_header=retry)


def oa_message_body(message: OaMessage) -> dict[str, Any]:
    """The ``message`` object of a ``cs`` request."""
    if isinstance(message, OaRequestUserInfo):
        element = {
            "title": message.title,
            "subtitle": message.subtitle,
            "image_url": message.image_url,
        }
        payload = {"template_type": "request_user_info", "elements": [element]}
        return {"attachment": {"type": "template", "payload": payload}}
    body: dict[str, Any] = {"text": message.text}
    if message.buttons:
        buttons = [
            {"title": b.title, "type": "oa.query.hide", "payload": b.payload}
            for b in message.buttons
        ]
        body["attachment"] = {"type": "template", "payload": {"buttons": buttons}}
    return body


def _transport_error(api: str, exc: BaseException) -> ProviderError:
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        return TemporaryProviderError(api, f"cannot connect: {exc}", "connect")
    if isinstance(exc, aiohttp.InvalidURL):
        return PermanentProviderError(api, f"bad Zalo base URL: {exc}", "config")
    what = "no answer in time" if isinstance(exc, TimeoutError) else "connection lost"
    return TemporaryProviderError(
        api, f"{what} ({type(exc).__name__}) after sending", "timeout_after_send"
    )


def _error_code(body: object) -> str | None:
    if not isinstance(body, dict):
        return None
    value = body.get("error")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,9}", value.strip()):
        return str(int(value))
    return None


def _opt_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None
