"""Course progress: bounds, never decreasing, completions, who may record, re-evaluation."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gql import clock
from gql.domain import enrollments
from gql.domain.errors import Forbidden, InvalidInput, NotFound
from gql.domain.status import EnrollmentStatus
from gql.store.models import AuditEvent, Award, CourseProgress, ProgressStatus, Role
from gql.vocabulary import encode_id
from tests.conftest import EventLog

from .factories import Factory, field_of


@pytest.mark.parametrize("percent", [-1, 101, 1000])
async def test_percent_outside_0_to_100_is_invalid(
    make: Factory, percent: int, events: EventLog
) -> None:
    course = await make.course()
    learner = await make.learner()

    with pytest.raises(InvalidInput) as raised:
        await make.progress(learner, course, percent)

    assert field_of(raised.value) == "percent"
    assert await CourseProgress.all().count() == 0
    assert await events.all() == []


@pytest.mark.parametrize("percent", [0, 100])
async def test_percent_bounds_are_accepted(make: Factory, percent: int) -> None:
    course = await make.course()
    learner = await make.learner()

    recorded = await make.progress(learner, course, percent)

    assert recorded.progress.percent == percent


async def test_progress_never_decreases(make: Factory, frozen_now: datetime) -> None:
    course = await make.course()
    learner = await make.learner()

    await make.progress(learner, course, 60)
    clock.advance(timedelta(minutes=1))
    late = await make.progress(learner, course, 40)  # a late, lower report

    row = await CourseProgress.get(learner_id=learner.user_id, course_id=course.id)
    assert row.percent == late.progress.percent == 60
    assert row.status == ProgressStatus.IN_PROGRESS
    assert row.started_at == frozen_now

    await make.progress(learner, course, 80)
    assert (await CourseProgress.get(id=row.id)).percent == 80


async def test_a_lower_report_after_completion_does_not_undo_it(
    make: Factory, frozen_now: datetime
) -> None:
    course = await make.course()
    cert = await make.certification(course)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await make.complete(learner, course)

    clock.advance(timedelta(minutes=1))
    await make.progress(learner, course, 30)

    row = await CourseProgress.get(learner_id=learner.user_id, course_id=course.id)
    assert (row.status, row.percent, row.completed_at) == (
        ProgressStatus.COMPLETED,
        100,
        frozen_now,
    )
    assert (await make.view(enrollment)).status == EnrollmentStatus.COMPLETED


async def test_completed_true_records_a_completion_now(make: Factory, frozen_now: datetime) -> None:
    course = await make.course()
    learner = await make.learner()
    await make.progress(learner, course, 30)
    clock.advance(timedelta(hours=2))

    recorded = await make.complete(learner, course)

    row = await CourseProgress.get(learner_id=learner.user_id, course_id=course.id)
    assert row.status == ProgressStatus.COMPLETED
    assert row.percent == 100
    assert row.completed_at == recorded.progress.completed_at == frozen_now + timedelta(hours=2)
    assert row.started_at == frozen_now


async def test_admins_back_date_completions(make: Factory, frozen_now: datetime) -> None:
    course = await make.course()
    learner = await make.learner()
    then = frozen_now - timedelta(days=200)

    await make.complete(learner, course, at=then)

    row = await CourseProgress.get(learner_id=learner.user_id, course_id=course.id)
    assert (row.status, row.completed_at) == (ProgressStatus.COMPLETED, then)


async def test_a_completion_in_the_future_is_refused(make: Factory, frozen_now: datetime) -> None:
    course = await make.course()
    learner = await make.learner()

    with pytest.raises(InvalidInput):
        await make.complete(learner, course, at=frozen_now + timedelta(days=1))

    assert await CourseProgress.all().count() == 0


async def test_learners_may_not_back_date(make: Factory, frozen_now: datetime) -> None:
    course = await make.course()
    learner = await make.learner()

    # contract.graphql: completedAt is for admins only; admin-only use cases raise Forbidden
    with pytest.raises(Forbidden):
        await enrollments.record_course_progress(
            learner,
            course_id=course.id,
            completed=True,
            completed_at=frozen_now - timedelta(days=3),
        )

    assert await CourseProgress.all().count() == 0
    [refusal] = await AuditEvent.filter(actor_id=learner.user_id)
    assert refusal.action.startswith("denied:")


@pytest.mark.parametrize("role", [Role.LEARNER, Role.MANAGER])
async def test_only_admins_record_progress_for_someone_else(make: Factory, role: Role) -> None:
    course = await make.course()
    actor = await make.user(role)
    other = await make.learner(manager=actor if role == Role.MANAGER else None)

    with pytest.raises(Forbidden):
        await enrollments.record_course_progress(
            actor, course_id=course.id, learner_id=other.user_id, percent=50
        )

    assert await CourseProgress.all().count() == 0


async def test_a_learner_may_name_themself(make: Factory) -> None:
    course = await make.course()
    learner = await make.learner()

    recorded = await enrollments.record_course_progress(
        learner, course_id=course.id, learner_id=learner.user_id, percent=10
    )

    assert recorded.progress.learner_id == learner.user_id  # type: ignore[attr-defined]


async def test_admin_records_progress_for_a_learner(make: Factory) -> None:
    course = await make.course()
    learner = await make.learner()

    await enrollments.record_course_progress(
        await make.admin(), course_id=course.id, learner_id=learner.user_id, percent=70
    )

    row = await CourseProgress.get(learner_id=learner.user_id, course_id=course.id)
    assert row.percent == 70


async def test_progress_on_an_unknown_course_is_not_found(make: Factory) -> None:
    learner = await make.learner()
    with pytest.raises(NotFound):
        await enrollments.record_course_progress(learner, course_id=55555, percent=10)
    assert await CourseProgress.all().count() == 0


async def test_recording_re_evaluates_every_enrollment_with_the_course(
    make: Factory, frozen_now: datetime
) -> None:
    shared, other = await make.course("Shared"), await make.course("Other")
    only_shared = await make.certification(shared)
    shared_and_other = await make.certification(shared, other)
    unrelated = await make.certification(other)
    learner, bystander = await make.learner(), await make.learner()
    e_only = await make.assign(only_shared, learner)
    e_both = await make.assign(shared_and_other, learner)
    e_unrelated = await make.assign(unrelated, learner)
    e_bystander = await make.assign(only_shared, bystander)

    recorded = await make.complete(learner, shared)

    assert sorted(e.id for e in recorded.enrollments) == sorted([e_only.id, e_both.id])
    assert (await make.view(e_only)).status == EnrollmentStatus.COMPLETED
    both = await make.view(e_both)
    assert (both.status, both.progress_percent) == (EnrollmentStatus.STARTED, 50)
    assert (await make.view(e_unrelated)).status == EnrollmentStatus.ENROLLED
    assert (await make.view(e_bystander)).status == EnrollmentStatus.ENROLLED
    # the award was written in the same call, not on a later read
    assert await Award.filter(enrollment_id=e_only.id).count() == 1
    assert await Award.filter(enrollment_id__in=[e_both.id, e_unrelated.id]).count() == 0


async def test_recording_without_enrollments_returns_none(make: Factory) -> None:
    course = await make.course()
    recorded = await make.progress(await make.learner(), course, 10)
    assert recorded.enrollments == []


async def test_a_course_completed_before_enrolling_counts(
    make: Factory, frozen_now: datetime
) -> None:
    a, b = await make.course("A"), await make.course("B")
    cert = await make.certification(a, b)
    learner = await make.learner()
    await make.complete(learner, a, at=frozen_now - timedelta(days=90))
    await make.complete(learner, b, at=frozen_now - timedelta(days=60))
    assert await Award.all().count() == 0

    clock.advance(timedelta(days=1))
    enrollment = await enrollments.start_certification(learner, cert.id)

    view = await make.view(enrollment)
    assert view.status == EnrollmentStatus.COMPLETED
    assert view.cycle == 1
    assert view.completed_at == frozen_now - timedelta(days=60)
    awards = await Award.filter(enrollment_id=enrollment.id)
    assert [(a.cycle, a.awarded_at) for a in awards] == [(1, frozen_now - timedelta(days=60))]


async def test_an_assignment_after_the_history_completes_at_once(
    make: Factory, frozen_now: datetime
) -> None:
    course = await make.course()
    cert = await make.certification(course)
    learner = await make.learner()
    await make.complete(learner, course)

    clock.advance(timedelta(days=1))
    enrollment = await make.assign(cert, learner)

    assert (await make.view(enrollment)).status == EnrollmentStatus.COMPLETED
    assert await Award.filter(enrollment_id=enrollment.id).count() == 1


async def test_progress_recorded_event_is_emitted(make: Factory, events: EventLog) -> None:
    course = await make.course()
    learner = await make.learner()

    await make.progress(learner, course, 25)

    assert len(await events.named("progress_recorded")) == 1
    assert (await events.named("progress_recorded"))[0].actor_id == encode_id(
        "User", learner.user_id
    )
