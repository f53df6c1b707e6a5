"""Pages both ways: every list read backwards (`last`/`before`) page by page from its end is
exactly the list read forwards, with the same totals, on data full of ties and NULLs; cursors
from either direction work in the other; a page goes one way or is refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from gql import clock
from gql.domain import (
    audit,
    certifications,
    courses,
    enrollment_search,
    enrollments,
    evidence,
    teams,
    tokens,
    users,
    webhooks,
)
from gql.domain.access import Actor
from gql.domain.errors import InvalidInput
from gql.domain.pages import CertificationSort, CourseSort, Page, PageRequest
from gql.domain.webhooks import AddressPolicy
from gql.store import reads
from gql.store.models import CertificationKind, EvidenceStatus, Role

from .factories import Factory
from .test_listing import World, build_world

Fetch = Callable[[PageRequest], Awaitable[Page[Any]]]
EXTERNAL = CertificationKind.EXTERNAL

SIZES = (1, 4)


async def forward(fetch: Fetch, size: int) -> list[int]:
    """The list read with `first: size`, page after page."""
    seen: list[int] = []
    after: str | None = None
    total: int | None = None
    for _ in range(200):
        page = await fetch(PageRequest(first=size, after=after))
        total = page.total_count if total is None else total
        assert page.total_count == total
        assert page.has_previous_page == (after is not None)
        assert len(page.items) == len(page.cursors) == min(size, total - len(seen))
        seen.extend(item.id for item in page.items)
        if not page.has_next_page:
            assert len(seen) == total
            return seen
        after = page.cursors[-1]
    raise AssertionError("the forward walk did not end")


async def backward(fetch: Fetch, size: int) -> list[int]:
    """The list read with `last: size` from its end, page before page, in the list's order."""
    seen: list[int] = []
    before: str | None = None
    total: int | None = None
    for _ in range(200):
        page = await fetch(PageRequest(last=size, before=before))
        total = page.total_count if total is None else total
        assert page.total_count == total
        assert page.has_next_page == (before is not None)
        assert len(page.items) == len(page.cursors) == min(size, total - len(seen))
        seen[:0] = [item.id for item in page.items]
        if not page.has_previous_page:
            assert len(seen) == total
            return seen
        before = page.cursors[0]
    raise AssertionError("the backward walk did not end")


async def assert_both_ways(fetch: Fetch, *, at_least: int = 3) -> list[int]:
    """Forward and backward walks of every size give the one list; each cursor, from a page
    of either direction, splits the list at its row in the other direction."""
    whole = await fetch(PageRequest(first=100))
    expected = [item.id for item in whole.items]
    assert not whole.has_next_page and len(expected) == whole.total_count >= at_least
    for size in SIZES:
        assert await forward(fetch, size) == expected, size
        assert await backward(fetch, size) == expected, size
    end = await fetch(PageRequest(last=100))
    assert [item.id for item in end.items] == expected
    assert end.cursors == whole.cursors  # the same rows, the same cursors
    assert (end.has_next_page, end.has_previous_page) == (False, False)
    for i, cursor in enumerate(whole.cursors):
        before = await fetch(PageRequest(last=100, before=cursor))
        assert [item.id for item in before.items] == expected[:i]
        assert (before.has_next_page, before.has_previous_page) == (True, False)
        after = await fetch(PageRequest(first=100, after=end.cursors[i]))
        assert [item.id for item in after.items] == expected[i + 1 :]
    nothing = await fetch(PageRequest(last=0))
    assert (nothing.items, nothing.has_previous_page, nothing.has_next_page) == ([], True, False)
    return expected


async def add_ties(make: Factory, world: World) -> Actor:
    """Ties and NULLs the RELEVANCE world lacks: two certifications of one name published at
    one instant, assigned with one due date; drafts (no publishedAt) for the admin catalog;
    and another learner, so a batched read of two learners' lists has two partitions."""
    due = clock.now() + timedelta(days=30)
    for _ in range(2):
        twin = await make.certification(await make.course(), name="Twin")
        await make.assign(twin, world.learner, due)
    for _ in range(2):
        await make.certification(await make.course(), name="Draft", publish=False)
    other = await make.learner()
    for label in ("enrolled_tie_a", "enrolled_tie_b", "completed"):
        found = await reads.certifications([world.certification[label].id])
        (certification,) = found.values()
        await make.assign(certification, other)
    return other


