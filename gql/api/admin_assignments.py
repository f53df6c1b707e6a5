"""Admin mutations of the assignment and course lifecycle (docs/api.md, "Assignments" and
"Courses"): unassignCertification, retireCourse, deleteCourse. assignCertification,
updateCourse and updateCertification stay in gql.api.mutations."""

from __future__ import annotations

from collections.abc import Sequence

import strawberry

from gql.api.context import Info
from gql.api.errors import UserError
from gql.api.fields import described_mutation
from gql.api.ids import encode_id, pk_or_unknown
from gql.api.mutations import CoursePayload, run_use_case
from gql.api.types import Course, Enrollment
from gql.domain import courses, enrollments
from gql.domain.records import EnrollmentRecord


@strawberry.type
class UnassignPayload:
    enrollments: list[Enrollment] = strawberry.field(
        default_factory=list,
        description="The ended enrollments, in the order the learners were named (endedAt set).",
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeleteCoursePayload:
    deleted_id: strawberry.ID | None = strawberry.field(
        default=None, description="The ID the deleted course had; null when refused."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


async def _unassign_payload(info: Info, rows: Sequence[EnrollmentRecord]) -> UnassignPayload:
    views = await info.context.loaders.views_of(rows)
    return UnassignPayload(enrollments=[Enrollment.of(view) for view in views])


@strawberry.type
class AssignmentMutations:
    @described_mutation(
        "End learners' enrollments in a certification (admins): each keeps its history, "
        "progress and awards but leaves lists and reports and is no longer evaluated; "
        "assigning again reopens it. Audited, with an `unassigned` event each. One already "
        "ended is answered as it is. Every bad ID (no such user, not enrolled) is reported at "
        "its index as sent, and then nothing ends."
    )
    async def unassign_certification(
        self, info: Info, certification_id: strawberry.ID, learner_ids: list[strawberry.ID]
    ) -> UnassignPayload | None:
        return await run_use_case(
            info,
            UnassignPayload,
            lambda viewer: enrollments.unassign_certification(
                viewer,
                pk_or_unknown(certification_id, "Certification", ["certificationId"]),
                [
                    pk_or_unknown(learner_id, "User", ["learnerIds", str(i)])
                    for i, learner_id in enumerate(learner_ids)
                ],
                plugins=info.context.plugins,
            ),
            lambda rows: _unassign_payload(info, rows),
        )

    @described_mutation(
        "Retire a course (admins): no certification takes it on from now on; those that have "
        "it keep it, progress on it still records, and `courses` lists it only with "
        "includeRetired. Retiring a retired course changes nothing."
    )
    async def retire_course(self, info: Info, id: strawberry.ID) -> CoursePayload | None:
        return await run_use_case(
            info,
            CoursePayload,
            lambda viewer: courses.retire_course(viewer, pk_or_unknown(id, "Course", ["id"])),
            lambda row: CoursePayload(course=Course.of(row)),
        )

    @described_mutation(
        "Delete a course nothing refers to (admins): NOT_ALLOWED while a certification has it "
        "or a learner has progress on it (retire it instead). Audited."
    )
    async def delete_course(self, info: Info, id: strawberry.ID) -> DeleteCoursePayload | None:
        return await run_use_case(
            info,
            DeleteCoursePayload,
            lambda viewer: courses.delete_course(viewer, pk_or_unknown(id, "Course", ["id"])),
            lambda pk: DeleteCoursePayload(deleted_id=strawberry.ID(encode_id("Course", pk))),
        )
