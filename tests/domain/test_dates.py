"""Calendar dates a person gives stay those dates (docs/domain.md, "Dates and instants"): an
award's earnedOn / expiresOn, the organisation's time zone for awards earned at an instant;
and startedAt is set on every path that takes an enrollment beyond ENROLLED."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tortoise import Tortoise
from tortoise.connection import get_connection
from tortoise.migrations.api.migrate import migrate

from gql import clock
from gql.domain import enrollments, expiry, imports
from gql.domain.access import Actor
from gql.domain.calendar import add_months, add_months_to_date, day_of, start_of_day
from gql.domain.errors import DomainError
from gql.domain.evidence import ReviewDecision, review_evidence, submit_evidence
from gql.domain.records import CertificationRecord, CourseRecord
from gql.domain.rules import started_at_for
from gql.domain.status import EnrollmentStatus, describe_enrollments
from gql.store import reads
from gql.store.db import close_database, migrate_database, tortoise_config
from gql.store.models import (
    Award,
    Certification,
    CertificationCourse,
    CertificationKind,
    CertificationState,
    CertificationType,
    Course,
    CourseProgress,
    Enrollment,
    EnrollmentOrigin,
    Evidence,
    EvidenceStatus,
    ProgressStatus,
    Role,
    User,
)
from gql.store.records import AwardRecord
from gql.store.sql import Sql
from tests.conftest import EventLog
from tests.files.conftest import blob_store
from tests.files.samples import BytesStream, pdf
from tests.test_migrations import FreshDatabase, fresh_database

from .factories import Factory

__all__ = ["fresh_database"]

LA = ZoneInfo("America/Los_Angeles")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- the calendar rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 11, 20), 24, date(2028, 11, 20)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),  # clamped to the month's end
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # a leap year
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
    ],
)
def test_months_are_added_to_days_clamped_to_the_months_end(
    day: date, months: int, expected: date
) -> None:
    assert add_months_to_date(day, months) == expected


@given(
    instant=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    months=st.integers(min_value=1, max_value=120),
    zone=st.sampled_from([UTC, LA, ZoneInfo("Europe/Berlin"), ZoneInfo("Pacific/Kiritimati")]),
)
def test_an_award_expires_on_its_expiry_day_in_the_organisations_time_zone(
    instant: datetime, months: int, zone: tzinfo
) -> None:
    """The instant (award_expiry) and the day (expiresOn) follow one rule: the expiry instant
    falls on earnedOn + months on the organisation's calendar, DST and month ends included."""
    expires_at = add_months(instant, months, zone)
    assert expires_at.utcoffset() == timedelta(0)
    assert day_of(expires_at, zone) == add_months_to_date(day_of(instant, zone), months)


def test_an_instant_has_the_day_of_the_organisations_time_zone() -> None:
    completed = at("2026-11-20T03:00:00+00:00")
    assert day_of(completed, LA) == date(2026, 11, 19)
    assert day_of(completed) == date(2026, 11, 20)
    assert start_of_day(date(2026, 11, 20), LA) == at("2026-11-20T08:00:00+00:00")
    assert start_of_day(date(2026, 11, 20)) == at("2026-11-20T00:00:00+00:00")


def test_started_at_is_the_earliest_activity_not_before_enrolment_nor_after_now() -> None:
    enrolled, now = at("2026-03-01T00:00:00+00:00"), at("2026-03-10T00:00:00+00:00")
    day = timedelta(days=1)
    assert started_at_for(enrolled, [None, enrolled + 3 * day, enrolled + day], now) == (
        enrolled + day
    )
    assert started_at_for(enrolled, [enrolled - 30 * day], now) == enrolled  # older history
    assert started_at_for(enrolled, [], now) == now
    assert started_at_for(enrolled, [now + day], now) == now


# -- awards from approved proof -----------------------------------------------------------


async def _external(
    make: Factory, months: int | None = 24, *, dated_by: str = "learner"
) -> CertificationRecord:
    return await make.certification(
        kind=CertificationKind.EXTERNAL,
        type=CertificationType.RECURRING if months else CertificationType.PERPETUAL,
        validity_months=months,
        recertification_window_days=5 if months else None,
        policy_config={"completionDate": dated_by},
    )