@pytest.mark.parametrize("sort", list(CertificationSort))
async def test_every_certification_sort_reads_the_same_both_ways(
    make: Factory, frozen_now: Any, sort: CertificationSort
) -> None:
    world = await build_world(make)
    other = await add_ties(make, world)
    admin = await make.admin()
    learner_id, other_id = world.learner.user_id, other.user_id
    assert learner_id is not None and other_id is not None

    async def mine(paging: PageRequest) -> Page[Any]:
        return await enrollments.list_learner_enrollments(
            world.learner, learner_id, sort=sort, paging=paging
        )

    def batched(who: int) -> Fetch:
        async def fetch(paging: PageRequest) -> Page[Any]:
            pages = await enrollments.list_learners_enrollments(
                admin, [learner_id, other_id], sort=sort, paging=paging
            )
            return pages[who]

        return fetch

    def catalog(actor: Actor) -> Fetch:
        async def fetch(paging: PageRequest) -> Page[Any]:
            return await certifications.list_certifications(actor, sort=sort, paging=paging)

        return fetch

    listed = await assert_both_ways(mine)
    assert await assert_both_ways(batched(learner_id)) == listed
    await assert_both_ways(batched(other_id))
    await assert_both_ways(catalog(world.learner))
    everything = await assert_both_ways(catalog(admin))
    assert len(everything) == len(world.certification) + 4  # the twins and the drafts


@pytest.mark.parametrize("sort", list(CourseSort))
async def test_every_course_sort_reads_the_same_both_ways(
    make: Factory, frozen_now: Any, sort: CourseSort
) -> None:
    learner = await make.learner()
    for name in ("b", "a", "b", "c", "a"):  # same names, and published at one instant
        await make.course(name)
    clock.advance(timedelta(minutes=1))
    await make.course("a")

    async def fetch(paging: PageRequest) -> Page[Any]:
        return await courses.list_courses(learner, sort=sort, paging=paging)

    await assert_both_ways(fetch)


async def test_people_lists_read_the_same_both_ways(make: Factory, frozen_now: Any) -> None:
    admin = await make.admin()
    managers = [await make.user(Role.MANAGER, name="Boss") for _ in range(2)]
    for manager in managers:
        for name in ("Sam", "Alex", "Sam", "Kim"):
            await make.user(name=name, manager=manager)

    async def people(paging: PageRequest) -> Page[Any]:
        return await users.list_users(admin, paging=paging)

    await assert_both_ways(people)
    for manager in managers:
        assert manager.user_id is not None
        manager_id = manager.user_id

        async def reports(paging: PageRequest, manager_id: int = manager_id) -> Page[Any]:
            ids = [m.user_id for m in managers if m.user_id is not None]
            return (await teams.list_reports(admin, ids, paging=paging))[manager_id]

        assert len(await assert_both_ways(reports)) == 4


async def test_admin_lists_read_the_same_both_ways(make: Factory, frozen_now: Any) -> None:
    admin = await make.admin()
    manager = await make.user(Role.MANAGER)
    certification = await make.certification(await make.course(), kind=EXTERNAL)
    for _ in range(5):  # submitted at one instant: ordered by id
        learner = await make.learner(manager)
        await make.evidence(await make.assign(certification, learner), EvidenceStatus.PENDING)
    assert admin.user_id is not None
    for i in range(4):
        await tokens.create_api_token(admin, name=f"script {i}")
        await webhooks.create_webhook(
            admin,
            url=f"http://127.0.0.1:9/hook/{i}",
            events=None,
            description=None,
            policy=AddressPolicy(allow_private=True),
        )
    admin_id = admin.user_id

    async def queue(paging: PageRequest) -> Page[Any]:
        return await evidence.list_review_queue(manager, paging=paging)

    async def log(paging: PageRequest) -> Page[Any]:
        return await audit.list_audit_events(admin, paging=paging)

    async def hooks(paging: PageRequest) -> Page[Any]:
        return await webhooks.list_webhooks(admin, paging=paging)

    async def own_tokens(paging: PageRequest) -> Page[Any]:
        return await tokens.list_api_tokens(admin, admin_id, paging=paging)

    async def search(paging: PageRequest) -> Page[Any]:
        return await enrollment_search.search_enrollments(admin, paging=paging)

    for fetch in (queue, log, hooks, own_tokens, search):
        await assert_both_ways(fetch)


