"""Writes the ORM can only make in two extra round trips."""

from __future__ import annotations

from datetime import datetime

from tortoise.connection import get_connection

from gql.store.sql import Sql


async def insert_award_once(
    enrollment_id: int,
    cycle: int,
    awarded_at: datetime,
    expires_at: datetime | None,
    created_at: datetime,
) -> int | None:
    """Insert the award of this enrollment's cycle unless one exists; the new row's id, or
    None when another request wrote it first.

    Losing that race must not abort the caller's transaction: with the ORM's insert it takes
    a savepoint around it (SAVEPOINT, INSERT, RELEASE); ON CONFLICT DO NOTHING on the
    (enrollment, cycle) unique key is one statement on SQLite and PostgreSQL alike.
    """
    sql = Sql()
    values = ",".join(
        sql.p(value) for value in (enrollment_id, cycle, awarded_at, expires_at, created_at)
    )
    text = (
        'INSERT INTO "award" ("enrollment_id","cycle","awarded_at","expires_at","created_at")'
        f' VALUES ({values}) ON CONFLICT ("enrollment_id","cycle") DO NOTHING RETURNING "id"'
    )
    # the dict form: it fetches rows on PostgreSQL, where execute_query drops an INSERT's
    rows = await get_connection("default").execute_query_dict(text, sql.params)
    return int(rows[0]["id"]) if rows else None