async def _approved(
    make: Factory,
    cert: CertificationRecord,
    learner: Actor,
    completed_on: date | None,
    zone: tzinfo = UTC,
) -> Enrollment:
    submitted = await submit_evidence(
        learner,
        cert.id,
        BytesStream(pdf()),
        blobs=blob_store(),
        filename="proof.pdf",
        completed_on=completed_on,
        declared_type="application/pdf",
        time_zone=zone,
    )
    await review_evidence(await make.admin(), submitted.id, ReviewDecision.APPROVE, time_zone=zone)
    return await make.enrollment_of(learner, cert)


async def _award(enrollment: Enrollment) -> AwardRecord:
    [award] = await reads.awards([enrollment.id])
    return award


async def test_proof_earned_on_a_day_is_awarded_on_that_day(make: Factory) -> None:
    clock.freeze(at("2026-11-25T18:00:00+00:00"))
    cert = await _external(make, 24)
    learner = await make.learner()
    enrollment = await _approved(make, cert, learner, date(2026, 11, 20))

    award = await _award(enrollment)
    assert (award.earned_on, award.expires_on) == (date(2026, 11, 20), date(2028, 11, 20))
    assert (award.awarded_at, award.expires_at) == (
        at("2026-11-20T00:00:00+00:00"),
        at("2028-11-20T00:00:00+00:00"),
    )
    view = await make.view(enrollment)
    assert view.status == EnrollmentStatus.COMPLETED
    assert (view.completed_on, view.expires_on) == (date(2026, 11, 20), date(2028, 11, 20))
    assert "valid until 2028-11-20" in view.explanation


async def test_in_the_organisations_time_zone_the_day_begins_there(make: Factory) -> None:
    """Los Angeles: the award of proof earned on Nov 20 begins at Nov 20 00:00 there, so the
    instants fall on the days too (earnedOn is the learner's day in every zone)."""
    clock.freeze(at("2026-11-25T18:00:00+00:00"))
    cert = await _external(make, 24)
    enrollment = await _approved(make, cert, await make.learner(), date(2026, 11, 20), LA)

    award = await _award(enrollment)
    assert (award.earned_on, award.expires_on) == (date(2026, 11, 20), date(2028, 11, 20))
    assert award.awarded_at == at("2026-11-20T00:00:00-08:00")
    assert award.expires_at is not None and day_of(award.expires_at, LA) == date(2028, 11, 20)
    assert day_of(award.awarded_at, LA) == date(2026, 11, 20)


async def test_proof_earned_on_a_months_last_day_expires_on_the_next_months_last(
    make: Factory,
) -> None:
    clock.freeze(at("2026-02-03T10:00:00+00:00"))
    cert = await _external(make, 1)
    enrollment = await _approved(make, cert, await make.learner(), date(2026, 1, 31))
    award = await _award(enrollment)
    assert (award.earned_on, award.expires_on) == (date(2026, 1, 31), date(2026, 2, 28))
    view = await make.view(enrollment)
    assert (view.completed_on, view.expires_on) == (date(2026, 1, 31), date(2026, 2, 28))


async def test_proof_dated_by_its_approval_is_earned_on_the_approvals_day(
    make: Factory,
) -> None:
    """completionDate: approval (the default) dates the award by the approval: its day in
    the organisation's time zone, whatever day the learner stated."""
    clock.freeze(at("2026-11-21T03:00:00+00:00"))  # Nov 20, 19:00 in Los Angeles
    cert = await _external(make, 12, dated_by="approval")
    enrollment = await _approved(make, cert, await make.learner(), date(2026, 11, 1), LA)
    award = await _award(enrollment)
    assert award.awarded_at == clock.now()
    assert (award.earned_on, award.expires_on) == (date(2026, 11, 20), date(2027, 11, 20))


async def test_a_perpetual_award_has_a_day_and_no_expiry_day(make: Factory) -> None:
    clock.freeze(at("2026-11-25T18:00:00+00:00"))
    cert = await _external(make, None)
    enrollment = await _approved(make, cert, await make.learner(), date(2026, 11, 20))
    award = await _award(enrollment)
    assert (award.earned_on, award.expires_on, award.expires_at) == (date(2026, 11, 20), None, None)


