"""The read model's plain rows (gql.store.reads) hold what the ORM's models hold, value for
value and type for type, on SQLite (datetimes as text, booleans as 0/1) and PostgreSQL; and
recording progress reads what it decides on once."""

from __future__ import annotations

from datetime import datetime, timedelta

from gql.domain import enrollments
from gql.domain.status import EnrollmentStatus, describe_enrollments
from gql.store import course_links, reads
from gql.store.models import (
    Award,
    CertificationCourse,
    CertificationType,
    CourseProgress,
    Enrollment,
    ProgressStatus,
)
from gql.store.records import CERTIFICATION_COLUMNS, ENROLLMENT_COLUMNS
from tests.conftest import ON_POSTGRES, QueryCounter

from .factories import Factory


def _same_instant_in_utc(value: datetime | None, expected: datetime | None) -> bool:
    if value is None or expected is None:
        return value is expected
    offset = value.utcoffset()
    return value == expected and offset is not None and offset == timedelta(0)


async def test_course_links_hold_what_the_models_hold(make: Factory) -> None:
    timed, untimed, third = (
        await make.course("Timed", duration_minutes=45),
        await make.course("Untimed"),
        await make.course("Third"),
    )
    first = await make.certification(timed, (untimed, False))
    second = await make.certification(third, timed)

    found = await course_links.course_links([second.id, first.id])
    rows = found[first.id] + found[second.id]

    models = (
        await CertificationCourse.filter(certification_id__in=[first.id, second.id])
        .select_related("course")
        .order_by("certification_id", "position", "id")
    )
    assert [(r.certification_id, r.course_id) for r in rows] == [
        (first.id, timed.id),
        (first.id, untimed.id),
        (second.id, third.id),
        (second.id, timed.id),
    ]
    assert len(rows) == len(models)
    for row, model in zip(rows, models, strict=True):
        assert (row.id, row.certification_id, row.course_id, row.position) == (
            model.id,
            model.certification_id,
            model.course_id,
            model.position,
        )
        assert type(row.mandatory) is bool and row.mandatory == model.mandatory
        course = model.course
        assert (row.course.id, row.course.name, row.course.description) == (
            course.id,
            course.name,
            course.description,
        )
        assert row.course.duration_minutes == course.duration_minutes
        assert _same_instant_in_utc(row.course.published_at, course.published_at)
    assert [r.mandatory for r in rows] == [True, False, True, True]
    assert [r.course.duration_minutes for r in rows][:2] == [45, None]


async def test_progress_rows_hold_what_the_models_hold(make: Factory) -> None:
    done, started, untouched = await make.course(), await make.course(), await make.course()
    await make.certification(done, started, untouched)
    learner, other = await make.learner(), await make.learner()
    assert learner.user_id is not None and other.user_id is not None
    await make.complete(learner, done, at=datetime(2025, 3, 4, 5, 6, 7, 890123).astimezone())
    await make.progress(learner, started, 40)
    await make.progress(other, started, 10)

    rows = await reads.course_progress(
        [learner.user_id], [done.id, started.id, untouched.id, 999999]
    )

    by_course = {row.course_id: row for row in rows}
    assert set(by_course) == {done.id, started.id}
    for model in await CourseProgress.filter(learner_id=learner.user_id):
        row = by_course[model.course_id]
        assert (row.id, row.learner_id, row.percent) == (model.id, model.learner_id, model.percent)
        assert type(row.status) is ProgressStatus and row.status == model.status
        for name in ("started_at", "completed_at", "attempt_started_at", "updated_at"):
            assert _same_instant_in_utc(getattr(row, name), getattr(model, name)), name
    assert by_course[done.id].status == ProgressStatus.COMPLETED
    assert by_course[done.id].completed_at == datetime(2025, 3, 4, 5, 6, 7, 890123).astimezone()
    assert (by_course[started.id].status, by_course[started.id].percent) == (
        ProgressStatus.IN_PROGRESS,
        40,
    )
    assert by_course[started.id].completed_at is None


async def test_nothing_to_read_sends_no_statement(make: Factory, sql_queries: QueryCounter) -> None:
    assert await course_links.course_links([]) == {}
    assert await reads.course_progress([], [1]) == []
    assert await reads.course_progress([1], []) == []
    assert sql_queries.statements == []


async def test_recording_progress_reads_the_learner_once(
    make: Factory, sql_queries: QueryCounter
) -> None:
    shared, other = await make.course("Shared"), await make.course("Other")
    first, second = await make.certification(shared), await make.certification(shared, other)
    learner = await make.learner()
    await make.assign(first, learner)
    await make.assign(second, learner)
    sql_queries.statements.clear()

    recorded = await enrollments.record_course_progress(
        learner, course_id=shared.id, completed=True
    )

    sent = list(sql_queries.statements)
    assert len(recorded.enrollments) == 2
    assert [v.status for v in recorded.views] == ["COMPLETED", "STARTED"]
    assert await Award.all().count() == 1
    # neither enrollment had an award: none is read (last_award_cycle says so)
    assert sum('FROM "award"' in s for s in sent) == 0, sent
    assert sum('FROM "user"' in s for s in sent) == 1, sent  # the lock finds the learner
    assert not any('FROM "course" WHERE' in s for s in sent), sent  # its links prove it
    assert sum('FROM "course_progress"' in s for s in sent) == 1, sent
    # both events (progress_recorded, certification_completed) in one outbox insert
    assert sum('INSERT INTO "outbox_event"' in s for s in sent) == 1, sent
    # on PostgreSQL one more: the NOTIFY that wakes the live feeds (docs/events.md)
    assert len(sent) == (12 if ON_POSTGRES else 11), sent


