"""Writes, and the locks taken for them, that the ORM makes in more round trips or with
models nobody reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.connection import get_connection

from gql.store.models import AuditEvent
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


async def lock_users(user_ids: list[int]) -> set[int]:
    """Lock these users' rows until the transaction ends (PostgreSQL FOR UPDATE, in id order,
    so two writers never wait on each other crosswise); the ids that exist.

    SQLite has no row locks (its writers hold the database's write lock) and reads the rows.
    The ORM's form builds a model per row to return ids alone.
    """
    if not user_ids:
        return set()
    sql = Sql()
    ids = ",".join(sql.p(user_id) for user_id in sorted(set(user_ids)))
    lock = "" if sql.dialect == "sqlite" else " FOR UPDATE"
    text = f'SELECT "id" FROM "user" WHERE "id" IN ({ids}) ORDER BY "id" ASC{lock}'
    _, rows = await get_connection("default").execute_query(text, sql.params)
    return {int(row[0]) for row in rows}


async def insert_audit_event(
    at: datetime,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    detail: str | None,
) -> None:
    """Append an audit row. The ORM's create builds its query and a model nobody reads
    (about 30 us on SQLite, 45 us on PostgreSQL per row); the JSON columns are encoded by the
    model's own fields, so the stored text is the ORM's."""
    fields = AuditEvent._meta.fields_map
    sql = Sql()
    values = ",".join(
        sql.p(value)
        for value in (
            at,
            actor_id,
            action,
            object_type,
            object_id,
            fields["before"].to_db_value(before, AuditEvent),
            fields["after"].to_db_value(after, AuditEvent),
            detail,
        )
    )
    text = (
        'INSERT INTO "audit_event"'
        ' ("at","actor_id","action","object_type","object_id","before","after","detail")'
        f" VALUES ({values})"
    )
    await get_connection("default").execute_query(text, sql.params)