async def test_an_award_an_older_release_wrote_without_its_days_reads_its_instants_days(
    make: Factory,
) -> None:
    """During a rolling upgrade a release before migration 0006 still writes awards, without
    the days: the columns stay nullable and such a row reads the UTC days of its instants."""
    clock.freeze(at("2026-11-25T18:00:00+00:00"))
    cert = await _external(make, 24)
    enrollment = await _approved(make, cert, await make.learner(), date(2026, 11, 20))
    await Award.filter(enrollment_id=enrollment.id).update(earned_on=None, expires_on=None)
    award = await _award(enrollment)
    assert award.awarded_at == at("2026-11-20T00:00:00+00:00")
    assert (award.earned_on, award.expires_on) == (date(2026, 11, 20), date(2028, 11, 20))
    [expiring] = await reads.unnoted_expired_awards(at("2030-01-01T00:00:00+00:00"), 0, 10)
    assert expiring[0].expires_on == date(2028, 11, 20)


# -- awards from completed courses --------------------------------------------------------


async def _course_award(
    make: Factory, zone: tzinfo, months: int = 24
) -> tuple[Enrollment, AwardRecord]:
    course = await make.course()
    cert = await make.certification(
        course,
        type=CertificationType.RECURRING,
        validity_months=months,
        recertification_window_days=5,
    )
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await enrollments.record_course_progress(
        learner, course_id=course.id, completed=True, time_zone=zone
    )
    return enrollment, await _award(enrollment)


@pytest.mark.parametrize(
    ("zone", "earned_on", "expires_on"),
    [
        (LA, date(2026, 11, 19), date(2028, 11, 19)),
        (UTC, date(2026, 11, 20), date(2028, 11, 20)),
    ],
)
async def test_a_course_award_is_earned_on_the_day_of_its_instant_in_the_organisations_zone(
    make: Factory, zone: tzinfo, earned_on: date, expires_on: date
) -> None:
    clock.freeze(at("2026-11-20T03:00:00+00:00"))
    enrollment, award = await _course_award(make, zone)
    assert (award.earned_on, award.expires_on) == (earned_on, expires_on)
    # the instants stay as they were: the completion, and 24 months after it
    assert (award.awarded_at, award.expires_at) == (
        at("2026-11-20T03:00:00+00:00"),
        at("2028-11-20T03:00:00+00:00"),
    )
    view = await make.view(enrollment)
    assert (view.completed_on, view.expires_on) == (earned_on, expires_on)


async def test_a_course_award_at_a_months_end_expires_at_the_next_months_end(
    make: Factory,
) -> None:
    clock.freeze(at("2026-01-31T12:00:00+00:00"))
    _, award = await _course_award(make, UTC, months=1)
    assert (award.earned_on, award.expires_on) == (date(2026, 1, 31), date(2026, 2, 28))
    assert award.expires_at == at("2026-02-28T12:00:00+00:00")


async def test_months_are_counted_on_the_organisations_calendar(make: Factory) -> None:
    """Jan 31 03:00 UTC is Jan 30 in Los Angeles: + 1 month is Feb 28 there (the UTC calendar
    would say Feb 28 03:00 UTC, Feb 27 in Los Angeles, a day before expiresOn)."""
    clock.freeze(at("2026-01-31T03:00:00+00:00"))
    _, award = await _course_award(make, LA, months=1)
    assert (award.earned_on, award.expires_on) == (date(2026, 1, 30), date(2026, 2, 28))
    assert award.expires_at == at("2026-02-28T19:00:00-08:00")


async def test_a_renewal_before_expiry_extends_from_the_previous_expiry_day(
    make: Factory,
) -> None:
    clock.freeze(at("2026-01-31T12:00:00+00:00"))
    course = await make.course()
    cert = await make.certification(course, type=CertificationType.RECURRING, validity_months=12)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await make.complete(learner, course)
    clock.freeze(at("2027-01-15T12:00:00+00:00"))  # in the 30-day window
    await make.complete(learner, course)
    first, second = await reads.awards([enrollment.id])
    assert (first.earned_on, first.expires_on) == (date(2026, 1, 31), date(2027, 1, 31))
    assert (second.earned_on, second.expires_on) == (date(2027, 1, 15), date(2028, 1, 31))
    assert second.expires_at == at("2028-01-31T12:00:00+00:00")


