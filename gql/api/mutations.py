"""The Mutation root: each field is one domain use case (one transaction), run by
`run_use_case`. An ID that does not decode reaches the domain as a pk no row has, so the
answer is the domain's own (FORBIDDEN or NOT_FOUND, the latter saying what an ID looks like)
and nothing is written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar, cast

import strawberry
from strawberry.scalars import JSON

from gql.api import admin_inputs
from gql.api.admin_inputs import changed, or_none
from gql.api.context import Info
from gql.api.enums import CertificationKind, CertificationType, Role
from gql.api.errors import UserError, language_of, user_errors
from gql.api.fields import described_mutation
from gql.api.ids import explain_undecoded, noting_undecoded_ids, pk_or_unknown
from gql.api.types import (
    Certification,
    Course,
    CourseProgress,
    Enrollment,
    Evidence,
    User,
)
from gql.domain import certifications, courses, enrollments, users
from gql.domain.access import Actor
from gql.domain.errors import DomainError
from gql.domain.records import CertificationRecord, CourseRecord, EnrollmentRecord


@strawberry.input
class RecordCourseProgressInput:
    course_id: strawberry.ID
    learner_id: strawberry.ID | None = strawberry.field(
        default=None, description="Admins only; default the viewer."
    )
    percent: int | None = strawberry.field(default=None, description="0..100")
    completed: bool | None = strawberry.field(
        default=None, description="true records a completion now (or at completedAt)."
    )
    completed_at: datetime | None = strawberry.field(
        default=None, description="Admins only: a historical completion, e.g. when importing."
    )


@strawberry.input(
    description=(
        "A course. In updateCourse the fields left out stay as they are (null clears one); "
        "see also updateCourse's changes."
    )
)
class CourseInput:
    name: str
    description: str | None = strawberry.UNSET
    duration_minutes: int | None = strawberry.UNSET
    external_id: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "The key another system knows it by, unique among courses (exact match, at most "
            "200 characters); one another course has is CONFLICT with its ID in existingId. "
            "null clears it in updateCourse."
        ),
    )


@strawberry.input(
    description=(
        "A certification. In updateCertification the optional fields left out stay as they "
        "are (null clears one; the policy changes only when named); see also "
        "updateCertification's changes."
    )
)
class CertificationInput:
    name: str
    overview: str | None = strawberry.UNSET
    kind: CertificationKind
    type_: CertificationType = strawberry.field(name="type")
    issuer: str | None = strawberry.UNSET
    validity_months: int | None = strawberry.UNSET
    recertification_window_days: int | None = strawberry.UNSET
    days_to_complete: int | None = strawberry.UNSET
    policy: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Default: mandatory-subset for INTERNAL, external-evidence for EXTERNAL.",
    )
    policy_config: JSON | None = strawberry.UNSET
    badge_name: str | None = strawberry.UNSET
    external_id: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "The key another system knows it by, unique among certifications (exact match, at "
            "most 200 characters); one another certification has is CONFLICT with its ID in "
            "existingId. null clears it in updateCertification."
        ),
    )

    def to_data(self) -> certifications.CertificationData:
        config = admin_inputs.policy_config(or_none(self.policy_config))
        return certifications.CertificationData(
            name=self.name,
            kind=self.kind,
            type=self.type_,
            overview=or_none(self.overview),
            issuer=or_none(self.issuer),
            validity_months=or_none(self.validity_months),
            recertification_window_days=or_none(self.recertification_window_days),
            days_to_complete=or_none(self.days_to_complete),
            policy=or_none(self.policy),
            policy_config=config if isinstance(config, dict) else None,
            badge_name=or_none(self.badge_name),
            external_id=or_none(self.external_id),
        )

    def to_changes(self) -> certifications.CertificationChanges:
        """The update this input names: its required fields, and the optional ones given."""
        return certifications.CertificationChanges(
            name=self.name,
            kind=self.kind,
            type=self.type_,
            overview=changed(self.overview),
            issuer=changed(self.issuer),
            validity_months=changed(self.validity_months),
            recertification_window_days=changed(self.recertification_window_days),
            days_to_complete=changed(self.days_to_complete),
            policy=changed(self.policy),
            policy_config=admin_inputs.policy_config(changed(self.policy_config)),
            badge_name=changed(self.badge_name),
            external_id=changed(self.external_id),
        )


@strawberry.input
class CertificationCourseInput:
    course_id: strawberry.ID
    mandatory: bool
    position: int | None = None


@strawberry.input
class UserInput:
    name: str
    email: str
    role: Role
    manager_id: strawberry.ID | None = None
    external_id: str | None = strawberry.field(
        default=None,
        description=(
            "The HR system's key, unique among users (exact match, at most 200 characters); "
            "one a user has already is CONFLICT with that user's ID in existingId."
        ),
    )


@strawberry.type
class UserPayload:
    user: User | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CoursePayload:
    course: Course | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CertificationPayload:
    certification: Certification | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EnrollmentPayload:
    enrollment: Enrollment | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class AssignPayload:
    enrollments: list[Enrollment] = strawberry.field(default_factory=list)
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RecordCourseProgressPayload:
    progress: CourseProgress | None = None
    enrollments: list[Enrollment] = strawberry.field(
        default_factory=list,
        description="Every enrollment of the learner that includes this course, re-evaluated.",
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class EvidencePayload:
    evidence: Evidence | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ImportRowError:
    line: int
    message: str


@strawberry.type
class ImportPayload:
    imported: int = strawberry.field(
        default=0,
        description="Rows written (with dryRun: that would be); 0 when any row has an error.",
    )
    row_errors: list[ImportRowError] = strawberry.field(
        default_factory=list,
        description="The first 100 row errors, in line order (the header is line 1).",
    )
    row_error_count: int = strawberry.field(
        default=0, description="How many rows have errors in all."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


ResultT = TypeVar("ResultT")
PayloadT = TypeVar("PayloadT")
PayloadT_co = TypeVar("PayloadT_co", covariant=True)


class FailedPayload(Protocol[PayloadT_co]):
    """A payload type, built from its errors alone (its other fields default to empty)."""

    def __call__(self, *, errors: list[UserError]) -> PayloadT_co: ...


async def run_use_case(
    info: Info,
    payload: FailedPayload[PayloadT],
    use_case: Callable[[Actor], Awaitable[ResultT]],
    shape: Callable[[ResultT], PayloadT | Awaitable[PayloadT]],
) -> PayloadT:
    """Run one use case as the viewer and shape its result into the mutation's payload.

    The loaders are reset first (the use case writes). A `DomainError` raised by the use case,
    or while building its arguments, becomes `payload(errors=...)`; what `shape` raises stays
    a GraphQL error.
    """
    ctx = info.context
    ctx.reset_loaders()
    with noting_undecoded_ids() as undecoded:
        try:
            result = await use_case(ctx.viewer)
        except DomainError as exc:
            return payload(errors=user_errors(explain_undecoded(exc, undecoded), language_of(ctx)))
    shaped = shape(result)
    if isinstance(shaped, Awaitable):
        return cast(PayloadT, await shaped)
    return shaped


def _optional_pk(
    global_id: strawberry.ID | None, type_name: str, field: Sequence[str]
) -> int | None:
    return None if global_id is None else pk_or_unknown(global_id, type_name, field)


async def _enrollments(info: Info, rows: Sequence[EnrollmentRecord]) -> list[Enrollment]:
    return [Enrollment.of(view) for view in await info.context.loaders.views_of(rows)]


async def _enrollment_payload(info: Info, row: EnrollmentRecord) -> EnrollmentPayload:
    (enrollment,) = await _enrollments(info, [row])
    return EnrollmentPayload(enrollment=enrollment)


async def _assign_payload(info: Info, rows: Sequence[EnrollmentRecord]) -> AssignPayload:
    return AssignPayload(enrollments=await _enrollments(info, rows))


async def _progress_payload(
    info: Info, recorded: enrollments.ProgressRecorded
) -> RecordCourseProgressPayload:
    loaders = info.context.loaders
    loaders.prime_views(recorded.views)
    course_id = recorded.progress.course_id
    # Every enrollment the progress counts for holds the course among its links; only a
    # course no enrollment counts is read again.
    course_row = next(
        (
            link.course
            for view in recorded.views
            for link in view.links
            if link.course_id == course_id
        ),
        None,
    ) or await loaders.courses.load(course_id)
    if course_row is None:  # every course is visible to every user
        raise LookupError(f"course {course_id} not visible")
    return RecordCourseProgressPayload(
        progress=CourseProgress.of_row(recorded.progress, Course.of(course_row)),
        # the write already built each enrollment's read model: no second read
        enrollments=[Enrollment.of(view) for view in recorded.views],
    )


def _certification_payload(row: CertificationRecord) -> CertificationPayload:
    return CertificationPayload(certification=Certification.of(row))


def _course_payload(row: CourseRecord) -> CoursePayload:
    return CoursePayload(course=Course.of(row))


@strawberry.type
class Mutation:
    @described_mutation(
        "Enrol the viewer (self-enrolment into a PUBLISHED certification) if needed and "
        "mark it started."
    )
    async def start_certification(
        self, info: Info, certification_id: strawberry.ID
    ) -> EnrollmentPayload | None:
        return await run_use_case(
            info,
            EnrollmentPayload,
            lambda viewer: enrollments.start_certification(
                viewer,
                pk_or_unknown(certification_id, "Certification", ["certificationId"]),
                plugins=info.context.plugins,
                time_zone=info.context.settings.zone,
            ),
            lambda row: _enrollment_payload(info, row),
        )

    @strawberry.mutation
    async def record_course_progress(
        self, info: Info, input: RecordCourseProgressInput
    ) -> RecordCourseProgressPayload | None:
        return await run_use_case(
            info,
            RecordCourseProgressPayload,
            lambda viewer: enrollments.record_course_progress(
                viewer,
                course_id=pk_or_unknown(input.course_id, "Course", ["input", "courseId"]),
                learner_id=_optional_pk(input.learner_id, "User", ["input", "learnerId"]),
                percent=input.percent,
                completed=input.completed,
                completed_at=input.completed_at,
                plugins=info.context.plugins,
                time_zone=info.context.settings.zone,
            ),
            lambda recorded: _progress_payload(info, recorded),
        )

    @strawberry.mutation
    async def create_user(self, info: Info, input: UserInput) -> UserPayload | None:
        return await run_use_case(
            info,
            UserPayload,
            lambda viewer: users.create_user(
                viewer,
                name=input.name,
                email=input.email,
                role=input.role,
                manager_id=_optional_pk(input.manager_id, "User", ["managerId"]),
                external_id=input.external_id,
            ),
            lambda row: UserPayload(user=User.of(row)),
        )

    @strawberry.mutation
    async def create_course(self, info: Info, input: CourseInput) -> CoursePayload | None:
        return await run_use_case(
            info,
            CoursePayload,
            lambda viewer: courses.create_course(
                viewer,
                name=input.name,
                description=or_none(input.description),
                duration_minutes=or_none(input.duration_minutes),
                external_id=or_none(input.external_id),
            ),
            _course_payload,
        )

    @described_mutation(
        "Change a course: only the fields given change (null clears one). Give `input` (name "
        "required) or `changes` (every field optional), not both."
    )
    async def update_course(
        self,
        info: Info,
        id: strawberry.ID,
        input: CourseInput | None = None,
        changes: admin_inputs.CourseChanges | None = None,
    ) -> CoursePayload | None:

        async def update(viewer: Actor) -> CourseRecord:
            given = admin_inputs.one_of(input, changes)
            return await admin_inputs.under(
                "input" if input is not None else "changes",
                courses.update_course(
                    viewer,
                    pk_or_unknown(id, "Course", ["id"]),
                    name=changed(given.name),
                    description=changed(given.description),
                    duration_minutes=changed(given.duration_minutes),
                    external_id=changed(given.external_id),
                ),
            )

        return await run_use_case(info, CoursePayload, update, _course_payload)

    @strawberry.mutation
    async def create_certification(
        self, info: Info, input: CertificationInput
    ) -> CertificationPayload | None:
        return await run_use_case(
            info,
            CertificationPayload,
            lambda viewer: certifications.create_certification(
                viewer,
                input.to_data(),
                organisation=info.context.settings.organisation_name,
                plugins=info.context.plugins,
            ),
            _certification_payload,
        )

    @described_mutation(
        "Change a certification: only the fields given change (null clears one); the policy "
        "changes only when named. Give `input` (name, kind and type required) or `changes` "
        "(every field optional), not both. A change of its rules re-evaluates its enrollments."
    )
    async def update_certification(
        self,
        info: Info,
        id: strawberry.ID,
        input: CertificationInput | None = None,
        changes: admin_inputs.CertificationChanges | None = None,
    ) -> CertificationPayload | None:

        async def update(viewer: Actor) -> CertificationRecord:
            given = admin_inputs.one_of(input, changes)
            root = "input" if input is not None else "changes"
            return await admin_inputs.under(
                root,
                certifications.update_certification(
                    viewer,
                    pk_or_unknown(id, "Certification", ["id"]),
                    given.to_changes(),
                    organisation=info.context.settings.organisation_name,
                    plugins=info.context.plugins,
                    time_zone=info.context.settings.zone,
                ),
            )

        return await run_use_case(info, CertificationPayload, update, _certification_payload)

    @strawberry.mutation
    async def set_certification_courses(
        self, info: Info, certification_id: strawberry.ID, courses: list[CertificationCourseInput]
    ) -> CertificationPayload | None:
        # decoded inside the use case, so that run_use_case notes an ID that does not decode
        def links() -> list[certifications.CourseLink]:
            return [
                certifications.CourseLink(
                    course_id=pk_or_unknown(
                        link.course_id, "Course", ["courses", str(i), "courseId"]
                    ),
                    mandatory=link.mandatory,
                    position=link.position,
                )
                for i, link in enumerate(courses)
            ]

        return await run_use_case(
            info,
            CertificationPayload,
            lambda viewer: certifications.set_certification_courses(
                viewer,
                pk_or_unknown(certification_id, "Certification", ["certificationId"]),
                links(),
                plugins=info.context.plugins,
                time_zone=info.context.settings.zone,
            ),
            _certification_payload,
        )

    @strawberry.mutation
    async def publish_certification(
        self, info: Info, id: strawberry.ID
    ) -> CertificationPayload | None:
        return await run_use_case(
            info,
            CertificationPayload,
            lambda viewer: certifications.publish_certification(
                viewer, pk_or_unknown(id, "Certification", ["id"]), plugins=info.context.plugins
            ),
            _certification_payload,
        )

    @strawberry.mutation
    async def retire_certification(
        self, info: Info, id: strawberry.ID
    ) -> CertificationPayload | None:
        return await run_use_case(
            info,
            CertificationPayload,
            lambda viewer: certifications.retire_certification(
                viewer, pk_or_unknown(id, "Certification", ["id"]), plugins=info.context.plugins
            ),
            _certification_payload,
        )

    @described_mutation(
        "Assign a PUBLISHED certification (admins): enrol learners, reopen ended enrollments, "
        "or change due dates. dueAt applies to learnerIds and to each assignment without a "
        "dueAt of its own; null or left out keeps an enrolled learner's due date (a new one "
        "gets the certification's daysToComplete). An assignment's explicit null dueAt clears "
        "it. Every bad ID is reported at its index as sent, and then nothing is written."
    )
    async def assign_certification(
        self,
        info: Info,
        certification_id: strawberry.ID,
        learner_ids: list[strawberry.ID] | None = None,
        due_at: datetime | None = None,
        assignments: list[admin_inputs.AssignmentInput] | None = None,
    ) -> AssignPayload | None:
        return await run_use_case(
            info,
            AssignPayload,
            lambda viewer: enrollments.assign_certification(
                viewer,
                pk_or_unknown(certification_id, "Certification", ["certificationId"]),
                [
                    pk_or_unknown(learner_id, "User", ["learnerIds", str(i)])
                    for i, learner_id in enumerate(learner_ids or [])
                ],
                due_at,
                assignments=admin_inputs.assignments_of(assignments),
                plugins=info.context.plugins,
                time_zone=info.context.settings.zone,
            ),
            lambda rows: _assign_payload(info, rows),
        )


__all__ = [
    "CertificationPayload",
    "EvidencePayload",
    "ImportPayload",
    "ImportRowError",
    "Mutation",
    "run_use_case",
]
