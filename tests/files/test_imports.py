"""CSV progress import: the format, line-numbered errors, all or none, dry runs, rules, scale."""

from __future__ import annotations

import base64
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gql.api.ids import course_pk_of_import as parse_course_id
from gql.domain import certifications, courses, enrollments
from gql.domain.access import Actor
from gql.domain.errors import Forbidden, UnsupportedFileType
from gql.domain.imports import (
    HEADER,
    MAX_REPORTED_ERRORS,
    ImportResult,
    RowError,
    import_course_progress,
)
from gql.domain.status import EnrollmentStatus, describe_enrollments
from gql.store import reads
from gql.store.models import (
    AuditEvent,
    Award,
    CertificationKind,
    CertificationType,
    Course,
    CourseProgress,
    Enrollment,
    ProgressStatus,
    Role,
    User,
)
from tests.conftest import EventLog, stored_files

from .conftest import World, blob_store
from .samples import BytesStream, png

HEADER_LINE = ",".join(HEADER)


def gid(course: Course | int) -> str:
    pk = course if isinstance(course, int) else course.id
    return base64.b64encode(f"Course:{pk}".encode()).decode()


async def run_import(actor: Actor, text: str | bytes, *, dry_run: bool = False) -> ImportResult:
    data = text.encode() if isinstance(text, str) else text
    return await import_course_progress(
        actor,
        BytesStream(data),
        blobs=blob_store(),
        dry_run=dry_run,
        filename="progress.csv",
        declared_type="text/csv",
        course_id_of=parse_course_id,
    )


def csv_text(*rows: str) -> str:
    return "\n".join([HEADER_LINE, *rows]) + "\n"


async def progress_of(learner: Actor, course: Course) -> CourseProgress | None:
    return await CourseProgress.get_or_none(learner_id=learner.user_id, course_id=course.id)


async def internal_cert(world: World, *course_list: Course) -> int:
    cert = await world.internal(*course_list)
    return cert.id


def test_course_ids_are_global_ids_or_plain_keys() -> None:
    assert parse_course_id(gid(42)) == 42
    assert parse_course_id("42") == 42
    for bad in ("", "0", "-3", "abc", base64.b64encode(b"User:42").decode(), "٤٢", "9" * 20):
        assert parse_course_id(bad) is None


# -- what a row does ----------------------------------------------------------------------


async def test_rows_record_progress_and_completions(
    world: World, events: EventLog, frozen_now: datetime
) -> None:
    second = await courses.create_course(world.admin, name="Routing 201")
    cert_id = await internal_cert(world, world.course, second)
    await enrollments.assign_certification(world.admin, cert_id, [world.learner.user_id], None)
    history = frozen_now - timedelta(days=40)

    result = await run_import(
        world.admin,
        csv_text(
            f"{world.learner.email},{gid(world.course)},,{history.isoformat()}",
            f"LEA.LEARNER@example.com,{second.id},100,2026-02-01",  # any case, a date, a raw ID
            f"{world.other_learner.email},{gid(second)},40,",
        ),
    )

    assert result == ImportResult(imported=3)
    first = await progress_of(world.learner, world.course)
    assert first is not None
    assert (first.status, first.percent, first.completed_at) == (
        ProgressStatus.COMPLETED,
        100,
        history,
    )
    done = await progress_of(world.learner, second)
    assert done is not None and done.completed_at == datetime(2026, 2, 1, tzinfo=UTC)
    partial = await progress_of(world.other_learner, second)
    assert partial is not None and (partial.status, partial.percent) == (
        ProgressStatus.IN_PROGRESS,
        40,
    )
    enrollment = await Enrollment.get(learner_id=world.learner.user_id)
    view = (await describe_enrollments(await reads.enrollments(id=enrollment.id)))[enrollment.id]
    assert view.status == EnrollmentStatus.COMPLETED
    award = await Award.get()
    assert award.awarded_at == datetime(2026, 2, 1, tzinfo=UTC)  # the completion that did it
    assert len(await events.named("certification_completed")) == 1
    audit = await AuditEvent.get(action="importCourseProgress")
    assert audit.after is not None
    assert (audit.after["rows"], audit.after["learners"], audit.after["filename"]) == (
        3,
        2,
        "progress.csv",
    )


