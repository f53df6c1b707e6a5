"""certification_expired: once per award, by the sweep, however sweeps race; reads never
write (EXPIRED is shown from the first read, the event waits for `certgraph sweep`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from gql import clock
from gql.api.ids import encode_id
from gql.domain import expiry
from gql.domain.expiry import sweep_expired
from gql.store.models import Award, CertificationType, Enrollment
from tests.api.conftest import GraphQLClient, World, make_certification, make_person
from tests.conftest import EventLog

from .api import assign, complete, enrollment_node, iso, my_enrollment, my_list, report

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
EXPIRES = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)


async def yearly(graphql_client: GraphQLClient, world: World, name: str = "Yearly") -> int:
    cert = await make_certification(
        name, [world.course_ids[0]], type_=CertificationType.RECURRING, validity_months=12
    )
    await assign(graphql_client, world, cert, [world.learner])
    await complete(graphql_client, world.learner, world.course_gid(0))
    return cert


async def test_reads_show_the_expiry_and_the_sweep_emits_it_once(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World, events: EventLog
) -> None:
    cert = await yearly(graphql_client, world)
    enrollment = await Enrollment.get(learner_id=world.learner.user.id, certification_id=cert)

    clock.freeze(EXPIRES - timedelta(microseconds=1))
    assert (await my_enrollment(graphql_client, world.learner, cert))["status"] == "COMPLETED"
    assert await events.named("certification_expired") == []

    clock.freeze(EXPIRES)
    assert (await my_enrollment(graphql_client, world.learner, cert))["status"] == "EXPIRED"
    assert await events.named("certification_expired") == []  # a read writes nothing
    assert await sweep_expired() == 1
    [event] = await events.named("certification_expired")
    assert event.occurred_at == EXPIRES
    assert event.actor_id is None  # the sweep, not a person
    body = event.body()["data"]
    assert body["enrollmentId"] == encode_id("Enrollment", enrollment.id)
    assert body["learner"] == {
        "id": encode_id("User", world.learner.user.id),
        "name": world.learner.user.name,
        "email": world.learner.user.email,
    }
    assert body["certification"] == {"id": encode_id("Certification", cert), "name": "Yearly"}
    assert (body["cycle"], body["expiredAt"]) == (1, iso(EXPIRES))

    # other readers (the list, the manager, the admin's node) and later sweeps add nothing
    clock.advance(timedelta(days=3))
    assert await my_list(graphql_client, world.learner) == [("Yearly", "EXPIRED")]
    gid = encode_id("Enrollment", enrollment.id)
    node = await enrollment_node(graphql_client, world.manager, gid)
    assert node is not None and node["status"] == "EXPIRED"
    assert await sweep_expired() == 0
    assert len(await events.named("certification_expired")) == 1
    assert (await Award.get(enrollment_id=enrollment.id)).expiry_noted_at == EXPIRES


async def test_a_sweep_emits_for_each_newest_expired_award_once(
    graphql_client: GraphQLClient,
    frozen_now: datetime,
    world: World,
    events: EventLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(expiry, "SWEEP_BATCH", 2)  # several batches from a few awards
    learners = [world.learner, world.other] + [
        await make_person(f"Learner {i}", world.learner.user.role) for i in range(3)
    ]
    cert = await make_certification(
        "Yearly", [world.course_ids[0]], type_=CertificationType.RECURRING, validity_months=12
    )
    forever = await make_certification("Forever", [world.course_ids[1]])
    await assign(graphql_client, world, cert, learners)
    await assign(graphql_client, world, forever, learners)
    for person in learners:
        await complete(graphql_client, person, world.course_gid(0))
        await complete(graphql_client, person, world.course_gid(1))
    # one learner renews in the window: the award it supersedes never expires "for real"
    clock.freeze(EXPIRES - timedelta(days=5))
    await complete(graphql_client, learners[0], world.course_gid(0))

    clock.freeze(EXPIRES + timedelta(hours=1))
    assert await sweep_expired() == 4
    assert await sweep_expired() == 0  # idempotent
    expired = await events.named("certification_expired")
    enrollments = {e.learner_id: e.id for e in await Enrollment.filter(certification_id=cert)}
    assert sorted(e.data.enrollment_id for e in expired) == sorted(
        encode_id("Enrollment", enrollments[p.user.id]) for p in learners[1:]
    )
    assert {e.data.cycle for e in expired} == {1}
    # reading them afterwards emits nothing more
    for person in learners[1:]:
        assert (await my_enrollment(graphql_client, person, cert))["status"] == "EXPIRED"
    assert len(await events.named("certification_expired")) == 4
    assert (await report(graphql_client, world.admin, cert))["byStatus"] == {
        "COMPLETED": 1,
        "EXPIRED": 4,
    }

    # the renewed award expires a year later, and is swept then
    clock.freeze(datetime(2028, 3, 10, 9, 0, tzinfo=UTC))
    assert await sweep_expired() == 1
    assert (await events.named("certification_expired"))[-1].data.cycle == 2


async def test_an_expiry_noticed_before_a_late_renewal_stays_noted_once(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World, events: EventLog
) -> None:
    cert = await yearly(graphql_client, world)
    clock.freeze(EXPIRES + timedelta(days=1))
    assert await sweep_expired() == 1
    clock.advance(timedelta(days=1))
    await complete(graphql_client, world.learner, world.course_gid(0))  # renewed after expiry
    assert (await my_enrollment(graphql_client, world.learner, cert))["status"] == "COMPLETED"
    assert await sweep_expired() == 0
    assert [e.data.cycle for e in await events.named("certification_expired")] == [1]


async def test_racing_sweeps_beside_readers_emit_one_event_per_award(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World, events: EventLog
) -> None:
    learners = [world.learner, world.other] + [
        await make_person(f"Learner {i}", world.learner.user.role) for i in range(4)
    ]
    cert = await make_certification(
        "Yearly", [world.course_ids[0]], type_=CertificationType.RECURRING, validity_months=12
    )
    await assign(graphql_client, world, cert, learners)
    for person in learners:
        await complete(graphql_client, person, world.course_gid(0))
    clock.freeze(EXPIRES + timedelta(minutes=1))

    results = await asyncio.gather(
        sweep_expired(),
        sweep_expired(),
        sweep_expired(),
        *(my_enrollment(graphql_client, person, cert) for person in learners),
    )

    swept = sum(results[:3])
    assert all(view["status"] == "EXPIRED" for view in results[3:])
    expired = await events.named("certification_expired")
    assert len(expired) == len(learners)
    assert len({e.data.enrollment_id for e in expired}) == len(learners)
    assert swept == len(learners)  # readers note nothing
    assert await Award.filter(expiry_noted_at=None).count() == 0
