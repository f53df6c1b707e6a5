"""An audit row written by Unit.audit's statement stores what the ORM's create stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from tortoise.connection import get_connection

from gql.domain.unit import Unit
from gql.store.db import write_transaction
from gql.store.models import AuditEvent
from gql.store.writes import insert_audit_event

COLUMNS = '"at","actor_id","action","object_type","object_id","before","after","detail"'


async def _stored(row_id: int) -> tuple[Any, ...]:
    _, rows = await get_connection("default").execute_query(
        f'SELECT {COLUMNS} FROM "audit_event" WHERE "id" = {int(row_id)}'
    )
    return tuple(rows[0])


async def test_audit_rows_are_stored_as_the_orm_stores_them(db: None) -> None:
    at = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=timezone(timedelta(hours=-5)))
    cases: list[dict[str, Any]] = [
        {
            "actor_id": 7,
            "action": "recordCourseProgress",
            "object_type": "CourseProgress",
            "object_id": "12",
            "before": {"origin": "SELF", "dueAt": None},
            "after": {"percent": 100, "note": 'Zoë \u2603 "q"', "n": [1, 2.5, True], "d": {}},
            "detail": None,
        },
        {
            "actor_id": None,
            "action": "denied:x",
            "object_type": "User",
            "object_id": None,
            "before": None,
            "after": None,
            "detail": "why",
        },
    ]
    for case in cases:
        async with write_transaction():
            orm = await AuditEvent.create(at=at, **case)
            await insert_audit_event(at, **case)
        new = await AuditEvent.filter(id__gt=orm.id).order_by("-id").first()
        assert new is not None
        assert await _stored(new.id) == await _stored(orm.id)
        assert (new.at, new.before, new.after, new.detail) == (
            at,
            case["before"],
            case["after"],
            case["detail"],
        )


async def test_unit_audit_writes_its_row(db: None) -> None:
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    unit = Unit(actor_id=3, now=at)
    async with write_transaction():
        await unit.audit("award", "Enrollment", 41, after={"cycle": 1})
    row = await AuditEvent.get(action="award")
    assert (row.at, row.actor_id, row.object_type, row.object_id) == (at, 3, "Enrollment", "41")
    assert (row.before, row.after, row.detail) == (None, {"cycle": 1}, None)
