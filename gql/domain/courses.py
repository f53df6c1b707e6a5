"""Courses: the units learners complete; a course may belong to many certifications."""

from __future__ import annotations

from typing import Any

from tortoise.expressions import Q

from gql.domain.access import Actor, require_admin
from gql.domain.errors import InvalidInput, NotFound
from gql.domain.pages import DEFAULT_MAX_PAGE_SIZE, CourseSort, OrmKey, Page, check_search, orm_page
from gql.domain.unit import unit_of_work
from gql.store import reads
from gql.store.models import Course
from gql.store.records import COURSE_COLUMNS, CourseRecord, ProgressRecord, record_of

_COURSE_KEYS: dict[CourseSort, list[OrmKey]] = {
    CourseSort.NAME_ASC: [OrmKey("name", type="str"), OrmKey("id")],
    CourseSort.NAME_DESC: [OrmKey("name", True, "str"), OrmKey("id", True)],
    CourseSort.PUBLISHED_NEWEST: [OrmKey("published_at", True, "datetime"), OrmKey("id", True)],
    CourseSort.PUBLISHED_OLDEST: [OrmKey("published_at", False, "datetime"), OrmKey("id")],
}


def _validated(name: str, description: str | None, duration_minutes: int | None) -> dict[str, Any]:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidInput("name must not be empty", field=["input", "name"])
    if len(cleaned) > 300:
        raise InvalidInput("name must be at most 300 characters", field=["input", "name"])
    if duration_minutes is not None and not 0 < duration_minutes <= 100_000:
        raise InvalidInput(
            "durationMinutes must be between 1 and 100000", field=["input", "durationMinutes"]
        )
    return {"name": cleaned, "description": description or "", "duration_minutes": duration_minutes}


async def create_course(
    actor: Actor, *, name: str, description: str | None = None, duration_minutes: int | None = None
) -> CourseRecord:
    await require_admin(actor, "createCourse", "Course")
    values = _validated(name, description, duration_minutes)
    async with unit_of_work(actor) as unit:
        course = await Course.create(**values, published_at=unit.now, updated_at=unit.now)
        await unit.audit("createCourse", "Course", course.id, after={"name": values["name"]})
    return record_of(CourseRecord, course)


async def update_course(
    actor: Actor,
    course_id: int,
    *,
    name: str,
    description: str | None = None,
    duration_minutes: int | None = None,
) -> CourseRecord:
    await require_admin(actor, "updateCourse", "Course", course_id)
    values = _validated(name, description, duration_minutes)
    async with unit_of_work(actor) as unit:
        course = await Course.get_or_none(id=course_id)
        if course is None:
            raise NotFound("no such course", field=["id"])
        before = {
            "name": course.name,
            "description": course.description,
            "durationMinutes": course.duration_minutes,
        }
        course.update_from_dict({**values, "updated_at": unit.now})
        await course.save()
        await unit.audit(
            "updateCourse",
            "Course",
            course.id,
            before=before,
            after={
                "name": course.name,
                "description": course.description,
                "durationMinutes": course.duration_minutes,
            },
        )
    return record_of(CourseRecord, course)


async def get_course(actor: Actor, course_id: int) -> CourseRecord | None:
    return (await courses_by_ids(actor, [course_id])).get(course_id)


async def courses_by_ids(actor: Actor, ids: list[int]) -> dict[int, CourseRecord]:
    """Every course is visible to every signed-in user (courses have no state of their own)."""
    if not ids:
        return {}
    rows = await Course.filter(id__in=ids).values_list(*COURSE_COLUMNS)
    return {r[0]: CourseRecord(*r) for r in rows}


async def list_courses(
    actor: Actor,
    *,
    sort: CourseSort = CourseSort.NAME_ASC,
    search: str | None = None,
    first: int | None = 20,
    after: str | None = None,
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE,
) -> Page[CourseRecord]:
    search = check_search(search)
    queryset = Course.all()
    if search:
        queryset = queryset.filter(Q(name__icontains=search) | Q(description__icontains=search))
    return await orm_page(
        queryset,
        _COURSE_KEYS[CourseSort(sort)],
        record=CourseRecord,
        columns=COURSE_COLUMNS,
        kind=f"courses:{sort}",
        first=first,
        after=after,
        max_page_size=max_page_size,
    )


async def progress_for(learner_id: int, course_ids: list[int]) -> dict[int, ProgressRecord]:
    """A learner's progress rows on these courses (for viewerProgress), by course."""
    rows = await reads.course_progress([learner_id], course_ids)
    return {row.course_id: row for row in rows}
