"""Courses: the units learners complete; a course may belong to many certifications."""

from __future__ import annotations

from typing import Any

from tortoise.expressions import Q

from gql.domain.access import Actor, require_admin
from gql.domain.changes import UNCHANGED, Unchanged, or_current
from gql.domain.errors import InvalidInput, NotAllowed, NotFound, t
from gql.domain.external_ids import (
    check_free,
    clean_external_id,
    conflicts_named,
    external_id_change,
    external_id_key,
)
from gql.domain.pages import (
    FIRST_PAGE,
    CourseSort,
    OrmKey,
    Page,
    PageRequest,
    check_search,
    orm_page,
)
from gql.domain.unit import unit_of_work
from gql.store import reads
from gql.store.models import CertificationCourse, Course, CourseProgress
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
        raise InvalidInput(t("name must not be empty"), field=["input", "name"])
    if len(cleaned) > 300:
        raise InvalidInput(t("name must be at most 300 characters"), field=["input", "name"])
    if duration_minutes is not None and not 0 < duration_minutes <= 100_000:
        raise InvalidInput(
            t("durationMinutes must be between 1 and 100000"), field=["input", "durationMinutes"]
        )
    return {"name": cleaned, "description": description or "", "duration_minutes": duration_minutes}


async def create_course(
    actor: Actor,
    *,
    name: str,
    description: str | None = None,
    duration_minutes: int | None = None,
    external_id: str | None = None,
) -> CourseRecord:
    """A new course; an externalId another course holds is CONFLICT naming that course."""
    await require_admin(actor, "createCourse", "Course")
    values = _validated(name, description, duration_minutes)
    external_id = clean_external_id(external_id, ["input", "externalId"])
    keys = external_id_key("Course", external_id, ["input", "externalId"])
    async with conflicts_named(keys), unit_of_work(actor) as unit:
        await check_free(keys)
        course = await Course.create(
            **values, published_at=unit.now, updated_at=unit.now, external_id=external_id
        )
        after = {"name": values["name"]}
        if external_id is not None:
            after["externalId"] = external_id
        await unit.audit("createCourse", "Course", course.id, after=after)
    return record_of(CourseRecord, course)


def _course_snapshot(course: Course) -> dict[str, Any]:
    return {
        "name": course.name,
        "description": course.description,
        "durationMinutes": course.duration_minutes,
    }


async def update_course(
    actor: Actor,
    course_id: int,
    *,
    name: str | Unchanged | None = UNCHANGED,
    description: str | Unchanged | None = UNCHANGED,
    duration_minutes: int | Unchanged | None = UNCHANGED,
    external_id: str | Unchanged | None = UNCHANGED,
) -> CourseRecord:
    """Change only the fields named (docs/domain.md, "Partial updates"): None clears the
    description, the duration and the externalId; the name cannot be cleared. An update that
    changes nothing writes nothing (no audit row). An externalId another course has is
    CONFLICT naming it (gql.domain.external_ids)."""
    await require_admin(actor, "updateCourse", "Course", course_id)
    if name is None:
        raise InvalidInput(t("name cannot be cleared"), field=["input", "name"])
    keys = []
    if not isinstance(external_id, Unchanged):
        external_id = clean_external_id(external_id, ["input", "externalId"])
        keys = external_id_key("Course", external_id, ["input", "externalId"], own_id=course_id)
    async with conflicts_named(keys), unit_of_work(actor) as unit:
        course = await Course.get_or_none(id=course_id)
        if course is None:
            raise NotFound(t("no such course"), field=["id"])
        values = _validated(
            or_current(name, course.name),
            or_current(description, course.description),
            or_current(duration_minutes, course.duration_minutes),
        )
        before = _course_snapshot(course)
        moved = None
        if not isinstance(external_id, Unchanged):
            moved = await external_id_change(
                "Course", course.id, course.external_id, external_id, ["input", "externalId"]
            )
        if moved is None and all(getattr(course, key) == value for key, value in values.items()):
            return record_of(CourseRecord, course)
        course.update_from_dict({**values, "updated_at": unit.now})
        after = _course_snapshot(course)
        if moved is not None:
            course.external_id = moved[1]
            before["externalId"], after["externalId"] = moved
        await course.save()
        await unit.audit("updateCourse", "Course", course.id, before=before, after=after)
    return record_of(CourseRecord, course)


