"""Zalo's answers turned into our exceptions: :func:`raise_for_zalo` and its code table.

Zalo answers errors as HTTP 200 with ``error != 0`` (``docs/zalo.md`` (§ Error codes)).
Every answer goes through :func:`raise_for_zalo`, the one place that maps them; what
does not depend on Zalo (HTTP 408/5xx/504, failures below HTTP) comes from
:mod:`providers._http`, shared with the SMS providers:

=====================================================  ============================
Zalo answer                                            exception (``code``)
=====================================================  ============================
``error`` 0                                            none: ``data`` is returned
                                                       (a list as ``{"list": data}``)
-216, -220 (OA token), -124 (ZNS token)                TokenRejected (code)
-32 (rate limit), HTTP 429                             RateLimited (code, "throttled")
-230, -232 (outside the 7-day window)                  OutsideWindow (code)
-213, -227; ZNS -114, -118, -119, -139, -140, -141;    ChannelUnavailable (code):
quota -115, -144, -147                                 the notice falls back
-109, -111, -112, -1121, -1122, -131, -146 (the ZNS    TemplateRefused (code): the
template or its data)                                  cached template is dropped
-234 (night ban), HTTP 408, 5xx                        Temporary (code, "http_<n>")
any other code, e.g. -201, -108, -117                  Permanent (code)
other HTTP 4xx without an error code                   Permanent "http_<n>"
HTTP 504, 2xx that is not a JSON object                MaybeSent ("timeout_after_send")
connection refused / connect timeout                   Temporary "connect"
read timeout, connection lost                          MaybeSent ("timeout_after_send")
=====================================================  ============================
"""

from __future__ import annotations

import re
from typing import Any

from gateway.errors import (
    ChannelUnavailable,
    OutsideWindow,
    PermanentProviderError,
    RateLimited,
    TemplateRefused,
    TemporaryProviderError,
    TokenRejected,
)
from providers._http import raise_for_transient_status, retry_after, unreadable_answer

# The provider names put on our errors, one per Zalo API.
OA = "zalo_oa"
ZNS = "zalo_zns"
OAUTH = "zalo_oauth"
# The key a ``data`` that is a list comes back under.
LISTED = "list"

_TOKEN_CODES = frozenset({"-216", "-220", "-124"})
_RATE_CODES = frozenset({"-32"})
_WINDOW_CODES = frozenset({"-230", "-232"})
_CHANNEL_CODES = frozenset(
    {"-213", "-227", "-114", "-118", "-119", "-139", "-140", "-141", "-115", "-144", "-147"}
)
# After these a cached template may be out of date: fetch it again next time.
_TEMPLATE_CODES = frozenset({"-109", "-111", "-112", "-1121", "-1122", "-131", "-146"})
_TEMPORARY_CODES = frozenset({"-234"})
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


def raise_for_zalo(
    api: str, status: int, body: object, *, retry_after_header: str | None = None
) -> dict[str, Any]:
    """Return ``data`` of a successful Zalo answer, else raise our error (module table).
    A ``data`` that is a list is returned as ``{LISTED: data}``.

    ``api`` is the provider name put on the error (:data:`OA`, :data:`ZNS`,
    :data:`OAUTH`); ``body`` is the parsed JSON, or None when the body was not JSON. An
    OAuth answer has no ``error`` and no ``data`` on success: the body itself is returned.
    """
    if status == 429:
        raise RateLimited(api, "throttled (HTTP 429)", "throttled", retry_after(retry_after_header))
    raise_for_transient_status(api, status, retry_after_header)
    code = _error_code(body)
    if code is None and not 200 <= status < 300:
        raise PermanentProviderError(api, f"HTTP {status}", f"http_{status}")
    if not isinstance(body, dict):
        raise unreadable_answer(api, status)
    if code is None:
        if api == OAUTH and "error" not in body:
            return body
        raise PermanentProviderError(api, "answer without a usable error field", "invalid_answer")
    if code == "0":
        data = body.get("data")
        if isinstance(data, list):  # the OA conversation listing
            return {LISTED: data}
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
    if code in _TEMPLATE_CODES:
        raise TemplateRefused(api, detail, code)
    if code in _TEMPORARY_CODES:
        raise TemporaryProviderError(api, detail, code)
    raise PermanentProviderError(api, detail, code)


def _error_code(body: object) -> str | None:
    """Zalo's ``error`` as a canonical string (``"-216"``), or None when there is none."""
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
