"""gql.domain.sweep.sweep: the expiry sweep, the reminders and the pruning of settled events,
with one report of what each did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gql import clock
from gql.domain import sweep as sweep_module
from gql.domain.sweep import SweepReport, sweep
from gql.store.models import CertificationType, EventDelivery, OutboxEvent
from tests.api.conftest import GraphQLClient, World, make_certification
from tests.conftest import EventLog
from tests.recurrence.api import assign, complete, iso

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
EXPIRES = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)


async def test_one_sweep_expires_reminds_and_reports(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World, events: EventLog
) -> None:
    cert = await make_certification(
        "Yearly", [world.course_ids[0]], type_=CertificationType.RECURRING, validity_months=12
    )
    await assign(graphql_client, world, cert, [world.learner, world.other])
    await complete(graphql_client, world.learner, world.course_gid(0))
    await complete(graphql_client, world.other, world.course_gid(0))
    clock.freeze(EXPIRES - timedelta(days=10))
    # the learner's renewal is due in 5 days, Otto's was due yesterday
    await assign(graphql_client, world, cert, [world.learner], due=iso(clock.now() + timedelta(5)))
    await assign(graphql_client, world, cert, [world.other], due=iso(clock.now() - timedelta(1)))

    report = await sweep(due_soon_days=7, retention_days=30)

    # both windows are open (expiring); the learner's renewal is due soon; Otto's award is
    # in force, so he is not overdue yet
    assert report == SweepReport(expired=0, due_soon=1, overdue=0, expiring=2, pruned=0)
    assert report.emitted == 3

    clock.freeze(EXPIRES)
    report = await sweep(due_soon_days=7, retention_days=30)
    # both awards lapse; both renewal due dates have passed: overdue for cycle 2
    assert report == SweepReport(expired=2, due_soon=0, overdue=2, expiring=0, pruned=0)
    assert await sweep(due_soon_days=7, retention_days=30) == SweepReport()
    assert sorted(await events.types()) == sorted(
        ["enrolled"] * 2
        + ["progress_recorded", "certification_completed"] * 2
        + ["certification_due_soon"]
        + ["certification_expiring"] * 2
        + ["certification_expired"] * 2
        + ["certification_overdue"] * 2
    )


async def test_settled_events_are_pruned_after_the_retention_in_batches(
    graphql_client: GraphQLClient,
    frozen_now: datetime,
    world: World,
    events: EventLog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sweep_module, "PRUNE_BATCH", 2)
    cert = await make_certification("Safety", [world.course_ids[0]])
    await assign(graphql_client, world, cert, [world.learner, world.other])
    await complete(graphql_client, world.learner, world.course_gid(0))
    written = await OutboxEvent.all().count()
    assert written == 4  # 2 enrolled, progress_recorded, certification_completed

    clock.freeze(T0 + timedelta(days=31))
    # not yet delivered: kept, whatever their age
    assert (await sweep(due_soon_days=7, retention_days=30)).pruned == 0
    assert len(await events.all()) == written
    assert await EventDelivery.filter(state="DELIVERED").count() == written

    # delivered, but younger than the retention: kept
    assert (await sweep(due_soon_days=7, retention_days=40)).pruned == 0
    assert (await sweep(due_soon_days=7, retention_days=30)).pruned == written
    assert await OutboxEvent.all().count() == 0
    assert await EventDelivery.all().count() == 0
