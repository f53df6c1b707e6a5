"""RECURRING certifications: expiry, the recertification window, cycles and the next award."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gql import clock
from gql.domain.access import Actor
from gql.domain.expiry import sweep_expired
from gql.domain.records import CourseRecord
from gql.domain.status import EnrollmentStatus
from gql.store.models import Award, CertificationType, Enrollment, ProgressStatus
from gql.vocabulary import encode_id
from tests.conftest import EventLog, QueryCounter

from .factories import Factory

AWARDED = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # the frozen_now fixture's instant
EXPIRES = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)  # + 12 months
WINDOW_OPENS = EXPIRES - timedelta(days=30)


async def _completed_recurring(make: Factory) -> tuple[Enrollment, CourseRecord, Actor]:
    course = await make.course()
    cert = await make.certification(course, type=CertificationType.RECURRING, validity_months=12)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await make.complete(learner, course)
    return enrollment, course, learner


async def test_expiry_edges(make: Factory, frozen_now: datetime) -> None:
    assert frozen_now == AWARDED
    enrollment, _, _ = await _completed_recurring(make)

    clock.freeze(EXPIRES - timedelta(seconds=1))
    view = await make.view(enrollment)
    assert (view.status, view.expires_at) == (EnrollmentStatus.COMPLETED, EXPIRES)

    clock.freeze(EXPIRES)
    view = await make.view(enrollment)
    assert view.status == EnrollmentStatus.EXPIRED
    assert view.completed_at is None and view.expires_at is None  # no award in force
    assert len(view.awards) == 1  # history is kept


async def test_the_next_cycle_opens_with_the_window(make: Factory, frozen_now: datetime) -> None:
    enrollment, course, _ = await _completed_recurring(make)

    clock.freeze(WINDOW_OPENS - timedelta(seconds=1))
    assert (await make.view(enrollment)).cycle == 1

    clock.freeze(WINDOW_OPENS)
    view = await make.view(enrollment)
    assert view.cycle == 2
    assert view.status == EnrollmentStatus.COMPLETED  # the award is still in force
    # the completion from cycle 1 does not count for cycle 2
    assert [(c.course.id, c.status) for c in view.courses] == [
        (course.id, ProgressStatus.NOT_STARTED)
    ]
    assert [c.course.id for c in view.pending_courses] == [course.id]


async def test_recertifying_before_expiry_extends_from_the_previous_expiry(
    make: Factory, frozen_now: datetime
) -> None:
    enrollment, course, learner = await _completed_recurring(make)

    clock.freeze(WINDOW_OPENS + timedelta(days=1))
    await make.complete(learner, course)

    awards = await Award.filter(enrollment_id=enrollment.id).order_by("cycle")
    assert [(a.cycle, a.awarded_at, a.expires_at) for a in awards] == [
        (1, AWARDED, EXPIRES),
        (2, WINDOW_OPENS + timedelta(days=1), datetime(2028, 3, 10, 9, 0, tzinfo=UTC)),
    ]
    view = await make.view(enrollment)
    assert (view.status, view.cycle) == (EnrollmentStatus.COMPLETED, 2)


async def test_recertifying_after_expiry_counts_from_the_new_award(
    make: Factory, frozen_now: datetime
) -> None:
    enrollment, course, learner = await _completed_recurring(make)
    again = datetime(2027, 5, 1, 12, 0, tzinfo=UTC)

    clock.freeze(again - timedelta(days=1))
    await make.progress(learner, course, 40)
    view = await make.view(enrollment)
    assert view.status == EnrollmentStatus.EXPIRED  # an expired award outranks progress

    clock.freeze(again)
    await make.complete(learner, course)

    awards = await Award.filter(enrollment_id=enrollment.id).order_by("cycle")
    assert [(a.cycle, a.awarded_at, a.expires_at) for a in awards][1:] == [
        (2, again, datetime(2028, 5, 1, 12, 0, tzinfo=UTC))
    ]
    assert (await make.view(enrollment)).status == EnrollmentStatus.COMPLETED


async def test_a_completion_before_the_cycle_start_does_not_award_the_next_cycle(
    make: Factory, frozen_now: datetime
) -> None:
    a, b = await make.course(), await make.course()
    cert = await make.certification(a, b, type=CertificationType.RECURRING, validity_months=12)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await make.complete(learner, a)
    await make.complete(learner, b)

    clock.freeze(WINDOW_OPENS + timedelta(days=1))
    await make.complete(learner, a)  # b was last completed in cycle 1: cycle 2 is not done

    assert await Award.filter(enrollment_id=enrollment.id).count() == 1
    view = await make.view(enrollment)
    assert view.cycle == 2
    assert view.progress_percent == 50
    assert [c.course.id for c in view.pending_courses] == [b.id]


async def test_a_read_shows_expired_and_writes_nothing_the_sweep_emits_it(
    make: Factory, frozen_now: datetime, events: EventLog, sql_queries: QueryCounter
) -> None:
    enrollment, _, _ = await _completed_recurring(make)

    clock.freeze(EXPIRES + timedelta(days=1))
    sql_queries.reset()
    assert (await make.view(enrollment)).status == EnrollmentStatus.EXPIRED
    assert not any(
        s.lstrip().upper().startswith(("UPDATE", "INSERT", "BEGIN", "SAVEPOINT"))
        for s in sql_queries.statements
    ), sql_queries.statements
    assert await events.named("certification_expired") == []
    assert (await Award.get(enrollment_id=enrollment.id)).expiry_noted_at is None

    assert await sweep_expired() == 1
    assert await sweep_expired() == 0
    [event] = await events.named("certification_expired")
    assert event.data.enrollment_id == encode_id("Enrollment", enrollment.id)


async def test_a_sweep_emits_certification_expired_once(
    make: Factory, frozen_now: datetime, events: EventLog
) -> None:
    first, _, _ = await _completed_recurring(make)
    second, _, _ = await _completed_recurring(make)
    perpetual_course = await make.course()
    learner = await make.learner()
    await make.assign(await make.certification(perpetual_course), learner)
    await make.complete(learner, perpetual_course)

    clock.freeze(EXPIRES)
    assert await sweep_expired() == 2
    assert await sweep_expired() == 0
    await make.view(first)

    expired = await events.named("certification_expired")
    assert sorted(e.data.enrollment_id for e in expired) == sorted(
        encode_id("Enrollment", e.id) for e in (first, second)
    )


async def test_a_report_in_the_new_cycle_starts_a_new_attempt(
    make: Factory, frozen_now: datetime
) -> None:
    enrollment, course, learner = await _completed_recurring(make)

    clock.freeze(WINDOW_OPENS + timedelta(days=2))
    await make.progress(learner, course, 30)

    view = await make.view(enrollment)
    assert view.status == EnrollmentStatus.COMPLETED  # cycle 1's award is still in force
    [course_view] = view.courses
    assert (course_view.status, course_view.percent) == (ProgressStatus.IN_PROGRESS, 30)
    assert view.progress_percent == 0

    clock.advance(timedelta(hours=1))
    await make.progress(learner, course, 20)  # lower, within the new attempt: ignored
    [course_view] = (await make.view(enrollment)).courses
    assert course_view.percent == 30
