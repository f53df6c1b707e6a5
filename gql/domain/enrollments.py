"""Enrollments: assignment, self-enrolment (Start), course progress, and the learner's list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from gql import clock
from gql.domain.access import Actor, learner_scope, may_see_learner, note_hidden, require_admin
from gql.domain.errors import Forbidden, InvalidInput, NotAllowed, NotFound
from gql.domain.evaluation import evaluate_enrollments, lock_learners
from gql.domain.pages import CertificationSort, Page, check_first, decode_cursor, encode_cursor
from gql.domain.status import EnrollmentView, current_cycle, load_context
from gql.domain.unit import Unit, unit_of_work
from gql.store import listing
from gql.store.db import retrying
from gql.store.models import (
    Award,
    Certification,
    CertificationKind,
    CertificationState,
    Course,
    CourseProgress,
    Enrollment,
    EnrollmentOrigin,
    ProgressStatus,
    User,
)
from gql.store.reads import progress_row

MAX_ASSIGN = 500
# The columns a progress report changes (progress_after).
PROGRESS_FIELDS = (
    "percent",
    "status",
    "started_at",
    "completed_at",
    "attempt_started_at",
    "updated_at",
)


@dataclass(slots=True)
class ProgressRecorded:
    progress: CourseProgress
    enrollments: list[Enrollment]
    # the read model of each, as re-evaluated by the write: callers need not read it again
    views: list[EnrollmentView]


def new_enrollment(
    learner_id: int,
    cert: Certification,
    origin: EnrollmentOrigin,
    now: datetime,
    assigned_by: int | None,
    due_at: datetime | None,
) -> Enrollment:
    if due_at is None and cert.days_to_complete:
        due_at = now + timedelta(days=cert.days_to_complete)
    return Enrollment(
        learner_id=learner_id,
        certification_id=cert.id,
        origin=origin,
        assigned_by_id=assigned_by,
        enrolled_at=now,
        started_at=None,
        due_at=due_at,
        verdict_status="ENROLLED",
        verdict_progress=0.0,
        verdict_explanation="",
        evaluated_cycle=1,
        updated_at=now,
    )


async def enrol(
    learner_id: int,
    cert: Certification,
    origin: EnrollmentOrigin,
    unit: Unit,
    assigned_by: int | None,
    due_at: datetime | None,
) -> Enrollment:
    """Write a new enrollment and emit its `enrolled` event (after the unit commits)."""
    enrollment = new_enrollment(learner_id, cert, origin, unit.now, assigned_by, due_at)
    await enrollment.save()
    unit.emit(
        "enrolled",
        enrollment_id=enrollment.id,
        learner_id=learner_id,
        certification_id=cert.id,
        origin=str(origin),
    )
    return enrollment


async def assign_certification(
    actor: Actor, certification_id: int, learner_ids: list[int], due_at: datetime | None
) -> list[Enrollment]:
    """Enrol learners (or update the due date of existing enrollments); admins only."""
    await require_admin(actor, "assignCertification", "Certification", certification_id)
    ids = list(dict.fromkeys(learner_ids))
    if not ids:
        raise InvalidInput("name at least one learner", field=["learnerIds"])
    if len(ids) > MAX_ASSIGN:
        raise InvalidInput(f"at most {MAX_ASSIGN} learners at once", field=["learnerIds"])
    if due_at is not None and due_at.tzinfo is None:
        raise InvalidInput("dueAt needs a UTC offset", field=["dueAt"])

    async def run() -> list[Enrollment]:
        async with unit_of_work(actor.user_id) as unit:
            cert = await Certification.get_or_none(id=certification_id)
            if cert is None:
                raise NotFound("no such certification", field=["certificationId"])
            if cert.state != CertificationState.PUBLISHED:
                raise NotAllowed(
                    f"only a PUBLISHED certification can be assigned; this one is {cert.state}"
                )
            found = set(cast(list[int], await User.filter(id__in=ids).values_list("id", flat=True)))
            for i, learner_id in enumerate(ids):
                if learner_id not in found:
                    raise NotFound("no such user", field=["learnerIds", str(i)])
            await lock_learners(ids)
            existing = {
                e.learner_id: e
                for e in await Enrollment.filter(certification_id=cert.id, learner_id__in=ids)
            }
            result: list[Enrollment] = []
            for learner_id in ids:
                enrollment = existing.get(learner_id)
                if enrollment is None:
                    enrollment = await enrol(
                        learner_id, cert, EnrollmentOrigin.ASSIGNED, unit, actor.user_id, due_at
                    )
                    await unit.audit(
                        "assignCertification",
                        "Enrollment",
                        enrollment.id,
                        after={
                            "learnerId": learner_id,
                            "certificationId": cert.id,
                            "dueAt": _iso(enrollment.due_at),
                        },
                    )
                else:
                    before = {"origin": str(enrollment.origin), "dueAt": _iso(enrollment.due_at)}
                    enrollment.origin = EnrollmentOrigin.ASSIGNED
                    enrollment.assigned_by_id = actor.user_id
                    if due_at is not None:
                        enrollment.due_at = due_at
                    enrollment.updated_at = unit.now
                    await enrollment.save(
                        update_fields=["origin", "assigned_by_id", "due_at", "updated_at"]
                    )
                    await unit.audit(
                        "assignCertification",
                        "Enrollment",
                        enrollment.id,
                        before=before,
                        after={"origin": "ASSIGNED", "dueAt": _iso(enrollment.due_at)},
                    )
                result.append(enrollment)
            await evaluate_enrollments(result, unit)
            return result

    return await retrying(run)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def start_certification(actor: Actor, certification_id: int) -> Enrollment:
    """Self-enrol into a PUBLISHED certification if needed and mark it started (once)."""
    if actor.user_id is None:
        raise InvalidInput("only a user can start a certification")
    learner_id = actor.user_id

    async def run() -> Enrollment:
        async with unit_of_work(learner_id) as unit:
            await lock_learners([learner_id])
            enrollment = await Enrollment.get_or_none(
                learner_id=learner_id, certification_id=certification_id
            )
            cert = await Certification.get_or_none(id=certification_id)
            if cert is None or (enrollment is None and cert.state != CertificationState.PUBLISHED):
                # DRAFT and RETIRED ones are invisible to a learner not enrolled in them
                raise NotFound("no such certification", field=["certificationId"])
            enrollment = await enrol_and_start(learner_id, cert, enrollment, unit)
            await evaluate_enrollments([enrollment], unit)
            return enrollment

    return await retrying(run)


async def enrol_and_start(
    learner_id: int, cert: Certification, enrollment: Enrollment | None, unit: Unit
) -> Enrollment:
    """Self-enrol the learner if `enrollment` is None, and mark it started once."""
    if enrollment is None:
        enrollment = await enrol(learner_id, cert, EnrollmentOrigin.SELF, unit, None, None)
    if enrollment.started_at is None:
        enrollment.started_at = unit.now
        await enrollment.save(update_fields=["started_at"])
        unit.emit(
            "started", enrollment_id=enrollment.id, learner_id=learner_id, certification_id=cert.id
        )
    return enrollment


def _validate_progress(
    actor: Actor,
    learner_id: int | None,
    percent: int | None,
    completed: bool | None,
    completed_at: datetime | None,
) -> None:
    if percent is not None and not 0 <= percent <= 100:
        raise InvalidInput("percent must be between 0 and 100", field=["input", "percent"])
    if completed_at is not None:
        if completed is False:
            raise InvalidInput(
                "completedAt records a completion: drop completed: false",
                field=["input", "completedAt"],
            )
        if completed_at.tzinfo is None:
            raise InvalidInput("completedAt needs a UTC offset", field=["input", "completedAt"])
        if completed_at > clock.now():
            raise InvalidInput(
                "completedAt must not be in the future", field=["input", "completedAt"]
            )
    if percent is None and not completed and completed_at is None:
        raise InvalidInput("give percent, completed: true or completedAt", field=["input"])


async def record_course_progress(
    actor: Actor,
    *,
    course_id: int,
    learner_id: int | None = None,
    percent: int | None = None,
    completed: bool | None = None,
    completed_at: datetime | None = None,
) -> ProgressRecorded:
    """Record a learner's progress on a course and re-evaluate every enrollment it counts for.

    Percent never goes down within an attempt; percent 100 or `completed` records a
    completion (now, or at `completed_at` for admins). Learners record only their own.
    """
    target = actor.user_id if learner_id is None else learner_id
    if not actor.is_admin:
        if learner_id is not None and learner_id != actor.user_id:
            await note_hidden(actor, "recordCourseProgress", "User", learner_id)
            raise Forbidden("you may record only your own progress")
        if completed_at is not None:
            await note_hidden(actor, "recordCourseProgress.completedAt", "Course", course_id)
            raise Forbidden("only admins may back-date a completion")
    if target is None:
        raise InvalidInput("learnerId is required", field=["input", "learnerId"])
    _validate_progress(actor, learner_id, percent, completed, completed_at)
    completing = bool(completed) or completed_at is not None or percent == 100

    async def run() -> ProgressRecorded:
        async with unit_of_work(actor.user_id) as unit:
            if target not in await lock_learners([target]):
                raise NotFound("no such learner", field=["input", "learnerId"])
            enrollments = list(
                await Enrollment.filter(
                    learner_id=target, certification__course_links__course_id=course_id
                )
                .distinct()
                .select_related("certification")  # read once: cycles here, evaluation below
                .order_by("id")
            )
            # An enrollment found through the course's link proves the course exists (the
            # link's foreign key), so only a course no enrollment counts needs a look.
            if not enrollments and not await Course.filter(id=course_id).exists():
                raise NotFound("no such course", field=["input", "courseId"])
            # The evaluation's reads, made before the write: the open cycles need the awards,
            # and the learner's progress on the course is among the progress they read. Only
            # the written row changes what they hold.
            context = await load_context(enrollments) if enrollments else None
            if context is None:
                existing = await CourseProgress.get_or_none(learner_id=target, course_id=course_id)
            else:
                found = context.progress.get((target, course_id))
                existing = None if found is None else CourseProgress(**found._asdict())
            row = await _apply_progress(
                existing,
                target,
                course_id,
                percent,
                completing,
                completed_at or unit.now,
                _open_cycle_starts(enrollments, context.awards if context else {}, unit.now),
                unit,
            )
            if context is not None:
                context.progress[(target, course_id)] = progress_row(row)
            unit.emit(
                "progress_recorded",
                learner_id=target,
                course_id=course_id,
                percent=row.percent,
                completed=row.status == ProgressStatus.COMPLETED,
            )
            if actor.user_id != target:
                await unit.audit(
                    "recordCourseProgress",
                    "CourseProgress",
                    row.id,
                    after={
                        "learnerId": target,
                        "courseId": course_id,
                        "percent": row.percent,
                        "completedAt": _iso(row.completed_at),
                    },
                )
            views = await evaluate_enrollments(enrollments, unit, context)
            return ProgressRecorded(row, enrollments, views)

    return await retrying(run)


def _open_cycle_starts(
    enrollments: list[Enrollment], awards: dict[int, list[Award]], now: datetime
) -> list[datetime]:
    """The starts of the recertification cycles now open among these enrollments (their
    certification joined; `awards` by enrollment id, in cycle order)."""
    starts = []
    for e in enrollments:
        cycle = current_cycle(e.certification, awards.get(e.id, []), now)
        if cycle.started_at is not None:
            starts.append(cycle.started_at)
    return starts


def progress_after(
    row: CourseProgress | None,
    *,
    learner_id: int,
    course_id: int,
    percent: int | None,
    completing: bool,
    when: datetime,
    cycle_starts: list[datetime],
    now: datetime,
) -> CourseProgress:
    """The progress row after one report, unsaved: `row` changed in place, or a new row.

    Percent never goes down within an attempt; a completion records the latest completion
    time; a report on a course whose completion or unfinished attempt predates a now-open
    cycle starts a new attempt (otherwise a late, lower report is ignored). Shared by
    recording and importing.
    """
    if row is None:
        started = min(when, now)
        return CourseProgress(
            learner_id=learner_id,
            course_id=course_id,
            percent=100 if completing else (percent or 0),
            status=ProgressStatus.COMPLETED
            if completing
            else (ProgressStatus.IN_PROGRESS if percent else ProgressStatus.NOT_STARTED),
            started_at=started,
            attempt_started_at=started,
            completed_at=when if completing else None,
            updated_at=now,
        )
    if completing:
        row.completed_at = max(row.completed_at, when) if row.completed_at else when
        row.percent, row.status = 100, ProgressStatus.COMPLETED
        if row.started_at is None or when < row.started_at:
            row.started_at = when
    elif row.status == ProgressStatus.COMPLETED:
        if row.completed_at is not None and any(row.completed_at < s for s in cycle_starts):
            row.percent = percent or 0
            row.status = ProgressStatus.IN_PROGRESS if row.percent else ProgressStatus.NOT_STARTED
            row.attempt_started_at = now
    elif _attempt_predates(row, cycle_starts):
        # Unfinished before a now-open cycle began, the attempt counts as not started there
        # (status.course_view), so this report starts a new one rather than topping it up.
        row.percent = percent or 0
        row.status = ProgressStatus.IN_PROGRESS if row.percent else ProgressStatus.NOT_STARTED
        row.attempt_started_at = now
    else:
        row.percent = max(row.percent, percent or 0)
        if row.percent > 0:
            row.status = ProgressStatus.IN_PROGRESS
        if row.started_at is None:
            row.started_at = now
            row.attempt_started_at = now
    row.updated_at = now
    return row


def _attempt_predates(row: CourseProgress, cycle_starts: list[datetime]) -> bool:
    attempt_at = row.attempt_started_at or row.started_at
    return attempt_at is not None and any(attempt_at < start for start in cycle_starts)


async def _apply_progress(
    row: CourseProgress | None,
    learner_id: int,
    course_id: int,
    percent: int | None,
    completing: bool,
    when: datetime,
    cycle_starts: list[datetime],
    unit: Unit,
) -> CourseProgress:
    row = progress_after(
        row,
        learner_id=learner_id,
        course_id=course_id,
        percent=percent,
        completing=completing,
        when=when,
        cycle_starts=cycle_starts,
        now=unit.now,
    )
    if row.id is None:
        await row.save()
    else:  # an existing row, perhaps built from the read model's: updated by id
        await row.save(update_fields=PROGRESS_FIELDS)
    return row


async def enrollments_by_ids(actor: Actor, ids: list[int]) -> dict[int, Enrollment]:
    """Visible enrollments (own; a manager's reports'; all for admins), certification joined."""
    if not ids:
        return {}
    rows = await Enrollment.filter(learner_scope(actor), id__in=ids).select_related("certification")
    return {row.id: row for row in rows}


async def get_enrollment(actor: Actor, enrollment_id: int) -> Enrollment | None:
    found = (await enrollments_by_ids(actor, [enrollment_id])).get(enrollment_id)
    if found is None and await Enrollment.filter(id=enrollment_id).exists():
        await note_hidden(actor, "enrollment", "Enrollment", enrollment_id)
    return found


async def viewer_enrollments(actor: Actor, certification_ids: list[int]) -> dict[int, Enrollment]:
    if actor.user_id is None or not certification_ids:
        return {}
    rows = await Enrollment.filter(learner_id=actor.user_id, certification_id__in=certification_ids)
    return {row.certification_id: row for row in rows}


async def list_learner_enrollments(
    actor: Actor,
    learner_id: int,
    *,
    sort: CertificationSort = CertificationSort.RELEVANCE,
    pending: bool = False,
    kind: CertificationKind | None = None,
    first: int | None = 20,
    after: str | None = None,
) -> Page[Enrollment]:
    """A learner's enrollments in the order of domain.md; empty for a learner one may not see."""
    size = check_first(first)
    sort = CertificationSort(sort)
    keys = listing.enrollment_keys(sort)
    kind_key = f"enrollments:{sort}"
    cursor = decode_cursor(after, kind_key, len(keys))
    if learner_id != actor.user_id:  # one's own list needs no lookup (saves a query per page)
        learner = await User.get_or_none(id=learner_id)
        if learner is None or not may_see_learner(actor, learner):
            return Page([], [], False, cursor is not None, 0)
    rows, total = await listing.enrollment_page(
        learner_id=learner_id,
        keys=keys,
        pending=pending,
        kind=str(kind) if kind else None,
        now=clock.now(),
        after=cursor,
        limit=size + 1,
    )
    has_next = len(rows) > size
    rows = rows[:size]
    by_id = {
        e.id: e
        for e in await Enrollment.filter(id__in=[r["id"] for r in rows]).select_related(
            "certification"
        )
    }
    items = [by_id[r["id"]] for r in rows]
    cursors = [encode_cursor(kind_key, listing.key_values(r, keys)) for r in rows]
    return Page(items, cursors, has_next, cursor is not None, total)
