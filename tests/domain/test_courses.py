"""Courses: admin-only writes, validation, and the four keyset-paginated sorts."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gql import clock
from gql.domain import courses
from gql.domain.errors import Forbidden, InvalidInput, NotFound
from gql.domain.pages import CourseSort, Page, PageRequest
from gql.domain.records import CourseRecord
from gql.store.models import Course

from .factories import Factory, collect_ids, field_of


async def test_admin_creates_and_updates_a_course(make: Factory, frozen_now: datetime) -> None:
    admin = await make.admin()

    course = await courses.create_course(
        admin, name="  Fire   safety ", description="Basics", duration_minutes=45
    )
    stored = await Course.get(id=course.id)
    assert (stored.name, stored.description, stored.duration_minutes) == (
        "Fire safety",
        "Basics",
        45,
    )
    assert stored.published_at == frozen_now

    clock.advance(timedelta(hours=1))
    updated = await courses.update_course(
        admin, course.id, name="Fire safety 2", duration_minutes=50
    )

    stored = await Course.get(id=course.id)
    assert (updated.name, stored.name, stored.duration_minutes) == ("Fire safety 2",) * 2 + (50,)
    assert stored.published_at == frozen_now  # an edit does not re-publish
    assert stored.updated_at == frozen_now + timedelta(hours=1)


async def test_learners_may_not_create_or_update_courses(make: Factory) -> None:
    learner = await make.learner()
    course = await make.course("Original")

    with pytest.raises(Forbidden):
        await courses.create_course(learner, name="Sneaky")
    with pytest.raises(Forbidden):
        await courses.update_course(learner, course.id, name="Renamed")

    assert await Course.all().count() == 1
    assert (await Course.get(id=course.id)).name == "Original"


@pytest.mark.parametrize(
    ("name", "duration", "field"),
    [("", None, "name"), ("   ", 10, "name"), ("Ok", -5, "duration_minutes")],
)
async def test_course_validation_names_the_field_and_writes_nothing(
    make: Factory, name: str, duration: int | None, field: str
) -> None:
    admin = await make.admin()
    course = await make.course("Kept")

    with pytest.raises(InvalidInput) as created:
        await courses.create_course(admin, name=name, duration_minutes=duration)
    assert field_of(created.value) == field

    with pytest.raises(InvalidInput) as updated:
        await courses.update_course(admin, course.id, name=name, duration_minutes=duration)
    assert field_of(updated.value) == field

    assert await Course.all().count() == 1
    stored = await Course.get(id=course.id)
    assert (stored.name, stored.duration_minutes) == ("Kept", None)


async def test_updating_an_unknown_course_is_not_found(make: Factory) -> None:
    with pytest.raises(NotFound):
        await courses.update_course(await make.admin(), 99999, name="x")


async def _catalog(make: Factory) -> list[int]:
    """Five courses published a minute apart; two share a name, so the ID breaks that tie."""
    made = []
    for name in ("Delta", "Alpha", "Charlie", "Bravo", "Bravo"):
        made.append((await make.course(name)).id)
        clock.advance(timedelta(minutes=1))
    return made


async def test_published_sorts(make: Factory, frozen_now: datetime) -> None:
    made = await _catalog(make)
    learner = await make.learner()

    oldest = await courses.list_courses(
        learner, sort=CourseSort.PUBLISHED_OLDEST, search=None, paging=PageRequest(first=20)
    )
    newest = await courses.list_courses(
        learner, sort=CourseSort.PUBLISHED_NEWEST, search=None, paging=PageRequest(first=20)
    )

    assert [c.id for c in oldest.items] == made
    assert [c.id for c in newest.items] == list(reversed(made))
    assert oldest.total_count == newest.total_count == 5
    assert not oldest.has_next_page


async def test_name_sorts_with_ties_broken_by_id(make: Factory, frozen_now: datetime) -> None:
    delta, alpha, charlie, bravo1, bravo2 = await _catalog(make)
    learner = await make.learner()

    asc = await courses.list_courses(
        learner, sort=CourseSort.NAME_ASC, search=None, paging=PageRequest(first=20)
    )
    desc = await courses.list_courses(
        learner, sort=CourseSort.NAME_DESC, search=None, paging=PageRequest(first=20)
    )

    assert [c.id for c in asc.items] == [alpha, bravo1, bravo2, charlie, delta]
    assert [c.id for c in desc.items] == [delta, charlie, bravo2, bravo1, alpha]


@pytest.mark.parametrize("sort", list(CourseSort))
async def test_pages_of_two_reassemble_the_full_list(
    make: Factory, frozen_now: datetime, sort: CourseSort
) -> None:
    await _catalog(make)
    learner = await make.learner()
    full = await courses.list_courses(learner, sort=sort, search=None, paging=PageRequest(first=20))

    async def fetch(after: str | None) -> Page[CourseRecord]:
        return await courses.list_courses(
            learner, sort=sort, search=None, paging=PageRequest(first=2, after=after)
        )

    assert await collect_ids(fetch) == [c.id for c in full.items]
    first_page = await fetch(None)
    assert len(first_page.items) == 2
    assert first_page.has_next_page and not first_page.has_previous_page
    assert first_page.total_count == 5


async def test_a_row_inserted_between_fetches_does_not_shift_the_next_page(
    make: Factory, frozen_now: datetime
) -> None:
    learner = await make.learner()
    for name in ("Alpha", "Charlie", "Echo", "Golf", "India"):
        await make.course(name)

    page1 = await courses.list_courses(
        learner, sort=CourseSort.NAME_ASC, search=None, paging=PageRequest(first=2)
    )
    assert [c.name for c in page1.items] == ["Alpha", "Charlie"]

    await make.course("Bravo")  # sorts before the cursor: an OFFSET page would repeat Charlie

    page2 = await courses.list_courses(
        learner,
        sort=CourseSort.NAME_ASC,
        search=None,
        paging=PageRequest(first=2, after=page1.cursors[-1]),
    )
    assert [c.name for c in page2.items] == ["Echo", "Golf"]

    await make.course("Foxtrot")  # sorts inside the next page: it is seen, nothing is skipped
    page3 = await courses.list_courses(
        learner,
        sort=CourseSort.NAME_ASC,
        search=None,
        paging=PageRequest(first=2, after=page2.cursors[-1]),
    )
    assert [c.name for c in page3.items] == ["India"]
    assert not page3.has_next_page


async def test_search_filters_by_name(make: Factory) -> None:
    learner = await make.learner()
    await make.course("Fire safety")
    await make.course("First aid")
    await make.course("Forklift")

    page = await courses.list_courses(
        learner, sort=CourseSort.NAME_ASC, search="fir", paging=PageRequest(first=20)
    )

    assert [c.name for c in page.items] == ["Fire safety", "First aid"]
    assert page.total_count == 2


@pytest.mark.parametrize("first", [-1, 101])
async def test_page_size_out_of_range_is_invalid(make: Factory, first: int) -> None:
    learner = await make.learner()
    with pytest.raises(InvalidInput) as raised:
        await courses.list_courses(
            learner, sort=CourseSort.NAME_ASC, search=None, paging=PageRequest(first=first)
        )
    assert field_of(raised.value) == "first"


@pytest.mark.parametrize("after", ["garbage", "eyJ4Ijoy", "W10"])
async def test_malformed_cursor_is_invalid(make: Factory, after: str) -> None:
    learner = await make.learner()
    await make.course("A")
    with pytest.raises(InvalidInput) as raised:
        await courses.list_courses(
            learner, sort=CourseSort.NAME_ASC, search=None, paging=PageRequest(first=2, after=after)
        )
    assert field_of(raised.value) == "after"


async def test_a_cursor_of_another_sort_is_invalid(make: Factory) -> None:
    learner = await make.learner()
    await make.course("A")
    await make.course("B")
    page = await courses.list_courses(
        learner, sort=CourseSort.NAME_ASC, search=None, paging=PageRequest(first=1)
    )

    with pytest.raises(InvalidInput):
        await courses.list_courses(
            learner,
            sort=CourseSort.PUBLISHED_NEWEST,
            search=None,
            paging=PageRequest(first=1, after=page.cursors[0]),
        )
