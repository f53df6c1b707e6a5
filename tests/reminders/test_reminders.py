"""Reminders: certification_due_soon, certification_overdue and certification_expiring, each
once per enrollment and cycle however often and however many sweeps run (docs/recurrence.md,
"Reminders"). The enrollments are made through the API with a frozen clock; the sweep is
called as `certgraph sweep` and the dispatcher call it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gql import Event, clock
from gql.api.ids import encode_id
from gql.domain import reminders
from gql.domain.reminders import days_left, rearm_due_reminders, sweep_reminders
from gql.store.models import CertificationType, Enrollment, EnrollmentNotice, User
from tests.api.conftest import GraphQLClient, Person, World, make_certification, make_person
from tests.conftest import EventLog, QueryCounter
from tests.recurrence.api import assign, complete, complete_at, iso, my_enrollment

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # frozen_now
MICROSECOND = timedelta(microseconds=1)
DAYS = 7  # CERTGRAPH_DUE_SOON_DAYS's default
EXPIRES = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)  # a 12-month award made at T0
WINDOW = EXPIRES - timedelta(days=30)  # the default recertification window opens


async def sweep_at(at: datetime) -> int:
    clock.freeze(at)
    return await sweep_reminders(clock.now(), DAYS)


async def enrollment_gid(person: Person, cert: int) -> str:
    row = await Enrollment.get(learner_id=person.user.id, certification_id=cert)
    return encode_id("Enrollment", row.id)


def data(event: Event) -> dict[str, Any]:
    body: dict[str, Any] = event.body()["data"]
    return body


async def reminders_of(events: EventLog) -> list[tuple[str, str, int]]:
    """(type, enrollment ID, cycle) of every reminder delivered, in order."""
    kinds = ("certification_due_soon", "certification_overdue", "certification_expiring")
    return [
        (e.type, data(e)["enrollmentId"], data(e)["cycle"])
        for e in await events.all()
        if e.type in kinds
    ]


async def test_due_soon_then_overdue_once_each(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World, events: EventLog
) -> None:
    cert = await make_certification("Safety", [world.course_ids[0]])
    due = T0 + timedelta(days=10)
    await assign(graphql_client, world, cert, [world.learner], due=iso(due))
    await assign(graphql_client, world, cert, [world.other])  # no due date: never reminded
    gid = await enrollment_gid(world.learner, cert)

    assert await sweep_at(T0) == 0
    assert await sweep_at(due - timedelta(days=DAYS) - MICROSECOND) == 0

    assert await sweep_at(due - timedelta(days=DAYS)) == 1
    [soon] = await events.named("certification_due_soon")
    assert soon.occurred_at == due - timedelta(days=DAYS)
    assert soon.actor_id is None  # the sweep, not a person
    assert data(soon) == {
        "learner": {
            "id": world.learner.id,
            "name": world.learner.user.name,
            "email": world.learner.user.email,
        },
        "enrollmentId": gid,
        "certification": {"id": encode_id("Certification", cert), "name": "Safety"},
        "dueAt": iso(due),
        "cycle": 1,
        "daysLeft": 7,
    }
    assert await sweep_at(due - timedelta(days=2)) == 0  # once per cycle, not per sweep

    assert await sweep_at(due) == 0  # at the due date exactly: not yet overdue
    assert (await my_enrollment(graphql_client, world.learner, cert))["overdue"] is False
    assert await sweep_at(due + MICROSECOND) == 1
    assert (await my_enrollment(graphql_client, world.learner, cert))["overdue"] is True
    [late] = await events.named("certification_overdue")
    assert (data(late)["enrollmentId"], data(late)["cycle"], data(late)["dueAt"]) == (
        gid,
        1,
        iso(due),
    )
    assert "daysLeft" not in data(late)

    assert await sweep_at(due + timedelta(days=40)) == 0
    assert await reminders_of(events) == [
        ("certification_due_soon", gid, 1),
        ("certification_overdue", gid, 1),
    ]
    assert await EnrollmentNotice.all().count() == 2


def test_days_left_are_whole_days_rounded_down() -> None:
    due = T0 + timedelta(days=7)
    assert days_left(due, T0) == 7
    assert days_left(due, T0 + MICROSECOND) == 6
    assert days_left(due, due - timedelta(hours=23)) == 0
    assert days_left(due, due) == 0


async def test_completed_enrollments_get_no_reminder_and_a_missed_one_stays_missed(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World, events: EventLog
) -> None:
    cert = await make_certification("Safety", [world.course_ids[0]])
    late = await make_person("Late Larry", world.learner.user.role)
    due = T0 + timedelta(days=3)
    await assign(graphql_client, world, cert, [world.learner, world.other, late], due=iso(due))
    await complete(graphql_client, world.learner, world.course_gid(0))

    # the learner is done; Otto and Larry are due in 3 days
    assert await sweep_at(T0 + timedelta(hours=1)) == 2
    soon = await events.named("certification_due_soon")
    assert sorted(data(e)["enrollmentId"] for e in soon) == sorted(
        [await enrollment_gid(world.other, cert), await enrollment_gid(late, cert)]
    )
    assert {data(e)["daysLeft"] for e in soon} == {2}  # 2 days 23 hours

    # Otto completes, late but before any sweep saw him overdue; Larry does not
    clock.freeze(due + timedelta(hours=2))
    await complete(graphql_client, world.other, world.course_gid(0))
    assert await sweep_at(due + timedelta(hours=3)) == 1
    [overdue] = await events.named("certification_overdue")
    assert data(overdue)["enrollmentId"] == await enrollment_gid(late, cert)

    # a learner first seen after the due date gets the overdue reminder only
    newcomer = await make_person("New Nina", world.learner.user.role)
    await assign(graphql_client, world, cert, [newcomer], due=iso(due))
    assert await sweep_at(due + timedelta(days=1)) == 1
    gid = await enrollment_gid(newcomer, cert)
    assert [(t, e) for t, e, _ in await reminders_of(events) if e == gid] == [
        ("certification_overdue", gid)
    ]


async def test_ended_enrollments_and_deactivated_learners_are_not_reminded(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World, events: EventLog
) -> None:
    cert = await make_certification("Safety", [world.course_ids[0]])
    yearly = await make_certification(
        "Yearly", [world.course_ids[1]], type_=CertificationType.RECURRING, validity_months=12
    )
    due = T0 + timedelta(days=3)
    await assign(graphql_client, world, cert, [world.learner, world.other], due=iso(due))
    await assign(graphql_client, world, yearly, [world.learner, world.other])
    for person in (world.learner, world.other):
        await complete(graphql_client, person, world.course_gid(1))
    # the learner's Safety enrollment ends (unassigned); Otto's account is deactivated
    await Enrollment.filter(learner_id=world.learner.user.id, certification_id=cert).update(
        ended_at=T0
    )
    await User.filter(id=world.other.user.id).update(deactivated_at=T0)

    assert await sweep_at(T0 + timedelta(hours=1)) == 0  # no due soon
    assert await sweep_at(due + timedelta(hours=1)) == 0  # no overdue
    assert await sweep_at(WINDOW) == 1  # only the learner's yearly award is expiring
    assert await reminders_of(events) == [
        ("certification_expiring", await enrollment_gid(world.learner, yearly), 2)
    ]

    # reactivated: reminded of what is owed now
    await User.filter(id=world.other.user.id).update(deactivated_at=None)
    assert await sweep_at(WINDOW + timedelta(hours=1)) == 2  # overdue, expiring
    assert sorted(t for t, e, _ in await reminders_of(events)) == [
        "certification_expiring",
        "certification_expiring",
        "certification_overdue",
    ]


async def test_expiring_when_the_window_opens_once_per_cycle(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World, events: EventLog
) -> None:
    cert = await make_certification(
        "Yearly", [world.course_ids[0]], type_=CertificationType.RECURRING, validity_months=12
    )
    forever = await make_certification("Forever", [world.course_ids[1]])
    await assign(graphql_client, world, cert, [world.learner, world.other])
    await assign(graphql_client, world, forever, [world.learner])
    for person in (world.learner, world.other):
        await complete(graphql_client, person, world.course_gid(0))
    await complete(graphql_client, world.learner, world.course_gid(1))
    learner_gid = await enrollment_gid(world.learner, cert)
    other_gid = await enrollment_gid(world.other, cert)

    assert await sweep_at(WINDOW - MICROSECOND) == 0
    assert await sweep_at(WINDOW) == 2
    expiring = await events.named("certification_expiring")
    assert sorted(data(e)["enrollmentId"] for e in expiring) == sorted([learner_gid, other_gid])
    first = next(e for e in expiring if data(e)["enrollmentId"] == learner_gid)
    assert (data(first)["cycle"], data(first)["expiresAt"], data(first)["windowOpenedAt"]) == (
        2,
        iso(EXPIRES),
        iso(WINDOW),
    )
    assert data(first)["dueAt"] is None
    renewing = await my_enrollment(graphql_client, world.learner, cert)
    assert (renewing["status"], renewing["cycle"]) == ("COMPLETED", 2)
    assert await sweep_at(WINDOW + timedelta(days=1)) == 0

    # the learner renews in the window; the other lets the award lapse
    clock.freeze(WINDOW + timedelta(days=5))
    await complete(graphql_client, world.learner, world.course_gid(0))
    assert await sweep_at(EXPIRES + timedelta(days=1)) == 0  # expired: no longer "expiring"

    # the renewed award (to 2028-03-10) opens its window for cycle 3 a year later
    assert await sweep_at(datetime(2028, 2, 9, 9, 0, tzinfo=UTC) - MICROSECOND) == 0
    assert await sweep_at(datetime(2028, 2, 9, 9, 0, tzinfo=UTC)) == 1
    delivered = await reminders_of(events)
    assert sorted(delivered[:2]) == sorted(
        [("certification_expiring", learner_gid, 2), ("certification_expiring", other_gid, 2)]
    )
    assert delivered[2:] == [("certification_expiring", learner_gid, 3)]


async def test_no_expiring_reminder_without_a_window_before_expiry(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World, events: EventLog
) -> None:
    no_window = await make_certification(
        "No window",
        [world.course_ids[0]],
        type_=CertificationType.RECURRING,
        validity_months=12,
        recertification_window_days=0,
    )
    await assign(graphql_client, world, no_window, [world.learner])
    await complete(graphql_client, world.learner, world.course_gid(0))
    for at in (WINDOW, EXPIRES - MICROSECOND, EXPIRES, EXPIRES + timedelta(days=1)):
        assert await sweep_at(at) == 0
    assert await reminders_of(events) == []


async def test_due_dates_belong_to_the_cycle_they_fall_in(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World, events: EventLog
) -> None:
    """A due date from cycle 1 does not remind again in cycle 2; a new due date assigned in
    the window reminds for cycle 2: due soon while the award is still in force, overdue only
    once it has expired (a COMPLETED enrollment is never overdue, as the API says)."""
    cert = await make_certification(
        "Yearly", [world.course_ids[0]], type_=CertificationType.RECURRING, validity_months=12
    )
    first_due = T0 + timedelta(days=10)
    await assign(graphql_client, world, cert, [world.learner, world.other], due=iso(first_due))
    for person in (world.learner, world.other):
        await complete(graphql_client, person, world.course_gid(0))
    learner_gid = await enrollment_gid(world.learner, cert)
    other_gid = await enrollment_gid(world.other, cert)
    assert await sweep_at(first_due + timedelta(days=1)) == 0  # both completed in time

    assert await sweep_at(WINDOW) == 2  # expiring only: the cycle-1 due date is long past
    renewal_due = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    clock.freeze(WINDOW + timedelta(hours=1))
    await assign(graphql_client, world, cert, [world.learner], due=iso(renewal_due))

    assert await sweep_at(renewal_due - timedelta(days=DAYS)) == 1
    [soon] = await events.named("certification_due_soon")
    assert (data(soon)["enrollmentId"], data(soon)["cycle"], data(soon)["daysLeft"]) == (
        learner_gid,
        2,
        7,
    )
    assert await sweep_at(renewal_due + timedelta(days=1)) == 0  # still in force
    assert (await my_enrollment(graphql_client, world.learner, cert))["overdue"] is False

    assert await sweep_at(EXPIRES) == 1  # expired: now overdue for cycle 2
    assert (await my_enrollment(graphql_client, world.learner, cert))["overdue"] is True
    other = await my_enrollment(graphql_client, world.other, cert)
    assert (other["status"], other["overdue"]) == ("EXPIRED", True)  # the API's flag...
    assert await sweep_at(EXPIRES + timedelta(days=3)) == 0  # ...but cycle 1's date: no event
    assert sorted(await reminders_of(events)) == sorted(
        [
            ("certification_expiring", learner_gid, 2),
            ("certification_expiring", other_gid, 2),
            ("certification_due_soon", learner_gid, 2),
            ("certification_overdue", learner_gid, 2),
        ]
    )


async def test_a_moved_due_date_can_be_rearmed(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World, events: EventLog
) -> None:
    cert = await make_certification("Safety", [world.course_ids[0]])
    due = T0 + timedelta(days=2)
    await assign(graphql_client, world, cert, [world.learner], due=iso(due))
    assert await sweep_at(due - timedelta(days=1)) == 1  # due soon
    assert await sweep_at(due + timedelta(hours=1)) == 1  # overdue

    later = due + timedelta(days=20)
    clock.freeze(due + timedelta(hours=2))
    await assign(graphql_client, world, cert, [world.learner], due=iso(later))
    assert await sweep_at(later - timedelta(days=3)) == 0  # already noted for this cycle
    enrollment = await Enrollment.get(learner_id=world.learner.user.id)
    assert await rearm_due_reminders([enrollment.id]) == 2
    assert await sweep_at(later - timedelta(days=2)) == 1
    assert await sweep_at(later + timedelta(hours=1)) == 1
    gid = await enrollment_gid(world.learner, cert)
    assert await reminders_of(events) == [
        ("certification_due_soon", gid, 1),
        ("certification_overdue", gid, 1),
        ("certification_due_soon", gid, 1),
        ("certification_overdue", gid, 1),
    ]
    assert [data(e)["dueAt"] for e in await events.named("certification_overdue")] == [
        iso(due),
        iso(later),
    ]


async def test_racing_sweeps_emit_each_reminder_once(
    graphql_client: GraphQLClient,
    frozen_now: datetime,
    world: World,
    events: EventLog,
    monkeypatch: pytest.MonkeyPatch,
    sql_queries: QueryCounter,
) -> None:
    monkeypatch.setattr(reminders, "SWEEP_BATCH", 2)  # several pages of each kind
    people = [world.learner, world.other] + [
        await make_person(f"Learner {i}", world.learner.user.role) for i in range(4)
    ]
    due_cert = await make_certification("Due", [world.course_ids[1]])
    await assign(graphql_client, world, due_cert, people[:3], due=iso(T0 + timedelta(days=3)))
    await assign(graphql_client, world, due_cert, people[3:], due=iso(T0 - timedelta(days=1)))
    cert = await make_certification(
        "Yearly", [world.course_ids[0]], type_=CertificationType.RECURRING, validity_months=12
    )
    await assign(graphql_client, world, cert, people)
    for person in people:  # history: awards of 340 days ago, expiring in 25 days
        await complete_at(
            graphql_client, world, person, world.course_gid(0), iso(T0 - timedelta(days=340))
        )
    await events.clear()

    clock.freeze(T0 + timedelta(minutes=1))
    results = await asyncio.gather(*(sweep_reminders(clock.now(), DAYS) for _ in range(3)))

    assert sum(results) == 3 + 3 + 6
    delivered = await reminders_of(events)
    assert len(delivered) == len(set(delivered)) == 12
    assert sorted(t for t, _, _ in delivered) == sorted(
        ["certification_due_soon"] * 3
        + ["certification_overdue"] * 3
        + ["certification_expiring"] * 6
    )
    assert await EnrollmentNotice.all().count() == 12

    # again, and racing: nothing more; an idle sweep is a few reads that return no rows
    assert await asyncio.gather(*(sweep_reminders(clock.now(), DAYS) for _ in range(2))) == [0, 0]
    sql_queries.reset()
    assert await sweep_reminders(clock.now(), DAYS) == 0
    # due soon; overdue never awarded, overdue expired; the longest window; expiring
    assert len(sql_queries.statements) == 5, sql_queries.statements
    assert all("SELECT" in s and "INSERT" not in s for s in sql_queries.statements)
    assert await reminders_of(events) == delivered
