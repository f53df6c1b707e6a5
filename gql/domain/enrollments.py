"""Enrollments: assignment, self-enrolment (Start), course progress, and the learner's list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import cast

from gql import clock
from gql.domain.access import (
    Actor,
    assign_refusal,
    check_progress_recorder,
    enrol_refusal,
    learner_scope,
    note_hidden,
    open_to_learner,
    require_admin,
    visible_learners,
)
from gql.domain.changes import UNCHANGED, Unchanged, given, or_current
from gql.domain.errors import DomainError, DomainErrors, InvalidInput, NotAllowed, NotFound, t
from gql.domain.evaluation import evaluate_enrollments, lock_learners
from gql.domain.pages import FIRST_PAGE, CertificationSort, Page, PageRequest
from gql.domain.rules import open_cycle_starts, progress_after
from gql.domain.status import EnrollmentStatus, EnrollmentView, load_context
from gql.domain.unit import Unit, unit_of_work
from gql.events import Enrolled, Started, Unassigned
from gql.events import ProgressRecorded as ProgressRecordedEvent
from gql.plugins import PluginHost
from gql.store import reads, sql, writes
from gql.store.db import retrying
from gql.store.models import Enrollment, User
from gql.store.records import CertificationRecord, EnrollmentRecord, ProgressRecord
from gql.vocabulary import (
    CertificationKind,
    EnrollmentOrigin,
    ProgressStatus,
)

__all__ = ["progress_after"]

MAX_ASSIGN = 500


@dataclass(slots=True)
class ProgressRecorded:
    progress: ProgressRecord
    enrollments: list[EnrollmentRecord]
    # the read model of each, as re-evaluated by the write: callers need not read it again
    views: list[EnrollmentView]


def new_enrollment(
    learner_id: int,
    cert: CertificationRecord,
    origin: EnrollmentOrigin,
    now: datetime,
    assigned_by: int | None,
    due_at: datetime | None,
    *,
    default_due: bool = True,
) -> EnrollmentRecord:
    """An enrollment not yet written (id 0); with no `due_at`, due after the certification's
    daysToComplete unless `default_due` is False."""
    if due_at is None and default_due and cert.days_to_complete:
        due_at = now + timedelta(days=cert.days_to_complete)
    return EnrollmentRecord(
        id=0,
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
        last_awarded_at=None,
        last_expires_at=None,
        last_award_cycle=None,
        window_opens_at=None,
        updated_at=now,
        certification=cert,
    )


async def enrol(
    learner_id: int,
    cert: CertificationRecord,
    origin: EnrollmentOrigin,
    unit: Unit,
    assigned_by: int | None,
    due_at: datetime | None,
    *,
    default_due: bool = True,
) -> EnrollmentRecord:
    """Write a new enrollment and emit its `enrolled` event (after the unit commits)."""
    enrollment = await writes.insert_enrollment(
        new_enrollment(
            learner_id, cert, origin, unit.now, assigned_by, due_at, default_due=default_due
        )
    )
    unit.emit(
        Enrolled,
        learner_id=learner_id,
        certification=cert,
        enrollment_id=enrollment.id,
        due_at=enrollment.due_at,
        origin=origin.value,
        people={"assigned_by": assigned_by},
    )
    return enrollment


@dataclass(frozen=True, slots=True)
class Assignment:
    """One learner to assign. `due_at`: UNCHANGED keeps an active enrollment's due date (a new
    or reopened one gets the certification's default); None means no due date (it clears
    one); a datetime sets it."""

    learner_id: int
    due_at: datetime | Unchanged | None = UNCHANGED


@dataclass(frozen=True, slots=True)
class _Named:
    """A learner as the request names them: where (its field path) and with what due date."""

    learner_id: int
    due_at: datetime | Unchanged | None
    field: tuple[str, ...]


def _named_learners(
    learner_ids: Sequence[int], due_at: datetime | None, assignments: Sequence[Assignment]
) -> tuple[list[_Named], list[DomainError]]:
    """Every learner the request names, at the index it was sent at; the due dates' errors."""
    problems: list[DomainError] = []
    if due_at is not None and due_at.tzinfo is None:
        problems.append(InvalidInput(t("dueAt needs a UTC offset"), field=["dueAt"]))
    default: datetime | Unchanged | None = UNCHANGED if due_at is None else due_at
    named = [_Named(pk, default, ("learnerIds", str(i))) for i, pk in enumerate(learner_ids)]
    for i, assignment in enumerate(assignments):
        due = assignment.due_at if given(assignment.due_at) else default
        if isinstance(due, datetime) and due.tzinfo is None:
            problems.append(
                InvalidInput(t("dueAt needs a UTC offset"), field=["assignments", str(i), "dueAt"])
            )
        named.append(_Named(assignment.learner_id, due, ("assignments", str(i), "learnerId")))
    return named, problems


