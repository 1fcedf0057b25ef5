"""Citizens' ratings in the database, on SQLite and PostgreSQL.

One rating per dossier and rater, filled in by several calls (progress, then quality,
then the comment) without a later call wiping an earlier one; the agency is the
dossier's; bad input names its field and writes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.errors import NotFound, ValidationFailed
from gateway.storage.db import Database
from gateway.storage.ratings import record_rating
from gateway.storage.tables import ratings
from tests.staff_helpers import empty_staff_tables, rows, seed_dossier

CODE = "000.00.12.H19-260401-0001"
OTHER = "000.00.05.H19-260402-0002"
AGENCY = ("000.00.12.H19", "Sở Xây dựng")
NOW = datetime(2026, 5, 4, 3, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    await empty_staff_tables(database_url)
    database = Database.open(database_url)
    try:
        await seed_dossier(database.writer, CODE, agency=AGENCY)
        await seed_dossier(database.writer, OTHER, agency=("000.00.05.H19", "Sở Tư pháp"))
        yield database
    finally:
        await database.close()


async def rate(db: Database, **given: Any) -> None:
    values: dict[str, Any] = {
        "dossier_code": CODE,
        "channel": "oa",
        "rater": "oa:u-1",
        "progress": None,
        "quality": None,
        "comment": None,
        "now": NOW,
    }
    await record_rating(db.writer, **(values | given))


async def stored(db: Database) -> list[dict[str, Any]]:
    return [
        {
            key: row[key]
            for key in (
                "dossier_code",
                "agency_code",
                "zalo_user_id",
                "score",
                "progress_score",
                "quality_score",
                "channel",
                "rater",
                "comment",
                "created_at",
            )
        }
        for row in sorted(await rows(db.reader, ratings), key=lambda r: r["id"])
    ]


def rating(**values: Any) -> dict[str, Any]:
    return {
        "dossier_code": CODE,
        "agency_code": AGENCY[0],
        "zalo_user_id": "u-1",
        "score": None,
        "progress_score": None,
        "quality_score": None,
        "channel": "oa",
        "rater": "oa:u-1",
        "comment": None,
        "created_at": NOW,
    } | values


async def test_the_oa_fills_one_rating_in_three_steps(db: Database) -> None:
    await rate(db, progress=4)
    assert await stored(db) == [rating(progress_score=4)]
    await rate(db, quality=2, now=NOW + timedelta(minutes=1))
    await rate(db, comment="  Cán bộ nhiệt tình  ", now=NOW + timedelta(minutes=2))
    # Given when first rated: the month of a rating never moves.
    assert await stored(db) == [
        rating(progress_score=4, quality_score=2, comment="Cán bộ nhiệt tình")
    ]


async def test_a_later_score_replaces_and_nothing_given_is_wiped(db: Database) -> None:
    await rate(db, progress=1, quality=1, comment="Chậm")
    await rate(db, progress=5)
    await rate(db, comment="   ")  # an empty comment is no comment: the stored one stays
    assert await stored(db) == [rating(progress_score=5, quality_score=1, comment="Chậm")]


async def test_one_rating_per_rater_and_dossier(db: Database) -> None:
    await rate(db, progress=3)
    await rate(db, rater="oa:" + "1" * 32, progress=1)  # the longest OA user id
    await rate(db, rater="oa:u-2", quality=4)
    await rate(db, channel="web", rater="phone", progress=2, quality=5, comment="Tốt")
    # The owner again, now from a ZNS rating template: the same phone rating is updated.
    await rate(db, channel="zns", rater="phone", quality=4)
    await rate(db, dossier_code=OTHER, progress=5)
    assert await stored(db) == [
        rating(progress_score=3),
        rating(zalo_user_id="1" * 32, rater="oa:" + "1" * 32, progress_score=1),
        rating(zalo_user_id="u-2", rater="oa:u-2", quality_score=4),
        rating(
            zalo_user_id=None,
            channel="zns",
            rater="phone",
            progress_score=2,
            quality_score=4,
            comment="Tốt",
        ),
        rating(dossier_code=OTHER, agency_code="000.00.05.H19", progress_score=5),
    ]


async def test_a_long_comment_is_cut(db: Database) -> None:
    await rate(db, progress=4, comment="ý " * 800)
    (row,) = await stored(db)
    assert len(row["comment"]) == 1000


@pytest.mark.parametrize(
    ("given", "fields"),
    [
        ({"progress": 0}, ["progress"]),
        ({"progress": 6, "quality": -1}, ["progress", "quality"]),
        ({"quality": True}, ["quality"]),
        ({"progress": 3, "channel": "sms"}, ["channel"]),
        ({"progress": 3, "rater": "u-1"}, ["rater"]),
        ({"progress": 3, "rater": "oa:"}, ["rater"]),
        ({"progress": 3, "rater": "oa:" + "1" * 33}, ["rater"]),  # no OA user id is that long
        ({"comment": "Chỉ có góp ý"}, ["progress"]),  # a new rating needs a score
    ],
)
async def test_bad_input_names_the_field_and_writes_nothing(
    db: Database, given: dict[str, Any], fields: list[str]
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await rate(db, **given)
    assert [e.field for e in caught.value.errors] == fields
    assert await stored(db) == []


async def test_an_unknown_dossier_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound):
        await rate(db, dossier_code="000.00.99.H19-260401-0009", progress=4)
    assert await stored(db) == []


async def test_concurrent_steps_end_in_one_complete_rating(db: Database) -> None:
    # The progress and the quality arriving together (two workers) still make one row.
    await asyncio.gather(rate(db, progress=4), rate(db, quality=3))
    assert await stored(db) == [rating(progress_score=4, quality_score=3)]