@pytest.mark.parametrize(
    ("paging", "field"),
    [
        (PageRequest(first=2, last=2), "last"),
        (PageRequest(after="x", before="y"), "before"),
        (PageRequest(first=2, before="y"), "before"),
        (PageRequest(last=2, after="x"), "last"),
        (PageRequest(last=101), "last"),
        (PageRequest(last=-1), "last"),
        (PageRequest(first=101), "first"),
        (PageRequest(before="not a cursor"), "before"),
        (PageRequest(last=3, before="not a cursor"), "before"),
        (PageRequest(after="not a cursor"), "after"),
    ],
)
async def test_a_page_goes_one_way_and_within_bounds(
    make: Factory, paging: PageRequest, field: str
) -> None:
    admin = await make.admin()
    with pytest.raises(InvalidInput) as refused:
        await users.list_users(admin, paging=paging)
    assert refused.value.field == (field,)


async def test_the_configured_largest_page_bounds_last_too(make: Factory) -> None:
    admin = await make.admin()
    assert (await users.list_users(admin, paging=PageRequest(last=5, max_size=5))).items
    with pytest.raises(InvalidInput) as refused:
        await users.list_users(admin, paging=PageRequest(last=6, max_size=5))
    assert refused.value.field == ("last",)
    assert "between 0 and 5" in refused.value.message


async def test_before_alone_reads_the_default_page_backwards(make: Factory) -> None:
    admin = await make.admin()
    for i in range(25):
        await make.user(name=f"Person {i:02}")
    whole = await users.list_users(admin, paging=PageRequest(first=100))
    page = await users.list_users(admin, paging=PageRequest(before=whole.cursors[-1]))
    assert [u.id for u in page.items] == [u.id for u in whole.items[-21:-1]]
    assert (page.has_previous_page, page.has_next_page) == (True, True)


async def test_a_prepared_course_page_is_the_page_built_anew(
    make: Factory, frozen_now: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """list_courses without a search names its queryset's shape, so its pages run prepared
    (gql.domain.pages._page_rows): the same pages, both ways, as the query built anew each
    time; with and without retired courses are two shapes, and a search is never prepared."""
    from gql.domain import pages

    monkeypatch.setattr(pages, "_prepared_pages", {})
    learner, admin = await make.learner(), await make.admin()
    for name in ("b", "a", "b", "c", "a", "d"):
        await make.course(name)
    retired = await make.course("a")
    await courses.retire_course(admin, retired.id)

    for sort in (CourseSort.NAME_ASC, CourseSort.NAME_DESC):
        for include_retired in (False, True):

            async def prepared(
                paging: PageRequest, sort: CourseSort = sort, include: bool = include_retired
            ) -> Page[Any]:
                return await courses.list_courses(
                    learner, sort=sort, include_retired=include, paging=paging
                )

            async def anew(
                paging: PageRequest, sort: CourseSort = sort, include: bool = include_retired
            ) -> Page[Any]:
                kept = pages._prepared_pages
                monkeypatch.setattr(pages, "_prepared_pages", {})
                monkeypatch.setattr(pages, "MAX_PREPARED_PAGES", 0)  # nothing prepared
                try:
                    return await prepared(paging)
                finally:
                    monkeypatch.setattr(pages, "_prepared_pages", kept)
                    monkeypatch.setattr(pages, "MAX_PREPARED_PAGES", 512)

            listed = await assert_both_ways(prepared)
            assert listed == await assert_both_ways(anew)
            assert (retired.id in listed) is include_retired
    shapes = {key[0] for key in pages._prepared_pages}
    assert shapes == {("courses", False), ("courses", True)}
    found = await courses.list_courses(learner, search="b", paging=PageRequest(first=1))
    assert len(found.items) == 1
    assert {key[0] for key in pages._prepared_pages} == shapes
