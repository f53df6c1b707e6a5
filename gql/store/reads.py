"""Read-only rows for the enrollment read model, fetched without building Tortoise models.

Every enrollment read loads its certifications' course links (with the course) and the
learner's progress on those courses: hundreds of rows per page. As model instances they
cost about three times what the same statements cost as plain tuples, so these two reads
run their SQL through the connection and build immutable rows instead. The statements are
the ones the ORM sent (same tables, columns, filters and order), one each.

Values are converted as Tortoise converts them, so a row compares equal to its model:
SQLite's datetime text is parsed into an aware datetime in the configured time zone
(PostgreSQL's aware datetimes are moved into it), and SQLite's 0/1 become booleans.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any, NamedTuple

from ciso8601 import parse_datetime  # Tortoise's parser with [accel], which we depend on
from tortoise.connection import get_connection
from tortoise.timezone import get_default_timezone

from gql.store.models import CourseProgress, ProgressStatus
from gql.store.sql import Sql


class CourseRow(NamedTuple):
    id: int
    name: str
    description: str
    duration_minutes: int | None
    published_at: datetime
    updated_at: datetime


class CourseLinkRow(NamedTuple):
    """A certification's course: a certification_course row with its course."""

    id: int
    certification_id: int
    course_id: int
    mandatory: bool
    position: int
    course: CourseRow


class ProgressRow(NamedTuple):
    id: int
    learner_id: int
    course_id: int
    percent: int
    status: ProgressStatus
    started_at: datetime | None
    completed_at: datetime | None
    attempt_started_at: datetime | None
    updated_at: datetime


def stored_datetime(value: Any, zone: tzinfo) -> Any:
    """What tortoise.fields.DatetimeField.to_python_value returns (with use_tz)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = parse_datetime(value)  # SQLite: the text Tortoise stored
    return value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)


_LINKS = (
    'SELECT "certification_course"."id","certification_course"."certification_id",'
    '"certification_course"."course_id","certification_course"."mandatory",'
    '"certification_course"."position","course"."id","course"."name","course"."description",'
    '"course"."duration_minutes","course"."published_at","course"."updated_at"'
    ' FROM "certification_course"'
    ' LEFT OUTER JOIN "course" ON "course"."id"="certification_course"."course_id"'
    ' WHERE "certification_course"."certification_id" IN ({ids})'
    ' ORDER BY "certification_course"."certification_id" ASC,'
    '"certification_course"."position" ASC,"certification_course"."id" ASC'
)


async def course_links(certification_ids: list[int]) -> list[CourseLinkRow]:
    """The course links of these certifications with their courses, ordered by certification,
    position and id. One statement."""
    if not certification_ids:
        return []
    sql = Sql()
    text = _LINKS.format(ids=sql.ps(certification_ids))
    _, rows = await get_connection("default").execute_query(text, sql.params)
    zone = get_default_timezone()  # cached by Tortoise
    return [
        CourseLinkRow(
            r[0],
            r[1],
            r[2],
            bool(r[3]),
            r[4],
            # the foreign key is RESTRICT and NOT NULL: the outer join always finds the course
            CourseRow(
                r[5], r[6], r[7], r[8], stored_datetime(r[9], zone), stored_datetime(r[10], zone)
            ),
        )
        for r in rows
    ]


_PROGRESS = (
    'SELECT "id","learner_id","course_id","percent","status","started_at","completed_at",'
    '"attempt_started_at","updated_at" FROM "course_progress"'
    ' WHERE "learner_id" IN ({learners}) AND "course_id" IN ({courses})'
)


async def course_progress(learner_ids: list[int], course_ids: list[int]) -> list[ProgressRow]:
    """Each of these learners' progress on each of these courses, where there is any. One
    statement (none when either list is empty)."""
    if not learner_ids or not course_ids:
        return []
    sql = Sql()
    text = _PROGRESS.format(learners=sql.ps(learner_ids), courses=sql.ps(course_ids))
    _, rows = await get_connection("default").execute_query(text, sql.params)
    zone = get_default_timezone()  # cached by Tortoise
    return [
        ProgressRow(
            r[0],
            r[1],
            r[2],
            r[3],
            ProgressStatus(r[4]),
            stored_datetime(r[5], zone),
            stored_datetime(r[6], zone),
            stored_datetime(r[7], zone),
            stored_datetime(r[8], zone),
        )
        for r in rows
    ]


def progress_row(model: CourseProgress) -> ProgressRow:
    """The row of a progress model just written (its values are already Python's)."""
    return ProgressRow(
        model.id,
        model.learner_id,
        model.course_id,
        model.percent,
        ProgressStatus(model.status),
        model.started_at,
        model.completed_at,
        model.attempt_started_at,
        model.updated_at,
    )