# -- events -------------------------------------------------------------------------------


async def test_the_events_carry_the_days_beside_the_instants(
    make: Factory, events: EventLog
) -> None:
    clock.freeze(at("2026-11-20T03:00:00+00:00"))
    course = await make.course()
    cert = await make.certification(
        course, type=CertificationType.RECURRING, validity_months=1, recertification_window_days=5
    )
    learner = await make.learner()
    await make.assign(cert, learner)
    await enrollments.record_course_progress(
        learner, course_id=course.id, completed=True, time_zone=LA
    )
    [completed] = await events.named("certification_completed")
    assert completed.body()["data"]["earnedOn"] == "2026-11-19"
    assert completed.body()["data"]["expiresOn"] == "2026-12-19"

    from gql.domain.sweep import sweep

    clock.freeze(at("2026-12-16T00:00:00+00:00"))  # the window is open
    await sweep(due_soon_days=7, retention_days=30)
    [expiring] = await events.named("certification_expiring")
    assert expiring.body()["data"]["expiresOn"] == "2026-12-19"

    clock.freeze(at("2026-12-21T00:00:00+00:00"))
    assert await expiry.sweep_expired() == 1
    [expired] = await events.named("certification_expired")
    assert expired.body()["data"]["expiredOn"] == "2026-12-19"
    assert expired.body()["data"]["expiredAt"] == "2026-12-20T03:00:00+00:00"


# -- startedAt on every path past ENROLLED ------------------------------------------------


async def _started(
    make: Factory, enrollment: Enrollment | int
) -> tuple[EnrollmentStatus, datetime]:
    view = await make.view(enrollment)
    assert view.enrollment.started_at is not None, view.status
    return view.status, view.enrollment.started_at


async def _assigned(
    make: Factory, *courses: CourseRecord, external: bool = False
) -> tuple[CertificationRecord, Actor, Enrollment]:
    if external:
        cert = await _external(make, 24)
    else:
        cert = await make.certification(*courses)
    learner = await make.learner()
    return cert, learner, await make.assign(cert, learner)


async def test_recording_progress_without_start_starts_the_enrollment(make: Factory) -> None:
    clock.freeze(at("2026-03-01T09:00:00+00:00"))
    course = await make.course()
    _, learner, enrollment = await _assigned(make, course, await make.course())
    assert (await make.view(enrollment)).enrollment.started_at is None
    clock.freeze(at("2026-03-02T09:00:00+00:00"))
    await make.progress(learner, course, 30)
    assert await _started(make, enrollment) == (EnrollmentStatus.STARTED, clock.now())


async def test_completing_by_progress_without_start_starts_it(make: Factory) -> None:
    clock.freeze(at("2026-03-01T09:00:00+00:00"))
    course = await make.course()
    _, learner, enrollment = await _assigned(make, course)
    clock.freeze(at("2026-03-02T09:00:00+00:00"))
    await make.complete(learner, course)
    assert await _started(make, enrollment) == (EnrollmentStatus.COMPLETED, clock.now())


async def test_back_dated_history_starts_it_when_it_was_enrolled_at_the_earliest(
    make: Factory,
) -> None:
    clock.freeze(at("2026-03-01T09:00:00+00:00"))
    course = await make.course()
    _, learner, enrollment = await _assigned(make, course)
    clock.freeze(at("2026-03-10T09:00:00+00:00"))
    await make.complete(learner, course, at=at("2026-03-05T09:00:00+00:00"))
    assert await _started(make, enrollment) == (
        EnrollmentStatus.COMPLETED,
        at("2026-03-05T09:00:00+00:00"),
    )
    other_course = await make.course()
    _, other, later = await _assigned(make, other_course)
    await make.complete(other, other_course, at=at("2025-06-01T09:00:00+00:00"))
    assert await _started(make, later) == (EnrollmentStatus.COMPLETED, clock.now())


async def test_approved_proof_starts_it(make: Factory) -> None:
    """Proof written without the submit use case (which starts the enrollment itself), then
    evaluated: the approval's evaluation sets startedAt to the submission."""
    clock.freeze(at("2026-03-01T09:00:00+00:00"))
    _, _, enrollment = await _assigned(make, external=True)
    submitted = at("2026-03-03T09:00:00+00:00")
    clock.freeze(at("2026-03-04T09:00:00+00:00"))
    await make.evidence(
        enrollment, EvidenceStatus.APPROVED, submitted_at=submitted, reviewed_at=clock.now()
    )
    assert await _started(make, enrollment) == (EnrollmentStatus.COMPLETED, submitted)