async def test_recording_updates_the_progress_the_evaluation_read(
    make: Factory, sql_queries: QueryCounter
) -> None:
    first, second = await make.course(), await make.course()
    cert = await make.certification(first, second)
    learner = await make.learner()
    assert learner.user_id is not None
    await make.assign(cert, learner)
    await make.progress(learner, first, 40)
    before = await CourseProgress.get(learner_id=learner.user_id, course_id=first.id)
    sql_queries.statements.clear()

    recorded = await enrollments.record_course_progress(learner, course_id=first.id, percent=70)

    sent = list(sql_queries.statements)
    assert sum('FROM "course_progress"' in s for s in sent) == 1, sent
    [update] = [s for s in sent if s.startswith('UPDATE "course_progress"')]
    assert '"learner_id"' not in update.split("WHERE")[0], update
    after = await CourseProgress.get(learner_id=learner.user_id, course_id=first.id)
    assert (after.id, after.percent, after.status) == (before.id, 70, ProgressStatus.IN_PROGRESS)
    assert after.started_at == before.started_at
    assert (recorded.progress.id, recorded.progress.percent) == (before.id, 70)
    [view] = recorded.views
    assert [(c.course.id, c.percent) for c in view.courses] == [(first.id, 70), (second.id, 0)]
    assert view.progress_percent == 0  # no mandatory course done yet


async def test_enrollment_records_hold_what_the_models_hold(make: Factory) -> None:
    """Records are built positionally from their column lists: a column list out of step
    with its record shows here as a value under the wrong name."""
    course = await make.course()
    cert = await make.certification(course, type=CertificationType.RECURRING, validity_months=12)
    learner = await make.learner()
    await make.assign(cert, learner)
    await make.complete(learner, course)
    [model] = await Enrollment.filter(learner_id=learner.user_id).select_related("certification")

    [record] = await reads.enrollments(id=model.id)

    for name in ENROLLMENT_COLUMNS:
        value, expected = getattr(record, name), getattr(model, name)
        if isinstance(expected, datetime):
            assert _same_instant_in_utc(value, expected), name
        else:
            assert value == expected and type(value) is type(expected), name
    for name in CERTIFICATION_COLUMNS:
        value, expected = getattr(record.certification, name), getattr(model.certification, name)
        assert value == expected, name
    assert record.certification.id == cert.id
    assert record.last_award_cycle == 1 and record.verdict_status == "COMPLETE"


async def test_a_listed_enrollment_is_the_record_the_orm_reads(make: Factory) -> None:
    """The listing's own SQL carries each enrollment and its certification: what it builds
    equals what Tortoise reads, value and type (datetimes, enums, the policy's JSON)."""
    course = await make.course()
    recurring = await make.certification(
        course, type=CertificationType.RECURRING, validity_months=12
    )
    other = await make.certification(await make.course())
    learner = await make.learner()
    await make.assign(recurring, learner, due_at=datetime(2031, 5, 6, 7, 8, 9).astimezone())
    await make.assign(other, learner)
    await make.complete(learner, course)
    assert learner.user_id is not None

    page = await enrollments.list_learner_enrollments(await make.admin(), learner.user_id)

    expected = {r.id: r for r in await reads.enrollments(learner_id=learner.user_id)}
    assert len(page.items) == 2
    for listed in page.items:
        stored = expected[listed.id]
        assert listed == stored
        for name in ENROLLMENT_COLUMNS:
            assert type(getattr(listed, name)) is type(getattr(stored, name)), name
        for name in CERTIFICATION_COLUMNS:
            assert type(getattr(listed.certification, name)) is type(
                getattr(stored.certification, name)
            ), name


async def test_awards_are_read_only_for_enrollments_once_awarded(
    make: Factory, sql_queries: QueryCounter
) -> None:
    done, open_ = await make.course(), await make.course()
    awarded_cert, pending_cert = await make.certification(done), await make.certification(open_)
    learner = await make.learner()
    awarded = await make.assign(awarded_cert, learner)
    pending = await make.assign(pending_cert, learner)
    await make.complete(learner, done)
    records = await reads.enrollments(id__in=[awarded.id, pending.id])

    sql_queries.reset()
    views = await describe_enrollments([r for r in records if r.id == pending.id])
    assert not [s for s in sql_queries.statements if '"award"' in s]
    assert views[pending.id].awards == []

    sql_queries.reset()
    views = await describe_enrollments(records)
    award_reads = [s for s in sql_queries.statements if '"award"' in s]
    assert len(award_reads) == 1
    assert [a.cycle for a in views[awarded.id].awards] == [1]
    assert views[awarded.id].status == EnrollmentStatus.COMPLETED


async def test_an_evaluation_that_changes_nothing_writes_nothing(
    make: Factory, sql_queries: QueryCounter
) -> None:
    a, b = await make.course(), await make.course()
    cert = await make.certification(a, b)
    learner = await make.learner()
    enrollment = await make.assign(cert, learner)
    await make.complete(learner, a)
    [before] = await reads.enrollments(id=enrollment.id)

    sql_queries.reset()
    await make.progress(learner, a, 10)  # a late, lower report: ignored, nothing changes

    assert not [s for s in sql_queries.statements if s.startswith('UPDATE "enrollment"')]
    assert await reads.enrollments(id=enrollment.id) == [before]

    sql_queries.reset()
    await make.complete(learner, b)  # the verdict changes: written
    assert len([s for s in sql_queries.statements if s.startswith('UPDATE "enrollment"')]) == 1
    [after] = await reads.enrollments(id=enrollment.id)
    assert after.verdict_status == "COMPLETE" and after.updated_at > before.updated_at