def _check_count(pks: Sequence[int], field: str) -> None:
    if not pks:
        raise InvalidInput(t("name at least one learner"), field=[field])
    if len(set(pks)) > MAX_ASSIGN:
        raise InvalidInput(
            t("at most {MAX_ASSIGN} learners at once", MAX_ASSIGN=MAX_ASSIGN), field=[field]
        )


def _raise_all(problems: Sequence[DomainError], named: Sequence[_Named]) -> None:
    """Raise the problems found, each at its own field, in the order of the request (those
    about no learner first, then by the position of the learner they are about); nothing
    when there are none."""
    position = {n.field[:2]: i for i, n in enumerate(named)}
    ordered = sorted(problems, key=lambda p: position.get((p.field or ())[:2], -1))
    if len(ordered) == 1:
        raise ordered[0]
    if ordered:
        raise DomainErrors(ordered)


async def _learner_problems(named: Sequence[_Named], verb: str) -> list[DomainError]:
    """NOT_FOUND for each position naming a user that does not exist (an ID that does not
    decode names none), NOT_ALLOWED for a deactivated one: each at its index as sent."""
    rows = await User.filter(id__in=sorted({n.learner_id for n in named})).values_list(
        "id", "deactivated_at"
    )
    deactivated = {pk: at for pk, at in cast(list[tuple[int, datetime | None]], rows)}
    problems: list[DomainError] = []
    for n in named:
        if n.learner_id not in deactivated:
            problems.append(NotFound(t("no such user"), field=n.field))
        elif deactivated[n.learner_id] is not None and verb == "assign":
            problems.append(
                NotAllowed(t("this user is deactivated: reactivate them first"), field=n.field)
            )
    return problems


def _first_of_each(named: Sequence[_Named]) -> tuple[list[_Named], list[DomainError]]:
    """Each learner once, where first named. A learner named again in `assignments` is
    INVALID_INPUT there (its due date would be ambiguous); again in `learnerIds`, ignored."""
    first: dict[int, _Named] = {}
    problems: list[DomainError] = []
    for n in named:
        earlier = first.get(n.learner_id)
        if earlier is None:
            first[n.learner_id] = n
        elif n.field[0] == "assignments":
            problems.append(
                InvalidInput(
                    t(
                        "this learner is already named at {place}",
                        place=".".join(earlier.field[:2]),
                    ),
                    field=n.field,
                )
            )
    return list(first.values()), problems


def _due(
    spec: datetime | Unchanged | None, cert: CertificationRecord, now: datetime
) -> datetime | None:
    """A new (or reopened) enrollment's due date: as given, else the certification's default."""
    if isinstance(spec, Unchanged):
        return now + timedelta(days=cert.days_to_complete) if cert.days_to_complete else None
    return spec