async def test_rows_about_one_course_apply_in_file_order(
    world: World, frozen_now: datetime
) -> None:
    result = await run_import(
        world.admin,
        csv_text(
            f"{world.learner.email},{world.course.id},60,",
            f"{world.learner.email},{world.course.id},30,",  # a late, lower report: ignored
            f"{world.other_learner.email},{world.course.id},30,",
            f"{world.other_learner.email},{world.course.id},70,",
        ),
    )

    assert result.imported == 4
    lea, otto = (
        await progress_of(world.learner, world.course),
        await progress_of(world.other_learner, world.course),
    )
    assert lea is not None and otto is not None
    assert (lea.percent, otto.percent) == (60, 70)


async def test_import_follows_the_same_rules_as_recording_progress(
    world: World, frozen_now: datetime
) -> None:
    """The same reports, once through recordCourseProgress and once imported, give the same rows
    (guards `progress_after` against drifting from enrollments._apply_progress)."""
    other_course = await courses.create_course(world.admin, name="Security 301")
    history = frozen_now - timedelta(days=3)
    reports: list[tuple[Course, int | None, datetime | None]] = [
        (world.course, 40, None),
        (world.course, 20, None),
        (world.course, None, history),  # a back-dated completion, before it was started
        (world.course, 10, None),  # after a completion: ignored
        (other_course, 0, None),
        (other_course, 100, None),
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
    rows = [
        f"{world.other_learner.email},{course.id},{'' if percent is None else percent},"
        f"{'' if completed_at is None else completed_at.isoformat()}"
        for course, percent, completed_at in reports
    ]
    assert (await run_import(world.admin, csv_text(*rows))).imported == len(reports)

    def shape(row: CourseProgress | None) -> tuple[object, ...]:
        assert row is not None
        return (
            row.percent,
            row.status,
            row.started_at,
            row.completed_at,
            row.attempt_started_at,
            row.updated_at,
        )

    for course in (world.course, other_course):
        assert shape(await progress_of(world.other_learner, course)) == shape(
            await progress_of(world.learner, course)
        )


# -- errors -------------------------------------------------------------------------------


async def test_one_bad_row_imports_nothing(world: World, events: EventLog) -> None:
    cert_id = await internal_cert(world, world.course)
    await enrollments.assign_certification(world.admin, cert_id, [world.learner.user_id], None)
    await events.clear()

    result = await run_import(
        world.admin,
        csv_text(
            f"{world.learner.email},{world.course.id},100,",
            f"{world.other_learner.email},{world.course.id},50,",
            f"nobody@example.com,{world.course.id},50,",
        ),
    )

    assert result == ImportResult(
        imported=0,
        row_errors=[RowError(4, "no user with email 'nobody@example.com'")],
        error_count=1,
    )
    assert not await CourseProgress.exists()
    assert not await Award.exists()
    assert not await AuditEvent.filter(action="importCourseProgress").exists()
    assert await events.all() == []


async def test_each_error_names_its_line_and_reason(world: World, frozen_now: datetime) -> None:
    email, course = world.learner.email, world.course.id
    text = (
        f"{HEADER_LINE}\n"
        f"{email},{course},50,\n"  # 2: fine
        f"{email},{course},150,\n"  # 3
        f"{email},{course},abc,\n"  # 4
        "\n"  # 5: blank lines are skipped but counted
        f'"{email}","{course}","","2026-13-01"\n'  # 6
        f"{email},{course},50\n"  # 7
        f",{course},50,\n"  # 8
        f"{email},Q291cnNlOg==,50,\n"  # 9: "Course:" without a key
        f"{email},999999,50,\n"  # 10
        f"{email},{course},,\n"  # 11
        f"{email},{course},40,2026-01-01T00:00:00Z\n"  # 12
        f"{email},{course},,2026-01-01T10:00:00\n"  # 13
        f"{email},{course},,2027-01-01T00:00:00Z\n"  # 14
        f'{email},{course},"5\n0",\n'  # 15-16: a quoted field across two lines
        f"{email},{course},100,\n"  # 17: fine
    )

    result = await run_import(world.admin, text)

    assert result.imported == 0
    assert result.error_count == 12
    lines = [e.line for e in result.row_errors]
    assert lines == [3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    messages = dict(result.row_errors)
    assert messages[3] == "percent '150' is not a whole number from 0 to 100"
    assert "completed_at '2026-13-01'" in messages[6]
    assert messages[7] == f"expected 4 fields ({HEADER_LINE}), found 3"
    assert messages[8] == "learner_email is empty"
    assert messages[9] == "course_id 'Q291cnNlOg==' is not a Course ID"
    assert messages[10] == "no course with ID 999999"
    assert messages[11] == "give percent, completed_at or both"
    assert "percent must be 100 or empty" in messages[12] or "make it 100" in messages[12]
    assert "UTC offset" in messages[13]
    assert messages[14] == "completed_at must not be in the future"
    assert not await CourseProgress.exists()


@pytest.mark.parametrize(
    ("text", "message_start"),
    [
        ("", "the file is empty"),
        ("email,course,percent,completed_at\nx,1,2,\n", "the header must be exactly"),
        ("learner_email,course_id,percent\n", "the header must be exactly"),
    ],
)
async def test_the_header_is_line_one(world: World, text: str, message_start: str) -> None:
    result = await run_import(world.admin, text)
    [error] = result.row_errors
    assert error.line == 1
    assert error.message.startswith(message_start)


async def test_a_byte_order_mark_and_spaces_in_the_header_are_fine(world: World) -> None:
    text = "\ufefflearner_email, course_id, percent, completed_at\r\n"
    text += f"{world.learner.email}, {world.course.id}, 30, \r\n"
    assert (await run_import(world.admin, text)).imported == 1


async def test_an_unterminated_quote_is_an_error_at_its_line(world: World) -> None:
    result = await run_import(
        world.admin, csv_text(f"{world.learner.email},{world.course.id},10,", '"open,1,2,')
    )
    assert [e.line for e in result.row_errors] == [3]
    assert result.row_errors[0].message.startswith("malformed CSV")
    assert not await CourseProgress.exists()


async def test_reported_errors_are_capped_but_counted(world: World) -> None:
    rows = [f"{world.learner.email},{world.course.id},x,"] * (MAX_REPORTED_ERRORS + 50)
    result = await run_import(world.admin, csv_text(*rows))
    assert result.error_count == MAX_REPORTED_ERRORS + 50
    assert len(result.row_errors) == MAX_REPORTED_ERRORS
    assert result.row_errors[0].line == 2


async def test_a_dry_run_validates_and_writes_nothing(world: World, data_dir: Path) -> None:
    good = csv_text(f"{world.learner.email},{world.course.id},100,")
    bad = csv_text(f"{world.learner.email},{world.course.id},100,", "x@example.com,1,1,")

    checked = await run_import(world.admin, good, dry_run=True)
    refused = await run_import(world.admin, bad, dry_run=True)

    assert checked == ImportResult(imported=1, dry_run=True)
    assert refused.imported == 0 and [e.line for e in refused.row_errors] == [3]
    assert not await CourseProgress.exists()
    assert not await AuditEvent.filter(action="importCourseProgress").exists()
    assert stored_files(data_dir) == []


async def test_imports_are_for_admins(world: World) -> None:
    for actor in (world.learner, world.manager):
        with pytest.raises(Forbidden):
            await run_import(actor, csv_text(f"{actor.email},{world.course.id},100,"))
    assert not await CourseProgress.exists()
    assert await AuditEvent.filter(action="denied:importCourseProgress").count() == 2


async def test_the_file_must_be_utf8_text(world: World, data_dir: Path) -> None:
    for data in (png(), "learner_email,course_id\ncafé,1\n".encode("latin-1")):
        with pytest.raises(UnsupportedFileType):
            await run_import(world.admin, data)
    assert stored_files(data_dir) == []


# -- scale --------------------------------------------------------------------------------


async def _scale_world(learners: int, now: datetime) -> tuple[list[int], list[int]]:
    """`learners` learners, 100 courses, every learner enrolled in a certification requiring
    the first 5 courses."""
    admin = Actor.system()
    await User.bulk_create(
        [
            User(name=f"L{i}", email=f"l{i}@example.com", role=Role.LEARNER, created_at=now)
            for i in range(learners)
        ]
    )
    learner_ids = list(await User.all().order_by("id").values_list("id", flat=True))
    await Course.bulk_create(
        [Course(name=f"C{i}", description="", published_at=now, updated_at=now) for i in range(100)]
    )
    course_ids = list(await Course.all().order_by("id").values_list("id", flat=True))
    cert = await certifications.create_certification(
        admin,
        certifications.CertificationData(
            name="Core", kind=CertificationKind.INTERNAL, type=CertificationType.PERPETUAL
        ),
    )
    await certifications.set_certification_courses(
        admin,
        cert.id,
        [certifications.CourseLink(course_id=c, mandatory=True) for c in course_ids[:5]],
    )
    await certifications.publish_certification(admin, cert.id)
    for start in range(0, learners, 500):
        await enrollments.assign_certification(
            admin, cert.id, learner_ids[start : start + 500], None
        )
    return learner_ids, course_ids


def _scale_csv(learners: int, course_ids: list[int], now: datetime) -> bytes:
    """A row per learner and course; even learners complete the 5 mandatory courses."""
    done_at = (now - timedelta(days=1)).isoformat()
    lines = [HEADER_LINE]
    for i in range(learners):
        for j, course_id in enumerate(course_ids):
            if i % 2 == 0 and j < 5:
                lines.append(f"l{i}@example.com,{gid(course_id)},,{done_at}")
            else:
                lines.append(f"l{i}@example.com,{gid(course_id)},{(i + j) % 100},")
    return ("\n".join(lines) + "\n").encode()


# Slow (left out of `make test`): the 100k rows are the point. CI runs it on both databases.
@pytest.mark.slow
async def test_a_100k_row_import(db: None, frozen_now: datetime) -> None:
    """100k rows (1000 learners x 100 courses) in one all-or-none transaction."""
    _, course_ids = await _scale_world(1000, frozen_now)
    data = _scale_csv(1000, course_ids, frozen_now)

    started = time.perf_counter()
    result = await run_import(Actor.system(), data)
    elapsed = time.perf_counter() - started

    assert result == ImportResult(imported=100_000)
    assert await CourseProgress.all().count() == 100_000
    assert await CourseProgress.filter(status=ProgressStatus.COMPLETED).count() == 500 * 5
    assert await Award.all().count() == 500
    assert await Enrollment.filter(verdict_status="COMPLETE").count() == 500
    print(f"100k-row import: {elapsed:.1f} s")


# Slow: 10k rows under tracemalloc, which multiplies the import's time. CI runs it on both.
@pytest.mark.slow
async def test_import_memory_does_not_grow_with_the_file(db: None, frozen_now: datetime) -> None:
    """Streaming: the import's own allocations stay far below what holding its rows would take
    (a parsed row and its model instance are about 1 KB: 10 MB for these 10k rows)."""
    _, course_ids = await _scale_world(100, frozen_now)
    data = _scale_csv(100, course_ids, frozen_now)

    tracemalloc.start()
    try:
        result = await run_import(Actor.system(), data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.imported == 10_000
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes for 10k rows"
    assert await Award.all().count() == 50
