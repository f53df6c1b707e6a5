"""The read model's bulk reads, as immutable records (gql.store.records): each one statement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.expressions import F, Q, Subquery
from tortoise.queryset import ValuesListQuery

from gql.store.models import (
    Award,
    Certification,
    CertificationCourse,
    Course,
    CourseProgress,
    Enrollment,
    Evidence,
    User,
)
from gql.store.prepared import prepared_values
from gql.store.records import (
    AWARD_COLUMNS,
    CERTIFICATION_COLUMNS,
    ENROLLMENT_WITH_CERTIFICATION_COLUMNS,
    EVIDENCE_COLUMNS,
    AwardRecord,
    CertificationRecord,
    CourseRecord,
    EnrollmentRecord,
    EvidenceRecord,
    LearnerRecord,
    ProgressRecord,
    award_record,
    enrollment_record_of,
    enrollment_with_certification,
    record_of,
)

_PROGRESS_COLUMNS = (
    "id",
    "learner_id",
    "course_id",
    "percent",
    "status",
    "started_at",
    "completed_at",
    "attempt_started_at",
    "updated_at",
)


async def course_progress(learner_ids: list[int], course_ids: list[int]) -> list[ProgressRecord]:
    """Each of these learners' progress on each of these courses, where there is any. One
    statement (none when either list is empty)."""
    if not learner_ids or not course_ids:
        return []
    rows = await CourseProgress.filter(
        learner_id__in=learner_ids, course_id__in=course_ids
    ).values_list(*_PROGRESS_COLUMNS)
    return [progress_record(r) for r in rows]


@prepared_values(ProgressRecord)
def _progress_on_certifications(
    learner_ids: list[int], certification_ids: list[int]
) -> ValuesListQuery[Any]:
    courses = CertificationCourse.filter(certification_id__in=certification_ids).values("course_id")
    return CourseProgress.filter(
        learner_id__in=learner_ids, course_id__in=Subquery(courses)
    ).values_list(*_PROGRESS_COLUMNS)


async def progress_on_certifications(
    learner_ids: list[int], certification_ids: list[int]
) -> list[ProgressRecord]:
    """Each of these learners' progress on the courses of these certifications, where there
    is any. One statement (none when either list is empty): the courses are a subquery, so
    its parameters are the certifications rather than their many courses."""
    if not learner_ids or not certification_ids:
        return []
    return await _progress_on_certifications(learner_ids, certification_ids)


def progress_record(r: tuple[Any, ...]) -> ProgressRecord:
    # values_list has converted each column already (the status to ProgressStatus)
    return ProgressRecord(*r)


async def course(course_id: int) -> CourseRecord | None:
    found = await Course.filter(id=course_id).first()
    return None if found is None else record_of(CourseRecord, found)


async def progress_of(learner_id: int, course_id: int) -> ProgressRecord | None:
    rows = (
        await CourseProgress.filter(learner_id=learner_id, course_id=course_id)
        .limit(1)
        .values_list(*_PROGRESS_COLUMNS)
    )
    return progress_record(rows[0]) if rows else None


async def progress_of_pairs(
    pairs: dict[int, list[int]], group_size: int
) -> dict[tuple[int, int], ProgressRecord]:
    """The progress rows of exactly these (learner: courses) pairs, not the learners x courses
    product; `group_size` learners per statement keeps the SQL expression shallow (SQLite
    limits its depth)."""
    learners = sorted(pairs)
    found: dict[tuple[int, int], ProgressRecord] = {}
    for start in range(0, len(learners), group_size):
        group = [
            Q(learner_id=learner_id, course_id__in=pairs[learner_id])
            for learner_id in learners[start : start + group_size]
        ]
        for r in await CourseProgress.filter(Q(*group, join_type=Q.OR)).values_list(
            *_PROGRESS_COLUMNS
        ):
            row = progress_record(r)
            found[(row.learner_id, row.course_id)] = row
    return found


async def learners(user_ids: list[int]) -> list[LearnerRecord]:
    """These users (those that exist) as the access rules read them. One statement."""
    rows = await User.filter(id__in=user_ids).values_list("id", "manager_id")
    return [LearnerRecord(r[0], r[1]) for r in rows]


@prepared_values(lambda *r: award_record(r))
def _awards(enrollment_ids: list[int]) -> ValuesListQuery[Any]:
    return (
        Award.filter(enrollment_id__in=enrollment_ids)
        .order_by("enrollment_id", "cycle")
        .values_list(*AWARD_COLUMNS)
    )


async def awards(enrollment_ids: list[int]) -> list[AwardRecord]:
    """These enrollments' awards, by enrollment and cycle. One statement (none for no ids)."""
    if not enrollment_ids:
        return []
    return await _awards(enrollment_ids)