async def assign_certification(
    actor: Actor,
    certification_id: int,
    learner_ids: Sequence[int],
    due_at: datetime | None,
    *,
    assignments: Sequence[Assignment] = (),
    plugins: PluginHost | None = None,
    time_zone: tzinfo = UTC,
) -> list[EnrollmentRecord]:
    """Enrol learners, reopen their ended enrollments, or change the due dates of existing
    ones; admins only. `due_at` applies to `learner_ids` and to each assignment that names
    no due date of its own. Every bad ID is reported at its index as sent; nothing is
    written unless every learner can be assigned (docs/domain.md, "Assignments").
    `time_zone`: the organisation's (Settings.zone), for the days of any award written."""
    await require_admin(actor, "assignCertification", "Certification", certification_id)
    named, problems = _named_learners(learner_ids, due_at, assignments)
    _check_count([n.learner_id for n in named], "learnerIds")

    async def run() -> list[EnrollmentRecord]:
        async with unit_of_work(actor, plugins, time_zone=time_zone) as unit:
            cert = (await reads.certifications([certification_id])).get(certification_id)
            found = list(problems)
            if cert is None:
                found.insert(
                    0,
                    NotFound(t("no such certification"), field=["certificationId"]),
                )
            elif (refused := assign_refusal(cert)) is not None:
                found.insert(0, refused)
            learner_problems = await _learner_problems(named, "assign")
            found += learner_problems
            bad = {p.field for p in learner_problems}
            learners, duplicates = _first_of_each([n for n in named if n.field not in bad])
            _raise_all(found + duplicates, named)
            assert cert is not None
            ids = [n.learner_id for n in learners]
            await lock_learners(ids)
            existing = {
                e.learner_id: e
                for e in await reads.enrollments(certification_id=cert.id, learner_id__in=ids)
            }
            result = [
                await _assign_one(unit, actor, cert, n, existing.get(n.learner_id))
                for n in learners
            ]
            return [view.enrollment for view in await evaluate_enrollments(result, unit)]

    return await retrying(run)


async def _assign_one(
    unit: Unit,
    actor: Actor,
    cert: CertificationRecord,
    named: _Named,
    enrollment: EnrollmentRecord | None,
) -> EnrollmentRecord:
    if enrollment is None:
        enrollment = await enrol(
            named.learner_id,
            cert,
            EnrollmentOrigin.ASSIGNED,
            unit,
            actor.user_id,
            _due(named.due_at, cert, unit.now),
            default_due=False,
        )
        await unit.audit(
            "assignCertification",
            "Enrollment",
            enrollment.id,
            after={
                "learnerId": named.learner_id,
                "certificationId": cert.id,
                "dueAt": _iso(enrollment.due_at),
            },
        )
        return enrollment
    if enrollment.ended_at is not None:
        return await _reopen(
            enrollment, cert, EnrollmentOrigin.ASSIGNED, unit, actor.user_id, named.due_at
        )
    before = {"origin": str(enrollment.origin), "dueAt": _iso(enrollment.due_at)}
    enrollment = await writes.update_enrollment(
        enrollment,
        origin=EnrollmentOrigin.ASSIGNED,
        assigned_by_id=actor.user_id,
        due_at=or_current(named.due_at, enrollment.due_at),
        updated_at=unit.now,
    )
    await unit.audit(
        "assignCertification",
        "Enrollment",
        enrollment.id,
        before=before,
        after={"origin": "ASSIGNED", "dueAt": _iso(enrollment.due_at)},
    )
    return enrollment


async def _reopen(
    enrollment: EnrollmentRecord,
    cert: CertificationRecord,
    origin: EnrollmentOrigin,
    unit: Unit,
    assigned_by: int | None,
    due_at: datetime | Unchanged | None,
) -> EnrollmentRecord:
    """Reopen an ended enrollment as a new one of `origin` would start (its history, progress
    and awards were kept): audited, and an `enrolled` event again."""
    before = {
        "endedAt": _iso(enrollment.ended_at),
        "origin": str(enrollment.origin),
        "dueAt": _iso(enrollment.due_at),
    }
    enrollment = await writes.update_enrollment(
        enrollment,
        ended_at=None,
        origin=origin,
        assigned_by_id=assigned_by,
        due_at=_due(due_at, cert, unit.now),
        updated_at=unit.now,
    )
    action = "assignCertification" if origin == EnrollmentOrigin.ASSIGNED else "startCertification"
    await unit.audit(
        action,
        "Enrollment",
        enrollment.id,
        before=before,
        after={"endedAt": None, "origin": str(origin), "dueAt": _iso(enrollment.due_at)},
    )
    unit.emit(
        Enrolled,
        learner_id=enrollment.learner_id,
        certification=cert,
        enrollment_id=enrollment.id,
        due_at=enrollment.due_at,
        origin=origin.value,
        people={"assigned_by": assigned_by},
    )
    return enrollment