async def test_submitting_and_approving_proof_leaves_it_started(make: Factory) -> None:
    clock.freeze(at("2026-11-25T09:00:00+00:00"))
    cert = await _external(make, 24)
    enrollment = await _approved(make, cert, await make.learner(), date(2026, 11, 20))
    assert await _started(make, enrollment) == (EnrollmentStatus.COMPLETED, clock.now())


async def _run_import(admin: Actor, rows: list[str]) -> imports.ImportResult:
    text = "learner_email,course_id,percent,completed_at\n" + "\n".join(rows) + "\n"
    return await imports.import_course_progress(
        admin,
        BytesStream(text.encode()),
        blobs=blob_store(),
        filename="progress.csv",
        declared_type="text/csv",
    )


async def test_an_import_starts_it_at_the_earliest_progress_it_records(make: Factory) -> None:
    clock.freeze(at("2026-03-01T09:00:00+00:00"))
    first, second = await make.course(), await make.course()
    _, learner, enrollment = await _assigned(make, first, second)
    email = (await User.get(id=learner.user_id)).email
    clock.freeze(at("2026-03-10T09:00:00+00:00"))
    result = await _run_import(
        await make.admin(),
        [
            f"{email},{second.id},,2026-03-06T10:00:00Z",
            f"{email},{first.id},,2026-03-04T10:00:00Z",
        ],
    )
    assert result.imported == 2 and not result.row_errors
    assert await _started(make, enrollment) == (
        EnrollmentStatus.COMPLETED,
        at("2026-03-04T10:00:00+00:00"),
    )


async def test_an_import_of_partial_progress_starts_it(make: Factory) -> None:
    clock.freeze(at("2026-03-01T09:00:00+00:00"))
    course = await make.course()
    _, learner, enrollment = await _assigned(make, course)
    email = (await User.get(id=learner.user_id)).email
    clock.freeze(at("2026-03-10T09:00:00+00:00"))
    await _run_import(await make.admin(), [f"{email},{course.id},40,"])
    assert await _started(make, enrollment) == (EnrollmentStatus.STARTED, clock.now())


async def test_assigning_a_learner_with_progress_on_its_course_starts_it(make: Factory) -> None:
    clock.freeze(at("2026-03-01T09:00:00+00:00"))
    shared = await make.course()
    learner = await make.learner()
    earlier = await make.certification(shared, await make.course())
    await make.assign(earlier, learner)
    await make.progress(learner, shared, 50)
    clock.freeze(at("2026-03-05T09:00:00+00:00"))
    later = await make.certification(shared, await make.course())
    enrollment = await make.assign(later, learner)
    assert await _started(make, enrollment) == (EnrollmentStatus.STARTED, clock.now())


async def test_a_reassignment_starts_it_with_progress_made_while_it_was_ended(
    make: Factory,
) -> None:
    clock.freeze(at("2026-03-01T09:00:00+00:00"))
    course = await make.course()
    cert, learner, enrollment = await _assigned(make, course, await make.course())
    assert learner.user_id is not None
    await enrollments.unassign_certification(await make.admin(), cert.id, [learner.user_id])
    clock.freeze(at("2026-03-03T09:00:00+00:00"))
    await make.progress(learner, course, 20)
    clock.freeze(at("2026-03-05T09:00:00+00:00"))
    await make.assign(cert, learner)
    assert await _started(make, enrollment) == (
        EnrollmentStatus.STARTED,
        at("2026-03-03T09:00:00+00:00"),
    )


async def test_a_recertification_cycle_repairs_a_missing_start(make: Factory) -> None:
    """An enrollment completed before startedAt was kept on every path (its startedAt null,
    as the migration found such rows) gets one at its next evaluation: its earliest activity."""
    clock.freeze(at("2026-01-10T09:00:00+00:00"))
    course = await make.course()
    cert = await make.certification(course, type=CertificationType.RECURRING, validity_months=12)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await make.complete(learner, course)
    await Enrollment.filter(id=enrollment.id).update(started_at=None)
    clock.freeze(at("2026-12-20T09:00:00+00:00"))  # cycle 2 is open
    await make.progress(learner, course, 10)
    view = await make.view(enrollment)
    assert (view.cycle, view.status) == (2, EnrollmentStatus.COMPLETED)
    assert view.enrollment.started_at == at("2026-01-10T09:00:00+00:00")


