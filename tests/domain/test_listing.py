"""A learner's certifications and the catalog: every sort, RELEVANCE, filters, keyset pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from gql import clock
from gql.domain import certifications, enrollments
from gql.domain.access import Actor
from gql.domain.pages import CertificationSort, Page, PageRequest
from gql.domain.status import EnrollmentStatus, describe_enrollments
from gql.store import reads
from gql.store.models import (
    Certification,
    CertificationKind,
    CertificationType,
    Enrollment,
    EvidenceStatus,
    Role,
)

from .factories import Factory, collect_ids

EXTERNAL = CertificationKind.EXTERNAL
RECURRING = CertificationType.RECURRING

# The learner's enrollments in the RELEVANCE order domain.md defines, and why:
RELEVANCE_ORDER = [
    "overdue",  # needs action; the only one of its bucket with a due date
    "rejected",  # needs action, no due date, assigned, certification published after expired's
    "expired",  # needs action, no due date, assigned
    "started_due",  # in progress, due in 20 days
    "started_assigned",  # in progress, no due date, assigned (published before started_self's)
    "started_self",  # in progress, no due date, self-enrolled
    "enrolled_due_5",  # not started, due in 5 days (published before enrolled_due_10's)
    "enrolled_due_10",
    "enrolled_newer",  # no due date: newest publishedAt first
    "enrolled_older",
    "enrolled_tie_a",  # published first, at the same instant as tie_b: the lower ID first
    "enrolled_tie_b",
    "pending_approval",  # waiting
    "completed",
]


@dataclass
class World:
    learner: Actor
    enrollment: dict[str, Enrollment] = field(default_factory=dict)
    certification: dict[str, Certification] = field(default_factory=dict)
    start: datetime = field(default_factory=clock.now)

    def ids(self, labels: list[str]) -> list[int]:
        return [self.enrollment[label].id for label in labels]

    def label_of(self, enrollment_id: int) -> str:
        return next(k for k, v in self.enrollment.items() if v.id == enrollment_id)


async def build_world(make: Factory) -> World:
    """One learner with an enrollment in every RELEVANCE bucket and every tie-break.

    Enrollments are created in a scrambled order, so their IDs decide only the one tie that
    is meant to be decided by ID.
    """
    t0 = clock.now()
    learner = await make.learner()
    world = World(learner=learner, start=t0)
    courses = {}
    publish_order = [
        ("expired", {"type": RECURRING, "validity_months": 12}),
        ("rejected", {"kind": EXTERNAL}),
        ("overdue", {}),
        ("started_due", {}),
        ("started_assigned", {}),
        ("started_self", {}),
        ("enrolled_tie_a", {}),
        ("enrolled_tie_b", {}),
        ("enrolled_older", {}),
        ("enrolled_newer", {}),
        ("enrolled_due_5", {}),
        ("enrolled_due_10", {}),
        ("pending_approval", {"kind": EXTERNAL}),
        ("completed", {}),
    ]
    for label, options in publish_order:
        courses[label] = await make.course(f"Course for {label}")
        world.certification[label] = await make.certification(courses[label], **options)  # type: ignore[arg-type]
        if label != "enrolled_tie_a":  # tie_a and tie_b are published at the same instant
            clock.advance(timedelta(minutes=1))

    async def assign(label: str, due_in_days: int | None = None) -> Enrollment:
        due = None if due_in_days is None else t0 + timedelta(days=due_in_days)
        world.enrollment[label] = await make.assign(world.certification[label], learner, due)
        return world.enrollment[label]

    await assign("completed")
    await make.complete(learner, courses["completed"])
    world.enrollment["started_self"] = await enrollments.start_certification(
        learner, world.certification["started_self"].id
    )
    await assign("enrolled_due_10", 10)
    await assign("expired")
    await make.complete(learner, courses["expired"], at=t0 - timedelta(days=400))
    await assign("enrolled_tie_a")
    await make.evidence(await assign("pending_approval"), EvidenceStatus.PENDING)
    await assign("started_assigned")
    await make.progress(learner, courses["started_assigned"], 10)
    await assign("enrolled_due_5", 5)
    await make.evidence(await assign("rejected"), EvidenceStatus.REJECTED, reviewed_at=clock.now())
    await assign("enrolled_tie_b")
    await assign("started_due", 20)
    await make.progress(learner, courses["started_due"], 10)
    await assign("enrolled_newer")
    await assign("overdue", 1)
    await make.progress(learner, courses["overdue"], 10)
    await assign("enrolled_older")

    clock.freeze(t0 + timedelta(days=2))  # the overdue one is now past its due date
    return world


async def listing(
    world: World,
    sort: CertificationSort,
    *,
    pending: bool = False,
    kind: CertificationKind | None = None,
    first: int = 100,
    after: str | None = None,
    viewer: Actor | None = None,
) -> Page[Enrollment]:
    assert world.learner.user_id is not None
    return await enrollments.list_learner_enrollments(
        viewer or world.learner,
        world.learner.user_id,
        sort=sort,
        pending=pending,
        kind=kind,
        paging=PageRequest(first=first, after=after),
    )


async def test_the_world_has_the_statuses_it_claims(make: Factory, frozen_now: datetime) -> None:
    world = await build_world(make)
    views = await describe_enrollments(
        await reads.enrollments(id__in=[e.id for e in world.enrollment.values()])
    )
    status = {label: views[e.id].status for label, e in world.enrollment.items()}
    overdue = {label for label, e in world.enrollment.items() if views[e.id].overdue}

    assert status["rejected"] == EnrollmentStatus.REJECTED
    assert status["expired"] == EnrollmentStatus.EXPIRED
    assert status["overdue"] == EnrollmentStatus.STARTED
    assert status["pending_approval"] == EnrollmentStatus.PENDING_APPROVAL
    assert status["completed"] == EnrollmentStatus.COMPLETED
    for label in ("started_due", "started_assigned", "started_self"):
        assert status[label] == EnrollmentStatus.STARTED, label
    for label in RELEVANCE_ORDER:
        if label.startswith("enrolled_"):
            assert status[label] == EnrollmentStatus.ENROLLED, label
    assert overdue == {"overdue"}
    assert (
        world.certification["enrolled_tie_a"].published_at
        == world.certification["enrolled_tie_b"].published_at
    )


async def test_relevance_order(make: Factory, frozen_now: datetime) -> None:
    world = await build_world(make)

    page = await listing(world, CertificationSort.RELEVANCE)

    assert [world.label_of(e.id) for e in page.items] == RELEVANCE_ORDER
    assert page.total_count == len(RELEVANCE_ORDER)
    assert not page.has_next_page


async def test_published_sorts(make: Factory, frozen_now: datetime) -> None:
    world = await build_world(make)

    for sort, newest_first in (
        (CertificationSort.PUBLISHED_NEWEST, True),
        (CertificationSort.PUBLISHED_OLDEST, False),
    ):
        page = await listing(world, sort)
        keys = [e.certification.published_at for e in page.items]
        assert len(keys) == len(RELEVANCE_ORDER)
        assert keys == sorted(keys, reverse=newest_first), sort
        tie = world.ids(["enrolled_tie_a", "enrolled_tie_b"])
        positions = sorted(i for i, e in enumerate(page.items) if e.id in tie)
        assert positions[1] - positions[0] == 1  # the tie sits together, ordered by ID
        assert [page.items[p].id for p in positions] == (sorted(tie, reverse=newest_first))


async def test_name_sorts(make: Factory, frozen_now: datetime) -> None:
    world = await build_world(make)

    asc = await listing(world, CertificationSort.NAME_ASC)
    desc = await listing(world, CertificationSort.NAME_DESC)

    names = [e.certification.name for e in asc.items]
    assert names == sorted(names) and len(names) == len(RELEVANCE_ORDER)
    assert [e.id for e in desc.items] == [e.id for e in reversed(asc.items)]


async def test_due_date_sort(make: Factory, frozen_now: datetime) -> None:
    world = await build_world(make)

    page = await listing(world, CertificationSort.DUE_DATE)

    with_due = ["overdue", "enrolled_due_5", "enrolled_due_10", "started_due"]
    labels = [world.label_of(e.id) for e in page.items]
    assert labels[: len(with_due)] == with_due
    assert all(e.due_at is None for e in page.items[len(with_due) :])  # no due date: last
    assert len(labels) == len(RELEVANCE_ORDER)


@pytest.mark.parametrize("sort", list(CertificationSort))
async def test_pages_of_two_reassemble_the_list(
    make: Factory, frozen_now: datetime, sort: CertificationSort
) -> None:
    world = await build_world(make)
    full = [e.id for e in (await listing(world, sort)).items]

    async def fetch(after: str | None) -> Page[Enrollment]:
        return await listing(world, sort, first=2, after=after)

    assert await collect_ids(fetch) == full

    async def fetch_pending(after: str | None) -> Page[Enrollment]:
        return await listing(world, sort, pending=True, first=2, after=after)

    full_pending = [e.id for e in (await listing(world, sort, pending=True)).items]
    assert await collect_ids(fetch_pending) == full_pending


async def test_page_three_cursors_survive_new_enrollments(
    make: Factory, frozen_now: datetime
) -> None:
    world = await build_world(make)
    page1 = await listing(world, CertificationSort.RELEVANCE, first=2)
    page2 = await listing(world, CertificationSort.RELEVANCE, first=2, after=page1.cursors[-1])
    page3 = await listing(world, CertificationSort.RELEVANCE, first=2, after=page2.cursors[-1])
    assert [world.label_of(e.id) for e in page3.items] == RELEVANCE_ORDER[4:6]

    # a new enrollment that sorts first of all (needs action, earliest due date)
    urgent = await make.certification(await make.course())
    await make.assign(urgent, world.learner, clock.now() - timedelta(hours=1))

    again = await listing(world, CertificationSort.RELEVANCE, first=2, after=page2.cursors[-1])
    assert [e.id for e in again.items] == [e.id for e in page3.items]
    page4 = await listing(world, CertificationSort.RELEVANCE, first=2, after=page3.cursors[-1])
    assert [world.label_of(e.id) for e in page4.items] == RELEVANCE_ORDER[6:8]
    assert page4.total_count == len(RELEVANCE_ORDER) + 1


async def test_pending_leaves_out_completed_ones(make: Factory, frozen_now: datetime) -> None:
    world = await build_world(make)

    page = await listing(world, CertificationSort.RELEVANCE, pending=True)

    assert [world.label_of(e.id) for e in page.items] == [
        label for label in RELEVANCE_ORDER if label != "completed"
    ]
    assert page.total_count == len(RELEVANCE_ORDER) - 1


async def test_pending_keeps_completed_ones_whose_window_is_open(
    make: Factory, frozen_now: datetime
) -> None:
    learner = await make.learner()
    recurring = {"type": RECURRING, "validity_months": 12}
    window_open = await make.certification(c1 := await make.course(), **recurring)  # type: ignore[arg-type]
    window_closed = await make.certification(c2 := await make.course(), **recurring)  # type: ignore[arg-type]
    perpetual = await make.certification(c3 := await make.course())
    open_e = await make.assign(window_open, learner)
    closed_e = await make.assign(window_closed, learner)
    perpetual_e = await make.assign(perpetual, learner)
    # expires in 15 days, so its 30-day window opened 15 days ago
    await make.complete(learner, c1, at=frozen_now - timedelta(days=350))
    await make.complete(learner, c2)
    await make.complete(learner, c3)
    assert learner.user_id is not None

    page = await enrollments.list_learner_enrollments(
        learner,
        learner.user_id,
        sort=CertificationSort.RELEVANCE,
        pending=True,
        kind=None,
        paging=PageRequest(first=20),
    )

    assert [e.id for e in page.items] == [open_e.id]
    views = await describe_enrollments(
        await reads.enrollments(id__in=[open_e.id, closed_e.id, perpetual_e.id])
    )
    assert {v.status for v in views.values()} == {EnrollmentStatus.COMPLETED}


async def test_kind_filter(make: Factory, frozen_now: datetime) -> None:
    world = await build_world(make)

    external = await listing(world, CertificationSort.RELEVANCE, kind=EXTERNAL)
    internal = await listing(world, CertificationSort.RELEVANCE, kind=CertificationKind.INTERNAL)

    assert [world.label_of(e.id) for e in external.items] == ["rejected", "pending_approval"]
    assert external.total_count == 2
    assert [world.label_of(e.id) for e in internal.items] == [
        label for label in RELEVANCE_ORDER if label not in ("rejected", "pending_approval")
    ]


async def test_who_may_list_a_learners_enrollments(make: Factory, frozen_now: datetime) -> None:
    manager = await make.user(Role.MANAGER)
    learner = await make.learner(manager=manager)
    stranger = await make.learner()
    other_manager = await make.user(Role.MANAGER)
    cert = await make.certification(await make.course())
    enrollment = await make.assign(cert, learner)
    assert learner.user_id is not None

    async def listed_by(actor: Actor) -> list[int]:
        page = await enrollments.list_learner_enrollments(
            actor,
            learner.user_id,  # type: ignore[arg-type]
            sort=CertificationSort.RELEVANCE,
            pending=False,
            kind=None,
            paging=PageRequest(first=20),
        )
        return [e.id for e in page.items]

    for allowed in (learner, manager, await make.admin()):
        assert await listed_by(allowed) == [enrollment.id]
    for refused in (stranger, other_manager):
        assert await listed_by(refused) == []


async def test_catalog_relevance_puts_the_viewers_enrollments_first(
    make: Factory, frozen_now: datetime
) -> None:
    world = await build_world(make)
    not_enrolled = []
    for _ in range(3):
        clock.advance(timedelta(minutes=1))
        not_enrolled.append(await make.certification(await make.course()))
    await make.certification(await make.course(), publish=False)  # a draft: never listed
    # someone else's enrollment does not make a certification relevant to this viewer
    await make.assign(not_enrolled[0], await make.learner())

    async def fetch(after: str | None) -> Page[Certification]:
        return await certifications.list_certifications(
            world.learner,
            sort=CertificationSort.RELEVANCE,
            kind=None,
            state=None,
            search=None,
            paging=PageRequest(first=2, after=after),
        )

    expected = [world.certification[label].id for label in RELEVANCE_ORDER] + [
        c.id for c in reversed(not_enrolled)
    ]
    assert await collect_ids(fetch) == expected
    assert (await fetch(None)).total_count == len(expected)


@pytest.mark.parametrize(
    "sort",
    [
        CertificationSort.PUBLISHED_NEWEST,
        CertificationSort.PUBLISHED_OLDEST,
        CertificationSort.NAME_ASC,
        CertificationSort.NAME_DESC,
    ],
)
async def test_catalog_sorts_reassemble_in_pages(
    make: Factory, frozen_now: datetime, sort: CertificationSort
) -> None:
    learner = await make.learner()
    made = []
    for _ in range(5):
        made.append(await make.certification(await make.course()))
        clock.advance(timedelta(minutes=1))

    async def fetch(after: str | None) -> Page[Certification]:
        return await certifications.list_certifications(
            learner,
            sort=sort,
            kind=None,
            state=None,
            search=None,
            paging=PageRequest(first=2, after=after),
        )

    expected = {
        CertificationSort.PUBLISHED_NEWEST: [c.id for c in reversed(made)],
        CertificationSort.PUBLISHED_OLDEST: [c.id for c in made],
        CertificationSort.NAME_ASC: [c.id for c in sorted(made, key=lambda c: c.name)],
        CertificationSort.NAME_DESC: [
            c.id for c in sorted(made, key=lambda c: c.name, reverse=True)
        ],
    }[sort]
    assert await collect_ids(fetch) == expected


async def test_pending_follows_a_changed_recertification_window(
    make: Factory, frozen_now: datetime
) -> None:
    course = await make.course()
    cert = await make.certification(course, type=RECURRING, validity_months=12)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await make.complete(learner, course)  # expires in 12 months; window of 30 days
    clock.advance(timedelta(days=365 - 45))  # 45 days before expiry: the window is closed
    assert learner.user_id is not None

    async def pending_ids() -> list[int]:
        page = await enrollments.list_learner_enrollments(
            learner,
            learner.user_id,  # type: ignore[arg-type]
            sort=CertificationSort.RELEVANCE,
            pending=True,
            kind=None,
            paging=PageRequest(first=20),
        )
        return [e.id for e in page.items]

    assert await pending_ids() == []

    await certifications.update_certification(
        await make.admin(),
        cert.id,
        certifications.CertificationData(
            name=cert.name,
            kind=cert.kind,
            type=cert.type,
            validity_months=12,
            recertification_window_days=60,
        ),
    )

    view = (await describe_enrollments(await reads.enrollments(id=enrollment.id)))[enrollment.id]
    assert view.cycle == 2  # the read model sees the window open...
    assert await pending_ids() == [enrollment.id]  # ...and so must the pending list