async def unassign_certification(
    actor: Actor,
    certification_id: int,
    learner_ids: Sequence[int],
    *,
    plugins: PluginHost | None = None,
) -> list[EnrollmentRecord]:
    """End these learners' enrollments in a certification; admins only (as assigning).

    The enrollment stays, with its history, progress and awards, but leaves the learner's
    list and the reports, and is no longer evaluated; assigning again reopens it. Each is
    audited and emits `unassigned`; one already ended is answered as it is. Every bad ID
    (no such user, not enrolled) is reported at its index as sent, and then nothing ends.
    """
    await require_admin(actor, "unassignCertification", "Certification", certification_id)
    named = [_Named(pk, UNCHANGED, ("learnerIds", str(i))) for i, pk in enumerate(learner_ids)]
    _check_count(learner_ids, "learnerIds")

    async def run() -> list[EnrollmentRecord]:
        async with unit_of_work(actor, plugins) as unit:
            cert = (await reads.certifications([certification_id])).get(certification_id)
            if cert is None:
                raise NotFound(t("no such certification"), field=["certificationId"])
            problems = await _learner_problems(named, "unassign")
            bad = {p.field for p in problems}
            learners, _ = _first_of_each([n for n in named if n.field not in bad])
            ids = [n.learner_id for n in learners]
            await lock_learners(ids)
            existing = {
                e.learner_id: e
                for e in await reads.enrollments(certification_id=cert.id, learner_id__in=ids)
            }
            problems += [
                NotFound(t("this learner is not enrolled in this certification"), field=n.field)
                for n in named
                if n.field not in bad and n.learner_id not in existing
            ]
            _raise_all(problems, named)
            result = []
            for n in learners:
                enrollment = existing[n.learner_id]
                if enrollment.ended_at is None:
                    enrollment = await _end(enrollment, cert, unit, actor)
                result.append(enrollment)
            return result

    return await retrying(run)


async def _end(
    enrollment: EnrollmentRecord, cert: CertificationRecord, unit: Unit, actor: Actor
) -> EnrollmentRecord:
    ended = await writes.update_enrollment(enrollment, ended_at=unit.now, updated_at=unit.now)
    await unit.audit(
        "unassignCertification",
        "Enrollment",
        enrollment.id,
        before={
            "endedAt": None,
            "origin": str(enrollment.origin),
            "dueAt": _iso(enrollment.due_at),
        },
        after={"endedAt": unit.now.isoformat()},
    )
    unit.emit(
        Unassigned,
        learner_id=enrollment.learner_id,
        certification=cert,
        enrollment_id=enrollment.id,
        due_at=enrollment.due_at,
        people={"unassigned_by": actor.user_id},
    )
    return ended


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def start_certification(
    actor: Actor,
    certification_id: int,
    *,
    plugins: PluginHost | None = None,
    time_zone: tzinfo = UTC,
) -> EnrollmentRecord:
    """Self-enrol into a PUBLISHED certification if needed and mark it started (once)."""
    if actor.user_id is None:
        raise InvalidInput(t("only a user can start a certification"))
    learner_id = actor.user_id

    async def run() -> EnrollmentRecord:
        async with unit_of_work(actor, plugins, time_zone=time_zone) as unit:
            await lock_learners([learner_id])
            cert, enrollment = await enrollment_of(learner_id, certification_id)
            if cert is None or not open_to_learner(cert.state, enrollment is not None):
                raise NotFound(t("no such certification"), field=["certificationId"])
            enrollment = await enrol_and_start(learner_id, cert, enrollment, unit)
            [view] = await evaluate_enrollments([enrollment], unit)
            return view.enrollment

    return await retrying(run)


async def enrollment_of(
    learner_id: int, certification_id: int
) -> tuple[CertificationRecord | None, EnrollmentRecord | None]:
    """The certification, and the learner's enrollment in it (None: not enrolled)."""
    found = await reads.enrollments(learner_id=learner_id, certification_id=certification_id)
    if found:
        return found[0].certification, found[0]
    return (await reads.certifications([certification_id])).get(certification_id), None


