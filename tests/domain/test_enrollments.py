"""Enrollments: assignment, self-enrolment (start), due dates, overdue and the player queue."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gql import clock
from gql.domain import enrollments
from gql.domain.errors import Forbidden, InvalidInput, NotAllowed, NotFound
from gql.domain.status import EnrollmentStatus
from gql.store.models import Enrollment, EnrollmentOrigin, Role
from tests.conftest import EventLog

from .factories import Factory


async def test_admin_assigns_with_a_due_date(make: Factory, frozen_now: datetime) -> None:
    admin = await make.admin()
    cert = await make.certification(await make.course())
    alice, bob = await make.learner(), await make.learner()
    due = frozen_now + timedelta(days=14)

    rows = await enrollments.assign_certification(admin, cert.id, [alice.user_id, bob.user_id], due)

    assert sorted(r.learner_id for r in rows) == sorted([alice.user_id, bob.user_id])  # type: ignore[attr-defined]
    for row in await Enrollment.filter(certification_id=cert.id):
        assert row.origin == EnrollmentOrigin.ASSIGNED
        assert row.assigned_by_id == admin.user_id  # type: ignore[attr-defined]
        assert row.due_at == due
        assert row.enrolled_at == frozen_now
        assert row.started_at is None
    view = await make.view(rows[0])
    assert view.status == EnrollmentStatus.ENROLLED
    assert not view.overdue


async def test_only_admins_assign_and_nothing_is_written(make: Factory) -> None:
    cert = await make.certification(await make.course())
    manager = await make.user(Role.MANAGER)
    report = await make.learner(manager=manager)

    for actor in (report, manager):
        with pytest.raises(Forbidden):
            await enrollments.assign_certification(actor, cert.id, [report.user_id], None)

    assert await Enrollment.all().count() == 0


async def test_assigning_a_draft_or_retired_certification_is_not_allowed(make: Factory) -> None:
    from gql.domain.certifications import retire_certification

    admin = await make.admin()
    learner = await make.learner()
    draft = await make.certification(await make.course(), publish=False)
    retired = await make.certification(await make.course())
    await retire_certification(admin, retired.id)

    for cert in (draft, retired):
        with pytest.raises(NotAllowed):
            await enrollments.assign_certification(admin, cert.id, [learner.user_id], None)

    assert await Enrollment.all().count() == 0


async def test_assigning_to_an_unknown_learner_writes_nothing(
    make: Factory, events: EventLog
) -> None:
    admin = await make.admin()
    cert = await make.certification(await make.course())
    learner = await make.learner()

    with pytest.raises((NotFound, InvalidInput)):
        await enrollments.assign_certification(admin, cert.id, [learner.user_id, 888888], None)

    assert await Enrollment.all().count() == 0
    assert await events.named("enrolled") == []


async def test_reassigning_updates_the_due_date_instead_of_duplicating(
    make: Factory, frozen_now: datetime
) -> None:
    admin = await make.admin()
    cert = await make.certification(await make.course())
    learner = await make.learner()
    first = await make.assign(cert, learner, frozen_now + timedelta(days=7))

    clock.advance(timedelta(days=1))
    later_due = frozen_now + timedelta(days=30)
    again = await enrollments.assign_certification(admin, cert.id, [learner.user_id], later_due)

    rows = await Enrollment.filter(certification_id=cert.id)
    assert len(rows) == 1
    assert again[0].id == first.id
    assert rows[0].due_at == later_due
    assert rows[0].enrolled_at == frozen_now


async def test_assigning_a_self_enrolled_learner_keeps_one_enrollment(
    make: Factory, frozen_now: datetime
) -> None:
    admin = await make.admin()
    cert = await make.certification(await make.course())
    learner = await make.learner()
    started = await enrollments.start_certification(learner, cert.id)
    due = frozen_now + timedelta(days=5)

    await enrollments.assign_certification(admin, cert.id, [learner.user_id], due)

    rows = await Enrollment.filter(certification_id=cert.id)
    assert [r.id for r in rows] == [started.id]
    assert rows[0].due_at == due
    assert rows[0].started_at == frozen_now


async def test_due_date_is_enrolment_plus_days_to_complete(
    make: Factory, frozen_now: datetime
) -> None:
    cert = await make.certification(await make.course(), days_to_complete=10)
    assigned_learner, self_learner = await make.learner(), await make.learner()

    assigned = await make.assign(cert, assigned_learner)
    clock.advance(timedelta(hours=5))
    started = await enrollments.start_certification(self_learner, cert.id)

    assert (await Enrollment.get(id=assigned.id)).due_at == frozen_now + timedelta(days=10)
    assert (await Enrollment.get(id=started.id)).due_at == frozen_now + timedelta(days=10, hours=5)


async def test_an_admins_due_date_wins_over_days_to_complete(
    make: Factory, frozen_now: datetime
) -> None:
    cert = await make.certification(await make.course(), days_to_complete=10)
    learner = await make.learner()
    due = frozen_now + timedelta(days=3)

    enrollment = await make.assign(cert, learner, due)

    assert (await Enrollment.get(id=enrollment.id)).due_at == due


async def test_no_deadline_means_no_due_date(make: Factory) -> None:
    cert = await make.certification(await make.course())
    enrollment = await enrollments.start_certification(await make.learner(), cert.id)

    row = await Enrollment.get(id=enrollment.id)
    assert row.due_at is None
    assert not (await make.view(row)).overdue


async def test_start_self_enrols_once_and_sets_started_at_once(
    make: Factory, frozen_now: datetime, events: EventLog
) -> None:
    cert = await make.certification(await make.course())
    learner = await make.learner()

    first = await enrollments.start_certification(learner, cert.id)
    clock.advance(timedelta(days=2))
    second = await enrollments.start_certification(learner, cert.id)

    assert first.id == second.id
    rows = await Enrollment.filter(learner_id=learner.user_id)
    assert len(rows) == 1
    assert rows[0].origin == EnrollmentOrigin.SELF
    assert rows[0].assigned_by_id is None  # type: ignore[attr-defined]
    assert rows[0].enrolled_at == rows[0].started_at == frozen_now
    assert (await make.view(rows[0])).status == EnrollmentStatus.STARTED
    assert len(await events.named("enrolled")) == 1
    assert len(await events.named("started")) == 1


async def test_starting_an_assigned_enrollment_keeps_its_origin(
    make: Factory, frozen_now: datetime
) -> None:
    cert = await make.certification(await make.course())
    learner = await make.learner()
    assigned = await make.assign(cert, learner, frozen_now + timedelta(days=9))

    clock.advance(timedelta(hours=1))
    started = await enrollments.start_certification(learner, cert.id)

    row = await Enrollment.get(id=assigned.id)
    assert started.id == assigned.id
    assert row.origin == EnrollmentOrigin.ASSIGNED
    assert row.started_at == frozen_now + timedelta(hours=1)
    assert row.due_at == frozen_now + timedelta(days=9)


async def test_learners_start_only_published_certifications(make: Factory) -> None:
    learner = await make.learner()
    draft = await make.certification(await make.course(), publish=False)

    with pytest.raises((NotFound, NotAllowed)):
        await enrollments.start_certification(learner, draft.id)
    with pytest.raises(NotFound):
        await enrollments.start_certification(learner, 123456)

    assert await Enrollment.all().count() == 0


async def test_overdue_is_strictly_past_the_due_date_and_not_completed(
    make: Factory, frozen_now: datetime
) -> None:
    course = await make.course()
    cert = await make.certification(course, days_to_complete=10)
    learner = await make.learner()
    enrollment = await enrollments.start_certification(learner, cert.id)

    clock.advance(timedelta(days=10))
    assert not (await make.view(enrollment)).overdue  # exactly at the due date: not yet past it

    clock.advance(timedelta(seconds=1))
    view = await make.view(enrollment)
    assert view.overdue
    assert view.status == EnrollmentStatus.STARTED

    await make.complete(learner, course)
    view = await make.view(enrollment)
    assert view.status == EnrollmentStatus.COMPLETED
    assert not view.overdue


async def test_an_assigned_due_date_in_the_past_is_overdue_at_once(
    make: Factory, frozen_now: datetime
) -> None:
    cert = await make.certification(await make.course())
    learner = await make.learner()
    enrollment = await make.assign(cert, learner, frozen_now - timedelta(days=1))

    view = await make.view(enrollment)
    assert view.overdue
    assert view.status == EnrollmentStatus.ENROLLED


async def test_start_returns_the_player_queue(make: Factory, frozen_now: datetime) -> None:
    c1, c2, c3, c4, c5, c6 = [await make.course(f"C{i}") for i in range(1, 7)]
    links = ((c1, True), (c2, False), (c3, True), (c4, True), (c5, False), (c6, True))
    every_course = await make.certification(*links, policy="all-required")
    mandatory_only = await make.certification(*links)  # mandatory-subset
    learner = await make.learner()
    await make.progress(learner, c3, 20)
    clock.advance(timedelta(minutes=5))
    await make.progress(learner, c5, 10)  # optional, but the most recently active
    clock.advance(timedelta(minutes=5))
    await make.complete(learner, c6)  # completed: not in the queue at all
    clock.advance(timedelta(minutes=5))

    enrollment = await enrollments.start_certification(learner, every_course.id)
    view = await make.view(enrollment)

    # what the policy still requires, in player order: started-not-completed by recent
    # activity, then not started in certification order, mandatory before optional
    assert [c.course.id for c in view.pending_courses] == [c5.id, c3.id, c1.id, c4.id, c2.id]
    assert [c.course.id for c in view.courses] == [c1.id, c2.id, c3.id, c4.id, c5.id, c6.id]
    assert [c.mandatory for c in view.pending_courses] == [False, True, True, True, False]
    # the optional courses are not pending where the policy does not require them
    other = await enrollments.start_certification(learner, mandatory_only.id)
    assert [c.course.id for c in (await make.view(other)).pending_courses] == [
        c3.id,
        c1.id,
        c4.id,
    ]

    clock.advance(timedelta(minutes=5))
    await make.progress(learner, c3, 40)  # c3 becomes the latest pending course
    view = await make.view(enrollment)
    assert [c.course.id for c in view.pending_courses] == [c3.id, c5.id, c1.id, c4.id, c2.id]


async def test_learners_see_only_their_own_enrollments(make: Factory) -> None:
    cert = await make.certification(await make.course())
    manager = await make.user(Role.MANAGER)
    report, stranger = await make.learner(manager=manager), await make.learner()
    enrollment = await enrollments.start_certification(report, cert.id)

    own = await enrollments.get_enrollment(report, enrollment.id)
    assert own is not None and own.id == enrollment.id
    assert await enrollments.get_enrollment(stranger, enrollment.id) is None
    assert await enrollments.get_enrollment(manager, enrollment.id) is not None
    assert await enrollments.get_enrollment(await make.admin(), enrollment.id) is not None
    assert await enrollments.enrollments_by_ids(stranger, [enrollment.id]) == {}

    mine = await enrollments.viewer_enrollments(report, [cert.id])
    assert mine[cert.id].id == enrollment.id
    assert await enrollments.viewer_enrollments(stranger, [cert.id]) == {}


async def test_a_learner_named_twice_is_enrolled_once(make: Factory) -> None:
    cert = await make.certification(await make.course())
    learner = await make.learner()

    await enrollments.assign_certification(
        await make.admin(), cert.id, [learner.user_id, learner.user_id], None
    )

    assert await Enrollment.filter(learner_id=learner.user_id).count() == 1


async def test_assigning_nobody_is_invalid(make: Factory) -> None:
    cert = await make.certification(await make.course())
    with pytest.raises(InvalidInput):
        await enrollments.assign_certification(await make.admin(), cert.id, [], None)
