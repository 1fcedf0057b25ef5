"""One HTTP exchange with Zalo, its answer handed to :func:`raise_for_zalo`.

::

    request ──► aiohttp ──► status, Retry-After, body ──► JSON? ──► raise_for_zalo ──► data
                  │
                  └─ failed below HTTP ──► providers._http.transport_error
                     ("connect": nothing sent; MaybeSent: Zalo may have it)

The connect phase gets half the time budget, so that a connect timeout (nothing was
sent) is told apart from a read timeout (the message may have been taken).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from providers._http import transport_error
from providers.zalo.errors import raise_for_zalo


class ZaloTransport:
    """Sends one request to a Zalo API and returns the ``data`` of its answer."""

    def __init__(self, session: aiohttp.ClientSession, timeout_seconds: float) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(
            total=timeout_seconds, sock_connect=timeout_seconds / 2
        )

    async def exchange(
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
        """One call; ``api`` names the Zalo API on any error raised (module diagram)."""
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
            raise transport_error(api, exc, base_url_name="Zalo base URL") from exc
        try:
            body: object = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        return raise_for_zalo(api, status, body, retry_after_header=retry)


def int_or_none(value: object) -> int | None:
    """An integer from a JSON value Zalo sends as a number or a numeric string."""
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
