"""The enrollment read model's bulk reads, as immutable records (gql.store.records)."""

from __future__ import annotations

from typing import Any

from tortoise.expressions import Q, Subquery

from gql.store.models import (
    Award,
    CertificationCourse,
    CourseProgress,
    Evidence,
    User,
)
from gql.store.records import (
    AwardRecord,
    CourseLinkRecord,
    CourseRecord,
    EvidenceRecord,
    LearnerRecord,
    ProgressRecord,
)

_LINK_COLUMNS = (
    "id",
    "certification_id",
    "course_id",
    "mandatory",
    "position",
    "course__id",
    "course__name",
    "course__description",
    "course__duration_minutes",
    "course__published_at",
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


async def course_links(certification_ids: list[int]) -> list[CourseLinkRecord]:
    """The course links of these certifications with their courses, ordered by certification,
    position and id. One statement."""
    if not certification_ids:
        return []
    rows = (
        await CertificationCourse.filter(certification_id__in=certification_ids)
        .order_by("certification_id", "position", "id")
        .values_list(*_LINK_COLUMNS)
    )
    return [CourseLinkRecord(r[0], r[1], r[2], r[3], r[4], CourseRecord(*r[5:10])) for r in rows]


async def course_progress(learner_ids: list[int], course_ids: list[int]) -> list[ProgressRecord]:
    """Each of these learners' progress on each of these courses, where there is any. One
    statement (none when either list is empty)."""
    if not learner_ids or not course_ids:
        return []
    rows = await CourseProgress.filter(
        learner_id__in=learner_ids, course_id__in=course_ids
    ).values_list(*_PROGRESS_COLUMNS)
    return [progress_record(r) for r in rows]


async def progress_on_certifications(
    learner_ids: list[int], certification_ids: list[int]
) -> list[ProgressRecord]:
    """Each of these learners' progress on the courses of these certifications, where there
    is any. One statement (none when either list is empty): the courses are a subquery, so
    its parameters are the certifications rather than their many courses."""
    if not learner_ids or not certification_ids:
        return []
    courses = CertificationCourse.filter(certification_id__in=certification_ids).values("course_id")
    rows = await CourseProgress.filter(
        learner_id__in=learner_ids, course_id__in=Subquery(courses)
    ).values_list(*_PROGRESS_COLUMNS)
    return [progress_record(r) for r in rows]


def progress_record(r: tuple[Any, ...]) -> ProgressRecord:
    # values_list has converted each column already (the status to ProgressStatus)
    return ProgressRecord(*r)


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


async def awards(enrollment_ids: list[int]) -> list[AwardRecord]:
    """These enrollments' awards, by enrollment and cycle. One statement (none for no ids)."""
    if not enrollment_ids:
        return []
    rows = (
        await Award.filter(enrollment_id__in=enrollment_ids)
        .order_by("enrollment_id", "cycle")
        .values_list("id", "enrollment_id", "cycle", "awarded_at", "expires_at")
    )
    return [AwardRecord(*r) for r in rows]


_EVIDENCE_COLUMNS = (
    "id",
    "enrollment_id",
    "filename",
    "content_type",
    "size_bytes",
    "sha256",
    "status",
    "submitted_at",
    "completed_on",
    "note",
    "reviewed_at",
    "review_comment",
    "reviewed_by_id",
)


def evidence_record(r: tuple[Any, ...]) -> EvidenceRecord:
    return EvidenceRecord(*r)


async def evidence_of(enrollment_ids: list[int]) -> list[EvidenceRecord]:
    """These enrollments' evidence, in submission order. One statement (none for no ids)."""
    if not enrollment_ids:
        return []
    rows = (
        await Evidence.filter(enrollment_id__in=enrollment_ids)
        .order_by("submitted_at", "id")
        .values_list(*_EVIDENCE_COLUMNS)
    )
    return [evidence_record(r) for r in rows]
