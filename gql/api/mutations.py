"""The Mutation root: each field is one domain use case (one transaction).

Expected failures (`DomainError`) come back as the payload's `errors`; access failures
(UNAUTHENTICATED, FORBIDDEN) propagate as GraphQL errors. IDs that do not decode reach the
domain as a pk no row has, so the answer is the domain's own (FORBIDDEN for a learner on an
admin mutation, NOT_FOUND otherwise) and nothing is written.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from gql.api.context import Info
from gql.api.enums import CertificationKind, CertificationType, Role
from gql.api.errors import UserError, user_errors
from gql.api.fields import described_mutation
from gql.api.ids import pk_or_unknown
from gql.api.types import (
    Certification,
    Course,
    CourseProgress,
    Enrollment,
    Evidence,
    User,
)
from gql.domain import certifications, courses, enrollments, users
from gql.domain.errors import DomainError, PolicyConfigInvalid
from gql.store import models


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


@strawberry.input
class CourseInput:
    name: str
    description: str | None = None
    duration_minutes: int | None = None


@strawberry.input
class CertificationInput:
    name: str
    overview: str | None = None
    kind: CertificationKind
    type_: CertificationType = strawberry.field(name="type")
    issuer: str | None = None
    validity_months: int | None = None
    recertification_window_days: int | None = None
    days_to_complete: int | None = None
    policy: str | None = strawberry.field(
        default=None,
        description="Default: mandatory-subset for INTERNAL, external-evidence for EXTERNAL.",
    )
    policy_config: JSON | None = None
    badge_name: str | None = None

    def to_data(self) -> certifications.CertificationData:
        config = self.policy_config
        if config is not None and not isinstance(config, dict):
            raise PolicyConfigInvalid(
                "policyConfig must be a JSON object", field=["input", "policyConfig"]
            )
        return certifications.CertificationData(
            name=self.name,
            kind=self.kind,
            type=self.type_,
            overview=self.overview,
            issuer=self.issuer,
            validity_months=self.validity_months,
            recertification_window_days=self.recertification_window_days,
            days_to_complete=self.days_to_complete,
            policy=self.policy,
            policy_config=config,
            badge_name=self.badge_name,
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


@strawberry.type
class UserPayload:
    user: User | None
    errors: list[UserError]


@strawberry.type
class ApiTokenPayload:
    token: str | None = strawberry.field(description="The plain token: shown once, never stored.")
    errors: list[UserError]


@strawberry.type
class CoursePayload:
    course: Course | None
    errors: list[UserError]


@strawberry.type
class CertificationPayload:
    certification: Certification | None
    errors: list[UserError]


@strawberry.type
class EnrollmentPayload:
    enrollment: Enrollment | None
    errors: list[UserError]


@strawberry.type
class AssignPayload:
    enrollments: list[Enrollment]
    errors: list[UserError]


@strawberry.type
class RecordCourseProgressPayload:
    progress: CourseProgress | None
    enrollments: list[Enrollment] = strawberry.field(
        description="Every enrollment of the learner that includes this course, re-evaluated."
    )
    errors: list[UserError]


@strawberry.type
class EvidencePayload:
    evidence: Evidence | None
    errors: list[UserError]


@strawberry.type
class ImportRowError:
    line: int
    message: str


@strawberry.type
class ImportPayload:
    imported: int = strawberry.field(
        description="Rows written (with dryRun: that would be); 0 when any row has an error."
    )
    row_errors: list[ImportRowError] = strawberry.field(
        description="The first 100 row errors, in line order (the header is line 1)."
    )
    row_error_count: int = strawberry.field(description="How many rows have errors in all.")
    errors: list[UserError]


async def _enrollments(info: Info, rows: list[models.Enrollment]) -> list[Enrollment]:
    return [Enrollment.of(view) for view in await info.context.loaders.views_of(rows)]


def _certification_payload(row: models.Certification) -> CertificationPayload:
    return CertificationPayload(certification=Certification.of(row), errors=[])


@strawberry.type
class Mutation:
    @described_mutation(
        "Enrol the viewer (self-enrolment into a PUBLISHED certification) if needed and "
        "mark it started."
    )
    async def start_certification(
        self, info: Info, certification_id: strawberry.ID
    ) -> EnrollmentPayload:
        ctx = info.context
        ctx.reset_loaders()
        try:
            row = await enrollments.start_certification(
                ctx.viewer, pk_or_unknown(certification_id, "Certification")
            )
        except DomainError as exc:
            return EnrollmentPayload(enrollment=None, errors=user_errors(exc))
        (enrollment,) = await _enrollments(info, [row])
        return EnrollmentPayload(enrollment=enrollment, errors=[])

    @strawberry.mutation
    async def record_course_progress(
        self, info: Info, input: RecordCourseProgressInput
    ) -> RecordCourseProgressPayload:
        ctx = info.context
        ctx.reset_loaders()
        try:
            learner_id = (
                None if input.learner_id is None else pk_or_unknown(input.learner_id, "User")
            )
            recorded = await enrollments.record_course_progress(
                ctx.viewer,
                course_id=pk_or_unknown(input.course_id, "Course"),
                learner_id=learner_id,
                percent=input.percent,
                completed=input.completed,
                completed_at=input.completed_at,
            )
        except DomainError as exc:
            return RecordCourseProgressPayload(
                progress=None, enrollments=[], errors=user_errors(exc)
            )
        ctx.loaders.prime_views(recorded.views)
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
        ) or await ctx.loaders.courses.load(course_id)
        if course_row is None:  # every course is visible to every user
            raise LookupError(f"course {course_id} not visible")
        return RecordCourseProgressPayload(
            progress=CourseProgress.of_row(recorded.progress, Course.of(course_row)),
            # the write already built each enrollment's read model: no second read
            enrollments=[Enrollment.of(view) for view in recorded.views],
            errors=[],
        )

    @strawberry.mutation
    async def create_user(self, info: Info, input: UserInput) -> UserPayload:
        ctx = info.context
        ctx.reset_loaders()
        try:
            manager_id = (
                None if input.manager_id is None else pk_or_unknown(input.manager_id, "User")
            )
            row = await users.create_user(
                ctx.viewer,
                name=input.name,
                email=input.email,
                role=input.role,
                manager_id=manager_id,
            )
        except DomainError as exc:
            return UserPayload(user=None, errors=user_errors(exc))
        return UserPayload(user=User.of(row), errors=[])

    @strawberry.mutation
    async def create_api_token(self, info: Info, user_id: strawberry.ID) -> ApiTokenPayload:
        ctx = info.context
        ctx.reset_loaders()
        try:
            token = await users.create_api_token(ctx.viewer, pk_or_unknown(user_id, "User"))
        except DomainError as exc:
            return ApiTokenPayload(token=None, errors=user_errors(exc))
        return ApiTokenPayload(token=token, errors=[])

    @strawberry.mutation
    async def create_course(self, info: Info, input: CourseInput) -> CoursePayload:
        ctx = info.context
        ctx.reset_loaders()
        try:
            row = await courses.create_course(
                ctx.viewer,
                name=input.name,
                description=input.description,
                duration_minutes=input.duration_minutes,
            )
        except DomainError as exc:
            return CoursePayload(course=None, errors=user_errors(exc))
        return CoursePayload(course=Course.of(row), errors=[])

    @strawberry.mutation
    async def update_course(
        self, info: Info, id: strawberry.ID, input: CourseInput
    ) -> CoursePayload:
        ctx = info.context
        ctx.reset_loaders()
        try:
            row = await courses.update_course(
                ctx.viewer,
                pk_or_unknown(id, "Course"),
                name=input.name,
                description=input.description,
                duration_minutes=input.duration_minutes,
            )
        except DomainError as exc:
            return CoursePayload(course=None, errors=user_errors(exc))
        return CoursePayload(course=Course.of(row), errors=[])

    @strawberry.mutation
    async def create_certification(
        self, info: Info, input: CertificationInput
    ) -> CertificationPayload:
        ctx = info.context
        ctx.reset_loaders()
        try:
            row = await certifications.create_certification(ctx.viewer, input.to_data())
        except DomainError as exc:
            return CertificationPayload(certification=None, errors=user_errors(exc))
        return _certification_payload(row)

    @strawberry.mutation
    async def update_certification(
        self, info: Info, id: strawberry.ID, input: CertificationInput
    ) -> CertificationPayload:
        ctx = info.context
        ctx.reset_loaders()
        try:
            row = await certifications.update_certification(
                ctx.viewer, pk_or_unknown(id, "Certification"), input.to_data()
            )
        except DomainError as exc:
            return CertificationPayload(certification=None, errors=user_errors(exc))
        return _certification_payload(row)

    @strawberry.mutation
    async def set_certification_courses(
        self, info: Info, certification_id: strawberry.ID, courses: list[CertificationCourseInput]
    ) -> CertificationPayload:
        ctx = info.context
        ctx.reset_loaders()
        links = [
            certifications.CourseLink(
                course_id=pk_or_unknown(link.course_id, "Course"),
                mandatory=link.mandatory,
                position=link.position,
            )
            for link in courses
        ]
        try:
            row = await certifications.set_certification_courses(
                ctx.viewer, pk_or_unknown(certification_id, "Certification"), links
            )
        except DomainError as exc:
            return CertificationPayload(certification=None, errors=user_errors(exc))
        return _certification_payload(row)

    @strawberry.mutation
    async def publish_certification(self, info: Info, id: strawberry.ID) -> CertificationPayload:
        ctx = info.context
        ctx.reset_loaders()
        try:
            row = await certifications.publish_certification(
                ctx.viewer, pk_or_unknown(id, "Certification")
            )
        except DomainError as exc:
            return CertificationPayload(certification=None, errors=user_errors(exc))
        return _certification_payload(row)

    @strawberry.mutation
    async def retire_certification(self, info: Info, id: strawberry.ID) -> CertificationPayload:
        ctx = info.context
        ctx.reset_loaders()
        try:
            row = await certifications.retire_certification(
                ctx.viewer, pk_or_unknown(id, "Certification")
            )
        except DomainError as exc:
            return CertificationPayload(certification=None, errors=user_errors(exc))
        return _certification_payload(row)

    @strawberry.mutation
    async def assign_certification(
        self,
        info: Info,
        certification_id: strawberry.ID,
        learner_ids: list[strawberry.ID],
        due_at: datetime | None = None,
    ) -> AssignPayload:
        ctx = info.context
        ctx.reset_loaders()
        try:
            rows = await enrollments.assign_certification(
                ctx.viewer,
                pk_or_unknown(certification_id, "Certification"),
                [pk_or_unknown(learner_id, "User") for learner_id in learner_ids],
                due_at,
            )
        except DomainError as exc:
            return AssignPayload(enrollments=[], errors=user_errors(exc))
        return AssignPayload(enrollments=await _enrollments(info, rows), errors=[])


__all__ = [
    "CertificationPayload",
    "EvidencePayload",
    "ImportPayload",
    "ImportRowError",
    "Mutation",
]
