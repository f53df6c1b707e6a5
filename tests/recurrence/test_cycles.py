"""Recertification cycles through the API: what counts in which cycle, expiry, the next award.

The clock is frozen and moved with gql.clock; every assertion reads the GraphQL answer.
T0 is the frozen_now fixture's instant: a 12-month award made then expires at EXPIRES, and
with the default 30-day window the next cycle opens at OPENS.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gql import clock
from gql.store.models import CertificationType
from tests.api.conftest import GraphQLClient, World, make_certification

from .api import (
    assign,
    awards,
    complete,
    complete_at,
    iso,
    my_enrollment,
    my_list,
    pending_ids,
    record,
    report,
    statuses,
)

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
EXPIRES = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
OPENS = EXPIRES - timedelta(days=30)
MICROSECOND = timedelta(microseconds=1)


async def recurring(world: World, *course_indexes: int, mandatory: list[bool] | None = None) -> int:
    return await make_certification(
        "Security Champion",
        [world.course_ids[i] for i in course_indexes],
        mandatory=mandatory,
        type_=CertificationType.RECURRING,
        validity_months=12,
    )


async def awarded_at_t0(graphql_client: GraphQLClient, world: World, *course_indexes: int) -> int:
    """A learner assigned a 12-month certification completes its courses at T0."""
    cert = await recurring(world, *course_indexes)
    await assign(graphql_client, world, cert, [world.learner])
    for index in course_indexes:
        await complete(graphql_client, world.learner, world.course_gid(index))
    return cert


async def test_cycle_1_counts_history_from_before_the_enrollment(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    earlier = frozen_now - timedelta(days=40)
    await complete_at(graphql_client, world, world.learner, world.course_gid(0), iso(earlier))
    cert = await recurring(world, 0)

    [enrollment] = await assign(graphql_client, world, cert, [world.learner])

    assert enrollment["status"] == "COMPLETED"
    assert enrollment["cycle"] == 1
    # the award is dated by the completion that satisfied the rule, and expires from it
    assert enrollment["completedAt"] == iso(earlier)
    assert enrollment["expiresAt"] == "2027-01-29T09:00:00+00:00"
    assert awards(enrollment) == [(1, iso(earlier), "2027-01-29T09:00:00+00:00")]
    assert enrollment["pendingCourses"] == []


async def test_the_next_cycle_opens_exactly_at_expiry_minus_the_window(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await awarded_at_t0(graphql_client, world, 0, 1)
    course_a, course_b = world.course_gid(0), world.course_gid(1)

    clock.freeze(OPENS - MICROSECOND)
    before = await my_enrollment(graphql_client, world.learner, cert)
    assert (before["status"], before["cycle"]) == ("COMPLETED", 1)
    assert statuses(before) == [(course_a, "COMPLETED", 100), (course_b, "COMPLETED", 100)]
    assert before["pendingCourses"] == []
    assert await my_list(graphql_client, world.learner, pending=True) == []

    clock.freeze(OPENS)
    opened = await my_enrollment(graphql_client, world.learner, cert)
    # the award is still in force; only the counting of courses starts afresh
    assert (opened["status"], opened["cycle"]) == ("COMPLETED", 2)
    assert (opened["completedAt"], opened["expiresAt"]) == (iso(T0), iso(EXPIRES))
    assert statuses(opened) == [(course_a, "NOT_STARTED", 0), (course_b, "NOT_STARTED", 0)]
    assert pending_ids(opened) == [course_a, course_b]
    # the latest completion stays visible as history on the course
    assert [c["completedAt"] for c in opened["courses"]] == [iso(T0), iso(T0)]
    assert await my_list(graphql_client, world.learner, pending=True) == [
        ("Security Champion", "COMPLETED")
    ]


async def test_expired_exactly_at_expires_at_and_completed_a_microsecond_before(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await awarded_at_t0(graphql_client, world, 0)

    clock.freeze(EXPIRES - MICROSECOND)
    last_moment = await my_enrollment(graphql_client, world.learner, cert)
    assert last_moment["status"] == "COMPLETED"
    assert (last_moment["completedAt"], last_moment["expiresAt"]) == (iso(T0), iso(EXPIRES))
    assert (await report(graphql_client, world.admin, cert, days=0))["byStatus"] == {"COMPLETED": 1}
    assert (await report(graphql_client, world.admin, cert, days=1))["expiring"] == 1

    clock.freeze(EXPIRES)
    expired = await my_enrollment(graphql_client, world.learner, cert)
    assert expired["status"] == "EXPIRED"
    assert (expired["completedAt"], expired["expiresAt"]) == (None, None)  # no award in force
    assert awards(expired) == [(1, iso(T0), iso(EXPIRES))]  # history is kept
    assert expired["cycle"] == 2
    assert await my_list(graphql_client, world.learner, pending=True) == [
        ("Security Champion", "EXPIRED")
    ]
    expired_report = await report(graphql_client, world.admin, cert, days=365)
    assert expired_report["byStatus"] == {"EXPIRED": 1}
    assert (expired_report["expiring"], expired_report["completionRate"]) == (0, 0.0)


async def test_recertifying_in_the_window_extends_from_the_previous_expiry(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await awarded_at_t0(graphql_client, world, 0)
    renewed_at = OPENS + timedelta(days=3)
    clock.freeze(renewed_at)

    payload = await complete(graphql_client, world.learner, world.course_gid(0))

    [enrollment] = payload["enrollments"]
    assert (enrollment["status"], enrollment["cycle"]) == ("COMPLETED", 2)
    # a full validity period after the previous expiry, not after the renewal
    assert awards(enrollment) == [
        (1, iso(T0), iso(EXPIRES)),
        (2, iso(renewed_at), "2028-03-10T09:00:00+00:00"),
    ]
    assert enrollment["completedAt"] == iso(renewed_at)
    assert enrollment["expiresAt"] == "2028-03-10T09:00:00+00:00"
    assert await my_list(graphql_client, world.learner, pending=True) == []

    # the previous award's expiry passes unnoticed: the newer award is in force
    clock.freeze(EXPIRES + timedelta(days=1))
    assert (await my_enrollment(graphql_client, world.learner, cert))["status"] == "COMPLETED"


async def test_recertifying_after_expiry_counts_from_the_new_award(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await awarded_at_t0(graphql_client, world, 0)
    renewed_at = datetime(2027, 5, 20, 14, 30, tzinfo=UTC)
    clock.freeze(renewed_at)

    payload = await complete(graphql_client, world.learner, world.course_gid(0))

    [enrollment] = payload["enrollments"]
    assert awards(enrollment) == [
        (1, iso(T0), iso(EXPIRES)),
        (2, iso(renewed_at), "2028-05-20T14:30:00+00:00"),
    ]
    assert (enrollment["status"], enrollment["cycle"]) == ("COMPLETED", 2)

    # and cycle 3 opens 30 days before the second award expires
    clock.freeze(datetime(2028, 4, 20, 14, 30, tzinfo=UTC))
    assert (await my_enrollment(graphql_client, world.learner, cert))["cycle"] == 3
    clock.advance(-MICROSECOND)
    assert (await my_enrollment(graphql_client, world.learner, cert))["cycle"] == 2


async def test_a_course_completed_before_the_window_is_not_done_in_the_new_cycle(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    await awarded_at_t0(graphql_client, world, 0, 1)
    course_a, course_b = world.course_gid(0), world.course_gid(1)
    clock.freeze(OPENS + timedelta(days=1))

    payload = await complete(graphql_client, world.learner, course_a)

    [enrollment] = payload["enrollments"]
    assert len(enrollment["awards"]) == 1  # cycle 2 still needs course b
    assert enrollment["progressPercent"] == 50
    assert statuses(enrollment) == [(course_a, "COMPLETED", 100), (course_b, "NOT_STARTED", 0)]
    assert pending_ids(enrollment) == [course_b]

    clock.advance(timedelta(hours=1))
    done = (await complete(graphql_client, world.learner, course_b))["enrollments"][0]
    assert [a["cycle"] for a in done["awards"]] == [1, 2]
    assert done["pendingCourses"] == []


async def test_the_next_report_on_a_course_done_in_an_earlier_cycle_starts_a_new_attempt(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await awarded_at_t0(graphql_client, world, 0)
    course = world.course_gid(0)
    clock.freeze(OPENS + timedelta(days=2))

    payload = await record(graphql_client, world.learner, course, percent=30)

    assert payload["progress"]["status"] == "IN_PROGRESS"
    assert payload["progress"]["percent"] == 30
    assert payload["progress"]["completedAt"] == iso(T0)  # the latest completion is kept
    [enrollment] = payload["enrollments"]
    assert statuses(enrollment) == [(course, "IN_PROGRESS", 30)]
    assert enrollment["courses"][0]["startedAt"] == iso(OPENS + timedelta(days=2))

    clock.advance(timedelta(hours=1))
    await record(graphql_client, world.learner, course, percent=20)  # lower, same attempt: ignored
    assert statuses(await my_enrollment(graphql_client, world.learner, cert)) == [
        (course, "IN_PROGRESS", 30)
    ]


async def test_progress_left_unfinished_before_the_window_restarts_with_the_next_report(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await recurring(world, 0, 1, mandatory=[True, False])
    mandatory, optional = world.course_gid(0), world.course_gid(1)
    await assign(graphql_client, world, cert, [world.learner])
    await record(graphql_client, world.learner, optional, percent=60)
    await complete(graphql_client, world.learner, mandatory)
    clock.freeze(OPENS + timedelta(days=1))

    # the optional course's 60% belongs to cycle 1
    opened = await my_enrollment(graphql_client, world.learner, cert)
    assert statuses(opened) == [(mandatory, "NOT_STARTED", 0), (optional, "NOT_STARTED", 0)]

    [enrollment] = (await record(graphql_client, world.learner, optional, percent=25))[
        "enrollments"
    ]

    assert statuses(enrollment) == [(mandatory, "NOT_STARTED", 0), (optional, "IN_PROGRESS", 25)]
    # pendingCourses is what the policy still requires: the optional course is not
    assert pending_ids(enrollment) == [mandatory]


async def test_pending_lists_expired_ones_and_open_windows_but_not_completed_ones(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    courses = world.course_ids
    short = await make_certification(
        "Short", [courses[0]], type_=CertificationType.RECURRING, validity_months=3
    )
    yearly = await make_certification(
        "Yearly", [courses[1]], type_=CertificationType.RECURRING, validity_months=12
    )
    forever = await make_certification("Forever", [courses[2]])
    todo = await make_certification("Todo", [courses[3]])
    await assign(graphql_client, world, short, [world.learner])
    await assign(graphql_client, world, yearly, [world.learner])
    await assign(graphql_client, world, forever, [world.learner])
    await assign(graphql_client, world, todo, [world.learner])
    for index in range(3):
        await complete(graphql_client, world.learner, world.course_gid(index))
    assert await my_list(graphql_client, world.learner, pending=True) == [("Todo", "ENROLLED")]

    clock.freeze(datetime(2026, 5, 15, tzinfo=UTC))  # Short's window opened on May 11
    assert sorted(await my_list(graphql_client, world.learner, pending=True)) == [
        ("Short", "COMPLETED"),
        ("Todo", "ENROLLED"),
    ]

    clock.freeze(datetime(2027, 2, 20, tzinfo=UTC))  # Short expired, Yearly's window open
    assert sorted(await my_list(graphql_client, world.learner, pending=True)) == [
        ("Short", "EXPIRED"),
        ("Todo", "ENROLLED"),
        ("Yearly", "COMPLETED"),
    ]
    everything = await my_list(graphql_client, world.learner)
    assert ("Forever", "COMPLETED") in everything and len(everything) == 4


async def test_awards_expire_after_calendar_months_clamped_to_the_month_end(
    graphql_client: GraphQLClient, world: World
) -> None:
    monthly = await make_certification(
        "Monthly",
        [world.course_ids[0]],
        type_=CertificationType.RECURRING,
        validity_months=1,
        recertification_window_days=7,
    )
    yearly = await make_certification(
        "Leap", [world.course_ids[1]], type_=CertificationType.RECURRING, validity_months=12
    )
    await assign(graphql_client, world, monthly, [world.learner])
    await assign(graphql_client, world, yearly, [world.learner])

    clock.freeze(datetime(2027, 1, 31, 10, 0, tzinfo=UTC))
    await complete(graphql_client, world.learner, world.course_gid(0))
    first = await my_enrollment(graphql_client, world.learner, monthly)
    assert first["expiresAt"] == "2027-02-28T10:00:00+00:00"  # no Feb 31: the month's end

    # renewed in the window: a month after the previous expiry (Feb 28 -> Mar 28)
    clock.freeze(datetime(2027, 2, 25, 8, 0, tzinfo=UTC))
    await complete(graphql_client, world.learner, world.course_gid(0))
    renewed = await my_enrollment(graphql_client, world.learner, monthly)
    assert awards(renewed)[1] == (2, "2027-02-25T08:00:00+00:00", "2027-03-28T10:00:00+00:00")

    clock.freeze(datetime(2028, 2, 29, 12, 0, tzinfo=UTC))  # a leap day
    await complete(graphql_client, world.learner, world.course_gid(1))
    leap = await my_enrollment(graphql_client, world.learner, yearly)
    assert leap["expiresAt"] == "2029-02-28T12:00:00+00:00"


async def test_a_leap_year_february_has_29_days(
    graphql_client: GraphQLClient, world: World
) -> None:
    cert = await make_certification(
        "Monthly",
        [world.course_ids[0]],
        type_=CertificationType.RECURRING,
        validity_months=1,
        recertification_window_days=7,
    )
    await assign(graphql_client, world, cert, [world.learner])
    clock.freeze(datetime(2028, 1, 31, 23, 59, 59, 999999, tzinfo=UTC))
    await complete(graphql_client, world.learner, world.course_gid(0))
    enrollment = await my_enrollment(graphql_client, world.learner, cert)
    assert enrollment["expiresAt"] == "2028-02-29T23:59:59.999999+00:00"
