"""The CSV import emits what recording its rows one by one would: a progress_recorded per row
written, with the row as that report left it, and certification_completed per award; in the
import's transaction, so a dry run or a failed import emits nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from gql import Event
from gql.api.ids import encode_id
from gql.domain import courses, enrollments, imports
from gql.domain.access import Actor
from gql.domain.imports import ImportResult
from gql.events import parse_data
from gql.store.models import Course, CourseProgress, OutboxEvent, Role, User
from gql.store.records import CourseRecord
from tests.conftest import EventLog, QueryCounter

from .conftest import World
from .test_imports import csv_text, run_import

Report = tuple[Course | CourseRecord, int | None, datetime | None]  # course, percent, completed_at


def progress(event: Event) -> tuple[Any, ...]:
    body = event.body()["data"]
    return (body["course"], body["percent"], body["completed"], body["completedAt"])


def person(actor: Actor) -> dict[str, str]:
    assert actor.user_id is not None
    return {"id": encode_id("User", actor.user_id), "name": actor.name, "email": actor.email}


def csv_rows(learner: Actor, reports: list[Report]) -> list[str]:
    return [
        f"{learner.email},{course.id},{'' if percent is None else percent},"
        f"{'' if completed_at is None else completed_at.isoformat()}"
        for course, percent, completed_at in reports
    ]


async def test_each_row_emits_what_recording_it_would(
    world: World, events: EventLog, frozen_now: datetime
) -> None:
    second = await courses.create_course(world.admin, name="Security 301")
    cert = await world.internal(world.course, second)  # type: ignore[arg-type]
    for learner in (world.learner, world.other_learner):
        assert learner.user_id is not None
        await enrollments.assign_certification(world.admin, cert.id, [learner.user_id], None)
    history = frozen_now - timedelta(days=3)
    reports: list[Report] = [
        (world.course, 40, None),
        (world.course, 20, None),  # lower within the attempt: the row stays at 40
        (world.course, None, history),  # a back-dated completion
        (world.course, 10, None),  # after a completion: ignored, still complete
        (second, 0, None),
        (second, 100, None),  # completes the certification
    ]
    for course, percent, completed_at in reports:
        await enrollments.record_course_progress(
            world.admin,
            course_id=course.id,
            learner_id=world.learner.user_id,
            percent=percent if completed_at is None else None,
            completed=True if completed_at is not None else None,
            completed_at=completed_at,
        )
    recorded = await events.named("progress_recorded")
    [recorded_award] = await events.named("certification_completed")
    await events.clear()

    result = await run_import(world.admin, csv_text(*csv_rows(world.other_learner, reports)))

    assert result == ImportResult(imported=len(reports))
    imported = await events.named("progress_recorded")
    assert [progress(e) for e in imported] == [progress(e) for e in recorded]
    assert [progress(e) for e in imported] == [
        ({"id": encode_id("Course", world.course.id), "name": "Networking 101"}, 40, False, None),
        ({"id": encode_id("Course", world.course.id), "name": "Networking 101"}, 40, False, None),
        (
            {"id": encode_id("Course", world.course.id), "name": "Networking 101"},
            100,
            True,
            history.isoformat(),
        ),
        (
            {"id": encode_id("Course", world.course.id), "name": "Networking 101"},
            100,
            True,
            history.isoformat(),
        ),
        ({"id": encode_id("Course", second.id), "name": "Security 301"}, 0, False, None),
        (
            {"id": encode_id("Course", second.id), "name": "Security 301"},
            100,
            True,
            frozen_now.isoformat(),
        ),
    ]
    assert all(e.body()["data"]["learner"] == person(world.other_learner) for e in imported)
    assert {e.actor_id for e in imported} == {encode_id("User", world.admin.user_id or 0)}
    assert {e.occurred_at for e in imported} == {frozen_now}
    [award] = await events.named("certification_completed")
    mine, theirs = award.body()["data"], recorded_award.body()["data"]
    assert mine["learner"] == person(world.other_learner)
    assert {k: v for k, v in mine.items() if k not in ("learner", "enrollmentId")} == {
        k: v for k, v in theirs.items() if k not in ("learner", "enrollmentId")
    }
    # the completions come after the rows that caused them, as in the outbox
    assert (await events.types())[-1] == "certification_completed"


async def test_a_dry_run_or_a_refused_import_emits_nothing(world: World, events: EventLog) -> None:
    await events.clear()
    good = csv_text(f"{world.learner.email},{world.course.id},100,")
    bad = csv_text(f"{world.learner.email},{world.course.id},100,", "x@example.com,1,1,")

    assert (await run_import(world.admin, good, dry_run=True)).imported == 1
    assert (await run_import(world.admin, bad)).error_count == 1

    assert not await OutboxEvent.exists()
    assert await events.all() == []


async def test_a_failed_import_takes_its_written_events_with_it(
    world: World, events: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    await events.clear()
    inside: list[int] = []

    async def failing_reevaluation(enrollment_ids: list[int], unit: Any) -> int:
        # the rows' events are already in the outbox, in the import's transaction
        inside.append(await OutboxEvent.filter(type="progress_recorded").count())
        raise RuntimeError("the database went away")

    monkeypatch.setattr(imports, "_reevaluate", failing_reevaluation)
    rows = [f"{world.learner.email},{world.course.id},{p}," for p in (10, 20, 30)]

    with pytest.raises(RuntimeError):
        await run_import(world.admin, csv_text(*rows))

    assert inside == [3]
    assert not await CourseProgress.exists()
    assert not await OutboxEvent.exists()
    assert await events.all() == []


async def test_events_are_written_a_batch_at_a_time(
    db: None, sql_queries: QueryCounter, frozen_now: datetime
) -> None:
    """2,500 rows are read in 3 batches: the events add one outbox INSERT per batch and one
    read per kind of name (learners, courses) per batch, whatever the number of rows.

    What was written is read from the outbox, not delivered: handing 2,500 events to a plugin
    took most of this test's time, and delivery has tests of its own (tests/domain/
    test_dispatcher.py); the events' content as plugins get it is checked above."""
    admin = Actor.system()
    now = frozen_now
    await User.bulk_create(
        [
            User(name=f"L{i}", email=f"l{i}@example.com", role=Role.LEARNER, created_at=now)
            for i in range(25)
        ]
    )
    await Course.bulk_create(
        [Course(name=f"C{i}", description="", published_at=now, updated_at=now) for i in range(100)]
    )
    course_ids = list(await Course.all().order_by("id").values_list("id", flat=True))
    rows = [
        f"l{i}@example.com,{c},{(i + j) % 100},"
        for i in range(25)
        for j, c in enumerate(course_ids)
    ]
    assert not await OutboxEvent.exists()
    sql_queries.reset()

    assert (await run_import(admin, csv_text(*rows))).imported == 2500

    statements = sql_queries.statements
    outbox_inserts = [s for s in statements if s.startswith('INSERT INTO "outbox_event"')]
    learner_names = [s for s in statements if '"email"' in s and 'FROM "user" WHERE "id"' in s]
    course_names = [s for s in statements if '"name"' in s and 'FROM "course" WHERE "id"' in s]
    assert (len(outbox_inserts), len(learner_names), len(course_names)) == (3, 3, 3)
    written = await OutboxEvent.all().order_by("seq").values_list("type", "data")
    assert {kind for kind, _ in written} == {"progress_recorded"}
    recorded = [
        parse_data(kind, data).model_dump(mode="json", by_alias=True) for kind, data in written
    ]
    assert len(recorded) == 2500
    assert [data["percent"] for data in recorded[:3]] == [0, 1, 2]
    assert recorded[-1]["learner"]["name"] == "L24"
