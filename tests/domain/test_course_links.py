"""Course links kept by the process (gql.store.course_links): a second read of the same
certifications sends only their versions, and whoever changes the links (the domain, another
process's SQL, a rolled-back transaction) is seen by the next read, on both databases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from gql.domain import certifications, courses
from gql.domain.certifications import CourseLink
from gql.domain.records import CourseLinkRecord
from gql.store import course_links
from gql.store.course_links import KeptLinks, kept_links
from gql.store.models import CertificationCourse, Course, CourseLinksVersion
from tests.conftest import QueryCounter

from .factories import Factory


def _shown(found: dict[int, list[CourseLinkRecord]]) -> dict[int, list[tuple[object, ...]]]:
    return {
        cid: [
            (
                link.course_id,
                link.mandatory,
                link.position,
                link.course.name,
                link.course.retired_at,
            )
            for link in links
        ]
        for cid, links in found.items()
    }


async def _as_stored(ids: list[int]) -> dict[int, list[tuple[object, ...]]]:
    """What the tables hold now, through the ORM (nothing kept)."""
    stored: dict[int, list[tuple[object, ...]]] = {}
    for link in (
        await CertificationCourse.filter(certification_id__in=ids)
        .select_related("course")
        .order_by("certification_id", "position", "id")
    ):
        stored.setdefault(link.certification_id, []).append(
            (
                link.course_id,
                link.mandatory,
                link.position,
                link.course.name,
                link.course.retired_at,
            )
        )
    return stored


async def test_a_second_read_sends_only_the_versions_and_answers_the_same(
    make: Factory, sql_queries: QueryCounter
) -> None:
    a, b = await make.course("A"), await make.course("B")
    first = await make.certification(a, (b, False))
    second = await make.certification(b)
    bare = await make.certification(
        publish=False
    )  # no courses: absent from the answer, kept all the same
    ids = [second.id, bare.id, first.id]

    sql_queries.reset()
    read = await course_links.course_links(ids)
    assert sql_queries.count == 1 and "certification_course" in sql_queries.statements[0]
    assert _shown(read) == await _as_stored(ids) != {}
    assert set(read) == {first.id, second.id}
    assert len(kept_links) == 3

    sql_queries.reset()
    again = await course_links.course_links(ids)
    assert sql_queries.count == 1
    assert "course_links_version" in sql_queries.statements[0]
    assert "certification_course" not in sql_queries.statements[0]
    assert again == read
    # the caller's lists are its own: changing one changes nothing kept
    again[first.id].clear()
    assert await course_links.course_links(ids) == read


async def test_a_certification_not_kept_reads_the_links_of_all(
    make: Factory, sql_queries: QueryCounter
) -> None:
    a = await make.course()
    first, second = await make.certification(a), await make.certification(a)
    await course_links.course_links([first.id])
    sql_queries.reset()
    read = await course_links.course_links([first.id, second.id])
    assert sql_queries.count == 1 and "certification_course" in sql_queries.statements[0]
    assert _shown(read) == await _as_stored([first.id, second.id])


Change = Callable[[Factory, dict[str, int]], Awaitable[None]]


async def _set_courses(make: Factory, w: dict[str, int]) -> None:
    await certifications.set_certification_courses(
        await make.admin(),
        w["cert"],
        [CourseLink(w["c"], True), CourseLink(w["a"], False)],
    )


async def _rename_course(make: Factory, w: dict[str, int]) -> None:
    await courses.update_course(await make.admin(), w["a"], name="A, renamed")


async def _retire_course(make: Factory, w: dict[str, int]) -> None:
    await courses.retire_course(await make.admin(), w["b"])


async def _sql_insert_link(make: Factory, w: dict[str, int]) -> None:
    # as another process, an older release or an admin's SQL would: nothing of this one's
    await CertificationCourse.create(
        certification_id=w["cert"], course_id=w["c"], mandatory=True, position=9
    )


async def _sql_delete_link(make: Factory, w: dict[str, int]) -> None:
    await CertificationCourse.filter(certification_id=w["cert"], course_id=w["b"]).delete()


async def _sql_update_link(make: Factory, w: dict[str, int]) -> None:
    await CertificationCourse.filter(certification_id=w["cert"], course_id=w["b"]).update(
        mandatory=True
    )


async def _sql_move_link(make: Factory, w: dict[str, int]) -> None:
    # from one certification to another: both change
    await CertificationCourse.filter(certification_id=w["cert"], course_id=w["b"]).update(
        certification_id=w["other"]
    )


async def _sql_rename_course(make: Factory, w: dict[str, int]) -> None:
    await Course.filter(id=w["b"]).update(name="B, renamed")


CHANGES: dict[str, Change] = {
    "setCertificationCourses": _set_courses,
    "updateCourse": _rename_course,
    "retireCourse": _retire_course,
    "insert a link": _sql_insert_link,
    "delete a link": _sql_delete_link,
    "update a link": _sql_update_link,
    "move a link": _sql_move_link,
    "rename a course": _sql_rename_course,
}


@pytest.mark.parametrize("change", sorted(CHANGES))
async def test_whoever_changes_the_links_the_next_read_sees_it(make: Factory, change: str) -> None:
    a, b, c = await make.course("A"), await make.course("B"), await make.course("C")
    cert = await make.certification(a, (b, False))
    other = await make.certification(c)
    w = {"a": a.id, "b": b.id, "c": c.id, "cert": cert.id, "other": other.id}
    ids = [cert.id, other.id]
    before = await course_links.course_links(ids)
    assert _shown(before) == await _as_stored(ids)
    versions = dict(await CourseLinksVersion.all().values_list("certification_id", "version"))

    await CHANGES[change](make, w)

    assert dict(await CourseLinksVersion.all().values_list("certification_id", "version")) != (
        versions
    )
    after = await course_links.course_links(ids)
    assert _shown(after) == await _as_stored(ids) != _shown(before)


async def test_a_change_that_touches_no_carried_column_keeps_the_version(make: Factory) -> None:
    a = await make.course("A")
    cert = await make.certification(a)
    await course_links.course_links([cert.id])
    before = await CourseLinksVersion.get(certification_id=cert.id)
    await courses.update_course(await make.admin(), a.id, external_id="LMS-1")
    after = await CourseLinksVersion.get(certification_id=cert.id)
    assert after.version == before.version


async def test_links_read_in_a_transaction_that_rolls_back_are_not_answered_later(
    make: Factory,
) -> None:
    a, b = await make.course("A"), await make.course("B")
    cert = await make.certification(a)
    original = await course_links.course_links([cert.id])

    class Undone(Exception):
        pass

    with pytest.raises(Undone):
        async with in_transaction():
            await CertificationCourse.create(
                certification_id=cert.id, course_id=b.id, mandatory=True, position=5
            )
            inside = await course_links.course_links([cert.id])  # kept under its new version
            assert len(inside[cert.id]) == 2
            raise Undone

    assert await course_links.course_links([cert.id]) == original
    await certifications.set_certification_courses(
        await make.admin(), cert.id, [CourseLink(b.id, True)]
    )
    assert _shown(await course_links.course_links([cert.id])) == await _as_stored([cert.id])


async def test_without_versions_nothing_is_kept(make: Factory, sql_queries: QueryCounter) -> None:
    """A schema without the migration's triggers (or a row missing) keeps nothing: every read
    reads the links."""
    a = await make.course("A")
    cert = await make.certification(a)
    await CourseLinksVersion.filter(certification_id=cert.id).delete()
    for _ in range(2):
        sql_queries.reset()
        read = await course_links.course_links([cert.id])
        assert sql_queries.count == 1 and "certification_course" in sql_queries.statements[0]
        assert _shown(read) == await _as_stored([cert.id])
    assert len(kept_links) == 0


async def test_a_new_certification_has_a_version_and_each_change_a_new_one(
    make: Factory,
) -> None:
    a, b = await make.course("A"), await make.course("B")
    cert = await make.certification(publish=False)
    seen = [(await CourseLinksVersion.get(certification_id=cert.id)).version]
    for change in (
        lambda: CertificationCourse.create(
            certification_id=cert.id, course_id=a.id, mandatory=True, position=0
        ),
        lambda: CertificationCourse.create(
            certification_id=cert.id, course_id=b.id, mandatory=False, position=1
        ),
        lambda: Course.filter(id=a.id).update(description="new"),
        lambda: CertificationCourse.filter(certification_id=cert.id).delete(),
    ):
        await change()
        seen.append((await CourseLinksVersion.get(certification_id=cert.id)).version)
    assert len(set(seen)) == len(seen)


async def test_deleting_a_certification_and_its_links_is_no_error(make: Factory) -> None:
    """Its links go with it (ON DELETE CASCADE), and their trigger writes the version of a
    certification that is going: the table has no foreign key to refuse that."""
    a = await make.course("A")
    cert = await make.certification(a)
    await course_links.course_links([cert.id])
    await get_connection("default").execute_script(
        f"DELETE FROM certification_course WHERE certification_id = {cert.id};"
        f" DELETE FROM certification WHERE id = {cert.id}"
    )
    assert await course_links.course_links([cert.id]) == {}


def test_the_kept_are_bounded_the_least_recently_read_first() -> None:
    kept = KeptLinks(max_kept=2)
    kept.keep(1, 10, ())
    kept.keep(2, 20, ())
    assert kept.get(1, 10) == ()  # 1 read last: 2 goes first
    kept.keep(3, 30, ())
    assert kept.holds_all([1, 3]) and not kept.holds_all([2])
    assert kept.get(1, 11) is None  # another version: not answered
    assert kept.get(3, None) is None