async def test_pressing_start_still_starts_it_then(make: Factory) -> None:
    clock.freeze(at("2026-03-01T09:00:00+00:00"))
    course = await make.course()
    cert, learner, enrollment = await _assigned(make, course)
    clock.freeze(at("2026-03-02T09:00:00+00:00"))
    await enrollments.start_certification(learner, cert.id)
    assert await _started(make, enrollment) == (EnrollmentStatus.STARTED, clock.now())
    clock.freeze(at("2026-03-03T09:00:00+00:00"))
    await make.complete(learner, course)  # a later completion leaves it
    assert await _started(make, enrollment) == (
        EnrollmentStatus.COMPLETED,
        at("2026-03-02T09:00:00+00:00"),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_every_enrollment_past_enrolled_has_started(make: Factory, seed: int) -> None:
    """A random mix of every flow, then the invariant over every enrollment not ended:
    beyond ENROLLED means startedAt is set, not before enrolment and not after now."""
    rng = random.Random(seed)
    clock.freeze(at("2026-01-05T09:00:00+00:00"))
    admin = await make.admin()
    courses = [await make.course() for _ in range(3)]
    certs = [
        await make.certification(
            courses[0], courses[1], type=CertificationType.RECURRING, validity_months=2
        ),
        await make.certification(courses[1], (courses[2], False)),
        await _external(make, 3),
        await _external(make, None, dated_by="approval"),
    ]
    learners = [await make.learner() for _ in range(4)]
    emails = {a.user_id: (await User.get(id=a.user_id)).email for a in learners}

    async def step() -> None:
        learner, cert, course = rng.choice(learners), rng.choice(certs), rng.choice(courses)
        assert learner.user_id is not None
        action = rng.randrange(10)
        if action == 0:
            await enrollments.assign_certification(admin, cert.id, [learner.user_id], None)
        elif action == 1:
            await enrollments.start_certification(learner, cert.id)
        elif action == 2:
            await make.progress(learner, course, rng.randrange(1, 100))
        elif action == 3:
            await make.complete(learner, course)
        elif action == 4:
            back = clock.now() - timedelta(days=rng.randrange(1, 90))
            await make.complete(learner, course, at=back)
        elif action == 5:
            back = (clock.now() - timedelta(days=rng.randrange(0, 30))).date().isoformat()
            await _run_import(admin, [f"{emails[learner.user_id]},{course.id},,{back}"])
        elif action == 6:
            completed_on = (clock.now() - timedelta(days=rng.randrange(0, 20))).date()
            submitted = await submit_evidence(
                learner,
                cert.id,
                BytesStream(pdf()),
                blobs=blob_store(),
                filename="proof.pdf",
                completed_on=completed_on,
                declared_type="application/pdf",
            )
            if rng.random() < 0.7:
                decision = rng.choice([ReviewDecision.APPROVE, ReviewDecision.REJECT])
                await review_evidence(admin, submitted.id, decision)
        elif action == 7:
            await enrollments.unassign_certification(admin, cert.id, [learner.user_id])
        else:
            clock.advance(timedelta(days=rng.randrange(1, 40)))

    for _ in range(60):
        # a step the rules refuse (proof while pending, ...) changes nothing
        with contextlib.suppress(DomainError):
            await step()

    rows = await reads.enrollments(ended_at=None)
    views = await describe_enrollments(rows)
    assert len({v.status for v in views.values()}) > 1
    for view in views.values():
        started = view.enrollment.started_at
        if view.status != EnrollmentStatus.ENROLLED:
            assert started is not None, (view.status, view.explanation)
        if started is not None:
            assert view.enrollment.enrolled_at <= started <= clock.now()


# -- the migration ------------------------------------------------------------------------


async def test_the_migration_dates_old_awards_and_starts_old_enrollments(
    fresh_database: FreshDatabase,
) -> None:
    """Old awards get the UTC day of their instants (all they say); enrollments past ENROLLED
    without startedAt get their earliest progress, proof or award, not before enrolment."""
    url = await fresh_database("dates")
    config = tortoise_config(url)
    await migrate(config=config, target="models.0005_reminder_indexes")
    await close_database()
    await Tortoise.init(config=config)
    try:
        t = at("2026-03-01T09:00:00+00:00")
        day = timedelta(days=1)
        people = [
            await User.create(
                name=f"P{i}", email=f"p{i}@example.com", role=Role.LEARNER, created_at=t
            )
            for i in range(7)
        ]
        course = await Course.create(name="C", description="", published_at=t, updated_at=t)
        cert = await Certification.create(
            name="Cert",
            overview="",
            kind=CertificationKind.INTERNAL,
            type=CertificationType.RECURRING,
            issuer="Org",
            validity_months=24,
            recertification_window_days=30,
            state=CertificationState.PUBLISHED,
            policy_name="mandatory-subset",
            policy_config={},
            created_at=t,
            updated_at=t,
        )
        await CertificationCourse.create(
            certification=cert, course=course, mandatory=True, position=0
        )

        async def enrollment(person: User, status: str, started: datetime | None = None) -> int:
            row = await Enrollment.create(
                learner=person,
                certification=cert,
                origin=EnrollmentOrigin.ASSIGNED,
                enrolled_at=t,
                started_at=started,
                verdict_status=status,
                verdict_progress=0.0,
                verdict_explanation="",
                evaluated_cycle=1,
                updated_at=t,
            )
            return row.id

        progressed = await enrollment(people[0], "STARTED")
        await CourseProgress.create(
            learner=people[0],
            course=course,
            percent=40,
            status=ProgressStatus.IN_PROGRESS,
            started_at=t + 2 * day,
            updated_at=t + 3 * day,
        )
        awarded = await enrollment(people[1], "COMPLETE")
        untouched = await enrollment(people[2], "ENROLLED")
        pending = await enrollment(people[3], "PENDING_APPROVAL")
        await Evidence.create(
            enrollment_id=pending,
            sha256="0" * 64,
            filename="p.pdf",
            content_type="application/pdf",
            size_bytes=1,
            status=EvidenceStatus.PENDING,
            submitted_at=t + 4 * day,
        )
        already = await enrollment(people[4], "STARTED", started=t + 5 * day)
        quiet = await enrollment(people[5], "REJECTED")
        history = await enrollment(people[6], "COMPLETE")

        values = [
            (awarded, 1, at("2026-11-20T03:00:00+00:00"), at("2028-11-20T03:00:00+00:00")),
            (awarded, 2, at("2026-11-19T23:30:00-08:00"), None),  # Nov 20 in UTC
            (history, 1, t - 30 * day, at("2028-01-30T09:00:00+00:00")),  # before enrolment
        ]
        for row in values:
            sql = Sql()
            await get_connection("default").execute_query(
                'INSERT INTO "award" ("enrollment_id","cycle","awarded_at","expires_at",'
                f'"created_at") VALUES ({sql.ps([*row, t])})',
                sql.params,
            )
        await Enrollment.filter(id=awarded).update(last_award_cycle=2)
        await Enrollment.filter(id=history).update(last_award_cycle=1)
    finally:
        await close_database()

    assert await migrate_database(url) == [
        "models.0006_award_dates",
        "models.0007_course_links_version",
    ]
    await Tortoise.init(config=config)
    try:
        days = await Award.all().order_by("id").values_list("earned_on", "expires_on")
        assert days == [
            (date(2026, 11, 20), date(2028, 11, 20)),
            (date(2026, 11, 20), None),
            (date(2026, 1, 30), date(2028, 1, 30)),
        ]
        started = dict(await Enrollment.all().values_list("id", "started_at"))
        assert started == {
            progressed: t + 2 * day,
            awarded: at("2026-11-20T03:00:00+00:00"),  # its first award
            untouched: None,  # still ENROLLED
            pending: t + 4 * day,  # its proof
            already: t + 5 * day,  # kept
            quiet: t,  # nothing known: enrolment
            history: t,  # an award from before enrolment: enrolment
        }
    finally:
        await close_database()
