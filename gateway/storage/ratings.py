"""Citizens' ratings of a dossier's handling: two scores, from every channel.

Citizens rate two things (the one-stop-shop rules, docs/one-stop-shop.md): the
handling's **progress** (tiến độ) and its **quality** (chất lượng tiếp nhận, giải
quyết), each from 1 (rất không hài lòng) to 5 (rất hài lòng), and may add a comment. A
rating comes from the OA (``channel="oa"``), the citizen web page (``"web"``) or a ZNS
rating template (``"zns"``).

Rules:

* One rating per dossier and rater (the table's unique ``(dossier_code, rater)``). The
  rater is ``"oa:<OA user id>"`` for an OA user, or ``"phone"`` for the dossier's own phone
  (the web page and ZNS, where ownership was proven for that phone), so the owner rating
  on the web and again by ZNS updates one rating.
* :func:`record_rating` is an upsert, in one statement (no read-then-write race): a score
  or comment given replaces the stored one, one left ``None`` keeps it. So the OA asks the
  progress, then the quality, then the comment, three calls filling one row, and a later
  call never wipes what an earlier one stored. ``channel`` becomes the last call's.
* The agency is the dossier's (``dossiers.agency_code`` when first rated): statistics
  count ratings per agency, and per officer through the dossier's closing officer.
* ``created_at`` is when the rating was first given and never moves: the statistics put a
  rating in the month it was given, whatever was filled in later.
* ``score`` is the single overall score of ratings given before the two scores were asked;
  it stays NULL for new ratings.
* A comment is stripped and cut to :data:`COMMENT_MAX_CHARS`; an empty one counts as none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import FieldError, NotFound, ValidationFailed
from gateway.storage.tables import dossiers, ratings

__all__ = [
    "CHANNELS",
    "COMMENT_MAX_CHARS",
    "MAX_SCORE",
    "MIN_SCORE",
    "Channel",
    "record_rating",
]

Channel = Literal["oa", "web", "zns"]
CHANNELS: Final = ("oa", "web", "zns")
MIN_SCORE: Final = 1
MAX_SCORE: Final = 5
COMMENT_MAX_CHARS: Final = 1000
_OA_RATER: Final = "oa:"
_PHONE_RATER: Final = "phone"
# An OA user id as ``zalo_users.user_id`` holds it.
_OA_USER_MAX_CHARS: Final = 32


async def record_rating(
    engine: AsyncEngine,
    *,
    dossier_code: str,
    channel: Channel,
    rater: str,
    progress: int | None,
    quality: int | None,
    comment: str | None,
    now: datetime,
) -> None:
    """Record (or complete) ``rater``'s rating of a dossier's handling (module doc).

    Raises :class:`ValidationFailed` naming each bad field (a score outside 1-5, an
    unknown channel or rater, a new rating with no score at all) and :class:`NotFound`
    for a dossier the gateway never heard of; nothing is written then.
    """
    text = _comment(comment)
    _check(channel=channel, rater=rater, progress=progress, quality=quality)
    async with engine.begin() as conn:
        agency = await _agency_of(conn, dossier_code)
        if progress is None and quality is None and not await _exists(conn, dossier_code, rater):
            raise ValidationFailed(
                [FieldError("progress", "a new rating needs the progress or the quality score")]
            )
        given = {
            "progress_score": progress,
            "quality_score": quality,
            "comment": text,
        }
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        stmt = dialect_insert(ratings).values(
            dossier_code=dossier_code,
            agency_code=agency,
            zalo_user_id=rater.removeprefix(_OA_RATER) if rater.startswith(_OA_RATER) else None,
            channel=channel,
            rater=rater,
            created_at=now,
            **given,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[ratings.c.dossier_code, ratings.c.rater],
            set_={
                "channel": stmt.excluded.channel,
                # What this call gives replaces; what it leaves None keeps the stored value.
                **{name: sa.func.coalesce(stmt.excluded[name], ratings.c[name]) for name in given},
            },
        )
        await conn.execute(stmt)


def _check(*, channel: str, rater: str, progress: int | None, quality: int | None) -> None:
    errors: list[FieldError] = []
    for name, score in (("progress", progress), ("quality", quality)):
        if score is not None and (
            isinstance(score, bool)
            or not isinstance(score, int)
            or not MIN_SCORE <= score <= MAX_SCORE
        ):
            errors.append(
                FieldError(name, f"must be a whole number from {MIN_SCORE} to {MAX_SCORE}")
            )
    if channel not in CHANNELS:
        errors.append(FieldError("channel", f"must be one of {', '.join(CHANNELS)}"))
    oa_user = rater.removeprefix(_OA_RATER) if rater.startswith(_OA_RATER) else None
    if not (rater == _PHONE_RATER or (oa_user and len(oa_user) <= _OA_USER_MAX_CHARS)):
        errors.append(FieldError("rater", "must be 'oa:<OA user id>' or 'phone'"))
    if errors:
        raise ValidationFailed(errors)


def _comment(comment: str | None) -> str | None:
    text = (comment or "").strip()
    return text[:COMMENT_MAX_CHARS] if text else None


async def _agency_of(conn: AsyncConnection, dossier_code: str) -> str | None:
    row = (
        await conn.execute(sa.select(dossiers.c.agency_code).where(dossiers.c.code == dossier_code))
    ).first()
    if row is None:
        raise NotFound(f"no dossier {dossier_code}")
    agency: str | None = row.agency_code
    return agency


async def _exists(conn: AsyncConnection, dossier_code: str, rater: str) -> bool:
    found = await conn.execute(
        sa.select(ratings.c.id).where(
            ratings.c.dossier_code == dossier_code, ratings.c.rater == rater
        )
    )
    return found.first() is not None