async def retire_course(actor: Actor, course_id: int) -> CourseRecord:
    """Retire a course: it takes no new certification links; certifications that have it keep
    it, and progress on it still records. Retiring a retired course changes nothing."""
    await require_admin(actor, "retireCourse", "Course", course_id)
    async with unit_of_work(actor) as unit:
        course = await Course.get_or_none(id=course_id)
        if course is None:
            raise NotFound(t("no such course"), field=["id"])
        if course.retired_at is None:
            course.retired_at, course.updated_at = unit.now, unit.now
            await course.save(update_fields=["retired_at", "updated_at"])
            await unit.audit(
                "retireCourse",
                "Course",
                course.id,
                before={"retiredAt": None},
                after={"retiredAt": unit.now.isoformat()},
            )
    return record_of(CourseRecord, course)


async def delete_course(actor: Actor, course_id: int) -> int:
    """Delete a course nothing refers to: NOT_ALLOWED while a certification links it or a
    learner has progress on it (retire it instead). Returns its id."""
    await require_admin(actor, "deleteCourse", "Course", course_id)
    async with unit_of_work(actor) as unit:
        # locked (PostgreSQL): a link being written waits, or is seen by the checks below
        course = await Course.filter(id=course_id).select_for_update().first()
        if course is None:
            raise NotFound(t("no such course"), field=["id"])
        linked = await CertificationCourse.filter(course_id=course_id).count()
        if linked:
            raise NotAllowed(
                t(
                    "{name!r} is a course of {linked} certification(s): remove "
                    "it from them (setCertificationCourses) first, or retire it "
                    "(retireCourse)",
                    name=course.name,
                    linked=linked,
                ),
                field=["id"],
            )
        learners = await CourseProgress.filter(course_id=course_id).count()
        if learners:
            raise NotAllowed(
                t(
                    "{learners} learner(s) have progress on {name!r}, which is "
                    "kept as history: retire the course (retireCourse) instead",
                    learners=learners,
                    name=course.name,
                ),
                field=["id"],
            )
        before = {**_course_snapshot(course), "externalId": course.external_id}
        await Course.filter(id=course_id).delete()
        await unit.audit("deleteCourse", "Course", course_id, before=before)
    return course_id


async def get_course(actor: Actor, course_id: int) -> CourseRecord | None:
    return (await courses_by_ids(actor, [course_id])).get(course_id)


async def courses_by_ids(actor: Actor, ids: list[int]) -> dict[int, CourseRecord]:
    """Every course is visible to every signed-in user (a retired one too, by its ID)."""
    if not ids:
        return {}
    rows = await Course.filter(id__in=ids).values_list(*COURSE_COLUMNS)
    return {r[0]: CourseRecord(*r) for r in rows}


async def list_courses(
    actor: Actor,
    *,
    sort: CourseSort = CourseSort.NAME_ASC,
    search: str | None = None,
    include_retired: bool = False,
    paging: PageRequest = FIRST_PAGE,
) -> Page[CourseRecord]:
    """The courses; retired ones only with `include_retired`."""
    search = check_search(search)
    queryset = Course.all() if include_retired else Course.filter(retired_at=None)
    if search:
        queryset = queryset.filter(Q(name__icontains=search) | Q(description__icontains=search))
    return await orm_page(
        queryset,
        _COURSE_KEYS[CourseSort(sort)],
        record=CourseRecord,
        columns=COURSE_COLUMNS,
        kind=f"courses:{sort}",
        paging=paging,
        # without a search, the queryset is one of two queries: its page is prepared
        shape=None if search else ("courses", include_retired),
    )


async def progress_for(learner_id: int, course_ids: list[int]) -> dict[int, ProgressRecord]:
    """A learner's progress rows on these courses (for viewerProgress), by course."""
    rows = await reads.course_progress([learner_id], course_ids)
    return {row.course_id: row for row in rows}
