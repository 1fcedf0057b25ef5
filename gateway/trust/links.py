"""Signed links in SMS: one short link per notice, to the citizen page.

A notice of a :data:`LINK_KINDS` kind (the invitation to pick up a result, the result
check, the "your notices moved to Zalo" message) gets a link when it is inserted and
``CITIZEN_SECRET`` is set: ``<CITIZEN_BASE_URL>/l/<token>``. The token is 16 characters,
the base64url form of the first 12 bytes of HMAC-SHA256(secret, ``"link:" + notice id``):
it says nothing about the dossier or the citizen, cannot be made without the secret, and
is stored on the notice (``notices.link_token``) so the page finds the notice it stands
for. The URL is also put in the notice's params (``link``), where the SMS templates and
the ZNS parameter mapping read it.

A link opens the page for ``CITIZEN_LINK_DAYS`` days after its notice was created; the
page then holds the proof ``sms_link`` for that dossier (the SMS went to the dossier's
phone). One HMAC per notice: ingest speed does not suffer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.settings import Settings
from gateway.storage.tables import notices

LINK_KINDS: Final = frozenset({"invitation", "result_check", "channel_moved"})
# The notice param holding the URL (the fact ``link`` for templates and ZNS mappings).
LINK_PARAM: Final = "link"
TOKEN_LENGTH: Final = 16
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]{16}")


def link_token(secret: str, notice_id: str) -> str:
    """The notice's token: 16 characters of base64url over the first 12 bytes of its HMAC."""
    digest = hmac.new(secret.encode(), f"link:{notice_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode()


def link_url(settings: Settings, token: str) -> str:
    """The URL printed in the SMS."""
    return _url(settings.trust.base_url, token)


def _url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/l/{token}"


def well_formed(token: str) -> bool:
    """Whether ``token`` looks like one we issue (anything else is not looked up)."""
    return _TOKEN_RE.fullmatch(token) is not None


@dataclass(frozen=True, slots=True)
class Links:
    """What the outbox needs to stamp links on new notices: the secret and the base URL."""

    secret: str
    base_url: str

    @classmethod
    def for_settings(cls, settings: Settings) -> Links | None:
        """The links of this gateway, or None when ``CITIZEN_SECRET`` is not set (then no
        notice carries a link and the Zalo-only kinds stay Zalo-only)."""
        if not settings.trust.secret:
            return None
        return cls(settings.trust.secret, settings.trust.base_url)

    def stamp(self, kind: str, notice_id: str) -> tuple[str, str] | None:
        """The token and URL of a new notice of ``kind``, or None for a kind without one."""
        if kind not in LINK_KINDS:
            return None
        token = link_token(self.secret, notice_id)
        return token, _url(self.base_url, token)


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """The notice a valid link stands for."""

    notice_id: str
    kind: str
    dossier_code: str
    phone_e164: str | None
    expires_at: datetime


async def resolve(
    engine: AsyncEngine, settings: Settings, token: str, now: datetime
) -> LinkTarget | None:
    """The notice of a link that is well formed, known and not expired; else None."""
    if not well_formed(token):
        return None
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(
                    notices.c.id,
                    notices.c.kind,
                    notices.c.dossier_code,
                    notices.c.phone_e164,
                    notices.c.created_at,
                ).where(notices.c.link_token == token)
            )
        ).first()
    if row is None or row.kind not in LINK_KINDS:
        return None
    # The column is indexed, not unique: check the token really is this notice's.
    if not settings.trust.secret or not hmac.compare_digest(
        link_token(settings.trust.secret, row.id), token
    ):
        return None
    expires_at = row.created_at + timedelta(days=settings.trust.link_days)
    if now >= expires_at:
        return None
    return LinkTarget(row.id, row.kind, row.dossier_code, row.phone_e164, expires_at)