async def enrol_and_start(
    learner_id: int, cert: CertificationRecord, enrollment: EnrollmentRecord | None, unit: Unit
) -> EnrollmentRecord:
    """Self-enrol the learner if `enrollment` is None, and mark it started once. An ended
    (unassigned) enrollment is reopened as a self-enrolment, in a PUBLISHED certification
    only."""
    refused = enrol_refusal(cert, enrollment)
    if refused is not None:
        raise refused
    if enrollment is None:
        enrollment = await enrol(learner_id, cert, EnrollmentOrigin.SELF, unit, None, None)
    elif enrollment.ended_at is not None:
        enrollment = await _reopen(enrollment, cert, EnrollmentOrigin.SELF, unit, None, UNCHANGED)
    if enrollment.started_at is None:
        enrollment = await writes.update_enrollment(enrollment, started_at=unit.now)
        unit.emit(
            Started,
            learner_id=learner_id,
            certification=cert,
            enrollment_id=enrollment.id,
            due_at=enrollment.due_at,
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
        raise InvalidInput(t("percent must be between 0 and 100"), field=["input", "percent"])
    if completed_at is not None:
        if completed is False:
            raise InvalidInput(
                t("completedAt records a completion: drop completed: false"),
                field=["input", "completedAt"],
            )
        if completed_at.tzinfo is None:
            raise InvalidInput(t("completedAt needs a UTC offset"), field=["input", "completedAt"])
        if completed_at > clock.now():
            raise InvalidInput(
                t("completedAt must not be in the future"), field=["input", "completedAt"]
            )
    if percent is None and not completed and completed_at is None:
        raise InvalidInput(t("give percent, completed: true or completedAt"), field=["input"])


async def record_course_progress(
    actor: Actor,
    *,
    course_id: int,
    learner_id: int | None = None,
    percent: int | None = None,
    completed: bool | None = None,
    completed_at: datetime | None = None,
    plugins: PluginHost | None = None,
    time_zone: tzinfo = UTC,
) -> ProgressRecorded:
    """Record a learner's progress on a course and re-evaluate every enrollment it counts for.

    Percent never goes down within an attempt; percent 100 or `completed` records a
    completion (now, or at `completed_at` for admins). Learners record only their own.
    """
    target = actor.user_id if learner_id is None else learner_id
    await check_progress_recorder(actor, learner_id, course_id, completed_at)
    if target is None:
        raise InvalidInput(t("learnerId is required"), field=["input", "learnerId"])
    _validate_progress(actor, learner_id, percent, completed, completed_at)
    completing = bool(completed) or completed_at is not None or percent == 100

    async def run() -> ProgressRecorded:
        async with unit_of_work(actor, plugins, time_zone=time_zone) as unit:
            if target not in await lock_learners([target]):
                raise NotFound(t("no such learner"), field=["input", "learnerId"])
            enrollments = await reads.enrollments_counting(target, course_id)
            # An enrollment found through the course's link proves the course exists (the
            # link's foreign key), so only a course no enrollment counts needs a look.
            course = None if enrollments else await reads.course(course_id)
            if not enrollments and course is None:
                raise NotFound(t("no such course"), field=["input", "courseId"])
            # The evaluation's reads, made before the write: the open cycles need the awards,
            # and the learner's progress on the course is among the progress they read. Only
            # the written row changes what they hold.
            context = await load_context(enrollments, unit.plugins) if enrollments else None
            if context is None:
                existing = await reads.progress_of(target, course_id)
            else:
                existing = context.progress.get((target, course_id))
            starts = open_cycle_starts(
                (
                    (context.certifications[e.certification_id], context.awards.get(e.id, []))
                    for e in enrollments
                )
                if context
                else (),
                unit.now,
            )
            row = await writes.save_progress(
                progress_after(
                    existing,
                    learner_id=target,
                    course_id=course_id,
                    percent=percent,
                    completing=completing,
                    when=completed_at or unit.now,
                    cycle_starts=starts,
                    now=unit.now,
                )
            )
            if context is not None:
                context.progress[(target, course_id)] = row
            if context is not None:  # the links carry the course (and its name)
                course = next(
                    link.course
                    for links in context.links.values()
                    for link in links
                    if link.course_id == course_id
                )
            unit.emit(
                ProgressRecordedEvent,
                learner_id=target,
                course=course or course_id,
                percent=row.percent,
                completed=row.status == ProgressStatus.COMPLETED,
                completed_at=row.completed_at,
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
            return ProgressRecorded(row, [view.enrollment for view in views], views)

    return await retrying(run)


async def enrollments_by_ids(actor: Actor, ids: list[int]) -> dict[int, EnrollmentRecord]:
    """Visible enrollments (own; a manager's reports'; all for admins)."""
    if not ids:
        return {}
    return {row.id: row for row in await reads.enrollments(learner_scope(actor), id__in=ids)}


async def get_enrollment(actor: Actor, enrollment_id: int) -> EnrollmentRecord | None:
    found = (await enrollments_by_ids(actor, [enrollment_id])).get(enrollment_id)
    if found is None and await Enrollment.filter(id=enrollment_id).exists():
        await note_hidden(actor, "enrollment", "Enrollment", enrollment_id)
    return found


async def viewer_enrollments(
    actor: Actor, certification_ids: list[int], *, include_ended: bool = False
) -> dict[int, EnrollmentRecord]:
    """The actor's own enrollment in each of these certifications; ended ones only when
    asked (the rules of starting and submitting read those too)."""
    if actor.user_id is None or not certification_ids:
        return {}
    ongoing = {} if include_ended else {"ended_at": None}
    rows = await reads.enrollments(
        learner_id=actor.user_id, certification_id__in=certification_ids, **ongoing
    )
    return {row.certification_id: row for row in rows}


async def list_learner_enrollments(
    actor: Actor,
    learner_id: int,
    *,
    sort: CertificationSort = CertificationSort.RELEVANCE,
    pending: bool = False,
    kind: CertificationKind | None = None,
    status: Sequence[EnrollmentStatus] | None = None,
    overdue: bool | None = None,
    paging: PageRequest = FIRST_PAGE,
) -> Page[EnrollmentRecord]:
    """A learner's enrollments in the order of domain.md; empty for a learner one may not see."""
    pages = await list_learners_enrollments(
        actor,
        [learner_id],
        sort=sort,
        pending=pending,
        kind=kind,
        status=status,
        overdue=overdue,
        paging=paging,
    )
    return pages[learner_id]


async def list_learners_enrollments(
    actor: Actor,
    learner_ids: list[int],
    *,
    sort: CertificationSort = CertificationSort.RELEVANCE,
    pending: bool = False,
    kind: CertificationKind | None = None,
    status: Sequence[EnrollmentStatus] | None = None,
    overdue: bool | None = None,
    paging: PageRequest = FIRST_PAGE,
) -> dict[int, Page[EnrollmentRecord]]:
    """list_learner_enrollments for several learners at once, in a fixed number of queries
    (a page per learner: the cursor applies to each). `status`: only these derived statuses;
    `overdue`: only overdue ones (True) or only the others (False)."""
    sort = CertificationSort(sort)
    keys = sql.enrollment_keys(sort)
    window = paging.window(f"enrollments:{sort}", [key.type for key in keys])
    if status is not None and not status:
        raise InvalidInput(
            t("status must name at least one EnrollmentStatus (leave it out for any status)"),
            field=["status"],
        )
    ids = list(dict.fromkeys(learner_ids))
    visible = sorted(await visible_learners(actor, ids))
    rows, totals = (
        await sql.enrollment_pages(
            learner_ids=visible,
            keys=window.order(keys),
            pending=pending,
            kind=str(kind) if kind else None,
            now=clock.now(),
            after=window.cursor,
            limit=window.limit,
            statuses=None if status is None else [str(s) for s in status],
            overdue=overdue,
        )
        if visible
        else ({}, {})
    )
    return {
        learner_id: window.page(
            rows.get(learner_id, []),
            totals.get(learner_id, 0),
            item=sql.enrollment_record,
            key=lambda r: sql.key_values(r, keys),
        )
        for learner_id in ids
    }