def evidence_record(r: tuple[Any, ...]) -> EvidenceRecord:
    return EvidenceRecord(*r)


@prepared_values(EvidenceRecord)
def _evidence_of(enrollment_ids: list[int]) -> ValuesListQuery[Any]:
    return (
        Evidence.filter(enrollment_id__in=enrollment_ids)
        .order_by("submitted_at", "id")
        .values_list(*EVIDENCE_COLUMNS)
    )


async def evidence_of(enrollment_ids: list[int]) -> list[EvidenceRecord]:
    """These enrollments' evidence, in submission order. One statement (none for no ids)."""
    if not enrollment_ids:
        return []
    return await _evidence_of(enrollment_ids)


async def enrollments(*where: Q, **filters: Any) -> list[EnrollmentRecord]:
    """The enrollments matching these filters, each with its certification (joined), by id.
    Read as models: for a few rows with a joined table Tortoise builds them faster than it
    converts the same columns through values_list."""
    found = (
        await Enrollment.filter(*where, **filters).select_related("certification").order_by("id")
    )
    return [enrollment_record_of(e, e.certification) for e in found]


@prepared_values(CertificationRecord)
def _certifications(ids: list[int]) -> ValuesListQuery[Any]:
    return Certification.filter(id__in=ids).values_list(*CERTIFICATION_COLUMNS)


async def certifications(ids: list[int]) -> dict[int, CertificationRecord]:
    """These certifications (those that exist), by id."""
    if not ids:
        return {}
    return {r.id: r for r in await _certifications(ids)}


async def evidence_where(*where: Q, **filters: Any) -> list[EvidenceRecord]:
    """The evidence matching these filters, by id."""
    found = await Evidence.filter(*where, **filters).order_by("id")
    return [record_of(EvidenceRecord, e) for e in found]


async def evidence_with_learner(evidence_id: int) -> tuple[EvidenceRecord, LearnerRecord] | None:
    """An evidence row and its learner, or None."""
    rows = (
        await Evidence.filter(id=evidence_id)
        .limit(1)
        .values_list(
            *EVIDENCE_COLUMNS, "enrollment__learner__id", "enrollment__learner__manager_id"
        )
    )
    if not rows:
        return None
    r = rows[0]
    return evidence_record(r[:-2]), LearnerRecord(r[-2], r[-1])


async def unnoted_expired_awards(
    now: datetime, after_id: int, limit: int
) -> list[tuple[AwardRecord, int, int, datetime | None]]:
    """Expired newest awards whose expiry nobody has noted, after `after_id` in id order: each
    with its enrollment's learner and certification ids and due date."""
    rows = (
        await Award.filter(
            expiry_noted_at=None,
            expires_at__lte=now,
            id__gt=after_id,
            # the enrollment's newest award: one superseded by a renewal never "expired"
            enrollment__last_award_cycle=F("cycle"),
            # an ended (unassigned) enrollment is not followed up; reopening it is
            enrollment__ended_at=None,
        )
        .order_by("id")
        .limit(limit)
        .values_list(
            *AWARD_COLUMNS,
            "enrollment__learner_id",
            "enrollment__certification_id",
            "enrollment__due_at",
        )
    )
    n = len(AWARD_COLUMNS)
    return [(award_record(r[:n]), r[n], r[n + 1], r[n + 2]) for r in rows]


@prepared_values(enrollment_with_certification)
def _enrollments_counting(learner_id: int, course_id: int) -> ValuesListQuery[Any]:
    including = CertificationCourse.filter(course_id=course_id).values("certification_id")
    return (
        Enrollment.filter(
            learner_id=learner_id, certification_id__in=Subquery(including), ended_at=None
        )
        .order_by("id")
        .values_list(*ENROLLMENT_WITH_CERTIFICATION_COLUMNS)
    )


async def enrollments_counting(learner_id: int, course_id: int) -> list[EnrollmentRecord]:
    """The learner's enrollments in certifications that include this course (not ended ones:
    progress does not count toward an enrollment that was unassigned), by id."""
    return await _enrollments_counting(learner_id, course_id)
